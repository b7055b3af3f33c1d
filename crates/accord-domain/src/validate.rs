//! Field limits of the contract, checked before a command reaches the state machine.

use crate::{
    Announce, Command, Money, Party, RecordDelivery, RecordLocalization, Sign, Timestamp,
    ValidationError,
};

/// The contract's numeric limits.
pub mod limits {
    /// Longest command id, in characters.
    pub const COMMAND_ID_MAX_CHARS: usize = 128;
    /// Longest agreement id, in characters.
    pub const AGREEMENT_ID_MAX_CHARS: usize = 128;
    /// Longest name or title, in characters.
    pub const NAME_MAX_CHARS: usize = 200;
    /// Longest other text, in characters.
    pub const TEXT_MAX_CHARS: usize = 2_000;
    /// Most entries in a list.
    pub const LIST_MAX_ENTRIES: usize = 100;
    /// Most distinct technology transfers an agreement lists, over all its
    /// localization records.
    pub const TECHNOLOGY_TRANSFERS_PER_AGREEMENT: usize = 100;
    /// Highest rate in basis points (100 %).
    pub const RATE_MAX_BP: u32 = 10_000;
    /// 1900-01-01T00:00:00Z.
    pub const EARLIEST_INSTANT_SECONDS: i64 = -2_208_988_800;
    /// 2200-01-01T00:00:00Z.
    pub const LATEST_INSTANT_SECONDS: i64 = 7_258_118_400;
}

type Checked = Result<(), ValidationError>;

impl Command {
    /// Checks every field of the command against the contract's limits.
    pub fn validate(&self) -> Checked {
        match self {
            Command::Announce(command) => validate_announce(command),
            Command::Sign(command) => validate_sign(command),
            Command::RecordDelivery(command) => validate_delivery(command),
            Command::RecordLocalization(command) => validate_localization(command),
        }
    }
}

fn validate_announce(command: &Announce) -> Checked {
    validate_agreement_id(&command.agreement_id)?;
    required_name("title", &command.title)?;
    validate_party("buyer", &command.buyer)?;
    validate_party("supplier", &command.supplier)?;
    validate_sector(&command.sector)?;
    required_name("product", &command.product)?;
    if command.quantity == Some(0) {
        return Err(ValidationError::new(
            "quantity",
            "must be more than 0 when given",
        ));
    }
    if let Some(value) = &command.value {
        validate_money("value", value)?;
    }
    validate_instant("announced_at", command.announced_at)?;
    optional_text("venue", &command.venue)?;
    optional_text("source", &command.source)
}

fn validate_sign(command: &Sign) -> Checked {
    validate_agreement_id(&command.agreement_id)?;
    validate_instant("signed_at", command.signed_at)?;
    validate_list("signatories", &command.signatories, limits::NAME_MAX_CHARS)?;
    if let Some(value) = &command.value {
        validate_money("value", value)?;
    }
    if command.quantity == Some(0) {
        return Err(ValidationError::new(
            "quantity",
            "must be more than 0 when given",
        ));
    }
    Ok(())
}

fn validate_delivery(command: &RecordDelivery) -> Checked {
    validate_agreement_id(&command.agreement_id)?;
    if command.units == 0 {
        return Err(ValidationError::new("units", "must be more than 0"));
    }
    validate_instant("delivered_at", command.delivered_at)?;
    optional_text("reference", &command.reference)
}

fn validate_localization(command: &RecordLocalization) -> Checked {
    validate_agreement_id(&command.agreement_id)?;
    if command.localization_rate_bp > limits::RATE_MAX_BP {
        return Err(ValidationError::new(
            "localization_rate_bp",
            format!(
                "must be 0..=10000 basis points, got {}",
                command.localization_rate_bp
            ),
        ));
    }
    required_name("facility", &command.facility)?;
    validate_list(
        "technology_transfer",
        &command.technology_transfer,
        limits::TEXT_MAX_CHARS,
    )?;
    validate_instant("recorded_at", command.recorded_at)
}

/// Checks an idempotency key: 1..=128 printable ASCII characters.
pub fn validate_command_id(command_id: &str) -> Checked {
    const FIELD: &str = "meta.command_id";
    if command_id.is_empty() {
        return Err(ValidationError::new(FIELD, "is required"));
    }
    if command_id.len() > limits::COMMAND_ID_MAX_CHARS {
        return Err(ValidationError::new(
            FIELD,
            format!(
                "must be at most {} characters",
                limits::COMMAND_ID_MAX_CHARS
            ),
        ));
    }
    if !command_id.bytes().all(|byte| (0x20..=0x7e).contains(&byte)) {
        return Err(ValidationError::new(
            FIELD,
            "must be printable ASCII characters",
        ));
    }
    Ok(())
}

