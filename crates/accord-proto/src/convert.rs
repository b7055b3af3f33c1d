//! Conversions between the wire types and the domain's. Requests become
//! domain commands (a missing or unknown value is an error naming the field);
//! events and read models become wire messages. Storage has its own
//! formats and conversions ([`crate::stored`]).

mod commands;
mod events;
mod views;

pub use commands::{command_from_wire, expected_version_from_wire};
pub use events::{event_to_wire, recorded_event_to_wire};
pub use views::{
    agreement_to_wire, localization_entry_to_wire, portfolio_to_wire, stage_from_wire,
    stage_to_wire,
};

use accord_domain::{Timestamp, ValidationError};

/// A wire value that cannot be turned into a domain value.
pub type WireError = ValidationError;

/// Returns the domain instant of a wire timestamp.
pub fn timestamp_to_domain(timestamp: &prost_types::Timestamp) -> Timestamp {
    Timestamp {
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
    }
}

/// Returns the wire timestamp of a domain instant.
pub fn timestamp_from_domain(timestamp: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: timestamp.seconds,
        nanos: timestamp.nanos,
    }
}

fn required_timestamp(
    field: &str,
    timestamp: Option<prost_types::Timestamp>,
) -> Result<Timestamp, WireError> {
    timestamp
        .as_ref()
        .map(timestamp_to_domain)
        .ok_or_else(|| ValidationError::new(field, "is required"))
}
