//! The commands' side of the application layer, as its adapters call it.

use accord_proto::v1;

use crate::error::ApiError;

/// Commands: checked, decided and appended, durable before the answer.
#[async_trait::async_trait]
pub(crate) trait CommandService: Send + Sync {
    /// One command (`Announce`, `Sign`, ...) for `actor`.
    async fn execute_one(
        &self,
        actor: &str,
        command: v1::command::Command,
    ) -> Result<v1::AppendResult, ApiError>;

    /// `commands` for `actor`, all or nothing.
    async fn execute(
        &self,
        actor: &str,
        commands: Vec<v1::Command>,
    ) -> Result<v1::ExecuteResponse, ApiError>;
}
