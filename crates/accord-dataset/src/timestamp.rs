//! The one instant format the dataset uses: `YYYY-MM-DDTHH:MM:SSZ`.

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC, whole seconds).
pub fn parse_rfc3339_utc(value: &str) -> Option<prost_types::Timestamp> {
    let bytes = value.as_bytes();
    if bytes.len() != 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
        || bytes[19] != b'Z'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| value.get(range)?.parse::<i64>().ok();
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_instants() {
        assert_eq!(
            parse_rfc3339_utc("1970-01-01T00:00:00Z").map(|at| at.seconds),
            Some(0)
        );
        assert_eq!(
            parse_rfc3339_utc("2025-09-23T00:00:00Z").map(|at| at.seconds),
            Some(1_758_585_600)
        );
        assert_eq!(
            parse_rfc3339_utc("2023-01-01T00:00:00Z").map(|at| at.seconds),
            Some(1_672_531_200)
        );
        assert_eq!(
            parse_rfc3339_utc("1900-03-01T12:30:15Z").map(|at| at.seconds),
            Some(-2_203_846_185)
        );
    }

    #[test]
    fn refuses_other_shapes() {
        for value in [
            "2025-09-23",
            "2025-13-01T00:00:00Z",
            "2025-09-23T00:00:00+02:00",
            "",
        ] {
            assert_eq!(parse_rfc3339_utc(value), None, "{value}");
        }
    }
}
