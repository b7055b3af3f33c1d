//! A tower layer around every gRPC call: it records each call's duration by
//! method and final status code, and reports an oversized request as
//! INVALID_ARGUMENT, as the contract says (tonic's codec says OUT_OF_RANGE).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::Code;

use super::{Metrics, RpcLabels};

/// Wraps services so that every call is counted and timed by method and status code.
#[derive(Clone)]
pub(crate) struct RpcLayer {
    metrics: Arc<Metrics>,
}

impl RpcLayer {
    /// Returns a layer that records into `metrics`.
    pub(crate) fn new(metrics: Arc<Metrics>) -> Self {
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

/// Observes calls and normalises the status of oversized requests.
#[derive(Clone)]
pub(crate) struct RpcService<S> {
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
    ResponseBody: Body + Unpin,
{
    type Response = Response<ObservedBody<ResponseBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<RequestBody>) -> Self::Future {
        let call = Call {
            metrics: self.metrics.clone(),
            // Known methods only: a label from client input would let any
            // client grow the metrics without bound.
            method: crate::methods::lookup(request.uri().path())
                .map_or("unknown", |method| method.path),
            started: Instant::now(),
        };
        // The ready service handles this call; a fresh clone waits for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            let (mut parts, body) = response.into_parts();
            // A trailers-only response carries its status in the headers.
            let call = match normalise_status(&mut parts.headers) {
                Some(code) => {
                    call.finish(code);
                    None
                }
                None => Some(call),
            };
            Ok(Response::from_parts(
                parts,
                ObservedBody { inner: body, call },
            ))
        })
    }
}

/// One call in flight.
struct Call {
    metrics: Arc<Metrics>,
    method: &'static str,
    started: Instant,
}

impl Call {
    fn finish(self, code: Code) {
        self.metrics
            .rpc_seconds
            .get_or_create(&RpcLabels {
                method: self.method.to_owned(),
                code: code_name(code).to_owned(),
            })
            .observe(self.started.elapsed().as_secs_f64());
    }
}

/// A response body that reports the call when its trailers pass, or when it
/// is dropped early (the client went away).
pub(crate) struct ObservedBody<B> {
    inner: B,
    call: Option<Call>,
}

impl<B: Body + Unpin> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(context);
        match polled {
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    let code = normalise_status(trailers).unwrap_or(Code::Ok);
                    if let Some(call) = this.call.take() {
                        call.finish(code);
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                if let Some(call) = this.call.take() {
                    call.finish(Code::Ok);
                }
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            call.finish(Code::Cancelled);
        }
    }
}

/// Returns the status in `headers`, rewriting an oversized request's
/// OUT_OF_RANGE to INVALID_ARGUMENT.
fn normalise_status(headers: &mut HeaderMap) -> Option<Code> {
    let code = headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i32>().ok())
        .map(Code::from_i32)?;
    let oversized = headers
        .get("grpc-message")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|message| {
            message.contains("message%20length%20too%20large")
                || message.contains("message length too large")
        });
    if code == Code::OutOfRange && oversized {
        headers.insert(
            "grpc-status",
            HeaderValue::from(Code::InvalidArgument as i32),
        );
        return Some(Code::InvalidArgument);
    }
    Some(code)
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
