//! Numbers as people read them: `USD 8.5 bn`, `45 %`, `1,234`.

use accord_proto::v1;

/// Percent-encodes a path segment or query value.
pub(crate) fn url_component(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Groups thousands: 1234567 -> "1,234,567".
pub(crate) fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A size in bytes as `512 B`, `3.2 KiB`, `1.1 GiB`.
pub(crate) fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", decimal(value), UNITS[unit])
}

/// An amount in minor units (cents) as `USD 8.5 bn`, `USD 120 m`,
/// `USD 45,000`.
pub(crate) fn money(money: &v1::Money) -> String {
    let major = money.minor_units as f64 / 100.0;
    let magnitude = major.abs();
    let (scaled, suffix) = if magnitude >= 1e9 {
        (major / 1e9, " bn")
    } else if magnitude >= 1e6 {
        (major / 1e6, " m")
    } else {
        return format!(
            "{} {}{}",
            money.currency,
            if major < 0.0 { "-" } else { "" },
            count(magnitude.round() as u64)
        );
    };
    format!("{} {}{suffix}", money.currency, decimal(scaled))
}

/// One decimal, without a trailing `.0`.
fn decimal(value: f64) -> String {
    let text = format!("{value:.1}");
    text.strip_suffix(".0").map(str::to_owned).unwrap_or(text)
}

/// Basis points as a percentage: 4500 -> "45 %", 1250 -> "12.5 %".
pub(crate) fn percent(basis_points: u32) -> String {
    format!("{} %", decimal(f64::from(basis_points) / 100.0))
}

/// A list of amounts in their currencies, never added across them.
pub(crate) fn amounts(amounts: &[v1::Money]) -> String {
    if amounts.is_empty() {
        return "—".into();
    }
    amounts.iter().map(money).collect::<Vec<_>>().join(" · ")
}

/// A stage as people say it: `AGREEMENT_STAGE_SIGNED` -> "signed".
pub(crate) fn stage(stage: i32) -> &'static str {
    match v1::AgreementStage::try_from(stage) {
        Ok(v1::AgreementStage::Announced) => "announced",
        Ok(v1::AgreementStage::Signed) => "signed",
        Ok(v1::AgreementStage::Delivering) => "delivering",
        Ok(v1::AgreementStage::Delivered) => "delivered",
        _ => "unknown",
    }
}

/// A timestamp as `2025-09-23 14:05 UTC`.
pub(crate) fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    let Some(timestamp) = timestamp else {
        return "—".into();
    };
    let days = timestamp.seconds.div_euclid(86_400);
    let seconds = timestamp.seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        seconds / 3_600,
        seconds % 3_600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(minor_units: i64) -> v1::Money {
        v1::Money {
            currency: "USD".into(),
            minor_units,
        }
    }

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(money(&usd(850_000_000_000)), "USD 8.5 bn");
        assert_eq!(money(&usd(420_000_000_000)), "USD 4.2 bn");
        assert_eq!(money(&usd(12_000_000_000)), "USD 120 m");
        assert_eq!(money(&usd(4_500_000)), "USD 45,000");
        assert_eq!(percent(4_500), "45 %");
        assert_eq!(percent(1_250), "12.5 %");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_300), "3.2 KiB");
        assert_eq!(bytes(1_181_116_006), "1.1 GiB");
        assert_eq!(amounts(&[]), "—");
        let at = prost_types::Timestamp {
            seconds: 1_758_636_300,
            nanos: 0,
        };
        assert_eq!(time(Some(&at)), "2025-09-23 14:05 UTC");
    }
}
