//! The writer: one task per process that owns appends. Requests that queue while one
//! transaction commits go into the next one together (group commit), which pays back
//! the price of one append lock for the whole log ([`crate::append`] says why there is
//! one). The writer also keeps the [`Catalog`], the write side's view for the rules
//! that span prompts.

use crate::append::fold;
pub use crate::append::{AppendError, AppendRequest, Appended, Group};
use crate::log::EventLog;
use crate::Db;
use promptos_core::catalog::Catalog;
use tokio::sync::{mpsc, oneshot, watch};

/// Events folded into the catalog per read while preparing it: one page is as long
/// as a queued write waits for the preparation.
const PREPARE_PAGE: i64 = 2_000;

/// Most requests committed in one transaction.
const MAX_BATCH: usize = 256;

enum Job {
    Append(Group, oneshot::Sender<Result<Vec<Appended>, AppendError>>),
    /// Fold the log into the catalog ahead of the first write, a page at a time while
    /// no write waits.
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
        let mut appended = self.append_all(vec![request]).await?;
        Ok(appended.pop().expect("one request, one answer"))
    }

    /// Appends the events of every request (each on a stream of its own) atomically:
    /// all of them, in order, or none. The answer has one entry per request.
    pub async fn append_all(&self, requests: Group) -> Result<Vec<Appended>, AppendError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Append(requests, reply))
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
    // Set by `Job::Prepare` until the catalog reached the end of the log. Writes go
    // first: a write that needs the catalog catches the rest up under the lock anyway,
    // and the others (sign-ins, keys, settings) do not need it at all.
    let mut preparing = false;
    loop {
        if preparing && rx.is_empty() {
            match prepare_page(&db, &mut catalog).await {
                Ok(more) => preparing = more,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the log ahead of the first write; it will be read then");
                    preparing = false;
                }
            }
            continue;
        }
        if rx.recv_many(&mut jobs, MAX_BATCH).await == 0 {
            break;
        }
        let mut requests = Vec::with_capacity(jobs.len());
        let mut replies = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match job {
                Job::Append(request, reply) => {
                    requests.push(request);
                    replies.push(reply);
                }
                Job::Prepare => preparing = true,
            }
        }
        if requests.is_empty() {
            continue;
        }
        match db.append_batch(&requests, &mut catalog).await {
            Ok(results) => {
                let last = results.iter().filter_map(|r| r.as_ref().ok()).flatten().map(Appended::last_position).max();
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

/// Folds the next page of the log into `catalog`, outside the append lock; says whether
/// there may be more.
async fn prepare_page(db: &Db, catalog: &mut Catalog) -> Result<bool, sqlx::Error> {
    let page = db.read_after(catalog.position(), PREPARE_PAGE).await?;
    let Some(last) = page.last().map(|e| e.position) else { return Ok(false) };
    for e in &page {
        fold(catalog, e);
    }
    catalog.set_position(last);
    Ok(page.len() as i64 == PREPARE_PAGE)
}
