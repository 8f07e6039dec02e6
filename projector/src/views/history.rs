//! `rm_deployment_history`: every change to what an environment serves (deploys,
//! rollbacks, experiment steps), for the Deployments tab and time travel.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::Tx;
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_deployment_history";
pub const COLUMNS: &str = "position, prompt_id, prompt_name, environment, action, \
    version_string, previous_version_string, actor, at";

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

impl HistoryRow {
    pub fn cells(&self) -> Vec<Cell> {
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

/// What this view does with `event`: a row for each change to what is served.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    use promptos_core::names::{EnvironmentName, PromptName, VersionString};
    let row = |name: &PromptName,
               environment: &EnvironmentName,
               action: &str,
               version: &VersionString,
               previous: Option<&VersionString>| HistoryRow {
        position: e.position,
        prompt_id: e.prompt_id.clone(),
        prompt_name: name.to_string(),
        environment: environment.to_string(),
        action: action.to_owned(),
        version_string: version.to_string(),
        previous_version_string: previous.map(|v| v.to_string()),
        actor: e.actor.clone(),
        at: e.at.clone(),
    };
    let history = match event {
        Event::VersionDeployed(d) => {
            row(&d.name, &d.environment, "deploy", &d.version_string, d.previous_version_string.as_ref())
        }
        Event::DeploymentRolledBack(r) => {
            row(&r.name, &r.environment, "rollback", &r.to_version_string, Some(&r.from_version_string))
        }
        Event::ExperimentStarted(s) => row(
            &s.name,
            &s.environment,
            "experiment_started",
            &s.variants[0].version_string,
            s.previous_version_string.as_ref(),
        ),
        Event::ExperimentWeightsChanged(w) => {
            row(&w.name, &w.environment, "experiment_reweighted", &w.variants[0].version_string, None)
        }
        Event::ExperimentStopped(s) => row(&s.name, &s.environment, "experiment_stopped", &s.version_string, None),
        _ => return,
    };
    ops.push(RowOp::History(history));
}

pub fn apply(rows: &mut BTreeMap<i64, HistoryRow>, row: HistoryRow) {
    rows.insert(row.position, row);
}

pub async fn insert(tx: &mut Tx<'_>, rows: impl Iterator<Item = HistoryRow>) -> Result<(), sqlx::Error> {
    insert_rows(tx, TABLE, COLUMNS, rows.map(|r| r.cells())).await
}
