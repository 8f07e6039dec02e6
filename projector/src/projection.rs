//! How events become read-model rows.
//!
//! [`row_ops`] is pure: it turns one stored event into row operations. The same
//! operations are applied to the database by the projector ([`apply_sql`]) and to an
//! in-memory [`ReadModel`] by `rebuild` and `verify`, so "the read models equal a fresh
//! replay" compares one fold with itself on two stores.

use promptos_core::events::DecodeError;
use promptos_core::names::{EnvironmentName, PromptName, VersionString};
use promptos_core::Event;
pub(crate) use promptos_store::bulk::Cell;
use promptos_store::bulk::{insert_rows, upsert_rows};
use promptos_store::{on_tx, StoredEvent, Tx};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PromptRow {
    pub prompt_id: String,
    pub name: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub deleted_at: Option<String>,
    pub deleted_by: Option<String>,
    pub latest_version: Option<String>,
    pub version_count: i64,
    pub first_position: i64,
    pub last_position: i64,
    /// JSON array of tags, sorted.
    pub tags: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct VersionRow {
    pub prompt_id: String,
    pub version_string: String,
    pub text: String,
    /// JSON array of variable names.
    pub variables: String,
    pub commit_message: Option<String>,
    pub author: String,
    pub created_at: String,
    pub position: i64,
    /// JSON of the event's `origin` (an accepted LLM suggestion), if any.
    pub origin: Option<String>,
    /// `text` or `chat`.
    pub kind: String,
    /// JSON array of `{role, content}` for chat prompts.
    pub messages: Option<String>,
    /// JSON object of model parameters, if any.
    pub config: Option<String>,
    /// JSON array of the prompt names the templates include.
    pub includes: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeploymentRow {
    pub prompt_id: String,
    pub environment: String,
    pub prompt_name: String,
    pub version_string: String,
    pub deployed_by: String,
    pub deployed_at: String,
    pub position: i64,
}

/// The latest experiment of a prompt in an environment.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExperimentRow {
    pub prompt_id: String,
    pub environment: String,
    pub experiment_id: String,
    /// 1 while it splits traffic, 0 once stopped.
    pub running: i64,
    /// JSON array of `{version_string, weight}`, in the experiment's order.
    pub variants: String,
    /// JSON array of 100 variant indexes.
    pub buckets: String,
    /// The version live before it started (what "revert" keeps).
    pub previous_version_string: Option<String>,
    pub started_at: String,
    pub started_by: String,
    /// The last event that changed it.
    pub position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub position: i64,
    pub prompt_id: String,
    pub prompt_name: String,
    pub environment: String,
    /// `deploy`, `rollback`, `experiment_started`, `experiment_reweighted` or
    /// `experiment_stopped`. `version_string` is the version clients unaware of
    /// experiments are served after it.
    pub action: String,
    pub version_string: String,
    pub previous_version_string: Option<String>,
    pub actor: String,
    pub at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct IndexRow {
    pub position: i64,
    pub prompt_name: Option<String>,
    pub prompt_id: Option<String>,
    pub environment: Option<String>,
    pub actor: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub username: String,
    pub role: String,
    pub disabled: bool,
    pub password_hash: String,
    pub password_position: i64,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    pub updated_by: String,
    pub last_position: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub key_id: String,
    pub name: String,
    /// JSON array of environment names.
    pub environments: String,
    pub key_hash: String,
    pub created_at: String,
    pub created_by: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
    pub last_position: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    InsertUser(UserRow),
    /// Role, disabled flag or password of a user changed.
    UpdateUser {
        username: String,
        role: Option<String>,
        disable: bool,
        password_hash: Option<String>,
        at: String,
        by: String,
        position: i64,
    },
    InsertApiKey(ApiKeyRow),
    RevokeApiKey {
        key_id: String,
        at: String,
        by: String,
        position: i64,
    },
    InsertPrompt(PromptRow),
    UpdateDescription {
        prompt_id: String,
        description: String,
        at: String,
        by: String,
        position: i64,
    },
    SetTags {
        prompt_id: String,
        tags: String,
        at: String,
        by: String,
        position: i64,
    },
    /// Marks the prompt deleted and removes its live deployments (history stays).
    DeletePrompt {
        prompt_id: String,
        at: String,
        by: String,
        position: i64,
    },
    /// Inserts the version and makes it the prompt's latest.
    InsertVersion(VersionRow),
    UpsertDeployment(DeploymentRow),
    UpsertExperiment(ExperimentRow),
    UpdateExperimentWeights {
        prompt_id: String,
        environment: String,
        variants: String,
        buckets: String,
        position: i64,
    },
    /// Marks the running experiment of a prompt in an environment stopped.
    StopExperiment {
        prompt_id: String,
        environment: String,
        position: i64,
    },
    InsertHistory(HistoryRow),
    InsertIndex(IndexRow),
    /// Records that the prompt changed at `position`.
    Touch {
        prompt_id: String,
        position: i64,
    },
}

/// The row operations that follow from one event.
pub fn row_ops(stored: &StoredEvent) -> Result<Vec<RowOp>, DecodeError> {
    let event = stored.decode()?;
    let actor = stored.metadata().actor;
    let at = stored.recorded_at.clone();
    let position = stored.position;
    let prompt = event.prompt().map(|(id, name)| (id.to_string(), name.to_string()));
    let prompt_id = prompt.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let mut ops = vec![RowOp::InsertIndex(IndexRow {
        position,
        prompt_name: prompt.as_ref().map(|p| p.1.clone()),
        prompt_id: prompt.as_ref().map(|p| p.0.clone()),
        environment: event.environment().map(|e| e.to_string()),
        actor: actor.clone(),
    })];
    let update_user =
        |username: &str, role: Option<String>, disable: bool, password_hash: Option<String>| RowOp::UpdateUser {
            username: username.to_owned(),
            role,
            disable,
            password_hash,
            at: at.clone(),
            by: actor.clone(),
            position,
        };
    // A row of deployment history: what an environment serves after this event.
    let history = |name: &PromptName,
                   environment: &EnvironmentName,
                   action: &str,
                   version: &VersionString,
                   previous: Option<&VersionString>| {
        RowOp::InsertHistory(HistoryRow {
            position,
            prompt_id: prompt_id.clone(),
            prompt_name: name.to_string(),
            environment: environment.to_string(),
            action: action.to_owned(),
            version_string: version.to_string(),
            previous_version_string: previous.map(|v| v.to_string()),
            actor: actor.clone(),
            at: at.clone(),
        })
    };
    match &event {
        Event::PromptCreated(e) => ops.push(RowOp::InsertPrompt(PromptRow {
            prompt_id,
            name: e.name.to_string(),
            description: e.description.to_string(),
            created_at: at.clone(),
            created_by: actor.clone(),
            updated_at: at,
            updated_by: actor,
            deleted_at: None,
            deleted_by: None,
            latest_version: None,
            version_count: 0,
            first_position: position,
            last_position: position,
            tags: "[]".into(),
        })),
        Event::PromptTagged(e) => ops.push(RowOp::SetTags {
            prompt_id,
            tags: serde_json::to_string(&e.tags).expect("tags serialize"),
            at,
            by: actor,
            position,
        }),
        Event::PromptUpdated(e) => ops.push(RowOp::UpdateDescription {
            prompt_id,
            description: e.description.to_string(),
            at,
            by: actor,
            position,
        }),
        Event::PromptDeleted(_) => ops.push(RowOp::DeletePrompt { prompt_id, at, by: actor, position }),
        Event::VersionCreated(e) => ops.push(RowOp::InsertVersion(VersionRow {
            prompt_id,
            version_string: e.version_string.to_string(),
            text: e.text.clone(),
            variables: serde_json::to_string(&e.variables).expect("strings serialize"),
            commit_message: e.commit_message.as_ref().map(|m| m.to_string()),
            author: actor,
            created_at: at,
            position,
            origin: e.origin.as_ref().map(|o| serde_json::to_string(o).expect("origins serialize")),
            kind: e.kind.as_str().to_owned(),
            messages: e.messages.as_ref().map(|m| serde_json::to_string(m).expect("messages serialize")),
            config: e.config.as_ref().map(|c| serde_json::to_string(c).expect("configs serialize")),
            includes: serde_json::to_string(&e.includes).expect("names serialize"),
        })),
        Event::VersionDeployed(e) => {
            ops.push(RowOp::UpsertDeployment(DeploymentRow {
                prompt_id: prompt_id.clone(),
                environment: e.environment.to_string(),
                prompt_name: e.name.to_string(),
                version_string: e.version_string.to_string(),
                deployed_by: actor.clone(),
                deployed_at: at.clone(),
                position,
            }));
            ops.push(history(&e.name, &e.environment, "deploy", &e.version_string, e.previous_version_string.as_ref()));
            ops.push(RowOp::Touch { prompt_id, position });
        }
        Event::DeploymentRolledBack(e) => {
            ops.push(RowOp::UpsertDeployment(DeploymentRow {
                prompt_id: prompt_id.clone(),
                environment: e.environment.to_string(),
                prompt_name: e.name.to_string(),
                version_string: e.to_version_string.to_string(),
                deployed_by: actor.clone(),
                deployed_at: at.clone(),
                position,
            }));
            ops.push(history(&e.name, &e.environment, "rollback", &e.to_version_string, Some(&e.from_version_string)));
            ops.push(RowOp::Touch { prompt_id, position });
        }
        Event::ExperimentStarted(e) => {
            ops.push(RowOp::UpsertExperiment(ExperimentRow {
                prompt_id: prompt_id.clone(),
                environment: e.environment.to_string(),
                experiment_id: e.experiment_id.to_string(),
                running: 1,
                variants: serde_json::to_string(&e.variants).expect("variants serialize"),
                buckets: serde_json::to_string(&e.buckets).expect("buckets serialize"),
                previous_version_string: e.previous_version_string.as_ref().map(|v| v.to_string()),
                started_at: at.clone(),
                started_by: actor.clone(),
                position,
            }));
            ops.push(history(
                &e.name,
                &e.environment,
                "experiment_started",
                &e.variants[0].version_string,
                e.previous_version_string.as_ref(),
            ));
            ops.push(RowOp::Touch { prompt_id, position });
        }
        Event::ExperimentWeightsChanged(e) => {
            ops.push(RowOp::UpdateExperimentWeights {
                prompt_id: prompt_id.clone(),
                environment: e.environment.to_string(),
                variants: serde_json::to_string(&e.variants).expect("variants serialize"),
                buckets: serde_json::to_string(&e.buckets).expect("buckets serialize"),
                position,
            });
            ops.push(history(&e.name, &e.environment, "experiment_reweighted", &e.variants[0].version_string, None));
            ops.push(RowOp::Touch { prompt_id, position });
        }
        Event::ExperimentStopped(e) => {
            ops.push(RowOp::StopExperiment {
                prompt_id: prompt_id.clone(),
                environment: e.environment.to_string(),
                position,
            });
            ops.push(history(&e.name, &e.environment, "experiment_stopped", &e.version_string, None));
            ops.push(RowOp::Touch { prompt_id, position });
        }
        Event::UserCreated(e) => ops.push(RowOp::InsertUser(UserRow {
            username: e.username.to_string(),
            role: e.role.to_string(),
            disabled: false,
            password_hash: e.password_hash.clone(),
            password_position: position,
            created_at: at.clone(),
            created_by: actor.clone(),
            updated_at: at.clone(),
            updated_by: actor.clone(),
            last_position: position,
        })),
        Event::UserRoleChanged(e) => ops.push(update_user(e.username.as_str(), Some(e.role.to_string()), false, None)),
        Event::UserDisabled(e) => ops.push(update_user(e.username.as_str(), None, true, None)),
        Event::PasswordChanged(e) => {
            ops.push(update_user(e.username.as_str(), None, false, Some(e.password_hash.clone())))
        }
        Event::ApiKeyCreated(e) => ops.push(RowOp::InsertApiKey(ApiKeyRow {
            key_id: e.key_id.clone(),
            name: e.name.clone(),
            environments: serde_json::to_string(&e.environments).expect("names serialize"),
            key_hash: e.key_hash.clone(),
            created_at: at.clone(),
            created_by: actor.clone(),
            revoked_at: None,
            revoked_by: None,
            last_position: position,
        })),
        Event::ApiKeyRevoked(e) => {
            ops.push(RowOp::RevokeApiKey { key_id: e.key_id.clone(), at: at.clone(), by: actor.clone(), position })
        }
    }
    Ok(ops)
}

/// All read models, in memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadModel {
    pub prompts: BTreeMap<String, PromptRow>,
    pub versions: BTreeMap<(String, String), VersionRow>,
    pub deployments: BTreeMap<(String, String), DeploymentRow>,
    pub experiments: BTreeMap<(String, String), ExperimentRow>,
    /// (prompt id, version, included prompt name) for every include.
    pub includes: std::collections::BTreeSet<(String, String, String)>,
    pub history: BTreeMap<i64, HistoryRow>,
    pub index: BTreeMap<i64, IndexRow>,
    pub users: BTreeMap<String, UserRow>,
    pub api_keys: BTreeMap<String, ApiKeyRow>,
}

impl ReadModel {
    pub fn apply(&mut self, op: RowOp) {
        match op {
            RowOp::InsertPrompt(row) => {
                self.prompts.insert(row.prompt_id.clone(), row);
            }
            RowOp::UpdateDescription { prompt_id, description, at, by, position } => {
                if let Some(p) = self.prompts.get_mut(&prompt_id) {
                    p.description = description;
                    p.updated_at = at;
                    p.updated_by = by;
                    p.last_position = position;
                }
            }
            RowOp::SetTags { prompt_id, tags, at, by, position } => {
                if let Some(p) = self.prompts.get_mut(&prompt_id) {
                    p.tags = tags;
                    p.updated_at = at;
                    p.updated_by = by;
                    p.last_position = position;
                }
            }
            RowOp::DeletePrompt { prompt_id, at, by, position } => {
                if let Some(p) = self.prompts.get_mut(&prompt_id) {
                    p.deleted_at = Some(at);
                    p.deleted_by = Some(by);
                    p.last_position = position;
                }
                self.deployments.retain(|(id, _), _| *id != prompt_id);
                self.experiments.retain(|(id, _), _| *id != prompt_id);
            }
            RowOp::InsertVersion(row) => {
                if let Some(p) = self.prompts.get_mut(&row.prompt_id) {
                    p.latest_version = Some(row.version_string.clone());
                    p.version_count += 1;
                    p.last_position = row.position;
                }
                for included in included_names(&row) {
                    self.includes.insert((row.prompt_id.clone(), row.version_string.clone(), included));
                }
                self.versions.insert((row.prompt_id.clone(), row.version_string.clone()), row);
            }
            RowOp::UpsertDeployment(row) => {
                self.deployments.insert((row.prompt_id.clone(), row.environment.clone()), row);
            }
            RowOp::UpsertExperiment(row) => {
                self.experiments.insert((row.prompt_id.clone(), row.environment.clone()), row);
            }
            RowOp::UpdateExperimentWeights { prompt_id, environment, variants, buckets, position } => {
                if let Some(x) = self.experiments.get_mut(&(prompt_id, environment)) {
                    x.variants = variants;
                    x.buckets = buckets;
                    x.position = position;
                }
            }
            RowOp::StopExperiment { prompt_id, environment, position } => {
                if let Some(x) = self.experiments.get_mut(&(prompt_id, environment)) {
                    x.running = 0;
                    x.position = position;
                }
            }
            RowOp::InsertHistory(row) => {
                self.history.insert(row.position, row);
            }
            RowOp::InsertIndex(row) => {
                self.index.insert(row.position, row);
            }
            RowOp::Touch { prompt_id, position } => {
                if let Some(p) = self.prompts.get_mut(&prompt_id) {
                    p.last_position = position;
                }
            }
            RowOp::InsertUser(row) => {
                self.users.insert(row.username.clone(), row);
            }
            RowOp::UpdateUser { username, role, disable, password_hash, at, by, position } => {
                if let Some(u) = self.users.get_mut(&username) {
                    if let Some(role) = role {
                        u.role = role;
                    }
                    if disable {
                        u.disabled = true;
                    }
                    if let Some(hash) = password_hash {
                        u.password_hash = hash;
                        u.password_position = position;
                    }
                    u.updated_at = at;
                    u.updated_by = by;
                    u.last_position = position;
                }
            }
            RowOp::InsertApiKey(row) => {
                self.api_keys.insert(row.key_id.clone(), row);
            }
            RowOp::RevokeApiKey { key_id, at, by, position } => {
                if let Some(k) = self.api_keys.get_mut(&key_id) {
                    k.revoked_at = Some(at);
                    k.revoked_by = Some(by);
                    k.last_position = position;
                }
            }
        }
    }

    /// Folds events into the model.
    pub fn replay<'a>(&mut self, events: impl IntoIterator<Item = &'a StoredEvent>) -> Result<(), DecodeError> {
        for e in events {
            for op in row_ops(e)? {
                self.apply(op);
            }
        }
        Ok(())
    }
}

