//! `accordctl`: operate an Accord server, or the data directory of a stopped one:
//! stats, verify, rebuild, tail, export, import and the demo data; and check
//! the transparency log's checkpoints and proofs as a client.

mod canonical;
mod commands;
mod connection;
mod json;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operator tool for Accord.
#[derive(Debug, Parser)]
#[command(name = "accordctl", version, about)]
struct Options {
    /// The server to talk to.
    #[arg(
        long,
        global = true,
        env = "ACCORD_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    server: String,
    /// Bearer token for a server that requires one.
    #[arg(long, global = true, env = "ACCORD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// PEM certificate authority to trust for an https:// server.
    #[arg(long, global = true, env = "ACCORD_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// PEM client certificate for a server that requires one (with --tls-key).
    #[arg(long, global = true, env = "ACCORD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM key of --tls-cert.
    #[arg(long, global = true, env = "ACCORD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Work on the data directory of a stopped server instead (stats, verify, export, rebuild).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// With --data-dir: the stopped server's signing key, when it is not
    /// DATA_DIR/signing-key.
    #[arg(long, global = true, env = "ACCORD_SIGNING_KEY")]
    signing_key: Option<PathBuf>,
    /// With --data-dir: public keys the stopped server trusts besides its own.
    #[arg(
        long = "trusted-key",
        global = true,
        env = "ACCORD_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    trusted_keys: Vec<String>,
    /// Send the token over plain http:// to a host other than loopback.
    #[arg(long, global = true, env = "ACCORD_INSECURE")]
    insecure: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Head, counts, bytes on disk, and each projection's checkpoint and lag.
    Stats {
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check every record's checksum, the hash chain, positions and indexes.
    Verify,
    /// Rebuild read models from position 1 while the old ones keep serving.
    Rebuild {
        /// Projections to rebuild (all when none given).
        names: Vec<String>,
    },
    /// Print events as JSON lines.
    Tail {
        /// First position to print.
        #[arg(long, default_value_t = 1, conflicts_with = "since")]
        from: u64,
        /// Start with the first event recorded at or after this time
        /// (RFC 3339, e.g. 2025-09-23T00:00:00Z) instead of a position.
        #[arg(long)]
        since: Option<String>,
        /// Keep printing new events as they are appended.
        #[arg(long)]
        follow: bool,
        /// Only events of this type (repeatable).
        #[arg(long = "type")]
        event_types: Vec<String>,
        /// Only events of this agreement (repeatable).
        #[arg(long = "agreement")]
        agreement_ids: Vec<String>,
    },
    /// Write every record, with its hash-chain fields, to FILE as NDJSON.
    Export {
        /// The file to write.
        file: PathBuf,
    },
    /// Load an export into an empty log, after verifying all of it.
    Import {
        /// The file to read.
        file: PathBuf,
        /// Accept an export without a signed checkpoint (one written by
        /// Accord 0.1): nothing then proves its records are a server's.
        #[arg(long)]
        allow_unsigned: bool,
    },
    /// Load the UNGA 80 facts through the public API (idempotent).
    Demo,
    /// Consumer groups: list, create, info, delete, replay-parked.
    Groups {
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Join a consumer group and print each event it gets as a JSON line,
    /// acknowledging it once printed.
    Consume {
        /// The group.
        group: String,
        /// The member name the group shows.
        #[arg(long, default_value = "accordctl")]
        member: String,
        /// Print without acknowledging (the events go out again later).
        #[arg(long)]
        no_ack: bool,
        /// Stop after this many events.
        #[arg(long)]
        count: Option<u64>,
    },
    /// The latest signed checkpoint of the Merkle tree, verified with the
    /// server's public key; the note to standard output or FILE.
    Checkpoint {
        /// The server's public key (64 hex digits; `accordctl new-signing-key` printed it).
        #[arg(long)]
        key: String,
        /// The log's origin (default: the name the note is signed under).
        #[arg(long)]
        origin: Option<String>,
        /// Write the note to this file instead.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check that the server's log extends a checkpoint you hold (a file
    /// `accordctl checkpoint --out` wrote): exit 1 on a rollback or a
    /// rewritten history.
    CheckConsistency {
        /// The checkpoint you hold.
        checkpoint: PathBuf,
        /// The server's public key (64 hex digits).
        #[arg(long)]
        key: String,
        /// Replace the file with the newer checkpoint once it is proven.
        #[arg(long)]
        update: bool,
    },
    /// Print a proof bundle (JSON): an agreement's records, their inclusion
    /// proofs and the signed checkpoint, for `check-proof` with no server.
    Prove {
        /// The agreement.
        agreement_id: String,
        /// The server's public key (64 hex digits).
        #[arg(long)]
        key: String,
    },
    /// Verify a proof bundle offline: exit 1 if any part does not hold.
    CheckProof {
        /// The bundle `prove` printed.
        bundle: PathBuf,
        /// The server's public key (64 hex digits).
        #[arg(long)]
        key: String,
    },
    /// Ask a witness (C2SP tlog-witness) to cosign the server's latest
    /// checkpoint; prints the cosigned note, exit 1 when it refuses.
    Cosign {
        /// The witness's URL (`http://host:port`).
        #[arg(long)]
        witness: String,
        /// The server's public key (64 hex digits).
        #[arg(long)]
        key: String,
    },
    /// Run a witness: cosign each log's checkpoints only when they extend
    /// the last one cosigned (C2SP tlog-witness, tlog-cosignature).
    Witness {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: std::net::SocketAddr,
        /// The witness's name in its cosignatures (like witness.example.org).
        #[arg(long)]
        name: String,
        /// Its Ed25519 key (`accordctl new-signing-key FILE` makes one).
        #[arg(long)]
        key_file: PathBuf,
        /// A log it witnesses: origin=public key (64 hex digits); repeatable.
        #[arg(long = "log")]
        logs: Vec<String>,
        /// Where it keeps the last checkpoint cosigned per log (synced
        /// before each cosignature).
        #[arg(long)]
        state: PathBuf,
    },
    /// Make a new checkpoint signing key in FILE (readable by its owner
    /// only) for `accord-server --signing-key`; prints its public key.
    NewSigningKey {
        /// The file to create (never overwritten).
        file: PathBuf,
    },
    /// Make a new token: prints it once, and the line for the server's token file.
    NewToken {
        /// The token's name (recorded as the actor of the events it writes).
        name: String,
        /// Roles, comma-separated: writer, reader, consumer, operator.
        roles: String,
    },
}

#[derive(Debug, Subcommand)]
enum GroupsCommand {
    /// Every group with its checkpoint, lag, members and totals.
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a group (from the start of the log unless told otherwise).
    Create {
        /// The group's name: ^[a-z0-9][a-z0-9._-]{0,127}$.
        name: String,
        /// Start with the next event appended.
        #[arg(long, conflicts_with = "after")]
        from_end: bool,
        /// Start after this position.
        #[arg(long)]
        after: Option<u64>,
        /// Only events of this type (repeatable).
        #[arg(long = "type")]
        event_types: Vec<String>,
        /// Only events of this agreement (repeatable).
        #[arg(long = "agreement")]
        agreement_ids: Vec<String>,
        /// Only agreements whose buyer is in this country (repeatable).
        #[arg(long = "country")]
        countries: Vec<String>,
        /// One member at a time per agreement, its events in order.
        #[arg(long)]
        pinned: bool,
        /// Unsettled events per member (0: the server's default, 100).
        #[arg(long, default_value_t = 0)]
        max_in_flight: u32,
        /// Milliseconds to acknowledge an event (0: the default, 30000).
        #[arg(long, default_value_t = 0)]
        ack_timeout_ms: u32,
        /// Deliveries before an event is parked (0: the default, 10).
        #[arg(long, default_value_t = 0)]
        max_deliveries: u32,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One group's settings and figures.
    Info {
        /// The group.
        name: String,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Delete a group; its members' streams end.
    Delete {
        /// The group.
        name: String,
    },
    /// Deliver a group's parked events again.
    ReplayParked {
        /// The group.
        name: String,
    },
}

/// Runs `accordctl` with the process's arguments.
pub fn main_entry() -> ExitCode {
    let options = Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("accordctl: cannot start: {error}");
            return ExitCode::from(2);
        }
    };
    runtime.block_on(run(options))
}

async fn run(options: Options) -> ExitCode {
    if let Command::NewToken { name, roles } = &options.command {
        return commands::new_token::run(name, roles);
    }
    if let Command::NewSigningKey { file } = &options.command {
        return commands::new_signing_key::run(file);
    }
    if let Command::Witness {
        listen,
        name,
        key_file,
        logs,
        state,
    } = &options.command
    {
        let options = commands::witness::WitnessOptions {
            listen: *listen,
            name: name.clone(),
            key_file: key_file.clone(),
            logs: logs.clone(),
            state: state.clone(),
        };
        return match commands::witness::run(options).await {
            Ok(code) => code,
            Err(error) => {
                eprintln!("accordctl witness: {error}");
                ExitCode::from(2)
            }
        };
    }
    if let Command::CheckProof { bundle, key } = &options.command {
        return match commands::proofs::public_key(key) {
            Ok(key) => commands::proofs::check_proof(bundle, &key),
            Err(error) => {
                eprintln!("accordctl: {error}");
                ExitCode::from(2)
            }
        };
    }
    let offline_ok = matches!(
        options.command,
        Command::Stats { .. } | Command::Verify | Command::Export { .. } | Command::Rebuild { .. }
    );
    if options.data_dir.is_some() && !offline_ok {
        eprintln!(
            "accordctl: --data-dir works with stats, verify, export and rebuild; use --server for the others"
        );
        return ExitCode::from(2);
    }
    if options.token.is_some()
        && options.data_dir.is_none()
        && !options.insecure
        && connection::sends_in_clear_text(&options.server)
    {
        eprintln!(
            "accordctl: refusing to send the token in clear text to {}: use https:// (with --tls-ca), or --insecure",
            options.server
        );
        return ExitCode::from(2);
    }
    let connection = match connection::Connection::open(
        &options.server,
        options
            .data_dir
            .as_deref()
            .map(|data_dir| connection::Offline {
                data_dir,
                signing_key: options.signing_key.clone(),
                trusted_keys: options.trusted_keys.clone(),
            }),
        options.token.as_deref(),
        connection::Tls {
            ca: options.tls_ca.clone(),
            cert: options.tls_cert.clone(),
            key: options.tls_key.clone(),
        },
    )
    .await
    {
        Ok(connection) => connection,
        Err(error) => {
            eprintln!("accordctl: {error}");
            return ExitCode::from(2);
        }
    };
    let channel = connection.channel();
    let outcome = match options.command {
        Command::Stats { json } => commands::stats::run(channel, json).await,
        Command::Verify => commands::verify::run(channel).await,
        Command::Rebuild { names } => commands::rebuild::run(channel, names).await,
        Command::Tail {
            from,
            since,
            follow,
            event_types,
            agreement_ids,
        } => {
            let start = match since {
                None => commands::tail::Start::Position(from),
                Some(text) => match accord_dataset::parse_rfc3339_utc(&text) {
                    Some(time) => commands::tail::Start::Time(time),
                    None => {
                        eprintln!(
                            "accordctl: --since: {text:?} is not an RFC 3339 time (like 2025-09-23T00:00:00Z)"
                        );
                        return ExitCode::from(2);
                    }
                },
            };
            commands::tail::run(channel, start, follow, event_types, agreement_ids).await
        }
        Command::Export { file } => commands::export::run(channel, &file).await,
        Command::Import {
            file,
            allow_unsigned,
        } => commands::import::run(channel, &file, allow_unsigned).await,
        Command::Demo => commands::demo::run(channel).await,
        Command::Groups { command } => groups(channel, command).await,
        Command::Consume {
            group,
            member,
            no_ack,
            count,
        } => commands::consume::run(channel, group, member, !no_ack, count).await,
        Command::Checkpoint { key, origin, out } => match commands::proofs::public_key(&key) {
            Ok(key) => {
                commands::proofs::checkpoint(channel, &key, origin.as_deref(), out.as_deref()).await
            }
            Err(error) => Err(error),
        },
        Command::CheckConsistency {
            checkpoint,
            key,
            update,
        } => match commands::proofs::public_key(&key) {
            Ok(key) => {
                commands::proofs::check_consistency(channel, &key, &checkpoint, update).await
            }
            Err(error) => Err(error),
        },
        Command::Prove { agreement_id, key } => match commands::proofs::public_key(&key) {
            Ok(key) => commands::proofs::prove(channel, &key, &agreement_id).await,
            Err(error) => Err(error),
        },
        Command::Cosign { witness, key } => match commands::proofs::public_key(&key) {
            Ok(key) => commands::cosign::run(channel, &key, &witness).await,
            Err(error) => Err(error),
        },
        Command::NewToken { .. }
        | Command::NewSigningKey { .. }
        | Command::CheckProof { .. }
        | Command::Witness { .. } => Ok(ExitCode::SUCCESS),
    };
    connection.close().await;
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("accordctl: {error}");
            ExitCode::from(2)
        }
    }
}

async fn groups(channel: connection::Grpc, command: GroupsCommand) -> commands::Outcome {
    use commands::groups::{self, GroupStart, NewGroup};
    match command {
        GroupsCommand::List { json } => groups::list(channel, json).await,
        GroupsCommand::Create {
            name,
            from_end,
            after,
            event_types,
            agreement_ids,
            countries,
            pinned,
            max_in_flight,
            ack_timeout_ms,
            max_deliveries,
            json,
        } => {
            let start = match (from_end, after) {
                (true, _) => GroupStart::FromEnd,
                (false, Some(position)) => GroupStart::After(position),
                (false, None) => GroupStart::FromStart,
            };
            let group = NewGroup {
                start,
                event_types,
                agreement_ids,
                countries,
                pinned,
                max_in_flight,
                ack_timeout_ms,
                max_deliveries,
            };
            groups::create(channel, name, group, json).await
        }
        GroupsCommand::Info { name, json } => groups::info(channel, name, json).await,
        GroupsCommand::Delete { name } => groups::delete(channel, name).await,
        GroupsCommand::ReplayParked { name } => groups::replay_parked(channel, name).await,
    }
}
