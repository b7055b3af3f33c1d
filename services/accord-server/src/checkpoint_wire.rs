//! Signed checkpoints on the wire.

use accord_proto::v1;
use accord_store::SignedCheckpoint;

/// The wire form of a checkpoint.
pub(crate) fn to_wire(checkpoint: &SignedCheckpoint) -> v1::SignedCheckpoint {
    v1::SignedCheckpoint {
        position: checkpoint.position,
        hash: checkpoint.hash.to_vec(),
        public_key: checkpoint.public_key.to_vec(),
        signature: checkpoint.signature.to_vec(),
    }
}

/// A checkpoint from the wire; why not when a field has the wrong length.
pub(crate) fn from_wire(checkpoint: &v1::SignedCheckpoint) -> Result<SignedCheckpoint, String> {
    SignedCheckpoint::from_parts(
        checkpoint.position,
        &checkpoint.hash,
        &checkpoint.public_key,
        &checkpoint.signature,
    )
}
