//! Wire commands into domain commands, once, at the edge: each command
//! parsed, its meta and fields validated (field names prefixed with
//! `commands[i].` inside an `Execute`), its fingerprint taken, and a command
//! id used twice in one request refused. The handler sees domain commands only.

use accord_domain::{
    DomainError, EventMetadata, ValidCommand, ValidationError, validate_command_id, validate_text,
};
use accord_proto::{command_from_wire, expected_version_from_wire, v1};

use super::CheckedCommand;
use super::fingerprint::fingerprint;
use crate::error::ApiError;

/// Parses and validates `commands` sent by `actor`; `in_batch` names the
/// fields of a refused command `commands[i].FIELD`. A command that encodes
/// to more than `max_event_bytes` is refused: its event would be as large,
/// and every buffer that holds events is bounded in bytes by it.
pub(crate) fn parse_commands(
    commands: Vec<v1::Command>,
    actor: &str,
    in_batch: bool,
    max_event_bytes: usize,
) -> Result<Vec<CheckedCommand>, ApiError> {
    let mut parsed: Vec<CheckedCommand> = Vec::with_capacity(commands.len());
    for (index, wire) in commands.into_iter().enumerate() {
        let named = |error: ValidationError| name_field(error, index, in_batch);
        let size = prost::Message::encoded_len(&wire);
        let fingerprint = fingerprint(&wire);
        let (meta, command) = command_from_wire(wire).map_err(named)?;
        let meta = meta.unwrap_or_default();
        validate_command_id(&meta.command_id).map_err(named)?;
        validate_text("meta.correlation_id", &meta.correlation_id).map_err(named)?;
        validate_text("meta.causation_id", &meta.causation_id).map_err(named)?;
        let expected = expected_version_from_wire(meta.expected_version.as_ref()).map_err(named)?;
        let command = ValidCommand::new(command).map_err(named)?;
        // After the fields' own limits, which name the field at fault.
        if size > max_event_bytes {
            return Err(named(ValidationError::new(
                "command",
                format!(
                    "{size} bytes encoded, more than the largest event this server takes, {max_event_bytes} bytes (--max-event-bytes)"
                ),
            ))
            .into());
        }
        if parsed
            .iter()
            .any(|earlier| earlier.command_id == meta.command_id)
        {
            return Err(named(ValidationError::new(
                "meta.command_id",
                format!(
                    "{:?} appears more than once in the request",
                    meta.command_id
                ),
            ))
            .into());
        }
        parsed.push(CheckedCommand {
            command_id: meta.command_id.clone(),
            fingerprint,
            expected,
            metadata: EventMetadata {
                command_id: meta.command_id,
                correlation_id: meta.correlation_id,
                causation_id: meta.causation_id,
                actor: actor.to_owned(),
            },
            command,
        });
    }
    Ok(parsed)
}

/// The refusal of one command, its field prefixed with `commands[i].` in a batch.
fn name_field(mut invalid: ValidationError, index: usize, in_batch: bool) -> DomainError {
    if in_batch {
        invalid.field = format!("commands[{index}].{}", invalid.field);
    }
    DomainError::Invalid(invalid)
}
