//! What the read side asks of the read models. Every function is one or two indexed
//! queries; nothing here writes.

use crate::checkpoints::{self, READ_MODELS};
use crate::views::*;
use promptos_store::{on_pool, Db, EventLog, StoredEvent, EVENT_COLUMNS};
use sqlx::QueryBuilder;

fn prefixed(columns: &str, alias: &str) -> String {
    columns.split(',').map(|c| format!("{alias}.{}", c.trim())).collect::<Vec<_>>().join(", ")
}

/// Escapes `%`, `_` and `\` for a LIKE prefix match.
fn like_prefix(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

#[derive(Debug, Clone, Default)]
pub struct PromptListFilter {
    pub prefix: Option<String>,
    /// Continue after this (name, first_position).
    pub after: Option<(String, i64)>,
    pub include_deleted: bool,
    /// Only prompts carrying this tag.
    pub tag: Option<String>,
    pub limit: i64,
}

pub async fn list_prompts(db: &Db, f: &PromptListFilter) -> Result<Vec<PromptRow>, sqlx::Error> {
    on_pool!(db, pool => {
        let mut q = QueryBuilder::new(format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE 1 = 1"));
        if !f.include_deleted {
            q.push(" AND deleted_at IS NULL");
        }
        if let Some(prefix) = &f.prefix {
            q.push(" AND name LIKE ").push_bind(like_prefix(prefix)).push(" ESCAPE '\\'");
        }
        // Tags are stored as a JSON array of strings whose alphabet has no quotes or
        // wildcards, so the quoted tag matches exactly one element.
        if let Some(tag) = &f.tag {
            q.push(" AND tags LIKE ").push_bind(format!("%\"{tag}\"%"));
        }
        if let Some((name, first)) = &f.after {
            q.push(" AND (name > ").push_bind(name.clone());
            q.push(" OR (name = ").push_bind(name.clone());
            q.push(" AND first_position > ").push_bind(*first).push("))");
        }
        q.push(" ORDER BY name, first_position LIMIT ").push_bind(f.limit);
        q.build_query_as().fetch_all(pool).await
    })
}

/// The live prompt with this name.
pub async fn live_prompt(db: &Db, name: &str) -> Result<Option<PromptRow>, sqlx::Error> {
    let sql = format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE name = $1 AND deleted_at IS NULL");
    on_pool!(db, pool => sqlx::query_as::<_, PromptRow>(&sql).bind(name).fetch_optional(pool).await)
}

/// Every incarnation of a name, newest first.
pub async fn incarnations(db: &Db, name: &str) -> Result<Vec<PromptRow>, sqlx::Error> {
    let sql = format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE name = $1 ORDER BY first_position DESC");
    on_pool!(db, pool => sqlx::query_as::<_, PromptRow>(&sql).bind(name).fetch_all(pool).await)
}

pub async fn prompt_by_id(db: &Db, prompt_id: &str) -> Result<Option<PromptRow>, sqlx::Error> {
    let sql = format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE prompt_id = $1");
    on_pool!(db, pool => sqlx::query_as::<_, PromptRow>(&sql).bind(prompt_id).fetch_optional(pool).await)
}

/// Versions of a prompt in the order they were created, after `after_position`.
pub async fn versions(
    db: &Db,
    prompt_id: &str,
    after_position: i64,
    limit: i64,
) -> Result<Vec<VersionRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {VERSION_COLUMNS} FROM rm_versions WHERE prompt_id = $1 AND position > $2 \
         ORDER BY position LIMIT $3"
    );
    on_pool!(db, pool => sqlx::query_as::<_, VersionRow>(&sql).bind(prompt_id).bind(after_position).bind(limit).fetch_all(pool).await)
}

pub async fn version(db: &Db, prompt_id: &str, version_string: &str) -> Result<Option<VersionRow>, sqlx::Error> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM rm_versions WHERE prompt_id = $1 AND version_string = $2");
    on_pool!(db, pool => sqlx::query_as::<_, VersionRow>(&sql).bind(prompt_id).bind(version_string).fetch_optional(pool).await)
}

