//! What applications fetch: the version live as a prompt in an environment, with the
//! experiment splitting its traffic (now, or at a moment in the past).

use crate::queries::version;
use crate::views::*;
use promptos_store::{on_pool, Db, EventLog};

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
const DEPLOYED_SELECT: &str = "SELECT p.prompt_id, p.name AS prompt_name, d.environment, v.version_string, v.text, \
     v.variables, d.deployed_at, d.deployed_by, d.position, x.experiment_id, x.running, x.variants, x.buckets, \
     x.position AS experiment_position, v.kind, v.messages, v.config, v.includes \
     FROM rm_deployments d \
     JOIN rm_prompts p ON p.prompt_id = d.prompt_id AND p.deleted_at IS NULL \
     JOIN rm_versions v ON v.prompt_id = d.prompt_id AND v.version_string = d.version_string \
     LEFT JOIN rm_experiments x ON x.prompt_id = d.prompt_id AND x.environment = d.environment";

/// A row of [`DEPLOYED_SELECT`].
#[derive(sqlx::FromRow)]
struct DeployedRow {
    prompt_id: String,
    prompt_name: String,
    environment: String,
    version_string: String,
    text: String,
    variables: String,
    deployed_at: String,
    deployed_by: String,
    position: i64,
    experiment_id: Option<String>,
    running: Option<i64>,
    variants: Option<String>,
    buckets: Option<String>,
    experiment_position: Option<i64>,
    kind: String,
    messages: Option<String>,
    config: Option<String>,
    includes: String,
}

/// What the experiment columns of [`DEPLOYED_SELECT`] say: the running experiment's id,
/// variants (JSON) and buckets (JSON), and the position of its last change.
type ExperimentColumns = (Option<(String, String, String)>, i64);

impl DeployedRow {
    fn split(self) -> (DeployedItem, ExperimentColumns) {
        let running = match (self.running, self.experiment_id, self.variants, self.buckets) {
            (Some(1), Some(id), Some(variants), Some(buckets)) => Some((id, variants, buckets)),
            _ => None,
        };
        let item = DeployedItem {
            prompt_id: self.prompt_id,
            prompt_name: self.prompt_name,
            environment: self.environment,
            version_string: self.version_string,
            text: self.text,
            variables: self.variables,
            deployed_at: self.deployed_at,
            deployed_by: self.deployed_by,
            position: self.position,
            experiment: None,
            kind: self.kind,
            messages: self.messages,
            config: self.config,
            includes: self.includes,
            resolved_includes: None,
        };
        (item, (running, self.experiment_position.unwrap_or(0)))
    }
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

/// The version live as `name` in `environment`.
pub async fn deployed(db: &Db, name: &str, environment: &str) -> Result<Option<DeployedItem>, sqlx::Error> {
    let sql = format!("{DEPLOYED_SELECT} WHERE p.name = $1 AND d.environment = $2");
    let row: Option<DeployedRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(name).bind(environment).fetch_optional(pool).await)?;
    let Some((item, experiment)) = row.map(DeployedRow::split) else { return Ok(None) };
    with_experiment(db, item, experiment).await.map(Some)
}

/// Every live prompt deployed in `environment`, by name.
pub async fn deployed_in(db: &Db, environment: &str) -> Result<Vec<DeployedItem>, sqlx::Error> {
    let sql = format!("{DEPLOYED_SELECT} WHERE d.environment = $1 ORDER BY p.name");
    let mut items = Vec::new();
    let rows: Vec<DeployedRow> = on_pool!(db, pool => sqlx::query_as(&sql).bind(environment).fetch_all(pool).await)?;
    for (item, experiment) in rows.into_iter().map(DeployedRow::split) {
        items.push(with_experiment(db, item, experiment).await?);
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
    let prompt: Option<PromptRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(name).bind(at).fetch_optional(pool).await)?;
    let Some(prompt) = prompt else { return Ok(None) };
    prompt_deployed_as_of(db, prompt, environment, at).await
}

/// Every prompt live in `environment` at time `at`, by name: for each, exactly what
/// [`deployed_as_of`] answers for it.
pub async fn deployed_in_as_of(db: &Db, environment: &str, at: &str) -> Result<Vec<DeployedItem>, sqlx::Error> {
    // The incarnation alive at `at` (at most one per name), among those ever deployed
    // in the environment by then.
    let sql = format!(
        "SELECT {PROMPT_COLUMNS} FROM rm_prompts p WHERE created_at <= $1 \
         AND (deleted_at IS NULL OR deleted_at > $1) \
         AND EXISTS (SELECT 1 FROM rm_deployment_history h WHERE h.prompt_id = p.prompt_id \
                     AND h.environment = $2 AND h.at <= $1) \
         ORDER BY name, first_position DESC"
    );
    let prompts: Vec<PromptRow> =
        on_pool!(db, pool => sqlx::query_as(&sql).bind(at).bind(environment).fetch_all(pool).await)?;
    let mut items = Vec::with_capacity(prompts.len());
    let mut last_name = None;
    for prompt in prompts {
        if last_name.as_ref() == Some(&prompt.name) {
            continue;
        }
        last_name = Some(prompt.name.clone());
        if let Some(item) = prompt_deployed_as_of(db, prompt, environment, at).await? {
            items.push(item);
        }
    }
    Ok(items)
}

async fn prompt_deployed_as_of(
    db: &Db,
    prompt: PromptRow,
    environment: &str,
    at: &str,
) -> Result<Option<DeployedItem>, sqlx::Error> {
    let sql = format!(
        "SELECT {HISTORY_COLUMNS} FROM rm_deployment_history WHERE prompt_id = $1 AND environment = $2 \
         AND at <= $3 ORDER BY position DESC LIMIT 1"
    );
    let history: Option<HistoryRow> = on_pool!(db, pool => {
        sqlx::query_as(&sql).bind(&prompt.prompt_id).bind(environment).bind(at).fetch_optional(pool).await
    })?;
    let Some(h) = history else { return Ok(None) };
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
    let row: Option<(i64, String)> = on_pool!(db, pool => {
        sqlx::query_as(
            "SELECT position, action FROM rm_deployment_history WHERE prompt_id = $1 AND environment = $2 \
             AND at <= $3 AND action LIKE 'experiment_%' ORDER BY position DESC LIMIT 1",
        )
        .bind(prompt_id)
        .bind(environment)
        .bind(at)
        .fetch_optional(pool)
        .await
    })?;
    let Some((position, action)) = row else { return Ok(None) };
    if action == "experiment_stopped" {
        return Ok(None);
    }
    let Some(stored) = db.read_after(position - 1, 1).await?.pop() else { return Ok(None) };
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