/// Every table the projector writes; `rebuild` empties them all.
pub const READ_MODEL_TABLES: &[&str] = &[
    "rm_prompts",
    "rm_versions",
    "rm_deployments",
    "rm_experiments",
    "rm_includes",
    "rm_deployment_history",
    "rm_event_index",
    "rm_users",
    "rm_api_keys",
];

pub(crate) const PROMPT_COLUMNS: &str = "prompt_id, name, description, created_at, created_by, \
    updated_at, updated_by, deleted_at, deleted_by, latest_version, version_count, first_position, last_position, tags";
pub(crate) const VERSION_COLUMNS: &str =
    "prompt_id, version_string, text, variables, commit_message, author, created_at, position, origin, \
     kind, messages, config, includes";
pub(crate) const DEPLOYMENT_COLUMNS: &str =
    "prompt_id, environment, prompt_name, version_string, deployed_by, deployed_at, position";
pub(crate) const EXPERIMENT_COLUMNS: &str =
    "prompt_id, environment, experiment_id, running, variants, buckets, previous_version_string, \
     started_at, started_by, position";
pub(crate) const INCLUDE_COLUMNS: &str = "prompt_id, version_string, included";
pub(crate) const HISTORY_COLUMNS: &str = "position, prompt_id, prompt_name, environment, action, \
    version_string, previous_version_string, actor, at";
