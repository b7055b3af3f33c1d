//! The requests every system gets: one agreement per client, announced and
//! signed, then deliveries of one unit each.

use std::net::SocketAddr;

use accord_proto::v1;
use accord_proto::v1::agreement_service_client::AgreementServiceClient;
use tonic::transport::Channel;

/// Opens `count` connections to `addr`.
pub(crate) async fn connect_many(addr: SocketAddr, count: usize) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| error.to_string())?
            .connect()
            .await
            .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

fn at() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: 1_758_585_600,
        nanos: 0,
    })
}

fn meta(command_id: String) -> Option<v1::CommandMeta> {
    Some(v1::CommandMeta {
        command_id,
        ..Default::default()
    })
}

/// Announces a locomotive order big enough for any run.
pub(crate) fn announce(agreement_id: &str) -> v1::AnnounceRequest {
    v1::AnnounceRequest {
        meta: meta(format!("{agreement_id}/announce")),
        agreement_id: agreement_id.to_owned(),
        title: "Kazakhstan contract for 300 Wabtec freight locomotives".into(),
        kind: v1::AgreementKind::Procurement as i32,
        buyer: Some(v1::Party {
            name: "Kazakhstan".into(),
            country: "KZ".into(),
        }),
        supplier: Some(v1::Party {
            name: "Wabtec Corp.".into(),
            country: "US".into(),
        }),
        sector: "rail".into(),
        product: "freight locomotive".into(),
        quantity: Some(u64::MAX / 2),
        value: Some(v1::Money {
            currency: "USD".into(),
            minor_units: 420_000_000_000,
        }),
        announced_at: at(),
        venue: "80th UN General Assembly, New York".into(),
        source: "benchmark".into(),
    }
}

/// Signs the agreement.
pub(crate) fn sign(agreement_id: &str) -> v1::SignRequest {
    v1::SignRequest {
        meta: meta(format!("{agreement_id}/sign")),
        agreement_id: agreement_id.to_owned(),
        signed_at: at(),
        signatories: vec!["Government of Kazakhstan".into(), "Wabtec Corp.".into()],
        value: None,
        quantity: None,
    }
}

/// Records delivery number `sequence` of one unit.
pub(crate) fn deliver(agreement_id: &str, sequence: u64) -> v1::RecordDeliveryRequest {
    v1::RecordDeliveryRequest {
        meta: meta(format!("{agreement_id}/delivery/{sequence}")),
        agreement_id: agreement_id.to_owned(),
        units: 1,
        delivered_at: at(),
        reference: format!("waybill {sequence}"),
    }
}

/// Announces and signs `agreement_id`.
pub(crate) async fn prepare(channel: &Channel, agreement_id: &str) -> Result<(), String> {
    let mut client = v1::agreement_service_client::AgreementServiceClient::new(channel.clone());
    client
        .announce(announce(agreement_id))
        .await
        .map_err(|status| status.to_string())?;
    client
        .sign(sign(agreement_id))
        .await
        .map_err(|status| status.to_string())?;
    Ok(())
}

/// Microseconds from a commit stamp (`recorded_at`) to now.
pub(crate) fn micros_since_commit(recorded_at: Option<prost_types::Timestamp>) -> Option<u64> {
    use std::time::{SystemTime, UNIX_EPOCH};
    let recorded_at = recorded_at?;
    let committed_us = recorded_at.seconds as i128 * 1_000_000 + recorded_at.nanos as i128 / 1_000;
    let now_us = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|now| now.as_micros() as i128)
        .unwrap_or(0);
    Some((now_us - committed_us).max(0) as u64)
}

/// Opens `connections` connections to `addr` and announces and signs
/// `writer-0` .. `writer-{writers - 1}` over them, for [`steady_writers`].
pub(crate) async fn prepare_writers(
    addr: SocketAddr,
    writers: usize,
    connections: usize,
) -> Result<Vec<Channel>, String> {
    let channels = connect_many(addr, connections).await?;
    for writer in 0..writers {
        prepare(&channels[writer % connections], &format!("writer-{writer}")).await?;
    }
    Ok(channels)
}

/// Runs `writers` writers, writer N appending `per_writer` deliveries to
/// `writer-N` (prepared before) over `channels` in turn, at `rate` events
/// per second in total on a fixed schedule: a writer that falls behind
/// sends at once instead of stretching the schedule. Returns when all
/// have written.
pub(crate) async fn steady_writers(
    channels: &[Channel],
    writers: usize,
    per_writer: u64,
    rate: u64,
) -> Result<(), String> {
    steady_writers_from(channels, writers, 0..per_writer, rate).await
}

