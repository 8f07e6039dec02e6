//! Webhooks: delivering the log's events, signed, to the tools a team already uses.

pub mod crypto;
pub mod guard;
