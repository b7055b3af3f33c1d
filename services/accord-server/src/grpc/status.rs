//! Errors as gRPC answers: the code `error.rs` gives each error, and its
//! message; the application layer's streams as response streams.

use std::pin::Pin;

use futures_util::StreamExt as _;
use tokio_stream::Stream;
use tonic::Status;

use crate::error::{ApiError, Code};
use crate::streams::ServerStream;

impl From<Code> for tonic::Code {
    fn from(code: Code) -> Self {
        tonic::Code::from(code.number())
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        error.log_if_serious();
        status_of(&error)
    }
}

/// The status that answers `error` (not logged: a stream's end).
fn status_of(error: &ApiError) -> Status {
    Status::new(error.code().into(), error.to_string())
}

/// A response stream of a streaming RPC.
pub(crate) type GrpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The application layer's `stream` as a response stream: its end, if an
/// error, answered with that error's status.
pub(crate) fn grpc_stream<T: Send + 'static>(stream: ServerStream<T>) -> GrpcStream<T> {
    Box::pin(stream.map(|item| item.map_err(|error| status_of(&error))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grpc_error_code_keeps_its_number() {
        // Every error code gRPC has, 1 to 16, keeps its number both ways.
        for number in 1..=16 {
            let code = Code::from_number(number);
            assert_eq!(code.number(), number);
            assert_eq!(tonic::Code::from(code) as i32, number);
        }
        assert_eq!(Code::from_number(0), Code::Unknown);
        assert_eq!(Code::from_number(17), Code::Unknown);
        let status = Status::from(ApiError::GroupNotFound("g".into()));
        assert_eq!(
            (status.code(), status.message()),
            (tonic::Code::NotFound, "no consumer group named \"g\"")
        );
    }
}
