//! The four commands; each one, when accepted, produces exactly one event.

use crate::{AgreementKind, Money, Party, Timestamp};

/// Records that an agreement was announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announce {
    /// `^[a-z0-9][a-z0-9._-]{0,127}$`.
    pub agreement_id: String,
    /// Human title.
    pub title: String,
    /// Procurement, cooperation or investment.
    pub kind: AgreementKind,
    /// Who buys (the country whose portfolio it counts in).
    pub buyer: Party,
    /// Who supplies.
    pub supplier: Party,
    /// Lower-case word (`aviation`).
    pub sector: String,
    /// What is bought or agreed.
    pub product: String,
    /// Contracted units, when countable.
    pub quantity: Option<u64>,
    /// Announced value.
    pub value: Option<Money>,
    /// When it was announced.
    pub announced_at: Timestamp,
    /// Where it was announced.
    pub venue: String,
    /// Where the fact comes from.
    pub source: String,
}

/// Records that an announced agreement was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sign {
    /// The agreement.
    pub agreement_id: String,
    /// When it was signed.
    pub signed_at: Timestamp,
    /// Who signed.
    pub signatories: Vec<String>,
    /// Final value, replacing the announced one when given.
    pub value: Option<Money>,
    /// Final quantity, replacing the announced one when given.
    pub quantity: Option<u64>,
}

/// Records a delivery of units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordDelivery {
    /// The agreement.
    pub agreement_id: String,
    /// Units delivered, more than zero.
    pub units: u64,
    /// When they were delivered.
    pub delivered_at: Timestamp,
    /// Delivery note or other reference.
    pub reference: String,
}

/// Records the localization reached so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLocalization {
    /// The agreement.
    pub agreement_id: String,
    /// Share of local production, 0..=10000 basis points.
    pub localization_rate_bp: u32,
    /// Where local production happens.
    pub facility: String,
    /// Units produced locally so far.
    pub local_units: u64,
    /// Technology transferred (added to what was recorded before).
    pub technology_transfer: Vec<String>,
    /// When it was recorded.
    pub recorded_at: Timestamp,
}

/// One of the four commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// See [`Announce`].
    Announce(Announce),
    /// See [`Sign`].
    Sign(Sign),
    /// See [`RecordDelivery`].
    RecordDelivery(RecordDelivery),
    /// See [`RecordLocalization`].
    RecordLocalization(RecordLocalization),
}

impl Command {
    /// True for the one command that may open an agreement (the command
    /// form of [`crate::Event::opens_agreement`]).
    pub fn opens_agreement(&self) -> bool {
        matches!(self, Command::Announce(_))
    }

    /// Returns the agreement the command is about.
    pub fn agreement_id(&self) -> &str {
        match self {
            Command::Announce(command) => &command.agreement_id,
            Command::Sign(command) => &command.agreement_id,
            Command::RecordDelivery(command) => &command.agreement_id,
            Command::RecordLocalization(command) => &command.agreement_id,
        }
    }

    /// Returns the RPC name of the command, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Announce(_) => "Announce",
            Command::Sign(_) => "Sign",
            Command::RecordDelivery(_) => "RecordDelivery",
            Command::RecordLocalization(_) => "RecordLocalization",
        }
    }
}