/// Returns a client's value for an error message: quoted, and cut short
/// when long, so that a huge value never makes a huge status message.
pub fn quoted(value: &str) -> String {
    const SHOWN_CHARS: usize = 40;
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(SHOWN_CHARS).collect();
    if chars.next().is_none() {
        format!("{head:?}")
    } else {
        format!("{head:?}... ({} characters)", value.chars().count())
    }
}

/// Checks optional free text (correlation ids, references): at most 2,000 characters.
pub fn validate_text(field: &str, value: &str) -> Checked {
    optional_text(field, value)
}

/// Checks an ISO 3166-1 alpha-2 code in upper case.
pub fn validate_country(field: &str, country: &str) -> Checked {
    if country.len() == 2 && country.bytes().all(|byte| byte.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            format!(
                "must be an ISO 3166-1 alpha-2 code in upper case, got {}",
                quoted(country)
            ),
        ))
    }
}

/// Checks an agreement id: `^[a-z0-9][a-z0-9._-]{0,127}$`.
pub fn validate_agreement_id(agreement_id: &str) -> Checked {
    const FIELD: &str = "agreement_id";
    let bytes = agreement_id.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(ValidationError::new(FIELD, "is required"));
    };
    if bytes.len() > limits::AGREEMENT_ID_MAX_CHARS {
        return Err(ValidationError::new(
            FIELD,
            "must be at most 128 characters",
        ));
    }
    let first_ok = first.is_ascii_lowercase() || first.is_ascii_digit();
    let rest_ok = bytes[1..].iter().all(|byte| {
        byte.is_ascii_lowercase() || byte.is_ascii_digit() || matches!(byte, b'.' | b'_' | b'-')
    });
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            FIELD,
            format!(
                "must match ^[a-z0-9][a-z0-9._-]{{0,127}}$, got {}",
                quoted(agreement_id)
            ),
        ))
    }
}

fn validate_party(field: &str, party: &Party) -> Checked {
    required_name(&format!("{field}.name"), &party.name)?;
    validate_country(&format!("{field}.country"), &party.country)
}

fn validate_sector(sector: &str) -> Checked {
    let bytes = sector.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(ValidationError::new("sector", "is required"));
    };
    let well_formed = first.is_ascii_lowercase()
        && bytes
            .iter()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || *byte == b'-')
        && bytes.len() <= 64;
    if well_formed {
        Ok(())
    } else {
        Err(ValidationError::new(
            "sector",
            format!(
                "must be a lower-case word of at most 64 characters, got {}",
                quoted(sector)
            ),
        ))
    }
}

fn validate_money(field: &str, money: &Money) -> Checked {
    let currency_ok =
        money.currency.len() == 3 && money.currency.bytes().all(|byte| byte.is_ascii_uppercase());
    if !currency_ok {
        return Err(ValidationError::new(
            format!("{field}.currency"),
            format!(
                "must be an ISO 4217 code of 3 upper-case letters, got {}",
                quoted(&money.currency)
            ),
        ));
    }
    if money.minor_units < 0 {
        return Err(ValidationError::new(
            format!("{field}.minor_units"),
            "must not be negative",
        ));
    }
    Ok(())
}

/// Checks an instant: between 1900-01-01 and 2200-01-01, nanoseconds in range.
pub fn validate_instant(field: &str, instant: Timestamp) -> Checked {
    let in_range = (limits::EARLIEST_INSTANT_SECONDS..limits::LATEST_INSTANT_SECONDS)
        .contains(&instant.seconds)
        && (0..1_000_000_000).contains(&instant.nanos);
    if in_range {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            "must be between 1900-01-01 and 2200-01-01",
        ))
    }
}

fn required_name(field: &str, value: &str) -> Checked {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "is required"));
    }
    max_chars(field, value, limits::NAME_MAX_CHARS)
}

fn optional_text(field: &str, value: &str) -> Checked {
    max_chars(field, value, limits::TEXT_MAX_CHARS)
}

/// Checks that a list field has at most `limits::LIST_MAX_ENTRIES` entries.
pub fn validate_list_len(field: &str, entries: usize) -> Result<(), ValidationError> {
    if entries > limits::LIST_MAX_ENTRIES {
        return Err(ValidationError::new(
            field,
            format!(
                "must have at most {} entries, got {entries}",
                limits::LIST_MAX_ENTRIES
            ),
        ));
    }
    Ok(())
}

fn validate_list(field: &str, entries: &[String], entry_max_chars: usize) -> Checked {
    validate_list_len(field, entries.len())?;
    for (index, entry) in entries.iter().enumerate() {
        let entry_field = format!("{field}[{index}]");
        if entry.trim().is_empty() {
            return Err(ValidationError::new(entry_field, "must not be empty"));
        }
        max_chars(&entry_field, entry, entry_max_chars)?;
    }
    Ok(())
}

fn max_chars(field: &str, value: &str, limit: usize) -> Checked {
    // Bytes bound characters from above, so most values skip the count.
    if value.len() > limit && value.chars().count() > limit {
        return Err(ValidationError::new(
            field,
            format!("must be at most {limit} characters"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
