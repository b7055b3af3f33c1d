//! `accord-bench`: starts the release `accord-server` on a temporary data
//! directory, drives it over gRPC with the same workloads the peers get, and
//! writes `bench-results.json`. A library with one entry point, so that the
//! end-to-end tests run the README's command against the server under test.

mod group_commits;
mod postgres;
mod process;
mod report;
mod scenarios;
mod umadb;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use process::Target;
use report::Results;

/// Events in the large logs (rebuild, filtered read, console) with
/// `--quick`: enough to exercise every path, not to measure.
const QUICK_EVENTS: usize = 20_000;

/// A scenario of the load generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Scenario {
    /// Single appends from many clients.
    Append,
    /// `Execute` batches from many clients.
    Batch,
    /// Single commands over an `ExecuteStream` per producer, pipelined.
    AppendStream,
    /// Appends each followed by a read of the same agreement with
    /// `min_position` at it: the read's latency.
    ReadYourWrites,
    /// Many subscribers while a writer appends at a steady rate.
    Subscribe,
    /// A consumer group's members acknowledging while writers append at a
    /// steady rate.
    Consume,
    /// Replay of a large log into fresh read models.
    Rebuild,
    /// The web console's pages on a large log, and its live tails.
    Console,
    /// A filtered read of 1 % of a large log: `ReadLog` and a
    /// `Subscribe` catch-up with a buyer-country filter.
    FilteredRead,
    /// Inclusion and consistency proofs and signed checkpoints of a large
    /// log: each one's latency.
    Proofs,
    /// Single appends for `--soak-seconds`: memory as the log grows, then
    /// the time to open that log and the memory it idles in (run only when
    /// named).
    Soak,
}

/// Command-line options.
#[derive(Debug, Parser)]
#[command(name = "accord-bench", about = "Load generator for Accord")]
struct Options {
    /// Scenarios to run (all when none given).
    #[arg(value_enum)]
    scenarios: Vec<Scenario>,
    /// Run each scenario for a few seconds only, on logs of 20,000 events
    /// (a check that every scenario runs, not a measurement).
    #[arg(long)]
    quick: bool,
    /// Seconds per timed scenario.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Clients of the append scenario.
    #[arg(long, default_value_t = 64)]
    append_clients: usize,
    /// Clients of the batch scenario.
    #[arg(long, default_value_t = 16)]
    batch_clients: usize,
    /// Clients of the read-your-writes scenario.
    #[arg(long, default_value_t = 16)]
    read_your_writes_clients: usize,
    /// Commands per Execute in the batch scenario.
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Subscribers of the subscribe scenario.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Events per second the subscribe scenario's writer appends.
    #[arg(long, default_value_t = 1_000)]
    subscribe_rate: u64,
    /// Members of the consume scenario's group.
    #[arg(long, default_value_t = 4)]
    consume_members: usize,
    /// Events per second the consume scenario's writers append.
    #[arg(long, default_value_t = 1_000)]
    consume_rate: u64,
    /// Seconds of appends in the soak scenario.
    #[arg(long, default_value_t = 600)]
    soak_seconds: u64,
    /// End the soak run with SIGKILL under load instead of a clean stop.
    #[arg(long)]
    soak_crash: bool,
    /// Events in the rebuild scenario's log.
    #[arg(long, default_value_t = 1_000_000)]
    rebuild_events: usize,
    /// Events in the console scenario's log.
    #[arg(long, default_value_t = 1_000_000)]
    console_events: usize,
    /// Open live tails in the console scenario.
    #[arg(long, default_value_t = 100)]
    console_tails: usize,
    /// Events per second written while the console's tails are open.
    #[arg(long, default_value_t = 100)]
    console_rate: u64,
    /// Backends Accord runs on for append, batch, subscribe and consume: sled, nats-1
    /// (one nats-server), nats-3 (a three-node cluster, R3). The first is
    /// the one `accord` and `ratio` report; the others are reported beside it.
    #[arg(long, value_delimiter = ',', default_value = "sled,nats-1,nats-3")]
    backends: Vec<String>,
    /// The server binary (default: accord-server beside this binary).
    #[arg(long)]
    server_binary: Option<PathBuf>,
    /// Skip the peers (PostgreSQL and UmaDB).
    #[arg(long)]
    no_peer: bool,
    /// Where to write the results.
    #[arg(long, default_value = "bench-results.json")]
    out: PathBuf,
}

