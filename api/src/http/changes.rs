//! `GET /changes/stream`: the change feed as Server-Sent Events, for applications that
//! cannot reach NATS and for the UI. Each event's id is its log position; reconnect with
//! `Last-Event-ID` to get what was missed.

use super::error::{ApiError, ApiResult};
use super::extract::Query;
use crate::app::AppState;
use crate::auth::{Caller, Principal};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::{self, Stream, StreamExt};
use promptos_core::names::{EnvironmentName, Role};
use promptos_projector::changes::{changes_for, ChangeMessage};
use promptos_projector::log::read_after;
use serde::Deserialize;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only this environment (default: every environment the caller may read).
    #[param(pattern = "^[a-z0-9._-]+$", min_length = 1, max_length = 50)]
    pub environment: Option<String>,
    /// Only this prompt.
    pub prompt: Option<String>,
    /// Resume after this position (same as the `Last-Event-ID` header); 0 replays
    /// from the start.
    #[param(minimum = 0)]
    pub last_event_id: Option<i64>,
}

struct Filter {
    environments: Option<Vec<String>>,
    prompt: Option<String>,
}

impl Filter {
    fn accepts(&self, m: &ChangeMessage) -> bool {
        self.environments.as_ref().is_none_or(|envs| envs.contains(&m.environment))
            && self.prompt.as_ref().is_none_or(|p| *p == m.prompt)
    }
}

fn sse_event(m: &ChangeMessage) -> Event {
    Event::default().id(m.position.to_string()).event("change").json_data(m).expect("messages serialize")
}

/// Stream change messages (Server-Sent Events, event type `change`).
#[utoipa::path(get, path = "/changes/stream", tag = "deployments", params(StreamParams),
    responses((status = 200, description = "text/event-stream of change messages", content_type = "text/event-stream"),
        (status = 403, body = super::error::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    Query(p): Query<StreamParams>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let environments = match (&p.environment, &caller.principal) {
        (Some(env), _) => {
            let env = EnvironmentName::parse(env)?;
            state.commands.context().check_environment(&env)?;
            caller.require_read(&env)?;
            Some(vec![env.to_string()])
        }
        (None, Principal::User { .. }) => {
            caller.require(Role::Viewer)?;
            None
        }
        (None, Principal::ApiKey { environments, .. }) => Some(environments.clone()),
    };
    let header_id = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(|v| {
        v.trim()
            .parse::<i64>()
            .map_err(|_| ApiError::bad_query(Some("Last-Event-ID".into()), "Last-Event-ID must be a position"))
    });
    let last = match header_id {
        Some(id) => Some(id?),
        None => p.last_event_id,
    };
    if last.is_some_and(|l| l < 0) {
        return Err(ApiError::bad_query(
            Some("last_event_id".into()),
            "the last event id is a log position, 0 or more (0 replays from the start)",
        ));
    }
    let filter = Arc::new(Filter { environments, prompt: p.prompt });
    // Subscribe before replaying, so nothing falls between the two.
    let live = state.follower.subscribe();
    let mut replayed = Vec::new();
    let mut sent = last.unwrap_or(i64::MAX);
    if let Some(mut after) = last {
        let until = state.follower.visible();
        while after < until {
            let events = read_after(&state.db, after, 1000.min(until - after)).await?;
            let Some(end) = events.last().map(|e| e.position) else { break };
            replayed.extend(changes_for(&state.db, &events).await?.into_iter().filter(|m| filter.accepts(m)));
            after = end;
        }
        sent = after;
    }
    let replay = stream::iter(replayed.iter().map(sse_event).map(Ok).collect::<Vec<_>>());
    let resume = last.is_some();
    let live = stream::unfold((live, filter), move |(mut live, filter)| async move {
        loop {
            match live.recv().await {
                Ok(m) if (!resume || m.position > sent) && filter.accepts(&m) => {
                    return Some((Ok(sse_event(&m)), (live, filter)));
                }
                Ok(_) => continue,
                // Too slow to keep up, or shutting down: end the stream; the client
                // reconnects with Last-Event-ID and gets the rest from the log.
                Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(replay.chain(live)).keep_alive(KeepAlive::default()))
}
