//! `accordctl witness`: a witness for transparency logs speaking C2SP
//! `tlog-witness`. For each log it knows (origin and public key) it keeps
//! the last checkpoint it cosigned, durably; a new checkpoint is cosigned
//! (C2SP `tlog-cosignature`) only with a consistency proof from that one, so
//! a log that rolled back or shows another history to someone else is
//! refused, whoever submits it. It can witness any log that signs C2SP
//! checkpoints with Ed25519, not only Accord.
//!
//! `POST /add-checkpoint`, body: `old <size>`, the proof's hashes one per
//! line (base64), a blank line, the signed checkpoint. Answers: 200 with the
//! cosignature line; 409 with the size it holds when `old` is not it; 422
//! when the proof does not hold; 403 for an unknown log or a bad signature;
//! 400 when the request is malformed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use accord_tlog::{Checkpoint, EMPTY_ROOT, Hash, SignedNote, cosign, verify_consistency};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{SigningKey, VerifyingKey};
use tokio::sync::Mutex;

/// Most bytes of a request: a note and a proof of up to 63 hashes.
const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// What the witness is started with.
pub(crate) struct WitnessOptions {
    pub(crate) listen: SocketAddr,
    pub(crate) name: String,
    pub(crate) key_file: PathBuf,
    /// `origin=public key` of each log it witnesses.
    pub(crate) logs: Vec<String>,
    pub(crate) state: PathBuf,
}

struct Witness {
    name: String,
    key: SigningKey,
    logs: BTreeMap<String, VerifyingKey>,
    state_path: PathBuf,
    /// The last checkpoint cosigned per origin: size and root.
    state: Mutex<BTreeMap<String, (u64, Hash)>>,
}

fn load_state(path: &Path) -> Result<BTreeMap<String, (u64, Hash)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(error) => return Err(format!("cannot read {}: {error}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| format!("{}: {error}", path.display()))?;
    let mut state = BTreeMap::new();
    for (origin, held) in value.as_object().into_iter().flatten() {
        let size = held["size"].as_u64().ok_or("a size is missing")?;
        let root: Hash = STANDARD
            .decode(held["root"].as_str().unwrap_or_default())
            .ok()
            .and_then(|root| root.try_into().ok())
            .ok_or("a root is not 32 bytes of base64")?;
        state.insert(origin.clone(), (size, root));
    }
    Ok(state)
}

/// Writes the state durably: a new file, synced, renamed over the old one,
/// the directory synced. A cosignature goes out only after this.
fn save_state(path: &Path, state: &BTreeMap<String, (u64, Hash)>) -> std::io::Result<()> {
    use std::io::Write as _;
    let value: serde_json::Map<String, serde_json::Value> = state
        .iter()
        .map(|(origin, (size, root))| {
            (
                origin.clone(),
                serde_json::json!({ "size": size, "root": STANDARD.encode(root) }),
            )
        })
        .collect();
    let temporary = path.with_extension("partial");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(serde_json::Value::Object(value).to_string().as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    let directory = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty());
    std::fs::File::open(directory.unwrap_or(Path::new(".")))?.sync_all()
}

fn answer(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: String) -> Response {
    let (old, proof, note) = match accord_tlog::parse_add_checkpoint(&body) {
        Ok(request) => request,
        Err(why) => return answer(StatusCode::BAD_REQUEST, format!("{why}\n")),
    };
    let Ok(parsed) = SignedNote::parse(&note) else {
        return answer(StatusCode::BAD_REQUEST, "not a signed note\n".into());
    };
    let Ok(unverified) = Checkpoint::parse(&parsed.body) else {
        return answer(StatusCode::BAD_REQUEST, "not a checkpoint\n".into());
    };
    let Some(log_key) = witness.logs.get(&unverified.origin) else {
        return answer(
            StatusCode::FORBIDDEN,
            format!("unknown log {:?}\n", unverified.origin),
        );
    };
    let checkpoint = match parsed.verify_checkpoint(&unverified.origin, log_key) {
        Ok(checkpoint) => checkpoint,
        Err(error) => return answer(StatusCode::FORBIDDEN, format!("{error}\n")),
    };
    let mut state = witness.state.lock().await;
    let (held_size, held_root) = state
        .get(&checkpoint.origin)
        .copied()
        .unwrap_or((0, EMPTY_ROOT));
    if old != held_size {
        return (
            StatusCode::CONFLICT,
            [(header::CONTENT_TYPE, "text/x.tlog.size")],
            format!("{held_size}\n"),
        )
            .into_response();
    }
    if checkpoint.size < held_size {
        return answer(
            StatusCode::BAD_REQUEST,
            format!(
                "the checkpoint has {} entries, fewer than the {held_size} of the one cosigned before: a rollback\n",
                checkpoint.size
            ),
        );
    }
    if let Err(error) = verify_consistency(
        held_size,
        checkpoint.size,
        &held_root,
        &checkpoint.root,
        &proof,
    ) {
        tracing_free_log(&format!(
            "refused {}: not consistent with size {held_size}: {error}",
            checkpoint.origin
        ));
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "not consistent with the checkpoint of {held_size} entries cosigned before ({error}): a rewritten history or a split view\n"
            ),
        );
    }
    state.insert(
        checkpoint.origin.clone(),
        (checkpoint.size, checkpoint.root),
    );
    if let Err(error) = save_state(&witness.state_path, &state) {
        state.insert(checkpoint.origin.clone(), (held_size, held_root));
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cannot store the witness's state: {error}\n"),
        );
    }
    drop(state);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    answer(
        StatusCode::OK,
        cosign(&parsed.body, &witness.name, &witness.key, now),
    )
}

/// One line on standard error (the witness has no other log).
fn tracing_free_log(line: &str) {
    eprintln!("accordctl witness: {line}");
}

/// Runs the witness until the process is stopped.
pub(crate) async fn run(options: WitnessOptions) -> super::Outcome {
    let secret = accord_server::signing_key::read(&options.key_file)
        .map_err(|error| format!("--key-file: {error}"))?;
    let key = SigningKey::from_bytes(&secret);
    let mut logs = BTreeMap::new();
    for log in &options.logs {
        let (origin, public) = log
            .split_once('=')
            .ok_or_else(|| format!("--log {log:?}: origin=public key (64 hex digits)"))?;
        logs.insert(origin.to_owned(), super::proofs::public_key(public)?);
    }
    if logs.is_empty() {
        return Err("give at least one --log origin=public key".into());
    }
    let state = load_state(&options.state)?;
    let witness = Arc::new(Witness {
        name: options.name.clone(),
        key,
        logs,
        state_path: options.state.clone(),
        state: Mutex::new(state),
    });
    let router = Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(witness.clone());
    let listener = tokio::net::TcpListener::bind(options.listen)
        .await
        .map_err(|error| format!("--listen {}: {error}", options.listen))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    // The address first (a test or a supervisor reads it), then the key.
    println!("witness {} listening on {address}", options.name);
    println!(
        "public key {}",
        accord_server::hex::encode(witness.key.verifying_key().as_bytes())
    );
    axum::serve(listener, router)
        .await
        .map_err(|error| error.to_string())?;
    Ok(ExitCode::SUCCESS)
}
