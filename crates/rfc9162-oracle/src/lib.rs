//! RFC 9162 section 2.1 and the C2SP signed-note and cosignature formats
//! written out literally and slowly, for the tests: an implementation
//! independent of the server's (`accord-tlog`), against which its roots,
//! proofs, checkpoints and cosignatures are checked.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

fn sha(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn largest_power_below(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// `MTH(D[n])` over the leaves' bytes (section 2.1.1).
pub fn mth(leaves: &[Vec<u8>]) -> Hash {
    match leaves.len() {
        0 => sha(&[]),
        1 => sha(&[&[0], &leaves[0]]),
        n => {
            let k = largest_power_below(n);
            sha(&[&[1], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

/// The hash of one leaf.
pub fn leaf(bytes: &[u8]) -> Hash {
    sha(&[&[0], bytes])
}

/// `PATH(m, D[n])` (section 2.1.3.1).
pub fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = largest_power_below(n);
    if m < k {
        let mut proof = path(m, &leaves[..k]);
        proof.push(mth(&leaves[k..]));
        proof
    } else {
        let mut proof = path(m - k, &leaves[k..]);
        proof.push(mth(&leaves[..k]));
        proof
    }
}

/// `PROOF(m, D[n])` (section 2.1.4.1); empty when m is 0 or n.
pub fn proof(m: usize, leaves: &[Vec<u8>]) -> Vec<Hash> {
    if m == 0 || m == leaves.len() {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

fn subproof(m: usize, leaves: &[Vec<u8>], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole { Vec::new() } else { vec![mth(leaves)] };
    }
    let k = largest_power_below(n);
    if m <= k {
        let mut proof = subproof(m, &leaves[..k], whole);
        proof.push(mth(&leaves[k..]));
        proof
    } else {
        let mut proof = subproof(m - k, &leaves[k..], false);
        proof.push(mth(&leaves[..k]));
        proof
    }
}

/// Proof hashes as the wire carries them (bytes), as hashes.
pub fn hashes(proof: &[Vec<u8>]) -> Vec<Hash> {
    proof
        .iter()
        .map(|hash| {
            hash.as_slice()
                .try_into()
                .expect("a proof hash is 32 bytes")
        })
        .collect()
}

/// A checkpoint read from a signed note after its Ed25519 signature by
/// `public_key` under `name` verified: (origin, size, root).
pub fn open_checkpoint(
    note: &str,
    name: &str,
    public_key: &[u8; 32],
) -> Result<(String, u64, Hash), String> {
    let split = note.rfind("\n\n").ok_or("no blank line")?;
    let body = &note[..=split];
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|e| e.to_string())?;
    let mut id_input = name.as_bytes().to_vec();
    id_input.extend_from_slice(&[b'\n', 0x01]);
    id_input.extend_from_slice(public_key);
    let key_id = &sha(&[&id_input])[..4];
    let mut verified = false;
    for line in note[split + 2..].lines() {
        let Some(rest) = line.strip_prefix("\u{2014} ") else {
            return Err(format!("not a signature line: {line:?}"));
        };
        let (signer, blob) = rest.split_once(' ').ok_or("no signature")?;
        let blob = STANDARD.decode(blob).map_err(|e| e.to_string())?;
        if signer == name && blob.len() == 68 && &blob[..4] == key_id {
            let signature =
                ed25519_dalek::Signature::from_slice(&blob[4..]).map_err(|e| e.to_string())?;
            key.verify_strict(body.as_bytes(), &signature)
                .map_err(|_| "the signature does not verify".to_owned())?;
            verified = true;
        }
    }
    if !verified {
        return Err(format!("no signature by {name}"));
    }
    let mut lines = body.lines();
    let origin = lines.next().ok_or("no origin")?.to_owned();
    let size = lines
        .next()
        .and_then(|size| size.parse().ok())
        .ok_or("no size")?;
    let root = lines
        .next()
        .and_then(|root| STANDARD.decode(root).ok())
        .and_then(|root| root.try_into().ok())
        .ok_or("no root")?;
    Ok((origin, size, root))
}

/// The time of witness `name`'s C2SP cosignature (v1) on `note`, once its
/// Ed25519 signature over `cosignature/v1\ntime <t>\n` and the note's body
/// verifies with `public_key`.
pub fn open_cosignature(note: &str, name: &str, public_key: &[u8; 32]) -> Result<u64, String> {
    let split = note.rfind("\n\n").ok_or("no blank line")?;
    let body = &note[..=split];
    let key = ed25519_dalek::VerifyingKey::from_bytes(public_key).map_err(|e| e.to_string())?;
    let mut id_input = name.as_bytes().to_vec();
    id_input.extend_from_slice(&[b'\n', 0x04]);
    id_input.extend_from_slice(public_key);
    let key_id = &sha(&[&id_input])[..4];
    for line in note[split + 2..].lines() {
        let rest = line
            .strip_prefix("\u{2014} ")
            .ok_or("not a signature line")?;
        let (signer, blob) = rest.split_once(' ').ok_or("no signature")?;
        let blob = STANDARD.decode(blob).map_err(|e| e.to_string())?;
        if signer != name || blob.len() != 4 + 8 + 64 || &blob[..4] != key_id {
            continue;
        }
        let time = u64::from_be_bytes(blob[4..12].try_into().expect("8 bytes"));
        let message = format!("cosignature/v1\ntime {time}\n{body}");
        let signature =
            ed25519_dalek::Signature::from_slice(&blob[12..]).map_err(|e| e.to_string())?;
        key.verify_strict(message.as_bytes(), &signature)
            .map_err(|_| "the cosignature does not verify".to_owned())?;
        return Ok(time);
    }
    Err(format!("no cosignature by {name}"))
}
