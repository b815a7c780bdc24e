//! The rules of gardien, one module per area, free of transport types.
//! Every state change and the security event that records it commit in one
//! transaction.

pub mod accounts;
pub mod auth_cache;
pub mod background;
pub mod centre;
pub mod compromised;
pub mod contacts;
pub mod credentials;
pub mod deps;
pub mod error;
pub mod events;
pub mod factor_reset;
pub mod factors;
pub mod keys;
pub mod links;
pub mod login;
pub mod notices;
pub mod overview;
pub mod passkeys;
pub mod password;
pub mod pending;
pub mod principal;
pub mod records;
pub mod recovery;
pub mod review;
pub mod revocation;
pub mod sessions;
pub mod support;
pub mod suspension;
pub mod throttle;
pub mod two_factor;
pub mod types;

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{clock::SharedClock, config::Config, crypto::password::HashingPool};

pub use error::{Error, Result};

/// Every dependency of the domain, built once at start-up. Only the edges
/// hold it whole (handlers, middleware, the jobs' starters); a domain
/// function takes the [`deps`] traits it uses, which this implements.
#[derive(Clone)]
pub struct Context {
    pub db: DatabaseConnection,
    pub clock: SharedClock,
    pub hasher: HashingPool,
    pub policy: password::PasswordPolicy,
    pub config: Arc<Config>,
    /// Seals TOTP secrets at rest.
    pub sealer: crate::crypto::secretbox::Sealer,
    /// Live sessions and credentials, checked against the revocation clock.
    pub auth_cache: Arc<auth_cache::AuthCache>,
    /// Woken after a commit that queued e-mail.
    pub outbox_signal: Arc<tokio::sync::Notify>,
    /// Delivery counters of this instance's outbox worker.
    pub outbox_metrics: Arc<crate::mail::metrics::OutboxMetrics>,
    /// Work done off the response path, bounded.
    pub background: Arc<background::Background>,
}

impl Context {
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// One page of rows fetched with `LIMIT page_size + 1`: the rows to return,
/// and the id to continue after when there are more.
pub(crate) fn page<T>(
    mut rows: Vec<T>,
    page_size: u64,
    id: impl Fn(&T) -> uuid::Uuid,
) -> (Vec<T>, Option<uuid::Uuid>) {
    if rows.len() as u64 > page_size {
        rows.truncate(page_size as usize);
        let next = rows.last().map(&id);
        (rows, next)
    } else {
        (rows, None)
    }
}