pub(crate) const INDEX_COLUMNS: &str = "position, prompt_name, prompt_id, environment, actor";
pub(crate) const USER_COLUMNS: &str = "username, role, disabled, password_hash, password_position, \
    created_at, created_by, updated_at, updated_by, last_position";
pub(crate) const API_KEY_COLUMNS: &str =
    "key_id, name, environments, key_hash, created_at, created_by, revoked_at, revoked_by, last_position";

impl PromptRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.name.clone()),
            Text(self.description.clone()),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            Text(self.updated_at.clone()),
            Text(self.updated_by.clone()),
            OptText(self.deleted_at.clone()),
            OptText(self.deleted_by.clone()),
            OptText(self.latest_version.clone()),
            Int(self.version_count),
            Int(self.first_position),
            Int(self.last_position),
            Text(self.tags.clone()),
        ]
    }
}

impl VersionRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.version_string.clone()),
            Text(self.text.clone()),
            Text(self.variables.clone()),
            OptText(self.commit_message.clone()),
            Text(self.author.clone()),
            Text(self.created_at.clone()),
            Int(self.position),
            OptText(self.origin.clone()),
            Text(self.kind.clone()),
            OptText(self.messages.clone()),
            OptText(self.config.clone()),
            Text(self.includes.clone()),
        ]
    }
}

