//! One error type for every handler, turned into `{"error": {"code", "message", "field"}}`
//! in one place. Internal failures are logged with context and answered without detail.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use promptos_core::names::InvalidInput;
use promptos_core::template::TemplateError;
use promptos_core::DomainError;
use promptos_store::AppendError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String, field: Option<String> },
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String, field: Option<String> },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("too many failed attempts; try again in {0} seconds")]
    TooManyAttempts(u64),
    /// A client sends more than it may (e.g. fleet reports); retry after the seconds.
    #[error("too many requests; retry in {0} seconds")]
    RateLimited(u64),
    #[error("{message}")]
    Conflict { code: &'static str, message: String, field: Option<String> },
    #[error("the request body is larger than the server accepts (PROMPTOS_MAX_BODY_BYTES)")]
    PayloadTooLarge,
    #[error("the request body did not arrive in time; send it without pauses (PROMPTOS_BODY_TIMEOUT_SECS)")]
    BodyTimeout,
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// A template error in one chat message.
    #[error("message {index}: {error}")]
    MessageTemplate { index: usize, error: TemplateError },
    /// Includes that cannot be resolved: a missing prompt (`include_missing`), a cycle
    /// (`include_cycle`), or, when a deployed prompt is read, whatever broke since.
    #[error("{message}")]
    Include { status: StatusCode, code: &'static str, message: String, field: Option<String> },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("send the body as JSON with `Content-Type: application/json`")]
    UnsupportedMediaType,
    #[error("this endpoint does not accept that method; see /docs")]
    MethodNotAllowed,
    #[error("the database is unavailable; try again shortly")]
    Unavailable(String),
    /// An LLM provider gave no usable answer (502), or none in time (504).
    #[error(transparent)]
    Provider(#[from] crate::llm::ProviderError),
    #[error("internal error")]
    Internal(anyhow::Error),
}

/// The shared error shape (the wire contract's).
pub use promptos_core::wire::{ErrorBody, ErrorDetail};

impl From<InvalidInput> for ApiError {
    fn from(e: InvalidInput) -> Self {
        ApiError::Unprocessable { code: "invalid_input", message: e.message, field: Some(e.field.into()) }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if promptos_store::is_unavailable(&e) {
            ApiError::Unavailable(e.to_string())
        } else {
            ApiError::Internal(e.into())
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast_ref::<sqlx::Error>() {
            Some(db) if promptos_store::is_unavailable(db) => ApiError::Unavailable(db.to_string()),
            _ => ApiError::Internal(e),
        }
    }
}

/// Marks a response as "the database was unreachable", for the [`crate::gate`].
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnavailable;

impl From<AppendError> for ApiError {
    fn from(e: AppendError) -> Self {
        crate::commands::CommandError::from(e).into()
    }
}

impl From<crate::commands::CommandError> for ApiError {
    fn from(e: crate::commands::CommandError) -> Self {
        use crate::commands::CommandError;
        match e {
            CommandError::Domain(e) => ApiError::Domain(e),
            CommandError::Conflict(_) => ApiError::Conflict {
                code: "concurrent_modification",
                message: "the prompt was changed by another request at the same time; retry".into(),
                field: None,
            },
            CommandError::Unavailable(why) => ApiError::Unavailable(why),
            CommandError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl ApiError {
    /// Includes that do not resolve, answered with `status` (422 when a version is
    /// created or deployed, 409 when a deployed prompt is read).
    pub fn include(e: promptos_projector::includes::IncludeError, status: StatusCode, field: &str) -> Self {
        use promptos_projector::includes::IncludeError as E;
        let code = match &e {
            E::Unresolved(e) => e.code(),
            E::Template(_) => "include_unresolved",
            E::Database(db) if promptos_store::is_unavailable(db) => return ApiError::Unavailable(db.to_string()),
            E::Database(_) => return ApiError::Internal(e.into()),
        };
        ApiError::Include { status, code, message: e.to_string(), field: Some(field.to_owned()) }
    }

    /// Names the request field an include problem is about (the template when a
    /// version is created, the version that would go live when it is deployed).
    pub fn on_field(self, field: &str) -> Self {
        match self {
            ApiError::Domain(DomainError::Include(e)) => ApiError::Include {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: e.code(),
                message: e.to_string(),
                field: Some(field.to_owned()),
            },
            other => other,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::Unprocessable { code: "invalid_input", message: message.into(), field: Some(field.into()) }
    }

    pub fn bad_query(field: Option<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest { code: "invalid_query", message: message.into(), field }
    }

    fn parts(&self) -> (StatusCode, ErrorDetail) {
        let detail = |code: &str, message: String, field: Option<String>| ErrorDetail {
            code: code.into(),
            message,
            field,
            line: None,
            column: None,
            cases: Vec::new(),
        };
        match self {
            ApiError::BadRequest { code, message, field } => {
                (StatusCode::BAD_REQUEST, detail(code, message.clone(), field.clone()))
            }
            ApiError::Unprocessable { code, message, field } => {
                (StatusCode::UNPROCESSABLE_ENTITY, detail(code, message.clone(), field.clone()))
            }
            ApiError::NotFound(message) => (StatusCode::NOT_FOUND, detail("not_found", message.clone(), None)),
            ApiError::Conflict { code, message, field } => {
                (StatusCode::CONFLICT, detail(code, message.clone(), field.clone()))
            }
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, detail("payload_too_large", self.to_string(), None))
            }
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, detail("body_timeout", self.to_string(), None)),
            ApiError::Template(e) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorDetail {
                    code: "template_syntax".into(),
                    message: e.to_string(),
                    field: Some("text".into()),
                    line: Some(e.line),
                    column: Some(e.column),
                    cases: Vec::new(),
                },
            ),
            ApiError::MessageTemplate { index, error } => (
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorDetail {
                    code: "template_syntax".into(),
                    message: self.to_string(),
                    field: Some(format!("messages[{index}].content")),
                    line: Some(error.line),
                    column: Some(error.column),
                    cases: Vec::new(),
                },
            ),
            ApiError::Include { status, code, message, field } => {
                (*status, detail(code, message.clone(), field.clone()))
            }
            ApiError::Domain(e) => {
                let field = e.field().map(str::to_owned);
                let (status, code) = domain_status(e);
                let mut detail = detail(code, e.to_string(), field);
                if let DomainError::GateClosed { cases, .. } = e {
                    detail.cases = cases.clone();
                }
                (status, detail)
            }
            ApiError::Unauthorized(message) => {
                (StatusCode::UNAUTHORIZED, detail("unauthorized", message.clone(), None))
            }
            ApiError::Forbidden(message) => (StatusCode::FORBIDDEN, detail("forbidden", message.clone(), None)),
            ApiError::TooManyAttempts(_) => {
                (StatusCode::TOO_MANY_REQUESTS, detail("too_many_attempts", self.to_string(), None))
            }
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, detail("rate_limited", self.to_string(), None)),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, detail("unsupported_media_type", self.to_string(), None))
            }
            ApiError::MethodNotAllowed => {
                (StatusCode::METHOD_NOT_ALLOWED, detail("method_not_allowed", self.to_string(), None))
            }
            ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, detail("unavailable", self.to_string(), None))
            }
            ApiError::Provider(e) if e.is_timeout() => {
                (StatusCode::GATEWAY_TIMEOUT, detail("llm_timeout", self.to_string(), None))
            }
            ApiError::Provider(_) => (StatusCode::BAD_GATEWAY, detail("llm_provider_error", self.to_string(), None)),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                detail("internal", "an internal error occurred; it has been logged".into(), None),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            // The gate logs the outage once; not every refused request.
            ApiError::Unavailable(why) => tracing::debug!(reason = %why, "database unavailable"),
            ApiError::Provider(e) => tracing::warn!(error = %e, "LLM provider failed"),
            _ => {}
        }
        let (status, error) = self.parts();
        let mut response = (status, Json(ErrorBody { error })).into_response();
        match self {
            ApiError::Unauthorized(_) => {
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::TooManyAttempts(secs) | ApiError::RateLimited(secs) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::Unavailable(_) => {
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                response.extensions_mut().insert(DatabaseUnavailable);
            }
            _ => {}
        }
        response
    }
}

