//! Crash cycles: start the server as a child process, load it from 8
//! clients, kill it with SIGKILL at a random moment, let the caller do what
//! a crash does to the machine (nothing, or a power cut), restart it on the
//! same data directory, and check that the log verifies clean, every
//! acknowledged append is at its position, positions are gap-free, the
//! read models equal a fresh rebuild, and the Merkle tree is consistent with
//! every checkpoint the server signed before the crash.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use accord_proto::v1::{
    self, admin_client::AdminClient, agreement_service_client::AgreementServiceClient,
    event_log_client::EventLogClient, transparency_client::TransparencyClient,
};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::child::ChildServer;
use crate::*;

const CLIENTS: usize = 8;

/// What clients were told: command id -> (agreement, version, position), over every cycle.
type Acknowledged = Arc<Mutex<HashMap<String, (String, u64, u64)>>>;

/// A small deterministic generator, seeded per run and printed, so a failing
/// run can be repeated with ACCORD_CRASH_SEED.
pub struct Random(pub u64);

impl Random {
    /// A number below `bound`.
    pub fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

/// Every agreement view and portfolio, once the read models reach `head`.
async fn read_models(
    channel: Channel,
    head: u64,
) -> (Vec<v1::Agreement>, Vec<v1::CountryPortfolio>) {
    let mut client = AgreementServiceClient::new(channel);
    let mut agreements = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_agreements(v1::ListAgreementsRequest {
                page_size: 1_000,
                page_token: token.clone(),
                min_position: head,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        agreements.extend(page.agreements);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let portfolios = client
        .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position: head })
        .await
        .expect("portfolios")
        .into_inner()
        .portfolios;
    (agreements, portfolios)
}

async fn rebuild(channel: Channel) {
    let mut stream = AdminClient::new(channel)
        .rebuild_projections(v1::RebuildProjectionsRequest { names: vec![] })
        .await
        .expect("rebuild")
        .into_inner();
    let mut done = false;
    while let Some(progress) = stream.next().await {
        done = progress.expect("progress").done;
    }
    assert!(done, "the rebuild finished");
}

/// How a run of crash cycles went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashSummary {
    /// Cycles survived.
    pub cycles: usize,
    /// Appends acknowledged over every cycle, each found at its position.
    pub acknowledged: usize,
    /// Events in the log at the end.
    pub events: u64,
}

/// The number of cycles from the environment variable `variable` (5 by default).
pub fn cycles_from_env(variable: &str) -> usize {
    std::env::var(variable)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(5)
}

/// The seed from `ACCORD_CRASH_SEED`, or the clock; printed so that a
/// failing run can be repeated.
pub fn seed_from_env() -> u64 {
    std::env::var("ACCORD_CRASH_SEED")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |now| now.as_nanos() as u64)
                | 1
        })
}

