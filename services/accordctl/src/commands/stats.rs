//! `accordctl stats`.

use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, admin_client::AdminClient};

use super::Outcome;

pub(crate) async fn run(channel: Grpc, as_json: bool) -> Outcome {
    let stats = AdminClient::new(channel)
        .get_stats(v1::GetStatsRequest {})
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    if as_json {
        println!(
            "{}",
            crate::canonical::json(&stats, "accord.v1.GetStatsResponse")?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<18} {}", "head position", stats.head_position);
    println!("{:<18} {}", "events", stats.event_count);
    println!("{:<18} {}", "agreements", stats.agreement_count);
    println!(
        "{:<18} {:.1} MiB",
        "disk",
        stats.disk_bytes as f64 / 1_048_576.0
    );
    if let Some(checkpoint) = &stats.checkpoint {
        println!(
            "{:<18} position {}, hash {}, key {}",
            "signed checkpoint",
            checkpoint.position,
            accord_server::hex::encode(&checkpoint.hash),
            accord_server::hex::encode(&checkpoint.public_key)
        );
    }
    println!();
    println!("{:<14} {:>12} {:>8}", "projection", "checkpoint", "lag");
    for projection in &stats.projections {
        println!(
            "{:<14} {:>12} {:>8}",
            projection.name, projection.checkpoint, projection.lag
        );
    }
    Ok(ExitCode::SUCCESS)
}
