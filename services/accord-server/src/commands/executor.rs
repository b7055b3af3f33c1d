//! Running `Execute` requests and single commands, whatever the transport:
//! the request's limits, the wire commands parsed and checked once, the
//! handler's outcomes as answers.

use std::sync::Arc;

use accord_proto::timestamp_from_domain;
use accord_proto::v1;
use accord_store::AppendOutcome;

use super::input::parse_commands;
use super::{CommandHandler, CommandService};
use crate::error::ApiError;

/// A command's answer.
fn append_result(outcome: AppendOutcome) -> v1::AppendResult {
    v1::AppendResult {
        agreement_id: outcome.agreement_id,
        version: outcome.version,
        position: outcome.position,
        recorded_at: Some(timestamp_from_domain(outcome.recorded_at)),
        duplicate: outcome.duplicate,
    }
}

/// Runs `Execute` requests: the unary call and each request of a stream.
pub(crate) struct Executor {
    handler: Arc<CommandHandler>,
    max_execute_commands: usize,
    /// The largest command (and so event) in bytes, encoded.
    max_event_bytes: usize,
}

impl Executor {
    pub(crate) fn new(
        handler: Arc<CommandHandler>,
        max_execute_commands: usize,
        max_event_bytes: usize,
    ) -> Self {
        Self {
            handler,
            max_execute_commands,
            max_event_bytes,
        }
    }
}

#[async_trait::async_trait]
impl CommandService for Executor {
    /// Checks and appends one command (`Announce`, `Sign`, ...) for `actor`.
    async fn execute_one(
        &self,
        actor: &str,
        command: v1::command::Command,
    ) -> Result<v1::AppendResult, ApiError> {
        let wire = v1::Command {
            command: Some(command),
        };
        let parsed = parse_commands(vec![wire], actor, false, self.max_event_bytes)?;
        let outcome = self
            .handler
            .execute(parsed)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::Internal("no outcome for the command".into()))?;
        Ok(append_result(outcome))
    }

    /// Checks and appends `commands` for `actor`, all or nothing.
    async fn execute(
        &self,
        actor: &str,
        commands: Vec<v1::Command>,
    ) -> Result<v1::ExecuteResponse, ApiError> {
        if commands.is_empty() {
            return Err(ApiError::from(accord_domain::ValidationError::new(
                "commands",
                "at least one command is required",
            )));
        }
        if commands.len() > self.max_execute_commands {
            return Err(ApiError::LimitExceeded(format!(
                "commands: {} commands in one Execute, the limit is {}",
                commands.len(),
                self.max_execute_commands
            )));
        }
        let parsed = parse_commands(commands, actor, true, self.max_event_bytes)?;
        let outcomes = self.handler.execute(parsed).await?;
        Ok(v1::ExecuteResponse {
            results: outcomes.into_iter().map(append_result).collect(),
        })
    }
}
