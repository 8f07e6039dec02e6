//! The prompt aggregate: the state a command is checked against, the commands, and the
//! two pure functions of the decider pattern.

use crate::events::*;
use crate::names::{CommitMessage, Description, EnvironmentName, PromptName, VersionString};
use crate::template::Template;
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// What a prompt's stream says about it now. Built only by folding events with [`evolve`].
#[derive(Debug, Clone, Default, PartialEq)]
pub enum PromptState {
    /// The name has never been used.
    #[default]
    Absent,
    Live(LivePrompt),
    /// The last incarnation was deleted; the name is free again.
    Deleted {
        prompt_id: Uuid,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct LivePrompt {
    pub prompt_id: Uuid,
    pub name: PromptName,
    pub description: Description,
    pub versions: BTreeSet<VersionString>,
    /// Per environment, the versions that were live, oldest first; the last is live now.
    /// A rollback without a target pops the stack.
    pub deployments: BTreeMap<EnvironmentName, Vec<VersionString>>,
}

impl LivePrompt {
    pub fn live_version(&self, env: &EnvironmentName) -> Option<&VersionString> {
        self.deployments.get(env).and_then(|s| s.last())
    }
}

impl PromptState {
    pub fn live(&self) -> Option<&LivePrompt> {
        match self {
            PromptState::Live(p) => Some(p),
            _ => None,
        }
    }
}

/// What the caller knows that the log does not: which environments exist.
#[derive(Debug, Clone)]
pub struct Context {
    pub environments: Vec<EnvironmentName>,
}

impl Context {
    /// Refuses an environment that is not configured, listing those that are.
    pub fn check_environment(&self, env: &EnvironmentName) -> Result<(), DomainError> {
        if self.environments.contains(env) {
            return Ok(());
        }
        let known: Vec<&str> = self.environments.iter().map(|e| e.as_str()).collect();
        Err(DomainError::UnknownEnvironment { name: env.to_string(), known: known.join(", ") })
    }
}

impl Default for Context {
    fn default() -> Self {
        Self { environments: EnvironmentName::defaults() }
    }
}

#[derive(Debug, Clone)]
pub enum PromptCommand {
    /// `prompt_id` is chosen by the caller so that `decide` stays deterministic.
    Create {
        prompt_id: Uuid,
        name: PromptName,
        description: Description,
    },
    UpdateDescription {
        description: Description,
    },
    Delete,
    CreateVersion {
        version_string: VersionString,
        template: Template,
        commit_message: Option<CommitMessage>,
        origin: Option<crate::events::VersionOrigin>,
    },
    Deploy {
        environment: EnvironmentName,
        version_string: VersionString,
    },
    Rollback {
        environment: EnvironmentName,
        to: Option<VersionString>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("user {0:?} not found")]
    UserNotFound(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("user {0:?} is disabled")]
    UserDisabled(String),
    #[error("user {username:?} already has the role {role}")]
    SameRole { username: String, role: String },
    #[error("API key {0:?} not found")]
    ApiKeyNotFound(String),
    #[error("API key {0:?} is already revoked")]
    ApiKeyRevoked(String),
    #[error("prompt {0:?} not found")]
    PromptNotFound(String),
    #[error("a prompt named {0:?} already exists")]
    PromptExists(String),
    #[error(
        "version {version:?} of prompt {prompt:?} already exists; versions are immutable, choose a new version string"
    )]
    VersionExists { prompt: String, version: String },
    #[error("prompt {prompt:?} has no version {version:?}")]
    VersionNotFound { prompt: String, version: String },
    #[error("unknown environment {name:?}; configured environments: {known}")]
    UnknownEnvironment { name: String, known: String },
    #[error("nothing to roll back to: prompt {prompt:?} has no earlier deployment in {environment:?}")]
    NothingToRollBack { prompt: String, environment: String },
    #[error("prompt {prompt:?} has nothing deployed in {environment:?}")]
    NotDeployed { prompt: String, environment: String },
    #[error("version {version:?} is already live in {environment:?}")]
    AlreadyLive { version: String, environment: String },
}

impl DomainError {
    /// The request field the error is about, if one is.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DomainError::PromptExists(_) => Some("name"),
            DomainError::VersionExists { .. } | DomainError::VersionNotFound { .. } => Some("version_string"),
            DomainError::UnknownEnvironment { .. } | DomainError::NotDeployed { .. } => Some("environment"),
            DomainError::AlreadyLive { .. } => Some("to_version_string"),
            DomainError::UserExists(_) => Some("username"),
            DomainError::SameRole { .. } => Some("role"),
            _ => None,
        }
    }
}

