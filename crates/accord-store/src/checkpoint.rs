//! Signed checkpoints: the server's Ed25519 signature over the chain head
//! (position and hash of the last record). The hash chain alone proves only
//! that records follow each other; anyone can recompute it after changing a
//! record. A checkpoint signed with a key the forger does not hold pins the
//! whole chain up to its position: changing, removing or re-chaining any
//! record below it changes the hash the signature covers.
//!
//! Every write of the log (a group commit, an import chunk, a replica batch)
//! stores the checkpoint of its new head in the same atomic batch, so the
//! checkpoint always covers every durable record.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use crate::{ChainHead, RecordHash, StoreError};

/// What a checkpoint signs: a domain tag, then position (u64 BE) and hash.
const SIGNED_TAG: &[u8] = b"accord checkpoint v1\0";
/// First byte of a stored checkpoint.
const STORED_FORMAT: u8 = 1;
const STORED_LEN: usize = 1 + 8 + 32 + 32 + 64;

/// A chain head signed by a server key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// Position of the last record covered.
    pub position: u64,
    /// Hash of that record (it carries the hash of every record before it).
    pub hash: RecordHash,
    /// The Ed25519 public key that signed.
    pub public_key: [u8; 32],
    /// The signature over `position` and `hash`.
    pub signature: [u8; 64],
}

/// Why a checkpoint does not vouch for a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signature does not verify: the checkpoint itself was altered.
    #[error("the signature of the checkpoint at position {position} does not verify")]
    BadSignature {
        /// The checkpoint's position.
        position: u64,
    },
    /// Signed by a key that is neither this server's nor a trusted one.
    #[error(
        "the checkpoint at position {position} is signed by key {public_key}, which is not this server's key nor one of its --trusted-key"
    )]
    UntrustedKey {
        /// The checkpoint's position.
        position: u64,
        /// The signer's public key, hex.
        public_key: String,
    },
    /// The log ends elsewhere than the signed head: records were removed, or
    /// added without the key.
    #[error(
        "the log ends at position {head}, its signed checkpoint is at position {signed}: records were removed or added outside Accord"
    )]
    Length {
        /// Where the log ends.
        head: u64,
        /// The checkpoint's position.
        signed: u64,
    },
    /// The records do not hash to what was signed.
    #[error(
        "the record at position {position} hashes to {found}, the signed checkpoint says {signed}: records were changed after they were signed"
    )]
    Mismatch {
        /// The checkpoint's position.
        position: u64,
        /// The hash the records give, hex (first 8 bytes).
        found: String,
        /// The signed hash, hex (first 8 bytes).
        signed: String,
    },
}

impl SignedCheckpoint {
    fn signed_bytes(position: u64, hash: &RecordHash) -> Vec<u8> {
        let mut message = Vec::with_capacity(SIGNED_TAG.len() + 8 + 32);
        message.extend_from_slice(SIGNED_TAG);
        message.extend_from_slice(&position.to_be_bytes());
        message.extend_from_slice(hash);
        message
    }

    /// The stored form: format byte, position, hash, key, signature.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(STORED_LEN);
        bytes.push(STORED_FORMAT);
        bytes.extend_from_slice(&self.position.to_be_bytes());
        bytes.extend_from_slice(&self.hash);
        bytes.extend_from_slice(&self.public_key);
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// Reads the stored form.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        if bytes.len() != STORED_LEN || bytes[0] != STORED_FORMAT {
            return Err(StoreError::Corrupt(format!(
                "stored checkpoint: expected {STORED_LEN} bytes of format {STORED_FORMAT}, found {} bytes",
                bytes.len()
            )));
        }
        let field = |from: usize, to: usize| &bytes[from..to];
        let mut position = [0; 8];
        position.copy_from_slice(field(1, 9));
        let mut checkpoint = Self {
            position: u64::from_be_bytes(position),
            hash: [0; 32],
            public_key: [0; 32],
            signature: [0; 64],
        };
        checkpoint.hash.copy_from_slice(field(9, 41));
        checkpoint.public_key.copy_from_slice(field(41, 73));
        checkpoint.signature.copy_from_slice(field(73, STORED_LEN));
        Ok(checkpoint)
    }

    /// Builds a checkpoint from its wire fields (an export's), refusing
    /// fields of the wrong length.
    pub fn from_parts(
        position: u64,
        hash: &[u8],
        public_key: &[u8],
        signature: &[u8],
    ) -> Result<Self, String> {
        let wrong = |what: &str, want: usize, got: usize| {
            format!("checkpoint {what}: expected {want} bytes, got {got}")
        };
        Ok(Self {
            position,
            hash: hash.try_into().map_err(|_| wrong("hash", 32, hash.len()))?,
            public_key: public_key
                .try_into()
                .map_err(|_| wrong("public key", 32, public_key.len()))?,
            signature: signature
                .try_into()
                .map_err(|_| wrong("signature", 64, signature.len()))?,
        })
    }

    /// Checks that it was signed by one of `keys`' trusted keys.
    pub fn check_signature(&self, keys: &CheckpointKeys) -> Result<(), CheckpointError> {
        if !keys.trusts(&self.public_key) {
            return Err(CheckpointError::UntrustedKey {
                position: self.position,
                public_key: crate::hex::encode(&self.public_key),
            });
        }
        let bad = CheckpointError::BadSignature {
            position: self.position,
        };
        let key = VerifyingKey::from_bytes(&self.public_key).map_err(|_| bad.clone())?;
        key.verify_strict(
            &Self::signed_bytes(self.position, &self.hash),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| bad)
    }

    /// Checks the signature and that `head` (the record at the checkpoint's
    /// position, as the log holds it) is what was signed.
    pub fn check(&self, head: &ChainHead, keys: &CheckpointKeys) -> Result<(), CheckpointError> {
        self.check_signature(keys)?;
        if head.position != self.position {
            return Err(CheckpointError::Length {
                head: head.position,
                signed: self.position,
            });
        }
        if head.hash != self.hash {
            return Err(CheckpointError::Mismatch {
                position: self.position,
                found: crate::hex::encode(&head.hash[..8]),
                signed: crate::hex::encode(&self.hash[..8]),
            });
        }
        Ok(())
    }
}

