//! `batch`: N clients, `Execute` with K commands per RPC.

use std::collections::BTreeMap;
use std::time::Duration;

use accord_proto::v1;

use super::closed_loop;
use crate::process::Target;
use crate::report::Outcome;
use crate::workload::deliver;

pub(crate) async fn run(
    target: &Target,
    clients: usize,
    batch_size: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let extra = BTreeMap::from([
        ("clients".to_owned(), clients as f64),
        ("commands_per_execute".to_owned(), batch_size as f64),
    ]);
    closed_loop::run(
        target,
        "batch",
        clients,
        duration,
        extra,
        move |mut agreements, agreement_id, sequence| async move {
            let commands = (0..batch_size as u64)
                .map(|offset| v1::Command {
                    command: Some(v1::command::Command::RecordDelivery(deliver(
                        &agreement_id,
                        sequence + offset,
                    ))),
                })
                .collect();
            agreements
                .execute(v1::ExecuteRequest { commands })
                .await
                .map_err(|status| status.to_string())?;
            Ok(batch_size as u64)
        },
    )
    .await
}