/// Checks `command` against `state` and returns the events that follow from it. An empty
/// list means the command changes nothing (deploying the version that is already live,
/// setting the description it already has).
pub fn decide(state: &PromptState, ctx: &Context, command: PromptCommand) -> Result<Vec<Event>, DomainError> {
    if let PromptCommand::Create { prompt_id, name, description } = command {
        return match state {
            PromptState::Live(p) => Err(DomainError::PromptExists(p.name.to_string())),
            _ => Ok(vec![Event::PromptCreated(PromptCreated { prompt_id, name, description })]),
        };
    }
    let Some(p) = state.live() else {
        // The handler knows the name it asked for; the stream has no live prompt.
        return Err(DomainError::PromptNotFound(String::new()));
    };
    let prompt_id = p.prompt_id;
    let name = p.name.clone();
    match command {
        PromptCommand::Create { .. } => unreachable!("handled above"),
        PromptCommand::UpdateDescription { description } => {
            if description == p.description {
                return Ok(vec![]);
            }
            Ok(vec![Event::PromptUpdated(PromptUpdated { prompt_id, name, description })])
        }
        PromptCommand::Delete => Ok(vec![Event::PromptDeleted(PromptDeleted { prompt_id, name })]),
        PromptCommand::CreateVersion { version_string, template, commit_message, origin } => {
            if p.versions.contains(&version_string) {
                return Err(DomainError::VersionExists {
                    prompt: name.to_string(),
                    version: version_string.to_string(),
                });
            }
            Ok(vec![Event::VersionCreated(VersionCreated {
                prompt_id,
                name,
                version_string,
                text: template.text().to_owned(),
                variables: template.variables().to_vec(),
                commit_message,
                origin,
            })])
        }
        PromptCommand::Deploy { environment, version_string } => {
            ctx.check_environment(&environment)?;
            check_version(p, &version_string)?;
            let previous = p.live_version(&environment).cloned();
            if previous.as_ref() == Some(&version_string) {
                return Ok(vec![]);
            }
            Ok(vec![Event::VersionDeployed(VersionDeployed {
                prompt_id,
                name,
                environment,
                version_string,
                previous_version_string: previous,
            })])
        }
        PromptCommand::Rollback { environment, to } => {
            ctx.check_environment(&environment)?;
            let stack = p.deployments.get(&environment).map(Vec::as_slice).unwrap_or_default();
            let Some(current) = stack.last().cloned() else {
                return Err(DomainError::NotDeployed {
                    prompt: name.to_string(),
                    environment: environment.to_string(),
                });
            };
            let target = match to {
                Some(target) => {
                    check_version(p, &target)?;
                    if target == current {
                        return Err(DomainError::AlreadyLive {
                            version: target.to_string(),
                            environment: environment.to_string(),
                        });
                    }
                    target
                }
                None => match stack.len().checked_sub(2).map(|i| stack[i].clone()) {
                    Some(previous) => previous,
                    None => {
                        return Err(DomainError::NothingToRollBack {
                            prompt: name.to_string(),
                            environment: environment.to_string(),
                        })
                    }
                },
            };
            Ok(vec![Event::DeploymentRolledBack(DeploymentRolledBack {
                prompt_id,
                name,
                environment,
                from_version_string: current,
                to_version_string: target,
            })])
        }
    }
}

fn check_version(p: &LivePrompt, v: &VersionString) -> Result<(), DomainError> {
    if p.versions.contains(v) {
        Ok(())
    } else {
        Err(DomainError::VersionNotFound { prompt: p.name.to_string(), version: v.to_string() })
    }
}

/// Folds one event into the state. Events come from the log and were valid when they
/// were decided, so this never fails.
pub fn evolve(state: PromptState, event: &Event) -> PromptState {
    match (state, event) {
        (_, Event::PromptCreated(e)) => PromptState::Live(LivePrompt {
            prompt_id: e.prompt_id,
            name: e.name.clone(),
            description: e.description.clone(),
            versions: BTreeSet::new(),
            deployments: BTreeMap::new(),
        }),
        (PromptState::Live(p), Event::PromptDeleted(_)) => PromptState::Deleted { prompt_id: p.prompt_id },
        (PromptState::Live(mut p), Event::PromptUpdated(e)) => {
            p.description = e.description.clone();
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::VersionCreated(e)) => {
            p.versions.insert(e.version_string.clone());
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::VersionDeployed(e)) => {
            p.deployments.entry(e.environment.clone()).or_default().push(e.version_string.clone());
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::DeploymentRolledBack(e)) => {
            let stack = p.deployments.entry(e.environment.clone()).or_default();
            // Without an explicit target the rollback returns to the previous entry; with
            // one it may jump anywhere, and the jump itself becomes the new top.
            if stack.len() >= 2 && stack[stack.len() - 2] == e.to_version_string {
                stack.pop();
            } else {
                stack.pop();
                stack.push(e.to_version_string.clone());
            }
            PromptState::Live(p)
        }
        (state, _) => state,
    }
}

#[cfg(test)]
mod tests {
    //! Given these events, when this command, then these events or this error.
    use super::*;

