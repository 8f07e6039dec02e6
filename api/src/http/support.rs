//! What several handlers share: paging parameters, prompt names from paths, and the
//! rows a command's events project to.

use super::error::{ApiError, ApiResult};
use crate::app::AppState;
use promptos_core::names::PromptName;
use promptos_projector::queries;
use promptos_projector::views::{row_ops, PromptRow, RowOp};

pub const MAX_PAGE: i64 = 500;

pub fn page_size(limit: Option<i64>, default: i64) -> ApiResult<i64> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => {
            Err(ApiError::bad_query(Some("limit".into()), format!("limit must be between 1 and {MAX_PAGE} (got {n})")))
        }
    }
}

/// Parses a position cursor (`next_cursor` of a previous page).
pub fn position_cursor(cursor: Option<&str>) -> ApiResult<Option<i64>> {
    match cursor {
        None | Some("") => Ok(None),
        Some(c) => c.parse::<i64>().map(Some).map_err(|_| not_our_cursor()),
    }
}

pub(crate) fn not_our_cursor() -> ApiError {
    ApiError::bad_query(Some("cursor".into()), "cursor is not one this server issued")
}

/// The first read-model row that `pick` finds among the rows the projector derives from
/// `events`.
pub(crate) fn projected<T>(events: &[promptos_store::StoredEvent], pick: impl Fn(RowOp) -> Option<T>) -> ApiResult<T> {
    for event in events {
        let ops = row_ops(event).map_err(|e| ApiError::Internal(e.into()))?;
        if let Some(found) = ops.into_iter().find_map(&pick) {
            return Ok(found);
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!("the command appended no event with the expected row")))
}

/// Parses a prompt name from the path; a name that cannot exist is simply not found.
pub(crate) fn path_name(name: &str) -> ApiResult<PromptName> {
    PromptName::parse(name).map_err(|_| ApiError::NotFound(format!("prompt {name:?} not found")))
}

pub(crate) async fn live_prompt(state: &AppState, name: &str) -> ApiResult<PromptRow> {
    queries::live_prompt(&state.db, name).await?.ok_or_else(|| ApiError::NotFound(format!("prompt {name:?} not found")))
}
