//! Requests built from the UNGA 80 facts, with helpers to vary them.

use accord_proto::v1;

/// 2025-09-23T00:00:00Z, the week of the 80th UN General Assembly.
pub const UNGA_80_WEEK: i64 = 1_758_585_600;

/// A wire timestamp at `seconds` after the epoch.
pub fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

/// Meta with just a command id.
pub fn meta(command_id: &str) -> Option<v1::CommandMeta> {
    Some(v1::CommandMeta {
        command_id: command_id.into(),
        ..Default::default()
    })
}

/// Meta with a command id and an exact expected version.
pub fn meta_expecting(command_id: &str, version: u64) -> Option<v1::CommandMeta> {
    Some(v1::CommandMeta {
        command_id: command_id.into(),
        expected_version: Some(v1::ExpectedVersion {
            kind: Some(v1::expected_version::Kind::Exact(version)),
        }),
        ..Default::default()
    })
}

/// The Boeing 787 order for Uzbekistan Airways, under another id.
pub fn announce_boeing(agreement_id: &str) -> v1::AnnounceRequest {
    v1::AnnounceRequest {
        meta: meta(&format!("{agreement_id}/announce")),
        agreement_id: agreement_id.into(),
        title: "Uzbekistan Airways order for 22 Boeing 787 Dreamliners".into(),
        kind: v1::AgreementKind::Procurement as i32,
        buyer: Some(v1::Party {
            name: "Uzbekistan Airways".into(),
            country: "UZ".into(),
        }),
        supplier: Some(v1::Party {
            name: "Boeing".into(),
            country: "US".into(),
        }),
        sector: "aviation".into(),
        product: "Boeing 787 Dreamliner".into(),
        quantity: Some(22),
        value: Some(v1::Money {
            currency: "USD".into(),
            minor_units: 850_000_000_000,
        }),
        announced_at: at(UNGA_80_WEEK),
        venue: "80th UN General Assembly, New York".into(),
        source: "US Department of Commerce".into(),
    }
}

/// The Wabtec locomotives for Kazakhstan, under another id.
pub fn announce_wabtec(agreement_id: &str) -> v1::AnnounceRequest {
    v1::AnnounceRequest {
        meta: meta(&format!("{agreement_id}/announce")),
        agreement_id: agreement_id.into(),
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
        quantity: Some(300),
        value: Some(v1::Money {
            currency: "USD".into(),
            minor_units: 420_000_000_000,
        }),
        announced_at: at(UNGA_80_WEEK),
        venue: "80th UN General Assembly, New York".into(),
        source: "US Commerce Secretary".into(),
    }
}

/// Signs `agreement_id`.
pub fn sign(agreement_id: &str) -> v1::SignRequest {
    v1::SignRequest {
        meta: meta(&format!("{agreement_id}/sign")),
        agreement_id: agreement_id.into(),
        signed_at: at(UNGA_80_WEEK),
        signatories: vec!["Government".into(), "Supplier".into()],
        value: None,
        quantity: None,
    }
}

/// Delivers `units` under `agreement_id`, with command id `command_id`.
pub fn deliver(agreement_id: &str, command_id: &str, units: u64) -> v1::RecordDeliveryRequest {
    v1::RecordDeliveryRequest {
        meta: meta(command_id),
        agreement_id: agreement_id.into(),
        units,
        delivered_at: at(UNGA_80_WEEK + 86_400),
        reference: format!("delivery {command_id}"),
    }
}

/// Records 45 % localization at the Astana plant for `agreement_id`.
pub fn localize(agreement_id: &str, command_id: &str) -> v1::RecordLocalizationRequest {
    v1::RecordLocalizationRequest {
        meta: meta(command_id),
        agreement_id: agreement_id.into(),
        localization_rate_bp: 4_500,
        facility: "Wabtec plant, Astana".into(),
        local_units: 0,
        technology_transfer: vec![
            "technology and engineering centre in Astana (opened 2024)".into(),
            "workforce training".into(),
        ],
        recorded_at: at(UNGA_80_WEEK),
    }
}

/// Wraps a request as an `Execute` command.
pub fn command(command: v1::command::Command) -> v1::Command {
    v1::Command {
        command: Some(command),
    }
}

/// Appends `count` deliveries of one unit to a fresh agreement `id`, in
/// Execute calls of up to 1,000, over a connection of its own (subscribers
/// that do not read would otherwise hold the shared connection's flow-control
/// window, as with any HTTP/2 client).
pub async fn append_deliveries(server: &crate::TestServer, id: &str, count: usize) -> u64 {
    append_deliveries_at(server.server().grpc_addr(), id, count).await
}

/// [`append_deliveries`] to the server at `addr`.
pub async fn append_deliveries_at(addr: std::net::SocketAddr, id: &str, count: usize) -> u64 {
    let channel = crate::connect(addr).await;
    let mut client =
        accord_proto::v1::agreement_service_client::AgreementServiceClient::new(channel);
    let mut announce = announce_wabtec(id);
    announce.quantity = Some(10_000_000);
    client.announce(announce).await.expect("announced");
    let mut last = client
        .sign(sign(id))
        .await
        .expect("signed")
        .into_inner()
        .position;
    let mut sent = 0;
    while sent < count {
        let chunk = (count - sent).min(1_000);
        let commands = (sent..sent + chunk)
            .map(|index| {
                command(v1::command::Command::RecordDelivery(deliver(
                    id,
                    &format!("{id}/{index}"),
                    1,
                )))
            })
            .collect();
        let results = client
            .execute(v1::ExecuteRequest { commands })
            .await
            .expect("executed")
            .into_inner()
            .results;
        last = results.last().expect("results").position;
        sent += chunk;
    }
    last
}

/// Loads the UNGA 80 facts through `Execute` and returns the head once the
/// read models have applied it (a view read right after shows the facts).
pub async fn load_unga80(server: &crate::TestServer) -> u64 {
    let commands = accord_dataset::unga80_commands().expect("dataset");
    let results = server
        .agreements()
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("dataset loads")
        .into_inner()
        .results;
    let head = results.last().expect("results").position;
    server
        .agreements()
        .list_agreements(v1::ListAgreementsRequest {
            page_size: 1,
            min_position: head,
            ..Default::default()
        })
        .await
        .expect("the read models apply the dataset");
    head
}

/// A client of `server` after announcing (Wabtec's facts) and signing
/// agreement `id`.
pub async fn signed_agreement(
    server: &crate::TestServer,
    id: &str,
) -> accord_proto::v1::agreement_service_client::AgreementServiceClient<tonic::transport::Channel> {
    let mut agreements = server.agreements();
    agreements
        .announce(announce_wabtec(id))
        .await
        .expect("announced");
    agreements.sign(sign(id)).await.expect("signed");
    agreements
}
