//! A deployed prompt as the SDK holds it: text compiled once per version.

use crate::error::{Error, Result};
use minijinja::{Environment, UndefinedBehavior, Value};

/// An A/B experiment as the server sent it; [`Experiment::variant_for`] picks a
/// subject's variant with the same bucketing as the server.
pub use promptos_core::wire::DeployedExperiment as Experiment;
/// A prompt version as the server sent it (see [`crate::Prompts::get_template`]): the
/// wire contract's deployed answer, shared with the server.
///
/// ```
/// let t: promptos_sdk::Template = serde_json::from_str(r#"{"prompt_name": "greeting",
///     "environment": "production", "version_string": "v1", "prompt_text": "Hello {{ name }}",
///     "variables": ["name"], "position": 7}"#).unwrap();
/// assert_eq!(t.variables, ["name"]);
/// ```
pub use promptos_core::wire::DeployedPrompt as Template;
/// One arm of an experiment.
pub use promptos_core::wire::DeployedVariant as Variant;
/// A chat message: a role (`system`, `user`, `assistant`, `tool`) and its content.
pub use promptos_core::wire::Message;

/// A template with its compiled form (and its experiment's variants, compiled too).
pub(crate) struct Compiled {
    pub template: Template,
    pub etag: Option<String>,
    body: Body,
    /// The experiment's variants, compiled, in its order.
    variants: Vec<Body>,
}

/// A version's wording, compiled: one template, or chat messages (role and template).
enum Body {
    Text(Plan),
    Chat(Vec<(String, Plan)>),
}

impl Body {
    fn new(prompt: &str, text: &str, messages: Option<&Vec<Message>>, strict: bool) -> Result<Self> {
        Ok(match messages {
            Some(ms) => Body::Chat(
                ms.iter()
                    .map(|m| Ok((m.role.clone(), Plan::new(prompt, &m.content, strict)?)))
                    .collect::<Result<_>>()?,
            ),
            None => Body::Text(Plan::new(prompt, text, strict)?),
        })
    }
}

/// The parts of a version a render needs besides its body.
struct Wording<'a> {
    prompt: &'a str,
    version_string: &'a str,
    variables: &'a [String],
    config: Option<&'a serde_json::Value>,
}

fn wrong_kind(prompt: &str, kind: &str, hint: &str) -> Error {
    Error::WrongKind { prompt: prompt.to_owned(), kind: kind.to_owned(), hint: hint.to_owned() }
}

fn render_text(body: &Body, w: &Wording, vars: &Value, strict: bool) -> Result<String> {
    match body {
        Body::Text(plan) => render(plan, w.prompt, w.variables, vars, strict),
        Body::Chat(_) => Err(wrong_kind(w.prompt, "chat", "get_chat")),
    }
}

fn render_chat(body: &Body, w: &Wording, vars: &Value, strict: bool) -> Result<crate::ChatPrompt> {
    let Body::Chat(messages) = body else { return Err(wrong_kind(w.prompt, "text", "get")) };
    // `variables` covers every message: check them once, then render each.
    if strict {
        let absent = |v: &&String| vars.get_attr(v).map_or(true, |x| x.is_undefined());
        if let Some(missing) = w.variables.iter().find(absent) {
            return Err(Error::MissingVariable { prompt: w.prompt.to_owned(), name: missing.clone() });
        }
    }
    let messages = messages
        .iter()
        .map(|(role, plan)| Ok(Message { role: role.clone(), content: render(plan, w.prompt, &[], vars, strict)? }))
        .collect::<Result<Vec<_>>>()?;
    Ok(crate::ChatPrompt {
        messages,
        config: w.config.cloned(),
        version_string: w.version_string.to_owned(),
        experiment_id: None,
    })
}