/// The status and code each refusal of the domain is answered with.
fn domain_status(e: &DomainError) -> (StatusCode, &'static str) {
    match e {
        DomainError::PromptNotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        DomainError::VersionNotFound { .. } => (StatusCode::NOT_FOUND, "version_not_found"),
        DomainError::PromptExists(_) => (StatusCode::CONFLICT, "prompt_exists"),
        DomainError::VersionExists { .. } => (StatusCode::CONFLICT, "version_exists"),
        DomainError::UnknownEnvironment { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_environment"),
        DomainError::NothingToRollBack { .. } => (StatusCode::CONFLICT, "nothing_to_roll_back"),
        DomainError::NotDeployed { .. } => (StatusCode::CONFLICT, "not_deployed"),
        DomainError::AlreadyLive { .. } => (StatusCode::CONFLICT, "already_live"),
        DomainError::InvalidSplit(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_split"),
        DomainError::IncludeCycle { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "include_cycle"),
        DomainError::ExperimentRunning { .. } => (StatusCode::CONFLICT, "experiment_running"),
        DomainError::NoExperiment { .. } => (StatusCode::CONFLICT, "no_experiment"),
        DomainError::NotInExperiment { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "not_in_experiment"),
        DomainError::UserNotFound(_) => (StatusCode::NOT_FOUND, "user_not_found"),
        DomainError::UserExists(_) => (StatusCode::CONFLICT, "user_exists"),
        DomainError::UserDisabled(_) => (StatusCode::CONFLICT, "user_disabled"),
        DomainError::SameRole { .. } => (StatusCode::CONFLICT, "same_role"),
        DomainError::ApiKeyNotFound(_) => (StatusCode::NOT_FOUND, "api_key_not_found"),
        DomainError::ApiKeyRevoked(_) => (StatusCode::CONFLICT, "api_key_revoked"),
        DomainError::Include(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.code()),
        DomainError::StillIncluded { .. } => (StatusCode::CONFLICT, "still_included"),
        DomainError::Protected { .. } => (StatusCode::FORBIDDEN, "forbidden"),

        DomainError::ChangeRequestNotFound(_) => (StatusCode::NOT_FOUND, "change_request_not_found"),
        DomainError::ChangeRequestClosed { .. } => (StatusCode::CONFLICT, "change_request_closed"),
        DomainError::ChangeRequestExpired { .. } => (StatusCode::CONFLICT, "change_request_expired"),
        DomainError::OwnChangeRequest => (StatusCode::FORBIDDEN, "own_change_request"),
        DomainError::NotYourChangeRequest => (StatusCode::FORBIDDEN, "forbidden"),
        DomainError::ApprovalsMissing { .. } => (StatusCode::CONFLICT, "approvals_missing"),
        DomainError::ChangeRequestOutdated { .. } => (StatusCode::CONFLICT, "change_request_outdated"),
        DomainError::InvalidChangeRequest { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_change_request"),
        DomainError::ChangeDoesNotApply { reason, .. } => domain_status(reason),
        DomainError::WebhookNotFound(_) => (StatusCode::NOT_FOUND, "webhook_not_found"),
        DomainError::InvalidWebhook { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_webhook"),
        DomainError::TestCaseExists { .. } => (StatusCode::CONFLICT, "test_case_exists"),
        DomainError::TestCaseNotFound { .. } => (StatusCode::NOT_FOUND, "test_case_not_found"),
        DomainError::InvalidTestCase { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_test_case"),
        DomainError::NoTestCases(_) => (StatusCode::CONFLICT, "no_test_cases"),
        DomainError::EvaluationNotRunning(_) => (StatusCode::CONFLICT, "evaluation_not_running"),
        DomainError::GateClosed { .. } => (StatusCode::CONFLICT, "evaluation_gate_closed"),
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
