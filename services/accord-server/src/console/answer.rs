//! How the console answers what failed: the status code the API gives the
//! error (`ApiError::code`, the one mapping), as its HTTP counterpart.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::access::refused;
use crate::error::{ApiError, Code};

/// The HTTP status of an error's code.
fn http(code: Code) -> StatusCode {
    match code {
        Code::InvalidArgument | Code::OutOfRange | Code::Cancelled => StatusCode::BAD_REQUEST,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::FailedPrecondition => StatusCode::PRECONDITION_FAILED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unavailable | Code::DeadlineExceeded => StatusCode::SERVICE_UNAVAILABLE,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error of the API, answered with its code and message.
pub(crate) fn failed(error: ApiError) -> Response {
    error.log_if_serious();
    refused(http(error.code()), error.to_string()).into_response()
}

pub(crate) fn bad_request(message: &str) -> Response {
    refused(StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

pub(crate) fn not_found() -> Response {
    refused(StatusCode::NOT_FOUND, "no such page").into_response()
}