/// How a template is rendered. Most prompts only substitute variables; those are cut
/// into literal and variable segments once and rendered by concatenation, several times
/// faster than the template engine. Anything else (tags, filters, attributes,
/// comments, whitespace control) goes to minijinja. Both give the same output.
enum Plan {
    /// `names`: each variable once, in order of first use; segments refer to them.
    Segments {
        segments: Vec<Segment>,
        names: Vec<String>,
        literal_len: usize,
    },
    Jinja(Environment<'static>),
}

enum Segment {
    Literal(String),
    /// An index into the plan's `names`.
    Variable(usize),
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Segments for a template that only substitutes plain variables, and the variables'
/// names, or None.
fn segments(text: &str) -> Option<(Vec<Segment>, Vec<String>)> {
    if text.contains("{%") || text.contains("{#") {
        return None;
    }
    // minijinja drops one trailing newline (then one carriage return) by default.
    let mut source = text.strip_suffix('\n').unwrap_or(text);
    source = source.strip_suffix('\r').unwrap_or(source);
    let mut out = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}")? + start;
        let name = rest[start + 2..end].trim_matches(' ');
        if !is_identifier(name) || name == "none" || name == "true" || name == "false" {
            return None;
        }
        if start > 0 {
            out.push(Segment::Literal(rest[..start].to_owned()));
        }
        let index = names.iter().position(|n| n == name).unwrap_or_else(|| {
            names.push(name.to_owned());
            names.len() - 1
        });
        out.push(Segment::Variable(index));
        rest = &rest[end + 2..];
    }
    if rest.contains("}}") {
        return None;
    }
    if !rest.is_empty() {
        out.push(Segment::Literal(rest.to_owned()));
    }
    Some((out, names))
}

const NAME: &str = "prompt";

/// Instructions a render may execute: templates come from the server, so a loop that
/// never ends (or runs for minutes) must fail instead of taking the application with it.
/// A long prompt with loops and conditionals needs a few thousand.
pub(crate) const RENDER_FUEL: u64 = 1_000_000;

impl Plan {
    fn new(prompt: &str, text: &str, strict: bool) -> Result<Self> {
        if let Some((segments, names)) = segments(text) {
            let literal_len = segments.iter().map(|s| if let Segment::Literal(l) = s { l.len() } else { 0 }).sum();
            return Ok(Plan::Segments { segments, names, literal_len });
        }
        let mut env = Environment::new();
        env.set_fuel(Some(RENDER_FUEL));
        env.set_undefined_behavior(if strict { UndefinedBehavior::Strict } else { UndefinedBehavior::Lenient });
        // Prompts are text, not HTML.
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_template_owned(NAME, text.to_owned())
            .map_err(|e| Error::Render { prompt: prompt.to_owned(), message: e.to_string() })?;
        Ok(Plan::Jinja(env))
    }
}

impl Compiled {
    pub fn new(template: Template, etag: Option<String>, strict: bool) -> Result<Self> {
        let name = &template.prompt_name;
        let body =
            Body::new(name, template.prompt_text.as_deref().unwrap_or_default(), template.messages.as_ref(), strict)?;
        let variants = match &template.experiment {
            Some(x) => x
                .variants
                .iter()
                .map(|v| Body::new(name, v.prompt_text.as_deref().unwrap_or_default(), v.messages.as_ref(), strict))
                .collect::<Result<Vec<_>>>()?,
            None => Vec::new(),
        };
        Ok(Self { template, etag, body, variants })
    }

