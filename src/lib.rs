//! gardien: a gRPC account-security backend.
//!
//! The library holds everything; `main.rs` only parses the command line, so
//! the integration tests start the very same server.

#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod entity;
pub mod grpc;
pub mod kinds;
pub mod mail;
pub mod metrics;
pub mod middleware;
pub mod proto;
pub mod server;
pub mod store;
pub mod telemetry;

pub use server::Application;
