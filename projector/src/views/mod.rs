//! The read models, one module per view: its row type, how it folds events into rows,
//! and its SQL, together. A new column is one view module plus its two migrations.
//!
//! [`row_ops`] is pure: it turns one stored event into each view's row operations. The
//! same operations are applied to the database by the projector ([`apply_sql`]) and to
//! an in-memory [`ReadModel`] by `rebuild` and `verify`, so "the read models equal a
//! fresh replay" compares one fold with itself on two stores.

pub mod api_keys;
pub mod change_requests;
pub mod deployments;
pub mod evaluations;
pub mod experiments;
pub mod history;
pub mod includes;
pub mod index;
pub mod prompts;
pub mod test_cases;
pub mod users;
pub mod versions;
pub mod webhooks;

pub use api_keys::ApiKeyRow;
pub use change_requests::{ActivityRow, ChangeRequestRow};
pub use deployments::DeploymentRow;
pub use evaluations::EvaluationRow;
pub use experiments::ExperimentRow;
pub use history::HistoryRow;
pub use index::IndexRow;
pub use prompts::PromptRow;
pub use test_cases::TestCaseRow;
pub use users::UserRow;
pub use versions::VersionRow;
pub use webhooks::WebhookRow;

/// The columns of each view's table, in its row type's order.
pub use api_keys::COLUMNS as API_KEY_COLUMNS;
pub use deployments::COLUMNS as DEPLOYMENT_COLUMNS;
pub use experiments::COLUMNS as EXPERIMENT_COLUMNS;
pub use history::COLUMNS as HISTORY_COLUMNS;
pub use includes::COLUMNS as INCLUDE_COLUMNS;
pub use index::COLUMNS as INDEX_COLUMNS;
pub use prompts::COLUMNS as PROMPT_COLUMNS;
pub use users::COLUMNS as USER_COLUMNS;
pub use versions::COLUMNS as VERSION_COLUMNS;

use promptos_core::events::DecodeError;
use promptos_store::{StoredEvent, Tx};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// What every view reads of a stored event besides the event itself.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub position: i64,
    /// When it was recorded (fixed-width UTC text).
    pub at: String,
    /// Who caused it (`user:…`, `api_key:…`, `system`).
    pub actor: String,
    /// The prompt it is about (empty for users and API keys).
    pub prompt_id: String,
}

/// One change to one view.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    Prompts(prompts::Op),
    Versions(VersionRow),
    Includes(includes::IncludeRow),
    Deployments(deployments::Op),
    Experiments(experiments::Op),
    History(HistoryRow),
    Index(IndexRow),
    Users(users::Op),
    ApiKeys(api_keys::Op),
    ChangeRequests(change_requests::Op),
    Webhooks(webhooks::Op),
    TestCases(test_cases::Op),
    Evaluations(evaluations::Op),
}

/// The row operations that follow from one event, view by view.
pub fn row_ops(stored: &StoredEvent) -> Result<Vec<RowOp>, DecodeError> {
    let event = stored.decode()?;
    let e = Envelope {
        position: stored.position,
        at: stored.recorded_at.clone(),
        actor: stored.metadata().actor,
        prompt_id: event.prompt().map(|(id, _)| id.to_string()).unwrap_or_default(),
    };
    let mut ops = Vec::with_capacity(4);
    index::fold(&event, &e, &mut ops);
    prompts::fold(&event, &e, &mut ops);
    versions::fold(&event, &e, &mut ops);
    includes::fold(&event, &e, &mut ops);
    deployments::fold(&event, &e, &mut ops);
    experiments::fold(&event, &e, &mut ops);
    history::fold(&event, &e, &mut ops);
    users::fold(&event, &e, &mut ops);
    api_keys::fold(&event, &e, &mut ops);
    change_requests::fold(&event, &e, &mut ops);
    webhooks::fold(&event, &e, &mut ops);
    test_cases::fold(&event, &e, &mut ops);
    evaluations::fold(&event, &e, &mut ops);
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
    pub includes: BTreeSet<includes::IncludeRow>,
    pub history: BTreeMap<i64, HistoryRow>,
    pub index: BTreeMap<i64, IndexRow>,
    pub users: BTreeMap<String, UserRow>,
    pub api_keys: BTreeMap<String, ApiKeyRow>,
    pub change_requests: change_requests::Tables,
    pub webhooks: BTreeMap<String, WebhookRow>,
    pub test_cases: BTreeMap<String, TestCaseRow>,
    pub evaluations: BTreeMap<String, EvaluationRow>,
}

