//! A prompt's test cases and evaluations as its stream's state, and the commands that
//! change them (decided by [`decide`], folded by [`evolve`]).

use super::events::*;
use super::{CaseName, CaseOutcome, TestCase, MAX_CASES};
use crate::error::DomainError;
use crate::events::{Event, VersionCreated};
use crate::names::{EnvironmentName, PromptName, VersionString};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// SHA-256 (hex) of what a version sends to a model: its kind, text or messages and its
/// model configuration, as canonical JSON. Anyone holding the `VersionCreated` event can
/// recompute it.
///
/// ```
/// use promptos_core::events::VersionCreated;
/// use promptos_core::names::{PromptName, VersionString};
/// use promptos_core::evaluation::suite::version_hash;
/// let v = |text: &str| VersionCreated::plain_text(uuid::Uuid::nil(), PromptName::parse("bot").unwrap(),
///     VersionString::parse("v1").unwrap(), text.into(), vec![]);
/// assert_eq!(version_hash(&v("Hello")), version_hash(&v("Hello")));
/// assert_ne!(version_hash(&v("Hello")), version_hash(&v("Hello!")));
/// ```
pub fn version_hash(e: &VersionCreated) -> String {
    let canonical = serde_json::json!({
        "kind": e.kind.as_str(),
        "text": e.text,
        "messages": e.messages,
        "config": e.config,
    });
    format!("{:x}", Sha256::digest(canonical.to_string().as_bytes()))
}

/// The latest completed evaluation of a version.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationSummary {
    pub evaluation_id: Uuid,
    pub suite_revision: u64,
    pub passed: u32,
    pub total: u32,
    /// The cases that failed (names).
    pub failed: Vec<String>,
}

/// A prompt's test cases and what its evaluations found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Suite {
    /// Counts every change to the cases: a run is current while it equals this.
    pub revision: u64,
    pub cases: BTreeMap<Uuid, Arc<TestCase>>,
    /// Per version: its wording's hash.
    pub version_hashes: BTreeMap<VersionString, String>,
    /// Per version: its latest completed evaluation.
    pub evaluations: BTreeMap<VersionString, EvaluationSummary>,
    /// Started and not yet completed.
    pub running: BTreeMap<Uuid, RunningEvaluation>,
}

/// An evaluation started and not yet completed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningEvaluation {
    pub version_string: VersionString,
    /// The suite revision it runs on.
    pub suite_revision: u64,
    pub provider: String,
    pub model: String,
}

impl Suite {
    fn case_named(&self, name: &CaseName) -> Option<&Arc<TestCase>> {
        self.cases.values().find(|c| &c.name == name)
    }

    /// The cases in name order (what a run takes, and in which order).
    pub fn ordered(&self) -> Vec<Arc<TestCase>> {
        let mut cases: Vec<_> = self.cases.values().cloned().collect();
        cases.sort_by(|a, b| a.name.cmp(&b.name));
        cases
    }
}

/// The commands on a prompt's test cases and evaluations.
#[derive(Debug, Clone)]
pub enum EvaluationCommand {
    /// `case.case_id` is chosen by the caller so that `decide` stays deterministic.
    AddTestCase {
        case: TestCase,
    },
    UpdateTestCase {
        case: TestCase,
    },
    RemoveTestCase {
        case_id: Uuid,
    },
    /// Begin a run of every case against a version (`evaluation_id` chosen by the caller).
    Start {
        evaluation_id: Uuid,
        version_string: VersionString,
        provider: String,
        model: String,
        environment: EnvironmentName,
    },
    /// Record how a started run went.
    Complete {
        evaluation_id: Uuid,
        outcomes: Vec<CaseOutcome>,
        input_tokens: u64,
        output_tokens: u64,
        duration_ms: u64,
        stopped: Option<String>,
    },
}