/// Current deployments of the given prompts.
pub async fn deployments(db: &Db, prompt_ids: &[String]) -> Result<Vec<DeploymentRow>, sqlx::Error> {
    if prompt_ids.is_empty() {
        return Ok(vec![]);
    }
    on_pool!(db, pool => {
        let mut q = QueryBuilder::new(format!("SELECT {DEPLOYMENT_COLUMNS} FROM rm_deployments WHERE prompt_id IN ("));
        let mut list = q.separated(", ");
        for id in prompt_ids {
            list.push_bind(id);
        }
        q.push(") ORDER BY prompt_id, environment");
        q.build_query_as().fetch_all(pool).await
    })
}

/// Deployment history of a prompt, newest first.
pub async fn deployment_history(
    db: &Db,
    prompt_id: &str,
    environment: Option<&str>,
    limit: i64,
) -> Result<Vec<HistoryRow>, sqlx::Error> {
    let env_filter = if environment.is_some() { " AND environment = $3" } else { "" };
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM rm_deployment_history WHERE prompt_id = $1{env_filter} \
         ORDER BY position DESC LIMIT $2"
    );
    on_pool!(db, pool => {
        let mut q = sqlx::query_as::<_, HistoryRow>(&sql).bind(prompt_id).bind(limit);
        if let Some(env) = environment {
            q = q.bind(env);
        }
        q.fetch_all(pool).await
    })
}

/// The running experiments of a prompt, by environment.
pub async fn running_experiments(db: &Db, prompt_id: &str) -> Result<Vec<ExperimentRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLUMNS} FROM rm_experiments WHERE prompt_id = $1 AND running = 1 ORDER BY environment"
    );
    on_pool!(db, pool => sqlx::query_as::<_, ExperimentRow>(&sql).bind(prompt_id).fetch_all(pool).await)
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub prompt_name: Option<String>,
    pub prompt_id: Option<String>,
    pub environment: Option<String>,
    /// Any of these types (all types when empty).
    pub event_types: Vec<String>,
    pub actor: Option<String>,
    /// Inclusive bounds on recorded_at (fixed-width UTC text).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Cursor: positions strictly above (ascending) or below (descending) this.
    pub after_position: Option<i64>,
    pub before_position: Option<i64>,
    pub descending: bool,
    pub limit: i64,
}

/// Events matching `f`, each with the read-model index that filters by prompt,
/// environment and actor. Events not yet projected are included when no such filter
/// is given.
pub async fn events(db: &Db, f: &EventFilter) -> Result<Vec<StoredEvent>, sqlx::Error> {
    on_pool!(db, pool => {
        let mut q = QueryBuilder::new(format!(
            "SELECT {} FROM events e LEFT JOIN rm_event_index i ON i.position = e.position WHERE 1 = 1",
            prefixed(EVENT_COLUMNS, "e")
        ));
        if let Some(v) = &f.prompt_name {
            q.push(" AND i.prompt_name = ").push_bind(v.clone());
        }
        if let Some(v) = &f.prompt_id {
            q.push(" AND i.prompt_id = ").push_bind(v.clone());
        }
        if let Some(v) = &f.environment {
            q.push(" AND i.environment = ").push_bind(v.clone());
        }
        if !f.event_types.is_empty() {
            q.push(" AND e.event_type IN (");
            let mut types = q.separated(", ");
            for t in &f.event_types {
                types.push_bind(t.clone());
            }
            q.push(")");
        }
        if let Some(v) = &f.actor {
            q.push(" AND i.actor = ").push_bind(v.clone());
        }
        if let Some(v) = &f.from {
            q.push(" AND e.recorded_at >= ").push_bind(v.clone());
        }
        if let Some(v) = &f.to {
            q.push(" AND e.recorded_at <= ").push_bind(v.clone());
        }
        if let Some(v) = f.after_position {
            q.push(" AND e.position > ").push_bind(v);
        }
        if let Some(v) = f.before_position {
            q.push(" AND e.position < ").push_bind(v);
        }
        let order = if f.descending { "DESC" } else { "ASC" };
        q.push(format!(" ORDER BY e.position {order} LIMIT ")).push_bind(f.limit);
        q.build_query_as().fetch_all(pool).await
    })
}

