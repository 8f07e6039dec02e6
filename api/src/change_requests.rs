//! Change requests on the write side: opening one (each change checked against what its
//! prompt is now), approving one (against what is served now), and applying one, which
//! decides on the request's stream and on the stream of every prompt it changes, all held
//! at once, and appends their events in one transaction: all or none. The scheduler that
//! applies scheduled requests and expires old ones is in [`scheduler`].

pub mod scheduler;

use crate::commands::{CommandError, Commands, Locked, Outcome};
use chrono::{DateTime, Utc};
use promptos_core::aggregate::{Aggregate, ChangeRequests, Prompts};
use promptos_core::change_request::{
    change_request_stream, Change, ChangeRequest, ChangeRequestCommand, ChangeRequestState, Comment, EventRef, Served,
    Title,
};
use promptos_core::events::prompt_stream;
use promptos_core::experiment::SplitVariant;
use promptos_core::names::{Description, EnvironmentName, PromptName, VersionString};
use promptos_core::{DomainError, Event};
use promptos_store::{AppendError, AppendRequest, Metadata, StoredEvent};
use uuid::Uuid;

/// Attempts at applying when other writers keep changing the streams involved.
const MAX_ATTEMPTS: usize = 5;

/// A change as proposed: a rollback may leave its target to be found.
#[derive(Debug, Clone)]
pub enum Proposed {
    Deploy { prompt_name: PromptName, version_string: VersionString },
    Rollback { prompt_name: PromptName, to: Option<VersionString> },
    StartExperiment { prompt_name: PromptName, variants: Vec<SplitVariant> },
    ChangeExperimentWeights { prompt_name: PromptName, variants: Vec<SplitVariant> },
    StopExperiment { prompt_name: PromptName, keep: VersionString },
}

impl Proposed {
    fn prompt_name(&self) -> &PromptName {
        match self {
            Proposed::Deploy { prompt_name, .. }
            | Proposed::Rollback { prompt_name, .. }
            | Proposed::StartExperiment { prompt_name, .. }
            | Proposed::ChangeExperimentWeights { prompt_name, .. }
            | Proposed::StopExperiment { prompt_name, .. } => prompt_name,
        }
    }
}

/// What someone asks for when opening a request.
#[derive(Debug, Clone)]
pub struct Opening {
    pub environment: EnvironmentName,
    pub title: Title,
    pub description: Description,
    pub changes: Vec<Proposed>,
    pub schedule: Option<DateTime<Utc>>,
}

fn does_not_apply(index: usize, change: String, reason: DomainError, name: &PromptName) -> DomainError {
    let reason = match reason {
        DomainError::PromptNotFound(n) if n.is_empty() => DomainError::PromptNotFound(name.to_string()),
        other => other,
    };
    DomainError::ChangeDoesNotApply { index, change, reason: Box::new(reason) }
}

/// How requests are opened: the policy and the time they stay open.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Approvals a request needs, per environment with a policy (1 elsewhere).
    pub approvals: std::collections::BTreeMap<EnvironmentName, u8>,
    pub ttl: chrono::Duration,
}

