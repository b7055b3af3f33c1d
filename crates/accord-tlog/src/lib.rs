//! Accord's log as a transparency log, in the shape of Certificate
//! Transparency (RFC 9162) and the C2SP specifications: a Merkle tree whose
//! leaf `p - 1` is the record at position `p` as `ExportLog` gives it, kept
//! as tiles of hashes ([`tiles`]), inclusion and consistency proofs drawn
//! from any source of subtree hashes ([`proof`]) and checked by anyone
//! ([`verify`]), and checkpoints signed as C2SP signed notes ([`note`]).
//! Pure: no I/O, no clock.

pub mod cosignature;
pub mod hash;
pub mod note;
pub mod proof;
pub mod tiles;
pub mod verify;
pub mod witness;

pub use cosignature::{cosign, verify_cosignature, witness_key_id};
pub use hash::{EMPTY_ROOT, Hash, leaf_hash, node_hash};
pub use note::{Checkpoint, NoteError, SignedNote, key_id};
pub use proof::{SubtreeHashes, consistency_proof, inclusion_proof, range_hash};
pub use tiles::{Frontier, TILE_HEIGHT, TILE_WIDTH, TileId, TileWrite};
pub use verify::{ProofError, verify_consistency, verify_inclusion};
pub use witness::{add_checkpoint_body, parse_add_checkpoint, parse_size};
