//! The write side's view across prompts, for the rules that involve more than one:
//! a version's includes must resolve where it is served, a prompt others still
//! include cannot be deleted, includes must not form a cycle, and a resolved text stays
//! within a size limit.
//!
//! A command is decided on its own prompt's stream ([`crate::prompt::decide`]); these
//! rules cannot be, because two commands on different prompts (a deploy of `bot` that
//! includes `persona`, a delete of `persona`) could each pass a check made before the
//! other was appended. So the writer keeps a [`Catalog`] folded from the log itself and
//! [`Catalog::admit`]s each command's events while it holds the append lock, against
//! the exact state of the log at that moment, in the order appends commit.
//!
//! ```
//! use promptos_core::catalog::Catalog;
//! use promptos_core::events::*;
//! use promptos_core::names::*;
//! use uuid::Uuid;
//!
//! let name = |n| PromptName::parse(n).unwrap();
//! let v1 = VersionString::parse("v1").unwrap();
//! let mut catalog = Catalog::default();
//! let created = Event::PromptCreated(PromptCreated {
//!     prompt_id: Uuid::nil(), name: name("bot"), description: Description::parse("").unwrap(),
//! });
//! catalog.admit(&[created]).unwrap();
//! // A version that includes a prompt that does not exist is refused.
//! let mut version = VersionCreated::plain_text(
//!     Uuid::nil(), name("bot"), v1, "{% include \"persona\" %}".into(), vec![]);
//! version.includes = vec![name("persona")];
//! let refused = catalog.admit(&[Event::VersionCreated(version)]).unwrap_err();
//! assert!(refused.to_string().contains("does not exist"));
//! ```

use crate::error::DomainError;
pub use crate::error::IncludeError;
use crate::events::{Event, VersionCreated};
use crate::names::{EnvironmentName, PromptName, VersionString};
use crate::prompt::{evolve, LivePrompt, PromptState};
use crate::template::include_tags;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

pub use crate::template::{MAX_INCLUDE_DEPTH, MAX_RESOLVED_BYTES};

/// What the catalog keeps of a version: enough to resolve its size and includes, not
/// its text.
#[derive(Debug, Clone)]
struct VersionFacts {
    /// A text version (only those can be included).
    text: bool,
    /// Bytes of its templates outside include tags.
    bytes: usize,
    /// The prompt each include tag names, once per tag (a prompt included twice counts
    /// twice towards the size).
    tags: Box<[PromptName]>,
}

impl VersionFacts {
    fn of(e: &VersionCreated) -> Self {
        let templates: Vec<&str> = match &e.messages {
            Some(messages) => messages.iter().map(|m| m.content.as_str()).collect(),
            None => vec![e.text.as_str()],
        };
        let mut bytes = 0;
        let mut tags = Vec::new();
        for template in templates {
            bytes += template.len();
            if e.includes.is_empty() {
                continue;
            }
            match include_tags(template) {
                Ok(found) => {
                    for tag in found {
                        bytes -= tag.span.len();
                        tags.push(tag.prompt);
                    }
                }
                // A stored template always parses; should one not, its recorded includes
                // still count, once each.
                Err(_) => tags.extend(e.includes.iter().cloned()),
            }
        }
        Self { text: e.messages.is_none(), bytes, tags: tags.into_boxed_slice() }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    prompt: LivePrompt,
    versions: HashMap<VersionString, VersionFacts>,
    /// The version created last (the "may include" edges of a prompt count it, as the
    /// version most likely to be deployed next).
    latest: Option<VersionString>,
}

impl Entry {
    /// The versions served in `env`: the live one and any running experiment's variants.
    fn serving(&self, env: &EnvironmentName) -> BTreeSet<&VersionString> {
        let mut out: BTreeSet<&VersionString> = self.prompt.live_version(env).into_iter().collect();
        if let Some(x) = self.prompt.experiments.get(env) {
            out.extend(x.variants.iter().map(|v| &v.version_string));
        }
        out
    }