/// Opens a request. Every change must apply to its prompt as it is now (and change
/// something); a rollback is pinned to the version it would return to now.
pub async fn open(
    commands: &Commands,
    policy: &Policy,
    opening: Opening,
    meta: Metadata,
    now: DateTime<Utc>,
) -> Result<Outcome<ChangeRequestState>, CommandError> {
    let ctx = commands.context();
    let env = opening.environment;
    ctx.check_environment(&env)?;
    let mut changes = Vec::with_capacity(opening.changes.len());
    let mut served = Vec::with_capacity(opening.changes.len());
    for (index, proposed) in opening.changes.into_iter().enumerate() {
        let name = proposed.prompt_name().clone();
        let state = commands.prompts.current(prompt_stream(&name)).await?;
        let change = match proposed {
            Proposed::Deploy { prompt_name, version_string } => Change::Deploy { prompt_name, version_string },
            Proposed::Rollback { prompt_name, to: Some(to) } => Change::Rollback { prompt_name, to_version_string: to },
            Proposed::Rollback { prompt_name, to: None } => {
                let command = promptos_core::prompt::PromptCommand::Rollback { environment: env.clone(), to: None };
                let events = Prompts::decide(&state, ctx, command)
                    .map_err(|e| does_not_apply(index, format!("roll {name} back"), e, &name))?;
                let target = events.iter().find_map(|e| match e {
                    Event::DeploymentRolledBack(r) => Some(r.to_version_string.clone()),
                    _ => None,
                });
                let target = target.ok_or_else(|| {
                    let reason =
                        DomainError::NothingToRollBack { prompt: name.to_string(), environment: env.to_string() };
                    does_not_apply(index, format!("roll {name} back"), reason, &name)
                })?;
                Change::Rollback { prompt_name, to_version_string: target }
            }
            Proposed::StartExperiment { prompt_name, variants } => {
                Change::StartExperiment { prompt_name, experiment_id: Uuid::new_v4(), variants }
            }
            Proposed::ChangeExperimentWeights { prompt_name, variants } => {
                Change::ChangeExperimentWeights { prompt_name, variants }
            }
            Proposed::StopExperiment { prompt_name, keep } => Change::StopExperiment { prompt_name, keep },
        };
        let events = Prompts::decide(&state, ctx, change.command(&env))
            .map_err(|e| does_not_apply(index, change.describe(), e, &name))?;
        if events.is_empty() {
            let reason =
                DomainError::AlreadyLive { version: change.target().to_string(), environment: env.to_string() };
            return Err(does_not_apply(index, change.describe(), reason, &name).into());
        }
        served.push(Served::of(&state, &name, &env));
        changes.push(change);
    }
    let request_id = Uuid::new_v4();
    let command = ChangeRequestCommand::Open {
        request_id,
        approvals_required: policy.approvals.get(&env).copied().unwrap_or(1),
        environment: env,
        title: opening.title,
        description: opening.description,
        author: meta.actor.clone(),
        changes,
        served,
        expires_at: now + policy.ttl,
        schedule: opening.schedule,
        now,
    };
    commands.change_requests.execute(change_request_stream(&request_id), command, meta).await
}

/// The request's state now, read to the end of the log.
pub async fn current(commands: &Commands, id: &Uuid) -> Result<ChangeRequest, CommandError> {
    let state = commands.change_requests.current(change_request_stream(id)).await?;
    state.0.ok_or_else(|| DomainError::ChangeRequestNotFound(id.to_string()).into())
}

/// What the request's prompts serve in its environment now.
pub async fn served_now(commands: &Commands, request: &ChangeRequest) -> Result<Vec<Served>, CommandError> {
    let mut served = Vec::with_capacity(request.changes.len());
    for change in &request.changes {
        let name = change.prompt_name();
        let state = commands.prompts.current(prompt_stream(name)).await?;
        served.push(Served::of(&state, name, &request.environment));
    }
    Ok(served)
}

/// Approves against what is served now: the approval counts while that stays so.
pub async fn approve(
    commands: &Commands,
    id: &Uuid,
    comment: Option<Comment>,
    meta: Metadata,
    now: DateTime<Utc>,
) -> Result<Outcome<ChangeRequestState>, CommandError> {
    let request = current(commands, id).await?;
    let served = served_now(commands, &request).await?;
    let command = ChangeRequestCommand::Approve { approver: meta.actor.clone(), comment, served, now };
    commands.change_requests.execute(change_request_stream(id), command, meta).await
}

/// What applying appended: every event, in log order (the deployments, then
/// `ChangeRequestApplied`).
#[derive(Debug)]
pub struct Applied {
    pub events: Vec<StoredEvent>,
    pub position: i64,
}

