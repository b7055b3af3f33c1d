//! The application layer's contract: one trait per area, as quickwit's
//! services are. gRPC (`grpc/`) and the console (`console/`) are adapters
//! over these traits and hold them as `Arc<dyn …>`; what implements them
//! (`Executor`, `Queries`, `Operations`, `LiveFeed`, the consumer groups'
//! `Registry` and `ClusterGroups`) knows no transport. Requests and answers
//! are `accord.v1` messages (the public contract, no tonic type), errors are
//! `ApiError` (one code each), waits are `Duration`s, streams are
//! `ServerStream`s of `Result<T, ApiError>`.

use std::sync::Arc;

pub(crate) use crate::commands::CommandService;
pub(crate) use crate::groups::GroupService;
pub(crate) use crate::operations::OperationsService;
pub(crate) use crate::queries::QueryService;
pub(crate) use crate::streams::FeedService;
pub(crate) use crate::transparency::TransparencyService;

/// The application layer of one server, as its adapters hold it.
#[derive(Clone)]
pub(crate) struct Services {
    pub(crate) commands: Arc<dyn CommandService>,
    pub(crate) queries: Arc<dyn QueryService>,
    pub(crate) operations: Arc<dyn OperationsService>,
    pub(crate) feed: Arc<dyn FeedService>,
    pub(crate) groups: Arc<dyn GroupService>,
    pub(crate) transparency: Arc<dyn TransparencyService>,
}
