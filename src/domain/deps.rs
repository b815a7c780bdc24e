//! The dependencies a domain function can ask for, one trait each. A
//! function names what it uses in its bounds (`ctx: &(impl Db + Settings)`),
//! and the compiler holds it to them; [`Context`] provides every one, and
//! only the edges (handlers, middleware, job starters) hold it whole.

use std::future::Future;

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};

use super::{auth_cache::AuthCache, background::Background, password::PasswordPolicy, Context};
use crate::{
    clock::Millis, config::Config, crypto::password::HashingPool, crypto::secretbox::Sealer,
};

/// The database.
pub trait Db: Send + Sync {
    fn db(&self) -> &DatabaseConnection;

    /// Begins a transaction that may write (see [`crate::store::db::begin_write`]).
    fn begin_write(&self) -> impl Future<Output = Result<DatabaseTransaction, DbErr>> + Send {
        crate::store::db::begin_write(self.db())
    }
}

/// The configuration's values (limits, lifetimes, links): read only.
pub trait Settings: Send + Sync {
    fn config(&self) -> &Config;
}

/// The password hashing pool and the password policy.
pub trait Hashing: Send + Sync {
    fn hasher(&self) -> &HashingPool;
    fn policy(&self) -> &PasswordPolicy;
}

/// The key that seals TOTP secrets and queued e-mail at rest.
pub trait Sealing: Send + Sync {
    fn sealer(&self) -> &Sealer;
}

/// The outbox worker's wake-up, rung after a commit that queued e-mail.
pub trait OutboxSignal: Send + Sync {
    fn outbox_signal(&self) -> &tokio::sync::Notify;
}

/// Queueing e-mail: the mail settings, the sealing key and the wake-up.
pub trait Mailing: Settings + Sealing + OutboxSignal {}
impl<T: Settings + Sealing + OutboxSignal> Mailing for T {}

/// This instance's cache of live sessions and credentials.
pub trait LiveCache: Send + Sync {
    fn auth_cache(&self) -> &AuthCache;
}

/// The bounded queue of work done off the response path.
pub trait Jobs: Send + Sync {
    fn background(&self) -> &Background;
}

/// The clock, for the background jobs only: a request's time is read once
/// at the edge and passed down as `now`.
pub trait JobClock: Send + Sync {
    fn now(&self) -> Millis;
}

impl Db for Context {
    fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

impl Settings for Context {
    fn config(&self) -> &Config {
        &self.config
    }
}

impl Hashing for Context {
    fn hasher(&self) -> &HashingPool {
        &self.hasher
    }

    fn policy(&self) -> &PasswordPolicy {
        &self.policy
    }
}

impl Sealing for Context {
    fn sealer(&self) -> &Sealer {
        &self.sealer
    }
}

impl OutboxSignal for Context {
    fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.outbox_signal
    }
}

impl LiveCache for Context {
    fn auth_cache(&self) -> &AuthCache {
        &self.auth_cache
    }
}

impl Jobs for Context {
    fn background(&self) -> &Background {
        &self.background
    }
}

impl JobClock for Context {
    fn now(&self) -> Millis {
        self.clock.now_ms()
    }
}