    fn wording(&self) -> Wording<'_> {
        let t = &self.template;
        Wording {
            prompt: &t.prompt_name,
            version_string: &t.version_string,
            variables: &t.variables,
            config: t.config.as_ref(),
        }
    }

    pub fn render(&self, vars: &Value, strict: bool) -> Result<String> {
        render_text(&self.body, &self.wording(), vars, strict)
    }

    pub fn render_chat(&self, vars: &Value, strict: bool) -> Result<crate::ChatPrompt> {
        render_chat(&self.body, &self.wording(), vars, strict)
    }

    /// The experiment variant `subject_key` sees (its body and wording, and the
    /// experiment's id), or the live version when no experiment runs.
    fn variant(&self, subject_key: &str) -> Result<(&Body, Wording<'_>, Option<String>)> {
        let Some(x) = &self.template.experiment else { return Ok((&self.body, self.wording(), None)) };
        let name = &self.template.prompt_name;
        let i = x.variant_for(name, subject_key);
        match (x.variants.get(i), self.variants.get(i)) {
            (Some(v), Some(body)) => Ok((
                body,
                Wording {
                    prompt: name,
                    version_string: &v.version_string,
                    variables: &v.variables,
                    config: v.config.as_ref(),
                },
                Some(x.experiment_id.clone()),
            )),
            _ => Err(Error::Render { prompt: name.clone(), message: "the experiment has no variants".into() }),
        }
    }

    /// The text variant `subject_key` sees, rendered, with its version string and the
    /// experiment's id; without an experiment, the live version.
    pub fn render_for(&self, subject_key: &str, vars: &Value, strict: bool) -> Result<crate::Served> {
        let (body, wording, experiment_id) = self.variant(subject_key)?;
        Ok(crate::Served {
            text: render_text(body, &wording, vars, strict)?,
            version_string: wording.version_string.to_owned(),
            experiment_id,
        })
    }

    /// The chat variant `subject_key` sees, rendered, with its configuration.
    pub fn render_chat_for(&self, subject_key: &str, vars: &Value, strict: bool) -> Result<crate::ChatPrompt> {
        let (body, wording, experiment_id) = self.variant(subject_key)?;
        let mut chat = render_chat(body, &wording, vars, strict)?;
        chat.experiment_id = experiment_id;
        Ok(chat)
    }
}

