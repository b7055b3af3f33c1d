//! Subjects: one per agreement, `accord.agreement.<id>`.
//!
//! Agreement ids may hold `.`, which NATS reads as a token separator (and
//! `a..b` would be an invalid subject), so `.` is written as `~`, a character
//! ids never hold: the mapping is one to one.

/// Every agreement subject starts with this.
pub(crate) const SUBJECT_PREFIX: &str = "accord.agreement";

/// The subjects the stream captures.
pub(crate) fn stream_subjects() -> Vec<String> {
    vec![format!("{SUBJECT_PREFIX}.>")]
}

/// The subject of an agreement's events.
pub(crate) fn subject_of(agreement_id: &str) -> String {
    format!("{SUBJECT_PREFIX}.{}", agreement_id.replace('.', "~"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_in_ids_do_not_make_tokens() {
        assert_eq!(
            subject_of("uz-boeing-787"),
            "accord.agreement.uz-boeing-787"
        );
        assert_eq!(subject_of("a..b."), "accord.agreement.a~~b~");
        assert_ne!(subject_of("a.b"), subject_of("a-b"));
    }
}
