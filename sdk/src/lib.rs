//! The PromptOS SDK: fetch the prompt deployed in an environment with one call.
//!
//! ```no_run
//! # async fn run() -> Result<(), promptos_sdk::Error> {
//! use promptos_sdk::Prompts;
//! let prompts = Prompts::connect("http://127.0.0.1:8080").api_key("pos_…").build().await?;
//! let text = prompts
//!     .get("customer-support-agent", "production", minijinja::context! { customer_name => "Alex" })
//!     .await?;
//! println!("{text}");
//! # Ok(()) }
//! ```
//!
//! # How it stays fresh
//! Prompts are cached (moka) with their compiled template, so a cached `get` is a hash
//! lookup plus rendering. The client subscribes to the server's change feed — on NATS
//! (subject `promptos.changes.<environment>.<prompt>`, see [`Change`]) when given
//! [`PromptsBuilder::nats_url`], otherwise as Server-Sent Events from
//! `GET /changes/stream` — and refreshes exactly the entry a change concerns, so a
//! deploy reaches a running application within milliseconds. Changes carry the log
//! position; a message not newer than the cached entry is ignored, so duplicates and
//! late messages never bring back an older version. After any reconnect every cached
//! entry is revalidated (ETag), since messages may have been missed. The TTL
//! ([`PromptsBuilder::ttl`], default 5 minutes) is only a safety net.
//!
//! # When the server is down
//! `get` keeps serving the last known text and [`Prompts::is_stale`] turns true (with a
//! warning in the log). With [`PromptsBuilder::snapshot_file`], known prompts are kept
//! on disk and loaded at start, so an application can start while the server is down.
//!
//! # Chat prompts, model configuration and includes
//! A chat prompt is a list of messages with roles; [`Prompts::get_chat`] renders each
//! and returns the model configuration deployed with them, so the wording and the
//! parameters change together. `get` on a chat prompt is [`Error::WrongKind`].
//! Templates may `{% include "company-persona" %}`: the server resolves includes
//! against the same environment, and a redeploy of an included prompt reaches every
//! prompt that includes it by push.
//!
//! # A/B experiments
//! When an environment splits traffic between versions (`POST /deployments/split`),
//! [`Prompts::get_for`] picks the variant for a subject (a user id, a session id)
//! locally, by a stable hash: the same subject always gets the same variant while the
//! weights stay the same, in every process, and a weight change moves only the
//! subjects it must. It returns the version served, to log next to the outcome.
//! [`Prompts::get_chat_for`] does the same for chat prompts (messages and config of
//! the subject's variant). [`Prompts::get`] and [`Prompts::get_chat`] serve the first
//! variant.
//!
//! Applications without an async runtime use [`blocking::Prompts`].

pub mod blocking;
mod builder;
mod cache;
mod client;
mod error;
mod feed;
mod fleet;
mod snapshot;
mod template;

pub use builder::PromptsBuilder;
pub use client::Prompts;
pub use error::{Error, Result};
pub use feed::{Change, SUBJECT};
/// Re-exported so applications can build variables with `minijinja::context!`.
pub use minijinja;
pub use template::{Experiment, Message, Template, Variant};

/// A chat prompt rendered by [`Prompts::get_chat`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPrompt {
    /// The messages in order, each rendered with the variables given.
    pub messages: Vec<Message>,
    /// The model configuration deployed with these messages, if the version has one.
    pub config: Option<serde_json::Value>,
    /// The version served.
    pub version_string: String,
    /// With [`Prompts::get_chat_for`]: the experiment that chose this variant, if one
    /// is running.
    pub experiment_id: Option<String>,
}

/// What [`Prompts::get_for`] served: the rendered text and which version it came from,
/// so the application can log it next to the outcome it measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Served {
    pub text: String,
    /// The version this subject was served.
    pub version_string: String,
    /// The experiment that chose it, if one is running.
    pub experiment_id: Option<String>,
}
