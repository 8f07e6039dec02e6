//! Runs commands: load the prompt's stream, let the domain decide, append, repeat on a
//! concurrent-modification conflict.
//!
//! Commands on one stream are serialised inside this process by a per-stream lock, so
//! they do not conflict with each other; between processes the append's expected
//! stream version catches the race and the command is decided again on fresh state.

use crate::http::error::ApiError;
use promptos_core::events::prompt_stream;
use promptos_core::names::PromptName;
use promptos_core::prompt::{decide, evolve, Context, PromptCommand, PromptState};
use promptos_core::DomainError;
use promptos_projector::{log, AppendError, AppendRequest, Db, Metadata, StoredEvent, Writer};
use std::sync::Arc;
use tokio::sync::Mutex;

const MAX_ATTEMPTS: usize = 5;

/// The state of one stream as far as this process has read it.
#[derive(Default)]
struct Slot {
    version: i64,
    last_position: i64,
    state: PromptState,
}

#[derive(Clone)]
pub struct Commands {
    db: Db,
    writer: Writer,
    context: Arc<Context>,
    slots: moka::future::Cache<String, Arc<Mutex<Slot>>>,
}

/// What a command did.
#[derive(Debug)]
pub struct Outcome {
    /// Events appended (empty when the command changed nothing).
    pub events: Vec<StoredEvent>,
    /// The prompt's state after the command.
    pub state: PromptState,
    /// Position the caller must be able to read: its last event, or the stream's last
    /// event when nothing was appended.
    pub position: i64,
}

impl Commands {
    pub fn new(db: Db, writer: Writer, context: Context) -> Self {
        Self {
            db,
            writer,
            context: Arc::new(context),
            slots: moka::future::Cache::new(10_000),
        }
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    pub async fn execute(
        &self,
        name: &PromptName,
        command: PromptCommand,
        metadata: Metadata,
    ) -> Result<Outcome, ApiError> {
        let stream_id = prompt_stream(name);
        let slot = self
            .slots
            .get_with(stream_id.clone(), async {
                Arc::new(Mutex::new(Slot::default()))
            })
            .await;
        let mut slot = slot.lock().await;
        for _ in 0..MAX_ATTEMPTS {
            // Catch up with anything other processes appended since we last looked.
            for e in log::read_stream(&self.db, &stream_id, slot.version).await? {
                apply(&mut slot, &e)?;
            }
            let events =
                decide(&slot.state, &self.context, command.clone()).map_err(|e| match e {
                    DomainError::PromptNotFound(_) => DomainError::PromptNotFound(name.to_string()),
                    other => other,
                })?;
            if events.is_empty() {
                return Ok(Outcome {
                    events: vec![],
                    state: slot.state.clone(),
                    position: slot.last_position,
                });
            }
            let request = AppendRequest {
                stream_id: stream_id.clone(),
                expected_version: slot.version,
                events,
                metadata: metadata.clone(),
            };
            match self.writer.append(request).await {
                Ok(appended) => {
                    for e in &appended.events {
                        apply(&mut slot, e)?;
                    }
                    return Ok(Outcome {
                        position: appended.last_position(),
                        events: appended.events,
                        state: slot.state.clone(),
                    });
                }
                Err(AppendError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AppendError::Conflict {
            stream_id,
            expected: slot.version,
            actual: -1,
        }
        .into())
    }
}

fn apply(slot: &mut Slot, e: &StoredEvent) -> Result<(), ApiError> {
    let event = e.decode().map_err(|err| ApiError::Internal(err.into()))?;
    slot.state = evolve(std::mem::take(&mut slot.state), &event);
    slot.version = e.stream_version;
    slot.last_position = e.position;
    Ok(())
}
