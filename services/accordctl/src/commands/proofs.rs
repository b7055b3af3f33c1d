//! `accordctl checkpoint`, `check-consistency`, `prove` and `check-proof`:
//! a client's side of the transparency log. Every note and proof the server
//! gives is verified here against the server's public key (`--key`), never
//! taken on trust.

use std::path::Path;
use std::process::ExitCode;

use accord_proto::v1::{self, transparency_client::TransparencyClient};
use accord_tlog::{Checkpoint, Hash, SignedNote, leaf_hash, verify_consistency, verify_inclusion};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::VerifyingKey;
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::Outcome;
use crate::connection::Grpc;

/// The server's public key from `--key` (64 hex digits).
pub(crate) fn public_key(hex: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = accord_server::hex::decode(hex.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| format!("--key {hex:?}: not a public key (64 hex digits)"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|error| format!("--key: {error}"))
}

/// The checkpoint of `note` once its signature by `key` verifies; the key's
/// name is `origin`, or the name of the note's first signature.
pub(crate) fn open(
    note: &str,
    key: &VerifyingKey,
    origin: Option<&str>,
) -> Result<Checkpoint, String> {
    let parsed = SignedNote::parse(note).map_err(|error| error.to_string())?;
    let name = match origin {
        Some(origin) => origin.to_owned(),
        None => parsed.signatures[0].name.clone(),
    };
    let checkpoint = parsed
        .verify_checkpoint(&name, key)
        .map_err(|error| error.to_string())?;
    if checkpoint.origin != name {
        return Err(format!(
            "the checkpoint is of log {:?}, signed as {name:?}",
            checkpoint.origin
        ));
    }
    Ok(checkpoint)
}

fn hashes(proof: &[Vec<u8>]) -> Result<Vec<Hash>, String> {
    proof
        .iter()
        .map(|hash| {
            hash.as_slice()
                .try_into()
                .map_err(|_| "a proof hash is not 32 bytes".to_owned())
        })
        .collect()
}

async fn latest(
    channel: Grpc,
    key: &VerifyingKey,
    origin: Option<&str>,
) -> Result<(String, Checkpoint), String> {
    let note = TransparencyClient::new(channel)
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner()
        .note;
    let checkpoint =
        open(&note, key, origin).map_err(|error| format!("the server's checkpoint: {error}"))?;
    Ok((note, checkpoint))
}

fn describe(checkpoint: &Checkpoint) -> String {
    format!(
        "{} at {} positions, root {}",
        checkpoint.origin,
        checkpoint.size,
        STANDARD.encode(checkpoint.root)
    )
}

/// `accordctl checkpoint`: the latest checkpoint, verified, to standard
/// output or `out`.
pub(crate) async fn checkpoint(
    channel: Grpc,
    key: &VerifyingKey,
    origin: Option<&str>,
    out: Option<&Path>,
) -> Outcome {
    let (note, checkpoint) = latest(channel, key, origin).await?;
    match out {
        Some(path) => std::fs::write(path, &note)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))?,
        None => print!("{note}"),
    }
    eprintln!("verified: {}", describe(&checkpoint));
    Ok(ExitCode::SUCCESS)
}

