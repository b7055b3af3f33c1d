//! Conversions between the domain and Accord's storage formats
//! (`accord.storage.v1`), apart from the wire API: a change to the public
//! contract is not a change to the disk, and the reverse.
//!
//! Schema versions. A log record's frame carries the schema version of its
//! body (`accord_store::RECORD_SCHEMA_VERSION`); read models carry one for
//! the whole database (`accord_projections`). When a stored message changes
//! incompatibly, the version is raised and the reader of the old version
//! upcasts it to the current messages in one place (log records) or the
//! read models are rebuilt from the log (they are derived data). Records are
//! never rewritten: the hash chain covers their bytes.

mod events;
mod portfolio;
mod views;

pub use events::{event_from_stored, event_to_stored, metadata_from_stored, metadata_to_stored};
pub use portfolio::{portfolio_from_stored, portfolio_to_stored};
pub use views::{agreement_from_stored, agreement_to_stored};

use accord_domain::{AgreementKind, Money, Party, Stage, Timestamp};

use crate::storage;

/// A stored value that does not convert to a domain value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl FormatError {
    fn new(field: &'static str, problem: impl Into<String>) -> Self {
        Self {
            field,
            problem: problem.into(),
        }
    }
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "stored field {} {}", self.field, self.problem)
    }
}

impl std::error::Error for FormatError {}

fn timestamp_to_stored(timestamp: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
    }
}

fn timestamp_from_stored(timestamp: &prost_types::Timestamp) -> Timestamp {
    Timestamp {
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
    }
}

fn required_timestamp(
    field: &'static str,
    timestamp: Option<prost_types::Timestamp>,
) -> Result<Timestamp, FormatError> {
    timestamp
        .as_ref()
        .map(timestamp_from_stored)
        .ok_or_else(|| FormatError::new(field, "is missing"))
}

fn party_to_stored(party: &Party) -> storage::Party {
    storage::Party {
        name: party.name.clone(),
        country: party.country.clone(),
    }
}

fn party_from_stored(party: Option<storage::Party>) -> Party {
    party
        .map(|party| Party {
            name: party.name,
            country: party.country,
        })
        .unwrap_or_default()
}

fn money_to_stored(money: &Money) -> storage::Money {
    storage::Money {
        currency: money.currency.clone(),
        minor_units: money.minor_units,
    }
}

fn money_from_stored(money: storage::Money) -> Money {
    Money {
        currency: money.currency,
        minor_units: money.minor_units,
    }
}

fn kind_to_stored(kind: AgreementKind) -> storage::Kind {
    match kind {
        AgreementKind::Procurement => storage::Kind::Procurement,
        AgreementKind::Cooperation => storage::Kind::Cooperation,
        AgreementKind::Investment => storage::Kind::Investment,
    }
}

fn kind_from_stored(kind: i32) -> Result<AgreementKind, FormatError> {
    match storage::Kind::try_from(kind) {
        Ok(storage::Kind::Procurement) => Ok(AgreementKind::Procurement),
        Ok(storage::Kind::Cooperation) => Ok(AgreementKind::Cooperation),
        Ok(storage::Kind::Investment) => Ok(AgreementKind::Investment),
        _ => Err(FormatError::new(
            "kind",
            format!("has unknown value {kind}"),
        )),
    }
}

fn stage_to_stored(stage: Stage) -> storage::Stage {
    match stage {
        Stage::Announced => storage::Stage::Announced,
        Stage::Signed => storage::Stage::Signed,
        Stage::Delivering => storage::Stage::Delivering,
        Stage::Delivered => storage::Stage::Delivered,
    }
}

fn stage_from_stored(stage: i32) -> Result<Stage, FormatError> {
    match storage::Stage::try_from(stage) {
        Ok(storage::Stage::Announced) => Ok(Stage::Announced),
        Ok(storage::Stage::Signed) => Ok(Stage::Signed),
        Ok(storage::Stage::Delivering) => Ok(Stage::Delivering),
        Ok(storage::Stage::Delivered) => Ok(Stage::Delivered),
        _ => Err(FormatError::new(
            "stage",
            format!("has unknown value {stage}"),
        )),
    }
}
