//! What the read side asks of the read models. Every function is one or two indexed
//! queries; nothing here writes.

use crate::db::Db;
use crate::log::{StoredEvent, EVENT_COLUMNS};
use crate::projection::*;
use sqlx::any::AnyArguments;
use sqlx::FromRow;
use sqlx::{Any, Arguments, Row};

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

/// Builds a statement whose WHERE clauses depend on which filters are set; `?` in a
/// clause becomes the next `$n` placeholder.
struct Select {
    sql: String,
    args: AnyArguments<'static>,
    n: usize,
}

impl Select {
    fn new(sql: String) -> Self {
        Self { sql, args: AnyArguments::default(), n: 0 }
    }
    fn push<T>(&mut self, clause: &str, value: T) -> Result<(), sqlx::Error>
    where
        T: 'static + Send + sqlx::Encode<'static, Any> + sqlx::Type<Any>,
    {
        self.n += 1;
        self.sql.push_str(&clause.replacen('?', &format!("${}", self.n), 1));
        self.args.add(value).map_err(sqlx::Error::Encode)
    }
    fn when<T>(&mut self, clause: &str, value: Option<T>) -> Result<(), sqlx::Error>
    where
        T: 'static + Send + sqlx::Encode<'static, Any> + sqlx::Type<Any>,
    {
        match value {
            Some(v) => self.push(clause, v),
            None => Ok(()),
        }
    }
    async fn fetch_all(self, db: &Db) -> Result<Vec<sqlx::any::AnyRow>, sqlx::Error> {
        sqlx::query_with(&self.sql, self.args).fetch_all(&db.pool).await
    }
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
    let mut q = Select::new(format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE 1 = 1"));
    if !f.include_deleted {
        q.sql.push_str(" AND deleted_at IS NULL");
    }
    q.when(" AND name LIKE ? ESCAPE '\\'", f.prefix.as_deref().map(like_prefix))?;
    // Tags are stored as a JSON array of strings whose alphabet has no quotes or
    // wildcards, so the quoted tag matches exactly one element.
    q.when(" AND tags LIKE ?", f.tag.as_deref().map(|t| format!("%\"{t}\"%")))?;
    if let Some((name, first)) = &f.after {
        q.push(" AND (name > ?", name.clone())?;
        q.push(" OR (name = ?", name.clone())?;
        q.push(" AND first_position > ?))", *first)?;
    }
    q.push(" ORDER BY name, first_position LIMIT ?", f.limit)?;
    q.fetch_all(db).await?.iter().map(PromptRow::from_row).collect()
}

/// The live prompt with this name.
pub async fn live_prompt(db: &Db, name: &str) -> Result<Option<PromptRow>, sqlx::Error> {
    let sql = format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE name = $1 AND deleted_at IS NULL");
    let row = sqlx::query(&sql).bind(name).fetch_optional(&db.pool).await?;
    row.as_ref().map(PromptRow::from_row).transpose()
}

/// Every incarnation of a name, newest first.
pub async fn incarnations(db: &Db, name: &str) -> Result<Vec<PromptRow>, sqlx::Error> {
    let sql = format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE name = $1 ORDER BY first_position DESC");
    let rows = sqlx::query(&sql).bind(name).fetch_all(&db.pool).await?;
    rows.iter().map(PromptRow::from_row).collect()
}

pub async fn prompt_by_id(db: &Db, prompt_id: &str) -> Result<Option<PromptRow>, sqlx::Error> {
    let sql = format!("SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE prompt_id = $1");
    let row = sqlx::query(&sql).bind(prompt_id).fetch_optional(&db.pool).await?;
    row.as_ref().map(PromptRow::from_row).transpose()
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
    let rows = sqlx::query(&sql).bind(prompt_id).bind(after_position).bind(limit).fetch_all(&db.pool).await?;
    rows.iter().map(VersionRow::from_row).collect()
}

pub async fn version(db: &Db, prompt_id: &str, version_string: &str) -> Result<Option<VersionRow>, sqlx::Error> {
    let sql = format!("SELECT {VERSION_COLUMNS} FROM rm_versions WHERE prompt_id = $1 AND version_string = $2");
    let row = sqlx::query(&sql).bind(prompt_id).bind(version_string).fetch_optional(&db.pool).await?;
    row.as_ref().map(VersionRow::from_row).transpose()
}

/// Current deployments of the given prompts.
pub async fn deployments(db: &Db, prompt_ids: &[String]) -> Result<Vec<DeploymentRow>, sqlx::Error> {
    if prompt_ids.is_empty() {
        return Ok(vec![]);
    }
    let list: Vec<String> = (1..=prompt_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT {DEPLOYMENT_COLUMNS} FROM rm_deployments WHERE prompt_id IN ({}) ORDER BY prompt_id, environment",
        list.join(", ")
    );
    let mut q = sqlx::query(&sql);
    for id in prompt_ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&db.pool).await?;
    rows.iter().map(DeploymentRow::from_row).collect()
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
    let mut q = sqlx::query(&sql).bind(prompt_id).bind(limit);
    if let Some(env) = environment {
        q = q.bind(env);
    }
    let rows = q.fetch_all(&db.pool).await?;
    rows.iter().map(HistoryRow::from_row).collect()
}

