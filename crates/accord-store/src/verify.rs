//! Proves a log intact: every record's checksum and decoding, gap-free
//! positions, the hash chain, per-agreement versions, and the stream and
//! command indexes. Works on any backend through the [`EventLog`] trait.

use std::collections::HashMap;

use crate::{ChainBreak, ChainHead, CheckpointKeys, EventLog, StoreError, decode_record};

/// Records read per call.
const VERIFY_BATCH: usize = 4_096;
/// Problems listed before the rest are only counted.
const MAX_LISTED_PROBLEMS: usize = 1_000;

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records checked.
    pub checked: u64,
    /// The head the verification ran to.
    pub head_position: u64,
    /// Problems found (at most 1,000 listed; `problem_count` has them all).
    pub problems: Vec<String>,
    /// Every problem found.
    pub problem_count: u64,
}

/// Verifies `log` up to its current head, and its signed checkpoint
/// against `keys`. `progress` is called after each batch with the records
/// checked so far, the head, and the problems found in that batch.
pub async fn verify_log(
    log: &dyn EventLog,
    keys: &CheckpointKeys,
    mut progress: impl FnMut(u64, u64, &[String]),
) -> Result<VerifyReport, StoreError> {
    // Read before the head: the head is at or beyond it.
    let checkpoint = log.checkpoint();
    let head = log.head();
    let mut report = VerifyReport {
        head_position: head,
        ..VerifyReport::default()
    };
    let mut found = Vec::new();
    match &checkpoint {
        None if head > 0 => found.push(format!("no signed checkpoint covers positions 1..{head}")),
        None => {}
        Some(checkpoint) => {
            if let Err(error) = checkpoint.check_signature(keys) {
                found.push(format!("signed checkpoint: {error}"));
            }
        }
    }
    if !found.is_empty() {
        report.problem_count += found.len() as u64;
        report.problems.extend(found.iter().cloned());
        progress(0, head, &found);
    }
    let mut chain = ChainHead::EMPTY;
    let mut versions: HashMap<String, u64> = HashMap::new();
    while chain.next_position() <= head {
        let records = log.read_raw(chain.next_position(), VERIFY_BATCH).await?;
        if records.is_empty() {
            break;
        }
        let mut found = Vec::new();
        for record in records {
            if record.position > head {
                break;
            }
            if let Err(ChainBreak::Gap {
                expected,
                found: at,
            }) = chain.check_position(record.position)
            {
                let quarantined = log.quarantined_between(expected, at - 1).await?;
                found.push(if quarantined == at - expected {
                    format!(
                        "positions {expected}..{}: quarantined stream messages, not valid records (see GetStats and the server log)",
                        at - 1
                    )
                } else {
                    format!("positions {expected}..{} are missing", at - 1)
                });
            }
            report.checked += 1;
            let decoded = match decode_record(&record.bytes) {
                Ok(decoded) => decoded,
                Err(error) => {
                    found.push(format!("position {}: {error}", record.position));
                    chain.advance(record.position, &record.bytes);
                    continue;
                }
            };
            let event = &decoded.event;
            if let Err(ChainBreak::Link { carried, expected }) =
                chain.check_link(&decoded.prev_hash)
            {
                found.push(format!(
                    "position {}: hash chain broken: the record carries {}, the previous record hashes to {}",
                    record.position,
                    crate::hex::encode(&carried[..8]),
                    crate::hex::encode(&expected[..8])
                ));
            }
            chain.advance(record.position, &record.bytes);
            if let Some(checkpoint) = checkpoint.filter(|c| c.position == record.position) {
                let at = ChainHead {
                    position: record.position,
                    hash: chain.hash,
                };
                if let Err(error) = checkpoint.check(&at, keys) {
                    found.push(format!("signed checkpoint: {error}"));
                }
            }
            if event.position != record.position {
                found.push(format!(
                    "position {}: the record says position {}",
                    record.position, event.position
                ));
            }
            let last_version = versions.entry(event.agreement_id.clone()).or_default();
            if event.version != *last_version + 1 {
                found.push(format!(
                    "position {}: {} version {} follows version {}",
                    record.position, event.agreement_id, event.version, last_version
                ));
            }
            *last_version = event.version;
            if log.locate(&event.agreement_id, event.version).await? != Some(record.position) {
                found.push(format!(
                    "position {}: the stream index of {} version {} does not point at it",
                    record.position, event.agreement_id, event.version
                ));
            }
            let indexed = log.command_position(&event.metadata.command_id).await?;
            if indexed != Some(record.position) {
                found.push(format!(
                    "position {}: the command index of {:?} does not point at it",
                    record.position, event.metadata.command_id
                ));
            }
        }
        report.problem_count += found.len() as u64;
        let room = MAX_LISTED_PROBLEMS.saturating_sub(report.problems.len());
        report.problems.extend(found.iter().take(room).cloned());
        progress(report.checked, head, &found);
    }
    let next = chain.next_position();
    if next <= head {
        let missing = format!("positions {next}..{head} are missing");
        report.problem_count += 1;
        report.problems.push(missing.clone());
        progress(report.checked, head, &[missing]);
    }
    Ok(report)
}