/// [`steady_writers`] with the deliveries numbered `sequences` (each
/// number is a command id: a range written before appends nothing).
pub(crate) async fn steady_writers_from(
    channels: &[Channel],
    writers: usize,
    sequences: std::ops::Range<u64>,
    rate: u64,
) -> Result<(), String> {
    use std::time::Duration;
    let interval = Duration::from_secs_f64(writers as f64 / rate as f64);
    let mut tasks = Vec::with_capacity(writers);
    for writer in 0..writers {
        let mut client = v1::agreement_service_client::AgreementServiceClient::new(
            channels[writer % channels.len()].clone(),
        );
        let sequences = sequences.clone();
        tasks.push(tokio::spawn(async move {
            let agreement_id = format!("writer-{writer}");
            let offset = interval.mul_f64(writer as f64 / writers as f64);
            let first = tokio::time::Instant::now() + offset;
            for (index, sequence) in sequences.enumerate() {
                tokio::time::sleep_until(first + interval.mul_f64(index as f64)).await;
                client
                    .record_delivery(deliver(&agreement_id, sequence))
                    .await
                    .map_err(|status| status.to_string())?;
            }
            Ok::<_, String>(())
        }));
    }
    for task in tasks {
        task.await.map_err(|error| error.to_string())??;
    }
    Ok(())
}

/// Concurrent clients filling a log.
const FILLERS: usize = 8;
/// Agreements per `Execute` when filling: each announced, signed and
/// delivered to 8 times.
const AGREEMENTS_PER_BATCH: usize = 100;
/// Events per agreement when filling.
pub(crate) const EVENTS_PER_AGREEMENT: usize = 10;

/// The id of the `agreement`th agreement of fill batch `batch`.
pub(crate) fn fill_id(batch: usize, agreement: usize) -> String {
    format!("rebuild-{batch:06}-{agreement:03}")
}

/// Fills the log of the server at `addr` with `events` events (rounded up
/// to whole batches of `AGREEMENTS_PER_BATCH` agreements); returns the
/// number of agreements.
pub(crate) async fn fill(addr: SocketAddr, events: usize) -> Result<usize, String> {
    fill_buying(addr, events, |_| "KZ").await
}

/// [`fill`], with the buyer country of the `n`th agreement `buyer(n)`.
pub(crate) async fn fill_buying(
    addr: SocketAddr,
    events: usize,
    buyer: fn(usize) -> &'static str,
) -> Result<usize, String> {
    let channels = connect_many(addr, FILLERS).await?;
    let batches = events.div_ceil(AGREEMENTS_PER_BATCH * EVENTS_PER_AGREEMENT);
    let mut fillers = Vec::new();
    for (filler, channel) in channels.iter().enumerate() {
        let mut client = AgreementServiceClient::new(channel.clone());
        fillers.push(tokio::spawn(async move {
            for batch in (filler..batches).step_by(FILLERS) {
                let mut commands = Vec::with_capacity(AGREEMENTS_PER_BATCH * EVENTS_PER_AGREEMENT);
                for agreement in 0..AGREEMENTS_PER_BATCH {
                    let id = fill_id(batch, agreement);
                    let mut announce = announce(&id);
                    if let Some(party) = announce.buyer.as_mut() {
                        party.country = buyer(batch * AGREEMENTS_PER_BATCH + agreement).into();
                    }
                    commands.push(v1::command::Command::Announce(announce));
                    commands.push(v1::command::Command::Sign(sign(&id)));
                    for sequence in 0..(EVENTS_PER_AGREEMENT - 2) as u64 {
                        commands.push(v1::command::Command::RecordDelivery(deliver(&id, sequence)));
                    }
                }
                let commands = commands
                    .into_iter()
                    .map(|command| v1::Command {
                        command: Some(command),
                    })
                    .collect();
                client
                    .execute(v1::ExecuteRequest { commands })
                    .await
                    .map_err(|status| status.to_string())?;
            }
            Ok::<_, String>(())
        }));
    }
    for filler in fillers {
        filler.await.map_err(|error| error.to_string())??;
    }
    Ok(batches * AGREEMENTS_PER_BATCH)
}

/// Waits until the read models of the server behind `admin` have applied
/// a log that is not empty (asking every 5 ms); returns its head.
pub(crate) async fn read_models_at_head(
    admin: &mut v1::admin_client::AdminClient<Channel>,
) -> Result<u64, String> {
    loop {
        let stats = admin
            .get_stats(v1::GetStatsRequest {})
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        let checkpoint = stats
            .projections
            .first()
            .map_or(0, |projection| projection.checkpoint);
        if stats.head_position > 0 && checkpoint >= stats.head_position {
            return Ok(stats.head_position);
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