    fn name() -> PromptName {
        PromptName::parse("support").unwrap()
    }
    fn v(s: &str) -> VersionString {
        VersionString::parse(s).unwrap()
    }
    fn env(s: &str) -> EnvironmentName {
        EnvironmentName::parse(s).unwrap()
    }
    fn id() -> Uuid {
        Uuid::from_u128(7)
    }

    struct Given(Vec<Event>);

    impl Given {
        fn state(&self) -> PromptState {
            self.0.iter().fold(PromptState::default(), evolve)
        }
        fn when(&self, cmd: PromptCommand) -> Result<Vec<Event>, DomainError> {
            decide(&self.state(), &Context::default(), cmd)
        }
        fn and(mut self, cmd: PromptCommand) -> Self {
            let new = self.when(cmd).expect("setup command is valid");
            self.0.extend(new);
            self
        }
    }

    fn created() -> Given {
        Given(vec![]).and(PromptCommand::Create {
            prompt_id: id(),
            name: name(),
            description: Description::parse("d").unwrap(),
        })
    }

    fn version(s: &str) -> PromptCommand {
        PromptCommand::CreateVersion {
            version_string: v(s),
            template: Template::parse("Hello {{ who }}").unwrap(),
            commit_message: None,
            origin: None,
        }
    }

    fn deploy(e: &str, s: &str) -> PromptCommand {
        PromptCommand::Deploy { environment: env(e), version_string: v(s) }
    }

    fn rollback(e: &str, to: Option<&str>) -> PromptCommand {
        PromptCommand::Rollback { environment: env(e), to: to.map(v) }
    }

    #[test]
    fn names_are_unique_among_live_prompts_but_free_after_delete() {
        let given = created();
        let again = PromptCommand::Create {
            prompt_id: Uuid::from_u128(8),
            name: name(),
            description: Description::parse("").unwrap(),
        };
        assert_eq!(given.when(again.clone()), Err(DomainError::PromptExists("support".into())));
        let given = given.and(PromptCommand::Delete);
        let events = given.when(again).unwrap();
        assert!(matches!(&events[..], [Event::PromptCreated(e)] if e.prompt_id == Uuid::from_u128(8)));
    }

    #[test]
    fn no_version_on_a_deleted_prompt() {
        let given = created().and(PromptCommand::Delete);
        assert!(matches!(given.when(version("v1")), Err(DomainError::PromptNotFound(_))));
    }

    #[test]
    fn version_strings_are_unique_per_prompt() {
        let given = created().and(version("v1"));
        assert!(matches!(given.when(version("v1")), Err(DomainError::VersionExists { .. })));
    }

    #[test]
    fn deploy_of_a_missing_version_or_unknown_environment_is_refused() {
        let given = created().and(version("v1"));
        assert!(matches!(given.when(deploy("production", "v9")), Err(DomainError::VersionNotFound { .. })));
        assert!(matches!(given.when(deploy("moon", "v1")), Err(DomainError::UnknownEnvironment { .. })));
    }

    #[test]
    fn deploy_records_the_version_it_replaced() {
        let given = created().and(version("v1")).and(version("v2")).and(deploy("production", "v1"));
        let events = given.when(deploy("production", "v2")).unwrap();
        assert!(matches!(&events[..], [Event::VersionDeployed(e)]
            if e.previous_version_string == Some(v("v1")) && e.version_string == v("v2")));
        assert_eq!(given.when(deploy("production", "v1")).unwrap(), vec![], "already live");
    }

    #[test]
    fn rollback_without_target_returns_to_previous_version_and_walks_back() {
        let given = created()
            .and(version("v1"))
            .and(version("v2"))
            .and(version("v3"))
            .and(deploy("production", "v1"))
            .and(deploy("production", "v2"))
            .and(deploy("production", "v3"))
            .and(rollback("production", None));
        let live = given.state().live().unwrap().live_version(&env("production")).cloned();
        assert_eq!(live, Some(v("v2")));
        let given = given.and(rollback("production", None));
        let live = given.state().live().unwrap().live_version(&env("production")).cloned();
        assert_eq!(live, Some(v("v1")));
        assert!(matches!(given.when(rollback("production", None)), Err(DomainError::NothingToRollBack { .. })));
    }

    #[test]
    fn rollback_to_a_named_version() {
        let given = created()
            .and(version("v1"))
            .and(version("v2"))
            .and(version("v3"))
            .and(deploy("staging", "v1"))
            .and(deploy("staging", "v3"));
        let events = given.when(rollback("staging", Some("v2"))).unwrap();
        assert!(matches!(&events[..], [Event::DeploymentRolledBack(e)]
            if e.from_version_string == v("v3") && e.to_version_string == v("v2")));
        assert!(matches!(given.when(rollback("staging", Some("v3"))), Err(DomainError::AlreadyLive { .. })));
        assert!(matches!(given.when(rollback("production", None)), Err(DomainError::NotDeployed { .. })));
    }
}
