//! `verify`: is the log intact, and do the read models say what the log says?

use crate::checkpoints::READ_MODELS;
use crate::projector::ProjectorError;
use crate::rebuild::replay_all;
use crate::views::*;
use promptos_store::{on_tx, ChainReport, Db, EventLog, Pool, Tx};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub chain: ChainReport,
    pub read_models: ReadModelReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReadModelReport {
    pub ok: bool,
    /// The position the read models include.
    pub checkpoint: i64,
    pub first_difference: Option<Difference>,
}

/// A row where the stored read model and a fresh replay disagree.
#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    pub table: &'static str,
    pub key: String,
    /// The event whose projection the row should reflect.
    pub position: Option<i64>,
    pub expected: String,
    pub found: String,
}

/// Loads every read model, and the checkpoint they correspond to, from one snapshot.
pub async fn load_read_model(db: &Db) -> Result<(i64, ReadModel), sqlx::Error> {
    let mut tx = match db.pool() {
        Pool::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
        Pool::Postgres(pool) => Tx::Postgres(pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?),
    };
    let mut m = ReadModel::default();
    let checkpoint = on_tx!(&mut tx, conn => {
        let checkpoint: i64 = sqlx::query_scalar("SELECT position FROM projector_checkpoints WHERE name = $1")
            .bind(READ_MODELS)
            .fetch_one(&mut *conn)
            .await?;
        let all = |columns: &str, table: &str| format!("SELECT {columns} FROM {table}");
        for row in sqlx::query_as::<_, PromptRow>(&all(PROMPT_COLUMNS, "rm_prompts")).fetch_all(&mut *conn).await? {
            m.prompts.insert(row.prompt_id.clone(), row);
        }
        for row in sqlx::query_as::<_, VersionRow>(&all(VERSION_COLUMNS, "rm_versions")).fetch_all(&mut *conn).await? {
            m.versions.insert((row.prompt_id.clone(), row.version_string.clone()), row);
        }
        let sql = all(DEPLOYMENT_COLUMNS, "rm_deployments");
        for row in sqlx::query_as::<_, DeploymentRow>(&sql).fetch_all(&mut *conn).await? {
            m.deployments.insert((row.prompt_id.clone(), row.environment.clone()), row);
        }
        let sql = all(INCLUDE_COLUMNS, "rm_includes");
        for row in sqlx::query_as::<_, (String, String, String)>(&sql).fetch_all(&mut *conn).await? {
            m.includes.insert(row);
        }
        let sql = all(EXPERIMENT_COLUMNS, "rm_experiments");
        for row in sqlx::query_as::<_, ExperimentRow>(&sql).fetch_all(&mut *conn).await? {
            m.experiments.insert((row.prompt_id.clone(), row.environment.clone()), row);
        }
        let sql = all(HISTORY_COLUMNS, "rm_deployment_history");
        for row in sqlx::query_as::<_, HistoryRow>(&sql).fetch_all(&mut *conn).await? {
            m.history.insert(row.position, row);
        }
        for row in sqlx::query_as::<_, IndexRow>(&all(INDEX_COLUMNS, "rm_event_index")).fetch_all(&mut *conn).await? {
            m.index.insert(row.position, row);
        }
        for row in sqlx::query_as::<_, UserRow>(&all(USER_COLUMNS, "rm_users")).fetch_all(&mut *conn).await? {
            m.users.insert(row.username.clone(), row);
        }
        for row in sqlx::query_as::<_, ApiKeyRow>(&all(API_KEY_COLUMNS, "rm_api_keys")).fetch_all(&mut *conn).await? {
            m.api_keys.insert(row.key_id.clone(), row);
        }
        use crate::views::change_requests as cr;
        let sql = all(cr::COLUMNS, cr::TABLE);
        for row in sqlx::query_as::<_, ChangeRequestRow>(&sql).fetch_all(&mut *conn).await? {
            m.change_requests.requests.insert(row.request_id.clone(), row);
        }
        let sql = all(cr::ACTIVITY_COLUMNS, cr::ACTIVITY_TABLE);
        for row in sqlx::query_as::<_, ActivityRow>(&sql).fetch_all(&mut *conn).await? {
            m.change_requests.activity.insert(row.position, row);
        }
        let sql = all(cr::PROMPTS_COLUMNS, cr::PROMPTS_TABLE);
        for row in sqlx::query_as::<_, (String, String)>(&sql).fetch_all(&mut *conn).await? {
            m.change_requests.prompts.insert(row);
        }
        let sql = all(crate::views::webhooks::COLUMNS, crate::views::webhooks::TABLE);
        for row in sqlx::query_as::<_, WebhookRow>(&sql).fetch_all(&mut *conn).await? {
            m.webhooks.insert(row.webhook_id.clone(), row);
        }
        let sql = all(crate::views::test_cases::COLUMNS, crate::views::test_cases::TABLE);
        for row in sqlx::query_as::<_, crate::views::TestCaseRow>(&sql).fetch_all(&mut *conn).await? {
            m.test_cases.insert(row.case_id.clone(), row);
        }
        let sql = all(crate::views::evaluations::COLUMNS, crate::views::evaluations::TABLE);
        for row in sqlx::query_as::<_, crate::views::EvaluationRow>(&sql).fetch_all(&mut *conn).await? {
            m.evaluations.insert(row.evaluation_id.clone(), row);
        }
        checkpoint
    });
    tx.commit().await?;
    Ok((checkpoint, m))
}