/// Runs the load generator from the command line.
pub fn main_entry() -> ExitCode {
    let options = Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("accord-bench: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("accord-bench: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: Options) -> Result<(), String> {
    let mut backends = options
        .backends
        .iter()
        .map(|label| process::Backend::parse(label))
        .collect::<Result<Vec<_>, _>>()?;
    if backends
        .iter()
        .any(|backend| matches!(backend, process::Backend::Nats(_)))
        && nats_process::find_nats_server().is_none()
    {
        backends.retain(|backend| !matches!(backend, process::Backend::Nats(_)));
        if backends.is_empty() {
            return Err(format!(
                "no backend left to run: {}",
                nats_process::INSTALL_HINT
            ));
        }
        eprintln!(
            "accord-bench: nats-server not found (set ACCORD_NATS_SERVER or put it on PATH; scripts/test installs it): skipping the NATS backends"
        );
    }
    let server_binary = match &options.server_binary {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|error| error.to_string())?
            .with_file_name("accord-server"),
    };
    if !server_binary.exists() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p accord-server`",
            server_binary.display()
        ));
    }
    let targets: Vec<Target> = backends
        .iter()
        .map(|backend| Target {
            binary: server_binary.clone(),
            backend: *backend,
        })
        .collect();
    let sled = Target {
        binary: server_binary.clone(),
        backend: process::Backend::Sled,
    };
    let duration = Duration::from_secs(if options.quick { 3 } else { options.seconds });
    let wanted = |scenario: Scenario| {
        options.scenarios.contains(&scenario)
            || (options.scenarios.is_empty() && scenario != Scenario::Soak)
    };
    let mut results = Results::default();
    let peer = !options.no_peer && (wanted(Scenario::Append) || wanted(Scenario::Batch));
    if peer {
        postgres::ensure_installed()?;
        umadb::ensure_installed()?;
    }
    if wanted(Scenario::Append) {
        for (index, target) in targets.iter().enumerate() {
            let outcome = scenarios::append::run(target, options.append_clients, duration).await?;
            results.record_on(index, "append", target, outcome);
        }
        if peer {
            let outcome = scenarios::peer::append(options.append_clients, duration).await?;
            results.record_peer("append", outcome);
            let outcome = scenarios::umadb_peer::run(options.append_clients, 1, duration).await?;
            results.record_other_peer("append", "umadb", outcome);
        }
    }
    if wanted(Scenario::Batch) {
        for (index, target) in targets.iter().enumerate() {
            let outcome =
                scenarios::batch::run(target, options.batch_clients, options.batch_size, duration)
                    .await?;
            results.record_on(index, "batch", target, outcome);
        }
        if peer {
            let outcome =
                scenarios::peer::batch(options.batch_clients, options.batch_size, duration).await?;
            results.record_peer("batch", outcome);
            let outcome =
                scenarios::umadb_peer::run(options.batch_clients, options.batch_size, duration)
                    .await?;
            results.record_other_peer("batch", "umadb", outcome);
        }
    }
    if wanted(Scenario::AppendStream) {
        for (index, target) in targets.iter().enumerate() {
            let outcome =
                scenarios::append_stream::run(target, options.append_clients, duration).await?;
            results.record_on(index, "append-stream", target, outcome);
        }
    }
    if wanted(Scenario::ReadYourWrites) {
        for (index, target) in targets.iter().enumerate() {
            let outcome = scenarios::read_your_writes::run(
                target,
                options.read_your_writes_clients,
                duration,
            )
            .await?;
            results.record_on(index, "read-your-writes", target, outcome);
        }
    }
    if wanted(Scenario::Subscribe) {
        let subscribers = if options.quick {
            options.subscribers.min(100)
        } else {
            options.subscribers
        };
        for (index, target) in targets.iter().enumerate() {
            let outcome =
                scenarios::subscribe::run(target, subscribers, options.subscribe_rate, duration)
                    .await?;
            results.record_on(index, "subscribe", target, outcome);
        }
    }
    if wanted(Scenario::Consume) {
        for (index, target) in targets.iter().enumerate() {
            let outcome = scenarios::consume::run(
                target,
                options.consume_members,
                options.consume_rate,
                duration,
            )
            .await?;
            results.record_on(index, "consume", target, outcome);
        }
    }
    if wanted(Scenario::Rebuild) {
        let events = if options.quick {
            options.rebuild_events.min(QUICK_EVENTS)
        } else {
            options.rebuild_events
        };
        // Replay reads the node's own copy of the log, sled on every backend.
        if targets
            .iter()
            .any(|target| target.backend != process::Backend::Sled)
        {
            eprintln!(
                "accord-bench: rebuild runs on sled only: every node replays its own copy of the log, a sled database, whatever the backend"
            );
        }
        let mut outcome = scenarios::rebuild::run(&sled, events).await?;
        if !options.no_peer {
            umadb::ensure_installed()?;
            let read = scenarios::umadb_peer::read_back(events).await?;
            outcome
                .extra
                .insert("umadb_read_events_per_sec".to_owned(), read);
        }
        results.record("rebuild", outcome);
    }
    if wanted(Scenario::FilteredRead) {
        let events = if options.quick {
            options.rebuild_events.min(QUICK_EVENTS)
        } else {
            options.rebuild_events
        };
        // Reads come from the node's own copy of the log and read models.
        let outcome = scenarios::filtered_read::run(&sled, events).await?;
        results.record("filtered-read", outcome);
    }
    if wanted(Scenario::Proofs) {
        let events = if options.quick {
            options.rebuild_events.min(QUICK_EVENTS)
        } else {
            options.rebuild_events
        };
        // Proofs come from the node's own copy of the log: sled.
        let outcome = scenarios::proofs::run(&sled, events).await?;
        results.record("proofs", outcome);
    }
    if wanted(Scenario::Console) {
        let events = if options.quick {
            options.console_events.min(QUICK_EVENTS)
        } else {
            options.console_events
        };
        // The console reads the node's own read models and replica: sled.
        if targets
            .iter()
            .any(|target| target.backend != process::Backend::Sled)
        {
            eprintln!(
                "accord-bench: console runs on sled only: it reads the node's own read models and copy of the log, whatever the backend"
            );
        }
        let outcome = scenarios::console::run(
            &sled,
            events,
            options.console_tails,
            options.console_rate,
            duration,
        )
        .await?;
        results.record("console", outcome);
    }
    if wanted(Scenario::Soak) {
        let seconds = if options.quick {
            20
        } else {
            options.soak_seconds
        };
        let outcome = scenarios::soak::run(
            &sled,
            options.append_clients,
            Duration::from_secs(seconds),
            options.soak_crash,
        )
        .await?;
        results.record("soak", outcome);
    }
    results.write(&options.out)?;
    println!("{}", results.table());
    println!("results written to {}", options.out.display());
    Ok(())
}