    /// Every environment where something is served.
    fn environments(&self) -> BTreeSet<&EnvironmentName> {
        let live = self.prompt.deployments.iter().filter(|(_, stack)| !stack.is_empty()).map(|(e, _)| e);
        live.chain(self.prompt.experiments.keys()).collect()
    }

    fn includes(&self, version: &VersionString, prompt: &PromptName) -> bool {
        self.versions.get(version).is_some_and(|f| f.tags.contains(prompt))
    }
}

/// Undoes what one admitted command did to the catalog, should its append not commit.
#[derive(Debug)]
pub struct Undo {
    name: PromptName,
    before: Option<Entry>,
}

/// Every live prompt's versions (their includes and sizes), what each environment serves
/// of it, and who includes whom: the write side's exact view, folded from the log.
#[derive(Debug, Default)]
pub struct Catalog {
    /// The log position folded so far.
    position: i64,
    prompts: HashMap<PromptName, Entry>,
    /// For a prompt name, the live prompts with a version that includes it.
    includers: HashMap<PromptName, BTreeSet<PromptName>>,
}

impl Catalog {
    /// The last log position folded in.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Records that everything up to `position` is folded in (the writer calls it once
    /// a batch committed, or after folding events others appended).
    pub fn set_position(&mut self, position: i64) {
        self.position = self.position.max(position);
    }

    /// Folds an event that is already in the log. Events of other kinds than prompts are
    /// ignored.
    pub fn apply(&mut self, event: &Event) {
        let Some((_, name)) = event.prompt() else { return };
        match event {
            Event::PromptCreated(_) => {
                let prompt = match evolve(PromptState::Absent, event) {
                    PromptState::Live(p) => p,
                    _ => unreachable!("a created prompt is live"),
                };
                self.remove(name);
                self.insert(name.clone(), Entry { prompt, versions: HashMap::new(), latest: None });
            }
            Event::PromptDeleted(_) => {
                self.remove(name);
            }
            _ => {
                let Some(mut entry) = self.prompts.remove(name) else { return };
                entry.prompt = match evolve(PromptState::Live(entry.prompt), event) {
                    PromptState::Live(p) => p,
                    _ => unreachable!("only a delete ends a prompt"),
                };
                if let Event::VersionCreated(e) = event {
                    let facts = VersionFacts::of(e);
                    for included in facts.tags.iter() {
                        self.includers.entry(included.clone()).or_default().insert(name.clone());
                    }
                    entry.versions.insert(e.version_string.clone(), facts);
                    entry.latest = Some(e.version_string.clone());
                }
                self.prompts.insert(name.clone(), entry);
            }
        }
    }

    /// Checks the events one command decided (all on one prompt's stream) against every
    /// rule that spans prompts and, if they pass, folds them in. Keep the [`Undo`] until
    /// the append commits: if it does not, [`Catalog::undo`] takes them out again.
    pub fn admit(&mut self, events: &[Event]) -> Result<Option<Undo>, DomainError> {
        let Some(name) = events.iter().find_map(|e| e.prompt().map(|(_, n)| n.clone())) else {
            return Ok(None);
        };
        let before = self.prompts.get(&name).cloned();
        for event in events {
            self.apply(event);
        }
        match self.check(&name, before.as_ref(), events) {
            Ok(()) => Ok(Some(Undo { name, before })),
            Err(e) => {
                self.undo(Undo { name, before });
                Err(e)
            }
        }
    }

    /// Takes an admitted command's events out again.
    pub fn undo(&mut self, undo: Undo) {
        self.remove(&undo.name);
        if let Some(entry) = undo.before {
            self.insert(undo.name, entry);
        }
    }

    fn insert(&mut self, name: PromptName, entry: Entry) {
        for included in entry.versions.values().flat_map(|f| f.tags.iter()) {
            self.includers.entry(included.clone()).or_default().insert(name.clone());
        }
        self.prompts.insert(name, entry);
    }

