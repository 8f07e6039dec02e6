//! `rm_includes`: which prompts each version's templates include, so that "who
//! includes X" is an indexed lookup.

use super::{Envelope, RowOp};
use promptos_core::Event;
use promptos_store::bulk::{insert_rows, Cell};
use promptos_store::Tx;
use std::collections::BTreeSet;

pub const TABLE: &str = "rm_includes";
pub const COLUMNS: &str = "prompt_id, version_string, included";

/// (prompt id, version, included prompt name).
pub type IncludeRow = (String, String, String);

pub fn cells((prompt_id, version_string, included): &IncludeRow) -> Vec<Cell> {
    vec![Cell::Text(prompt_id.clone()), Cell::Text(version_string.clone()), Cell::Text(included.clone())]
}

/// What this view does with `event`: a created version's includes are indexed.
pub fn fold(event: &Event, e: &Envelope, ops: &mut Vec<RowOp>) {
    let Event::VersionCreated(c) = event else { return };
    for included in &c.includes {
        ops.push(RowOp::Includes((e.prompt_id.clone(), c.version_string.to_string(), included.to_string())));
    }
}

pub fn apply(rows: &mut BTreeSet<IncludeRow>, row: IncludeRow) {
    rows.insert(row);
}

pub async fn apply_sql(tx: &mut Tx<'_>, row: IncludeRow) -> Result<(), sqlx::Error> {
    insert_rows(tx, TABLE, COLUMNS, std::iter::once(cells(&row))).await
}
