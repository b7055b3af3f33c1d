//! What a scenario measured, and `bench-results.json`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{Value, json};

/// The figures of one scenario against one system.
pub(crate) struct Outcome {
    /// Events appended (or delivered, for fan-out).
    pub(crate) events: u64,
    /// Wall time of the measured part.
    pub(crate) elapsed: Duration,
    /// Latencies in microseconds.
    pub(crate) latency_us: Histogram<u64>,
    /// CPU seconds the server used during the measured part.
    pub(crate) server_cpu_seconds: f64,
    /// Peak resident memory of the server.
    pub(crate) peak_rss_bytes: u64,
    /// Bytes on disk per event in the log.
    pub(crate) bytes_per_event: f64,
    /// Scenario-specific figures.
    pub(crate) extra: BTreeMap<String, f64>,
}

impl Outcome {
    fn events_per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    fn percentile_ms(&self, quantile: f64) -> f64 {
        if self.latency_us.is_empty() {
            return 0.0;
        }
        self.latency_us.value_at_quantile(quantile) as f64 / 1_000.0
    }

    fn to_json(&self) -> Value {
        let mut value = json!({
            "events_per_sec": round(self.events_per_second()),
            "p50_ms": round(self.percentile_ms(0.50)),
            "p99_ms": round(self.percentile_ms(0.99)),
            "p999_ms": round(self.percentile_ms(0.999)),
            "bytes_per_event": round(self.bytes_per_event),
            "peak_rss_bytes": self.peak_rss_bytes,
            "server_cpu_seconds": round(self.server_cpu_seconds),
            "events": self.events,
            "seconds": round(self.elapsed.as_secs_f64()),
        });
        for (name, figure) in &self.extra {
            value[name] = json!(round(*figure));
        }
        value
    }
}

fn round(value: f64) -> f64 {
    (value * 1_000.0).round() / 1_000.0
}

/// Every scenario's figures, per system.
#[derive(Default)]
pub(crate) struct Results {
    scenarios: BTreeMap<String, (Outcome, Option<Outcome>)>,
    /// Accord on other backends (`nats-1`, `nats-3`), per scenario.
    backends: BTreeMap<String, BTreeMap<String, Outcome>>,
    /// Peers besides PostgreSQL (`umadb`), per scenario.
    other_peers: BTreeMap<String, BTreeMap<String, Outcome>>,
}

impl Results {
    /// Records Accord's outcome of a scenario.
    pub(crate) fn record(&mut self, scenario: &str, accord: Outcome) {
        self.scenarios.insert(scenario.to_owned(), (accord, None));
    }

    /// Records the peer's outcome of a scenario already recorded for Accord.
    pub(crate) fn record_peer(&mut self, scenario: &str, peer: Outcome) {
        if let Some(entry) = self.scenarios.get_mut(scenario) {
            entry.1 = Some(peer);
        }
    }

    /// Records the outcome on the `index`th backend asked for: the first is
    /// Accord's main figure, the others are reported beside it.
    pub(crate) fn record_on(
        &mut self,
        index: usize,
        scenario: &str,
        target: &crate::process::Target,
        outcome: Outcome,
    ) {
        if index == 0 {
            self.record(scenario, outcome);
        } else {
            self.record_backend(scenario, &target.backend.label(), outcome);
        }
    }

    /// Records the outcome of peer `name` (besides PostgreSQL) in a scenario.
    pub(crate) fn record_other_peer(&mut self, scenario: &str, name: &str, outcome: Outcome) {
        self.other_peers
            .entry(scenario.to_owned())
            .or_default()
            .insert(name.to_owned(), outcome);
    }

    /// Accord's events per second over peer `name`'s in `scenario`.
    fn other_peer_ratio(&self, scenario: &str, name: &str) -> Option<f64> {
        let accord = &self.scenarios.get(scenario)?.0;
        let peer = self.other_peers.get(scenario)?.get(name)?;
        Some(round(
            accord.events_per_second() / peer.events_per_second().max(f64::EPSILON),
        ))
    }

    /// Records Accord's outcome of a scenario on another backend.
    pub(crate) fn record_backend(&mut self, scenario: &str, backend: &str, outcome: Outcome) {
        self.backends
            .entry(scenario.to_owned())
            .or_default()
            .insert(backend.to_owned(), outcome);
    }

