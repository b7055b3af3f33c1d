//! Value types shared by commands, events and read models.

use std::fmt;

/// An instant, as seconds and nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1_000_000_000.
    pub nanos: i32,
}

impl Timestamp {
    /// Returns the instant at `seconds` after the epoch.
    pub const fn from_seconds(seconds: i64) -> Self {
        Self { seconds, nanos: 0 }
    }

    /// Returns the instant as nanoseconds since the epoch, saturating outside i64.
    pub fn unix_nanos(self) -> i64 {
        (self.seconds as i128 * 1_000_000_000 + self.nanos as i128)
            .clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }

    /// Returns the instant `unix_nanos` nanoseconds after the epoch.
    pub fn from_unix_nanos(unix_nanos: i64) -> Self {
        Self {
            seconds: unix_nanos.div_euclid(1_000_000_000),
            nanos: unix_nanos.rem_euclid(1_000_000_000) as i32,
        }
    }
}

/// An amount in one currency, in minor units (cents).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Money {
    /// ISO 4217 code, three upper-case letters.
    pub currency: String,
    /// Amount in minor units; never negative once validated.
    pub minor_units: i64,
}

impl Money {
    /// Returns `minor_units` of `currency`.
    pub fn new(currency: impl Into<String>, minor_units: i64) -> Self {
        Self {
            currency: currency.into(),
            minor_units,
        }
    }
}

/// A party to an agreement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Party {
    /// Organisation or government name.
    pub name: String,
    /// ISO 3166-1 alpha-2, upper case.
    pub country: String,
}

impl Party {
    /// Returns a party named `name` from `country`.
    pub fn new(name: impl Into<String>, country: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            country: country.into(),
        }
    }
}

/// What kind of agreement it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgreementKind {
    /// A purchase of goods or services.
    Procurement,
    /// A cooperation protocol or memorandum.
    Cooperation,
    /// An investment.
    Investment,
}

/// Where an agreement is in its lifecycle; stages only move forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// Announced, not yet signed.
    Announced,
    /// Signed, nothing delivered yet.
    Signed,
    /// Some contracted units delivered.
    Delivering,
    /// All contracted units delivered.
    Delivered,
}

impl Stage {
    /// Returns the contract's name for the stage (`AGREEMENT_STAGE_SIGNED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Announced => "AGREEMENT_STAGE_ANNOUNCED",
            Stage::Signed => "AGREEMENT_STAGE_SIGNED",
            Stage::Delivering => "AGREEMENT_STAGE_DELIVERING",
            Stage::Delivered => "AGREEMENT_STAGE_DELIVERED",
        }
    }

    /// Returns true once the agreement has been signed (any later stage too).
    pub fn is_signed(self) -> bool {
        self >= Stage::Signed
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