/// The key this server signs with and the public keys it trusts (its own
/// included): keys it signed with before a rotation, other servers' whose
/// exports it imports.
#[derive(Clone)]
pub struct CheckpointKeys {
    signer: SigningKey,
    trusted: Vec<[u8; 32]>,
}

impl std::fmt::Debug for CheckpointKeys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CheckpointKeys")
            .field("public_key", &crate::hex::encode(&self.public_key()))
            .field("trusted", &self.trusted.len())
            .finish_non_exhaustive()
    }
}

impl CheckpointKeys {
    /// Signs with the key whose 32-byte secret is `secret`, trusting it and
    /// `trusted`.
    pub fn new(secret: [u8; 32], trusted: impl IntoIterator<Item = [u8; 32]>) -> Self {
        let signer = SigningKey::from_bytes(&secret);
        let mut keys: Vec<[u8; 32]> = vec![signer.verifying_key().to_bytes()];
        keys.extend(trusted);
        keys.sort_unstable();
        keys.dedup();
        Self {
            signer,
            trusted: keys,
        }
    }

    /// A fresh random secret key.
    pub fn generate_secret() -> Result<[u8; 32], StoreError> {
        let mut secret = [0; 32];
        getrandom::fill(&mut secret)
            .map_err(|error| StoreError::Unavailable(format!("no randomness: {error}")))?;
        Ok(secret)
    }

    /// A key made for this call, for tests and tools that never reopen.
    pub fn ephemeral() -> Result<Self, StoreError> {
        Ok(Self::new(Self::generate_secret()?, []))
    }

    /// This server's public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.signer.verifying_key().to_bytes()
    }

    /// Whether `public_key` is this server's or a trusted one.
    pub fn trusts(&self, public_key: &[u8; 32]) -> bool {
        self.trusted.binary_search(public_key).is_ok()
    }

    /// Signs a tree head as a C2SP signed note by the key named `name`.
    pub fn sign_tree_head(&self, tree_head: &accord_tlog::Checkpoint, name: &str) -> String {
        tree_head.sign(name, &self.signer)
    }

    /// Signs `head`.
    pub fn sign(&self, head: &ChainHead) -> SignedCheckpoint {
        let signature = self
            .signer
            .sign(&SignedCheckpoint::signed_bytes(head.position, &head.hash));
        SignedCheckpoint {
            position: head.position,
            hash: head.hash,
            public_key: self.public_key(),
            signature: signature.to_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(position: u64, byte: u8) -> ChainHead {
        ChainHead {
            position,
            hash: [byte; 32],
        }
    }

    #[test]
    fn a_checkpoint_verifies_against_the_head_it_signed() {
        let keys = CheckpointKeys::new([7; 32], []);
        let checkpoint = keys.sign(&head(42, 9));
        assert_eq!(checkpoint.check(&head(42, 9), &keys), Ok(()));
        let stored = SignedCheckpoint::decode(&checkpoint.encode()).expect("decodes");
        assert_eq!(stored, checkpoint);
    }

    #[test]
    fn another_head_an_altered_checkpoint_or_another_key_is_refused() {
        let keys = CheckpointKeys::new([7; 32], []);
        let checkpoint = keys.sign(&head(42, 9));
        assert!(matches!(
            checkpoint.check(&head(42, 8), &keys),
            Err(CheckpointError::Mismatch { .. })
        ));
        assert_eq!(
            checkpoint.check(&head(41, 9), &keys),
            Err(CheckpointError::Length {
                head: 41,
                signed: 42
            })
        );
        // A forger who moves the checkpoint to the head they made.
        let moved = SignedCheckpoint {
            hash: [8; 32],
            ..checkpoint
        };
        assert_eq!(
            moved.check(&head(42, 8), &keys),
            Err(CheckpointError::BadSignature { position: 42 })
        );
        // A forger who signs with a key of their own.
        let forger = CheckpointKeys::new([1; 32], []);
        assert!(matches!(
            forger.sign(&head(42, 8)).check(&head(42, 8), &keys),
            Err(CheckpointError::UntrustedKey { .. })
        ));
        // ... unless this server was told to trust it.
        let trusting = CheckpointKeys::new([7; 32], [forger.public_key()]);
        assert_eq!(
            forger.sign(&head(42, 8)).check(&head(42, 8), &trusting),
            Ok(())
        );
    }

    #[test]
    fn stored_checkpoints_of_the_wrong_shape_are_corrupt() {
        let keys = CheckpointKeys::new([7; 32], []);
        let mut bytes = keys.sign(&head(1, 1)).encode();
        bytes[0] = 2;
        assert!(SignedCheckpoint::decode(&bytes).is_err());
        assert!(SignedCheckpoint::decode(&bytes[..10]).is_err());
        assert!(SignedCheckpoint::from_parts(1, &[0; 31], &[0; 32], &[0; 64]).is_err());
    }
}