/// Checks the hash chain, then compares the read models with a replay of the log up to
/// their checkpoint. `progress(done, total)` reports the replay.
pub async fn verify(db: &Db, mut progress: impl FnMut(&str, i64, i64)) -> Result<VerifyReport, ProjectorError> {
    let chain = db.verify_chain(|n| progress("chain", n, 0)).await?;
    let (checkpoint, stored) = load_read_model(db).await?;
    let mut fresh = ReadModel::default();
    replay_all(db, Some(checkpoint), &mut fresh, |d, t| progress("replay", d, t)).await?;
    let first_difference = compare(&fresh, &stored);
    let read_models = ReadModelReport { ok: first_difference.is_none(), checkpoint, first_difference };
    Ok(VerifyReport { ok: chain.first_bad.is_none() && read_models.ok, chain, read_models })
}

fn diff_table<K: Ord + Debug, V: PartialEq + Debug>(
    table: &'static str,
    expected: &BTreeMap<K, V>,
    found: &BTreeMap<K, V>,
    position: impl Fn(&V) -> i64,
) -> Option<Difference> {
    let mut diffs: Vec<Difference> = Vec::new();
    for (k, e) in expected {
        match found.get(k) {
            Some(f) if f == e => {}
            f => diffs.push(Difference {
                table,
                key: format!("{k:?}"),
                position: Some(position(e)),
                expected: format!("{e:?}"),
                found: f.map_or_else(|| "missing".to_owned(), |f| format!("{f:?}")),
            }),
        }
    }
    for (k, f) in found {
        if !expected.contains_key(k) {
            diffs.push(Difference {
                table,
                key: format!("{k:?}"),
                position: Some(position(f)),
                expected: "no such row".into(),
                found: format!("{f:?}"),
            });
        }
    }
    diffs.into_iter().min_by_key(|d| d.position)
}

fn as_map(set: &std::collections::BTreeSet<(String, String, String)>) -> BTreeMap<(String, String, String), ()> {
    set.iter().map(|k| (k.clone(), ())).collect()
}

/// Credentials are compared by a fingerprint, so that a report never shows them.
fn pairs(set: &std::collections::BTreeSet<(String, String)>) -> BTreeMap<(String, String), ()> {
    set.iter().map(|k| (k.clone(), ())).collect()
}

fn fingerprint(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    format!("[redacted, sha256 {}]", &hex::encode(Sha256::digest(secret.as_bytes()))[..12])
}

fn redacted_users(m: &ReadModel) -> BTreeMap<String, UserRow> {
    m.users
        .iter()
        .map(|(k, u)| (k.clone(), UserRow { password_hash: fingerprint(&u.password_hash), ..u.clone() }))
        .collect()
}

fn redacted_keys(m: &ReadModel) -> BTreeMap<String, ApiKeyRow> {
    m.api_keys.iter().map(|(k, a)| (k.clone(), ApiKeyRow { key_hash: fingerprint(&a.key_hash), ..a.clone() })).collect()
}

/// The difference that concerns the earliest event, if any.
pub fn compare(expected: &ReadModel, found: &ReadModel) -> Option<Difference> {
    [
        diff_table("rm_prompts", &expected.prompts, &found.prompts, |r| r.last_position),
        diff_table("rm_versions", &expected.versions, &found.versions, |r| r.position),
        diff_table("rm_deployments", &expected.deployments, &found.deployments, |r| r.position),
        diff_table("rm_includes", &as_map(&expected.includes), &as_map(&found.includes), |_| 0),
        diff_table("rm_experiments", &expected.experiments, &found.experiments, |r| r.position),
        diff_table("rm_deployment_history", &expected.history, &found.history, |r| r.position),
        diff_table("rm_event_index", &expected.index, &found.index, |r| r.position),
        diff_table("rm_users", &redacted_users(expected), &redacted_users(found), |r| r.last_position),
        diff_table("rm_api_keys", &redacted_keys(expected), &redacted_keys(found), |r| r.last_position),
        diff_table("rm_change_requests", &expected.change_requests.requests, &found.change_requests.requests, |r| {
            r.last_position
        }),
        diff_table(
            "rm_change_request_activity",
            &expected.change_requests.activity,
            &found.change_requests.activity,
            |r| r.position,
        ),
        diff_table("rm_webhooks", &expected.webhooks, &found.webhooks, |r| r.last_position),
        diff_table("rm_test_cases", &expected.test_cases, &found.test_cases, |r| r.last_position),
        diff_table("rm_evaluations", &expected.evaluations, &found.evaluations, |r| r.last_position),
        diff_table(
            "rm_change_request_prompts",
            &pairs(&expected.change_requests.prompts),
            &pairs(&found.change_requests.prompts),
            |_| 0,
        ),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|d| d.position)
}