    /// `outcome`'s events per second over the peer's in the same scenario.
    fn peer_ratio(&self, scenario: &str, outcome: &Outcome) -> Option<f64> {
        self.scenarios
            .get(scenario)
            .and_then(|(_, peer)| peer.as_ref())
            .map(|peer| {
                round(outcome.events_per_second() / peer.events_per_second().max(f64::EPSILON))
            })
    }

    /// Writes the JSON file.
    pub(crate) fn write(&self, path: &Path) -> Result<(), String> {
        let mut root = serde_json::Map::new();
        for (scenario, (accord, peer)) in &self.scenarios {
            let ratio = self.peer_ratio(scenario, accord);
            let mut entry = json!({
                "accord": accord.to_json(),
                "postgres": peer.as_ref().map(Outcome::to_json),
                "ratio": ratio,
            });
            for (backend, outcome) in self.backends.get(scenario).into_iter().flatten() {
                let key = backend.replace('-', "_");
                entry[format!("accord_{key}")] = outcome.to_json();
                entry[format!("ratio_{key}")] = json!(self.peer_ratio(scenario, outcome));
            }
            for (name, outcome) in self.other_peers.get(scenario).into_iter().flatten() {
                entry[name.as_str()] = outcome.to_json();
                entry[format!("ratio_vs_{name}")] = json!(self.other_peer_ratio(scenario, name));
            }
            root.insert(scenario.clone(), entry);
        }
        let text = serde_json::to_string_pretty(&Value::Object(root))
            .map_err(|error| error.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|error| format!("cannot write {}: {error}", path.display()))
    }

    /// A table for people.
    pub(crate) fn table(&self) -> String {
        let mut table = format!(
            "{:<10} {:<9} {:>12} {:>9} {:>9} {:>12} {:>13} {:>8}\n",
            "scenario",
            "system",
            "events/s",
            "p50 ms",
            "p99 ms",
            "bytes/event",
            "peak RSS MiB",
            "ratio"
        );
        let row = |scenario: &str, system: &str, outcome: &Outcome, ratio: String| {
            format!(
                "{:<10} {:<9} {:>12.0} {:>9.2} {:>9.2} {:>12.0} {:>13.1} {:>8}\n",
                scenario,
                system,
                outcome.events_per_second(),
                outcome.percentile_ms(0.50),
                outcome.percentile_ms(0.99),
                outcome.bytes_per_event,
                outcome.peak_rss_bytes as f64 / 1_048_576.0,
                ratio
            )
        };
        for (scenario, (accord, peer)) in &self.scenarios {
            let ratio = |outcome: &Outcome| {
                self.peer_ratio(scenario, outcome)
                    .map_or(String::new(), |ratio| format!("{ratio:.2}x"))
            };
            table.push_str(&row(scenario, "accord", accord, ratio(accord)));
            for (backend, outcome) in self.backends.get(scenario).into_iter().flatten() {
                table.push_str(&row(
                    scenario,
                    &format!("  {backend}"),
                    outcome,
                    ratio(outcome),
                ));
            }
            if let Some(peer) = peer {
                table.push_str(&row(scenario, "postgres", peer, String::new()));
            }
            // A peer besides PostgreSQL: its ratio column is Accord's rate
            // over its own.
            for (name, outcome) in self.other_peers.get(scenario).into_iter().flatten() {
                let ratio = self
                    .other_peer_ratio(scenario, name)
                    .map_or(String::new(), |ratio| format!("{ratio:.2}x"));
                table.push_str(&row(scenario, name, outcome, ratio));
            }
            for (name, figure) in &accord.extra {
                table.push_str(&format!("{:<10}   {name}: {figure:.1}\n", ""));
            }
        }
        table
    }
}

/// A histogram of microseconds up to one minute.
pub(crate) fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// A load client: the events it appended and its latencies.
pub(crate) type ClientTask = tokio::task::JoinHandle<Result<(u64, Histogram<u64>), String>>;

/// Waits for every client; the events they appended and their latencies together.
pub(crate) async fn join_clients(tasks: Vec<ClientTask>) -> Result<(u64, Histogram<u64>), String> {
    let mut events = 0;
    let mut latency_us = latency_histogram();
    for task in tasks {
        let (appended, latency) = task.await.map_err(|error| error.to_string())??;
        events += appended;
        latency_us.add(latency).map_err(|error| error.to_string())?;
    }
    Ok((events, latency_us))
}
