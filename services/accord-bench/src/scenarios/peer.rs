//! The same append and batch workloads against the PostgreSQL peer: the
//! same payload (a one-unit delivery), the same concurrency, one stream per
//! client with its expected version checked, every commit durable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::postgres::Postgres;
use crate::process::LoadGeneratorCpu;
use crate::report::{ClientTask, Outcome, join_clients, latency_histogram};

fn event_id(client: usize, sequence: u64) -> String {
    format!("{client:08x}-0000-4000-8000-{sequence:012x}")
}

fn payload(sequence: u64) -> serde_json::Value {
    json!({"units": 1, "delivered_at": "2025-09-23T00:00:00Z", "reference": format!("waybill {sequence}")})
}

fn metadata(client: usize, sequence: u64) -> serde_json::Value {
    json!({"command_id": format!("append-{client}/delivery/{sequence}"), "correlation_id": "", "causation_id": "", "actor": ""})
}

/// `append`: one `write_message` per transaction, `clients` connections.
pub(crate) async fn append(clients: usize, duration: Duration) -> Result<Outcome, String> {
    let (run, connections) = Run::start(clients, duration).await?;
    let deadline = run.deadline;
    let mut tasks = Vec::new();
    for (client, connection) in connections.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let statement = connection
                .prepare("SELECT write_message($1, $2, 'agreement.delivery_recorded', $3, $4, $5)")
                .await
                .map_err(|error| error.to_string())?;
            let stream = format!("agreement-append{client}");
            let mut latency = latency_histogram();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                let expected = sequence as i64 - 1;
                let sent = Instant::now();
                connection
                    .query_one(
                        &statement,
                        &[
                            &event_id(client, sequence),
                            &stream,
                            &payload(sequence),
                            &metadata(client, sequence),
                            &expected,
                        ],
                    )
                    .await
                    .map_err(|error| error.to_string())?;
                latency.saturating_record(sent.elapsed().as_micros() as u64);
                sequence += 1;
            }
            Ok::<_, String>((sequence, latency))
        }));
    }
    run.finish(
        tasks,
        BTreeMap::from([("clients".to_owned(), clients as f64)]),
    )
    .await
}

/// `batch`: `batch_size` `write_message` calls in one statement and one
/// transaction, `clients` connections.
pub(crate) async fn batch(
    clients: usize,
    batch_size: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let (run, connections) = Run::start(clients, duration).await?;
    let deadline = run.deadline;
    let mut tasks = Vec::new();
    for (client, connection) in connections.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let statement = connection
                .prepare(
                    "SELECT write_message(t.id, $1, 'agreement.delivery_recorded', t.data, t.metadata, $2 + t.n - 1) \
                     FROM unnest($3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS t(id, data, metadata, n)",
                )
                .await
                .map_err(|error| error.to_string())?;
            let stream = format!("agreement-batch{client}");
            let mut latency = latency_histogram();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                let ids: Vec<String> = (0..batch_size as u64).map(|offset| event_id(client, sequence + offset)).collect();
                let data: Vec<serde_json::Value> = (0..batch_size as u64).map(|offset| payload(sequence + offset)).collect();
                let metas: Vec<serde_json::Value> =
                    (0..batch_size as u64).map(|offset| metadata(client, sequence + offset)).collect();
                let base = sequence as i64 - 1;
                let sent = Instant::now();
                let rows = connection
                    .query(&statement, &[&stream, &base, &ids, &data, &metas])
                    .await
                    .map_err(|error| error.to_string())?;
                if rows.len() != batch_size {
                    return Err(format!("expected {batch_size} rows, got {}", rows.len()));
                }
                latency.saturating_record(sent.elapsed().as_micros() as u64);
                sequence += batch_size as u64;
            }
            Ok::<_, String>((sequence, latency))
        }));
    }
    let extra = BTreeMap::from([
        ("clients".to_owned(), clients as f64),
        ("commands_per_execute".to_owned(), batch_size as f64),
    ]);
    run.finish(tasks, extra).await
}

/// One measured run against PostgreSQL: the server, the clock and its CPU
/// counter at the start.
struct Run {
    postgres: Postgres,
    started: Instant,
    deadline: Instant,
    cpu_before: f64,
    load_cpu: LoadGeneratorCpu,
}

impl Run {
    /// Starts PostgreSQL, opens `clients` connections, then starts the clock.
    async fn start(
        clients: usize,
        duration: Duration,
    ) -> Result<(Self, Vec<tokio_postgres::Client>), String> {
        let postgres = Postgres::start().await?;
        let mut connections = Vec::with_capacity(clients);
        for _ in 0..clients {
            connections.push(postgres.connect().await?);
        }
        let (cpu_before, _) = postgres.usage();
        let load_cpu = LoadGeneratorCpu::start();
        let started = Instant::now();
        let run = Self {
            postgres,
            started,
            deadline: started + duration,
            cpu_before,
            load_cpu,
        };
        Ok((run, connections))
    }

    /// Waits for the clients, stops PostgreSQL and reports.
    async fn finish(
        self,
        tasks: Vec<ClientTask>,
        mut extra: BTreeMap<String, f64>,
    ) -> Result<Outcome, String> {
        let (events, latency_us) = join_clients(tasks).await?;
        let elapsed = self.started.elapsed();
        self.load_cpu.record(&mut extra);
        let (cpu_after, peak_rss_bytes) = self.postgres.usage();
        let (table_bytes, rows) = self.postgres.table_bytes().await?;
        self.postgres.stop().await;
        Ok(Outcome {
            events,
            elapsed,
            latency_us,
            server_cpu_seconds: cpu_after - self.cpu_before,
            peak_rss_bytes,
            bytes_per_event: table_bytes as f64 / rows.max(1) as f64,
            extra,
        })
    }
}