/// Runs `cycles` crash cycles of `binary` on `data_dir` with the server
/// flags `args`; `after_kill` runs once the killed process is reaped,
/// before the restart.
pub async fn crash_cycles(
    binary: &Path,
    data_dir: &Path,
    args: &[String],
    cycles: usize,
    seed: u64,
    mut after_kill: impl FnMut(usize),
) -> CrashSummary {
    println!("{cycles} crash cycles, ACCORD_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let acknowledged: Acknowledged = Arc::default();
    let mut server = ChildServer::start_with_args(binary, data_dir, args).await;
    let mut head = 0;
    for cycle in 0..cycles {
        let kill_after = 50 + random.below(1_500) as usize;
        let (count_sender, mut count) = tokio::sync::watch::channel(0usize);
        let count_sender = Arc::new(count_sender);
        let mut clients = Vec::new();
        for client in 0..CLIENTS {
            let channel = connect(server.grpc_addr()).await;
            let acknowledged = acknowledged.clone();
            let count_sender = count_sender.clone();
            let small_batches = client % 2 == 0;
            clients.push(tokio::spawn(async move {
                let mut agreements = AgreementServiceClient::new(channel);
                let agreement_id = format!("cycle{cycle}-client{client}");
                let mut announce = announce_wabtec(&agreement_id);
                announce.quantity = Some(10_000_000);
                let record = |result: &v1::AppendResult, command_id: String| {
                    acknowledged.lock().expect("lock").insert(
                        command_id,
                        (result.agreement_id.clone(), result.version, result.position),
                    );
                    count_sender.send_modify(|count| *count += 1);
                };
                let Ok(result) = agreements.announce(announce).await else {
                    return;
                };
                record(&result.into_inner(), format!("{agreement_id}/announce"));
                let Ok(result) = agreements.sign(sign(&agreement_id)).await else {
                    return;
                };
                record(&result.into_inner(), format!("{agreement_id}/sign"));
                // Bounded: the kill comes long before this runs out.
                for step in 0..50_000u64 {
                    if small_batches {
                        let ids: Vec<String> = (0..5)
                            .map(|offset| format!("{agreement_id}/b{step}-{offset}"))
                            .collect();
                        let commands = ids
                            .iter()
                            .map(|id| {
                                command(v1::command::Command::RecordDelivery(deliver(
                                    &agreement_id,
                                    id,
                                    1,
                                )))
                            })
                            .collect();
                        let Ok(response) =
                            agreements.execute(v1::ExecuteRequest { commands }).await
                        else {
                            return;
                        };
                        for (result, id) in response.into_inner().results.iter().zip(ids) {
                            record(result, id);
                        }
                    } else {
                        let id = format!("{agreement_id}/d{step}");
                        let Ok(result) = agreements
                            .record_delivery(deliver(&agreement_id, &id, 1))
                            .await
                        else {
                            return;
                        };
                        record(&result.into_inner(), id);
                    }
                }
            }));
        }
        // The checkpoints the server signs under load, until it dies.
        let checkpoints = tokio::spawn(watch_checkpoints(connect(server.grpc_addr()).await));
        let target = acknowledged.lock().expect("lock").len() + kill_after;
        count
            .wait_for(|_| {
                acknowledged
                    .lock()
                    .map(|acks| acks.len() >= target)
                    .unwrap_or(true)
            })
            .await
            .expect("load runs");
        server.kill().await;
        for client in clients {
            client.await.expect("client ends");
        }
        let checkpoints = checkpoints.await.expect("the checkpoint watch ends");
        after_kill(cycle);

        server = ChildServer::start_with_args(binary, data_dir, args).await;
        let channel = connect(server.grpc_addr()).await;
        let checked = verify_clean(channel.clone()).await;
        let proven = consistent_with(channel.clone(), data_dir, &checkpoints, cycle).await;
        let events = read_all(EventLogClient::new(channel.clone())).await;
        assert_eq!(checked, events.len() as u64);
        assert_gap_free(&events, &format!("cycle {cycle}"));
        let by_command = events_by_command(&events);
        for (command_id, (agreement_id, version, position)) in
            acknowledged.lock().expect("lock").iter()
        {
            let event = by_command
                .get(command_id.as_str())
                .unwrap_or_else(|| panic!("cycle {cycle}: acknowledged {command_id} lost"));
            assert_eq!(
                (&event.agreement_id, event.version, event.position),
                (agreement_id, *version, *position)
            );
        }
        head = events.len() as u64;
        let incremental = read_models(channel.clone(), head).await;
        rebuild(channel.clone()).await;
        let rebuilt = read_models(channel, head).await;
        assert_eq!(
            incremental, rebuilt,
            "cycle {cycle}: read models equal a fresh rebuild"
        );
        println!(
            "cycle {cycle}: killed after {kill_after} more acks; {head} events, all acknowledged present, verified, read models equal a rebuild, the tree extends the {proven} checkpoints signed before"
        );
    }
    server.kill().await;
    let acknowledged = acknowledged.lock().expect("lock").len();
    CrashSummary {
        cycles,
        acknowledged,
        events: head,
    }
}

/// Asks for the signed checkpoint every few milliseconds until the server
/// stops answering; returns every note it signed meanwhile.
async fn watch_checkpoints(channel: Channel) -> Vec<String> {
    let mut client = TransparencyClient::new(channel);
    let mut notes: Vec<String> = Vec::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(5));
    loop {
        tick.tick().await;
        match client.get_checkpoint(v1::GetCheckpointRequest {}).await {
            Ok(answer) => {
                let note = answer.into_inner().note;
                if notes.last() != Some(&note) {
                    notes.push(note);
                }
            }
            Err(_) => return notes,
        }
    }
}

/// Checks that the restarted server's tree extends every checkpoint in
/// `notes` (each verified with the server's key): its size is durable, and
/// a consistency proof joins it to the tree now. Returns how many.
async fn consistent_with(
    channel: Channel,
    data_dir: &Path,
    notes: &[String],
    cycle: usize,
) -> usize {
    let key: [u8; 32] = accord_server::hex::decode(&public_key_of(data_dir))
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let mut client = TransparencyClient::new(channel);
    let now = client
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .expect("checkpoint")
        .into_inner()
        .note;
    let open = |note: &str| {
        let name = note
            .rsplit("\n\u{2014} ")
            .next()
            .and_then(|line| line.split(' ').next())
            .expect("a signature line")
            .to_owned();
        crate::rfc9162::open_checkpoint(note, &name, &key)
            .unwrap_or_else(|error| panic!("cycle {cycle}: a checkpoint does not verify: {error}"))
    };
    let (_, size, root) = open(&now);
    for note in notes {
        let (_, held_size, held_root) = open(note);
        assert!(
            held_size <= size,
            "cycle {cycle}: a checkpoint of {held_size} positions was signed, only {size} survived the crash"
        );
        let proof = client
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size: held_size,
                second_size: size,
            })
            .await
            .expect("a consistency proof")
            .into_inner();
        let hashes = crate::rfc9162::hashes(&proof.hashes);
        accord_tlog::verify_consistency(held_size, size, &held_root, &root, &hashes)
            .unwrap_or_else(|error| {
                panic!("cycle {cycle}: the tree after the crash does not extend the checkpoint of {held_size} signed before it: {error}")
            });
    }
    notes.len()
}
