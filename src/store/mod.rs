//! All persistence: typed functions per aggregate, engine-specific fast
//! paths included. The only place with SQL or sea-orm queries, besides
//! `migrations/`; the domain calls these functions and never builds a query.

pub mod accounts;
pub mod challenges;
pub mod compromised;
pub mod contacts;
pub mod credentials;
pub mod db;
pub mod events;
pub mod factor_resets;
pub mod files;
pub mod login;
pub mod outbox;
pub mod passkeys;
pub mod pending;
pub mod revocation_clock;
pub mod sealed;
pub mod second_factor;
pub mod sessions;
pub mod suspensions;
pub mod throttle;
pub mod tickets;
pub mod tokens;
pub mod verifications;
