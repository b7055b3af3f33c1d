//! Submitting the log's checkpoints to witnesses (`--witness`, C2SP
//! `tlog-witness`): after the head moves (at most once a second), the
//! latest signed checkpoint goes to every witness with the consistency
//! proof from the size that witness last cosigned; each cosignature that
//! verifies with the witness's key is kept, and `GetCheckpoint` serves the
//! latest checkpoint with the cosignatures it got. Requests are bounded:
//! a timeout, an answer of at most a few KiB, one witness at a time.

use std::sync::Arc;
use std::time::Duration;

use accord_store::EventLog;
use accord_tlog::{Checkpoint, SignedNote, verify_cosignature};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use http_body_util::{BodyExt, Full, Limited};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// How long a witness may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The least time between two rounds of submissions.
const EVERY: Duration = Duration::from_secs(1);
/// Most bytes of a witness's answer (a cosignature line or a size).
const MAX_ANSWER_BYTES: usize = 4 * 1024;

/// A witness: its name and key in cosignatures, and its URL.
#[derive(Debug, Clone)]
pub(crate) struct Witness {
    pub(crate) name: String,
    pub(crate) key: VerifyingKey,
    pub(crate) url: String,
}

/// Reads `--witness NAME=PUBLIC_KEY@URL`.
pub(crate) fn parse_witness(text: &str) -> Result<Witness, String> {
    let bad = || {
        format!(
            "--witness {text:?}: NAME=PUBLIC_KEY@URL, like witness.example.org=<64 hex digits>@http://witness.example.org:7380"
        )
    };
    let (name, rest) = text.split_once('=').ok_or_else(bad)?;
    let (key, url) = rest.split_once('@').ok_or_else(bad)?;
    let key = crate::signing_key::parse_public_key(key).map_err(|_| bad())?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| bad())?;
    if name.is_empty() || name.contains(char::is_whitespace) || !url.starts_with("http://") {
        return Err(bad());
    }
    Ok(Witness {
        name: name.to_owned(),
        key,
        url: url.trim_end_matches('/').to_owned(),
    })
}

/// The cosigned checkpoints, as `GetCheckpoint` serves them.
#[derive(Default)]
pub(crate) struct Cosigned {
    /// The latest checkpoint submitted, with the cosignatures it got.
    latest: Mutex<Option<(u64, String)>>,
}

impl Cosigned {
    /// The latest checkpoint with its cosignatures, if one was submitted.
    pub(crate) fn latest(&self) -> Option<(u64, String)> {
        self.latest.lock().clone()
    }
}

type Client = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    Full<Bytes>,
>;

/// What one witness answered.
enum Answer {
    Cosigned(String),
    Holds(u64),
    Refused(u16, String),
}

async fn post(client: &Client, witness: &Witness, body: String) -> Result<Answer, String> {
    let request = hyper::Request::post(format!("{}/add-checkpoint", witness.url))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| error.to_string())?;
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| "no answer in time".to_owned())?
        .map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let bytes = tokio::time::timeout(
        TIMEOUT,
        Limited::new(response.into_body(), MAX_ANSWER_BYTES).collect(),
    )
    .await
    .map_err(|_| "no answer in time".to_owned())?
    .map_err(|error| error.to_string())?
    .to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    Ok(match status {
        200 => Answer::Cosigned(text),
        409 => match accord_tlog::parse_size(&text) {
            Some(size) => Answer::Holds(size),
            None => Answer::Refused(status, text),
        },
        _ => Answer::Refused(status, text),
    })
}

/// Submits checkpoints to `witnesses` until `stopping`; `sign` gives the
/// latest signed checkpoint note.
pub(crate) fn spawn<F, Fut>(
    log: Arc<dyn EventLog>,
    witnesses: Vec<Witness>,
    cosigned: Arc<Cosigned>,
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
    sign: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Option<String>> + Send,
{
    tokio::spawn(async move {
        let client: Client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        // The size each witness holds of this log, as far as we know.
        let mut held: Vec<u64> = vec![0; witnesses.len()];
        let mut head = log.watch_head();
        let mut submitted = None;
        loop {
            let size = *head.borrow_and_update();
            if submitted != Some(size)
                && let Some(note) = sign().await
            {
                round(
                    &client, &*log, &witnesses, &mut held, &note, &cosigned, &metrics,
                )
                .await;
                submitted = Some(size);
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                changed = head.changed() => if changed.is_err() { return },
            }
            tokio::select! {
                () = stopping.cancelled() => return,
                () = tokio::time::sleep(EVERY) => {}
            }
        }
    })
}

async fn round(
    client: &Client,
    log: &dyn EventLog,
    witnesses: &[Witness],
    held: &mut [u64],
    note: &str,
    cosigned: &Cosigned,
    metrics: &Metrics,
) {
    let Ok(parsed) = SignedNote::parse(note) else {
        return;
    };
    let Ok(checkpoint) = Checkpoint::parse(&parsed.body) else {
        return;
    };
    let mut lines = String::new();
    let mut count: i64 = 0;
    for (witness, held) in witnesses.iter().zip(held.iter_mut()) {
        match submit(client, log, witness, held, note, &checkpoint).await {
            Ok(line) => {
                let with = format!("{note}{line}");
                let verified = SignedNote::parse(&with)
                    .map_err(|error| error.to_string())
                    .and_then(|parsed| {
                        verify_cosignature(&parsed, &witness.name, &witness.key)
                            .map_err(|error| error.to_string())
                    });
                match verified {
                    Ok(_) => {
                        lines.push_str(&line);
                        count += 1;
                    }
                    Err(error) => {
                        metrics.witness_failures.inc();
                        tracing::warn!(witness = %witness.name, %error, "a witness's cosignature does not verify");
                    }
                }
            }
            Err(error) => {
                metrics.witness_failures.inc();
                tracing::warn!(witness = %witness.name, size = checkpoint.size, %error, "a witness did not cosign");
            }
        }
    }
    metrics.witness_cosignatures.set(count);
    *cosigned.latest.lock() = Some((checkpoint.size, format!("{note}{lines}")));
}

/// One witness's cosignature line for `note`, learning its size on a 409.
async fn submit(
    client: &Client,
    log: &dyn EventLog,
    witness: &Witness,
    held: &mut u64,
    note: &str,
    checkpoint: &Checkpoint,
) -> Result<String, String> {
    for _ in 0..2 {
        if *held > checkpoint.size {
            return Err(format!(
                "the witness holds {} entries, more than this log's {}: it will not cosign a smaller log",
                held, checkpoint.size
            ));
        }
        let proof = log
            .consistency_proof(*held, checkpoint.size)
            .await
            .map_err(|error| error.to_string())?;
        let body = accord_tlog::add_checkpoint_body(*held, &proof, note);
        match post(client, witness, body).await? {
            Answer::Cosigned(line) => {
                *held = checkpoint.size;
                return Ok(line);
            }
            Answer::Holds(size) => *held = size,
            Answer::Refused(status, text) => {
                return Err(format!("refused ({status}): {}", text.trim()));
            }
        }
    }
    Err("the witness kept changing the size it holds".into())
}