impl DeploymentRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.environment.clone()),
            Text(self.prompt_name.clone()),
            Text(self.version_string.clone()),
            Text(self.deployed_by.clone()),
            Text(self.deployed_at.clone()),
            Int(self.position),
        ]
    }
}

/// The prompt names a stored version includes.
pub(crate) fn included_names(row: &VersionRow) -> Vec<String> {
    serde_json::from_str(&row.includes).unwrap_or_default()
}

/// An `rm_includes` row.
pub(crate) fn include_cells(prompt_id: &str, version_string: &str, included: &str) -> Vec<Cell> {
    vec![Cell::Text(prompt_id.to_owned()), Cell::Text(version_string.to_owned()), Cell::Text(included.to_owned())]
}

impl ExperimentRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.prompt_id.clone()),
            Text(self.environment.clone()),
            Text(self.experiment_id.clone()),
            Int(self.running),
            Text(self.variants.clone()),
            Text(self.buckets.clone()),
            OptText(self.previous_version_string.clone()),
            Text(self.started_at.clone()),
            Text(self.started_by.clone()),
            Int(self.position),
        ]
    }
}

impl HistoryRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Int(self.position),
            Text(self.prompt_id.clone()),
            Text(self.prompt_name.clone()),
            Text(self.environment.clone()),
            Text(self.action.clone()),
            Text(self.version_string.clone()),
            OptText(self.previous_version_string.clone()),
            Text(self.actor.clone()),
            Text(self.at.clone()),
        ]
    }
}

