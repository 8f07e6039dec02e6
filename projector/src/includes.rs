//! Composition: `{% include "company-persona" %}` pulls in the text of the version of
//! `company-persona` deployed in the same environment. These functions resolve
//! includes against the read models, find cycles and missing prompts, and find the
//! prompts a deploy affects through their includes.

use crate::db::Db;
use crate::queries;
use promptos_core::template::{finish_resolved, include_source, include_tags, splice_includes, IncludeTag};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// How deep includes may nest.
pub const MAX_DEPTH: usize = 8;

/// Why includes could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    #[error(
        "prompt {includer:?} includes {prompt:?}, which is not deployed in {environment:?}; deploy it there first"
    )]
    NotDeployed { includer: String, prompt: String, environment: String },
    #[error("prompt {includer:?} includes {prompt:?}, which does not exist")]
    NoSuchPrompt { includer: String, prompt: String },
    #[error("includes form a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("prompt {prompt:?} is a chat prompt; only text prompts can be included")]
    NotText { prompt: String },
    #[error("includes nest deeper than {MAX_DEPTH} levels: {}", .0.join(" → "))]
    TooDeep(Vec<String>),
    #[error("a stored template no longer parses: {0}")]
    Template(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A template with its includes replaced by the deployed texts they name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub text: String,
    /// Every prompt pulled in (directly or not) and the version that was used.
    pub includes: BTreeMap<String, String>,
    /// The highest log position of the deployments pulled in.
    pub position: i64,
}

/// Replaces every include in `text` (a template of prompt `root`) with the template
/// deployed in `environment`, recursively: deployed now, or at the moment `as_of`
/// (fixed-width UTC text, as stored) for time travel.
pub async fn resolve(
    db: &Db,
    environment: &str,
    as_of: Option<&str>,
    root: &str,
    text: &str,
) -> Result<Resolved, IncludeError> {
    let mut resolved = Resolved { text: String::new(), includes: BTreeMap::new(), position: 0 };
    let tags = include_tags(text).map_err(|e| IncludeError::Template(e.to_string()))?;
    if tags.is_empty() {
        resolved.text = text.to_owned();
        return Ok(resolved);
    }
    let mut path = vec![root.to_owned()];
    // Dropping the final newline leaves every tag where it was.
    let spliced = splice(db, environment, as_of, include_source(text), &tags, &mut path, &mut resolved).await?;
    resolved.text = finish_resolved(spliced);
    Ok(resolved)
}

/// An included template with its own includes resolved.
async fn expand(
    db: &Db,
    environment: &str,
    as_of: Option<&str>,
    text: &str,
    path: &mut Vec<String>,
    out: &mut Resolved,
) -> Result<String, IncludeError> {
    let tags = include_tags(text).map_err(|e| IncludeError::Template(e.to_string()))?;
    if tags.is_empty() {
        return Ok(text.to_owned());
    }
    splice(db, environment, as_of, text, &tags, path, out).await
}

/// `text` with each of its include `tags` replaced by the included prompt's deployed
/// template, itself resolved; `path` is the chain of includers, for cycles and depth.
async fn splice(
    db: &Db,
    environment: &str,
    as_of: Option<&str>,
    text: &str,
    tags: &[IncludeTag],
    path: &mut Vec<String>,
    out: &mut Resolved,
) -> Result<String, IncludeError> {
    let mut included = Vec::with_capacity(tags.len());
    for tag in tags {
        let name = tag.prompt.as_str();
        let includer = path.last().cloned().unwrap_or_default();
        if let Some(at) = path.iter().position(|p| p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name.to_owned());
            return Err(IncludeError::Cycle(cycle));
        }
        if path.len() > MAX_DEPTH {
            let mut chain = path.clone();
            chain.push(name.to_owned());
            return Err(IncludeError::TooDeep(chain));
        }
        let deployed = match as_of {
            None => queries::deployed(db, name, environment).await?,
            Some(at) => queries::deployed_as_of(db, name, environment, at).await?,
        };
        let Some(deployed) = deployed else {
            return Err(IncludeError::NotDeployed {
                includer,
                prompt: name.to_owned(),
                environment: environment.to_owned(),
            });
        };
        if deployed.kind != "text" {
            return Err(IncludeError::NotText { prompt: name.to_owned() });
        }
        out.includes.insert(name.to_owned(), deployed.version_string.clone());
        out.position = out.position.max(deployed.position);
        path.push(name.to_owned());
        included.push(Box::pin(expand(db, environment, as_of, include_source(&deployed.text), path, out)).await?);
        path.pop();
    }
    Ok(splice_includes(text, tags, &included))
}

