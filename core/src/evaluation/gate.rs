//! The deploy gate: in a gated environment a version goes live only with a completed
//! evaluation of that version, run on the test cases as they are now, in which enough
//! cases passed; or when an admin overrides it with a reason.

use super::events::DeployGate;
use super::suite::Suite;
use crate::error::DomainError;
use crate::names::{EnvironmentName, VersionString};
use serde::Serialize;
use uuid::Uuid;

/// Where deploys need a passing evaluation, and what share of cases must pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatePolicy {
    pub environments: Vec<EnvironmentName>,
    /// Percent of a run's cases that must pass (100: every case).
    pub pass_rate: u8,
}

impl Default for GatePolicy {
    fn default() -> Self {
        Self { environments: Vec::new(), pass_rate: 100 }
    }
}

impl GatePolicy {
    pub fn gates(&self, env: &EnvironmentName) -> bool {
        self.environments.contains(env)
    }
}

/// A version's standing at the gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GateStatus {
    pub open: bool,
    /// In words: "evaluation passed 14/14", "never evaluated", …
    pub reason: String,
    /// The cases that failed, or that still have to run.
    pub cases: Vec<String>,
    /// The evaluation the answer rests on, if any.
    pub evaluation_id: Option<Uuid>,
}

/// Where `version` stands at a gate with `policy`'s pass rate, on the suite as it is.
pub fn status(suite: &Suite, policy: &GatePolicy, version: &VersionString) -> GateStatus {
    let all_cases = || suite.ordered().iter().map(|c| c.name.to_string()).collect::<Vec<_>>();
    let closed =
        |reason: String, cases: Vec<String>, evaluation_id| GateStatus { open: false, reason, cases, evaluation_id };
    let running =
        if suite.running.values().any(|r| &r.version_string == version) { "; an evaluation is running" } else { "" };
    if suite.cases.is_empty() {
        return closed(format!("the prompt has no test cases; add some and evaluate {version}"), vec![], None);
    }
    let Some(last) = suite.evaluations.get(version) else {
        return closed(format!("{version} has not been evaluated{running}"), all_cases(), None);
    };
    if last.suite_revision != suite.revision {
        return closed(
            format!(
                "the latest evaluation of {version} ran before the test cases last changed; evaluate it again{running}"
            ),
            all_cases(),
            Some(last.evaluation_id),
        );
    }
    let needed = u64::from(policy.pass_rate) * u64::from(last.total);
    let open = last.total > 0 && u64::from(last.passed) * 100 >= needed;
    let summary = format!("evaluation passed {}/{}", last.passed, last.total);
    if open {
        return GateStatus { open, reason: summary, cases: vec![], evaluation_id: Some(last.evaluation_id) };
    }
    closed(
        format!("the latest {summary} cases of {version}; {}% must pass{running}", policy.pass_rate),
        last.failed.clone(),
        Some(last.evaluation_id),
    )
}

/// The gate for making `version` live in `env`: `None` where `env` is not gated, the
/// evaluation that opens it, the override (with its reason), or why it stays closed.
pub fn check(
    suite: &Suite,
    policy: &GatePolicy,
    prompt: &str,
    env: &EnvironmentName,
    version: &VersionString,
    override_reason: Option<&str>,
) -> Result<Option<DeployGate>, DomainError> {
    if !policy.gates(env) {
        return Ok(None);
    }
    let standing = status(suite, policy, version);
    if standing.open {
        let Some(evaluation_id) = standing.evaluation_id else { unreachable!("an open gate rests on an evaluation") };
        let last = &suite.evaluations[version];
        return Ok(Some(DeployGate::Evaluation { evaluation_id, passed: last.passed, total: last.total }));
    }
    if let Some(reason) = override_reason {
        return Ok(Some(DeployGate::Override { reason: reason.to_owned() }));
    }
    Err(DomainError::GateClosed {
        prompt: prompt.to_owned(),
        version: version.to_string(),
        environment: env.to_string(),
        reason: standing.reason,
        cases: standing.cases,
    })
}