impl IndexRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Int(self.position),
            OptText(self.prompt_name.clone()),
            OptText(self.prompt_id.clone()),
            OptText(self.environment.clone()),
            Text(self.actor.clone()),
        ]
    }
}

impl UserRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.username.clone()),
            Text(self.role.clone()),
            Int(self.disabled as i64),
            Text(self.password_hash.clone()),
            Int(self.password_position),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            Text(self.updated_at.clone()),
            Text(self.updated_by.clone()),
            Int(self.last_position),
        ]
    }
}

/// `disabled` is stored as 0 or 1 on both databases.
impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for UserRow
where
    usize: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(r: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            username: r.try_get(0)?,
            role: r.try_get(1)?,
            disabled: r.try_get::<i64, _>(2)? != 0,
            password_hash: r.try_get(3)?,
            password_position: r.try_get(4)?,
            created_at: r.try_get(5)?,
            created_by: r.try_get(6)?,
            updated_at: r.try_get(7)?,
            updated_by: r.try_get(8)?,
            last_position: r.try_get(9)?,
        })
    }
}

impl ApiKeyRow {
    pub(crate) fn cells(&self) -> Vec<Cell> {
        use Cell::*;
        vec![
            Text(self.key_id.clone()),
            Text(self.name.clone()),
            Text(self.environments.clone()),
            Text(self.key_hash.clone()),
            Text(self.created_at.clone()),
            Text(self.created_by.clone()),
            OptText(self.revoked_at.clone()),
            OptText(self.revoked_by.clone()),
            Int(self.last_position),
        ]
    }
}

