//! Live streams: `EventLog.Subscribe` and `AgreementService.WatchAgreements`.
//!
//! The log is the source of truth. A stream reads from the log until it
//! reaches the head, then waits on the head position; a stream that falls
//! behind simply reads from the log again. No event is copied into a shared
//! buffer, no writer ever waits for a subscriber, and each stream holds at
//! most one read batch and a small channel of messages.

mod cursor;
mod indexed;
mod live_feed;
mod recent;
mod server_stream;
mod service;
mod slots;
mod subscribe;
mod watch_agreements;

pub(crate) use cursor::LogCursor;
pub(crate) use indexed::LogIndexes;
pub(crate) use live_feed::LiveFeed;
pub(crate) use recent::RecentEvents;
pub(crate) use server_stream::ServerStream;
pub(crate) use server_stream::{
    Batch, StreamSender, batched_stream_channel, spawn_stream, stream_channel,
};
pub(crate) use service::FeedService;
pub(crate) use slots::{Owner, Slot};
pub(crate) use slots::{StreamLimits, SubscriptionSlots};
pub(crate) use subscribe::start_subscription;
pub(crate) use watch_agreements::start_watch;

/// Most bytes of messages a stream's channel holds for its client, whatever
/// the number of messages (an event may be up to `--max-event-bytes`): with
/// one read batch of at most `accord_store::READ_BYTES`, what a stream that
/// is not read holds.
pub(crate) const STREAM_BYTES: usize = 1024 * 1024;
/// Messages buffered per live stream (`Subscribe`, `WatchAgreements`)
/// before it waits for its client.
pub(crate) const LIVE_STREAM_BUFFER: usize = 32;
/// Events a subscriber is handed in one message of its channel: one wake
/// of its connection per batch, not per event.
pub(crate) const SUBSCRIBE_BATCH: usize = 16;
/// Batches buffered per subscriber before it waits for its client
/// (at most `SUBSCRIBE_BATCH` × this many events).
pub(crate) const SUBSCRIBE_BATCHES: usize = 4;
/// Messages buffered per reading stream (`ReadLog`, history, export) before
/// it waits for its client.
pub(crate) const READ_STREAM_BUFFER: usize = 256;
/// Progress reports buffered per operator stream (`VerifyLog`,
/// `RebuildProjections`); a report that finds no room is dropped.
pub(crate) const PROGRESS_BUFFER: usize = 64;
/// Events a reading stream (`ReadLog`, history) asks the log for at once.
pub(crate) const READ_BATCH: usize = 512;
/// Records `ExportLog` asks the log for at once.
pub(crate) const EXPORT_BATCH: usize = 1_024;
/// Events a live stream's cursor takes at once, from the shared window of
/// recent events or from the log.
pub(crate) const CURSOR_BATCH: usize = 256;