/// The events `command` leads to on the suite of the prompt `name` (`prompt_id`).
pub(crate) fn decide(
    suite: &Suite,
    prompt_id: Uuid,
    name: PromptName,
    command: EvaluationCommand,
) -> Result<Vec<Event>, DomainError> {
    match command {
        EvaluationCommand::AddTestCase { case } => {
            case.check().map_err(DomainError::from)?;
            if let Some(existing) = suite.case_named(&case.name) {
                return Err(DomainError::TestCaseExists { prompt: name.to_string(), case: existing.name.to_string() });
            }
            if suite.cases.len() >= MAX_CASES {
                return Err(DomainError::InvalidTestCase {
                    field: "name",
                    message: format!("prompt {name:?} already has {MAX_CASES} test cases, the most it may have"),
                });
            }
            Ok(vec![Event::TestCaseAdded(TestCaseAdded { prompt_id, name, case })])
        }
        EvaluationCommand::UpdateTestCase { case } => {
            case.check().map_err(DomainError::from)?;
            let Some(existing) = suite.cases.get(&case.case_id) else {
                return Err(DomainError::TestCaseNotFound { prompt: name.to_string(), case: case.case_id.to_string() });
            };
            if let Some(other) = suite.case_named(&case.name).filter(|c| c.case_id != case.case_id) {
                return Err(DomainError::TestCaseExists { prompt: name.to_string(), case: other.name.to_string() });
            }
            if **existing == case {
                return Ok(vec![]);
            }
            Ok(vec![Event::TestCaseUpdated(TestCaseUpdated { prompt_id, name, case })])
        }
        EvaluationCommand::RemoveTestCase { case_id } => {
            let Some(existing) = suite.cases.get(&case_id) else {
                return Err(DomainError::TestCaseNotFound { prompt: name.to_string(), case: case_id.to_string() });
            };
            let case_name = existing.name.to_string();
            Ok(vec![Event::TestCaseRemoved(TestCaseRemoved { prompt_id, name, case_id, case_name })])
        }
        EvaluationCommand::Start { evaluation_id, version_string, provider, model, environment } => {
            let Some(version_hash) = suite.version_hashes.get(&version_string).cloned() else {
                return Err(DomainError::VersionNotFound {
                    prompt: name.to_string(),
                    version: version_string.to_string(),
                });
            };
            if suite.cases.is_empty() {
                return Err(DomainError::NoTestCases(name.to_string()));
            }
            Ok(vec![Event::EvaluationStarted(EvaluationStarted {
                prompt_id,
                name,
                evaluation_id,
                version_string,
                version_hash,
                suite_revision: suite.revision,
                cases: suite.cases.len() as u32,
                provider,
                model,
                environment,
            })])
        }
        EvaluationCommand::Complete { evaluation_id, outcomes, input_tokens, output_tokens, duration_ms, stopped } => {
            let Some(RunningEvaluation { version_string, suite_revision, provider, model }) =
                suite.running.get(&evaluation_id).cloned()
            else {
                return Err(DomainError::EvaluationNotRunning(evaluation_id.to_string()));
            };
            let version_hash = suite.version_hashes.get(&version_string).cloned().unwrap_or_default();
            let passed = outcomes.iter().filter(|o| o.passed).count() as u32;
            Ok(vec![Event::EvaluationCompleted(EvaluationCompleted {
                prompt_id,
                name,
                evaluation_id,
                version_string,
                version_hash,
                suite_revision,
                provider,
                model,
                passed,
                total: outcomes.len() as u32,
                outcomes,
                input_tokens,
                output_tokens,
                duration_ms,
                stopped,
            })])
        }
    }
}

