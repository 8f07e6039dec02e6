//! Applies scheduled change requests when their time comes, and expires requests left
//! open too long.
//!
//! Every server runs it; on PostgreSQL only the one holding the scheduler lock works,
//! the others stand by and take over when it goes away. Exactly once does not rest on
//! the lock: applying appends to the request's stream at the version it was decided on,
//! so a second apply (a standby that took over, a person pressing Apply at the same
//! moment) finds the request applied and does nothing. A schedule missed while every
//! server was down is applied at the next start, and `ChangeRequestApplied` records how
//! late (`delay_ms`).

use crate::commands::{CommandError, Commands};
use chrono::Utc;
use promptos_core::change_request::{change_request_stream, ChangeRequestCommand};
use promptos_core::DomainError;
use promptos_projector::queries;
use promptos_store::{format_timestamp, Db, Metadata};
use std::collections::HashMap;
use std::time::Duration;
use uuid::Uuid;

/// Key of the PostgreSQL advisory lock held by the working scheduler.
const SCHEDULER_LOCK_KEY: i64 = 0x5052_4f4d_5054_0003;
/// How often due requests are looked for: a schedule is met within about this.
const TICK: Duration = Duration::from_millis(500);

/// Starts the scheduler; it runs as long as the process.
pub fn start(db: Db, commands: Commands) {
    tokio::spawn(run(db, commands));
}

async fn run(db: Db, commands: Commands) {
    let _leadership = db.lead(SCHEDULER_LOCK_KEY, "change-request scheduler").await;
    // The last failure per request, so a request that cannot be applied (not yet
    // approved, outdated) is reported once, not every tick.
    let mut reported: HashMap<String, String> = HashMap::new();
    loop {
        if let Err(e) = tick(&db, &commands, &mut reported).await {
            tracing::warn!(error = %e, "could not look for scheduled change requests; retrying");
        }
        tokio::time::sleep(TICK).await;
    }
}

async fn tick(db: &Db, commands: &Commands, reported: &mut HashMap<String, String>) -> Result<(), CommandError> {
    let now = Utc::now();
    let stamp = format_timestamp(now);
    for row in queries::due_change_requests(db, &stamp).await? {
        let Ok(id) = Uuid::parse_str(&row.request_id) else { continue };
        let meta = Metadata::new("system");
        let result = if row.expires_at <= stamp {
            let command = ChangeRequestCommand::Expire { now };
            commands.change_requests.execute(change_request_stream(&id), command, meta).await.map(|_| ())
        } else {
            match super::apply(commands, &id, meta, now, true).await {
                Ok(Some(applied)) => {
                    tracing::info!(request = %id, position = applied.position, "applied a scheduled change request");
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(()) => {
                reported.remove(&row.request_id);
            }
            Err(e) => {
                let message = e.to_string();
                if reported.get(&row.request_id) != Some(&message) {
                    match &e {
                        CommandError::Domain(DomainError::ApprovalsMissing { .. }) => {
                            tracing::info!(request = %id, "a scheduled change request waits for its approvals: {message}")
                        }
                        _ => tracing::warn!(request = %id, "a scheduled change request was not applied: {message}"),
                    }
                    reported.insert(row.request_id.clone(), message);
                }
            }
        }
    }
    Ok(())
}
