//! Prompt templates: minijinja syntax (`{{ customer_name }}`), checked when a version
//! is created so that a broken template never reaches production.

use crate::names::PromptName;
use serde::Serialize;
use std::collections::BTreeSet;

/// How deep includes may nest (a prompt that includes one that includes one …).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// The largest text a version may resolve to, includes inlined, in bytes.
pub const MAX_RESOLVED_BYTES: usize = 1024 * 1024;

/// A template that parsed, with the variables it reads from its caller and the prompts
/// it includes (`{% include "company-persona" %}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    variables: Vec<String>,
    includes: Vec<PromptName>,
}

/// A syntax error with the place it was found (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("template syntax error at line {line}, column {column}: {message}")]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Names minijinja provides itself; a template that calls `range(3)` does not expect
/// the caller to pass `range`.
const BUILTIN_GLOBALS: &[&str] = &["range", "dict", "namespace", "debug", "loop", "self", "super"];

impl Template {
    /// The largest template accepted, in bytes.
    pub const MAX_BYTES: usize = 256 * 1024;
    /// The most distinct variables a template may use.
    pub const MAX_VARIABLES: usize = 100;
    /// The most include tags a template may hold: resolution reads each, and a text
    /// that repeats an include thousands of times multiplies its size.
    pub const MAX_INCLUDE_TAGS: usize = 64;