/// Folds a test-case or evaluation event (or a new version's hash) into the suite.
pub(crate) fn evolve(suite: &mut Suite, event: &Event) {
    match event {
        Event::VersionCreated(e) => {
            suite.version_hashes.insert(e.version_string.clone(), version_hash(e));
        }
        Event::TestCaseAdded(TestCaseAdded { case, .. }) | Event::TestCaseUpdated(TestCaseUpdated { case, .. }) => {
            suite.cases.insert(case.case_id, Arc::new(case.clone()));
            suite.revision += 1;
        }
        Event::TestCaseRemoved(e) => {
            suite.cases.remove(&e.case_id);
            suite.revision += 1;
        }
        Event::EvaluationStarted(e) => {
            let running = RunningEvaluation {
                version_string: e.version_string.clone(),
                suite_revision: e.suite_revision,
                provider: e.provider.clone(),
                model: e.model.clone(),
            };
            suite.running.insert(e.evaluation_id, running);
        }
        Event::EvaluationCompleted(e) => {
            suite.running.remove(&e.evaluation_id);
            let failed = e.outcomes.iter().filter(|o| !o.passed).map(|o| o.case_name.clone()).collect();
            suite.evaluations.insert(
                e.version_string.clone(),
                EvaluationSummary {
                    evaluation_id: e.evaluation_id,
                    suite_revision: e.suite_revision,
                    passed: e.passed,
                    total: e.total,
                    failed,
                },
            );
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    //! Given these events, when this command, then these events or this error: the gate
    //! scenarios of a gated production.
    use super::*;
    use crate::content::VersionContent;
    use crate::evaluation::{CheckOutcome, DeployGate, Expectation, GatePolicy};
    use crate::names::Description;
    use crate::prompt::{decide, evolve, Context, PromptCommand, PromptState};

    fn v(s: &str) -> VersionString {
        VersionString::parse(s).unwrap()
    }
    fn production() -> EnvironmentName {
        EnvironmentName::parse("production").unwrap()
    }
    fn ctx() -> Context {
        Context { gate: GatePolicy { environments: vec![production()], pass_rate: 100 }, ..Context::default() }
    }

    struct Given(Vec<Event>);

    impl Given {
        fn when(&self, cmd: PromptCommand) -> Result<Vec<Event>, DomainError> {
            decide(&self.0.iter().fold(PromptState::default(), evolve), &ctx(), cmd)
        }
        fn and(mut self, cmd: PromptCommand) -> Self {
            let new = self.when(cmd).expect("setup command is valid");
            self.0.extend(new);
            self
        }
    }

    fn case(id: u128, name: &str) -> TestCase {
        TestCase {
            case_id: Uuid::from_u128(id),
            name: CaseName::parse(name).unwrap(),
            variables: BTreeMap::from([("who".into(), serde_json::json!("Ada"))]),
            messages: vec![],
            expectations: vec![Expectation::Contains { value: "Ada".into(), case_insensitive: false }],
        }
    }

    fn given() -> Given {
        let version = |s: &str, text: &str| PromptCommand::CreateVersion {
            version_string: v(s),
            content: VersionContent::Text(crate::template::Template::parse(text).unwrap()),
            config: None,
            commit_message: None,
            origin: None,
        };
        Given(vec![])
            .and(PromptCommand::Create {
                prompt_id: Uuid::nil(),
                name: PromptName::parse("bot").unwrap(),
                description: Description::parse("").unwrap(),
            })
            .and(version("v1", "Hello {{ who }}"))
            .and(version("v2", "Hi {{ who }}"))
    }

    fn with_cases(given: Given) -> Given {
        let add = |c| PromptCommand::Evaluation(EvaluationCommand::AddTestCase { case: c });
        given.and(add(case(1, "greets by name"))).and(add(case(2, "is short")))
    }

    fn run(given: Given, id: u128, version: &str, failing: &[u128]) -> Given {
        let start = EvaluationCommand::Start {
            evaluation_id: Uuid::from_u128(id),
            version_string: v(version),
            provider: "fake".into(),
            model: "m".into(),
            environment: production(),
        };
        let given = given.and(PromptCommand::Evaluation(start));
        let outcome = |c: u128, name: &str| CaseOutcome {
            case_id: Uuid::from_u128(c),
            case_name: name.into(),
            passed: !failing.contains(&c),
            answer_excerpt: "Hi Ada".into(),
            error: None,
            checks: vec![CheckOutcome { kind: "contains".into(), passed: !failing.contains(&c), reason: "".into() }],
            latency_ms: 5,
            input_tokens: Some(10),
            output_tokens: Some(3),
        };
        given.and(PromptCommand::Evaluation(EvaluationCommand::Complete {
            evaluation_id: Uuid::from_u128(id),
            outcomes: vec![outcome(1, "greets by name"), outcome(2, "is short")],
            input_tokens: 20,
            output_tokens: 6,
            duration_ms: 12,
            stopped: None,
        }))
    }

    fn deploy(version: &str, reason: Option<&str>) -> PromptCommand {
        PromptCommand::Deploy {
            environment: production(),
            version_string: v(version),
            gate_override: reason.map(str::to_owned),
        }
    }

    fn closed(result: Result<Vec<Event>, DomainError>) -> (String, Vec<String>) {
        match result {
            Err(DomainError::GateClosed { reason, cases, .. }) => (reason, cases),
            other => panic!("expected the gate to stay closed, got {other:?}"),
        }
    }

    #[test]
    fn a_gated_deploy_needs_a_fresh_passing_evaluation_of_that_version() {
        // No test cases at all.
        assert!(closed(given().when(deploy("v2", None))).0.contains("no test cases"));
        // Never evaluated: every case must run.
        let (reason, cases) = closed(with_cases(given()).when(deploy("v2", None)));
        assert!(reason.contains("v2 has not been evaluated"), "{reason}");
        assert_eq!(cases, ["greets by name", "is short"]);
        // A failing run lists the failing case.
        let (reason, cases) = closed(run(with_cases(given()), 10, "v2", &[2]).when(deploy("v2", None)));
        assert!(reason.contains("passed 1/2"), "{reason}");
        assert_eq!(cases, ["is short"]);
        // A passing run of another version does not count.
        closed(run(with_cases(given()), 10, "v1", &[]).when(deploy("v2", None)));
        // A passing run older than a test-case change does not count.
        let passed = run(with_cases(given()), 10, "v2", &[]);
        let changed = passed.and(PromptCommand::Evaluation(EvaluationCommand::AddTestCase { case: case(3, "new") }));
        let (reason, _) = closed(changed.when(deploy("v2", None)));
        assert!(reason.contains("before the test cases last changed"), "{reason}");
        // A fresh passing run opens the gate, and the deploy records it.
        let events = run(with_cases(given()), 10, "v2", &[]).when(deploy("v2", None)).unwrap();
        let Event::VersionDeployed(e) = &events[0] else { panic!("{events:?}") };
        assert_eq!(e.gate, Some(DeployGate::Evaluation { evaluation_id: Uuid::from_u128(10), passed: 2, total: 2 }));
    }

    #[test]
    fn an_override_is_recorded_with_its_reason_and_ungated_environments_need_nothing() {
        let events = with_cases(given()).when(deploy("v2", Some("hotfix for incident 42"))).unwrap();
        let Event::VersionDeployed(e) = &events[0] else { panic!("{events:?}") };
        assert_eq!(e.gate, Some(DeployGate::Override { reason: "hotfix for incident 42".into() }));
        let staging = PromptCommand::Deploy {
            environment: EnvironmentName::parse("staging").unwrap(),
            version_string: v("v2"),
            gate_override: None,
        };
        let events = given().when(staging).unwrap();
        let Event::VersionDeployed(e) = &events[0] else { panic!("{events:?}") };
        assert_eq!(e.gate, None);
    }

    #[test]
    fn a_run_that_saw_the_cases_change_while_it_ran_does_not_open_the_gate() {
        let start = EvaluationCommand::Start {
            evaluation_id: Uuid::from_u128(10),
            version_string: v("v2"),
            provider: "fake".into(),
            model: "m".into(),
            environment: production(),
        };
        let started = with_cases(given()).and(PromptCommand::Evaluation(start));
        let removed =
            started.and(PromptCommand::Evaluation(EvaluationCommand::RemoveTestCase { case_id: Uuid::from_u128(2) }));
        let complete = EvaluationCommand::Complete {
            evaluation_id: Uuid::from_u128(10),
            outcomes: vec![],
            input_tokens: 0,
            output_tokens: 0,
            duration_ms: 1,
            stopped: None,
        };
        let done = removed.and(PromptCommand::Evaluation(complete));
        closed(done.when(deploy("v2", None)));
    }

    #[test]
    fn a_split_gates_each_new_version_and_test_cases_keep_unique_names() {
        let split = |gate_override: Option<&str>| PromptCommand::StartExperiment {
            environment: production(),
            experiment_id: Uuid::from_u128(5),
            variants: vec![
                crate::experiment::SplitVariant { version_string: v("v1"), weight: 50 },
                crate::experiment::SplitVariant { version_string: v("v2"), weight: 50 },
            ],
            gate_override: gate_override.map(str::to_owned),
        };
        // v1 is live (by override); the split needs v2 to pass.
        let live = with_cases(given()).and(deploy("v1", Some("before gating")));
        let (_, cases) = closed(live.when(split(None)));
        assert_eq!(cases, ["greets by name", "is short"]);
        let live = run(with_cases(given()).and(deploy("v1", Some("before gating"))), 11, "v2", &[]);
        let events = live.when(split(None)).unwrap();
        let Event::ExperimentStarted(e) = &events[0] else { panic!("{events:?}") };
        assert_eq!(e.gates.len(), 1, "only the version not yet served is gated");
        assert_eq!(e.gates[0].version_string, v("v2"));
        // Names are unique within a prompt.
        let again = PromptCommand::Evaluation(EvaluationCommand::AddTestCase { case: case(9, "is short") });
        assert!(matches!(with_cases(given()).when(again), Err(DomainError::TestCaseExists { .. })));
    }
}
