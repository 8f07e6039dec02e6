//! Webhooks: delivering the log's events, signed, to the tools a team already uses.
//!
//! - [`crypto`]: the signing secrets, sealed in the log, and the signatures;
//! - [`guard`]: which URLs and addresses a webhook may reach;
//! - [`queue`] and [`dispatch`]: sending what the projector put in the outbox.

pub mod crypto;
pub mod dispatch;
pub mod guard;
pub mod queue;
