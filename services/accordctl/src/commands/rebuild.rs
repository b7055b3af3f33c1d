//! `accordctl rebuild`.

use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, admin_client::AdminClient};
use tokio_stream::StreamExt;

use super::{Outcome, progress_bar};

pub(crate) async fn run(channel: Grpc, names: Vec<String>) -> Outcome {
    let mut stream = AdminClient::new(channel)
        .rebuild_projections(v1::RebuildProjectionsRequest { names })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    let bar = progress_bar(0, "rebuilding");
    while let Some(progress) = stream.next().await {
        let progress = progress.map_err(|status| status.message().to_owned())?;
        bar.set_message(format!("rebuilding {}", progress.name));
        bar.set_length(progress.head_position);
        bar.set_position(progress.position);
        if progress.done {
            bar.finish_and_clear();
            println!(
                "{} rebuilt to position {} ({:.0} events/s); now serving",
                progress.name, progress.position, progress.events_per_second
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
    bar.finish_and_clear();
    Err("the server ended the rebuild without finishing it".into())
}
