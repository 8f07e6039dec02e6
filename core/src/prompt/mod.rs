//! The prompt aggregate: the state a command is checked against, the commands, and the
//! two pure functions of the decider pattern.

mod evolve;

use crate::content::{ModelConfig, VersionContent};
pub use crate::error::DomainError;
use crate::evaluation::{gate, EvaluationCommand, GatePolicy, Suite};
use crate::events::*;
use crate::experiment::{allocate, check_split, SplitVariant};
use crate::names::{CommitMessage, Description, EnvironmentName, PromptName, Tag, VersionString};
pub use evolve::evolve;
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
    pub tags: Vec<Tag>,
    pub versions: BTreeSet<VersionString>,
    /// The prompts each version includes, for the versions that include any.
    pub includes: BTreeMap<VersionString, Vec<PromptName>>,
    /// Per environment, the versions that were live, oldest first; the last is live now.
    /// A rollback without a target pops the stack.
    pub deployments: BTreeMap<EnvironmentName, Vec<VersionString>>,
    /// The running experiment per environment. Its first variant is also the top of
    /// that environment's deployment stack, which is what clients unaware of
    /// experiments are served.
    pub experiments: BTreeMap<EnvironmentName, RunningExperiment>,
    /// Test cases, version hashes and evaluations (see [`crate::evaluation`]).
    pub suite: Suite,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunningExperiment {
    pub experiment_id: Uuid,
    pub variants: Vec<SplitVariant>,
    pub buckets: Vec<u8>,
    pub previous_version_string: Option<VersionString>,
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

/// What the caller knows that the log does not: which environments exist, which of
/// them are protected (only admins change what they serve), and which are gated by
/// evaluations.
#[derive(Debug, Clone)]
pub struct Context {
    pub environments: Vec<EnvironmentName>,
    pub protected_environments: Vec<EnvironmentName>,
    pub gate: GatePolicy,
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
        Self {
            environments: EnvironmentName::defaults(),
            protected_environments: vec![EnvironmentName::parse("production").expect("a valid name")],
            gate: GatePolicy::default(),
        }
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
    /// Replace the prompt's tags (a sorted list without repeats, see [`Tag::parse_list`]).
    SetTags {
        tags: Vec<Tag>,
    },
    /// Delete the prompt. Only `by_admin` may take a prompt out of a protected
    /// environment it is live in.
    Delete {
        by_admin: bool,
    },
    CreateVersion {
        version_string: VersionString,
        content: VersionContent,
        config: Option<ModelConfig>,
        commit_message: Option<CommitMessage>,
        origin: Option<crate::events::VersionOrigin>,
    },
    /// Make a version live. In a gated environment it needs a passing evaluation, or
    /// an override reason (the caller lets only admins give one).
    Deploy {
        environment: EnvironmentName,
        version_string: VersionString,
        gate_override: Option<String>,
    },
    Rollback {
        environment: EnvironmentName,
        to: Option<VersionString>,
    },
    /// Split the environment's traffic between versions. `experiment_id` is chosen by
    /// the caller so that `decide` stays deterministic.
    StartExperiment {
        environment: EnvironmentName,
        experiment_id: Uuid,
        variants: Vec<SplitVariant>,
        gate_override: Option<String>,
    },
    /// New weights for the running experiment's versions.
    ChangeExperimentWeights {
        environment: EnvironmentName,
        variants: Vec<SplitVariant>,
    },
    /// End the experiment; `keep` serves all traffic from then on.
    StopExperiment {
        environment: EnvironmentName,
        keep: VersionString,
    },
    /// Test cases and evaluations.
    Evaluation(EvaluationCommand),
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
        PromptCommand::SetTags { tags } => {
            if tags == p.tags {
                return Ok(vec![]);
            }
            Ok(vec![Event::PromptTagged(PromptTagged { prompt_id, name, tags, previous_tags: p.tags.clone() })])
        }
        PromptCommand::Delete { by_admin } => {
            if !by_admin {
                let live = |env: &&EnvironmentName| p.live_version(env).is_some() || p.experiments.contains_key(*env);
                if let Some(env) = ctx.protected_environments.iter().find(live) {
                    return Err(DomainError::Protected { prompt: name.to_string(), environment: env.to_string() });
                }
            }
            Ok(vec![Event::PromptDeleted(PromptDeleted { prompt_id, name })])
        }
        PromptCommand::CreateVersion { version_string, content, config, commit_message, origin } => {
            if p.versions.contains(&version_string) {
                return Err(DomainError::VersionExists {
                    prompt: name.to_string(),
                    version: version_string.to_string(),
                });
            }
            let includes = content.includes();
            if includes.contains(&name) {
                return Err(DomainError::IncludeCycle {
                    message: format!("prompt {:?} cannot include itself", name.as_str()),
                });
            }
            Ok(vec![Event::VersionCreated(VersionCreated {
                prompt_id,
                name,
                version_string,
                text: content.text().to_owned(),
                variables: content.variables(),
                kind: content.kind(),
                messages: content.messages(),
                config,
                includes,
                commit_message,
                origin,
            })])
        }
        PromptCommand::Evaluation(command) => crate::evaluation::suite::decide(&p.suite, prompt_id, name, command),
        PromptCommand::Deploy { environment, version_string, gate_override } => {
            ctx.check_environment(&environment)?;
            check_version(p, &version_string)?;
            // A plain deploy ends a running experiment, and says so.
            let mut events = stop_for(p, &environment, &version_string, ExperimentOutcome::EndedByDeploy);
            let previous = p.live_version(&environment).cloned();
            if previous.as_ref() != Some(&version_string) {
                let gate = gate::check(
                    &p.suite,
                    &ctx.gate,
                    name.as_str(),
                    &environment,
                    &version_string,
                    gate_override.as_deref(),
                )?;
                events.push(Event::VersionDeployed(VersionDeployed {
                    prompt_id,
                    name,
                    environment,
                    version_string,
                    previous_version_string: previous,
                    gate,
                }));
            }
            Ok(events)
        }
        PromptCommand::StartExperiment { environment, experiment_id, variants, gate_override } => {
            ctx.check_environment(&environment)?;
            if p.experiments.contains_key(&environment) {
                return Err(DomainError::ExperimentRunning {
                    prompt: name.to_string(),
                    environment: environment.to_string(),
                });
            }
            check_split(&variants).map_err(|e| DomainError::InvalidSplit(e.0))?;
            for v in &variants {
                check_version(p, &v.version_string)?;
            }
            // Versions served there already passed (or predate) the gate; the others must.
            let served = served_in(p, &environment);
            let mut gates = Vec::new();
            for v in variants.iter().filter(|v| !served.contains(&v.version_string)) {
                let passed = gate::check(
                    &p.suite,
                    &ctx.gate,
                    name.as_str(),
                    &environment,
                    &v.version_string,
                    gate_override.as_deref(),
                )?;
                gates.extend(passed.map(|gate| VersionGate { version_string: v.version_string.clone(), gate }));
            }
            let weights: Vec<u8> = variants.iter().map(|v| v.weight).collect();
            let first = variants[0].version_string.clone();
            let first_gate = gates.iter().find(|g| g.version_string == first).map(|g| g.gate.clone());
            let previous = p.live_version(&environment).cloned();
            let mut events = vec![Event::ExperimentStarted(ExperimentStarted {
                prompt_id,
                name: name.clone(),
                environment: environment.clone(),
                experiment_id,
                buckets: allocate(&weights, None),
                variants,
                previous_version_string: previous.clone(),
                gates,
            })];
            // The first variant is what clients unaware of experiments are served.
            if previous.as_ref() != Some(&first) {
                events.push(Event::VersionDeployed(VersionDeployed {
                    prompt_id,
                    name,
                    environment,
                    version_string: first,
                    previous_version_string: previous,
                    gate: first_gate,
                }));
            }
            Ok(events)
        }
        PromptCommand::ChangeExperimentWeights { environment, variants } => {
            ctx.check_environment(&environment)?;
            let running = running(p, &environment)?;
            check_split(&variants).map_err(|e| DomainError::InvalidSplit(e.0))?;
            // Same versions; weights taken by version, kept in the experiment's order.
            let mut weights = Vec::with_capacity(running.variants.len());
            for v in &running.variants {
                match variants.iter().find(|n| n.version_string == v.version_string) {
                    Some(n) => weights.push(n.weight),
                    None => {
                        return Err(DomainError::InvalidSplit(format!(
                        "the experiment's versions are {}; give a weight for each of them (version {:?} is missing)",
                        version_list(&running.variants),
                        v.version_string.as_str()
                    )))
                    }
                }
            }
            if variants.len() != running.variants.len() {
                return Err(DomainError::InvalidSplit(format!(
                    "the experiment's versions are {}; a running experiment cannot gain versions (stop it and start a new one)",
                    version_list(&running.variants)
                )));
            }
            let previous_weights: Vec<u8> = running.variants.iter().map(|v| v.weight).collect();
            if weights == previous_weights {
                return Ok(vec![]);
            }
            let variants: Vec<SplitVariant> = running
                .variants
                .iter()
                .zip(&weights)
                .map(|(v, w)| SplitVariant { version_string: v.version_string.clone(), weight: *w })
                .collect();
            Ok(vec![Event::ExperimentWeightsChanged(ExperimentWeightsChanged {
                prompt_id,
                name,
                environment,
                experiment_id: running.experiment_id,
                buckets: allocate(&weights, Some(&running.buckets)),
                variants,
                previous_weights,
            })])
        }
        PromptCommand::StopExperiment { environment, keep } => {
            ctx.check_environment(&environment)?;
            let running = running(p, &environment)?;
            let allowed = running.variants.iter().any(|v| v.version_string == keep)
                || running.previous_version_string.as_ref() == Some(&keep);
            if !allowed {
                let mut list = version_list(&running.variants);
                if let Some(previous) = &running.previous_version_string {
                    list = format!("{list} or {previous}");
                }
                return Err(DomainError::NotInExperiment { version: keep.to_string(), allowed: list });
            }
            let outcome = if running.previous_version_string.as_ref() == Some(&keep) {
                ExperimentOutcome::Reverted
            } else {
                ExperimentOutcome::Promoted
            };
            let mut events = stop_for(p, &environment, &keep, outcome);
            let previous = p.live_version(&environment).cloned();
            if previous.as_ref() != Some(&keep) {
                // Keeping a variant or the version live before: each already passed (or
                // predates) the gate.
                events.push(Event::VersionDeployed(VersionDeployed {
                    prompt_id,
                    name,
                    environment,
                    version_string: keep,
                    previous_version_string: previous,
                    gate: None,
                }));
            }
            Ok(events)
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
            let mut events = stop_for(p, &environment, &target, ExperimentOutcome::EndedByRollback);
            events.push(Event::DeploymentRolledBack(DeploymentRolledBack {
                prompt_id,
                name,
                environment,
                from_version_string: current,
                to_version_string: target,
            }));
            Ok(events)
        }
    }
}

