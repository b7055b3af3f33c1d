//! What goes to the stream and what came back: shared by single publishes
//! (`publish`) and atomic batches (`batch`).

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

/// The error for an append NATS refused, by its description: a full
/// stream or server is `StorageFull`, anything else `Unavailable`.
pub(crate) fn publish_failed(description: &str) -> StoreError {
    let lower = description.to_ascii_lowercase();
    if lower.contains("insufficient")
        || lower.contains("maximum bytes")
        || (lower.contains("storage") && lower.contains("exceed"))
    {
        StoreError::StorageFull(format!("NATS refused the append: {description}"))
    } else {
        StoreError::Unavailable(format!("NATS refused the append: {description}"))
    }
}
