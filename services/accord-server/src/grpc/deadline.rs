//! How long a query may wait for the read models: the call's deadline
//! (`grpc-timeout`), or 5 s when the client set none, and never more than
//! [`MAX_WAIT`].

use std::time::Duration;

use tonic::metadata::MetadataMap;

use crate::queries::{DEFAULT_WAIT, MAX_WAIT};

/// What is kept of a deadline for the answer to reach the client: a tenth of
/// it, and at least this much (a busy server or network needs the time).
const MIN_ANSWER_MARGIN: Duration = Duration::from_millis(100);

/// Returns the wait allowed by the call's `grpc-timeout`, short of it by a
/// tenth and at least 100 ms, so that the answer arrives before the client
/// gives up.
pub(crate) fn allowed_wait(metadata: &MetadataMap) -> Duration {
    let Some(timeout) = metadata
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
    else {
        return DEFAULT_WAIT;
    };
    wait_within(timeout)
}

/// The wait that leaves the answer its margin within `timeout`, at most [`MAX_WAIT`].
fn wait_within(timeout: Duration) -> Duration {
    timeout
        .saturating_sub((timeout / 10).max(MIN_ANSWER_MARGIN))
        .min(MAX_WAIT)
}

/// Parses the gRPC wire form: up to 8 digits and a unit (H, M, S, m, u, n).
fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3_600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_grpc_timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse_grpc_timeout("150m"), Some(Duration::from_millis(150)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3_600)));
        assert_eq!(parse_grpc_timeout("5u"), Some(Duration::from_micros(5)));
        assert_eq!(parse_grpc_timeout("S"), None);
        assert_eq!(parse_grpc_timeout("123456789S"), None);
        assert_eq!(parse_grpc_timeout("5x"), None);
        assert_eq!(parse_grpc_timeout(""), None);
    }

    #[test]
    fn the_answer_keeps_a_tenth_of_the_deadline_and_at_least_100_ms() {
        assert_eq!(
            wait_within(Duration::from_secs(5)),
            Duration::from_millis(4_500)
        );
        assert_eq!(
            wait_within(Duration::from_millis(300)),
            Duration::from_millis(200)
        );
        assert_eq!(wait_within(Duration::from_millis(50)), Duration::ZERO);
    }

    #[test]
    fn no_deadline_parks_a_call_longer_than_the_cap() {
        assert_eq!(
            wait_within(Duration::from_secs(99_999_999 * 3_600)),
            MAX_WAIT
        );
        let mut metadata = MetadataMap::new();
        metadata.insert("grpc-timeout", "99999999H".parse().expect("ascii"));
        assert_eq!(allowed_wait(&metadata), MAX_WAIT);
    }
}
