//! The read side of PromptOS: folds the event log (`promptos-store`) into read models
//! and says what changed.
//!
//! - [`views`]: the read models, one module per view: its rows, its fold, its SQL;
//! - [`projector`]: follows the log from its checkpoint, one transaction per batch;
//! - [`queries`] and [`deployed`]: what the read side asks of the read models;
//! - [`includes`]: resolving `{% include %}` against what is deployed;
//! - [`changes`] and [`publisher`]: the change messages for each batch, and publishing
//!   them on NATS;
//! - [`outbox`]: the webhook deliveries each batch calls for, enqueued with it;
//! - [`rebuild`] and [`verify`]: maintenance over the whole log.

pub mod changes;
pub mod checkpoints;
pub mod deployed;
pub mod includes;
pub mod outbox;
pub mod projector;
pub mod publisher;
pub mod queries;
pub mod rebuild;
mod shadow;
pub mod verify;
pub mod views;

pub use promptos_store::{failpoint, Backend, Db};
