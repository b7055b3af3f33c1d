//! What a log's writer tells its readers after each durable write: the new
//! head and its signed checkpoint, the checkpoint first, so that a reader
//! that sees a head finds a checkpoint at least as far.

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::{ChainHead, CheckpointKeys, SignedCheckpoint};

/// The writer's side: signs heads and publishes them.
pub(crate) struct HeadPublisher {
    keys: CheckpointKeys,
    head: watch::Sender<u64>,
    checkpoint: Arc<Mutex<Option<SignedCheckpoint>>>,
}

/// The readers' side of the latest durable checkpoint.
#[derive(Clone)]
pub(crate) struct LatestCheckpoint(Arc<Mutex<Option<SignedCheckpoint>>>);

impl LatestCheckpoint {
    /// The checkpoint of the last durable write (`None` for an empty log).
    pub(crate) fn get(&self) -> Option<SignedCheckpoint> {
        *self.0.lock()
    }
}

impl HeadPublisher {
    /// Starts from the head and checkpoint found at open; returns the
    /// readers' receiver of the head too.
    pub(crate) fn new(
        keys: CheckpointKeys,
        head: u64,
        checkpoint: Option<SignedCheckpoint>,
    ) -> (Self, watch::Receiver<u64>) {
        let (sender, receiver) = watch::channel(head);
        let publisher = Self {
            keys,
            head: sender,
            checkpoint: Arc::new(Mutex::new(checkpoint)),
        };
        (publisher, receiver)
    }

    /// The readers' side of the checkpoint.
    pub(crate) fn latest(&self) -> LatestCheckpoint {
        LatestCheckpoint(self.checkpoint.clone())
    }

    /// Signs `head`, for the batch that writes it.
    pub(crate) fn sign(&self, head: &ChainHead) -> SignedCheckpoint {
        self.keys.sign(head)
    }

    /// Publishes a durable head and its checkpoint.
    pub(crate) fn publish(&self, head: u64, checkpoint: Option<SignedCheckpoint>) {
        *self.checkpoint.lock() = checkpoint;
        self.head.send_replace(head);
    }
}
