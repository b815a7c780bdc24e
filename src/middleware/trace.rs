//! One tracing span per RPC (method, request id, client address, principal)
//! and one log
//! line when it ends (gRPC status, latency). Nothing from the request body
//! is logged, so no secret can reach the log from here.

use std::{
    task::{Context, Poll},
    time::Instant,
};

use http::{Request, Response};
use tower::{Layer, Service};
use tracing::Instrument;

use super::{client_address::ClientAddress, request_id::RequestId, BoxFuture};

#[derive(Debug, Clone, Copy, Default)]
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer {
    type Service = TraceService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        TraceService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct TraceService<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for TraceService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
    S::Error: std::fmt::Display,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let request_id = request
            .extensions()
            .get::<RequestId>()
            .map(|id| id.0.clone())
            .unwrap_or_default();
        let client = request
            .extensions()
            .get::<ClientAddress>()
            .and_then(|address| address.0)
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        // The exported span's name: a method the server has ("service/
        // Method", the path without its '/'), never a path the caller made up.
        let path = request.uri().path();
        let name = match known_method(path) {
            Some(_) => &path[1..],
            None => "unknown",
        };
        let span = tracing::info_span!(
            "rpc",
            method = %request.uri().path().escape_debug(),
            request_id = %request_id,
            client_address = %client,
            principal = tracing::field::Empty,
            otel.name = %name,
            otel.kind = "server",
        );
        crate::telemetry::continue_caller(&span, request.headers());
        let method = request.uri().path().to_string();
        let started = Instant::now();
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        Box::pin(
            async move {
                let result = future.await;
                // A number in JSON logs, to the hundredth of a millisecond.
                let latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
                match &result {
                    Ok(response) => {
                        let status = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<i32>().ok())
                            .unwrap_or(0);
                        let code = tonic::Code::from_i32(status);
                        record_rpc(&method, code, started.elapsed().as_secs_f64());
                        tracing::info!(status = ?code, latency_ms, "rpc finished");
                    }
                    Err(error) => {
                        tracing::warn!(%error, latency_ms, "rpc failed in transport")
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}

/// One finished RPC (`path` as the caller sent it), labelled by service,
/// method and gRPC code. Service and method are those of a method the
/// server has, else both "unknown": a label never takes what a caller made
/// up, so made-up paths cannot grow the metrics endpoint without bound.
fn record_rpc(path: &str, code: tonic::Code, seconds: f64) {
    let (service, method) = known_method(path).unwrap_or(("unknown", "unknown"));
    let labels = [
        ("service", service.to_string()),
        ("method", method.to_string()),
        ("code", format!("{code:?}")),
    ];
    metrics::counter!("gardien_rpc_requests_total", &labels).increment(1);
    metrics::histogram!("gardien_rpc_duration_seconds", &labels).record(seconds);
}

/// The service and method of `path` when the server has that method.
fn known_method(path: &str) -> Option<(&str, &str)> {
    super::auth::allowed_roles(path).and_then(|_| path.strip_prefix('/')?.split_once('/'))
}
