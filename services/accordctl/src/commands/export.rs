//! `accordctl export FILE`: NDJSON, one record a line with its hash-chain
//! fields and the raw record, then an end line that makes truncation visible
//! and carries the server's signed checkpoint of the last record.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, admin_client::AdminClient};
use serde_json::json;
use tokio_stream::StreamExt;

use super::{Outcome, progress_bar};
use crate::json;
use accord_server::hex;

pub(crate) async fn run(channel: Grpc, file: &Path) -> Outcome {
    let mut admin = AdminClient::new(channel);
    let head = admin
        .get_stats(v1::GetStatsRequest {})
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner()
        .head_position;
    let mut stream = admin
        .export_log(v1::ExportLogRequest { from_position: 1 })
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    let temporary = file.with_extension("partial");
    let mut out = BufWriter::new(
        std::fs::File::create(&temporary)
            .map_err(|error| format!("cannot write {}: {error}", temporary.display()))?,
    );
    let bar = progress_bar(head, "exporting");
    let mut records = 0u64;
    let mut last_hash = String::new();
    let mut checkpoint = None;
    while let Some(record) = stream.next().await {
        let record = record.map_err(|status| status.message().to_owned())?;
        let event = record
            .event
            .as_ref()
            .ok_or("the server sent a record without its event")?;
        last_hash = hex::encode(&record.hash);
        if let Some(signed) = &record.checkpoint {
            checkpoint = Some(json::checkpoint(signed));
        }
        let line = json!({
            "position": record.position,
            "hash": last_hash,
            "prev_hash": hex::encode(&record.prev_hash),
            "record": hex::encode(&record.record),
            "event": json::event(event),
        });
        writeln!(out, "{line}").map_err(|error| error.to_string())?;
        records += 1;
        bar.set_position(records);
    }
    writeln!(
        out,
        "{}",
        json!({"end": {"records": records, "last_hash": last_hash, "checkpoint": checkpoint}})
    )
    .map_err(|error| error.to_string())?;
    out.flush().map_err(|error| error.to_string())?;
    out.get_ref()
        .sync_all()
        .map_err(|error| error.to_string())?;
    std::fs::rename(&temporary, file).map_err(|error| error.to_string())?;
    bar.finish_and_clear();
    println!("exported {records} records to {}", file.display());
    Ok(ExitCode::SUCCESS)
}
