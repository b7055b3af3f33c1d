//! Proves a log intact: every record's checksum and decoding, gap-free
//! positions, the hash chain, per-agreement versions, the stream and
//! command indexes, and the Merkle tree (its root rebuilt from the records
//! against the one its stored tiles give). Works on any backend through the [`EventLog`] trait. The
//! indexes are compared as digests (see [`crate::tree::digest`]) and looked
//! up record by record only to say what is wrong.

use std::collections::HashMap;

use crate::{
    ChainBreak, ChainHead, CheckpointKeys, DigestKeys, EventLog, IndexDigest, RawRecord,
    StoreError, decode_record,
};

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
        note(&mut report, &mut progress, head, found);
    }
    let digest_keys = DigestKeys::default();
    // The indexes are scanned (on the blocking pool) while the records are
    // read and checked; a record's entries are looked up one by one only
    // when the two digests disagree, to say which are wrong.
    let (indexed, records) = tokio::join!(
        log.index_digest(digest_keys.clone(), head),
        check_records(
            log,
            keys,
            checkpoint.as_ref(),
            head,
            &digest_keys,
            &mut report,
            &mut progress
        ),
    );
    let records = records?;
    match indexed? {
        Some(indexed)
            if indexed.same_streams(&records.digest) && indexed.same_commands(&records.digest) => {}
        indexed => {
            look_up_indexes(log, head, indexed, &records, &mut report, &mut progress).await?;
        }
    }
    if let Some(rebuilt) = &records.tree
        && rebuilt.size() == head
    {
        let stored = log.tree_root(head).await?;
        if stored != rebuilt.root() {
            let problem = format!(
                "the Merkle tree's stored tiles give root {} at size {head}, the records give {}",
                crate::hex::encode(&stored[..8]),
                crate::hex::encode(&rebuilt.root()[..8])
            );
            note(&mut report, &mut progress, head, vec![problem]);
        }
    }
    let chain = records.chain;
    let next = chain.next_position();
    if next <= head {
        let missing = format!("positions {next}..{head} are missing");
        report.problem_count += 1;
        report.problems.push(missing.clone());
        progress(report.checked, head, &[missing]);
    }
    Ok(report)
}

/// What the pass over the records left.
struct RecordsChecked {
    chain: ChainHead,
    /// The index entries the records call for.
    digest: IndexDigest,
    /// Records that could not be decoded: their entries are unknown.
    undecodable: u64,
    /// The Merkle tree rebuilt from the records; `None` past a gap (a
    /// quarantined message's leaf is not among the records).
    tree: Option<accord_tlog::Frontier>,
}

/// Checks every record up to `head` (checksum, decoding, positions, hash
/// chain, signed checkpoint, versions) and sums the index entries they
/// call for. The next batch is read while one is checked.
async fn check_records(
    log: &dyn EventLog,
    keys: &CheckpointKeys,
    checkpoint: Option<&crate::SignedCheckpoint>,
    head: u64,
    digest_keys: &DigestKeys,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(u64, u64, &[String]),
) -> Result<RecordsChecked, StoreError> {
    let mut checked = RecordsChecked {
        chain: ChainHead::EMPTY,
        digest: IndexDigest::default(),
        undecodable: 0,
        tree: Some(accord_tlog::Frontier::default()),
    };
    let mut versions: HashMap<String, u64> = HashMap::new();
    let (batches_sender, mut batches) = tokio::sync::mpsc::channel(1);
    let read_ahead = read_batches(log, head, batches_sender);
    let check = async {
        while let Some(records) = batches.recv().await {
            let mut found = Vec::new();
            for record in records? {
                let chain = &mut checked.chain;
                if let Err(ChainBreak::Gap {
                    expected,
                    found: at,
                }) = chain.check_position(record.position)
                {
                    checked.tree = None;
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
                if let Some(tree) = &mut checked.tree {
                    tree.push(accord_tlog::leaf_hash(&record.bytes));
                }
                let decoded = match decode_record(&record.bytes) {
                    Ok(decoded) => decoded,
                    Err(error) => {
                        found.push(format!("position {}: {error}", record.position));
                        chain.advance(record.position, &record.bytes);
                        checked.undecodable += 1;
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
                checked.digest.add_stream(
                    digest_keys,
                    event.agreement_id.as_bytes(),
                    event.version,
                    record.position,
                );
                checked.digest.add_command(
                    digest_keys,
                    &event.metadata.command_id,
                    record.position,
                );
            }
            note(report, progress, head, found);
        }
        Ok::<_, StoreError>(())
    };
    let ((), checking) = tokio::join!(read_ahead, check);
    checking?;
    Ok(checked)
}

/// Sends the records up to `head` in batches, reading the next while the
/// last is checked; stops after an error or when the receiver is gone.
async fn read_batches(
    log: &dyn EventLog,
    head: u64,
    batches: tokio::sync::mpsc::Sender<Result<Vec<RawRecord>, StoreError>>,
) {
    let mut from = 1;
    while from <= head {
        let mut records = log.read_raw(from, VERIFY_BATCH).await;
        if let Ok(records) = &mut records {
            records.retain(|record| record.position <= head);
        }
        let next = match &records {
            Ok(records) => records.last().map(|record| record.position + 1),
            Err(_) => None,
        };
        if batches.send(records).await.is_err() {
            return;
        }
        match next {
            Some(next) => from = next,
            None => return,
        }
    }
}

/// Looks up each record's stream and command index entries, to say which
/// are wrong after the digests disagreed (or when the backend has none).
async fn look_up_indexes(
    log: &dyn EventLog,
    head: u64,
    indexed: Option<IndexDigest>,
    records: &RecordsChecked,
    report: &mut VerifyReport,
    progress: &mut impl FnMut(u64, u64, &[String]),
) -> Result<(), StoreError> {
    let listed_before = report.problem_count;
    let mut from = 1;
    while from <= head {
        let batch = log.read_raw(from, VERIFY_BATCH).await?;
        let Some(last) = batch.last() else { break };
        from = last.position + 1;
        let mut found = Vec::new();
        for record in batch.iter().filter(|record| record.position <= head) {
            let Ok(decoded) = decode_record(&record.bytes) else {
                continue;
            };
            let event = &decoded.event;
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
        note(report, progress, head, found);
    }
    // Every record's entries are right, yet the digests differ: the index
    // holds entries that no record accounts for.
    if let Some(indexed) = indexed
        && report.problem_count == listed_before
        && records.undecodable == 0
    {
        let mut found = Vec::new();
        if !indexed.same_streams(&records.digest) {
            found.push(format!(
                "the stream index holds {} entries for positions up to {head}; the records account for {}",
                indexed.stream_entries, records.digest.stream_entries
            ));
        }
        if !indexed.same_commands(&records.digest) {
            found.push(format!(
                "the command index holds {} entries for positions up to {head}; the records account for {}",
                indexed.command_entries, records.digest.command_entries
            ));
        }
        note(report, progress, head, found);
    }
    Ok(())
}

/// Counts and lists (up to the limit) what a batch found, and reports it.
fn note(
    report: &mut VerifyReport,
    progress: &mut impl FnMut(u64, u64, &[String]),
    head: u64,
    found: Vec<String>,
) {
    report.problem_count += found.len() as u64;
    let room = MAX_LISTED_PROBLEMS.saturating_sub(report.problems.len());
    report.problems.extend(found.iter().take(room).cloned());
    progress(report.checked, head, &found);
}