/// The experiment running in `environment`, or the error that there is none.
fn running<'a>(p: &'a LivePrompt, environment: &EnvironmentName) -> Result<&'a RunningExperiment, DomainError> {
    p.experiments
        .get(environment)
        .ok_or_else(|| DomainError::NoExperiment { prompt: p.name.to_string(), environment: environment.to_string() })
}

/// The event that ends the experiment running in `environment`, if one is, keeping
/// `version_string`.
fn stop_for(
    p: &LivePrompt,
    environment: &EnvironmentName,
    version_string: &VersionString,
    outcome: ExperimentOutcome,
) -> Vec<Event> {
    match p.experiments.get(environment) {
        Some(running) => vec![Event::ExperimentStopped(ExperimentStopped {
            prompt_id: p.prompt_id,
            name: p.name.clone(),
            environment: environment.clone(),
            experiment_id: running.experiment_id,
            version_string: version_string.clone(),
            outcome,
        })],
        None => vec![],
    }
}

/// The versions `environment` serves now: the live one and a running split's.
fn served_in(p: &LivePrompt, environment: &EnvironmentName) -> BTreeSet<VersionString> {
    let mut out: BTreeSet<VersionString> = p.live_version(environment).into_iter().cloned().collect();
    if let Some(x) = p.experiments.get(environment) {
        out.extend(x.variants.iter().map(|v| v.version_string.clone()));
    }
    out
}