    fn remove(&mut self, name: &PromptName) {
        let Some(entry) = self.prompts.remove(name) else { return };
        for included in entry.versions.values().flat_map(|f| f.tags.iter()) {
            if let Some(set) = self.includers.get_mut(included) {
                set.remove(name);
                if set.is_empty() {
                    self.includers.remove(included);
                }
            }
        }
    }

    /// The rules, on the state with the command's events folded in (`before` is the
    /// prompt as it was).
    fn check(&self, name: &PromptName, before: Option<&Entry>, events: &[Event]) -> Result<(), DomainError> {
        for event in events {
            match event {
                Event::PromptDeleted(_) => self.check_not_included(name)?,
                Event::VersionCreated(e) => self.check_new_version(name, e)?,
                _ => {}
            }
        }
        let after = self.prompts.get(name);
        let mut environments: BTreeSet<&EnvironmentName> = BTreeSet::new();
        environments.extend(before.iter().flat_map(|b| b.environments()));
        environments.extend(after.iter().flat_map(|a| a.environments()));
        for env in environments {
            let was = before.map(|b| b.serving(env)).unwrap_or_default();
            let is = after.map(|a| a.serving(env)).unwrap_or_default();
            if was != is {
                self.check_served(name, env)?;
            }
        }
        Ok(())
    }

    /// A prompt cannot be deleted while another serves a version that includes it.
    fn check_not_included(&self, name: &PromptName) -> Result<(), DomainError> {
        let mut users = Vec::new();
        for includer in self.includers.get(name).into_iter().flatten().filter(|i| *i != name) {
            let Some(entry) = self.prompts.get(includer) else { continue };
            for env in entry.environments() {
                if entry.serving(env).iter().any(|v| entry.includes(v, name)) {
                    users.push(format!("{includer} ({env})"));
                }
            }
        }
        if users.is_empty() {
            Ok(())
        } else {
            Err(DomainError::StillIncluded { prompt: name.to_string(), includers: users })
        }
    }