async fn insert_one(tx: &mut Tx<'_>, table: &str, columns: &str, cells: Vec<Cell>) -> Result<(), sqlx::Error> {
    insert_rows(tx, table, columns, std::iter::once(cells)).await
}

const UPSERT_EXPERIMENT: &str = "ON CONFLICT (prompt_id, environment) \
     DO UPDATE SET experiment_id = excluded.experiment_id, running = excluded.running, \
     variants = excluded.variants, buckets = excluded.buckets, \
     previous_version_string = excluded.previous_version_string, started_at = excluded.started_at, \
     started_by = excluded.started_by, position = excluded.position";

const UPSERT_DEPLOYMENT: &str = "ON CONFLICT (prompt_id, environment) DO UPDATE SET \
     prompt_name = excluded.prompt_name, version_string = excluded.version_string, \
     deployed_by = excluded.deployed_by, deployed_at = excluded.deployed_at, position = excluded.position";

/// Row operations a batch can apply together at its end, in a few statements instead of
/// one per event: appends to the history and the event index (no other operation reads,
/// changes or deletes those rows), the current deployment per prompt and environment
/// (the last one of the batch wins; a prompt's deletion drops its pending ones, as it
/// deletes its deployments) and `last_position` touches (coalesced per prompt, never
/// moving a position back).
#[derive(Default)]
pub struct Deferred {
    history: Vec<HistoryRow>,
    index: Vec<IndexRow>,
    deployments: std::collections::BTreeMap<(String, String), DeploymentRow>,
    touched: std::collections::HashMap<String, i64>,
}