impl ReadModel {
    pub fn apply(&mut self, op: RowOp) {
        match op {
            RowOp::Prompts(op) => prompts::apply(&mut self.prompts, op),
            RowOp::Versions(row) => versions::apply(&mut self.versions, row),
            RowOp::Includes(row) => includes::apply(&mut self.includes, row),
            RowOp::Deployments(op) => deployments::apply(&mut self.deployments, op),
            RowOp::Experiments(op) => experiments::apply(&mut self.experiments, op),
            RowOp::History(row) => history::apply(&mut self.history, row),
            RowOp::Index(row) => index::apply(&mut self.index, row),
            RowOp::Users(op) => users::apply(&mut self.users, op),
            RowOp::ApiKeys(op) => api_keys::apply(&mut self.api_keys, op),
            RowOp::ChangeRequests(op) => change_requests::apply(&mut self.change_requests, op),
            RowOp::Webhooks(op) => webhooks::apply(&mut self.webhooks, op),
            RowOp::TestCases(op) => test_cases::apply(&mut self.test_cases, op),
            RowOp::Evaluations(op) => evaluations::apply(&mut self.evaluations, op),
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
    prompts::TABLE,
    versions::TABLE,
    deployments::TABLE,
    experiments::TABLE,
    includes::TABLE,
    history::TABLE,
    index::TABLE,
    users::TABLE,
    api_keys::TABLE,
    change_requests::TABLE,
    change_requests::ACTIVITY_TABLE,
    change_requests::PROMPTS_TABLE,
    webhooks::TABLE,
    test_cases::TABLE,
    evaluations::TABLE,
];

/// Applies one row operation inside the projector's transaction.
pub async fn apply_sql(tx: &mut Tx<'_>, op: RowOp) -> Result<(), sqlx::Error> {
    match op {
        RowOp::Prompts(op) => prompts::apply_sql(tx, op).await,
        RowOp::Versions(row) => versions::apply_sql(tx, row).await,
        RowOp::Includes(row) => includes::apply_sql(tx, row).await,
        RowOp::Deployments(op) => deployments::apply_sql(tx, op).await,
        RowOp::Experiments(op) => experiments::apply_sql(tx, op).await,
        RowOp::History(row) => history::insert(tx, std::iter::once(row)).await,
        RowOp::Index(row) => index::insert(tx, std::iter::once(row)).await,
        RowOp::Users(op) => users::apply_sql(tx, op).await,
        RowOp::ApiKeys(op) => api_keys::apply_sql(tx, op).await,
        RowOp::ChangeRequests(op) => change_requests::apply_sql(tx, op).await,
        RowOp::Webhooks(op) => webhooks::apply_sql(tx, op).await,
        RowOp::TestCases(op) => test_cases::apply_sql(tx, op).await,
        RowOp::Evaluations(op) => evaluations::apply_sql(tx, op).await,
    }
}

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
    deployments: BTreeMap<(String, String), DeploymentRow>,
    touched: HashMap<String, i64>,
}

impl Deferred {
    /// Keeps `op` for the end of the batch, or hands it back to be applied now.
    pub fn defer(&mut self, op: RowOp) -> Option<RowOp> {
        match op {
            RowOp::History(row) => self.history.push(row),
            RowOp::Index(row) => self.index.push(row),
            RowOp::Prompts(prompts::Op::Touch { prompt_id, position }) => {
                let p = self.touched.entry(prompt_id).or_insert(position);
                *p = (*p).max(position);
            }
            RowOp::Deployments(deployments::Op::Upsert(row)) => {
                self.deployments.insert((row.prompt_id.clone(), row.environment.clone()), row);
            }
            RowOp::Deployments(deployments::Op::DeleteFor { ref prompt_id }) => {
                self.deployments.retain(|(p, _), _| p != prompt_id);
                return Some(op);
            }
            op => return Some(op),
        }
        None
    }

    /// Applies what was kept, inside the same transaction.
    pub async fn flush(self, tx: &mut Tx<'_>) -> Result<(), sqlx::Error> {
        history::insert(tx, self.history.into_iter()).await?;
        index::insert(tx, self.index.into_iter()).await?;
        deployments::upsert(tx, self.deployments.into_values()).await?;
        for (prompt_id, position) in self.touched {
            prompts::touch(tx, &prompt_id, position).await?;
        }
        Ok(())
    }
}
