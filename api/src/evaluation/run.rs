//! Running an evaluation: every test case of the run rendered against the version, sent
//! to the provider (a few at a time), its answer checked; progress published as each
//! case finishes; the outcome recorded as one `EvaluationCompleted` event.
//!
//! A case that does not render, or gets no answer (a timeout after the retries), fails
//! with the reason and the run goes on. The cost guard stops sending cases once the run
//! has used its token budget; the cases left fail with that reason.

use super::expect::{self, Compiled};
use super::render::{render, RenderError};
use crate::llm::{self, Completion, Message, Policy, Provider};
use futures::StreamExt;
use promptos_core::content::ChatMessage;
use promptos_core::evaluation::{excerpt, CaseOutcome, CheckOutcome, TestCase};
use promptos_projector::views::VersionRow;
use promptos_store::Db;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;
use uuid::Uuid;

/// The longest a run may take; cases not done by then fail with that reason, and a run
/// still marked running after it was interrupted (the server stopped).
pub const MAX_RUN: Duration = Duration::from_secs(3600);

/// What a run is allowed to spend and how fast it goes.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub concurrency: usize,
    pub max_tokens: u64,
}

/// Everything a run needs besides its cases.
pub struct Job {
    pub evaluation_id: Uuid,
    pub prompt: String,
    pub environment: String,
    pub version: VersionRow,
    pub provider: Arc<dyn Provider>,
    pub model: String,
    pub judge_model: String,
    pub http: reqwest::Client,
    pub policy: Policy,
    pub limits: Limits,
}

/// One step of a run, as its progress stream (SSE) carries it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Progress {
    /// A case finished (passed or not); `done` of `total` have.
    Case { done: usize, total: usize, outcome: CaseOutcome },
    /// The run is recorded.
    Completed { passed: u32, total: u32, stopped: Option<String> },
}

/// What a finished run produced, to be recorded.
pub struct Finished {
    pub outcomes: Vec<CaseOutcome>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub duration_ms: u64,
    pub stopped: Option<String>,
}

/// The runs this process is running, so a progress stream can follow one.
#[derive(Default)]
pub struct Runs {
    live: Mutex<HashMap<Uuid, Live>>,
}

struct Live {
    sender: broadcast::Sender<Progress>,
    /// What happened so far, for a subscriber that comes late.
    so_far: Vec<Progress>,
}

impl Runs {
    fn begin(&self, id: Uuid) {
        let (sender, _) = broadcast::channel(1024);
        self.live.lock().expect("runs lock").insert(id, Live { sender, so_far: Vec::new() });
    }

    fn publish(&self, id: Uuid, step: Progress) {
        if let Some(live) = self.live.lock().expect("runs lock").get_mut(&id) {
            live.so_far.push(step.clone());
            let _ = live.sender.send(step);
        }
    }

    /// Ends a run's stream once its completion is recorded.
    pub fn end(&self, id: Uuid, step: Progress) {
        if let Some(live) = self.live.lock().expect("runs lock").remove(&id) {
            let _ = live.sender.send(step);
        }
    }

    /// What the run did so far and a receiver for the rest, if this process runs it.
    pub fn follow(&self, id: Uuid) -> Option<(Vec<Progress>, broadcast::Receiver<Progress>)> {
        let live = self.live.lock().expect("runs lock");
        live.get(&id).map(|l| (l.so_far.clone(), l.sender.subscribe()))
    }
}

/// The question a judge is shown: the last user message sent, or all of them.
fn question_of(messages: &[ChatMessage]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.role == promptos_core::content::ChatRole::User)
        .map(|m| m.content.clone())
        .unwrap_or_else(|| messages.iter().map(|m| m.content.as_str()).collect::<Vec<_>>().join("\n\n"))
}

struct Spent {
    input: AtomicU64,
    output: AtomicU64,
}

impl Spent {
    fn add(&self, input: u64, output: u64) {
        self.input.fetch_add(input, Ordering::Relaxed);
        self.output.fetch_add(output, Ordering::Relaxed);
    }
    fn total(&self) -> u64 {
        self.input.load(Ordering::Relaxed) + self.output.load(Ordering::Relaxed)
    }
}

fn failed(case: &TestCase, error: String, latency_ms: u64) -> CaseOutcome {
    CaseOutcome {
        case_id: case.case_id,
        case_name: case.name.to_string(),
        passed: false,
        answer_excerpt: String::new(),
        error: Some(error),
        checks: vec![],
        latency_ms,
        input_tokens: None,
        output_tokens: None,
    }
}

