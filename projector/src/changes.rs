//! The change feed: one message per change to what an environment serves, published on
//! NATS by the projector and streamed as Server-Sent Events by every API server.
//!
//! # Subjects and payload
//! Subject: `promptos.changes.<environment>.<prompt name>` (a prompt name with dots
//! spans several subject tokens, so subscribe with `promptos.changes.<environment>.>`
//! or `promptos.changes.>` and read the names from the payload). Payload (JSON):
//!
//! ```json
//! {"position": 42, "event_id": "…", "type": "VersionDeployed", "prompt": "greeting",
//!  "environment": "production", "version_string": "v2", "at": "2026-01-31T12:00:00.000000Z"}
//! ```
//!
//! `type` is `VersionDeployed`, `DeploymentRolledBack`, `ExperimentStarted`,
//! `ExperimentWeightsChanged`, `ExperimentStopped` (`version_string` is then what
//! clients unaware of experiments are served: the first variant, or the version kept)
//! or `PromptDeleted` (sent for every environment the prompt was deployed in;
//! `version_string` is then null). A change to a prompt that others include is also
//! sent for each prompt that includes it there (directly or not), as `IncludeChanged`
//! with the includer's name and live version. Every message means "fetch this prompt
//! in this environment again". Delivery is
//! at least once and may repeat after a crash or reconnect: a consumer ignores a message
//! whose `position` is not above what it holds.

use promptos_core::Event;
use promptos_store::{on_pool, Db, StoredEvent};

pub use promptos_core::wire::{ChangeMessage, SUBJECT_PREFIX};

/// The change messages that follow from `events`, which the read models already include.
pub async fn changes_for(db: &Db, events: &[StoredEvent]) -> Result<Vec<ChangeMessage>, sqlx::Error> {
    let mut out = Vec::new();
    for stored in events {
        let Ok(event) = stored.decode() else { continue };
        let message = |environment: String, version_string: Option<String>| ChangeMessage {
            position: stored.position,
            event_id: stored.event_id.clone(),
            event_type: stored.event_type.clone(),
            prompt: event.prompt().map(|(_, n)| n.to_string()).unwrap_or_default(),
            environment,
            version_string,
            at: stored.recorded_at.clone(),
        };
        match &event {
            Event::VersionDeployed(e) => {
                out.push(message(e.environment.to_string(), Some(e.version_string.to_string())))
            }
            Event::DeploymentRolledBack(e) => {
                out.push(message(e.environment.to_string(), Some(e.to_version_string.to_string())))
            }
            Event::ExperimentStarted(e) => {
                out.push(message(e.environment.to_string(), e.variants.first().map(|v| v.version_string.to_string())))
            }
            Event::ExperimentWeightsChanged(e) => {
                out.push(message(e.environment.to_string(), e.variants.first().map(|v| v.version_string.to_string())))
            }
            Event::ExperimentStopped(e) => {
                out.push(message(e.environment.to_string(), Some(e.version_string.to_string())))
            }
            Event::PromptDeleted(e) => {
                let environments: Vec<String> = on_pool!(db, pool => {
                    sqlx::query_scalar(
                        "SELECT DISTINCT environment FROM rm_deployment_history WHERE prompt_id = $1 \
                         ORDER BY environment",
                    )
                    .bind(e.prompt_id.to_string())
                    .fetch_all(pool)
                    .await
                })?;
                for environment in environments {
                    out.push(message(environment, None));
                }
            }
            _ => {}
        }
    }
    // Prompts that include a changed one serve new text too: looked up for the whole
    // batch at once.
    let changed: Vec<(String, String)> = out.iter().map(|m| (m.prompt.clone(), m.environment.clone())).collect();
    let includers = crate::includes::includers_of_all(db, &changed).await?;
    if !includers.is_empty() {
        let direct = out.clone();
        for m in direct {
            for (includer, version) in includers.get(&(m.prompt.clone(), m.environment.clone())).into_iter().flatten() {
                out.push(ChangeMessage {
                    event_type: "IncludeChanged".into(),
                    prompt: includer.clone(),
                    version_string: Some(version.clone()),
                    ..m.clone()
                });
            }
        }
    }
    Ok(out)
}
