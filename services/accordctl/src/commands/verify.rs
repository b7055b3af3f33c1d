//! `accordctl verify`: exits 1 and lists the problems when there are any.

use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, admin_client::AdminClient};
use tokio_stream::StreamExt;

use super::{Outcome, progress_bar};

pub(crate) async fn run(channel: Grpc) -> Outcome {
    let mut stream = AdminClient::new(channel)
        .verify_log(v1::VerifyLogRequest {})
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    let bar = progress_bar(0, "verifying");
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut head = 0;
    while let Some(progress) = stream.next().await {
        let progress = progress.map_err(|status| status.message().to_owned())?;
        bar.set_length(progress.head_position);
        bar.set_position(progress.checked);
        checked = progress.checked;
        head = progress.head_position;
        if progress.done {
            problems = progress.problems;
            break;
        }
    }
    bar.finish_and_clear();
    if problems.is_empty() {
        println!(
            "ok: {checked} records verified (head {head}): checksums, hash chain, positions and indexes"
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{} problem(s) in {checked} records (head {head}):",
        problems.len()
    );
    for problem in &problems {
        println!("  {problem}");
    }
    Ok(ExitCode::from(1))
}
