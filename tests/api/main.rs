//! The one integration-test binary: every test starts a real gardien server
//! on 127.0.0.1:0 with a fresh, migrated database (SQLite, or PostgreSQL when
//! `GARDIEN_TEST_POSTGRES_URL` is set) and talks to it over gRPC.

mod helpers;

mod admin_cli;
mod architecture;
mod at_rest;
mod attacks;
mod centre;
mod configuration;
mod deploy;
mod faults;
mod foundation;
mod grpc_web;
mod hostile;
mod keys;
mod login;
mod metrics;
mod passkeys;
mod probes;
mod promises;
mod rate_limit;
mod recovery;
mod scale_out;
mod sessions;
mod smtp;
mod smtp_sink;
mod support;
mod tls;
mod traces;
mod two_factor;