/// `item` with every include resolved in its environment: the text, each message's
/// content and each experiment variant's text, with the variables of the resolved
/// templates and a position that moves when an included prompt is redeployed. With
/// `as_of`, includes resolve to what was deployed at that moment.
pub async fn resolve_item(
    db: &Db,
    mut item: queries::DeployedItem,
    as_of: Option<&str>,
) -> Result<queries::DeployedItem, IncludeError> {
    let (env, name) = (item.environment.clone(), item.prompt_name.clone());
    let mut pulled = BTreeMap::new();
    let mut position = item.position;
    let mut into = Resolver { db, environment: &env, as_of, root: &name, pulled: &mut pulled, position: &mut position };
    if item.includes != "[]" {
        into.wording(&mut item.text, &mut item.messages, &mut item.variables).await?;
    }
    if let Some(x) = item.experiment.as_mut() {
        for v in x.variants.iter_mut().filter(|v| v.includes != "[]") {
            into.wording(&mut v.text, &mut v.messages, &mut v.variables).await?;
        }
    }
    item.position = position;
    item.resolved_includes = Some(pulled);
    Ok(item)
}

/// Where resolved includes go: the versions pulled in and the highest position seen.
struct Resolver<'a> {
    db: &'a Db,
    environment: &'a str,
    as_of: Option<&'a str>,
    root: &'a str,
    pulled: &'a mut BTreeMap<String, String>,
    position: &'a mut i64,
}

impl Resolver<'_> {
    /// Resolves a stored version's wording in place: its text, or each message's
    /// content (JSON), and adds the included texts' variables to `variables` (JSON).
    async fn wording(
        &mut self,
        text: &mut String,
        messages: &mut Option<String>,
        variables: &mut String,
    ) -> Result<(), IncludeError> {
        let mut names: BTreeSet<String> =
            serde_json::from_str::<Vec<String>>(variables).unwrap_or_default().into_iter().collect();
        match messages.as_deref() {
            Some(json) => {
                let mut list: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
                for m in &mut list {
                    let content = m["content"].as_str().unwrap_or_default().to_owned();
                    let resolved = self.template(&content).await?;
                    names.extend(variables_of(&resolved));
                    m["content"] = serde_json::Value::String(resolved);
                }
                *messages = Some(serde_json::to_string(&list).expect("JSON values serialize"));
            }
            None => {
                *text = self.template(text).await?;
                names.extend(variables_of(text));
            }
        }
        *variables = serde_json::to_string(&names).expect("names serialize");
        Ok(())
    }

    async fn template(&mut self, text: &str) -> Result<String, IncludeError> {
        let r = resolve(self.db, self.environment, self.as_of, self.root, text).await?;
        *self.position = (*self.position).max(r.position);
        self.pulled.extend(r.includes);
        Ok(r.text)
    }
}

/// The variables a resolved template reads (an included text's variables count too).
fn variables_of(text: &str) -> Vec<String> {
    promptos_core::template::Template::parse(text).map(|t| t.variables().to_vec()).unwrap_or_default()
}

/// The templates of a stored version: its text, or each message's content.
pub fn templates_of(v: &crate::projection::VersionRow) -> Vec<String> {
    match v.messages.as_deref() {
        Some(messages) => serde_json::from_str::<Vec<serde_json::Value>>(messages)
            .unwrap_or_default()
            .iter()
            .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
            .collect(),
        None => vec![v.text.clone()],
    }
}

/// Checks that `version` of `prompt` would resolve in `environment`: every prompt it
/// includes is deployed there, and nothing leads back to `prompt`.
pub async fn check_deploy(db: &Db, prompt: &str, environment: &str, version: &str) -> Result<(), IncludeError> {
    // Most versions include nothing: one indexed lookup answers that.
    let includes_something = sqlx::query(
        "SELECT 1 FROM rm_includes i JOIN rm_prompts p ON p.prompt_id = i.prompt_id AND p.deleted_at IS NULL \
         WHERE p.name = $1 AND i.version_string = $2 LIMIT 1",
    )
    .bind(prompt)
    .bind(version)
    .fetch_optional(&db.pool)
    .await?
    .is_some();
    if !includes_something {
        return Ok(());
    }
    let Some(p) = queries::live_prompt(db, prompt).await? else { return Ok(()) };
    let Some(v) = queries::version(db, &p.prompt_id, version).await? else { return Ok(()) };
    for template in templates_of(&v) {
        resolve(db, environment, None, prompt, &template).await?;
    }
    Ok(())
}

