//! Thin tonic services: validate and convert the request, call the domain,
//! map the result. No SQL and no business rule here.

pub mod account_security;
pub mod codec;
pub mod convert;
pub mod status;
pub mod support;
pub mod validate;

use tonic::{Request, Status};

use crate::{
    domain::principal::{ClientInfo, CustomerSession, Principal},
    middleware::client_address::ClientAddress,
};

/// The caller the auth layer resolved.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(status::unauthenticated)
}

/// When the request arrived, as the authentication middleware read it; the
/// clock's time for a request that did not pass through it.
pub fn request_time<T>(request: &Request<T>, ctx: &crate::domain::Context) -> crate::clock::Millis {
    request
        .extensions()
        .get::<crate::clock::RequestTime>()
        .map_or_else(|| ctx.now(), |time| time.0)
}

/// The logged-in customer, for customer-only RPCs.
pub fn customer<T>(request: &Request<T>) -> Result<CustomerSession, Status> {
    match principal(request)? {
        Principal::Customer(session) => Ok(session),
        _ => Err(status::unauthenticated()),
    }
}

/// Where the call came from: the client address the middleware resolved
/// (the peer, or what a trusted proxy vouches for) and the `user-agent`
/// metadata (printable characters only, at most 256).
pub fn client_info<T>(request: &Request<T>) -> ClientInfo {
    let user_agent = request
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect());
    ClientInfo {
        address: request
            .extensions()
            .get::<ClientAddress>()
            .and_then(|address| address.0)
            .map(|ip| ip.to_string()),
        user_agent,
    }
}
