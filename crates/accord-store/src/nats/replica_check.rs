//! At open, the node's replica must be a prefix of the stream: never longer
//! than the stream, and at its head the same message. A power cut keeps
//! only what sled had synced of the replica (it is derived, so it is not
//! synced per message) and the stream may have been recreated since; a
//! replica that is not a prefix, or whose signed checkpoint does not verify
//! (changed outside Accord), is deleted and derived again from the stream.

use std::path::Path;

use async_nats::jetstream::stream::Stream;

use super::replica::Replica;
use crate::tree::reader::TreeReader;
use crate::{CheckpointKeys, StoreError, decode_record};

/// Opens the replica in `path`, re-deriving it when it is not a prefix of `stream`.
pub(crate) async fn open_replica(
    stream: &Stream,
    path: &Path,
    cache_bytes: u64,
    keys: &CheckpointKeys,
) -> Result<(Replica, TreeReader), StoreError> {
    let why = match open_blocking(path, cache_bytes, keys).await {
        Ok((replica, reader)) => {
            let Some(why) = divergence(stream, &reader).await? else {
                return Ok((replica, reader));
            };
            // sled releases the directory once every handle on it is gone.
            drop((replica, reader));
            why
        }
        Err(StoreError::Tampered(why) | StoreError::Unsigned(why)) => why,
        Err(error) => return Err(error),
    };
    tracing::warn!(
        path = %path.display(),
        why,
        "the replica cannot be used; deriving it again from the stream"
    );
    let removed = path.to_path_buf();
    tokio::task::spawn_blocking(move || std::fs::remove_dir_all(removed))
        .await
        .map_err(|error| StoreError::failed("replica task", error))?
        .map_err(StoreError::from_io)?;
    open_blocking(path, cache_bytes, keys).await
}

async fn open_blocking(
    path: &Path,
    cache_bytes: u64,
    keys: &CheckpointKeys,
) -> Result<(Replica, TreeReader), StoreError> {
    let path = path.to_path_buf();
    let keys = keys.clone();
    tokio::task::spawn_blocking(move || Replica::open(&path, cache_bytes, &keys))
        .await
        .map_err(|error| StoreError::failed("replica task", error))?
}

/// Why the replica read by `reader` is not a prefix of `stream`, if it is not.
async fn divergence(stream: &Stream, reader: &TreeReader) -> Result<Option<String>, StoreError> {
    let head = reader.head();
    if head == 0 {
        return Ok(None);
    }
    let mut stream_now = stream.clone();
    let info = stream_now
        .info()
        .await
        .map_err(|error| StoreError::failed("stream info", error))?;
    let last = info.state.last_sequence;
    if head > last {
        return Ok(Some(format!(
            "the replica's head {head} is beyond the stream's last sequence {last}"
        )));
    }
    let message = stream
        .get_raw_message(head)
        .await
        .map_err(|error| StoreError::failed(format!("stream message {head}"), error))?;
    let in_stream = decode_record(&message.payload)?.event;
    let in_replica = reader.read_log(head, 1)?;
    match in_replica.first() {
        Some(event) if event.event_id == in_stream.event_id => Ok(None),
        _ => Ok(Some(format!(
            "the stream holds another event at the replica's head {head}"
        ))),
    }
}
