//! What goes to the stream and what came back: shared by single publishes
//! (`publish`) and atomic batches (`batch`).

use async_nats::jetstream::context::PublishError;

use crate::StoreError;

/// One event on its way to the stream.
pub(crate) struct Outgoing {
    pub(crate) index: usize,
    pub(crate) subject: String,
    pub(crate) payload: bytes::Bytes,
    pub(crate) expected_subject_sequence: Option<u64>,
    pub(crate) event_id: [u8; 16],
}

/// How the stream answered a publish or a batch.
pub(crate) enum Published {
    /// Stored; the first event's position.
    At(u64),
    /// An expected sequence did not hold.
    Conflict,
    /// The command id was seen inside the duplicate window, at this position.
    Duplicate(u64),
    /// A batch holds a command id seen inside the duplicate window.
    SeenCommand,
}

/// JetStream's error codes for a failed expected-sequence check (a
/// clustered stream may answer with the second).
pub(crate) const WRONG_LAST_SEQUENCE: [u64; 2] = [10_071, 10_164];

/// JetStream error codes that mean the stream or the server is out of
/// room: insufficient resources (10023), memory (10028) or storage (10047)
/// exhausted, account limits (10002).
const OUT_OF_ROOM: [u64; 4] = [10_023, 10_028, 10_047, 10_002];
/// JetStream's generic "store failed" code (10077), whose description is
/// the store's own error: a stream limit ("maximum bytes exceeded",
/// "maximum messages exceeded") or a disk failure.
const STORE_FAILED: u64 = 10_077;

/// The error for an append that JetStream refused with `code`: out of room
/// (a resource or a stream limit) is `StorageFull`, anything else
/// `Unavailable`.
pub(crate) fn publish_refused(code: u64, description: &str) -> StoreError {
    let message = format!("NATS refused the append: {description}");
    let limit_reached =
        code == STORE_FAILED && description.to_ascii_lowercase().starts_with("maximum ");
    if OUT_OF_ROOM.contains(&code) || limit_reached {
        StoreError::StorageFull(message)
    } else {
        StoreError::Unavailable(message)
    }
}

/// The JetStream refusal behind a failed publish, if the stream refused it
/// (rather than the connection failing).
pub(crate) fn refusal(error: &PublishError) -> Option<&async_nats::jetstream::Error> {
    std::error::Error::source(error)?.downcast_ref::<async_nats::jetstream::Error>()
}

/// The error for a publish that failed: a JetStream refusal is classified
/// by its code ([`publish_refused`]); anything else (the connection, a
/// timeout) is a failure with its cause.
pub(crate) fn publish_failed(error: PublishError) -> StoreError {
    match refusal(&error) {
        Some(refused) => publish_refused(refused.error_code().0, &refused.to_string()),
        None => StoreError::failed("publishing to NATS", error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_classified_by_their_code() {
        for code in OUT_OF_ROOM {
            assert!(matches!(
                publish_refused(code, "insufficient resources"),
                StoreError::StorageFull(_)
            ));
        }
        for limit in ["maximum bytes exceeded", "maximum messages exceeded"] {
            assert!(matches!(
                publish_refused(STORE_FAILED, limit),
                StoreError::StorageFull(_)
            ));
        }
        assert!(matches!(
            publish_refused(STORE_FAILED, "input/output error"),
            StoreError::Unavailable(_)
        ));
        // The code decides, not words in the description.
        assert!(matches!(
            publish_refused(10_039, "insufficient resources"),
            StoreError::Unavailable(_)
        ));
    }
}
