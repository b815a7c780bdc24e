//! Thin tonic services: validate and convert the request, call the domain,
//! map the result. No SQL and no business rule here.

pub mod account_security;
pub mod codec;
pub mod convert;
pub mod status;
pub mod support;
pub mod validate;

use tonic::{Request, Status};

use crate::domain::principal::{ClientInfo, CustomerSession, Principal};

/// The caller the auth layer resolved.
pub fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(status::unauthenticated)
}

/// The logged-in customer, for customer-only RPCs.
pub fn customer<T>(request: &Request<T>) -> Result<CustomerSession, Status> {
    match principal(request)? {
        Principal::Customer(session) => Ok(session),
        _ => Err(status::unauthenticated()),
    }
}

/// Where the call came from: the peer address and the `user-agent`
/// metadata (printable characters only, at most 256).
pub fn client_info<T>(request: &Request<T>) -> ClientInfo {
    let user_agent = request
        .metadata()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().filter(|c| !c.is_control()).take(256).collect());
    ClientInfo {
        address: request.remote_addr().map(|addr| addr.ip().to_string()),
        user_agent,
    }
}