/// How far the read models trail the log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lag {
    pub head: i64,
    /// Age of the first event after `projected`; 0 when there is none.
    pub oldest_unprojected_age_seconds: f64,
}

/// The log's head, and the age of the oldest event the read models (at `projected`)
/// do not include yet.
pub async fn lag(db: &Db, projected: i64) -> Result<Lag, sqlx::Error> {
    let head = db.head().await?;
    let next: Option<String> = on_pool!(db, pool => {
        sqlx::query_scalar("SELECT recorded_at FROM events WHERE position = $1")
            .bind(projected + 1)
            .fetch_optional(pool)
            .await
    })?;
    let age = next
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    Ok(Lag { head, oldest_unprojected_age_seconds: age })
}

pub async fn checkpoint(db: &Db) -> Result<i64, sqlx::Error> {
    checkpoints::load(db, READ_MODELS).await
}

pub async fn user(db: &Db, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM rm_users WHERE username = $1");
    on_pool!(db, pool => sqlx::query_as::<_, UserRow>(&sql).bind(username).fetch_optional(pool).await)
}

pub async fn users(db: &Db) -> Result<Vec<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM rm_users ORDER BY username");
    on_pool!(db, pool => sqlx::query_as::<_, UserRow>(&sql).fetch_all(pool).await)
}

pub async fn api_key(db: &Db, key_id: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE key_id = $1");
    on_pool!(db, pool => sqlx::query_as::<_, ApiKeyRow>(&sql).bind(key_id).fetch_optional(pool).await)
}

pub async fn api_keys(db: &Db) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys ORDER BY created_at, key_id");
    on_pool!(db, pool => sqlx::query_as::<_, ApiKeyRow>(&sql).fetch_all(pool).await)
}

/// Whether any user was ever created (looked up in the log, not the read models, so a
/// fresh server that has not projected yet does not bootstrap twice).
pub async fn any_user_ever(db: &Db) -> Result<bool, sqlx::Error> {
    let found: Option<String> = on_pool!(db, pool => {
        sqlx::query_scalar("SELECT event_type FROM events WHERE event_type = 'UserCreated' LIMIT 1")
            .fetch_optional(pool)
            .await
    })?;
    Ok(found.is_some())
}

#[derive(Debug, Clone, Default)]
pub struct ChangeRequestFilter {
    pub environment: Option<String>,
    /// `open`, `applied`, `rejected`, `withdrawn` or `expired`.
    pub status: Option<String>,
    /// Only requests that change this prompt.
    pub prompt_name: Option<String>,
    /// As they stood at this moment (fixed-width UTC text): opened by then, and open
    /// unless they were closed by then.
    pub as_of: Option<String>,
    pub limit: i64,
}

/// Change requests, newest first.
pub async fn change_requests(db: &Db, f: &ChangeRequestFilter) -> Result<Vec<ChangeRequestRow>, sqlx::Error> {
    let mut rows: Vec<ChangeRequestRow> = on_pool!(db, pool => {
        let mut q = QueryBuilder::new(format!("SELECT {} FROM rm_change_requests r WHERE 1 = 1", prefixed(change_requests::COLUMNS, "r")));
        if let Some(env) = &f.environment {
            q.push(" AND r.environment = ").push_bind(env.clone());
        }
        match (&f.status, &f.as_of) {
            (Some(status), None) => {
                q.push(" AND r.status = ").push_bind(status.clone());
            }
            (Some(status), Some(at)) => {
                q.push(" AND (CASE WHEN r.closed_at <= ").push_bind(at.clone());
                q.push(" THEN r.status ELSE 'open' END) = ").push_bind(status.clone());
            }
            (None, _) => {}
        }
        if let Some(at) = &f.as_of {
            q.push(" AND r.opened_at <= ").push_bind(at.clone());
        }
        if let Some(name) = &f.prompt_name {
            q.push(" AND r.request_id IN (SELECT request_id FROM rm_change_request_prompts WHERE prompt_name = ")
                .push_bind(name.clone())
                .push(")");
        }
        q.push(" ORDER BY r.opened_position DESC LIMIT ").push_bind(f.limit);
        q.build_query_as().fetch_all(pool).await
    })?;
    if let Some(at) = &f.as_of {
        for r in rows.iter_mut().filter(|r| r.closed_at.as_ref().is_some_and(|c| c > at)) {
            r.status = "open".into();
            (r.closed_at, r.closed_by, r.closed_position) = (None, None, None);
        }
    }
    Ok(rows)
}

