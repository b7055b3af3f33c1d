//! The gRPC services of `accord.v1`.

mod admin;
mod agreements;
mod consumer_groups;
mod deadline;
mod event_log;
mod execute_stream;
mod status;
mod transparency;

pub use admin::ALLOW_UNSIGNED_METADATA;
pub(crate) use admin::AdminApi;
pub(crate) use agreements::AgreementApi;
pub(crate) use consumer_groups::ConsumerGroupsApi;
pub(crate) use event_log::EventLogApi;
pub(crate) use transparency::TransparencyApi;

pub(crate) use status::{GrpcStream, grpc_stream};

/// The result of a unary RPC.
type RpcResult<T> = Result<tonic::Response<T>, tonic::Status>;

/// The name of the token `request` was made with (none when tokens are off).
fn token_of<T>(request: &tonic::Request<T>) -> Option<&str> {
    request
        .extensions()
        .get::<crate::auth::Actor>()
        .map(|actor| actor.0.as_str())
}

/// Who opens `request`'s stream: its connection, and its token's name (or
/// without tokens the peer's address).
fn owner_of<T>(request: &tonic::Request<T>) -> crate::streams::Owner {
    crate::streams::Owner::of(request.remote_addr(), token_of(request))
}
