//! CORS for browser front ends calling gRPC-Web, applied only to requests
//! that carry an `Origin` header: only browsers send one, and only they read
//! the CORS headers. Services calling over gRPC skip the layer and its
//! `Vary` response headers.

use std::{
    task::{Context, Poll},
    time::Duration,
};

use futures::future::Either;
use http::{header::ORIGIN, Request, Response};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, Cors, CorsLayer};

/// Wraps a service in CORS for the configured origins (none: no origin is
/// ever allowed).
#[derive(Clone)]
pub struct BrowserCorsLayer {
    cors: CorsLayer,
}

impl BrowserCorsLayer {
    pub fn new(origins: &[String]) -> Self {
        let allowed: Vec<http::HeaderValue> =
            origins.iter().filter_map(|o| o.parse().ok()).collect();
        let cors = CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([http::Method::POST, http::Method::OPTIONS])
            .allow_headers([
                http::header::AUTHORIZATION,
                http::header::CONTENT_TYPE,
                http::HeaderName::from_static("x-grpc-web"),
                http::HeaderName::from_static("x-user-agent"),
                http::HeaderName::from_static("grpc-timeout"),
                http::HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                http::HeaderName::from_static("grpc-status"),
                http::HeaderName::from_static("grpc-message"),
                http::HeaderName::from_static("grpc-status-details-bin"),
                http::HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600));
        Self { cors }
    }
}

impl<S: Clone> Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BrowserCors {
            cors: self.cors.layer(inner.clone()),
            plain: inner,
        }
    }
}

#[derive(Clone)]
pub struct BrowserCors<S> {
    cors: Cors<S>,
    plain: S,
}

impl<S, B, R> Service<Request<B>> for BrowserCors<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone,
    R: Default,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Either<<Cors<S> as Service<Request<B>>>::Future, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Either copy may serve the next call: both must be ready.
        match self.plain.poll_ready(cx)? {
            Poll::Ready(()) => self.cors.poll_ready(cx),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if request.headers().contains_key(ORIGIN) {
            Either::Left(self.cors.call(request))
        } else {
            Either::Right(self.plain.call(request))
        }
    }
}
