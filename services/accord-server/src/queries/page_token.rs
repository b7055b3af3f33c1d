//! Opaque page tokens: the last id of the previous page, hex-encoded behind a
//! version tag, so that clients cannot depend on what is inside.

use accord_domain::ValidationError;

const TAG: &str = "p1.";

/// Returns the token that continues after `last_id`.
pub(crate) fn encode(last_id: &str) -> String {
    format!("{TAG}{}", crate::hex::encode(last_id.as_bytes()))
}

/// Returns the id a token continues after (None for the first page).
pub(crate) fn decode(token: &str) -> Result<Option<String>, ValidationError> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || ValidationError::new("page_token", "is not a token this server issued");
    let hex = token.strip_prefix(TAG).ok_or_else(invalid)?;
    if hex.len() > 512 {
        return Err(invalid());
    }
    let bytes = crate::hex::decode(hex).map_err(|_| invalid())?;
    String::from_utf8(bytes).map(Some).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(
            decode(&encode("kz-wabtec-locomotives")),
            Ok(Some("kz-wabtec-locomotives".into()))
        );
        assert_eq!(decode(""), Ok(None));
    }

    #[test]
    fn foreign_tokens_are_refused() {
        for token in ["abc", "p1.zz", "p1.a", "p1.ff"] {
            assert!(decode(token).is_err(), "{token}");
        }
    }
}
