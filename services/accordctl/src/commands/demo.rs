//! `accordctl demo`: the UNGA 80 facts, through the public API.

use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, agreement_service_client::AgreementServiceClient};

use super::Outcome;

pub(crate) async fn run(channel: Grpc) -> Outcome {
    let commands = accord_dataset::unga80_commands().map_err(|error| error.to_string())?;
    let results = AgreementServiceClient::new(channel)
        .execute(v1::ExecuteRequest { commands })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner()
        .results;
    let new = results.iter().filter(|result| !result.duplicate).count();
    for result in &results {
        println!(
            "{:<32} version {:>2} at position {:>3}{}",
            result.agreement_id,
            result.version,
            result.position,
            if result.duplicate {
                " (already loaded)"
            } else {
                ""
            }
        );
    }
    println!("{new} new events, {} already loaded", results.len() - new);
    Ok(ExitCode::SUCCESS)
}
