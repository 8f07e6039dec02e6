//! `rm_versions`: every version of every prompt, with its wording, configuration and
//! origin, as created (versions never change).

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::Tx;
use std::collections::BTreeMap;

pub const TABLE: &str = "rm_versions";
pub const COLUMNS: &str = "prompt_id, version_string, text, variables, commit_message, author, created_at, position, \
     origin, kind, messages, config, includes";

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

impl VersionRow {
    pub fn cells(&self) -> Vec<Cell> {
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

/// What this view does with `event`: a created version is inserted.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let Event::VersionCreated(c) = event else { return };
    ops.push(RowOp::Versions(VersionRow {
        prompt_id: e.prompt_id.clone(),
        version_string: c.version_string.to_string(),
        text: c.text.clone(),
        variables: serde_json::to_string(&c.variables).expect("strings serialize"),
        commit_message: c.commit_message.as_ref().map(|m| m.to_string()),
        author: e.actor.clone(),
        created_at: e.at.clone(),
        position: e.position,
        origin: c.origin.as_ref().map(|o| serde_json::to_string(o).expect("origins serialize")),
        kind: c.kind.as_str().to_owned(),
        messages: c.messages.as_ref().map(|m| serde_json::to_string(m).expect("messages serialize")),
        config: c.config.as_ref().map(|c| serde_json::to_string(c).expect("configs serialize")),
        includes: serde_json::to_string(&c.includes).expect("names serialize"),
    }));
}

pub fn apply(rows: &mut BTreeMap<(String, String), VersionRow>, row: VersionRow) {
    rows.insert((row.prompt_id.clone(), row.version_string.clone()), row);
}

pub async fn apply_sql(tx: &mut Tx<'_>, row: VersionRow) -> Result<(), sqlx::Error> {
    insert_rows(tx, TABLE, COLUMNS, std::iter::once(row.cells())).await
}
