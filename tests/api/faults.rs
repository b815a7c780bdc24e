//! Faults the service must survive: the process killed (SIGKILL) at random
//! moments under load, PostgreSQL stopped and restarted under load, SQLite
//! locked by another writer, and SIGTERM during load. Each test checks the
//! database afterwards: every acknowledged change is there, nothing is
//! half-applied.

mod cluster;
mod crash;
mod invariants;
mod lifecycle;
pub(crate) mod postgres_outage;
pub(crate) mod process;
mod replicas;
mod shutdown;
mod sqlite_busy;
