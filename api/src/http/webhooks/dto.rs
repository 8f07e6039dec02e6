//! What `/webhooks/` reads and answers.

use crate::http::error::{ApiError, ApiResult};
use promptos_core::names::{EnvironmentName, PromptName, Tag};
use promptos_core::webhook::{WebhookFilter, WebhookFormat};
use promptos_projector::views::WebhookRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A new webhook (admins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Where deliveries are POSTed: `https://` to a public address.
    #[schema(example = "https://ci.example.com/hooks/promptos", max_length = 2000)]
    pub url: String,
    #[serde(default)]
    #[schema(max_length = 4000)]
    pub description: String,
    /// `standard` (default) or `slack`.
    #[schema(value_type = Option<String>, example = "standard")]
    pub format: Option<WebhookFormat>,
    /// Types to deliver (`prompt.version.deployed`, or a prefix such as `prompt.*`);
    /// empty or absent: every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Only events in these environments.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Only events about these prompts.
    #[serde(default)]
    pub prompts: Vec<String>,
    /// Only events about prompts carrying one of these tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

/// Changes to a webhook (admins); absent fields keep their value. Enabling a webhook the
/// server disabled resumes its deliveries where they stopped.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    #[schema(max_length = 2000)]
    pub url: Option<String>,
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    #[schema(value_type = Option<String>)]
    pub format: Option<WebhookFormat>,
    pub event_types: Option<Vec<String>>,
    pub environments: Option<Vec<String>>,
    pub prompts: Option<Vec<String>>,
    pub tags: Option<Vec<String>>,
    pub enabled: Option<bool>,
}

/// Parses a filter's lists, naming the field of the first bad entry.
pub fn filter(
    event_types: Vec<String>,
    environments: &[String],
    prompts: &[String],
    tags: &[String],
) -> ApiResult<WebhookFilter> {
    let at = |field: &str, i: usize, message: String| ApiError::invalid(&format!("{field}[{i}]"), message);
    Ok(WebhookFilter {
        event_types,
        environments: environments
            .iter()
            .enumerate()
            .map(|(i, e)| EnvironmentName::parse(e).map_err(|x| at("environments", i, x.message)))
            .collect::<ApiResult<_>>()?,
        prompts: prompts
            .iter()
            .enumerate()
            .map(|(i, p)| PromptName::parse(p).map_err(|x| at("prompts", i, x.message)))
            .collect::<ApiResult<_>>()?,
        tags: tags
            .iter()
            .enumerate()
            .map(|(i, t)| Tag::parse(t).map_err(|x| at("tags", i, x.message)))
            .collect::<ApiResult<_>>()?,
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDto {
    pub id: String,
    pub url: String,
    pub description: String,
    /// `standard` or `slack`.
    pub format: String,
    pub event_types: Vec<String>,
    pub environments: Vec<String>,
    pub prompts: Vec<String>,
    pub tags: Vec<String>,
    pub enabled: bool,
    /// Why the server stopped delivering (a 410, or a day of failures).
    pub disabled_reason: Option<String>,
    pub created_at: String,
    pub created_by: String,
    /// Log position of its last change.
    pub position: i64,
}

impl From<WebhookRow> for WebhookDto {
    fn from(w: WebhookRow) -> Self {
        let filter: WebhookFilter = serde_json::from_str(&w.filter).unwrap_or_default();
        Self {
            id: w.webhook_id,
            url: w.url,
            description: w.description,
            format: w.format,
            event_types: filter.event_types,
            environments: filter.environments.iter().map(|e| e.to_string()).collect(),
            prompts: filter.prompts.iter().map(|p| p.to_string()).collect(),
            tags: filter.tags.iter().map(|t| t.to_string()).collect(),
            enabled: w.enabled != 0,
            disabled_reason: w.disabled_reason,
            created_at: w.created_at,
            created_by: w.created_by,
            position: w.last_position,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookDto>,
}

/// A new webhook, with its signing secret: shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedDto {
    #[serde(flatten)]
    pub webhook: WebhookDto,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

/// A rotated secret: the new one, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct RotatedDto {
    pub secret: String,
    /// Until then deliveries carry a signature with the previous secret too.
    pub previous_valid_until: String,
}

/// A delivery queued by a test or a redelivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedDto {
    /// The `webhook-id` header it is sent with.
    pub delivery_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptDto {
    pub attempt: i64,
    pub at_ms: i64,
    /// Absent when no answer came (refused, timed out).
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The start of the response body (at most 1 KB).
    pub response: Option<String>,
}

impl From<crate::webhooks::queue::AttemptRow> for AttemptDto {
    fn from(a: crate::webhooks::queue::AttemptRow) -> Self {
        Self {
            attempt: a.attempt,
            at_ms: a.at_ms,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response: a.response,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryDto {
    /// The `webhook-id` header, the same on every attempt.
    pub delivery_id: String,
    pub position: i64,
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: i64,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub finished_ms: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub log: Vec<AttemptDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<DeliveryDto>,
}