impl Deferred {
    /// Keeps `op` for the end of the batch, or hands it back to be applied now.
    pub fn defer(&mut self, op: RowOp) -> Option<RowOp> {
        match op {
            RowOp::InsertHistory(row) => self.history.push(row),
            RowOp::InsertIndex(row) => self.index.push(row),
            RowOp::Touch { prompt_id, position } => {
                let p = self.touched.entry(prompt_id).or_insert(position);
                *p = (*p).max(position);
            }
            RowOp::UpsertDeployment(row) => {
                self.deployments.insert((row.prompt_id.clone(), row.environment.clone()), row);
            }
            RowOp::DeletePrompt { ref prompt_id, .. } => {
                self.deployments.retain(|(p, _), _| p != prompt_id);
                return Some(op);
            }
            op => return Some(op),
        }
        None
    }

    /// Applies what was kept, inside the same transaction.
    pub async fn flush(self, tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
        insert_rows(tx, "rm_deployment_history", HISTORY_COLUMNS, self.history.iter().map(HistoryRow::cells)).await?;
        insert_rows(tx, "rm_event_index", INDEX_COLUMNS, self.index.iter().map(IndexRow::cells)).await?;
        let deployments = self.deployments.values().map(DeploymentRow::cells);
        upsert_rows(tx, "rm_deployments", DEPLOYMENT_COLUMNS, deployments, UPSERT_DEPLOYMENT).await?;
        for (prompt_id, position) in self.touched {
            on_tx!(&mut *tx, conn => {
                sqlx::query(
                    "UPDATE rm_prompts SET last_position = CASE WHEN last_position < $1 THEN $1 ELSE last_position END \
                     WHERE prompt_id = $2",
                )
                .bind(position)
                .bind(prompt_id)
                .execute(conn)
                .await
                .map(|_| ())
            })?;
        }
        Ok(())
    }
}