fn version_list(variants: &[SplitVariant]) -> String {
    variants.iter().map(|v| v.version_string.as_str()).collect::<Vec<_>>().join(", ")
}

fn check_version(p: &LivePrompt, v: &VersionString) -> Result<(), DomainError> {
    if p.versions.contains(v) {
        Ok(())
    } else {
        Err(DomainError::VersionNotFound { prompt: p.name.to_string(), version: v.to_string() })
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
            content: VersionContent::Text(crate::template::Template::parse("Hello {{ who }}").unwrap()),
            config: None,
            commit_message: None,
            origin: None,
        }
    }

    #[test]
    fn a_prompt_cannot_include_itself_and_tags_change_only_when_different() {
        let given = created();
        let include_self = PromptCommand::CreateVersion {
            version_string: v("v1"),
            content: VersionContent::Text(crate::template::Template::parse("{% include \"support\" %}").unwrap()),
            config: None,
            commit_message: None,
            origin: None,
        };
        assert!(matches!(given.when(include_self), Err(DomainError::IncludeCycle { .. })));
        let tags = Tag::parse_list(&["pii".into(), "team:support".into()]).unwrap();
        let given = given.and(PromptCommand::SetTags { tags: tags.clone() });
        assert_eq!(given.state().live().unwrap().tags, tags);
        assert_eq!(given.when(PromptCommand::SetTags { tags }).unwrap(), vec![]);
    }

    fn deploy(e: &str, s: &str) -> PromptCommand {
        PromptCommand::Deploy { environment: env(e), version_string: v(s), gate_override: None }
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
        let given = given.and(PromptCommand::Delete { by_admin: true });
        let events = given.when(again).unwrap();
        assert!(matches!(&events[..], [Event::PromptCreated(e)] if e.prompt_id == Uuid::from_u128(8)));
    }

    #[test]
    fn no_version_on_a_deleted_prompt() {
        let given = created().and(PromptCommand::Delete { by_admin: true });
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

    fn split(e: &str, variants: &[(&str, u8)]) -> PromptCommand {
        PromptCommand::StartExperiment {
            environment: env(e),
            experiment_id: Uuid::from_u128(99),
            variants: variants.iter().map(|(s, w)| SplitVariant { version_string: v(s), weight: *w }).collect(),
            gate_override: None,
        }
    }

    fn weights(e: &str, variants: &[(&str, u8)]) -> PromptCommand {
        PromptCommand::ChangeExperimentWeights {
            environment: env(e),
            variants: variants.iter().map(|(s, w)| SplitVariant { version_string: v(s), weight: *w }).collect(),
        }
    }

    fn stop(e: &str, keep: &str) -> PromptCommand {
        PromptCommand::StopExperiment { environment: env(e), keep: v(keep) }
    }

    fn three_versions_v1_live() -> Given {
        created().and(version("v1")).and(version("v2")).and(version("v3")).and(deploy("production", "v1"))
    }

    #[test]
    fn a_split_serves_its_first_variant_to_clients_that_know_nothing_of_experiments() {
        let given = three_versions_v1_live();
        let events = given.when(split("production", &[("v2", 50), ("v1", 50)])).unwrap();
        assert!(matches!(&events[..], [Event::ExperimentStarted(s), Event::VersionDeployed(d)]
            if s.previous_version_string == Some(v("v1")) && s.buckets.len() == 100 && d.version_string == v("v2")));
        // v1 first: already live, so no deploy.
        let events = given.when(split("production", &[("v1", 50), ("v2", 50)])).unwrap();
        assert!(matches!(&events[..], [Event::ExperimentStarted(_)]));
        let given = given.and(split("production", &[("v1", 50), ("v2", 50)]));
        assert!(matches!(
            given.when(split("production", &[("v1", 50), ("v3", 50)])),
            Err(DomainError::ExperimentRunning { .. })
        ));
    }

    #[test]
    fn bad_splits_are_refused() {
        let given = three_versions_v1_live();
        assert!(matches!(
            given.when(split("production", &[("v1", 60), ("v2", 50)])),
            Err(DomainError::InvalidSplit(_))
        ));
        assert!(matches!(
            given.when(split("production", &[("v1", 50), ("v9", 50)])),
            Err(DomainError::VersionNotFound { .. })
        ));
        assert!(matches!(
            given.when(split("moon", &[("v1", 50), ("v2", 50)])),
            Err(DomainError::UnknownEnvironment { .. })
        ));
        assert!(matches!(
            given.when(weights("production", &[("v1", 90), ("v2", 10)])),
            Err(DomainError::NoExperiment { .. })
        ));
        assert!(matches!(given.when(stop("production", "v1")), Err(DomainError::NoExperiment { .. })));
    }

    #[test]
    fn weights_change_for_the_same_versions_only() {
        let given = three_versions_v1_live().and(split("production", &[("v1", 50), ("v2", 50)]));
        let events = given.when(weights("production", &[("v2", 10), ("v1", 90)])).unwrap();
        assert!(matches!(&events[..], [Event::ExperimentWeightsChanged(e)]
            if e.variants[0].weight == 90 && e.variants[1].weight == 10 && e.previous_weights == vec![50, 50]));
        assert_eq!(given.when(weights("production", &[("v1", 50), ("v2", 50)])).unwrap(), vec![], "no change");
        assert!(matches!(
            given.when(weights("production", &[("v1", 50), ("v3", 50)])),
            Err(DomainError::InvalidSplit(_))
        ));
        assert!(matches!(
            given.when(weights("production", &[("v1", 40), ("v2", 30), ("v3", 30)])),
            Err(DomainError::InvalidSplit(_))
        ));
    }

    #[test]
    fn stopping_promotes_a_variant_or_reverts_to_what_was_live() {
        let given = three_versions_v1_live().and(split("production", &[("v2", 50), ("v3", 50)]));
        let live = |g: &Given| g.state().live().unwrap().live_version(&env("production")).cloned();
        assert_eq!(live(&given), Some(v("v2")), "the first variant is the environment's live version");
        let promoted = given.when(stop("production", "v3")).unwrap();
        assert!(matches!(&promoted[..], [Event::ExperimentStopped(s), Event::VersionDeployed(d)]
            if s.outcome == ExperimentOutcome::Promoted && d.version_string == v("v3")));
        let reverted = given.when(stop("production", "v1")).unwrap();
        assert!(matches!(&reverted[..], [Event::ExperimentStopped(s), Event::VersionDeployed(d)]
            if s.outcome == ExperimentOutcome::Reverted && d.version_string == v("v1")));
        let kept = given.when(stop("production", "v2")).unwrap();
        assert!(matches!(&kept[..], [Event::ExperimentStopped(s)] if s.outcome == ExperimentOutcome::Promoted));
        assert!(matches!(given.when(stop("production", "v9")), Err(DomainError::NotInExperiment { .. })));
        let given = given.and(stop("production", "v3"));
        assert_eq!(live(&given), Some(v("v3")));
        assert!(given.state().live().unwrap().experiments.is_empty());
    }

    #[test]
    fn a_plain_deploy_or_rollback_ends_the_experiment_and_says_so() {
        let given = three_versions_v1_live().and(split("production", &[("v2", 50), ("v3", 50)]));
        let deployed = given.when(deploy("production", "v3")).unwrap();
        assert!(matches!(&deployed[..], [Event::ExperimentStopped(s), Event::VersionDeployed(_)]
            if s.outcome == ExperimentOutcome::EndedByDeploy && s.version_string == v("v3")));
        let same = given.when(deploy("production", "v2")).unwrap();
        assert!(matches!(&same[..], [Event::ExperimentStopped(s)] if s.outcome == ExperimentOutcome::EndedByDeploy));
        let rolled = given.when(rollback("production", None)).unwrap();
        assert!(matches!(&rolled[..], [Event::ExperimentStopped(s), Event::DeploymentRolledBack(r)]
            if s.outcome == ExperimentOutcome::EndedByRollback && r.to_version_string == v("v1")));
        let given = given.and(rollback("production", None));
        assert!(given.state().live().unwrap().experiments.is_empty());
        // Other environments are untouched.
        let given =
            three_versions_v1_live().and(deploy("staging", "v1")).and(split("staging", &[("v1", 50), ("v2", 50)]));
        let events = given.when(deploy("production", "v2")).unwrap();
        assert!(matches!(&events[..], [Event::VersionDeployed(_)]));
    }
}
