//! A command that passed the contract's field limits: the only kind
//! [`crate::decide`] takes, so that a command is validated once, where it
//! enters (the gRPC layer), and never again.

use std::ops::Deref;

use crate::{Command, ValidationError};

/// A command whose every field passed [`Command::validate`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCommand(Command);

impl ValidCommand {
    /// Validates `command`; the error names the first field out of bounds.
    pub fn new(command: Command) -> Result<Self, ValidationError> {
        command.validate()?;
        Ok(Self(command))
    }

    /// The command.
    pub fn command(&self) -> &Command {
        &self.0
    }
}

impl Deref for ValidCommand {
    type Target = Command;

    fn deref(&self) -> &Command {
        &self.0
    }
}
