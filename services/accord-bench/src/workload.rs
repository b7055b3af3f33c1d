//! The requests every system gets: one agreement per client, announced and
//! signed, then deliveries of one unit each.

use std::net::SocketAddr;

use accord_proto::v1;
use tonic::transport::Channel;

/// Opens `count` connections to `addr`.
pub(crate) async fn connect_many(addr: SocketAddr, count: usize) -> Result<Vec<Channel>, String> {
    let mut channels = Vec::with_capacity(count);
    for _ in 0..count {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|error| error.to_string())?
            .connect()
            .await
            .map_err(|error| format!("cannot connect to {addr}: {error}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

fn at() -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp {
        seconds: 1_758_585_600,
        nanos: 0,
    })
}

fn meta(command_id: String) -> Option<v1::CommandMeta> {
    Some(v1::CommandMeta {
        command_id,
        ..Default::default()
    })
}

/// Announces a locomotive order big enough for any run.
pub(crate) fn announce(agreement_id: &str) -> v1::AnnounceRequest {
    v1::AnnounceRequest {
        meta: meta(format!("{agreement_id}/announce")),
        agreement_id: agreement_id.to_owned(),
        title: "Kazakhstan contract for 300 Wabtec freight locomotives".into(),
        kind: v1::AgreementKind::Procurement as i32,
        buyer: Some(v1::Party {
            name: "Kazakhstan".into(),
            country: "KZ".into(),
        }),
        supplier: Some(v1::Party {
            name: "Wabtec Corp.".into(),
            country: "US".into(),
        }),
        sector: "rail".into(),
        product: "freight locomotive".into(),
        quantity: Some(u64::MAX / 2),
        value: Some(v1::Money {
            currency: "USD".into(),
            minor_units: 420_000_000_000,
        }),
        announced_at: at(),
        venue: "80th UN General Assembly, New York".into(),
        source: "benchmark".into(),
    }
}

/// Signs the agreement.
pub(crate) fn sign(agreement_id: &str) -> v1::SignRequest {
    v1::SignRequest {
        meta: meta(format!("{agreement_id}/sign")),
        agreement_id: agreement_id.to_owned(),
        signed_at: at(),
        signatories: vec!["Government of Kazakhstan".into(), "Wabtec Corp.".into()],
        value: None,
        quantity: None,
    }
}

/// Records delivery number `sequence` of one unit.
pub(crate) fn deliver(agreement_id: &str, sequence: u64) -> v1::RecordDeliveryRequest {
    v1::RecordDeliveryRequest {
        meta: meta(format!("{agreement_id}/delivery/{sequence}")),
        agreement_id: agreement_id.to_owned(),
        units: 1,
        delivered_at: at(),
        reference: format!("waybill {sequence}"),
    }
}

/// Announces and signs `agreement_id`.
pub(crate) async fn prepare(channel: &Channel, agreement_id: &str) -> Result<(), String> {
    let mut client = v1::agreement_service_client::AgreementServiceClient::new(channel.clone());
    client
        .announce(announce(agreement_id))
        .await
        .map_err(|status| status.to_string())?;
    client
        .sign(sign(agreement_id))
        .await
        .map_err(|status| status.to_string())?;
    Ok(())
}
