use std::fmt;

/// What can go wrong when fetching or rendering a prompt.
///
/// ```no_run
/// # async fn run(prompts: promptos_sdk::Prompts) {
/// use promptos_sdk::Error;
/// match prompts.get("greeting", "production", minijinja::context! {}).await {
///     Ok(text) => println!("{text}"),
///     Err(Error::MissingVariable { name, .. }) => eprintln!("pass the variable {name}"),
///     Err(other) => eprintln!("{other}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Nothing is deployed under that name in that environment.
    #[error("no version of prompt {prompt:?} is deployed in {environment:?}")]
    NotFound { prompt: String, environment: String },
    /// The template reads a variable the caller did not pass (strict mode).
    #[error("prompt {prompt:?} needs the variable {name:?}, which was not given")]
    MissingVariable { prompt: String, name: String },
    /// The template failed while rendering.
    #[error("prompt {prompt:?} failed to render: {message}")]
    Render { prompt: String, message: String },
    /// The credential was refused (401) or lacks the right (403).
    #[error("PromptOS refused the credential: {0}")]
    Unauthorized(String),
    /// The server could not be reached and nothing was cached for this prompt.
    #[error("PromptOS is unavailable and prompt {prompt:?} ({environment}) was never fetched: {reason}")]
    Unavailable { prompt: String, environment: String, reason: String },
    /// The server answered something this SDK does not understand.
    #[error("unexpected answer from PromptOS: {0}")]
    Protocol(String),
    /// A chat prompt was asked for with `get` (use `get_chat`), or a text prompt with
    /// `get_chat` (use `get`).
    #[error("prompt {prompt:?} is a {kind} prompt; use {hint}")]
    WrongKind { prompt: String, kind: String, hint: String },
    /// The client was configured wrongly.
    #[error("invalid PromptOS client configuration: {0}")]
    Config(String),
}

/// A failure to reach the server (as opposed to an answer from it).
#[derive(Debug)]
pub(crate) struct Unreachable(pub String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The SDK's result type.
///
/// ```
/// fn nothing() -> promptos_sdk::Result<()> { Ok(()) }
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;