/// Applies the request now, or (`by_schedule`) only if its scheduled time has come;
/// `None` when the scheduler finds it not due.
pub async fn apply(
    commands: &Commands,
    id: &Uuid,
    meta: Metadata,
    now: DateTime<Utc>,
    by_schedule: bool,
) -> Result<Option<Applied>, CommandError> {
    let stream = change_request_stream(id);
    for _ in 0..MAX_ATTEMPTS {
        // The request first, then its prompts in name order: every command that holds
        // more than one stream takes them in this order, so none waits on another.
        let mut request = commands.change_requests.lock(&stream).await?;
        let Some(r) = request.state().0.clone() else {
            return Err(DomainError::ChangeRequestNotFound(id.to_string()).into());
        };
        let mut names: Vec<&PromptName> = r.changes.iter().map(Change::prompt_name).collect();
        names.sort();
        let mut prompts: Vec<Locked<Prompts>> = Vec::with_capacity(names.len());
        for name in names {
            prompts.push(commands.prompts.lock(&prompt_stream(name)).await?);
        }
        let held = |name: &PromptName| prompts.iter().position(|p| p.stream_id == prompt_stream(name)).expect("held");
        let served: Vec<Served> = r
            .changes
            .iter()
            .map(|c| Served::of(prompts[held(c.prompt_name())].state(), c.prompt_name(), &r.environment))
            .collect();

        // The request's own rules first: a closed or unapproved request says so, not
        // that one of its changes no longer applies.
        let decided = decide_apply(commands, &request, &prompts, &r, served, &meta, now, by_schedule);
        let group = match decided {
            Ok(Some(group)) => group,
            Ok(None) => return Ok(None),
            Err(refusal) => {
                // The streams were read one after another, not as one snapshot: another
                // apply may have committed in between (the request applied, its prompts
                // moved). Refuse only on what is still the latest of every stream.
                let mut moved = commands.change_requests.refresh(&mut request).await?;
                for p in &mut prompts {
                    moved |= commands.prompts.refresh(p).await?;
                }
                if moved {
                    continue;
                }
                return Err(refusal.into());
            }
        };
        match commands.writer().append_all(group).await {
            Ok(appended) => {
                let mut all = Vec::new();
                for a in &appended {
                    let stream_id = &a.events[0].stream_id;
                    if *stream_id == stream {
                        request.record(&a.events)?;
                    } else if let Some(p) = prompts.iter_mut().find(|p| &p.stream_id == stream_id) {
                        p.record(&a.events)?;
                    }
                    all.extend(a.events.iter().cloned());
                }
                let position = all.last().map_or(0, |e| e.position);
                return Ok(Some(Applied { events: all, position }));
            }
            Err(AppendError::Conflict { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(CommandError::Conflict(stream))
}

/// The request's `Apply` and its changes, decided on the held streams: the group to
/// append, or `None` when the scheduler finds the request not due.
#[allow(clippy::too_many_arguments)]
fn decide_apply(
    commands: &Commands,
    request: &Locked<ChangeRequests>,
    prompts: &[Locked<Prompts>],
    r: &ChangeRequest,
    served: Vec<Served>,
    meta: &Metadata,
    now: DateTime<Utc>,
    by_schedule: bool,
) -> Result<Option<Vec<AppendRequest>>, DomainError> {
    let check = ChangeRequestCommand::Apply { served: served.clone(), produced: vec![], now, by_schedule };
    if ChangeRequests::decide(request.state(), commands.context(), check)?.is_empty() {
        return Ok(None);
    }
    let (mut group, produced) = decide_changes(commands, r, prompts, meta)?;
    let command = ChangeRequestCommand::Apply { served, produced, now, by_schedule };
    let events = ChangeRequests::decide(request.state(), commands.context(), command)?;
    group.push(AppendRequest {
        stream_id: request.stream_id.clone(),
        expected_version: request.version(),
        events,
        metadata: meta.clone(),
    });
    Ok(Some(group))
}

/// Each change decided on its prompt as it is held now, in the request's order: the
/// append requests (each expecting the version it was decided on) and the events they
/// will be, by stream and version.
fn decide_changes(
    commands: &Commands,
    r: &ChangeRequest,
    prompts: &[Locked<Prompts>],
    meta: &Metadata,
) -> Result<(Vec<AppendRequest>, Vec<EventRef>), DomainError> {
    let mut group = Vec::with_capacity(r.changes.len() + 1);
    let mut produced = Vec::new();
    for (index, change) in r.changes.iter().enumerate() {
        let name = change.prompt_name();
        let p = prompts.iter().find(|p| p.stream_id == prompt_stream(name)).expect("every changed prompt is held");
        let events = Prompts::decide(p.state(), commands.context(), change.command(&r.environment))
            .map_err(|e| does_not_apply(index, change.describe(), e, name))?;
        for (i, e) in events.iter().enumerate() {
            produced.push(EventRef {
                stream_id: p.stream_id.clone(),
                stream_version: p.version() + 1 + i as i64,
                event_type: e.event_type().to_owned(),
            });
        }
        if !events.is_empty() {
            let metadata = Metadata { change_request: Some(r.request_id.to_string()), ..meta.clone() };
            group.push(AppendRequest {
                stream_id: p.stream_id.clone(),
                expected_version: p.version(),
                events,
                metadata,
            });
        }
    }
    Ok((group, produced))
}