    /// A new version includes only prompts that exist, through no cycle, and resolves
    /// within the size limit wherever its includes are served now.
    fn check_new_version(&self, name: &PromptName, e: &VersionCreated) -> Result<(), DomainError> {
        if e.includes.is_empty() {
            return Ok(());
        }
        for included in &e.includes {
            if !self.prompts.contains_key(included) {
                return Err(
                    IncludeError::NoSuchPrompt { includer: name.to_string(), prompt: included.to_string() }.into()
                );
            }
        }
        self.check_may_include_cycle(name, &e.includes)?;
        let facts = &self.prompts[name].versions[&e.version_string];
        let environments: BTreeSet<&EnvironmentName> =
            e.includes.iter().filter_map(|i| self.prompts.get(i)).flat_map(|p| p.environments()).collect();
        // Where an include is not deployed yet the version may still be created: the
        // deploy will need it. A size over the limit it would have now is refused now.
        for env in environments {
            if let Err(e @ IncludeError::TooLarge { .. }) = self.resolve(env, name, facts) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Breadth-first over "may include" edges (what a prompt's served versions and its
    /// latest version include), looking for a way back to `root`.
    fn check_may_include_cycle(&self, root: &PromptName, includes: &[PromptName]) -> Result<(), IncludeError> {
        let mut came_from: BTreeMap<&PromptName, &PromptName> = BTreeMap::new();
        let mut queue: VecDeque<&PromptName> = VecDeque::new();
        for name in includes {
            if name == root {
                return Err(IncludeError::Cycle(vec![root.to_string(), root.to_string()]));
            }
            came_from.entry(name).or_insert(root);
            queue.push_back(name);
        }
        while let Some(name) = queue.pop_front() {
            let Some(entry) = self.prompts.get(name) else { continue };
            let mut versions: BTreeSet<&VersionString> =
                entry.environments().into_iter().flat_map(|env| entry.serving(env)).collect();
            versions.extend(entry.latest.as_ref());
            for next in versions.into_iter().filter_map(|v| entry.versions.get(v)).flat_map(|f| f.tags.iter()) {
                if next == root {
                    let mut cycle = vec![name.to_string(), root.to_string()];
                    let mut at = name;
                    while let Some(prev) = came_from.get(at) {
                        cycle.insert(0, prev.to_string());
                        if *prev == root {
                            break;
                        }
                        at = prev;
                    }
                    return Err(IncludeError::Cycle(cycle));
                }
                if !came_from.contains_key(next) {
                    came_from.insert(next, name);
                    queue.push_back(next);
                }
            }
        }
        Ok(())
    }

    /// What `name` serves in `env` changed: its served versions must resolve there, and
    /// so must every prompt served there that includes it, directly or not.
    fn check_served(&self, name: &PromptName, env: &EnvironmentName) -> Result<(), DomainError> {
        let mut affected = vec![name];
        let mut seen: BTreeSet<&PromptName> = BTreeSet::from([name]);
        let mut at = 0;
        while let Some(&prompt) = affected.get(at) {
            at += 1;
            let Some(entry) = self.prompts.get(prompt) else { continue };
            for version in entry.serving(env) {
                let facts = &entry.versions[version];
                if !facts.tags.is_empty() {
                    self.resolve(env, prompt, facts)?;
                }
            }
            for includer in self.includers.get(prompt).into_iter().flatten() {
                let Some(other) = self.prompts.get(includer) else { continue };
                if other.serving(env).iter().any(|v| other.includes(v, prompt)) && seen.insert(includer) {
                    affected.push(includer);
                }
            }
        }
        Ok(())
    }

    /// The resolved size of a version of `root` served in `env`, or why it does not
    /// resolve: the same answer, for the same reasons, as the read side's resolution.
    fn resolve(&self, env: &EnvironmentName, root: &PromptName, facts: &VersionFacts) -> Result<usize, IncludeError> {
        let mut path = vec![root];
        // The sizes of included prompts already resolved for this root, so a prompt
        // included many times is resolved once. Kept per root: an included prompt's
        // subtree was checked for cycles against this root's path only.
        let mut memo = HashMap::new();
        let size = self.size_of(env, facts, &mut path, &mut memo)?;
        if size > MAX_RESOLVED_BYTES {
            return Err(IncludeError::TooLarge {
                prompt: root.to_string(),
                environment: env.to_string(),
                size,
                limit: MAX_RESOLVED_BYTES,
            });
        }
        Ok(size)
    }

    fn size_of<'a>(
        &'a self,
        env: &EnvironmentName,
        facts: &'a VersionFacts,
        path: &mut Vec<&'a PromptName>,
        memo: &mut HashMap<&'a PromptName, usize>,
    ) -> Result<usize, IncludeError> {
        let mut size = facts.bytes;
        for included in facts.tags.iter() {
            if let Some(at) = path.iter().position(|p| *p == included) {
                let mut cycle: Vec<String> = path[at..].iter().map(|p| p.to_string()).collect();
                cycle.push(included.to_string());
                return Err(IncludeError::Cycle(cycle));
            }
            if let Some(known) = memo.get(included) {
                size = size.saturating_add(*known);
                continue;
            }
            let includer = path.last().map(|p| p.to_string()).unwrap_or_default();
            if path.len() > MAX_INCLUDE_DEPTH {
                let mut chain: Vec<String> = path.iter().map(|p| p.to_string()).collect();
                chain.push(included.to_string());
                return Err(IncludeError::TooDeep(chain));
            }
            let Some(entry) = self.prompts.get(included) else {
                return Err(IncludeError::NoSuchPrompt { includer, prompt: included.to_string() });
            };
            let Some(inner) = entry.prompt.live_version(env).and_then(|v| entry.versions.get(v)) else {
                return Err(IncludeError::NotDeployed {
                    includer,
                    prompt: included.to_string(),
                    environment: env.to_string(),
                });
            };
            if !inner.text {
                return Err(IncludeError::NotText { prompt: included.to_string(), environment: env.to_string() });
            }
            path.push(included);
            let inner_size = self.size_of(env, inner, path, memo)?;
            path.pop();
            memo.insert(included, inner_size);
            size = size.saturating_add(inner_size);
            if size > MAX_RESOLVED_BYTES {
                // No need to add up the rest.
                return Ok(size);
            }
        }
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    //! Given these events in the log, when a command's events are admitted, then they
    //! pass or this rule refuses them.
    use super::*;
    use crate::content::{ChatMessage, ChatRole, PromptKind};
    use crate::events::*;
    use crate::experiment::SplitVariant;
    use crate::names::Description;
    use uuid::Uuid;

    fn n(s: &str) -> PromptName {
        PromptName::parse(s).unwrap()
    }
    fn v(s: &str) -> VersionString {
        VersionString::parse(s).unwrap()
    }
    fn env(s: &str) -> EnvironmentName {
        EnvironmentName::parse(s).unwrap()
    }
    fn created(name: &str) -> Event {
        Event::PromptCreated(PromptCreated {
            prompt_id: Uuid::nil(),
            name: n(name),
            description: Description::parse("").unwrap(),
        })
    }
    fn version(name: &str, version: &str, text: &str) -> Event {
        let t = crate::template::Template::parse(text).unwrap();
        let mut e = VersionCreated::plain_text(Uuid::nil(), n(name), v(version), text.into(), vec![]);
        e.includes = t.includes().to_vec();
        Event::VersionCreated(e)
    }
    fn chat(name: &str, version: &str) -> Event {
        let mut e = VersionCreated::plain_text(Uuid::nil(), n(name), v(version), String::new(), vec![]);
        e.kind = PromptKind::Chat;
        e.messages = Some(vec![ChatMessage { role: ChatRole::parse("user", "role").unwrap(), content: "Hi".into() }]);
        Event::VersionCreated(e)
    }
    fn deployed(name: &str, environment: &str, version: &str) -> Event {
        Event::VersionDeployed(VersionDeployed {
            prompt_id: Uuid::nil(),
            name: n(name),
            environment: env(environment),
            version_string: v(version),
            previous_version_string: None,
            gate: None,
        })
    }
    fn split(name: &str, environment: &str, versions: &[&str]) -> Event {
        Event::ExperimentStarted(ExperimentStarted {
            prompt_id: Uuid::nil(),
            name: n(name),
            environment: env(environment),
            experiment_id: Uuid::nil(),
            variants: versions.iter().map(|s| SplitVariant { version_string: v(s), weight: 50 }).collect(),
            buckets: vec![0; 100],
            previous_version_string: None,
            gates: vec![],
        })
    }
    fn deleted(name: &str) -> Event {
        Event::PromptDeleted(PromptDeleted { prompt_id: Uuid::nil(), name: n(name) })
    }
    fn given(events: &[Event]) -> Catalog {
        let mut catalog = Catalog::default();
        for e in events {
            catalog.admit(std::slice::from_ref(e)).expect("the given events are admitted");
        }
        catalog
    }
    fn refusal(catalog: &mut Catalog, events: &[Event]) -> String {
        catalog.admit(events).expect_err("refused").to_string()
    }

    #[test]
    fn a_version_may_include_only_prompts_that_exist_and_no_cycle() {
        let mut c = given(&[created("persona"), created("bot"), version("persona", "v1", "Ava")]);
        assert!(refusal(&mut c, &[version("bot", "v1", "{% include \"nobody\" %}")]).contains("does not exist"));
        c.admit(&[version("bot", "v1", "{% include \"persona\" %} hi")]).unwrap();
        let cycle = refusal(&mut c, &[version("persona", "v2", "{% include \"bot\" %}")]);
        assert!(cycle.contains("persona → bot → persona"), "{cycle}");
    }

    #[test]
    fn a_deploy_needs_its_includes_deployed_there_as_text() {
        let mut c = given(&[
            created("persona"),
            created("bot"),
            version("persona", "v1", "Ava"),
            chat("persona", "v2"),
            version("bot", "v1", "{% include \"persona\" %}"),
        ]);
        assert!(refusal(&mut c, &[deployed("bot", "staging", "v1")]).contains("not deployed in \"staging\""));
        c.admit(&[deployed("persona", "staging", "v2")]).unwrap();
        assert!(refusal(&mut c, &[deployed("bot", "staging", "v1")]).contains("chat prompt"));
        c.admit(&[deployed("persona", "staging", "v1")]).unwrap();
        c.admit(&[deployed("bot", "staging", "v1")]).unwrap();
        // Now that bot includes it there, persona cannot turn into a chat prompt there.
        assert!(refusal(&mut c, &[deployed("persona", "staging", "v2")]).contains("chat prompt"));
    }

    #[test]
    fn an_include_reached_only_through_an_experiment_variant_counts() {
        let mut c = given(&[
            created("persona"),
            created("bot"),
            version("persona", "v1", "Ava"),
            version("bot", "v1", "plain"),
            version("bot", "v2", "{% include \"persona\" %}"),
            deployed("bot", "staging", "v1"),
        ]);
        // The variant's include is not deployed: the split is refused.
        assert!(refusal(&mut c, &[split("bot", "staging", &["v1", "v2"])]).contains("not deployed"));
        c.admit(&[deployed("persona", "staging", "v1")]).unwrap();
        c.admit(&[split("bot", "staging", &["v1", "v2"])]).unwrap();
        // Only the variant includes persona, and that is enough to keep it.
        let refused = refusal(&mut c, &[deleted("persona")]);
        assert!(refused.contains("bot (staging)"), "{refused}");
    }

    #[test]
    fn a_refused_command_leaves_the_catalog_as_it_was() {
        let mut c = given(&[created("persona"), created("bot"), version("persona", "v1", "Ava")]);
        let ok = c.admit(&[version("bot", "v1", "{% include \"persona\" %}")]).unwrap().unwrap();
        refusal(&mut c, &[deployed("bot", "staging", "v1")]);
        // With bot v1 undone (its append did not commit), persona may be deleted.
        c.undo(ok);
        c.admit(&[deleted("persona")]).unwrap();
    }

    #[test]
    fn resolved_size_is_bounded_at_creation_and_at_every_deploy_that_grows_it() {
        let leaf = "x".repeat(2048);
        let fan = |name: &str, n: usize| (0..n).map(|_| format!("{{% include \"{name}\" %}}")).collect::<String>();
        let mut c = given(&[
            created("leaf"),
            created("mid"),
            created("top"),
            version("leaf", "v1", "tiny"),
            version("leaf", "v2", &leaf),
            deployed("leaf", "staging", "v2"),
            version("mid", "v1", &fan("leaf", 60)),
            deployed("mid", "staging", "v1"),
        ]);
        // 60 × 60 × 2 KB would be 7 MB.
        let refused = refusal(&mut c, &[version("top", "v1", &fan("mid", 60))]);
        assert!(refused.contains("the limit is 1048576 bytes"), "{refused}");
        // With a tiny leaf it fits; growing the leaf later is refused where top is served.
        c.admit(&[deployed("leaf", "staging", "v1")]).unwrap();
        c.admit(&[version("top", "v1", &fan("mid", 60))]).unwrap();
        c.admit(&[deployed("top", "staging", "v1")]).unwrap();
        let refused = refusal(&mut c, &[deployed("leaf", "staging", "v2")]);
        assert!(refused.contains("\"top\" would resolve to"), "{refused}");
    }

    #[test]
    fn includes_nest_at_most_eight_deep() {
        let mut events = Vec::new();
        for i in 0..=MAX_INCLUDE_DEPTH + 1 {
            let name = format!("p{i}");
            events.push(created(&name));
            let text = if i == 0 { "end".to_owned() } else { format!("{{% include \"p{}\" %}}", i - 1) };
            events.push(version(&name, "v1", &text));
            if i <= MAX_INCLUDE_DEPTH {
                events.push(deployed(&name, "staging", "v1"));
            }
        }
        let mut c = given(&events);
        let refused = refusal(&mut c, &[deployed(&format!("p{}", MAX_INCLUDE_DEPTH + 1), "staging", "v1")]);
        assert!(refused.contains("nest deeper than 8"), "{refused}");
    }
}
