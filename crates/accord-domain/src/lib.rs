//! Accord's domain, free of I/O: the commands that record an agreement's
//! lifecycle, the events they produce, the agreement state machine
//! (`decide` and `Agreement::apply`) and every validation and lifecycle rule
//! of the public contract. No tokio, no storage, no gRPC.

mod agreement;
mod command;
mod consumer_group;
mod decide;
mod error;
mod event;
mod expected_version;
mod portfolio;
mod types;
mod valid_command;
mod validate;

pub use agreement::Agreement;
pub use command::{Announce, Command, RecordDelivery, RecordLocalization, Sign};
pub use consumer_group::{
    ConsumerStrategy, Delivery, DispatchSettings, GroupState, MemberId, NackAction,
};
pub use decide::decide;
pub use error::{DomainError, ValidationError};
pub use event::{
    Announced, DeliveryRecorded, Event, EventMetadata, LocalizationRecorded, RecordedEvent, Signed,
};
pub use expected_version::ExpectedVersion;
pub use portfolio::PortfolioSums;
pub use types::{AgreementKind, Money, Party, Stage, Timestamp};
pub use valid_command::ValidCommand;
pub use validate::{
    limits, quoted, validate_agreement_id, validate_command_id, validate_country, validate_instant,
    validate_list_len, validate_text,
};
