//! A global limit on RPCs in flight. Beyond it a call is shed at once with
//! `UNAVAILABLE` (reason `OVERLOADED`, with `RetryInfo`) instead of queueing
//! without bound.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tokio::sync::Semaphore;
use tower::{Layer, Service};

use super::BoxFuture;
use crate::grpc::status;

#[derive(Debug, Clone)]
pub struct LoadShedLayer {
    permits: Arc<Semaphore>,
}

impl LoadShedLayer {
    pub fn new(max_in_flight: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_in_flight)),
        }
    }
}

impl<S> Layer<S> for LoadShedLayer {
    type Service = LoadShedService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        LoadShedService {
            inner,
            permits: self.permits.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LoadShedService<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S, B, R> Service<Request<B>> for LoadShedService<S>
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
        let Ok(permit) = self.permits.clone().try_acquire_owned() else {
            tracing::warn!("concurrency limit reached, call shed");
            return Box::pin(async { Ok(status::overloaded().into_http()) });
        };
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            drop(permit);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, Service, ServiceExt};

    use super::*;

    #[tokio::test]
    async fn a_call_beyond_the_limit_is_shed_at_once_and_a_permit_comes_back() {
        let (release, released) = tokio::sync::watch::channel(false);
        let handler = tower::service_fn(move |_request: Request<()>| {
            let mut released = released.clone();
            async move {
                let _ = released.wait_for(|done| *done).await;
                Ok::<Response<tonic::body::Body>, Infallible>(Response::default())
            }
        });
        let mut service = LoadShedLayer::new(1).layer(handler);
        let in_flight = tokio::spawn(service.ready().await.unwrap().call(Request::new(())));
        let shed = service
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(shed.headers()["grpc-status"], "14");

        release.send(true).unwrap();
        in_flight.await.unwrap().unwrap();
        let served = service
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert!(served.headers().get("grpc-status").is_none());
    }
}