async fn run_case(db: &Db, job: &Job, case: &TestCase, spent: &Spent, deadline: Instant) -> CaseOutcome {
    if spent.total() >= job.limits.max_tokens {
        let why = format!(
            "not run: the evaluation used its token budget ({} tokens, PROMPTOS_EVAL_MAX_TOKENS)",
            job.limits.max_tokens
        );
        return failed(case, why, 0);
    }
    if Instant::now() >= deadline {
        return failed(case, format!("not run: the evaluation took longer than {} minutes", MAX_RUN.as_secs() / 60), 0);
    }
    let compiled = match expect::compile(&case.expectations) {
        Ok(c) => c,
        Err(e) => return failed(case, e.message, 0),
    };
    let rendered = match render(db, &job.prompt, &job.environment, &job.version, &case.variables, &case.messages).await
    {
        Ok(r) => r,
        Err(e @ RenderError::Unavailable(_)) => return failed(case, e.to_string(), 0),
        Err(e) => return failed(case, format!("does not render: {e}"), 0),
    };
    let messages: Vec<Message> = rendered
        .messages
        .iter()
        .map(|m| Message { role: m.role.as_str().to_owned(), content: m.content.clone() })
        .collect();
    let completion = Completion { model: &job.model, messages: &messages, config: rendered.config.as_ref() };
    let started = Instant::now();
    let answer = llm::complete(job.provider.as_ref(), &job.http, job.policy, &completion).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return failed(case, format!("no answer: {e}"), latency_ms),
    };
    let (input_tokens, output_tokens) = (answer.input_tokens.unwrap_or(0), answer.output_tokens.unwrap_or(0));
    spent.add(input_tokens, output_tokens);
    let mut checks: Vec<CheckOutcome> = Vec::with_capacity(compiled.len());
    for expectation in &compiled {
        match expectation {
            Compiled::Judge(rubric) => {
                let question = question_of(&rendered.messages);
                let (check, i, o) = super::judge::judge(
                    job.provider.as_ref(),
                    &job.http,
                    job.policy,
                    &job.judge_model,
                    rubric,
                    &question,
                    &answer.text,
                )
                .await;
                spent.add(i, o);
                checks.push(check);
            }
            other => checks.extend(expect::check(other, &answer.text)),
        }
    }
    CaseOutcome {
        case_id: case.case_id,
        case_name: case.name.to_string(),
        passed: checks.iter().all(|c| c.passed),
        answer_excerpt: excerpt(&answer.text),
        error: None,
        checks,
        latency_ms,
        input_tokens: answer.input_tokens,
        output_tokens: answer.output_tokens,
    }
}

/// Runs every case, publishing each outcome as it lands; the outcomes come back in the
/// cases' order.
pub async fn run(db: Db, runs: Arc<Runs>, job: Job, cases: Vec<Arc<TestCase>>) -> Finished {
    let started = Instant::now();
    let deadline = started + MAX_RUN;
    let total = cases.len();
    let (evaluation_id, concurrency, max_tokens) =
        (job.evaluation_id, job.limits.concurrency.max(1), job.limits.max_tokens);
    let job = Arc::new(job);
    let spent = Arc::new(Spent { input: AtomicU64::new(0), output: AtomicU64::new(0) });
    runs.begin(evaluation_id);
    let mut done = 0;
    let mut outcomes: Vec<(usize, CaseOutcome)> = Vec::with_capacity(total);
    let futures = cases.into_iter().enumerate().map(|(i, case)| {
        let (db, job, spent) = (db.clone(), job.clone(), spent.clone());
        async move { (i, run_case(&db, &job, &case, &spent, deadline).await) }
    });
    let mut pending = futures::stream::iter(futures).buffer_unordered(concurrency);
    while let Some((i, outcome)) = pending.next().await {
        done += 1;
        runs.publish(evaluation_id, Progress::Case { done, total, outcome: outcome.clone() });
        outcomes.push((i, outcome));
    }
    outcomes.sort_by_key(|(i, _)| *i);
    let cut_short = outcomes.iter().any(|(_, o)| o.error.as_deref().is_some_and(|e| e.starts_with("not run")));
    let stopped = cut_short.then(|| {
        if spent.total() >= max_tokens {
            format!("the token budget of {max_tokens} was reached (PROMPTOS_EVAL_MAX_TOKENS)")
        } else {
            format!("the run took longer than {} minutes", MAX_RUN.as_secs() / 60)
        }
    });
    Finished {
        outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
        input_tokens: spent.input.load(Ordering::Relaxed),
        output_tokens: spent.output.load(Ordering::Relaxed),
        duration_ms: started.elapsed().as_millis() as u64,
        stopped,
    }
}