/// What an application fetches: the version live in an environment.
#[derive(Debug, Clone)]
pub struct DeployedItem {
    pub prompt_id: String,
    pub prompt_name: String,
    pub environment: String,
    pub version_string: String,
    pub text: String,
    /// JSON array of variable names.
    pub variables: String,
    pub deployed_at: String,
    pub deployed_by: String,
    /// Position of the last change to what is served: the deploy or rollback that made
    /// this version live, or a later change to an experiment.
    pub position: i64,
    /// The experiment splitting this environment's traffic, if one is running.
    pub experiment: Option<ExperimentItem>,
    /// `text` or `chat`.
    pub kind: String,
    /// JSON array of `{role, content}` for chat prompts.
    pub messages: Option<String>,
    /// JSON object of model parameters.
    pub config: Option<String>,
    /// JSON array of included prompt names.
    pub includes: String,
    /// After [`crate::includes::resolve_item`]: every prompt pulled in, with the
    /// version used.
    pub resolved_includes: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone)]
pub struct ExperimentItem {
    pub experiment_id: String,
    pub variants: Vec<VariantItem>,
    /// Which variant (index into `variants`) serves each of the 100 buckets.
    pub buckets: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct VariantItem {
    pub version_string: String,
    pub weight: u8,
    pub text: String,
    /// JSON array of variable names.
    pub variables: String,
    pub kind: String,
    pub messages: Option<String>,
    pub config: Option<String>,
    pub includes: String,
}

/// Live deployments with their prompt and version, in one query.
const DEPLOYED_SELECT: &str = "SELECT p.prompt_id, p.name, d.environment, v.version_string, v.text, v.variables, \
     d.deployed_at, d.deployed_by, d.position, x.experiment_id, x.running, x.variants, x.buckets, x.position, \
     v.kind, v.messages, v.config, v.includes \
     FROM rm_deployments d \
     JOIN rm_prompts p ON p.prompt_id = d.prompt_id AND p.deleted_at IS NULL \
     JOIN rm_versions v ON v.prompt_id = d.prompt_id AND v.version_string = d.version_string \
     LEFT JOIN rm_experiments x ON x.prompt_id = d.prompt_id AND x.environment = d.environment";

/// What the experiment columns of [`DEPLOYED_SELECT`] say: the running experiment's id,
/// variants (JSON) and buckets (JSON), and the position of its last change.
type ExperimentColumns = (Option<(String, String, String)>, i64);

fn experiment_columns(r: &sqlx::any::AnyRow) -> Result<ExperimentColumns, sqlx::Error> {
    let position: Option<i64> = r.try_get(13)?;
    let running: Option<i64> = r.try_get(10)?;
    let running = match running {
        Some(1) => Some((r.try_get(9)?, r.try_get(11)?, r.try_get(12)?)),
        _ => None,
    };
    Ok((running, position.unwrap_or(0)))
}

/// Fills in the running experiment's variants with their texts.
async fn with_experiment(
    db: &Db,
    mut item: DeployedItem,
    columns: ExperimentColumns,
) -> Result<DeployedItem, sqlx::Error> {
    let (running, position) = columns;
    item.position = item.position.max(position);
    let Some((experiment_id, variants, buckets)) = running else { return Ok(item) };
    #[derive(serde::Deserialize)]
    struct Weighted {
        version_string: String,
        weight: u8,
    }
    let decode = |e: serde_json::Error| sqlx::Error::Decode(Box::new(e));
    let weighted: Vec<Weighted> = serde_json::from_str(&variants).map_err(decode)?;
    let buckets: Vec<u8> = serde_json::from_str(&buckets).map_err(decode)?;
    let mut out = Vec::with_capacity(weighted.len());
    for w in weighted {
        let Some(v) = version(db, &item.prompt_id, &w.version_string).await? else { continue };
        out.push(VariantItem {
            version_string: v.version_string,
            weight: w.weight,
            text: v.text,
            variables: v.variables,
            kind: v.kind,
            messages: v.messages,
            config: v.config,
            includes: v.includes,
        });
    }
    item.experiment = Some(ExperimentItem { experiment_id, variants: out, buckets });
    Ok(item)
}

fn deployed_item(r: &sqlx::any::AnyRow) -> Result<DeployedItem, sqlx::Error> {
    Ok(DeployedItem {
        prompt_id: r.try_get(0)?,
        prompt_name: r.try_get(1)?,
        environment: r.try_get(2)?,
        version_string: r.try_get(3)?,
        text: r.try_get(4)?,
        variables: r.try_get(5)?,
        deployed_at: r.try_get(6)?,
        deployed_by: r.try_get(7)?,
        position: r.try_get(8)?,
        experiment: None,
        kind: r.try_get(14)?,
        messages: r.try_get(15)?,
        config: r.try_get(16)?,
        includes: r.try_get(17)?,
        resolved_includes: None,
    })
}

/// The version live as `name` in `environment`.
pub async fn deployed(db: &Db, name: &str, environment: &str) -> Result<Option<DeployedItem>, sqlx::Error> {
    let sql = format!("{DEPLOYED_SELECT} WHERE p.name = $1 AND d.environment = $2");
    let Some(row) = sqlx::query(&sql).bind(name).bind(environment).fetch_optional(&db.pool).await? else {
        return Ok(None);
    };
    with_experiment(db, deployed_item(&row)?, experiment_columns(&row)?).await.map(Some)
}

/// The running experiments of a prompt, by environment.
pub async fn running_experiments(db: &Db, prompt_id: &str) -> Result<Vec<ExperimentRow>, sqlx::Error> {
    let sql = format!(
        "SELECT {EXPERIMENT_COLUMNS} FROM rm_experiments WHERE prompt_id = $1 AND running = 1 ORDER BY environment"
    );
    sqlx::query(&sql).bind(prompt_id).fetch_all(&db.pool).await?.iter().map(ExperimentRow::from_row).collect()
}

/// Every live prompt deployed in `environment`, by name.
pub async fn deployed_in(db: &Db, environment: &str) -> Result<Vec<DeployedItem>, sqlx::Error> {
    let sql = format!("{DEPLOYED_SELECT} WHERE d.environment = $1 ORDER BY p.name");
    let mut items = Vec::new();
    for row in sqlx::query(&sql).bind(environment).fetch_all(&db.pool).await? {
        items.push(with_experiment(db, deployed_item(&row)?, experiment_columns(&row)?).await?);
    }
    Ok(items)
}

/// What was live in `environment` at time `at` (fixed-width UTC text, as stored).
pub async fn deployed_as_of(
    db: &Db,
    name: &str,
    environment: &str,
    at: &str,
) -> Result<Option<DeployedItem>, sqlx::Error> {
    let sql = format!(
        "SELECT {PROMPT_COLUMNS} FROM rm_prompts WHERE name = $1 AND created_at <= $2 \
         AND (deleted_at IS NULL OR deleted_at > $2) ORDER BY first_position DESC LIMIT 1"
    );
    let row = sqlx::query(&sql).bind(name).bind(at).fetch_optional(&db.pool).await?;
    let Some(prompt) = row.as_ref().map(PromptRow::from_row).transpose()? else { return Ok(None) };
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM rm_deployment_history WHERE prompt_id = $1 AND environment = $2 \
         AND at <= $3 ORDER BY position DESC LIMIT 1"
    );
    let row = sqlx::query(&sql).bind(&prompt.prompt_id).bind(environment).bind(at).fetch_optional(&db.pool).await?;
    let Some(h) = row.as_ref().map(HistoryRow::from_row).transpose()? else { return Ok(None) };
    let experiment = experiment_as_of(db, &prompt.prompt_id, environment, at).await?;
    let item = version(db, &prompt.prompt_id, &h.version_string).await?.map(|v| DeployedItem {
        prompt_id: prompt.prompt_id,
        prompt_name: prompt.name,
        environment: h.environment,
        version_string: v.version_string,
        text: v.text,
        variables: v.variables,
        deployed_at: h.at,
        deployed_by: h.actor,
        position: h.position,
        experiment: None,
        kind: v.kind,
        messages: v.messages,
        config: v.config,
        includes: v.includes,
        resolved_includes: None,
    });
    match (item, experiment) {
        (Some(item), Some((experiment_id, variants, buckets, position))) => {
            let columns = (Some((experiment_id, variants, buckets)), position);
            with_experiment(db, item, columns).await.map(Some)
        }
        (item, _) => Ok(item),
    }
}

