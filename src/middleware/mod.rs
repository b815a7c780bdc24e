//! tower middleware, one concern per file, assembled in one `ServiceBuilder`
//! in `server.rs`: CORS (browsers only) → gRPC-Web → request id → language →
//! client address → trace → catch-panic → load shedding → rate limit per
//! address → authentication → rate limit per principal.

pub mod auth;
pub mod catch_panic;
pub mod client_address;
pub mod cors;
pub mod load_shed;
pub mod locale;
pub mod rate_limit;
pub mod request_id;
pub mod trace;

use std::{future::Future, pin::Pin};

/// The boxed response future every layer here returns.
pub type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'static>>;
