//! The rules of a change request's own stream. What spans prompts (that a change still
//! applies, what each prompt serves now) is computed by the caller from the prompts'
//! streams, under their locks, and passed in; the append checks those streams' versions.

use super::*;
use crate::events::Event;
use crate::names::Description;
use crate::DomainError;
use chrono::{DateTime, Utc};

/// A change request's stream, folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChangeRequestState(pub Option<ChangeRequest>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Applied,
    Rejected,
    Withdrawn,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Applied => "applied",
            Status::Rejected => "rejected",
            Status::Withdrawn => "withdrawn",
            Status::Expired => "expired",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub approver: String,
    pub served: Vec<Served>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeRequest {
    pub request_id: Uuid,
    pub environment: EnvironmentName,
    pub author: String,
    pub changes: Vec<Change>,
    pub approvals_required: u8,
    pub expires_at: DateTime<Utc>,
    /// What was served when it was opened.
    pub opened_served: Vec<Served>,
    /// Every approval, in order (an admin who approves again replaces their earlier one).
    pub approvals: Vec<Approval>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub status: Status,
}

impl ChangeRequest {
    /// The admins whose approval counts against what is `served` now.
    pub fn current_approvers<'a>(&'a self, served: &[Served]) -> Vec<&'a str> {
        self.approvals.iter().filter(|a| a.served == served).map(|a| a.approver.as_str()).collect()
    }

    /// What the latest review saw: the newest approval's view, or the opening's.
    pub fn reviewed(&self) -> &[Served] {
        self.approvals.last().map_or(&self.opened_served, |a| &a.served)
    }

    /// What moved since the latest review, one line per prompt ("bot: v2 → v3").
    pub fn moved(&self, served: &[Served]) -> Vec<String> {
        self.reviewed()
            .iter()
            .zip(served)
            .filter(|(then, now)| then != now)
            .map(|(then, now)| format!("{}: {} → {}", now.prompt_name, then.describe(), now.describe()))
            .collect()
    }

    /// True when the request can be applied now, as far as reviews go.
    pub fn approved(&self, served: &[Served]) -> bool {
        self.current_approvers(served).len() >= usize::from(self.approvals_required)
    }

    fn expired(&self, now: DateTime<Utc>) -> bool {
        now >= self.expires_at
    }

    fn open(&self, now: DateTime<Utc>) -> Result<(), DomainError> {
        if self.status != Status::Open {
            return Err(DomainError::ChangeRequestClosed {
                id: self.request_id.to_string(),
                status: self.status.as_str().into(),
            });
        }
        if self.expired(now) {
            return Err(DomainError::ChangeRequestExpired {
                id: self.request_id.to_string(),
                at: self.expires_at.to_rfc3339(),
            });
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub enum ChangeRequestCommand {
    /// `request_id` (and each split's experiment id) is chosen by the caller so that
    /// `decide` stays deterministic; `served` is what each change's prompt serves now.
    Open {
        request_id: Uuid,
        environment: EnvironmentName,
        title: Title,
        description: Description,
        author: String,
        changes: Vec<Change>,
        served: Vec<Served>,
        approvals_required: u8,
        expires_at: DateTime<Utc>,
        schedule: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    Approve {
        approver: String,
        comment: Option<Comment>,
        served: Vec<Served>,
        now: DateTime<Utc>,
    },
    Reject {
        comment: Option<Comment>,
        now: DateTime<Utc>,
    },
    Comment {
        comment: Comment,
    },
    /// Only the author or an admin (`by_admin`) may schedule or withdraw.
    Schedule {
        by: String,
        by_admin: bool,
        at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    },
    Withdraw {
        by: String,
        by_admin: bool,
    },
    /// `produced` are the deployment events appended with it; `by_schedule` when the
    /// scheduler applies it (then only once its time has come).
    Apply {
        served: Vec<Served>,
        produced: Vec<EventRef>,
        now: DateTime<Utc>,
        by_schedule: bool,
    },
    Expire {
        now: DateTime<Utc>,
    },
}

fn invalid(field: &'static str, message: impl Into<String>) -> DomainError {
    DomainError::InvalidChangeRequest { field, message: message.into() }
}

pub fn decide(state: &ChangeRequestState, command: ChangeRequestCommand) -> Result<Vec<Event>, DomainError> {
    use ChangeRequestCommand as C;
    if let C::Open {
        request_id,
        environment,
        title,
        description,
        author,
        changes,
        served,
        approvals_required,
        expires_at,
        schedule,
        now,
    } = command
    {
        if state.0.is_some() {
            return Err(invalid("request_id", format!("change request {request_id} already exists")));
        }
        if changes.is_empty() || changes.len() > MAX_CHANGES {
            return Err(invalid(
                "changes",
                format!("a change request holds 1 to {MAX_CHANGES} changes (got {})", changes.len()),
            ));
        }
        for (i, c) in changes.iter().enumerate() {
            if changes[..i].iter().any(|d| d.prompt_name() == c.prompt_name()) {
                return Err(invalid(
                    "changes",
                    format!(
                        "prompt {:?} appears in more than one change; one change per prompt",
                        c.prompt_name().as_str()
                    ),
                ));
            }
        }
        if let Some(at) = schedule {
            check_schedule(at, now, expires_at)?;
        }
        let mut events = vec![Event::ChangeRequestOpened(ChangeRequestOpened {
            request_id,
            environment: environment.clone(),
            title,
            description,
            author,
            changes,
            served,
            approvals_required: approvals_required.max(1),
            expires_at,
        })];
        if schedule.is_some() {
            events.push(Event::ChangeRequestScheduled(ChangeRequestScheduled {
                request_id,
                environment,
                at: schedule,
            }));
        }
        return Ok(events);
    }
    let Some(r) = &state.0 else { return Err(DomainError::ChangeRequestNotFound(String::new())) };
    let (request_id, environment) = (r.request_id, r.environment.clone());
    match command {
        C::Open { .. } => unreachable!("handled above"),
        C::Approve { approver, comment, served, now } => {
            r.open(now)?;
            if approver == r.author {
                return Err(DomainError::OwnChangeRequest);
            }
            let again = r.approvals.iter().any(|a| a.approver == approver && a.served == served);
            if again && comment.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![Event::ChangeRequestApproved(ChangeRequestApproved {
                request_id,
                environment,
                approver,
                comment,
                served,
            })])
        }
        C::Reject { comment, now } => {
            r.open(now)?;
            Ok(vec![Event::ChangeRequestRejected(ChangeRequestRejected { request_id, environment, comment })])
        }
        C::Comment { comment } => {
            Ok(vec![Event::ChangeRequestCommented(ChangeRequestCommented { request_id, environment, comment })])
        }
        C::Schedule { by, by_admin, at, now } => {
            r.open(now)?;
            if by != r.author && !by_admin {
                return Err(DomainError::NotYourChangeRequest);
            }
            if let Some(at) = at {
                check_schedule(at, now, r.expires_at)?;
            }
            if at == r.scheduled_at {
                return Ok(vec![]);
            }
            Ok(vec![Event::ChangeRequestScheduled(ChangeRequestScheduled { request_id, environment, at })])
        }
        C::Withdraw { by, by_admin } => {
            if r.status != Status::Open {
                return Err(DomainError::ChangeRequestClosed {
                    id: request_id.to_string(),
                    status: r.status.as_str().into(),
                });
            }
            if by != r.author && !by_admin {
                return Err(DomainError::NotYourChangeRequest);
            }
            Ok(vec![Event::ChangeRequestWithdrawn(ChangeRequestWithdrawn { request_id, environment })])
        }
        C::Apply { served, produced, now, by_schedule } => {
            r.open(now)?;
            let scheduled_for = match (by_schedule, r.scheduled_at) {
                (false, _) => None,
                (true, Some(at)) if at <= now => Some(at),
                // Not (or no longer) due: the scheduler has nothing to do.
                (true, _) => return Ok(vec![]),
            };
            if !r.approved(&served) {
                let moved = r.moved(&served);
                if !moved.is_empty() {
                    return Err(DomainError::ChangeRequestOutdated { moved: moved.join("; ") });
                }
                return Err(DomainError::ApprovalsMissing {
                    have: r.current_approvers(&served).len(),
                    need: usize::from(r.approvals_required),
                });
            }
            Ok(vec![Event::ChangeRequestApplied(ChangeRequestApplied {
                request_id,
                environment,
                produced,
                scheduled_for,
                delay_ms: scheduled_for.map(|at| (now - at).num_milliseconds().max(0)),
            })])
        }
        C::Expire { now } => {
            if r.status != Status::Open || !r.expired(now) {
                return Ok(vec![]);
            }
            Ok(vec![Event::ChangeRequestExpired(ChangeRequestExpired { request_id, environment })])
        }
    }
}

fn check_schedule(at: DateTime<Utc>, now: DateTime<Utc>, expires_at: DateTime<Utc>) -> Result<(), DomainError> {
    if at <= now {
        return Err(invalid("at", format!("{} is in the past; schedule a time to come", at.to_rfc3339())));
    }
    if at >= expires_at {
        return Err(invalid(
            "at",
            format!("the request expires at {}; schedule it before then", expires_at.to_rfc3339()),
        ));
    }
    Ok(())
}

/// Folds one event of a change request's stream into its state.
pub fn evolve(state: ChangeRequestState, event: &Event) -> ChangeRequestState {
    let ChangeRequestState(current) = state;
    let next = match (current, event) {
        (_, Event::ChangeRequestOpened(e)) => Some(ChangeRequest {
            request_id: e.request_id,
            environment: e.environment.clone(),
            author: e.author.clone(),
            changes: e.changes.clone(),
            approvals_required: e.approvals_required,
            expires_at: e.expires_at,
            opened_served: e.served.clone(),
            approvals: Vec::new(),
            scheduled_at: None,
            status: Status::Open,
        }),
        (Some(mut r), e) => {
            match e {
                Event::ChangeRequestApproved(e) => {
                    r.approvals.retain(|a| a.approver != e.approver);
                    r.approvals.push(Approval { approver: e.approver.clone(), served: e.served.clone() });
                }
                Event::ChangeRequestScheduled(e) => r.scheduled_at = e.at,
                Event::ChangeRequestApplied(_) => r.status = Status::Applied,
                Event::ChangeRequestRejected(_) => r.status = Status::Rejected,
                Event::ChangeRequestWithdrawn(_) => r.status = Status::Withdrawn,
                Event::ChangeRequestExpired(_) => r.status = Status::Expired,
                _ => {}
            }
            Some(r)
        }
        (None, _) => None,
    };
    ChangeRequestState(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn name(s: &str) -> PromptName {
        PromptName::parse(s).unwrap()
    }
    fn served(v: &str) -> Vec<Served> {
        vec![Served {
            prompt_name: name("bot"),
            prompt_id: Some(Uuid::nil()),
            version_string: Some(VersionString::parse(v).unwrap()),
            experiment: None,
        }]
    }
    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-05T09:00:00Z").unwrap().into()
    }
    fn opened(required: u8) -> ChangeRequestState {
        let events = decide(
            &ChangeRequestState::default(),
            ChangeRequestCommand::Open {
                request_id: Uuid::nil(),
                environment: EnvironmentName::parse("production").unwrap(),
                title: Title::parse("Ship v2").unwrap(),
                description: Description::parse("").unwrap(),
                author: "user:ed".into(),
                changes: vec![Change::Deploy {
                    prompt_name: name("bot"),
                    version_string: VersionString::parse("v2").unwrap(),
                }],
                served: served("v1"),
                approvals_required: required,
                expires_at: now() + Duration::days(7),
                schedule: None,
                now: now(),
            },
        )
        .unwrap();
        events.iter().fold(ChangeRequestState::default(), evolve)
    }
    fn run(state: ChangeRequestState, command: ChangeRequestCommand) -> Result<ChangeRequestState, DomainError> {
        Ok(decide(&state, command)?.iter().fold(state, evolve))
    }
    fn approve(by: &str, v: &str) -> ChangeRequestCommand {
        ChangeRequestCommand::Approve { approver: by.into(), comment: None, served: served(v), now: now() }
    }
    fn apply(v: &str) -> ChangeRequestCommand {
        ChangeRequestCommand::Apply { served: served(v), produced: vec![], now: now(), by_schedule: false }
    }

    #[test]
    fn the_author_cannot_approve_and_each_admin_counts_once() {
        let s = opened(2);
        assert_eq!(run(s.clone(), approve("user:ed", "v1")).unwrap_err(), DomainError::OwnChangeRequest);
        let s = run(s, approve("user:ada", "v1")).unwrap();
        let s = run(s, approve("user:ada", "v1")).unwrap();
        assert!(matches!(run(s.clone(), apply("v1")), Err(DomainError::ApprovalsMissing { have: 1, need: 2 })));
        let s = run(s, approve("user:bo", "v1")).unwrap();
        let s = run(s, apply("v1")).unwrap();
        assert_eq!(s.0.as_ref().unwrap().status, Status::Applied);
        assert!(matches!(run(s, apply("v1")), Err(DomainError::ChangeRequestClosed { .. })));
    }

    #[test]
    fn a_deploy_by_someone_else_makes_it_outdated_until_approved_afresh() {
        let s = run(opened(1), approve("user:ada", "v1")).unwrap();
        let Err(DomainError::ChangeRequestOutdated { moved }) = run(s.clone(), apply("v3")) else { panic!() };
        assert_eq!(moved, "bot: v1 → v3");
        let s = run(s, approve("user:ada", "v3")).unwrap();
        assert!(run(s, apply("v3")).is_ok());
    }

    #[test]
    fn closed_or_expired_requests_do_not_change() {
        let s = run(opened(1), approve("user:ada", "v1")).unwrap();
        let late = ChangeRequestCommand::Apply {
            served: served("v1"),
            produced: vec![],
            now: now() + Duration::days(8),
            by_schedule: false,
        };
        assert!(matches!(run(s.clone(), late), Err(DomainError::ChangeRequestExpired { .. })));
        let expired = run(s.clone(), ChangeRequestCommand::Expire { now: now() + Duration::days(8) }).unwrap();
        assert_eq!(expired.0.unwrap().status, Status::Expired);
        let rejected = run(s.clone(), ChangeRequestCommand::Reject { comment: None, now: now() }).unwrap();
        assert!(matches!(run(rejected, apply("v1")), Err(DomainError::ChangeRequestClosed { .. })));
        let withdraw = |by: &str, by_admin| ChangeRequestCommand::Withdraw { by: by.into(), by_admin };
        assert_eq!(run(s.clone(), withdraw("user:other", false)).unwrap_err(), DomainError::NotYourChangeRequest);
        let withdrawn = run(s, withdraw("user:ed", false)).unwrap();
        assert!(matches!(run(withdrawn, apply("v1")), Err(DomainError::ChangeRequestClosed { .. })));
    }

    #[test]
    fn the_scheduler_applies_only_when_due_and_records_the_delay() {
        let at = now() + Duration::hours(1);
        let s = ChangeRequestCommand::Schedule { by: "user:ed".into(), by_admin: false, at: Some(at), now: now() };
        let s = run(run(opened(1), approve("user:ada", "v1")).unwrap(), s).unwrap();
        let by_schedule =
            |t| ChangeRequestCommand::Apply { served: served("v1"), produced: vec![], now: t, by_schedule: true };
        assert_eq!(decide(&s, by_schedule(now())).unwrap(), vec![]);
        let events = decide(&s, by_schedule(at + Duration::seconds(90))).unwrap();
        let [Event::ChangeRequestApplied(e)] = events.as_slice() else { panic!("{events:?}") };
        assert_eq!((e.scheduled_for, e.delay_ms), (Some(at), Some(90_000)));
        let past =
            ChangeRequestCommand::Schedule { by: "user:ed".into(), by_admin: false, at: Some(now()), now: now() };
        assert!(matches!(run(s, past), Err(DomainError::InvalidChangeRequest { field: "at", .. })));
    }
}
