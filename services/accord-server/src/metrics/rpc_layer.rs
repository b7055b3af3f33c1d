//! A tower layer around every gRPC call: it times the call by method and
//! status code, and reports an oversized request as INVALID_ARGUMENT, as the
//! contract says (tonic's codec reports it as OUT_OF_RANGE).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use tonic::Code;

use super::{Metrics, RpcLabels};

/// Wraps services with [`RpcService`].
#[derive(Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
}

impl RpcLayer {
    /// Returns a layer that records into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// Times calls and normalises the status of oversized requests.
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, RequestBody, ResponseBody> tower::Service<Request<RequestBody>> for RpcService<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    RequestBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let method = request.uri().path().to_owned();
        let metrics = self.metrics.clone();
        // The ready service handles this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let started = Instant::now();
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            let code = status_code(&response);
            let code = if code == Code::OutOfRange && is_oversized(&response) {
                response.headers_mut().insert(
                    "grpc-status",
                    HeaderValue::from(Code::InvalidArgument as i32),
                );
                Code::InvalidArgument
            } else {
                code
            };
            metrics
                .rpc_seconds
                .get_or_create(&RpcLabels {
                    method,
                    code: code_name(code).to_owned(),
                })
                .observe(started.elapsed().as_secs_f64());
            Ok(response)
        })
    }
}

/// The status a trailers-only response carries in its headers; OK otherwise
/// (a successful call sends its status in the trailers).
fn status_code<B>(response: &Response<B>) -> Code {
    response
        .headers()
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)
        .unwrap_or(Code::Ok)
}

fn is_oversized<B>(response: &Response<B>) -> bool {
    response
        .headers()
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|message| message.contains("message length too large"))
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
