//! Folding a prompt's events into its state.

use super::{LivePrompt, PromptState, RunningExperiment};
use crate::events::Event;
use std::collections::{BTreeMap, BTreeSet};

/// Folds one event into the state. Events come from the log and were valid when they
/// were decided, so this never fails.
pub fn evolve(state: PromptState, event: &Event) -> PromptState {
    match (state, event) {
        (_, Event::PromptCreated(e)) => PromptState::Live(LivePrompt {
            prompt_id: e.prompt_id,
            name: e.name.clone(),
            description: e.description.clone(),
            tags: Vec::new(),
            versions: BTreeSet::new(),
            includes: BTreeMap::new(),
            deployments: BTreeMap::new(),
            experiments: BTreeMap::new(),
            suite: Default::default(),
        }),
        (PromptState::Live(p), Event::PromptDeleted(_)) => PromptState::Deleted { prompt_id: p.prompt_id },
        (PromptState::Live(mut p), Event::PromptUpdated(e)) => {
            p.description = e.description.clone();
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::PromptTagged(e)) => {
            p.tags = e.tags.clone();
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::VersionCreated(e)) => {
            p.versions.insert(e.version_string.clone());
            if !e.includes.is_empty() {
                p.includes.insert(e.version_string.clone(), e.includes.clone());
            }
            crate::evaluation::suite::evolve(&mut p.suite, event);
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
        (PromptState::Live(mut p), Event::ExperimentStarted(e)) => {
            p.experiments.insert(
                e.environment.clone(),
                RunningExperiment {
                    experiment_id: e.experiment_id,
                    variants: e.variants.clone(),
                    buckets: e.buckets.clone(),
                    previous_version_string: e.previous_version_string.clone(),
                },
            );
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::ExperimentWeightsChanged(e)) => {
            if let Some(running) = p.experiments.get_mut(&e.environment) {
                running.variants = e.variants.clone();
                running.buckets = e.buckets.clone();
            }
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), Event::ExperimentStopped(e)) => {
            p.experiments.remove(&e.environment);
            PromptState::Live(p)
        }
        (PromptState::Live(mut p), event) => {
            crate::evaluation::suite::evolve(&mut p.suite, event);
            PromptState::Live(p)
        }
        (state, _) => state,
    }
}
