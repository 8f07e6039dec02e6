//! Storage and projection for PromptOS.
//!
//! - [`db`]: one connection pool for SQLite or PostgreSQL, and the migrations.
//! - [`writer`]: appends events (atomically, with optimistic concurrency, gap-free
//!   positions and a hash chain).
//! - [`log`]: reads the log and checks its chain.
//! - [`projection`] and [`projector`]: fold the log into read models.
//! - [`rebuild`] and [`verify`]: maintenance over the whole log.
//! - [`queries`]: what the read side asks of the read models.

pub mod changes;
pub mod db;
pub mod failpoint;
pub mod includes;
pub mod log;
pub mod projection;
pub mod projector;
pub mod publisher;
pub mod queries;
pub mod rebuild;
pub mod verify;
pub mod writer;

pub use db::{Backend, Db};
pub use log::{Metadata, StoredEvent};
pub use writer::{AppendError, AppendRequest, Appended, Writer};
