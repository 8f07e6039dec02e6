//! Composition: `{% include "company-persona" %}` pulls in the text of the version of
//! `company-persona` deployed in the same environment. These functions resolve
//! includes against the read models, find cycles and missing prompts, and find the
//! prompts a deploy affects through their includes.

use promptos_core::catalog::{IncludeError as Unresolved, MAX_INCLUDE_DEPTH, MAX_RESOLVED_BYTES};
use promptos_core::template::{finish_resolved, include_source, include_tags, splice_includes, IncludeTag};
use promptos_store::{on_pool, Db};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Why includes could not be resolved when a deployed prompt is read.
#[derive(Debug, thiserror::Error)]
pub enum IncludeError {
    /// Something the write side would refuse today (a prompt was deleted or redeployed
    /// in a log written before it checked, say).
    #[error(transparent)]
    Unresolved(#[from] Unresolved),
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
    let mut memo = HashMap::new();
    // Dropping the final newline leaves every tag where it was.
    let spliced =
        splice(db, environment, as_of, include_source(text), &tags, &mut path, &mut resolved, &mut memo).await?;
    if spliced.len() > MAX_RESOLVED_BYTES {
        return Err(too_large(root, environment, spliced.len()));
    }
    resolved.text = finish_resolved(spliced);
    Ok(resolved)
}

fn too_large(prompt: &str, environment: &str, size: usize) -> IncludeError {
    Unresolved::TooLarge {
        prompt: prompt.to_owned(),
        environment: environment.to_owned(),
        size,
        limit: MAX_RESOLVED_BYTES,
    }
    .into()
}

/// Included prompts already resolved during one resolution: each is read (and its own
/// includes resolved) once, however often it is included.
type Memo = HashMap<String, String>;

/// An included template with its own includes resolved.
#[allow(clippy::too_many_arguments)]
async fn expand(
    db: &Db,
    environment: &str,
    as_of: Option<&str>,
    text: &str,
    path: &mut Vec<String>,
    out: &mut Resolved,
    memo: &mut Memo,
) -> Result<String, IncludeError> {
    let tags = include_tags(text).map_err(|e| IncludeError::Template(e.to_string()))?;
    if tags.is_empty() {
        return Ok(text.to_owned());
    }
    splice(db, environment, as_of, text, &tags, path, out, memo).await
}

/// `text` with each of its include `tags` replaced by the included prompt's deployed
/// template, itself resolved; `path` is the chain of includers, for cycles and depth.
#[allow(clippy::too_many_arguments)]
async fn splice(
    db: &Db,
    environment: &str,
    as_of: Option<&str>,
    text: &str,
    tags: &[IncludeTag],
    path: &mut Vec<String>,
    out: &mut Resolved,
    memo: &mut Memo,
) -> Result<String, IncludeError> {
    let mut included = Vec::with_capacity(tags.len());
    // Counted as the write side counts it: the text outside the tags, plus what they
    // pull in.
    let mut size = text.len() - tags.iter().map(|t| t.span.len()).sum::<usize>();
    for tag in tags {
        let name = tag.prompt.as_str();
        let includer = path.last().cloned().unwrap_or_default();
        if let Some(at) = path.iter().position(|p| p == name) {
            let mut cycle = path[at..].to_vec();
            cycle.push(name.to_owned());
            return Err(Unresolved::Cycle(cycle).into());
        }
        if let Some(done) = memo.get(name) {
            size += done.len();
            if size > MAX_RESOLVED_BYTES {
                return Err(too_large(&path[0], environment, size));
            }
            included.push(done.clone());
            continue;
        }
        if path.len() > MAX_INCLUDE_DEPTH {
            let mut chain = path.clone();
            chain.push(name.to_owned());
            return Err(Unresolved::TooDeep(chain).into());
        }
        let deployed = match as_of {
            None => crate::deployed::deployed(db, name, environment).await?,
            Some(at) => crate::deployed::deployed_as_of(db, name, environment, at).await?,
        };
        let Some(deployed) = deployed else {
            return Err(Unresolved::NotDeployed {
                includer,
                prompt: name.to_owned(),
                environment: environment.to_owned(),
            }
            .into());
        };
        if deployed.kind != "text" {
            return Err(Unresolved::NotText { prompt: name.to_owned(), environment: environment.to_owned() }.into());
        }
        out.includes.insert(name.to_owned(), deployed.version_string.clone());
        out.position = out.position.max(deployed.position);
        path.push(name.to_owned());
        let text = Box::pin(expand(db, environment, as_of, include_source(&deployed.text), path, out, memo)).await?;
        path.pop();
        size += text.len();
        if size > MAX_RESOLVED_BYTES {
            return Err(too_large(&path[0], environment, size));
        }
        memo.insert(name.to_owned(), text.clone());
        included.push(text);
    }
    Ok(splice_includes(text, tags, &included))
}

/// `item` with every include resolved in its environment: the text, each message's
/// content and each experiment variant's text, with the variables of the resolved
/// templates and a position that moves when an included prompt is redeployed. With
/// `as_of`, includes resolve to what was deployed at that moment.
pub async fn resolve_item(
    db: &Db,
    mut item: crate::deployed::DeployedItem,
    as_of: Option<&str>,
) -> Result<crate::deployed::DeployedItem, IncludeError> {
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

/// The live prompts served in `environment` (deployed, or as a variant of a running
/// experiment) that include `prompt`, directly or through other includes, with the
/// version that includes it.
pub async fn includers(db: &Db, environment: &str, prompt: &str) -> Result<Vec<(String, String)>, sqlx::Error> {
    let changed = [(prompt.to_owned(), environment.to_owned())];
    Ok(includers_of_all(db, &changed).await?.remove(&changed[0]).unwrap_or_default())
}

/// For each changed (prompt, environment), the live prompts served there that include
/// it, directly or not, with the version that includes it: the deployed version, or an
/// experiment's variant. Two indexed queries per level of nesting for all of them
/// together, so a batch of deploys that nothing includes costs two queries.
pub async fn includers_of_all(
    db: &Db,
    changed: &[(String, String)],
) -> Result<BTreeMap<(String, String), Vec<(String, String)>>, sqlx::Error> {
    let mut out: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    // (name reached, environment, the changed prompt it leads back to)
    let mut frontier: BTreeSet<(String, String, String)> =
        changed.iter().map(|(p, e)| (p.clone(), e.clone(), p.clone())).collect();
    let mut seen: BTreeSet<(String, String, String)> = BTreeSet::new();
    for _ in 0..=MAX_INCLUDE_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let names: BTreeSet<&String> = frontier.iter().map(|(n, _, _)| n).collect();
        let deployed = "SELECT i.included, d.environment, p.name, d.version_string FROM rm_includes i \
             JOIN rm_deployments d ON d.prompt_id = i.prompt_id AND d.version_string = i.version_string \
             JOIN rm_prompts p ON p.prompt_id = d.prompt_id AND p.deleted_at IS NULL \
             WHERE i.included IN (";
        // Variants are a JSON list in the row; which of them includes is checked below.
        let in_experiments = "SELECT i.included, x.environment, p.name, i.version_string, x.variants \
             FROM rm_includes i \
             JOIN rm_experiments x ON x.prompt_id = i.prompt_id AND x.running = 1 \
             JOIN rm_prompts p ON p.prompt_id = x.prompt_id AND p.deleted_at IS NULL \
             WHERE i.included IN (";
        let mut edges: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
        macro_rules! with_names {
            ($sql:expr) => {{
                let mut q = sqlx::QueryBuilder::new($sql);
                let mut list = q.separated(", ");
                for name in &names {
                    list.push_bind(name.as_str());
                }
                q.push(")");
                q
            }};
        }
        let deployed: Vec<(String, String, String, String)> =
            on_pool!(db, pool => with_names!(deployed).build_query_as().fetch_all(pool).await)?;
        for (included, environment, includer, version) in deployed {
            edges.entry((included, environment)).or_default().push((includer, version));
        }
        let in_experiments: Vec<(String, String, String, String, String)> =
            on_pool!(db, pool => with_names!(in_experiments).build_query_as().fetch_all(pool).await)?;
        for (included, environment, includer, version, variants) in in_experiments {
            let variants: Vec<serde_json::Value> = serde_json::from_str(&variants).unwrap_or_default();
            if variants.iter().any(|v| v["version_string"].as_str() == Some(version.as_str())) {
                let list = edges.entry((included, environment)).or_default();
                if !list.iter().any(|(name, _)| *name == includer) {
                    list.push((includer, version));
                }
            }
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
