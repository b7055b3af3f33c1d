//! The gRPC services of `accord.v1`.

mod admin;
mod agreements;
mod event_log;
mod filter;

pub use admin::AdminApi;
pub use agreements::AgreementApi;
pub use event_log::EventLogApi;

/// The result of a unary RPC.
type RpcResult<T> = Result<tonic::Response<T>, tonic::Status>;
