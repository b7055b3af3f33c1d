//! Optimistic concurrency on one agreement's stream.

use crate::DomainError;

/// What the writer expects the agreement's stream to be at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpectedVersion {
    /// Anything, including no stream.
    Any,
    /// The agreement must not exist.
    NoStream,
    /// The agreement must exist, at any version.
    StreamExists,
    /// The stream must be at exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Checks `current` (0 = no stream) against the expectation.
    pub fn check(self, agreement_id: &str, current: u64) -> Result<(), DomainError> {
        let holds = match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current == 0,
            ExpectedVersion::StreamExists => current > 0,
            ExpectedVersion::Exact(version) => current == version,
        };
        if holds {
            Ok(())
        } else {
            Err(DomainError::WrongExpectedVersion {
                agreement_id: agreement_id.to_owned(),
                expected: self,
                actual: current,
            })
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => formatter.write_str("any"),
            ExpectedVersion::NoStream => formatter.write_str("no stream"),
            ExpectedVersion::StreamExists => formatter.write_str("an existing stream"),
            ExpectedVersion::Exact(version) => write!(formatter, "version {version}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_accepts_everything() {
        assert!(ExpectedVersion::Any.check("a", 0).is_ok());
        assert!(ExpectedVersion::Any.check("a", 7).is_ok());
    }

    #[test]
    fn no_stream_accepts_only_zero() {
        assert!(ExpectedVersion::NoStream.check("a", 0).is_ok());
        assert!(ExpectedVersion::NoStream.check("a", 1).is_err());
    }

    #[test]
    fn stream_exists_rejects_zero() {
        assert!(ExpectedVersion::StreamExists.check("a", 0).is_err());
        assert!(ExpectedVersion::StreamExists.check("a", 3).is_ok());
    }

    #[test]
    fn exact_names_expected_and_actual() {
        let error = ExpectedVersion::Exact(2).check("a", 3).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("version 2"), "{message}");
        assert!(message.contains("3"), "{message}");
    }
}
