//! `POST /playground/render` and `POST /playground/run`: try a version with some inputs
//! before it ships. Rendering is instant; a run streams the provider's answer token by
//! token (server-sent events). Runs change nothing and are not audit events; they are
//! limited per user (runs per minute, tokens per hour).

use super::error::{ApiError, ApiResult};
use super::evaluations::{include_environment, version_row};
use super::extract::Json;
use super::support::{live_prompt, path_name};
use super::versions::MessageDto;
use crate::app::AppState;
use crate::auth::Caller;
use crate::evaluation::expect;
use crate::evaluation::render::{render, RenderError, Rendered};
use crate::llm::{self, Completion, Message};
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use promptos_core::evaluation::{CheckOutcome, Expectation};
use promptos_core::names::Role;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Instant;
use utoipa::ToSchema;

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default()
        .routes_and_twins(utoipa_axum::routes!(render_version))
        .routes_and_twins(utoipa_axum::routes!(run))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaygroundInput {
    #[schema(example = "customer-support-agent", pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 100)]
    pub prompt_name: String,
    #[schema(example = "v2", pattern = "^[A-Za-z0-9._+-]+$", min_length = 1, max_length = 50)]
    pub version_string: String,
    /// Values for the template's variables.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Messages sent after the version's own (a user's turn in a chat prompt).
    #[serde(default)]
    pub messages: Vec<MessageDto>,
    /// Where includes resolve (default: the first gated environment, else the last one).
    pub environment: Option<String>,
    /// `run` only. Default: the server's default provider.
    pub provider: Option<String>,
    /// `run` only. Default: the version's configured `model`, else the provider's.
    pub model: Option<String>,
    /// `run` only: expectations to check the answer against (as a test case would),
    /// so what is tried can be saved as a test case with its checks.
    #[serde(default)]
    pub expectations: Vec<Expectation>,
}

async fn rendered(state: &AppState, body: &PlaygroundInput) -> ApiResult<Rendered> {
    let prompt = live_prompt(state, path_name(&body.prompt_name)?.as_str()).await?;
    let row = version_row(state, &prompt, &body.version_string).await?;
    let environment = include_environment(state, body.environment.as_deref())?;
    let extra = MessageDto::parse_all(&body.messages)?;
    match render(&state.db, &prompt.name, environment.as_str(), &row, &body.variables, &extra).await {
        Ok(r) => Ok(r),
        Err(RenderError::Unavailable(why)) => Err(ApiError::Unavailable(why)),
        Err(e @ RenderError::Includes(_)) => Err(ApiError::Unprocessable {
            code: "include_unresolved",
            message: e.to_string(),
            field: Some("version_string".into()),
        }),
        Err(e) => Err(ApiError::Unprocessable {
            code: "render_failed",
            message: e.to_string(),
            field: Some("variables".into()),
        }),
    }
}

/// A version rendered with the given variables: its text or messages, includes
/// resolved, as a provider would be sent them.
#[utoipa::path(post, path = "/playground/render", tag = "evaluations", request_body = PlaygroundInput,
    responses((status = 200, body = Rendered), (status = 404, body = super::error::ErrorBody),
        (status = 422, description = "A variable has no value, or an include does not resolve", body = super::error::ErrorBody)))]
pub async fn render_version(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PlaygroundInput>,
) -> ApiResult<axum::Json<Rendered>> {
    caller.require(Role::Viewer)?;
    Ok(axum::Json(rendered(&state, &body).await?))
}

/// The end of a playground run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDone {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// From the request to the last token.
    pub latency_ms: u64,
    /// From the request to the first token.
    pub first_token_ms: Option<u64>,
    /// The answer checked against the request's expectations (judges excepted: they run
    /// in evaluations).
    pub checks: Vec<CheckOutcome>,
}

fn event(kind: &str, data: &impl Serialize) -> Event {
    Event::default().event(kind).json_data(data).expect("playground events serialize")
}

/// Runs a version against a provider and streams the answer: a `rendered` event (the
/// messages sent), `delta` events (`{"text": …}`) as tokens arrive, then `done` (the
/// whole answer, tokens, latency, checks) or `error`. Editors; limited per user
/// (`PROMPTOS_PLAYGROUND_RUNS_PER_MINUTE`, `PROMPTOS_PLAYGROUND_TOKENS_PER_HOUR`).
#[utoipa::path(post, path = "/playground/run", tag = "evaluations", request_body = PlaygroundInput,
    responses((status = 200, description = "text/event-stream of `rendered`, `delta`, then `done` or `error`", content_type = "text/event-stream"),
        (status = 404, body = super::error::ErrorBody), (status = 422, body = super::error::ErrorBody),
        (status = 429, description = "Too many runs or tokens for this user; see Retry-After", body = super::error::ErrorBody)))]
pub async fn run(
    State(state): State<AppState>,
    caller: Caller,
    Json(body): Json<PlaygroundInput>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    caller.require(Role::Editor)?;
    let user = caller.username().unwrap_or_default().to_owned();
    let compiled = expect::compile(&body.expectations)?;
    let provider = state
        .optimizer
        .provider(body.provider.as_deref())
        .map_err(|e| ApiError::invalid("provider", e.to_string()))?
        .clone();
    let rendered = rendered(&state, &body).await?;
    let model = crate::evaluation::render::choose_model(
        body.model.as_deref(),
        rendered.config.as_ref(),
        provider.default_model(),
    );
    state.playground.start(&user, Instant::now()).map_err(|r| ApiError::RateLimited(r.retry_after()))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Event>(256);
    let messages: Vec<Message> = rendered
        .messages
        .iter()
        .map(|m| Message { role: m.role.as_str().to_owned(), content: m.content.clone() })
        .collect();
    let _ = tx.try_send(event("rendered", &rendered));
    tokio::spawn(async move {
        let started = Instant::now();
        let (deltas, mut incoming) = tokio::sync::mpsc::channel::<String>(256);
        let forward = {
            let tx = tx.clone();
            async move {
                let mut first = None;
                while let Some(piece) = incoming.recv().await {
                    first.get_or_insert(started.elapsed().as_millis() as u64);
                    let _ = tx.send(event("delta", &serde_json::json!({ "text": piece }))).await;
                }
                first
            }
        };
        let completion = Completion { model: &model, messages: &messages, config: rendered.config.as_ref() };
        let call =
            llm::stream(provider.as_ref(), state.optimizer.http(), state.optimizer.policy(), &completion, deltas);
        let (answer, first_token_ms) = tokio::join!(call, forward);
        match answer {
            Ok(a) => {
                state.playground.spent(
                    &user,
                    a.input_tokens.unwrap_or(0) + a.output_tokens.unwrap_or(0),
                    Instant::now(),
                );
                let checks = compiled.iter().filter_map(|c| expect::check(c, &a.text)).collect();
                let done = RunDone {
                    provider: provider.name().to_owned(),
                    model: model.clone(),
                    input_tokens: a.input_tokens,
                    output_tokens: a.output_tokens,
                    latency_ms: started.elapsed().as_millis() as u64,
                    first_token_ms,
                    checks,
                    text: a.text,
                };
                let _ = tx.send(event("done", &done)).await;
            }
            Err(e) => {
                let code = if e.is_timeout() { "llm_timeout" } else { "llm_provider_error" };
                let _ = tx.send(event("error", &serde_json::json!({ "code": code, "message": e.to_string() }))).await;
            }
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|e| e.map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
