//! `append`: N clients, one command per RPC, as fast as each can go.

use std::collections::BTreeMap;
use std::time::Duration;

use super::closed_loop;
use crate::process::Target;
use crate::report::Outcome;
use crate::workload::deliver;

pub(crate) async fn run(
    target: &Target,
    clients: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let extra = BTreeMap::from([("clients".to_owned(), clients as f64)]);
    closed_loop::run(
        target,
        "append",
        clients,
        duration,
        extra,
        |mut agreements, agreement_id, sequence| async move {
            agreements
                .record_delivery(deliver(&agreement_id, sequence))
                .await
                .map_err(|status| status.to_string())?;
            Ok(1)
        },
    )
    .await
}