/// The experiment running in `environment` at time `at`, if one was: its id, variants
/// (JSON), buckets (JSON) and the position of its last change then, read from the event
/// its last history row records.
async fn experiment_as_of(
    db: &Db,
    prompt_id: &str,
    environment: &str,
    at: &str,
) -> Result<Option<(String, String, String, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT position, action FROM rm_deployment_history WHERE prompt_id = $1 AND environment = $2 \
         AND at <= $3 AND action LIKE 'experiment_%' ORDER BY position DESC LIMIT 1",
    )
    .bind(prompt_id)
    .bind(environment)
    .bind(at)
    .fetch_optional(&db.pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (position, action): (i64, String) = (row.try_get(0)?, row.try_get(1)?);
    if action == "experiment_stopped" {
        return Ok(None);
    }
    let Some(stored) = crate::log::read_after(db, position - 1, 1).await?.pop() else { return Ok(None) };
    let decode = |e: promptos_core::events::DecodeError| sqlx::Error::Decode(Box::new(e));
    let (id, variants, buckets) = match stored.decode().map_err(decode)? {
        promptos_core::Event::ExperimentStarted(e) => (e.experiment_id, e.variants, e.buckets),
        promptos_core::Event::ExperimentWeightsChanged(e) => (e.experiment_id, e.variants, e.buckets),
        _ => return Ok(None),
    };
    let variants = serde_json::to_string(&variants).expect("variants serialize");
    let buckets = serde_json::to_string(&buckets).expect("buckets serialize");
    Ok(Some((id.to_string(), variants, buckets, position)))
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub prompt_name: Option<String>,
    pub prompt_id: Option<String>,
    pub environment: Option<String>,
    pub event_type: Option<String>,
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
    let mut q = Select::new(format!(
        "SELECT {} FROM events e LEFT JOIN rm_event_index i ON i.position = e.position WHERE 1 = 1",
        prefixed(EVENT_COLUMNS, "e")
    ));
    q.when(" AND i.prompt_name = ?", f.prompt_name.clone())?;
    q.when(" AND i.prompt_id = ?", f.prompt_id.clone())?;
    q.when(" AND i.environment = ?", f.environment.clone())?;
    q.when(" AND e.event_type = ?", f.event_type.clone())?;
    q.when(" AND i.actor = ?", f.actor.clone())?;
    q.when(" AND e.recorded_at >= ?", f.from.clone())?;
    q.when(" AND e.recorded_at <= ?", f.to.clone())?;
    q.when(" AND e.position > ?", f.after_position)?;
    q.when(" AND e.position < ?", f.before_position)?;
    let order = if f.descending { "DESC" } else { "ASC" };
    q.push(&format!(" ORDER BY e.position {order} LIMIT ?"), f.limit)?;
    q.fetch_all(db).await?.iter().map(StoredEvent::from_row).collect()
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
    let head = crate::log::head(db).await?;
    let next = sqlx::query("SELECT recorded_at FROM events WHERE position = $1")
        .bind(projected + 1)
        .fetch_optional(&db.pool)
        .await?;
    let age = next
        .and_then(|row| row.try_get::<String, _>(0).ok())
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok())
        .map(|at| (chrono::Utc::now() - at.with_timezone(&chrono::Utc)).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0);
    Ok(Lag { head, oldest_unprojected_age_seconds: age })
}

