//! Change requests: four-eyes approval (and scheduling) for the environments that need it.
//!
//! A request proposes one or more [`Change`]s to one environment. It records what each
//! prompt served there when it was opened ([`Served`]); every approval records what the
//! approver saw. When it is applied, an approval counts only if what it saw is still what
//! is served: a deploy by someone else in the meantime makes the request *outdated*, and
//! it needs a fresh approval. Applying appends the request's `ChangeRequestApplied` and
//! every change's deployment events in one transaction, all or none.
//!
//! This module holds the vocabulary and the events; [`decide`] and [`evolve`] the rules.
//!
//! ```
//! use promptos_core::change_request::{Change, Served};
//! use promptos_core::names::{PromptName, VersionString};
//! let change = Change::Deploy {
//!     prompt_name: PromptName::parse("bot").unwrap(),
//!     version_string: VersionString::parse("v2").unwrap(),
//! };
//! assert_eq!(change.prompt_name().as_str(), "bot");
//! assert_eq!(Served::nothing(change.prompt_name().clone()).describe(), "nothing");
//! ```

mod decide;
pub mod events;

pub use decide::{decide, evolve, Approval, ChangeRequest, ChangeRequestCommand, ChangeRequestState, Status};
pub use events::*;

use crate::experiment::SplitVariant;
use crate::names::{EnvironmentName, PromptName, VersionString};
use crate::prompt::{PromptCommand, PromptState};
use uuid::Uuid;

/// The most changes one request may hold.
pub const MAX_CHANGES: usize = 20;

impl Change {
    pub fn prompt_name(&self) -> &PromptName {
        match self {
            Change::Deploy { prompt_name, .. }
            | Change::Rollback { prompt_name, .. }
            | Change::StartExperiment { prompt_name, .. }
            | Change::ChangeExperimentWeights { prompt_name, .. }
            | Change::StopExperiment { prompt_name, .. } => prompt_name,
        }
    }

    /// The prompt command that carries the change out in `environment`.
    pub fn command(&self, environment: &EnvironmentName) -> PromptCommand {
        let environment = environment.clone();
        match self.clone() {
            Change::Deploy { version_string, .. } => {
                PromptCommand::Deploy { environment, version_string, gate_override: None }
            }
            Change::Rollback { to_version_string, .. } => {
                PromptCommand::Rollback { environment, to: Some(to_version_string) }
            }
            Change::StartExperiment { experiment_id, variants, .. } => {
                PromptCommand::StartExperiment { environment, experiment_id, variants, gate_override: None }
            }
            Change::ChangeExperimentWeights { variants, .. } => {
                PromptCommand::ChangeExperimentWeights { environment, variants }
            }
            Change::StopExperiment { keep, .. } => PromptCommand::StopExperiment { environment, keep },
        }
    }

    /// The version the change makes live for clients unaware of experiments.
    pub fn target(&self) -> &VersionString {
        match self {
            Change::Deploy { version_string, .. } => version_string,
            Change::Rollback { to_version_string, .. } => to_version_string,
            Change::StartExperiment { variants, .. } | Change::ChangeExperimentWeights { variants, .. } => {
                &variants[0].version_string
            }
            Change::StopExperiment { keep, .. } => keep,
        }
    }

    /// One line for people: `deploy v2 of bot`.
    pub fn describe(&self) -> String {
        let split = |variants: &[SplitVariant]| {
            variants.iter().map(|v| format!("{} {}%", v.version_string, v.weight)).collect::<Vec<_>>().join(" / ")
        };
        match self {
            Change::Deploy { prompt_name, version_string } => format!("deploy {version_string} of {prompt_name}"),
            Change::Rollback { prompt_name, to_version_string } => {
                format!("roll {prompt_name} back to {to_version_string}")
            }
            Change::StartExperiment { prompt_name, variants, .. } => {
                format!("split {prompt_name}: {}", split(variants))
            }
            Change::ChangeExperimentWeights { prompt_name, variants } => {
                format!("reweight {prompt_name}: {}", split(variants))
            }
            Change::StopExperiment { prompt_name, keep } => format!("stop {prompt_name}'s split, keeping {keep}"),
        }
    }
}

impl Served {
    pub fn nothing(prompt_name: PromptName) -> Self {
        Self { prompt_name, prompt_id: None, version_string: None, experiment: None }
    }

    /// What `state` serves in `environment`.
    pub fn of(state: &PromptState, name: &PromptName, environment: &EnvironmentName) -> Self {
        let Some(p) = state.live() else { return Self::nothing(name.clone()) };
        Self {
            prompt_name: name.clone(),
            prompt_id: Some(p.prompt_id),
            version_string: p.live_version(environment).cloned(),
            experiment: p
                .experiments
                .get(environment)
                .map(|x| ServedSplit { experiment_id: x.experiment_id, variants: x.variants.clone() }),
        }
    }

    /// `v2`, `split v1 50% / v2 50%` or `nothing`.
    pub fn describe(&self) -> String {
        match (&self.experiment, &self.version_string) {
            (Some(x), _) => format!(
                "split {}",
                x.variants
                    .iter()
                    .map(|v| format!("{} {}%", v.version_string, v.weight))
                    .collect::<Vec<_>>()
                    .join(" / ")
            ),
            (None, Some(v)) => v.to_string(),
            (None, None) => "nothing".into(),
        }
    }
}