pub async fn change_request(db: &Db, id: &str) -> Result<Option<ChangeRequestRow>, sqlx::Error> {
    let sql = format!("SELECT {} FROM rm_change_requests WHERE request_id = $1", change_requests::COLUMNS);
    on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}

/// The timelines of the given requests, in log order.
pub async fn change_request_activity(db: &Db, ids: &[String]) -> Result<Vec<ActivityRow>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    on_pool!(db, pool => {
        let mut q = QueryBuilder::new(format!(
            "SELECT {} FROM rm_change_request_activity WHERE request_id IN (",
            change_requests::ACTIVITY_COLUMNS
        ));
        let mut list = q.separated(", ");
        for id in ids {
            list.push_bind(id.clone());
        }
        q.push(") ORDER BY position");
        q.build_query_as().fetch_all(pool).await
    })
}

/// Open requests whose schedule has come or that have expired by `now` (fixed-width
/// UTC text): the scheduler's work.
pub async fn due_change_requests(db: &Db, now: &str) -> Result<Vec<ChangeRequestRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {} FROM rm_change_requests WHERE status = 'open' AND (expires_at <= $1 OR scheduled_at <= $2) \
         ORDER BY opened_position LIMIT 100",
        change_requests::COLUMNS
    );
    on_pool!(db, pool => sqlx::query_as(&sql).bind(now).bind(now).fetch_all(pool).await)
}

/// Webhooks that are not deleted, oldest first.
pub async fn webhooks(db: &Db) -> Result<Vec<WebhookRow>, sqlx::Error> {
    let sql = format!("SELECT {} FROM rm_webhooks WHERE deleted = 0 ORDER BY created_position", webhooks::COLUMNS);
    on_pool!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await)
}

pub async fn webhook(db: &Db, id: &str) -> Result<Option<WebhookRow>, sqlx::Error> {
    let sql = format!("SELECT {} FROM rm_webhooks WHERE webhook_id = $1 AND deleted = 0", webhooks::COLUMNS);
    on_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await)
}

/// A prompt's test cases, by name.
pub async fn test_cases(db: &Db, prompt_id: &str) -> Result<Vec<TestCaseRow>, sqlx::Error> {
    let sql = format!("SELECT {} FROM rm_test_cases WHERE prompt_id = $1 ORDER BY name", test_cases::COLUMNS);
    on_pool!(db, pool => sqlx::query_as(&sql).bind(prompt_id).fetch_all(pool).await)
}

/// A prompt's evaluations, newest first; of one version when `version` is given.
pub async fn evaluations(
    db: &Db,
    prompt_id: &str,
    version: Option<&str>,
    limit: i64,
) -> Result<Vec<EvaluationRow>, sqlx::Error> {
    let columns = evaluations::COLUMNS;
    match version {
        Some(version) => {
            let sql = format!(
                "SELECT {columns} FROM rm_evaluations WHERE prompt_id = $1 AND version_string = $2 \
                 ORDER BY started_position DESC LIMIT $3"
            );
            on_pool!(db, pool => sqlx::query_as(&sql).bind(prompt_id).bind(version).bind(limit).fetch_all(pool).await)
        }
        None => {
            let sql = format!(
                "SELECT {columns} FROM rm_evaluations WHERE prompt_id = $1 ORDER BY started_position DESC LIMIT $2"
            );
            on_pool!(db, pool => sqlx::query_as(&sql).bind(prompt_id).bind(limit).fetch_all(pool).await)
        }
    }
}

pub async fn evaluation(db: &Db, evaluation_id: &str) -> Result<Option<EvaluationRow>, sqlx::Error> {
    let sql = format!("SELECT {} FROM rm_evaluations WHERE evaluation_id = $1", evaluations::COLUMNS);
    on_pool!(db, pool => sqlx::query_as(&sql).bind(evaluation_id).fetch_optional(pool).await)
}
