//! Runs commands: load the stream, let the domain decide, append, and on a
//! concurrent-modification conflict decide again on fresh state.
//!
//! Commands on one stream are serialised inside this process by a per-stream lock, so
//! they do not conflict with each other; between processes the append's expected
//! stream version catches the race.

use promptos_core::aggregate::{Aggregate, ApiKeys, ChangeRequests, Prompts, Users, Webhooks};
use promptos_core::prompt::Context;
use promptos_core::DomainError;
use promptos_store::{AppendError, AppendRequest, Db, EventLog, Metadata, StoredEvent, Writer};
use std::sync::Arc;
use tokio::sync::{Mutex, OwnedMutexGuard};

const MAX_ATTEMPTS: usize = 5;

/// Why a command did not happen. Not an HTTP type: the CLI, the optimiser and the HTTP
/// handlers each turn it into what they answer.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The domain refused it: on the stream's own state, or by a rule that spans prompts
    /// (decided where appends are serialised).
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Other writers kept changing the same stream; nothing was written.
    #[error("stream {0} kept changing concurrently; nothing was written, retry")]
    Conflict(String),
    /// The event log could not be reached; nothing was written.
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(anyhow::Error),
}

impl From<AppendError> for CommandError {
    fn from(e: AppendError) -> Self {
        match e {
            AppendError::Conflict { stream_id, .. } => CommandError::Conflict(stream_id),
            AppendError::Unavailable(why) => CommandError::Unavailable(why),
            AppendError::Refused(refusal) => CommandError::Domain(refusal),
        }
    }
}

impl From<sqlx::Error> for CommandError {
    fn from(e: sqlx::Error) -> Self {
        if promptos_store::is_unavailable(&e) {
            CommandError::Unavailable(e.to_string())
        } else {
            CommandError::Internal(e.into())
        }
    }
}

/// A stream's state as far as this process has read it.
struct Slot<S> {
    version: i64,
    last_position: i64,
    state: S,
    /// The stream was read from the log at least once.
    loaded: bool,
}

/// What a command did.
#[derive(Debug)]
pub struct Outcome<S> {
    /// Events appended (empty when the command changed nothing).
    pub events: Vec<StoredEvent>,
    /// The stream's state after the command.
    pub state: S,
    /// Position the caller must be able to read: its last event, or the stream's last
    /// event when nothing was appended.
    pub position: i64,
}

/// Executes the commands of one aggregate kind.
pub struct Executor<A: Aggregate> {
    db: Db,
    writer: Writer,
    context: Arc<Context>,
    slots: moka::future::Cache<String, Arc<Mutex<Slot<A::State>>>>,
}

impl<A: Aggregate> Clone for Executor<A> {
    fn clone(&self) -> Self {
        Self {
            db: self.db.clone(),
            writer: self.writer.clone(),
            context: self.context.clone(),
            slots: self.slots.clone(),
        }
    }
}

impl<A: Aggregate> Executor<A> {
    fn new(db: Db, writer: Writer, context: Arc<Context>) -> Self {
        Self { db, writer, context, slots: moka::future::Cache::new(10_000) }
    }

    /// What this process already holds of the stream, without reading the log: possibly
    /// behind other processes' writes, so good only for facts that never change once
    /// recorded (what a version includes). None when nothing is held.
    pub async fn peek<R>(&self, stream_id: &str, look: impl FnOnce(&A::State) -> R) -> Option<R> {
        let slot = self.slots.get(stream_id).await?;
        let slot = slot.lock().await;
        slot.loaded.then(|| look(&slot.state))
    }

    /// The stream's slot, created empty (to be loaded from the log) when absent.
    async fn slot(&self, stream_id: &str) -> Arc<Mutex<Slot<A::State>>> {
        self.slots
            .get_with(stream_id.to_owned(), async {
                Arc::new(Mutex::new(Slot { version: 0, last_position: 0, state: A::State::default(), loaded: false }))
            })
            .await
    }

    /// The stream's state now, read up to the end of the log.
    pub async fn current(&self, stream_id: String) -> Result<A::State, CommandError> {
        let slot = self.slot(&stream_id).await;
        let mut slot = slot.lock().await;
        for e in self.db.read_stream(&stream_id, slot.version).await? {
            apply::<A>(&mut slot, &e)?;
        }
        slot.loaded = true;
        Ok(slot.state.clone())
    }

    /// Locks the stream (commands on it wait) and reads it up to the end of the log: for
    /// a command that decides on several streams at once ([`crate::change_requests`]).
    pub(crate) async fn lock(&self, stream_id: &str) -> Result<Locked<A>, CommandError> {
        let mut slot = self.slot(stream_id).await.lock_owned().await;
        for e in self.db.read_stream(stream_id, slot.version).await? {
            apply::<A>(&mut slot, &e)?;
        }
        slot.loaded = true;
        Ok(Locked { stream_id: stream_id.to_owned(), slot })
    }