fn render(plan: &Plan, prompt: &str, variables: &[String], vars: &Value, strict: bool) -> Result<String> {
    let missing = |name: &String| Error::MissingVariable { prompt: prompt.to_owned(), name: name.clone() };
    match plan {
        Plan::Segments { segments, names, literal_len } => {
            // Each variable is looked up and formatted once, however often it is used.
            let mut values = Vec::with_capacity(names.len());
            for name in names {
                match vars.get_attr(name) {
                    Ok(value) if !value.is_undefined() => values.push(value),
                    _ if strict => return Err(missing(name)),
                    _ => values.push(Value::from("")),
                }
            }
            // A string is written as it is (no escaping: prompts are text); anything else
            // as the template engine displays it.
            let texts: Vec<std::borrow::Cow<'_, str>> =
                values.iter().map(|v| v.as_str().map_or_else(|| v.to_string().into(), Into::into)).collect();
            let len = segments.iter().fold(*literal_len, |len, segment| match segment {
                Segment::Literal(_) => len,
                Segment::Variable(i) => len + texts[*i].len(),
            });
            let mut out = String::with_capacity(len);
            for segment in segments {
                match segment {
                    Segment::Literal(text) => out.push_str(text),
                    Segment::Variable(i) => out.push_str(&texts[*i]),
                }
            }
            Ok(out)
        }
        Plan::Jinja(env) => {
            if strict {
                let absent = |v: &&String| vars.get_attr(v).map_or(true, |x| x.is_undefined());
                if let Some(name) = variables.iter().find(absent) {
                    return Err(missing(name));
                }
            }
            let template = env.get_template(NAME).expect("the template was added at construction");
            template.render(vars).map_err(|e| Error::Render { prompt: prompt.to_owned(), message: e.to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(text: &str, variables: &[&str], strict: bool) -> Compiled {
        let t = Template {
            prompt_name: "p".into(),
            environment: "production".into(),
            version_string: "v1".into(),
            prompt_text: Some(text.into()),
            variables: variables.iter().map(|s| s.to_string()).collect(),
            position: 1,
            experiment: None,
            kind: "text".into(),
            messages: None,
            config: None,
            includes: None,
            deployed_at: String::new(),
            deployed_by: String::new(),
            prompt_id: String::new(),
        };
        Compiled::new(t, None, strict).unwrap()
    }

    #[test]
    fn strict_mode_names_the_missing_variable_and_lenient_mode_renders_empty() {
        let c = compiled("Hi {{ name }} from {{ team }}", &["name", "team"], true);
        let err = c.render(&minijinja::context! { name => "Alex" }, true).unwrap_err();
        assert_eq!(err, Error::MissingVariable { prompt: "p".into(), name: "team".into() });
        let c = compiled("Hi {{ name }} from {{ team }}", &["name", "team"], false);
        assert_eq!(c.render(&minijinja::context! { name => "Alex" }, false).unwrap(), "Hi Alex from ");
    }

    #[test]
    fn the_fast_path_renders_exactly_what_minijinja_renders() {
        let vars = minijinja::context! {
            name => "Alex", n => 42, ok => true, nothing => (), html => "<b>&</b>", f => 1.0, x => 2.5,
            list => vec![1, 2], map => minijinja::context! { k => "v" }, safe => Value::from_safe_string("<i>".into())
        };
        let cases = [
            "Hello {{ name }}!",
            "Hello {{name}}, {{ n }} {{ ok }} {{ nothing }} {{ html }}",
            "{{ name }}",
            "trailing newline {{ name }}\n",
            "trailing crlf\r\n",
            "two newlines\n\n",
            "no placeholders at all",
            "",
            "{{ name }}{{ n }}",
            "braces } and { alone",
            "{{ name }} and {{ name }} again, {{ n }}/{{ n }}",
            "{{ f }} {{ x }} {{ list }} {{ map }} {{ safe }} {{ missing }}|{{ missing }}",
        ];
        for text in cases {
            assert!(segments(text).is_some(), "{text:?} takes the fast path");
            let fast = compiled(text, &[], false).render(&vars, false).unwrap();
            let mut env = Environment::new();
            env.set_undefined_behavior(UndefinedBehavior::Lenient);
            env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
            let slow = env.render_str(text, &vars).unwrap();
            assert_eq!(fast, slow, "{text:?}");
        }
        for text in
            ["{{ a.b }}", "{{ a | upper }}", "{% if a %}x{% endif %}", "{# c #}", "{{- a }}", "{{ none }}", "x }} y"]
        {
            assert!(segments(text).is_none(), "{text:?} goes to minijinja");
        }
    }

    #[test]
    fn a_runaway_template_fails_instead_of_running_on() {
        let c = compiled("{% for a in range(10000) %}{% for b in range(10000) %}x{% endfor %}{% endfor %}", &[], true);
        let started = std::time::Instant::now();
        let err = c.render(&minijinja::context! {}, true).unwrap_err().to_string();
        assert!(err.contains("fuel"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "stopped early, not after 10^8 steps");
        // An ordinary loop still renders.
        let c = compiled("{% for i in range(3) %}{{ i }}{% endfor %}", &[], true);
        assert_eq!(c.render(&minijinja::context! {}, true).unwrap(), "012");
    }

    #[test]
    fn variants_are_chosen_by_the_servers_documented_hash() {
        // Same vectors as promptos_core::experiment's test: bucket 81, 88 and 19.
        let variant = |v: &str| Variant {
            version_string: v.into(),
            weight: 0,
            prompt_text: Some(v.into()),
            messages: None,
            config: None,
            variables: vec![],
        };
        let mut buckets = vec![0u8; 100];
        buckets[81] = 1;
        buckets[88] = 2;
        let x = Experiment {
            experiment_id: "0190c3a4-0000-7000-8000-000000000000".into(),
            variants: vec![variant("a"), variant("b"), variant("c")],
            buckets,
        };
        assert_eq!(x.variant_for("checkout", "user-42"), 1);
        assert_eq!(x.variant_for("checkout", "user-7"), 2);
        assert_eq!(x.variant_for("checkout", "alice@example.com"), 0);
    }

    #[test]
    fn text_is_not_html_escaped() {
        let c = compiled("Say {{ x }}", &["x"], true);
        assert_eq!(c.render(&minijinja::context! { x => "<b>&</b>" }, true).unwrap(), "Say <b>&</b>");
    }
}
