//! The PromptOS event log, the only source of truth: every change is an event appended
//! to a hash-chained log in SQL, SQLite embedded by default and PostgreSQL when a team
//! outgrows one machine. Everything else is folded from it (`promptos-projector`).
//!
//! - [`Db`]: a native pool of either database, its migrations (`store/migrations/`),
//!   and [`on_pool!`] / [`on_tx!`] to run a statement written once on either driver;
//! - [`EventLog`]: what the rest of PromptOS asks of the log: append, read, verify the
//!   chain, import;
//! - [`Writer`]: the task that owns appends in a process, batching them (group commit)
//!   and admitting each against the [`promptos_core::catalog::Catalog`];
//! - [`bulk`]: many rows at once (multi-row inserts, `COPY` on PostgreSQL);
//! - [`failpoint`]: crash and error points for fault tests (the `failpoints` feature).

mod append;
pub mod bulk;
pub mod checkpoints;
mod db;
pub mod event;
pub mod failpoint;
pub mod fleet;
pub mod log;
pub mod secrets;
pub mod writer;

pub use db::{is_unavailable, redact_url, Backend, Db, DbError, Pool, Tx};
pub use event::{chain_hash, format_timestamp, Metadata, StoredEvent, EVENT_COLUMNS, GENESIS_HASH};
pub use log::{BadEvent, ChainReport, EventLog, ImportError};
pub use writer::{AppendError, AppendRequest, Appended, Group, Writer};

/// The sqlx this crate is built with, for the macros.
pub use sqlx;
