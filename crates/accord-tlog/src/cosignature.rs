//! Witness cosignatures, C2SP `tlog-cosignature` (version 1, Ed25519): a
//! witness signs `cosignature/v1\ntime <seconds>\n` followed by the
//! checkpoint's body, attesting that at that time it had verified the
//! checkpoint to be consistent with every earlier one it saw of that log.
//! The signature line is `— <witness name> <base64(key id ‖ time (u64 BE) ‖
//! signature)>`, the key id the first four bytes of SHA-256(name ‖ 0x0A ‖
//! 0x04 ‖ public key).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::note::{NoteError, SignedNote};

/// The signature type byte of cosignature/v1 in signed notes.
const COSIGNATURE_V1: u8 = 0x04;

/// The key id of a witness key called `name`.
pub fn witness_key_id(name: &str, key: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update([b'\n', COSIGNATURE_V1]);
    hasher.update(key.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

fn signed_message(time: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// The cosignature line of witness `name` over a checkpoint `body` at
/// `time` (seconds since the Unix epoch), ending with a newline.
pub fn cosign(body: &str, name: &str, key: &SigningKey, time: u64) -> String {
    let signature = key.sign(&signed_message(time, body));
    let mut blob = witness_key_id(name, &key.verifying_key()).to_vec();
    blob.extend_from_slice(&time.to_be_bytes());
    blob.extend_from_slice(&signature.to_bytes());
    format!("\u{2014} {name} {}\n", STANDARD.encode(blob))
}

/// The time of witness `name`'s cosignature on `note`, once it verifies
/// with `key`.
pub fn verify_cosignature(
    note: &SignedNote,
    name: &str,
    key: &VerifyingKey,
) -> Result<u64, NoteError> {
    let id = witness_key_id(name, key);
    let signature = note
        .signatures
        .iter()
        .find(|signature| signature.name == name && signature.key_id == id)
        .ok_or_else(|| NoteError::Unsigned(name.to_owned()))?;
    let bad = || NoteError::BadSignature(name.to_owned());
    if signature.signature.len() != 8 + 64 {
        return Err(bad());
    }
    let time = u64::from_be_bytes(signature.signature[..8].try_into().map_err(|_| bad())?);
    let bytes: [u8; 64] = signature.signature[8..].try_into().map_err(|_| bad())?;
    key.verify_strict(
        &signed_message(time, &note.body),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| bad())?;
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Checkpoint;

    #[test]
    fn a_cosignature_verifies_and_a_changed_checkpoint_does_not() {
        let log = SigningKey::from_bytes(&[1; 32]);
        let witness = SigningKey::from_bytes(&[2; 32]);
        let checkpoint = Checkpoint {
            origin: "accord/example".into(),
            size: 10,
            root: [3; 32],
        };
        let note = checkpoint.sign("accord/example", &log);
        let cosigned = format!(
            "{note}{}",
            cosign(&checkpoint.body(), "witness/one", &witness, 1_700_000_000)
        );
        let parsed = SignedNote::parse(&cosigned).expect("parses");
        assert_eq!(
            verify_cosignature(&parsed, "witness/one", &witness.verifying_key()),
            Ok(1_700_000_000)
        );
        parsed
            .verify_checkpoint("accord/example", &log.verifying_key())
            .expect("the log's own signature still verifies");
        let other = cosigned.replacen("\n10\n", "\n11\n", 1);
        let parsed = SignedNote::parse(&other).expect("parses");
        assert!(verify_cosignature(&parsed, "witness/one", &witness.verifying_key()).is_err());
        assert!(
            verify_cosignature(&parsed, "witness/one", &log.verifying_key()).is_err(),
            "another key"
        );
    }
}
