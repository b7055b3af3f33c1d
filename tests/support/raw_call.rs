//! Calls any gRPC path with an empty message, as a client that knows only
//! the path would: for the tests that go through every method (roles) or
//! through paths the server does not have (metrics labels).

use tonic::transport::Channel;
use tonic::{Request, Status};

/// Calls `path` with one empty request message and `token` as bearer token;
/// returns once the server answered the call's headers: `Ok` when it took
/// the call (any stream is dropped), the status when it refused it.
pub async fn raw_call(channel: Channel, path: &str, token: Option<&str>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let mut request = Request::new(tokio_stream::once(()));
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ascii header"),
        );
    }
    let path = http::uri::PathAndQuery::try_from(path.to_owned())
        .map_err(|error| Status::invalid_argument(error.to_string()))?;
    // Every gRPC call has the same wire form; a bidirectional call fits
    // unary and streaming methods alike. `()` is the empty message.
    grpc.streaming(request, path, tonic_prost::ProstCodec::<(), ()>::default())
        .await
        .map(drop)
}
