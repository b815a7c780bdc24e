//! A panic in a handler becomes `INTERNAL` for that call, not a dropped
//! connection.

use std::{
    panic::AssertUnwindSafe,
    task::{Context, Poll},
};

use futures::FutureExt;
use http::{Request, Response};
use tower::{Layer, Service};

use super::BoxFuture;
use crate::grpc::status;

#[derive(Debug, Clone, Copy, Default)]
pub struct CatchPanicLayer;

impl<S> Layer<S> for CatchPanicLayer {
    type Service = CatchPanicService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CatchPanicService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct CatchPanicService<S> {
    inner: S,
}

impl<S, B, R> Service<Request<B>> for CatchPanicService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Send,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let future = match std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request))) {
            Ok(future) => future,
            Err(_) => {
                tracing::error!("handler panicked");
                return Box::pin(async { Ok(status::internal_panic().into_http()) });
            }
        };
        Box::pin(async move {
            match AssertUnwindSafe(future).catch_unwind().await {
                Ok(result) => result,
                Err(_) => {
                    tracing::error!("handler panicked");
                    Ok(status::internal_panic().into_http())
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, Service, ServiceExt};

    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_internal_instead_of_dropping_the_call() {
        let handler = tower::service_fn(|_request: Request<()>| async {
            if std::hint::black_box(true) {
                panic!("handler bug");
            }
            Ok::<Response<tonic::body::Body>, Infallible>(Response::default())
        });
        let mut service = CatchPanicLayer.layer(handler);
        let response = service
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.headers()["grpc-status"], "13");
    }
}
