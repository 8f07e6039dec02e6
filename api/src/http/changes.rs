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
use promptos_store::EventLog;
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

/// This resource's routes, with their OpenAPI operations.
pub(crate) fn routes() -> super::Routes {
    use super::RoutesExt;
    super::Routes::default().routes_and_twins(utoipa_axum::routes!(stream))
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
    let until = state.follower.visible();
    // Replayed page by page as the client reads: an old Last-Event-ID costs one page of
    // memory, not the whole log since then.
    let replay = Replay { state: state.clone(), filter: filter.clone(), after: last.unwrap_or(until), until };
    let replay = stream::unfold(replay, |mut r| async move {
        match r.next_page().await {
            Some(page) => Some((stream::iter(page), r)),
            None => None,
        }
    })
    .flatten();
    let resume = last.is_some();
    let sent = until;
    // The stream lives as long as its credential: it is checked again whenever the log
    // moves (a revocation, a disabled user or a password change is an event) and every
    // so often (an access token expires).
    let credential = crate::auth::credential(&headers)?.unwrap_or_default().to_owned();
    let watch = Watch { live, filter, visible: state.follower.watch_visible(), state, credential };
    let live = stream::unfold(watch, move |mut w| async move {
        let mut recheck = tokio::time::interval(CREDENTIAL_RECHECK);
        recheck.tick().await;
        loop {
            tokio::select! {
                received = w.live.recv() => match received {
                    Ok(m) if (!resume || m.position > sent) && w.filter.accepts(&m) => {
                        return Some((Ok(sse_event(&m)), w));
                    }
                    Ok(_) => continue,
                    // Too slow to keep up, or shutting down: end the stream; the client
                    // reconnects with Last-Event-ID and gets the rest from the log.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                },
                moved = w.visible.changed() => {
                    if moved.is_err() || !w.still_valid().await {
                        return None;
                    }
                }
                _ = recheck.tick() => {
                    if !w.still_valid().await {
                        return None;
                    }
                }
            }
        }
    });
    Ok(Sse::new(replay.chain(live)).keep_alive(KeepAlive::default()))
}

/// How often an open stream checks that its credential is still good, besides each
/// time the log moves.
const CREDENTIAL_RECHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// Events replayed per page.
const REPLAY_PAGE: i64 = 1000;

/// The change messages between `after` and `until`, read a page at a time.
struct Replay {
    state: AppState,
    filter: Arc<Filter>,
    after: i64,
    until: i64,
}

impl Replay {
    async fn next_page(&mut self) -> Option<Vec<Result<Event, Infallible>>> {
        while self.after < self.until {
            let events = match self.state.db.read_after(self.after, REPLAY_PAGE.min(self.until - self.after)).await {
                Ok(events) => events,
                Err(e) => {
                    // The client resumes from the last id it got.
                    tracing::warn!(error = %e, "cannot replay the change feed; ending the stream");
                    return None;
                }
            };
            let end = events.last()?.position;
            let messages = match changes_for(&self.state.db, &events).await {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot replay the change feed; ending the stream");
                    return None;
                }
            };
            self.after = end;
            let page: Vec<_> = messages.iter().filter(|m| self.filter.accepts(m)).map(|m| Ok(sse_event(m))).collect();
            if !page.is_empty() {
                return Some(page);
            }
        }
        None
    }
}

struct Watch {
    live: tokio::sync::broadcast::Receiver<Arc<ChangeMessage>>,
    filter: Arc<Filter>,
    visible: tokio::sync::watch::Receiver<i64>,
    state: AppState,
    credential: String,
}

impl Watch {
    async fn still_valid(&self) -> bool {
        crate::auth::authenticate(&self.state, &self.credential).await.is_ok()
    }
}
