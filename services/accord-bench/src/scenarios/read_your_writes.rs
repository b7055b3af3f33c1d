//! `read-your-writes`: N clients each append one event, then read their
//! agreement with `min_position` at that append, as a client that must see
//! its own write does. The latency reported is the read's: how long the
//! read models take to show a write to the one who waits for it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_proto::v1;

use super::closed_loop;
use crate::process::Target;
use crate::report::{Outcome, latency_histogram};
use crate::workload::deliver;

pub(crate) async fn run(
    target: &Target,
    clients: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let extra = BTreeMap::from([("clients".to_owned(), clients as f64)]);
    closed_loop::run_clients(
        target,
        "read-your-writes",
        clients,
        duration,
        extra,
        |mut agreements, agreement_id, deadline| async move {
            let mut reads = latency_histogram();
            let mut sequence = 0;
            while Instant::now() < deadline {
                let appended = agreements
                    .record_delivery(deliver(&agreement_id, sequence))
                    .await
                    .map_err(|status| status.to_string())?
                    .into_inner();
                sequence += 1;
                let asked = Instant::now();
                let agreement = agreements
                    .get_agreement(v1::GetAgreementRequest {
                        agreement_id: agreement_id.clone(),
                        min_position: appended.position,
                        as_of_position: 0,
                    })
                    .await
                    .map_err(|status| status.to_string())?
                    .into_inner();
                reads.saturating_record(asked.elapsed().as_micros() as u64);
                if agreement.version < appended.version {
                    return Err(format!(
                        "{agreement_id}: read version {} after writing version {}",
                        agreement.version, appended.version
                    ));
                }
            }
            Ok((sequence, reads))
        },
    )
    .await
}
