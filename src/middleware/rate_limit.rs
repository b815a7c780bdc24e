//! Rate limiting, placed twice in the stack: per client address before
//! authentication (so a flood costs no token lookup), and per authenticated
//! principal after it. Each RPC belongs to a class (credential endpoints
//! strictest, reads most generous). Over the limit a call is answered
//! `RESOURCE_EXHAUSTED` / `RATE_LIMITED` with `RetryInfo`, and the handler
//! never runs.
//!
//! The client address is the one [`super::client_address`] resolved for the
//! call (the peer, or what a trusted proxy vouches for).

mod gcra;
mod limiter;
mod redis_store;

use std::{
    net::{IpAddr, Ipv6Addr},
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower::{Layer, Service};

use super::{client_address::ClientAddress, BoxFuture};
use crate::{domain::principal::Principal, grpc::status};

pub use limiter::{
    gcra, Class, Decision, MemoryStore, Quota, RateLimitMetrics, RateLimiter, Scope,
};

/// The credential endpoints: reachable without login, each call a guess at a
/// secret or a mail sent, so the strictest class.
pub const CREDENTIAL_METHODS: &[&str] = &[
    "/gardien.accountsecurity.v1.AccountSecurityService/Login",
    "/gardien.accountsecurity.v1.AccountSecurityService/VerifyLoginChallenge",
    "/gardien.accountsecurity.v1.AccountSecurityService/RequestPasswordReset",
    "/gardien.accountsecurity.v1.AccountSecurityService/RecoverLogin",
    "/gardien.accountsecurity.v1.AccountSecurityService/CompletePasswordReset",
    "/gardien.accountsecurity.v1.AccountSecurityService/ReportUnauthorizedChange",
    "/gardien.accountsecurity.v1.AccountSecurityService/ConfirmEmailChange",
    "/gardien.accountsecurity.v1.AccountSecurityService/BeginPasskeyLogin",
    "/gardien.accountsecurity.v1.AccountSecurityService/FinishPasskeyLogin",
    "/gardien.accountsecurity.v1.AccountSecurityService/GetResetPasskeyOptions",
    "/gardien.support.v1.SupportService/CreateRecoveryTicket",
    "/gardien.support.v1.SupportService/CancelFactorReset",
];

/// The class of `path` (`/package.Service/Method`).
pub fn classify(path: &str) -> Class {
    if CREDENTIAL_METHODS.contains(&path) {
        return Class::Credential;
    }
    let (service, method) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or(("", path));
    let infrastructure =
        service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.");
    let reads = ["Get", "List", "Introspect"];
    if infrastructure || reads.iter().any(|prefix| method.starts_with(prefix)) {
        Class::Read
    } else {
        Class::Write
    }
}

/// The key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's
/// allocation), so rotating addresses inside a prefix gains nothing.
pub fn address_key(address: Option<IpAddr>) -> String {
    match address {
        Some(IpAddr::V4(ip)) => ip.to_string(),
        Some(IpAddr::V6(ip)) => {
            let segments = ip.segments();
            let prefix = Ipv6Addr::new(
                segments[0],
                segments[1],
                segments[2],
                segments[3],
                0,
                0,
                0,
                0,
            );
            format!("{prefix}/64")
        }
        None => "unknown".into(),
    }
}

/// The key of a principal; `None` for anonymous calls.
pub fn principal_key(principal: &Principal) -> Option<String> {
    match principal {
        Principal::Anonymous => None,
        Principal::Customer(session) => Some(format!("c:{}", session.account_id)),
        Principal::Credential { id, .. } => Some(format!("k:{id}")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Address,
    Principal,
}

#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<RateLimiter>,
    stage: Stage,
}

impl RateLimitLayer {
    /// Limits per client address; place before authentication.
    pub fn per_address(limiter: Arc<RateLimiter>) -> Self {
        Self {
            limiter,
            stage: Stage::Address,
        }
    }

    /// Limits per authenticated principal; place after authentication.
    pub fn per_principal(limiter: Arc<RateLimiter>) -> Self {
        Self {
            limiter,
            stage: Stage::Principal,
        }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimitService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimitService {
            inner,
            limiter: self.limiter.clone(),
            stage: self.stage,
        }
    }
}

#[derive(Clone)]
pub struct RateLimitService<S> {
    inner: S,
    limiter: Arc<RateLimiter>,
    stage: Stage,
}

impl<S> RateLimitService<S> {
    fn scope<B>(&self, request: &Request<B>) -> Option<Scope> {
        match self.stage {
            Stage::Address => {
                let client = request
                    .extensions()
                    .get::<ClientAddress>()
                    .and_then(|address| address.0);
                Some(Scope::Address(address_key(client)))
            }
            Stage::Principal => request
                .extensions()
                .get::<Principal>()
                .and_then(principal_key)
                .map(Scope::Principal),
        }
    }
}

impl<S, B, R> Service<Request<B>> for RateLimitService<S>
where
    S: Service<Request<B>, Response = Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The clone that was driven to readiness serves this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let Some(scope) = self.scope(&request) else {
            return Box::pin(inner.call(request));
        };
        let class = classify(request.uri().path());
        let limiter = self.limiter.clone();
        Box::pin(async move {
            match limiter.check(class, &scope).await {
                Decision::Allow => inner.call(request).await,
                Decision::Limited { retry_after } => {
                    Ok(status::rate_limited(retry_after).into_http())
                }
                Decision::Unavailable => Ok(status::rate_limiter_unavailable().into_http()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::auth::POLICY;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn every_rpc_has_a_class_and_the_credential_endpoints_are_the_strict_ones() {
        let mut credential = Vec::new();
        for (service, method, _) in POLICY {
            let path = format!("{service}{method}");
            if classify(&path) == Class::Credential {
                credential.push(method.to_string());
            }
        }
        credential.sort();
        assert_eq!(
            credential,
            [
                "BeginPasskeyLogin",
                "CancelFactorReset",
                "CompletePasswordReset",
                "ConfirmEmailChange",
                "CreateRecoveryTicket",
                "FinishPasskeyLogin",
                "GetResetPasskeyOptions",
                "Login",
                "RecoverLogin",
                "ReportUnauthorizedChange",
                "RequestPasswordReset",
                "VerifyLoginChallenge",
            ]
        );
        let read = "/gardien.accountsecurity.v1.AccountSecurityService/IntrospectSession";
        assert_eq!(classify(read), Class::Read);
        assert_eq!(classify("/grpc.health.v1.Health/Check"), Class::Read);
        let write = "/gardien.accountsecurity.v1.AccountSecurityService/SuspendPassword";
        assert_eq!(classify(write), Class::Write);
    }

    #[test]
    fn ipv6_addresses_share_a_key_per_64_and_mapped_ipv4_is_ipv4() {
        let a = address_key(Some(ip("2001:db8:1:2::1")));
        let b = address_key(Some(ip("2001:db8:1:2:ffff::9")));
        let c = address_key(Some(ip("2001:db8:1:3::1")));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(address_key(Some(ip("192.0.2.1"))), "192.0.2.1");
    }
}
