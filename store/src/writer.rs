//! The writer: one task per process that owns appends. Requests that queue while one
//! transaction commits go into the next one together (group commit), which pays back
//! the price of one append lock for the whole log ([`crate::append`] says why there is
//! one). The writer also keeps the [`Catalog`], the write side's view for the rules
//! that span prompts.

use crate::event::{Metadata, StoredEvent};
use crate::log::EventLog;
use crate::Db;
use promptos_core::catalog::Catalog;
use promptos_core::{DomainError, Event};
use tokio::sync::{mpsc, oneshot, watch};

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;

/// Events for one stream, to be appended only if the stream is still at
/// `expected_version` (0 for a stream with no events).
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub stream_id: String,
    pub expected_version: i64,
    pub events: Vec<Event>,
    pub metadata: Metadata,
}

/// What was written, in log order.
#[derive(Debug, Clone)]
pub struct Appended {
    pub events: Vec<StoredEvent>,
}

impl Appended {
    pub fn last_position(&self) -> i64 {
        self.events.last().map_or(0, |e| e.position)
    }
    pub fn stream_version(&self) -> i64 {
        self.events.last().map_or(0, |e| e.stream_version)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    #[error("stream {stream_id} changed concurrently: expected version {expected}, found {actual}")]
    Conflict { stream_id: String, expected: i64, actual: i64 },
    #[error("the event log is unavailable: {0}")]
    Unavailable(String),
    /// A rule that spans prompts refused the events; nothing was written.
    #[error(transparent)]
    Refused(DomainError),
}

enum Job {
    Append(AppendRequest, oneshot::Sender<Result<Appended, AppendError>>),
    /// Fold the log into the catalog ahead of the first write.
    Prepare,
}

/// Handle to the task that owns appends for this process.
#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
    head: watch::Receiver<i64>,
}

impl Writer {
    /// Starts the writer task. It ends when the last handle is dropped.
    pub fn start(db: Db) -> Self {
        let (jobs, rx) = mpsc::channel(4096);
        let (head_tx, head) = watch::channel(0);
        tokio::spawn(run(db, rx, head_tx));
        Self { jobs, head }
    }

    /// Folds the log into the writer's catalog now, in the background, so that the
    /// first write after a start on a long log does not wait for it (a server calls it
    /// once at start; without it the first write that needs the catalog folds it).
    pub fn prepare(&self) {
        let _ = self.jobs.try_send(Job::Prepare);
    }

    /// Appends the request's events atomically, or none of them.
    pub async fn append(&self, request: AppendRequest) -> Result<Appended, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Append(request, reply))
            .await
            .map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?;
        answer.await.map_err(|_| AppendError::Unavailable("the writer has stopped".into()))?
    }

    /// The highest position this process has appended; changes after every commit.
    pub fn appended(&self) -> watch::Receiver<i64> {
        self.head.clone()
    }
}

async fn run(db: Db, mut rx: mpsc::Receiver<Job>, head: watch::Sender<i64>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut catalog = Catalog::default();
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let mut requests = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match job {
                Job::Append(request, reply) => {
                    requests.push(request);
                    replies.push(reply);
                }
                Job::Prepare => {
                    if let Err(e) = crate::append::prepare(&db, &mut catalog).await {
                        tracing::warn!(error = %e, "could not read the log ahead of the first write; it will be read then");
                    }
                }
            }
        }
        if requests.is_empty() {
            continue;
        }
        match db.append_batch(&requests, &mut catalog).await {
            Ok(results) => {
                let last = results.iter().filter_map(|r| r.as_ref().ok()).map(Appended::last_position).max();
                if let Some(last) = last {
                    head.send_if_modified(|h| {
                        let moved = last > *h;
                        *h = (*h).max(last);
                        moved
                    });
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "append transaction failed; nothing was written");
                let message = e.to_string();
                for reply in replies {
                    let _ = reply.send(Err(AppendError::Unavailable(message.clone())));
                }
            }
        }
    }
}