pub async fn checkpoint(db: &Db) -> Result<i64, sqlx::Error> {
    crate::projector::load_checkpoint(db, crate::projector::CHECKPOINT).await
}

pub async fn user(db: &Db, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM rm_users WHERE username = $1");
    let row = sqlx::query(&sql).bind(username).fetch_optional(&db.pool).await?;
    row.as_ref().map(UserRow::from_row).transpose()
}

pub async fn users(db: &Db) -> Result<Vec<UserRow>, sqlx::Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM rm_users ORDER BY username");
    sqlx::query(&sql).fetch_all(&db.pool).await?.iter().map(UserRow::from_row).collect()
}

pub async fn api_key(db: &Db, key_id: &str) -> Result<Option<ApiKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys WHERE key_id = $1");
    let row = sqlx::query(&sql).bind(key_id).fetch_optional(&db.pool).await?;
    row.as_ref().map(ApiKeyRow::from_row).transpose()
}

pub async fn api_keys(db: &Db) -> Result<Vec<ApiKeyRow>, sqlx::Error> {
    let sql = format!("SELECT {API_KEY_COLUMNS} FROM rm_api_keys ORDER BY created_at, key_id");
    sqlx::query(&sql).fetch_all(&db.pool).await?.iter().map(ApiKeyRow::from_row).collect()
}

/// Whether any user was ever created (looked up in the log, not the read models, so a
/// fresh server that has not projected yet does not bootstrap twice).
pub async fn any_user_ever(db: &Db) -> Result<bool, sqlx::Error> {
    let row =
        sqlx::query("SELECT 1 FROM events WHERE event_type = 'UserCreated' LIMIT 1").fetch_optional(&db.pool).await?;
    Ok(row.is_some())
}
