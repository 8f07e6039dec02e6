//! What the domain refuses, and why, in words a person can act on.

use crate::template::MAX_INCLUDE_DEPTH;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("user {0:?} not found")]
    UserNotFound(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("user {0:?} is disabled")]
    UserDisabled(String),
    #[error("user {username:?} already has the role {role}")]
    SameRole { username: String, role: String },
    #[error("API key {0:?} not found")]
    ApiKeyNotFound(String),
    #[error("API key {0:?} is already revoked")]
    ApiKeyRevoked(String),
    #[error("prompt {0:?} not found")]
    PromptNotFound(String),
    #[error("a prompt named {0:?} already exists")]
    PromptExists(String),
    #[error(
        "version {version:?} of prompt {prompt:?} already exists; versions are immutable, choose a new version string"
    )]
    VersionExists { prompt: String, version: String },
    #[error("prompt {prompt:?} has no version {version:?}")]
    VersionNotFound { prompt: String, version: String },
    #[error("unknown environment {name:?}; configured environments: {known}")]
    UnknownEnvironment { name: String, known: String },
    #[error("nothing to roll back to: prompt {prompt:?} has no earlier deployment in {environment:?}")]
    NothingToRollBack { prompt: String, environment: String },
    #[error("prompt {prompt:?} has nothing deployed in {environment:?}")]
    NotDeployed { prompt: String, environment: String },
    #[error("version {version:?} is already live in {environment:?}")]
    AlreadyLive { version: String, environment: String },
    #[error("{0}")]
    InvalidSplit(String),
    #[error("{message}")]
    IncludeCycle { message: String },
    #[error(
        "an experiment is already running for prompt {prompt:?} in {environment:?}; change its weights or stop it"
    )]
    ExperimentRunning { prompt: String, environment: String },
    #[error("no experiment is running for prompt {prompt:?} in {environment:?}")]
    NoExperiment { prompt: String, environment: String },
    #[error("version {version:?} is neither a variant of the experiment nor the version live before it ({allowed})")]
    NotInExperiment { version: String, allowed: String },
    /// Includes that would not resolve where the version is served.
    #[error(transparent)]
    Include(#[from] IncludeError),
    #[error(
        "prompt {prompt:?} is included by {}; deploy versions of those without the include first",
        includers.join(", ")
    )]
    StillIncluded { prompt: String, includers: Vec<String> },
    #[error("prompt {prompt:?} is live in the protected environment {environment:?}; only admins may delete it")]
    Protected { prompt: String, environment: String },
    #[error("change request {0:?} not found")]
    ChangeRequestNotFound(String),
    #[error("change request {id} is {status}; it can no longer change")]
    ChangeRequestClosed { id: String, status: String },
    #[error("change request {id} expired at {at}; open a new one")]
    ChangeRequestExpired { id: String, at: String },
    #[error("you opened this change request; another admin must approve it")]
    OwnChangeRequest,
    #[error("only the author of a change request or an admin may do this")]
    NotYourChangeRequest,
    #[error("the change request has {have} of the {need} approvals it needs")]
    ApprovalsMissing { have: usize, need: usize },
    #[error("what the environment serves changed since the request was reviewed ({moved}); it needs a fresh approval")]
    ChangeRequestOutdated { moved: String },
    #[error("{message}")]
    InvalidChangeRequest { field: &'static str, message: String },
    #[error("webhook {0:?} not found")]
    WebhookNotFound(String),
    #[error("{message}")]
    InvalidWebhook { field: &'static str, message: String },
    #[error("prompt {prompt:?} already has a test case named {case:?}")]
    TestCaseExists { prompt: String, case: String },
    #[error("prompt {prompt:?} has no test case {case:?}")]
    TestCaseNotFound { prompt: String, case: String },
    #[error("{message}")]
    InvalidTestCase { field: &'static str, message: String },
    #[error("prompt {0:?} has no test cases to evaluate; add some first")]
    NoTestCases(String),
    #[error("evaluation {0} is not running (it completed, or never started)")]
    EvaluationNotRunning(String),
    /// A gated environment refused a version (the cases that failed or must run).
    #[error("{environment:?} needs a passing evaluation of {prompt:?} {version}: {reason}{}",
        if cases.is_empty() { String::new() } else { format!(" (cases: {})", cases.join(", ")) })]
    GateClosed { prompt: String, version: String, environment: String, reason: String, cases: Vec<String> },
    /// A change in the request does not apply (its index in the request, and why).
    #[error("change {index} ({change}): {reason}")]
    ChangeDoesNotApply { index: usize, change: String, reason: Box<DomainError> },
}

impl DomainError {
    /// The request field the error is about, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::PromptExists(_) => Some("name"),
            DomainError::VersionExists { .. } | DomainError::VersionNotFound { .. } => Some("version_string"),
            DomainError::UnknownEnvironment { .. } | DomainError::NotDeployed { .. } => Some("environment"),
            DomainError::AlreadyLive { .. } => Some("to_version_string"),
            DomainError::InvalidSplit(_) => Some("variants"),
            DomainError::IncludeCycle { .. } => Some("text"),
            DomainError::NotInExperiment { .. } => Some("version_string"),
            DomainError::UserExists(_) => Some("username"),
            DomainError::SameRole { .. } => Some("role"),
            DomainError::InvalidChangeRequest { field, .. } => Some(field),
            DomainError::ChangeDoesNotApply { .. } => Some("changes"),
            DomainError::InvalidWebhook { field, .. } => Some(field),
            DomainError::InvalidTestCase { field, .. } => Some(field),
            DomainError::TestCaseExists { .. } => Some("name"),
            DomainError::GateClosed { .. } => Some("version_string"),
            _ => None,
        }
    }
}

impl From<crate::names::InvalidInput> for DomainError {
    /// Input refused inside a command (a test case's shape, say).
    fn from(e: crate::names::InvalidInput) -> Self {
        DomainError::InvalidTestCase { field: e.field, message: e.message }
    }
}

/// Why a version's includes do not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncludeError {
    #[error(
        "prompt {includer:?} includes {prompt:?}, which is not deployed in {environment:?}; deploy it there first"
    )]
    NotDeployed { includer: String, prompt: String, environment: String },
    #[error("prompt {includer:?} includes {prompt:?}, which does not exist")]
    NoSuchPrompt { includer: String, prompt: String },
    #[error("includes form a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("prompt {prompt:?} is a chat prompt in {environment:?}; only text prompts can be included")]
    NotText { prompt: String, environment: String },
    #[error("includes nest deeper than {MAX_INCLUDE_DEPTH} levels: {}", .0.join(" → "))]
    TooDeep(Vec<String>),
    #[error(
        "prompt {prompt:?} would resolve to {size} bytes in {environment:?} with its includes; the limit is {limit} bytes"
    )]
    TooLarge { prompt: String, environment: String, size: usize, limit: usize },
}

impl IncludeError {
    /// A stable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            IncludeError::NotDeployed { .. } | IncludeError::NoSuchPrompt { .. } => "include_missing",
            IncludeError::Cycle(_) => "include_cycle",
            IncludeError::NotText { .. } => "include_not_text",
            IncludeError::TooDeep(_) => "include_too_deep",
            IncludeError::TooLarge { .. } => "include_too_large",
        }
    }
}
