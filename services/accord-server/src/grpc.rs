//! The gRPC services of `accord.v1`.

mod admin;
mod agreements;
mod command_input;
mod consumer_groups;
mod deadline;
mod event_log;
mod execute_stream;
mod fingerprint;
mod import_spool;

pub use admin::{ALLOW_UNSIGNED_METADATA, AdminApi};
pub use agreements::{AgreementApi, WatchContext};
pub use consumer_groups::ConsumerGroupsApi;
pub use event_log::EventLogApi;

/// The result of a unary RPC.
type RpcResult<T> = Result<tonic::Response<T>, tonic::Status>;