/// Applies one row operation inside the projector's transaction.
pub async fn apply_sql(tx: &mut Tx<'_>, op: RowOp) -> Result<(), sqlx::Error> {
    match op {
        RowOp::InsertPrompt(row) => insert_one(tx, "rm_prompts", PROMPT_COLUMNS, row.cells()).await,
        RowOp::UpdateDescription { prompt_id, description, at, by, position } => on_tx!(&mut *tx, conn => sqlx::query(
            "UPDATE rm_prompts SET description = $1, updated_at = $2, updated_by = $3, \
                 last_position = $4 WHERE prompt_id = $5",
        )
        .bind(description)
        .bind(at)
        .bind(by)
        .bind(position)
        .bind(prompt_id)
        .execute(conn)
        .await
        .map(|_| ()))
        .map(|_| ()),
        RowOp::SetTags { prompt_id, tags, at, by, position } => on_tx!(&mut *tx, conn => sqlx::query(
            "UPDATE rm_prompts SET tags = $1, updated_at = $2, updated_by = $3, last_position = $4 WHERE prompt_id = $5",
        )
        .bind(tags)
        .bind(at)
        .bind(by)
        .bind(position)
        .bind(prompt_id)
        .execute(conn)
        .await
        .map(|_| ()))
        .map(|_| ()),
        RowOp::DeletePrompt { prompt_id, at, by, position } => {
            on_tx!(&mut *tx, conn => sqlx::query(
                "UPDATE rm_prompts SET deleted_at = $1, deleted_by = $2, last_position = $3 \
                 WHERE prompt_id = $4",
            )
            .bind(at)
            .bind(by)
            .bind(position)
            .bind(&prompt_id)
            .execute(conn)
            .await.map(|_| ()))?;
            on_tx!(&mut *tx, conn => sqlx::query("DELETE FROM rm_deployments WHERE prompt_id = $1").bind(&prompt_id).execute(conn).await.map(|_| ()))?;
            on_tx!(&mut *tx, conn => sqlx::query("DELETE FROM rm_experiments WHERE prompt_id = $1")
                .bind(prompt_id)
                .execute(conn)
                .await.map(|_| ()))
                .map(|_| ())
        }
        RowOp::InsertVersion(row) => {
            on_tx!(&mut *tx, conn => sqlx::query(
                "UPDATE rm_prompts SET latest_version = $1, version_count = version_count + 1, \
                 last_position = $2 WHERE prompt_id = $3",
            )
            .bind(&row.version_string)
            .bind(row.position)
            .bind(&row.prompt_id)
            .execute(conn)
            .await.map(|_| ()))?;
            let include_rows: Vec<Vec<Cell>> = included_names(&row)
                .iter()
                .map(|name| include_cells(&row.prompt_id, &row.version_string, name))
                .collect();
            insert_rows(tx, "rm_includes", INCLUDE_COLUMNS, include_rows.into_iter()).await?;
            insert_one(tx, "rm_versions", VERSION_COLUMNS, row.cells()).await
        }
        RowOp::UpsertDeployment(row) => {
            upsert_rows(tx, "rm_deployments", DEPLOYMENT_COLUMNS, std::iter::once(row.cells()), UPSERT_DEPLOYMENT).await
        }
        RowOp::UpsertExperiment(row) => {
            upsert_rows(tx, "rm_experiments", EXPERIMENT_COLUMNS, std::iter::once(row.cells()), UPSERT_EXPERIMENT).await
        }
        RowOp::UpdateExperimentWeights { prompt_id, environment, variants, buckets, position } => on_tx!(&mut *tx, conn => sqlx::query(
            "UPDATE rm_experiments SET variants = $1, buckets = $2, position = $3 \
             WHERE prompt_id = $4 AND environment = $5",
        )
        .bind(variants)
        .bind(buckets)
        .bind(position)
        .bind(prompt_id)
        .bind(environment)
        .execute(conn)
        .await
        .map(|_| ()))
        .map(|_| ()),
        RowOp::StopExperiment { prompt_id, environment, position } => on_tx!(&mut *tx, conn => sqlx::query(
            "UPDATE rm_experiments SET running = 0, position = $1 WHERE prompt_id = $2 AND environment = $3",
        )
        .bind(position)
        .bind(prompt_id)
        .bind(environment)
        .execute(conn)
        .await
        .map(|_| ()))
        .map(|_| ()),
        RowOp::InsertHistory(row) => insert_one(tx, "rm_deployment_history", HISTORY_COLUMNS, row.cells()).await,
        RowOp::InsertIndex(row) => insert_one(tx, "rm_event_index", INDEX_COLUMNS, row.cells()).await,
        RowOp::Touch { prompt_id, position } => {
            on_tx!(&mut *tx, conn => sqlx::query("UPDATE rm_prompts SET last_position = $1 WHERE prompt_id = $2")
                .bind(position)
                .bind(prompt_id)
                .execute(conn)
                .await.map(|_| ()))
                .map(|_| ())
        }
        RowOp::InsertUser(row) => insert_one(tx, "rm_users", USER_COLUMNS, row.cells()).await,
        RowOp::UpdateUser { username, role, disable, password_hash, at, by, position } => {
            // COALESCE keeps what the event does not change.
            on_tx!(&mut *tx, conn => sqlx::query(
                "UPDATE rm_users SET role = COALESCE($1, role), \
                 disabled = CASE WHEN $2 = 1 THEN 1 ELSE disabled END, \
                 password_hash = COALESCE($3, password_hash), \
                 password_position = CASE WHEN $4 = 1 THEN $5 ELSE password_position END, \
                 updated_at = $6, updated_by = $7, last_position = $5 WHERE username = $8",
            )
            .bind(role)
            .bind(disable as i64)
            .bind(password_hash.clone())
            .bind(password_hash.is_some() as i64)
            .bind(position)
            .bind(at)
            .bind(by)
            .bind(username)
            .execute(conn)
            .await.map(|_| ()))
            .map(|_| ())
        }
        RowOp::InsertApiKey(row) => insert_one(tx, "rm_api_keys", API_KEY_COLUMNS, row.cells()).await,
        RowOp::RevokeApiKey { key_id, at, by, position } => {
            on_tx!(&mut *tx, conn => sqlx::query("UPDATE rm_api_keys SET revoked_at = $1, revoked_by = $2, last_position = $3 WHERE key_id = $4")
                .bind(at)
                .bind(by)
                .bind(position)
                .bind(key_id)
                .execute(conn)
                .await.map(|_| ()))
                .map(|_| ())
        }
    }
}
