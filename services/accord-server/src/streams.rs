//! Live streams: `EventLog.Subscribe` and `AgreementService.WatchAgreements`.
//!
//! The log is the source of truth. A stream reads from the log until it
//! reaches the head, then waits on the head position; a stream that falls
//! behind simply reads from the log again. No event is copied into a shared
//! buffer, no writer ever waits for a subscriber, and each stream holds at
//! most one read batch and a small channel of messages.

mod cursor;
mod recent;
mod slots;
mod subscribe;
mod watch_agreements;

pub use recent::RecentEvents;
pub use slots::SubscriptionSlots;
pub(crate) use subscribe::start_subscription;
pub(crate) use watch_agreements::start_watch;

/// Messages buffered per stream before the stream waits for its client.
pub(crate) const STREAM_BUFFER: usize = 32;