/// Checks, when a version of `root` that includes `includes` is created, that every
/// included prompt exists and that none of them leads back to `root` through the
/// versions they have deployed anywhere or their latest version.
pub async fn check_new_version(db: &Db, root: &str, includes: &[String]) -> Result<(), IncludeError> {
    for name in includes {
        if queries::live_prompt(db, name).await?.is_none() {
            return Err(IncludeError::NoSuchPrompt { includer: root.to_owned(), prompt: name.clone() });
        }
    }
    // Breadth-first over "may include" edges, remembering how each prompt was reached.
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for name in includes {
        came_from.entry(name.clone()).or_insert_with(|| root.to_owned());
        queue.push_back(name.clone());
    }
    while let Some(name) = queue.pop_front() {
        for next in may_include(db, &name).await? {
            if next == root {
                let mut cycle = vec![root.to_owned(), name.clone()];
                let mut at = name.clone();
                while let Some(prev) = came_from.get(&at).filter(|p| *p != root) {
                    cycle.insert(1, prev.clone());
                    at = prev.clone();
                }
                cycle.push(root.to_owned());
                return Err(IncludeError::Cycle(cycle));
            }
            if !came_from.contains_key(&next) {
                came_from.insert(next.clone(), name.clone());
                queue.push_back(next);
            }
        }
    }
    Ok(())
}

/// The prompts `name` includes in any version deployed anywhere, or in its latest one.
async fn may_include(db: &Db, name: &str) -> Result<BTreeSet<String>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT DISTINCT i.included FROM rm_includes i \
         JOIN rm_prompts p ON p.prompt_id = i.prompt_id AND p.deleted_at IS NULL \
         WHERE p.name = $1 AND (i.version_string = p.latest_version OR EXISTS (SELECT 1 FROM rm_deployments d \
         WHERE d.prompt_id = i.prompt_id AND d.version_string = i.version_string))",
    )
    .bind(name)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|row| sqlx::Row::try_get(row, 0)).collect()
}

/// The live prompts whose version deployed in `environment` includes `prompt`, directly
/// or through other includes, with the version each has live.
pub async fn includers(db: &Db, environment: &str, prompt: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    let changed = [(prompt.to_owned(), environment.to_owned())];
    Ok(includers_of_all(db, &changed).await?.remove(&changed[0]).unwrap_or_default())
}

/// For each changed (prompt, environment), the live prompts deployed there that include
/// it, directly or not, with their live version. One indexed query per level of
/// nesting for all of them together, so a batch of deploys that nothing includes costs
/// one query.
pub async fn includers_of_all(
    db: &Db,
    changed: &[(String, String)],
) -> Result<BTreeMap<(String, String), Vec<(String, String)>>, sqlx::Error> {
    let mut out: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    // (name reached, environment, the changed prompt it leads back to)
    let mut frontier: BTreeSet<(String, String, String)> =
        changed.iter().map(|(p, e)| (p.clone(), e.clone(), p.clone())).collect();
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    for _ in 0..=MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let names: BTreeSet<&String> = frontier.iter().map(|(n, _, _)| n).collect();
        let list: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT i.included, d.environment, p.name, d.version_string FROM rm_includes i \
             JOIN rm_deployments d ON d.prompt_id = i.prompt_id AND d.version_string = i.version_string \
             JOIN rm_prompts p ON p.prompt_id = d.prompt_id AND p.deleted_at IS NULL \
             WHERE i.included IN ({})",
            list.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for name in &names {
            query = query.bind(name.as_str());
        }
        let mut edges: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        for row in query.fetch_all(&db.pool).await? {
            let get = |i: usize| sqlx::Row::try_get::<String, _>(&row, i);
            edges.entry((get(0)?, get(1)?)).or_default().push((get(2)?, get(3)?));
        }
        let mut next = BTreeSet::new();
        for (name, env, root) in &frontier {
            for (includer, version) in edges.get(&(name.clone(), env.clone())).into_iter().flatten() {
                if includer != root && seen.insert((root.clone(), env.clone(), includer.clone())) {
                    out.entry((root.clone(), env.clone())).or_default().push((includer.clone(), version.clone()));
                    next.insert((includer.clone(), env.clone(), root.clone()));
                }
            }
        }
        frontier = next;
    }
    Ok(out)
}
