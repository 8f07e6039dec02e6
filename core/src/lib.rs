//! The PromptOS domain, with no I/O.
//!
//! A command comes in, [`prompt::decide`] checks it against the current state of the
//! prompt's stream and answers with the events that follow from it (or a
//! [`DomainError`]); [`prompt::evolve`] folds an event into that state. Everything that
//! touches a database, a clock or a network lives in other crates: the caller passes
//! in the new prompt id and the configured environments.
//!
//! ```
//! use promptos_core::prompt::{decide, evolve, PromptCommand, PromptState, Context};
//! use promptos_core::names::{PromptName, Description};
//!
//! let ctx = Context::default();
//! let name = PromptName::parse("customer-support-agent").unwrap();
//! let events = decide(&PromptState::default(), &ctx, PromptCommand::Create {
//!     prompt_id: uuid::Uuid::nil(),
//!     name: name.clone(),
//!     description: Description::parse("Greets customers").unwrap(),
//! }).unwrap();
//! let state = events.iter().fold(PromptState::default(), evolve);
//! assert!(state.live().is_some());
//! ```

pub mod access;
pub mod aggregate;
pub mod catalog;
pub mod change_request;
pub mod content;
pub mod error;
pub mod evaluation;
pub mod events;
pub mod experiment;
pub mod fleet;
pub mod names;
pub mod prompt;
pub mod template;
pub mod time_travel;
pub mod webhook;
pub mod wire;

pub use error::DomainError;
pub use events::Event;
