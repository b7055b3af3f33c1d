//! The demo dataset: the agreements signed on the margins of the 80th UN
//! General Assembly (September 2025), kept in `data/unga80-agreements.json`
//! and turned into `accord.v1` commands with stable command ids, so that
//! loading it twice appends nothing the second time.

mod timestamp;

use accord_proto::v1;
use serde::Deserialize;

pub use timestamp::parse_rfc3339_utc;

/// The dataset file, as shipped in the repository.
pub const UNGA80_JSON: &str = include_str!("../../../data/unga80-agreements.json");

/// Why the dataset cannot be turned into commands.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// The file is not the expected JSON.
    #[error("dataset is not valid: {0}")]
    Json(#[from] serde_json::Error),
    /// A value in the file is not what the contract takes.
    #[error("dataset command {index} ({rpc}): {reason}")]
    Value {
        /// Index of the command in the file.
        index: usize,
        /// Its RPC.
        rpc: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Deserialize)]
struct Dataset {
    commands: Vec<Entry>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Entry {
    rpc: String,
    agreement_id: String,
    title: String,
    kind: String,
    buyer: Option<PartyEntry>,
    supplier: Option<PartyEntry>,
    sector: String,
    product: String,
    quantity: Option<u64>,
    value: Option<MoneyEntry>,
    announced_at: String,
    venue: String,
    source: String,
    signed_at: String,
    signatories: Vec<String>,
    localization_rate_bp: u32,
    facility: String,
    local_units: u64,
    technology_transfer: Vec<String>,
    recorded_at: String,
    units: u64,
    delivered_at: String,
    reference: String,
}

#[derive(Deserialize)]
struct PartyEntry {
    name: String,
    country: String,
}

#[derive(Deserialize)]
struct MoneyEntry {
    currency: String,
    minor_units: i64,
}

/// Returns the UNGA 80 facts as commands, in file order.
pub fn unga80_commands() -> Result<Vec<v1::Command>, DatasetError> {
    commands_from_json(UNGA80_JSON)
}

/// Returns the commands of a dataset in the UNGA 80 file's shape.
pub fn commands_from_json(json: &str) -> Result<Vec<v1::Command>, DatasetError> {
    let dataset: Dataset = serde_json::from_str(json)?;
    dataset
        .commands
        .into_iter()
        .enumerate()
        .map(|(index, entry)| to_command(index, entry))
        .collect()
}

fn to_command(index: usize, entry: Entry) -> Result<v1::Command, DatasetError> {
    let rpc = entry.rpc.clone();
    let fail = |reason: String| DatasetError::Value {
        index,
        rpc: rpc.clone(),
        reason,
    };
    let instant = |field: &str, value: &str| {
        parse_rfc3339_utc(value)
            .map(Some)
            .ok_or_else(|| fail(format!("{field} {value:?} is not an RFC 3339 UTC instant")))
    };
    let meta = Some(v1::CommandMeta {
        command_id: format!("unga80/{}/{}", entry.agreement_id, entry.rpc),
        ..Default::default()
    });
    use v1::command::Command;
    let command = match entry.rpc.as_str() {
        "Announce" => Command::Announce(v1::AnnounceRequest {
            meta,
            kind: v1::AgreementKind::from_str_name(&entry.kind)
                .ok_or_else(|| fail(format!("unknown kind {:?}", entry.kind)))?
                as i32,
            announced_at: instant("announced_at", &entry.announced_at)?,
            agreement_id: entry.agreement_id,
            title: entry.title,
            buyer: entry.buyer.map(party),
            supplier: entry.supplier.map(party),
            sector: entry.sector,
            product: entry.product,
            quantity: entry.quantity,
            value: entry.value.map(money),
            venue: entry.venue,
            source: entry.source,
        }),
        "Sign" => Command::Sign(v1::SignRequest {
            meta,
            signed_at: instant("signed_at", &entry.signed_at)?,
            agreement_id: entry.agreement_id,
            signatories: entry.signatories,
            value: entry.value.map(money),
            quantity: entry.quantity,
        }),
        "RecordDelivery" => Command::RecordDelivery(v1::RecordDeliveryRequest {
            meta,
            delivered_at: instant("delivered_at", &entry.delivered_at)?,
            agreement_id: entry.agreement_id,
            units: entry.units,
            reference: entry.reference,
        }),
        "RecordLocalization" => Command::RecordLocalization(v1::RecordLocalizationRequest {
            meta,
            recorded_at: instant("recorded_at", &entry.recorded_at)?,
            agreement_id: entry.agreement_id,
            localization_rate_bp: entry.localization_rate_bp,
            facility: entry.facility,
            local_units: entry.local_units,
            technology_transfer: entry.technology_transfer,
        }),
        other => return Err(fail(format!("unknown rpc {other:?}"))),
    };
    Ok(v1::Command {
        command: Some(command),
    })
}

fn party(entry: PartyEntry) -> v1::Party {
    v1::Party {
        name: entry.name,
        country: entry.country,
    }
}

fn money(entry: MoneyEntry) -> v1::Money {
    v1::Money {
        currency: entry.currency,
        minor_units: entry.minor_units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_dataset_becomes_nine_commands() {
        let commands = unga80_commands().expect("valid dataset");
        assert_eq!(commands.len(), 9);
        let Some(v1::command::Command::Announce(boeing)) = &commands[0].command else {
            panic!("the first command announces the Boeing order");
        };
        assert_eq!(
            boeing.value.as_ref().map(|value| value.minor_units),
            Some(850_000_000_000)
        );
        assert_eq!(
            boeing.announced_at.as_ref().map(|at| at.seconds),
            Some(1_758_585_600)
        );
        assert_eq!(
            boeing.meta.as_ref().map(|meta| meta.command_id.as_str()),
            Some("unga80/uz-boeing-787/Announce")
        );
    }

    #[test]
    fn unknown_rpcs_are_reported_with_their_index() {
        let error =
            commands_from_json(r#"{"commands": [{"rpc": "Cancel"}]}"#).expect_err("refused");
        assert!(error.to_string().contains("command 0 (Cancel)"), "{error}");
    }
}
