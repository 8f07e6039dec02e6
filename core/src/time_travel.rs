//! What changed in an environment between two moments, from what was live at each
//! (`GET /audit/diff`): prompts added, removed, moved to another version, or split
//! differently by an experiment.

use crate::wire::DeployedPrompt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How one prompt's live answer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Live at the second moment, not at the first.
    Added,
    /// Live at the first moment, not at the second (undeployed or deleted).
    Removed,
    /// Another version serves (a deploy, a rollback, a promoted winner).
    VersionChanged,
    /// Same version, but an experiment started, ended or changed its weights.
    SplitChanged,
}

/// One prompt whose live answer differs between the two moments.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployedChange<'a> {
    pub prompt_name: &'a str,
    pub kind: ChangeKind,
    pub before: Option<&'a DeployedPrompt>,
    pub after: Option<&'a DeployedPrompt>,
}

/// The versions and weights an answer serves: one version at 100 %, or an
/// experiment's variants.
fn split(d: &DeployedPrompt) -> Vec<(&str, u8)> {
    match &d.experiment {
        Some(x) => x.variants.iter().map(|v| (v.version_string.as_str(), v.weight)).collect(),
        None => vec![(d.version_string.as_str(), 100)],
    }
}

/// The changes from `before` to `after` (each what was live in one environment), by
/// prompt name. A prompt whose served version stays but whose split moves is
/// `SplitChanged`; one whose version moves is `VersionChanged` whatever its split did.
pub fn diff<'a>(before: &'a [DeployedPrompt], after: &'a [DeployedPrompt]) -> Vec<DeployedChange<'a>> {
    let mut pairs: BTreeMap<&str, (Option<&DeployedPrompt>, Option<&DeployedPrompt>)> = BTreeMap::new();
    for d in before {
        pairs.entry(&d.prompt_name).or_default().0 = Some(d);
    }
    for d in after {
        pairs.entry(&d.prompt_name).or_default().1 = Some(d);
    }
    pairs
        .into_iter()
        .filter_map(|(prompt_name, (b, a))| {
            let kind = match (b, a) {
                (None, None) => return None,
                (None, Some(_)) => ChangeKind::Added,
                (Some(_), None) => ChangeKind::Removed,
                (Some(b), Some(a)) if b.version_string != a.version_string || b.prompt_id != a.prompt_id => {
                    ChangeKind::VersionChanged
                }
                (Some(b), Some(a)) if split(b) != split(a) => ChangeKind::SplitChanged,
                _ => return None,
            };
            Some(DeployedChange { prompt_name, kind, before: b, after: a })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{DeployedExperiment, DeployedVariant};

    fn live(name: &str, version: &str) -> DeployedPrompt {
        serde_json::from_value(serde_json::json!({
            "prompt_name": name, "environment": "production", "version_string": version,
            "position": 1, "prompt_id": format!("id-{name}"),
        }))
        .unwrap()
    }

    fn split_between(name: &str, versions: &[(&str, u8)]) -> DeployedPrompt {
        let mut d = live(name, versions[0].0);
        d.experiment = Some(DeployedExperiment {
            experiment_id: "x".into(),
            variants: versions
                .iter()
                .map(|(v, w)| {
                    serde_json::from_value::<DeployedVariant>(serde_json::json!({ "version_string": v, "weight": w }))
                        .unwrap()
                })
                .collect(),
            buckets: vec![0; 100],
        });
        d
    }

    #[test]
    fn each_kind_of_change_is_named_and_unchanged_prompts_are_left_out() {
        let before = [
            live("a", "1"),
            live("b", "1"),
            live("c", "1"),
            live("same", "1"),
            split_between("w", &[("1", 50), ("2", 50)]),
        ];
        let after = [
            live("b", "2"),
            split_between("c", &[("1", 90), ("2", 10)]),
            live("new", "1"),
            live("same", "1"),
            split_between("w", &[("1", 20), ("2", 80)]),
        ];
        let kinds: Vec<(&str, ChangeKind)> = diff(&before, &after).iter().map(|c| (c.prompt_name, c.kind)).collect();
        assert_eq!(
            kinds,
            [
                ("a", ChangeKind::Removed),
                ("b", ChangeKind::VersionChanged),
                ("c", ChangeKind::SplitChanged),
                ("new", ChangeKind::Added),
                ("w", ChangeKind::SplitChanged),
            ]
        );
    }

    #[test]
    fn a_prompt_deleted_and_created_again_at_the_same_version_is_a_change() {
        let before = [live("a", "1")];
        let mut again = live("a", "1");
        again.prompt_id = "id-a-2".into();
        assert_eq!(diff(&before, &[again])[0].kind, ChangeKind::VersionChanged);
    }
}