/// `accordctl check-consistency HELD`: that the server's log extends the
/// checkpoint held in `held`; exit 1 with what is wrong when it does not (a
/// rollback, a rewritten history).
pub(crate) async fn check_consistency(
    channel: Grpc,
    key: &VerifyingKey,
    held_path: &Path,
    update: bool,
) -> Outcome {
    let held_note = std::fs::read_to_string(held_path)
        .map_err(|error| format!("cannot read {}: {error}", held_path.display()))?;
    let held =
        open(&held_note, key, None).map_err(|error| format!("{}: {error}", held_path.display()))?;
    let (note, now) = latest(channel.clone(), key, Some(&held.origin)).await?;
    if now.size < held.size {
        eprintln!(
            "ROLLBACK: the server's log has {} positions; the checkpoint you hold ({}) has {}",
            now.size,
            held_path.display(),
            held.size
        );
        return Ok(ExitCode::from(1));
    }
    let proof = TransparencyClient::new(channel)
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            first_size: held.size,
            second_size: now.size,
        })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    if let Err(error) = verify_consistency(
        held.size,
        now.size,
        &held.root,
        &now.root,
        &hashes(&proof.hashes)?,
    ) {
        eprintln!(
            "NOT AN EXTENSION: the server's log ({}) does not extend the checkpoint you hold ({}): {error}; its history was rewritten",
            describe(&now),
            describe(&held)
        );
        return Ok(ExitCode::from(1));
    }
    println!("consistent: {} -> {}", held.size, now.size);
    if update {
        std::fs::write(held_path, &note)
            .map_err(|error| format!("cannot write {}: {error}", held_path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `accordctl prove AGREEMENT_ID`: a bundle (JSON) of the agreement's
/// records, their inclusion proofs and the checkpoint they lead to, which
/// `check-proof` verifies with no server.
pub(crate) async fn prove(channel: Grpc, key: &VerifyingKey, agreement_id: &str) -> Outcome {
    let (note, checkpoint) = latest(channel.clone(), key, None).await?;
    let mut history = accord_proto::v1::event_log_client::EventLogClient::new(channel.clone())
        .read_agreement_history(v1::ReadAgreementHistoryRequest {
            agreement_id: agreement_id.to_owned(),
            from_version: 1,
        })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    let mut transparency = TransparencyClient::new(channel);
    let mut entries = Vec::new();
    while let Some(event) = history.next().await {
        let event = event.map_err(|status| status.message().to_owned())?;
        if event.position > checkpoint.size {
            break;
        }
        let proof = transparency
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                position: event.position,
                tree_size: checkpoint.size,
            })
            .await
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        entries.push(json!({
            "position": event.position,
            "version": event.version,
            "leaf": STANDARD.encode(&proof.leaf),
            "hashes": proof.hashes.iter().map(|hash| STANDARD.encode(hash)).collect::<Vec<_>>(),
        }));
    }
    let bundle = json!({
        "agreement_id": agreement_id,
        "checkpoint": note,
        "entries": entries,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&bundle).map_err(|error| error.to_string())?
    );
    eprintln!(
        "{} records of {agreement_id} proven in {}",
        entries.len(),
        describe(&checkpoint)
    );
    Ok(ExitCode::SUCCESS)
}

/// `accordctl check-proof BUNDLE`: verifies a bundle of `prove` offline:
/// the checkpoint's signature, each record's inclusion, and that each
/// record is the agreement's event it claims to be.
pub(crate) fn check_proof(bundle_path: &Path, key: &VerifyingKey) -> ExitCode {
    match check_bundle(bundle_path, key) {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("NOT PROVEN: {error}");
            ExitCode::from(1)
        }
    }
}

fn check_bundle(bundle_path: &Path, key: &VerifyingKey) -> Result<String, String> {
    let text = std::fs::read_to_string(bundle_path)
        .map_err(|error| format!("cannot read {}: {error}", bundle_path.display()))?;
    let bundle: Value =
        serde_json::from_str(&text).map_err(|error| format!("not a proof bundle: {error}"))?;
    let field = |value: &Value, name: &str| -> Result<Value, String> {
        value
            .get(name)
            .cloned()
            .ok_or_else(|| format!("the bundle has no {name:?}"))
    };
    let agreement_id = field(&bundle, "agreement_id")?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let note = field(&bundle, "checkpoint")?
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let checkpoint = open(&note, key, None)?;
    let entries = field(&bundle, "entries")?;
    let entries = entries.as_array().ok_or("entries is not a list")?;
    if entries.is_empty() {
        return Err(format!("no record of {agreement_id} in the bundle"));
    }
    let mut version = 0;
    for entry in entries {
        let position = field(entry, "position")?
            .as_u64()
            .ok_or("a position is not a number")?;
        let leaf = STANDARD
            .decode(field(entry, "leaf")?.as_str().unwrap_or_default())
            .map_err(|_| format!("position {position}: the leaf is not base64"))?;
        let proof: Vec<Vec<u8>> = field(entry, "hashes")?
            .as_array()
            .ok_or("hashes is not a list")?
            .iter()
            .map(|hash| STANDARD.decode(hash.as_str().unwrap_or_default()))
            .collect::<Result<_, _>>()
            .map_err(|_| format!("position {position}: a hash is not base64"))?;
        if position == 0 {
            return Err("position 0 is not a position".into());
        }
        verify_inclusion(
            &leaf_hash(&leaf),
            position - 1,
            checkpoint.size,
            &hashes(&proof)?,
            &checkpoint.root,
        )
        .map_err(|error| format!("position {position}: {error}"))?;
        // The proven bytes are the record: what it says, not what the
        // bundle's other fields say, is what was proven.
        let record = accord_store::decode_record(&leaf)
            .map_err(|error| format!("position {position}: {error}"))?;
        let event = record.event;
        if event.agreement_id != agreement_id
            || event.position != position
            || event.version != version + 1
        {
            return Err(format!(
                "position {position} holds {} version {}, not {agreement_id} version {}",
                event.agreement_id,
                event.version,
                version + 1
            ));
        }
        version = event.version;
    }
    Ok(format!(
        "proven: {agreement_id} versions 1 to {version} are in {}",
        describe(&checkpoint)
    ))
}