    /// Parses `text` and extracts the variables it uses, sorted by name.
    ///
    /// ```
    /// let t = promptos_core::template::Template::parse("Hello {{ customer_name }}!").unwrap();
    /// assert_eq!(t.variables(), ["customer_name"]);
    /// let err = promptos_core::template::Template::parse("Hi\n{{ oops").unwrap_err();
    /// assert_eq!(err.line, 2);
    /// ```
    pub fn parse(text: &str) -> Result<Self, TemplateError> {
        if text.len() > Self::MAX_BYTES {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: format!("the template is {} bytes; the limit is {} bytes", text.len(), Self::MAX_BYTES),
            });
        }
        let mut env = minijinja::Environment::new();
        env.set_debug(true);
        let template = env.template_from_str(text).map_err(|e| locate(text, &e))?;
        let variables: BTreeSet<String> = template
            .undeclared_variables(false)
            .into_iter()
            .filter(|v| !BUILTIN_GLOBALS.contains(&v.as_str()))
            .collect();
        if variables.len() > Self::MAX_VARIABLES {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: format!(
                    "the template uses {} variables; the limit is {}",
                    variables.len(),
                    Self::MAX_VARIABLES
                ),
            });
        }
        let tags = include_tags(text)?;
        check_against_minijinja(text, &tags)?;
        if tags.len() > Self::MAX_INCLUDE_TAGS {
            return Err(TemplateError {
                line: 1,
                column: 1,
                message: format!(
                    "the template holds {} include tags; the limit is {}",
                    tags.len(),
                    Self::MAX_INCLUDE_TAGS
                ),
            });
        }
        let includes: BTreeSet<PromptName> = tags.into_iter().map(|t| t.prompt).collect();
        Ok(Self {
            text: text.to_owned(),
            variables: variables.into_iter().collect(),
            includes: includes.into_iter().collect(),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The prompts this template includes, sorted, without repeats.
    pub fn includes(&self) -> &[PromptName] {
        &self.includes
    }

    pub fn variables(&self) -> &[String] {
        &self.variables
    }
}

/// Makes sure the include tags we found (and will resolve) are exactly the templates
/// minijinja itself would load when rendering: its own parser reads the text, and any
/// statement that loads another template in a form we do not resolve is refused. So
/// nothing that would fail to render in an SDK can be created.
fn check_against_minijinja(text: &str, tags: &[IncludeTag]) -> Result<(), TemplateError> {
    use minijinja::machinery::{ast, parse, WhitespaceConfig};
    let tree =
        parse(text, "<template>", Default::default(), WhitespaceConfig::default()).map_err(|e| locate(text, &e))?;
    let mut loads = Vec::new();
    fn walk<'a>(stmts: &'a [ast::Stmt<'a>], out: &mut Vec<Load<'a>>) {
        for stmt in stmts {
            match stmt {
                ast::Stmt::Template(t) => walk(&t.children, out),
                ast::Stmt::ForLoop(s) => {
                    walk(&s.body, out);
                    walk(&s.else_body, out);
                }
                ast::Stmt::IfCond(s) => {
                    walk(&s.true_body, out);
                    walk(&s.false_body, out);
                }
                ast::Stmt::WithBlock(s) => walk(&s.body, out),
                ast::Stmt::SetBlock(s) => walk(&s.body, out),
                ast::Stmt::AutoEscape(s) => walk(&s.body, out),
                ast::Stmt::FilterBlock(s) => walk(&s.body, out),
                ast::Stmt::Block(s) => walk(&s.body, out),
                ast::Stmt::Macro(s) => walk(&s.body, out),
                ast::Stmt::CallBlock(s) => walk(&s.macro_decl.body, out),
                ast::Stmt::Include(s) => out.push(Load {
                    offset: s.span().start_offset as usize,
                    what: match &s.name {
                        ast::Expr::Const(c) => c.value.as_str().map(|n| Loaded::Include(n.to_owned())),
                        _ => None,
                    }
                    .unwrap_or(Loaded::NotLiteral),
                }),
                ast::Stmt::Import(s) => {
                    out.push(Load { offset: s.span().start_offset as usize, what: Loaded::Other("import") })
                }
                ast::Stmt::FromImport(s) => {
                    out.push(Load { offset: s.span().start_offset as usize, what: Loaded::Other("from … import") })
                }
                ast::Stmt::Extends(s) => {
                    out.push(Load { offset: s.span().start_offset as usize, what: Loaded::Other("extends") })
                }
                _ => {}
            }
        }
    }
    struct Load<'a> {
        offset: usize,
        what: Loaded<'a>,
    }
    enum Loaded<'a> {
        Include(String),
        /// An include of something other than a name in quotes.
        NotLiteral,
        /// Another statement that loads a template.
        Other(&'a str),
    }
    walk(std::slice::from_ref(&tree), &mut loads);
    let place = |offset: usize, message: String| {
        let before = &text[..offset.min(text.len())];
        TemplateError {
            line: before.matches('\n').count() + 1,
            column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
            message,
        }
    };
    let written_as = "write it as {% include \"prompt-name\" %}";
    let not_our_form = format!("this include is not written in the form PromptOS resolves; {written_as}");
    for load in &loads {
        match load.what {
            Loaded::Other(what) => {
                return Err(place(
                    load.offset,
                    format!("{what} is not supported: a template can only include other prompts; {written_as}"),
                ))
            }
            Loaded::NotLiteral => return Err(place(load.offset, not_our_form)),
            Loaded::Include(_) => {}
        }
    }
    let found: Vec<&str> = loads
        .iter()
        .filter_map(|l| match &l.what {
            Loaded::Include(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let ours: Vec<&str> = tags.iter().map(|t| t.prompt.as_str()).collect();
    if found != ours {
        // minijinja would load something we did not see as an include tag (or the other
        // way round, e.g. a tag inside a string): point at the first difference.
        let at = found.iter().zip(&ours).take_while(|(a, b)| a == b).count();
        let offset = loads.get(at).map(|l| l.offset).or_else(|| tags.get(at).map(|t| t.span.start)).unwrap_or(0);
        return Err(place(offset, not_our_form));
    }
    Ok(())
}

/// One `{% include "name" %}` tag: where it is in the text and what it includes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeTag {
    /// Byte range of the whole tag, from `{%` to `%}`.
    pub span: std::ops::Range<usize>,
    pub prompt: PromptName,
}

/// Every include tag in `text`, in order. An include of anything but a quoted prompt
/// name is refused: what it pulls in must be known when the version is created, so
/// that missing prompts and cycles can be refused then.
pub fn include_tags(text: &str) -> Result<Vec<IncludeTag>, TemplateError> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find('{') {
        let start = from + at;
        from = start + 1;
        if !text[from..].starts_with(['%', '#']) {
            continue;
        }
        from = start + 2;
        if text[start..].starts_with("{#") {
            // A comment: what it mentions is not included.
            from = text[from..].find("#}").map_or(text.len(), |end| from + end + 2);
            continue;
        }
        let after_open = text[from..].trim_start_matches(['-', '+']).trim_start();
        if let Some(rest) = after_open.strip_prefix("raw") {
            if rest.starts_with(|c: char| c.is_whitespace() || c == '-' || c == '%') {
                // A raw block is text: an include tag in it is shown, not followed.
                from = text[from..]
                    .find("endraw")
                    .and_then(|end| text[from + end..].find("%}").map(|close| from + end + close + 2))
                    .unwrap_or(text.len());
                continue;
            }
        }
        let Some(argument) = after_open.strip_prefix("include") else { continue };
        if !argument.starts_with(char::is_whitespace) && !argument.starts_with(['"', '\'']) {
            continue; // a word that merely starts with "include"
        }
        let argument = argument.trim_start();
        let place = |message: String| {
            let before = &text[..start];
            TemplateError {
                line: before.matches('\n').count() + 1,
                column: before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1,
                message,
            }
        };
        let quote = match argument.chars().next() {
            Some(q @ ('"' | '\'')) => q,
            _ => {
                return Err(place(
                    "an include takes a prompt name in quotes, e.g. {% include \"company-persona\" %}".to_owned(),
                ))
            }
        };
        let Some(end) = argument[1..].find(quote) else {
            return Err(place("the prompt name after include is not closed by a quote".to_owned()));
        };
        let name = &argument[1..1 + end];
        let prompt = PromptName::parse(name).map_err(|e| place(format!("cannot include {name:?}: {}", e.message)))?;
        let name_end = text.len() - argument.len() + 1 + end + 1;
        let Some(close) = text[name_end..].find("%}") else {
            return Err(place("the include tag is not closed by %}".to_owned()));
        };
        let span = start..name_end + close + 2;
        from = span.end;
        found.push(IncludeTag { span, prompt });
    }
    Ok(found)
}

/// An included prompt's template as an include renders it: without its final newline,
/// which minijinja drops from every template it renders (`keep_trailing_newline` is off).
pub fn include_source(text: &str) -> &str {
    let text = text.strip_suffix('\n').unwrap_or(text);
    text.strip_suffix('\r').unwrap_or(text)
}

/// The resolved text of a whole template, spliced from its [`include_source`], made to
/// render as the template itself renders: a final newline that an include brought in
/// is kept by adding one for the renderer to drop.
pub fn finish_resolved(mut text: String) -> String {
    if text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// `text` with every tag of `tags` (from [`include_tags`] on `text`) replaced by the
/// matching entry of `included`: the included prompt's [`include_source`], its own
/// includes already spliced in. Rendering the result gives what minijinja's
/// `{% include %}` gives, whitespace control included: `{%-` trims the whitespace
/// before the tag and `-%}` the whitespace after it.
///
/// ```
/// use promptos_core::template::{include_tags, splice_includes};
/// let text = "Intro\n{%- include \"persona\" -%}\n{{ question }}";
/// let tags = include_tags(text).unwrap();
/// assert_eq!(splice_includes(text, &tags, &["You are Ava.".to_owned()]), "IntroYou are Ava.{{ question }}");
/// ```
pub fn splice_includes(text: &str, tags: &[IncludeTag], included: &[String]) -> String {
    let mut out = String::with_capacity(text.len() + included.iter().map(String::len).sum::<usize>());
    let mut copied = 0;
    let mut trim_next = false;
    for (tag, inner) in tags.iter().zip(included) {
        let mut before = &text[copied..tag.span.start];
        if trim_next {
            before = before.trim_start();
        }
        if text[tag.span.start + 2..].starts_with('-') {
            before = before.trim_end();
        }
        out.push_str(before);
        out.push_str(inner);
        trim_next = text[..tag.span.end - 2].ends_with('-');
        copied = tag.span.end;
    }
    let rest = &text[copied..];
    out.push_str(if trim_next { rest.trim_start() } else { rest });
    out
}

/// Turns minijinja's byte offset into the line and column a person sees in an editor.
fn locate(source: &str, err: &minijinja::Error) -> TemplateError {
    let message = err.detail().map(str::to_owned).unwrap_or_else(|| err.kind().to_string());
    let (line, column) = match err.range() {
        Some(range) => {
            let offset = range.start.min(source.len());
            let before = &source[..offset];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            (line, column)
        }
        None => (err.line().unwrap_or(1), 1),
    };
    TemplateError { line, column, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_variables_used_by_the_template() {
        let t =
            Template::parse("Hi {{customer_name}}, {% for i in range(3) %}{{ i }}{% endfor %} {{ order.id }}").unwrap();
        assert_eq!(t.variables(), ["customer_name", "order"]);
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = Template::parse("line one\nHello {{ name }\n").unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.column > 1, "{err}");
        let err = Template::parse("{% if x %}never closed").unwrap_err();
        assert_eq!(err.line, 1, "{err}");
    }

    #[test]
    fn refuses_templates_with_too_many_variables() {
        let text = |n: usize| (0..n).map(|i| format!("{{{{ v{i} }}}}")).collect::<String>();
        assert_eq!(Template::parse(&text(Template::MAX_VARIABLES)).unwrap().variables().len(), 100);
        let err = Template::parse(&text(Template::MAX_VARIABLES + 1)).unwrap_err();
        assert_eq!(err.message, "the template uses 101 variables; the limit is 100");
    }

    #[test]
    fn finds_the_prompts_a_template_includes() {
        let t = Template::parse(
            "{% include \"company-persona\" %}\n{%- include 'safety.v2' -%} {{ x }} {% include \"company-persona\" %}",
        )
        .unwrap();
        let names: Vec<&str> = t.includes().iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["company-persona", "safety.v2"]);
        assert!(Template::parse("{% if included %}x{% endif %}").unwrap().includes().is_empty());
        let shown = "{# {% include \"a\" %} #}{% raw %}{% include \"b\" %}{% endraw %}{% include \"c\" %}";
        let names: Vec<String> = Template::parse(shown).unwrap().includes().iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["c"], "comments and raw blocks include nothing");
        let err = Template::parse("Hi\n  {% include persona_name %}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 3));
        assert!(err.message.contains("in quotes"), "{err}");
        let err = Template::parse("{% include \"Not A Name\" %}").unwrap_err();
        assert!(err.message.contains("cannot include"), "{err}");
    }

    #[test]
    fn only_includes_in_the_form_we_resolve_are_accepted_as_minijinja_reads_them() {
        for (text, why) in [
            ("{%include(\"missing\")%}", "form PromptOS resolves"),
            ("Hi {% include \"a\" ~ \"b\" %}", "form PromptOS resolves"),
            ("{% import \"macros\" as m %}{{ m.x() }}", "import is not supported"),
            ("{% from \"macros\" import x %}", "from … import is not supported"),
            ("{% extends \"base\" %}", "extends is not supported"),
            ("{% if x %}{% include [\"a\", \"b\"] %}{% endif %}", "in quotes"),
            ("{{ \"{% include 'a' %}\" }}", "form PromptOS resolves"),
        ] {
            let err = Template::parse(text).expect_err(text);
            assert!(err.message.contains(why), "{text}: {err}");
        }
        // Includes inside blocks, loops and macros are found; `ignore missing` is fine.
        let t = Template::parse(
            "{% macro m() %}{% include \"a\" %}{% endmacro %}{% for i in x %}{%- include 'b' ignore missing %}{% endfor %}",
        )
        .unwrap();
        assert_eq!(t.includes().iter().map(|n| n.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn a_template_holds_at_most_64_include_tags() {
        let tags = |n: usize| "{% include \"persona\" %}".repeat(n);
        assert_eq!(Template::parse(&tags(Template::MAX_INCLUDE_TAGS)).unwrap().includes().len(), 1);
        let err = Template::parse(&tags(8000)).unwrap_err();
        assert_eq!(err.message, "the template holds 8000 include tags; the limit is 64");
    }

    /// Resolves `name`'s includes from `sources` the way the projector does.
    fn spliced(text: &str, sources: &[(&str, &str)]) -> String {
        let tags = include_tags(text).unwrap();
        let included: Vec<String> = tags
            .iter()
            .map(|t| {
                let source = sources.iter().find(|(n, _)| *n == t.prompt.as_str()).unwrap().1;
                spliced(include_source(source), sources)
            })
            .collect();
        splice_includes(text, &tags, &included)
    }

    #[test]
    fn spliced_includes_render_as_minijinja_renders_includes() {
        let sources = [
            ("persona", "You are {{ agent }}.\n"),
            ("safety", "Be kind.  \n{%- include 'persona' %}\n\n"),
            ("blank", "\n"),
        ];
        let roots = [
            "Hi {{ name }}. {% include \"persona\" %} Bye.",
            "A\n{%- include \"persona\" -%}\n  B",
            "A {% include 'persona' %}{%- include 'safety' -%}   {{ name }}",
            "{% include 'safety' %}",
            "{% include 'safety' %}\n",
            "x{% include 'blank' %}y\r\n",
            "{%- include 'persona' +%}\n{% if name %} {{ name }}{% endif %}",
            "{# {% include 'nowhere' %} #}{% include 'persona' %}",
            "{% raw %}Write {% include \"nowhere\" %} to include.{% endraw %} {% include 'persona' %}",
            "{%- raw -%} {% include 'nowhere' %} {%- endraw %}",
        ];
        let mut env = minijinja::Environment::new();
        for (name, source) in sources {
            env.add_template(name, source).unwrap();
        }
        let ctx = minijinja::context! { name => "Alex", agent => "Ava" };
        for root in roots {
            let expected = env.render_str(root, &ctx).unwrap();
            let resolved = finish_resolved(spliced(include_source(root), &sources));
            assert!(include_tags(&resolved).unwrap().is_empty(), "{resolved:?}");
            assert_eq!(env.render_str(&resolved, &ctx).unwrap(), expected, "{root:?} resolved to {resolved:?}");
        }
    }

    #[test]
    fn refuses_oversized_templates() {
        let big = "x".repeat(Template::MAX_BYTES + 1);
        assert!(Template::parse(&big).unwrap_err().message.contains("limit"));
    }
}
