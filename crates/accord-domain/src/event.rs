//! Events (past-tense facts) and the envelope they are recorded in.

use crate::{AgreementKind, Money, Party, Timestamp};

/// An agreement was announced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    /// Human title.
    pub title: String,
    /// Procurement, cooperation or investment.
    pub kind: AgreementKind,
    /// Who buys.
    pub buyer: Party,
    /// Who supplies.
    pub supplier: Party,
    /// Lower-case word.
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

/// An agreement was signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// When.
    pub signed_at: Timestamp,
    /// Who signed.
    pub signatories: Vec<String>,
    /// Final value, when it replaces the announced one.
    pub value: Option<Money>,
    /// Final quantity, when it replaces the announced one.
    pub quantity: Option<u64>,
}

/// Units were delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecorded {
    /// Units in this delivery.
    pub units: u64,
    /// When.
    pub delivered_at: Timestamp,
    /// Delivery reference.
    pub reference: String,
}

/// Localization progress was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalizationRecorded {
    /// Share of local production in basis points.
    pub localization_rate_bp: u32,
    /// Local facility.
    pub facility: String,
    /// Units produced locally so far.
    pub local_units: u64,
    /// Technology transferred.
    pub technology_transfer: Vec<String>,
    /// When.
    pub recorded_at: Timestamp,
}

/// One of the four events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// See [`Announced`].
    Announced(Announced),
    /// See [`Signed`].
    Signed(Signed),
    /// See [`DeliveryRecorded`].
    DeliveryRecorded(DeliveryRecorded),
    /// See [`LocalizationRecorded`].
    LocalizationRecorded(LocalizationRecorded),
}

impl Event {
    /// True for the one event that may open an agreement's stream: every
    /// agreement begins with its announcement.
    pub fn opens_agreement(&self) -> bool {
        matches!(self, Event::Announced(_))
    }

    /// Every event type name, in the order of the contract.
    pub const TYPES: [&'static str; 4] = [
        "agreement.announced",
        "agreement.signed",
        "agreement.delivery_recorded",
        "agreement.localization_recorded",
    ];

    /// Returns the event type name (`agreement.signed`).
    pub fn event_type(&self) -> &'static str {
        match self {
            Event::Announced(_) => Self::TYPES[0],
            Event::Signed(_) => Self::TYPES[1],
            Event::DeliveryRecorded(_) => Self::TYPES[2],
            Event::LocalizationRecorded(_) => Self::TYPES[3],
        }
    }
}

/// Who and what caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventMetadata {
    /// The idempotency key of the command that produced the event.
    pub command_id: String,
    /// Correlation id given by the caller.
    pub correlation_id: String,
    /// Causation id given by the caller.
    pub causation_id: String,
    /// Who sent the command (a token name), empty when unauthenticated.
    pub actor: String,
}

/// An event as recorded in the log: the envelope and the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Place in the global log, from 1, gap-free.
    pub position: u64,
    /// The agreement's id.
    pub agreement_id: String,
    /// Number within the agreement, from 1.
    pub version: u64,
    /// UUID bytes.
    pub event_id: [u8; 16],
    /// When the log recorded it.
    pub recorded_at: Timestamp,
    /// Command id, correlation and actor.
    pub metadata: EventMetadata,
    /// The fact itself.
    pub event: Event,
}
