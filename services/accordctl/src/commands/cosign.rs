//! `accordctl cosign --witness URL`: asks a witness (C2SP `tlog-witness`)
//! to cosign the server's latest checkpoint, proving it consistent with the
//! last one the witness cosigned; prints the cosigned note. Exit 1 when the
//! witness refuses: a rollback, a rewritten history, or a split view.

use std::process::ExitCode;

use accord_proto::v1::{self, transparency_client::TransparencyClient};
use bytes::Bytes;
use ed25519_dalek::VerifyingKey;
use http_body_util::{BodyExt, Full};

use super::Outcome;
use crate::connection::Grpc;

/// POSTs an `add-checkpoint` request; the status and the answer's text.
async fn add_checkpoint(witness: &str, body: String) -> Result<(u16, String), String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let request = hyper::Request::post(format!("{}/add-checkpoint", witness.trim_end_matches('/')))
        .header("content-type", "text/plain")
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| format!("--witness {witness}: {error}"))?;
    let response = client
        .request(request)
        .await
        .map_err(|error| format!("the witness at {witness}: {error}"))?;
    let status = response.status().as_u16();
    let text = response
        .into_body()
        .collect()
        .await
        .map_err(|error| format!("the witness's answer: {error}"))?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&text).into_owned()))
}

pub(crate) async fn run(channel: Grpc, key: &VerifyingKey, witness: &str) -> Outcome {
    let mut transparency = TransparencyClient::new(channel);
    let note = transparency
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner()
        .note;
    let checkpoint = super::proofs::open(&note, key, None)
        .map_err(|error| format!("the server's checkpoint: {error}"))?;
    // The witness says which size it holds when the first guess is wrong.
    let mut old = 0;
    for _ in 0..2 {
        let mut proof = Vec::new();
        if old > 0 && old <= checkpoint.size {
            let hashes = transparency
                .get_consistency_proof(v1::GetConsistencyProofRequest {
                    first_size: old,
                    second_size: checkpoint.size,
                })
                .await
                .map_err(|status| status.message().to_owned())?
                .into_inner()
                .hashes;
            for hash in hashes {
                proof.push(
                    <[u8; 32]>::try_from(hash.as_slice())
                        .map_err(|_| "a proof hash is not 32 bytes".to_owned())?,
                );
            }
        }
        let body = accord_tlog::add_checkpoint_body(old, &proof, &note);
        let (status, text) = add_checkpoint(witness, body).await?;
        match status {
            200 => {
                print!("{note}{text}");
                eprintln!(
                    "cosigned: {} at {} entries",
                    checkpoint.origin, checkpoint.size
                );
                return Ok(ExitCode::SUCCESS);
            }
            409 => {
                let held = accord_tlog::parse_size(&text)
                    .ok_or_else(|| format!("the witness answered 409 without a size: {text}"))?;
                if held > checkpoint.size {
                    eprintln!(
                        "ROLLBACK: the witness cosigned {held} entries of {}; the server's log has {}",
                        checkpoint.origin, checkpoint.size
                    );
                    return Ok(ExitCode::from(1));
                }
                old = held;
            }
            _ => {
                eprintln!("REFUSED by the witness ({status}): {}", text.trim());
                return Ok(ExitCode::from(1));
            }
        }
    }
    Err("the witness kept changing the size it holds".into())
}