    /// Reads what was appended to a held stream since it was read; says whether there
    /// was anything.
    pub(crate) async fn refresh(&self, locked: &mut Locked<A>) -> Result<bool, CommandError> {
        let events = self.db.read_stream(&locked.stream_id, locked.slot.version).await?;
        locked.record(&events)?;
        Ok(!events.is_empty())
    }

    pub async fn execute(
        &self,
        stream_id: String,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<Outcome<A::State>, CommandError> {
        let slot = self.slot(&stream_id).await;
        let mut slot = slot.lock().await;
        // A warm slot holds every event this process appended, so a command is decided on
        // it without reading the log first (one query less per command). If another
        // process appended meanwhile, the append's expected version catches it; a refusal
        // or a no-op decided on unchecked state is checked against the log before it is
        // answered.
        let mut catch_up = !slot.loaded;
        for _ in 0..MAX_ATTEMPTS {
            if catch_up {
                for e in self.db.read_stream(&stream_id, slot.version).await? {
                    apply::<A>(&mut slot, &e)?;
                }
                slot.loaded = true;
            }
            let events = match A::decide(&slot.state, &self.context, command.clone()) {
                Ok(events) if events.is_empty() && !catch_up => {
                    catch_up = true;
                    continue;
                }
                Err(_) if !catch_up => {
                    catch_up = true;
                    continue;
                }
                decided => decided.map_err(|e| name_missing(e, &stream_id))?,
            };
            if events.is_empty() {
                return Ok(Outcome { events: vec![], state: slot.state.clone(), position: slot.last_position });
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
                        apply::<A>(&mut slot, e)?;
                    }
                    return Ok(Outcome {
                        position: appended.last_position(),
                        events: appended.events,
                        state: slot.state.clone(),
                    });
                }
                Err(AppendError::Conflict { .. }) => catch_up = true,
                Err(e) => return Err(e.into()),
            }
        }
        Err(CommandError::Conflict(stream_id))
    }
}

/// The domain does not know the name of what is absent; the stream id does.
fn name_missing(e: DomainError, stream_id: &str) -> DomainError {
    let name = stream_id.split_once(':').map_or(stream_id, |(_, n)| n).to_owned();
    match e {
        DomainError::PromptNotFound(n) if n.is_empty() => DomainError::PromptNotFound(name),
        DomainError::UserNotFound(n) if n.is_empty() => DomainError::UserNotFound(name),
        DomainError::ApiKeyNotFound(n) if n.is_empty() => DomainError::ApiKeyNotFound(name),
        DomainError::ChangeRequestNotFound(n) if n.is_empty() => DomainError::ChangeRequestNotFound(name),
        DomainError::WebhookNotFound(n) if n.is_empty() => DomainError::WebhookNotFound(name),
        other => other,
    }
}

fn apply<A: Aggregate>(slot: &mut Slot<A::State>, e: &StoredEvent) -> Result<(), CommandError> {
    let event = e.decode().map_err(|err| CommandError::Internal(err.into()))?;
    slot.state = A::evolve(std::mem::take(&mut slot.state), &event);
    slot.version = e.stream_version;
    slot.last_position = e.position;
    Ok(())
}

/// A stream held for a command that spans streams: its state read to the end of the log.
pub(crate) struct Locked<A: Aggregate> {
    pub stream_id: String,
    slot: OwnedMutexGuard<Slot<A::State>>,
}

impl<A: Aggregate> Locked<A> {
    pub fn state(&self) -> &A::State {
        &self.slot.state
    }

    /// The stream's version: what an append to it must expect.
    pub fn version(&self) -> i64 {
        self.slot.version
    }

    /// Folds what was just appended to the stream into the held state.
    pub fn record(&mut self, appended: &[StoredEvent]) -> Result<(), CommandError> {
        for e in appended {
            apply::<A>(&mut self.slot, e)?;
        }
        Ok(())
    }
}

/// One executor per kind of stream.
#[derive(Clone)]
pub struct Commands {
    pub prompts: Executor<Prompts>,
    pub users: Executor<Users>,
    pub api_keys: Executor<ApiKeys>,
    pub change_requests: Executor<ChangeRequests>,
    pub webhooks: Executor<Webhooks>,
    writer: Writer,
    context: Arc<Context>,
}

impl Commands {
    pub fn new(db: Db, writer: Writer, context: Context) -> Self {
        let context = Arc::new(context);
        Self {
            prompts: Executor::new(db.clone(), writer.clone(), context.clone()),
            users: Executor::new(db.clone(), writer.clone(), context.clone()),
            api_keys: Executor::new(db.clone(), writer.clone(), context.clone()),
            change_requests: Executor::new(db.clone(), writer.clone(), context.clone()),
            webhooks: Executor::new(db, writer.clone(), context.clone()),
            writer,
            context,
        }
    }

    pub fn context(&self) -> &Context {
        &self.context
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.writer
    }
}
