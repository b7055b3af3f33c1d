//! Checkpoints as C2SP `tlog-checkpoint` bodies signed as C2SP
//! `signed-note`s with Ed25519: the body is the origin line, the tree size
//! in decimal and the base64 root hash, each ending in a newline; a blank
//! line; then one line per signature, `— <key name> <base64(key id ‖
//! signature)>`, where the key id is the first four bytes of
//! SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ public key) (0x01: Ed25519).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::hash::Hash;

/// The signature type byte of Ed25519 in signed notes.
const ED25519: u8 = 0x01;
/// The prefix of a signature line: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Most bytes of a note this crate reads.
pub const MAX_NOTE_BYTES: usize = 64 * 1024;

/// Why a note or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a signed note, or not a checkpoint.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// No signature by that key.
    #[error("the note carries no signature by key {0}")]
    Unsigned(String),
    /// A signature by that key that does not verify.
    #[error("the signature by key {0} does not verify")]
    BadSignature(String),
}

/// The key id of an Ed25519 key called `name` in signed notes.
pub fn key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', ED25519]);
    hasher.update(key.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A tree head: which log, how many leaves, which root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin (its name: by convention a schema-less URL).
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The body: three lines.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            STANDARD.encode(self.root)
        )
    }

    /// Reads a body (extension lines after the third are allowed and
    /// ignored, as the specification says).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let malformed = |why: &str| NoteError::Malformed(why.to_owned());
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|line| !line.is_empty());
        let origin = origin.ok_or_else(|| malformed("no origin line"))?;
        let size = lines.next().ok_or_else(|| malformed("no tree size line"))?;
        if size.is_empty() || !size.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(malformed("the tree size is not a decimal number"));
        }
        if size.len() > 1 && size.starts_with('0') {
            return Err(malformed("the tree size has a leading zero"));
        }
        let size = size
            .parse()
            .map_err(|_| malformed("the tree size is too large"))?;
        let root = lines.next().ok_or_else(|| malformed("no root hash line"))?;
        let root: Hash = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| malformed("the root hash is not 32 bytes of base64"))?;
        if !body.ends_with('\n') {
            return Err(malformed("the body does not end with a newline"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// The checkpoint signed by `key`, named `name`, as a note.
    pub fn sign(&self, name: &str, key: &SigningKey) -> String {
        let body = self.body();
        let signature = key.sign(body.as_bytes());
        let mut blob = key_id(name, &key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature.to_bytes());
        format!(
            "{body}\n{SIGNATURE_PREFIX}{name} {}\n",
            STANDARD.encode(blob)
        )
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key's name.
    pub name: String,
    /// The key id.
    pub key_id: [u8; 4],
    /// The signature bytes (after the key id).
    pub signature: Vec<u8>,
}

/// A signed note, split into its body and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    /// The signed text, ending with a newline.
    pub body: String,
    /// Its signatures, in order.
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Splits a note (at most [`MAX_NOTE_BYTES`]).
    pub fn parse(note: &str) -> Result<Self, NoteError> {
        let malformed = |why: &str| NoteError::Malformed(why.to_owned());
        if note.len() > MAX_NOTE_BYTES {
            return Err(malformed("longer than a note may be"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let body = &note[..=split];
        let lines = &note[split + 2..];
        let Some(lines) = lines.strip_suffix('\n') else {
            return Err(malformed("the signatures do not end with a newline"));
        };
        let mut signatures = Vec::new();
        for line in lines.split('\n') {
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("a signature line does not start with an em dash"))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line has no signature"))?;
            let blob = STANDARD
                .decode(blob)
                .map_err(|_| malformed("a signature is not base64"))?;
            if name.is_empty() || blob.len() < 5 {
                return Err(malformed("a signature line is too short"));
            }
            signatures.push(NoteSignature {
                name: name.to_owned(),
                key_id: [blob[0], blob[1], blob[2], blob[3]],
                signature: blob[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(malformed("no signature"));
        }
        Ok(Self {
            body: body.to_owned(),
            signatures,
        })
    }

    /// The checkpoint the note carries, once a signature by `key` named
    /// `name` verifies over its body.
    pub fn verify_checkpoint(
        &self,
        name: &str,
        key: &VerifyingKey,
    ) -> Result<Checkpoint, NoteError> {
        let id = key_id(name, key);
        let signature = self
            .signatures
            .iter()
            .find(|signature| signature.name == name && signature.key_id == id)
            .ok_or_else(|| NoteError::Unsigned(name.to_owned()))?;
        let bytes: [u8; 64] = signature
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| NoteError::BadSignature(name.to_owned()))?;
        key.verify_strict(self.body.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| NoteError::BadSignature(name.to_owned()))?;
        Checkpoint::parse(&self.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            origin: "accord/example".into(),
            size: 42,
            root: [7; 32],
        }
    }

    #[test]
    fn a_signed_checkpoint_reads_back_and_verifies() {
        let note = checkpoint().sign("accord/example", &key(1));
        assert!(note.starts_with("accord/example\n42\nBwcH"));
        let parsed = SignedNote::parse(&note).expect("parses");
        assert_eq!(parsed.body, checkpoint().body());
        let read = parsed
            .verify_checkpoint("accord/example", &key(1).verifying_key())
            .expect("verifies");
        assert_eq!(read, checkpoint());
    }

    #[test]
    fn another_key_a_changed_body_or_a_changed_signature_is_refused() {
        let note = checkpoint().sign("accord/example", &key(1));
        let parsed = SignedNote::parse(&note).expect("parses");
        assert_eq!(
            parsed.verify_checkpoint("accord/example", &key(2).verifying_key()),
            Err(NoteError::Unsigned("accord/example".into()))
        );
        let changed = SignedNote::parse(&note.replacen("\n42\n", "\n43\n", 1)).expect("parses");
        assert_eq!(
            changed.verify_checkpoint("accord/example", &key(1).verifying_key()),
            Err(NoteError::BadSignature("accord/example".into()))
        );
        let mut forged = parsed.clone();
        forged.signatures[0].signature[0] ^= 1;
        assert!(
            forged
                .verify_checkpoint("accord/example", &key(1).verifying_key())
                .is_err()
        );
    }

    #[test]
    fn malformed_notes_and_bodies_are_refused() {
        for note in [
            "",
            "accord/example\n42\n",
            "accord/example\n42\nBwcH\n\n",
            "accord/example\n42\nBwcH\n\n- accord/example AAAA\n",
            "accord/example\n42\nBwcH\n\n\u{2014} accord/example AAAA",
        ] {
            assert!(SignedNote::parse(note).is_err(), "{note:?}");
        }
        for body in [
            "\n42\nBwcH\n",
            "o\n042\nBwcH\n",
            "o\n-1\nBwcH\n",
            "o\n1\nnot base64\n",
            "o\n1\n",
        ] {
            assert!(Checkpoint::parse(body).is_err(), "{body:?}");
        }
    }
}
