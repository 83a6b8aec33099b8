//! Go's text/template, as Prometheus renders alert labels and annotations and Alertmanager renders
//! notifications, with html/template's escaping for HTML bodies.
//!
//! Written here rather than taken from a crate: `gtmpl` (the only maintained Go-template crate) refuses
//! `%v` and `%g` on floats, prints numbers with Rust's formatting (1e21 as `1000000000000000000000`, Go
//! prints `1e+21`), has no methods on host types (Alertmanager's `.Labels.SortedPairs`) and takes custom
//! functions as plain `fn` pointers, so `query` could not reach the evaluator.
//!
//! What is here: actions, pipelines, variables, `if`/`else if`/`range`/`with`/`break`/`continue`,
//! `define`/`template`/`block`, comments, trim markers, Go's predefined functions and printing, methods
//! on host types ([`Object`]). The host brings its own functions through [`Funcs`]. HTML escaping
//! ([`Escape::Html`]) is html/template's escaping for text and quoted attributes; the contexts
//! html/template treats differently (URLs, `<script>`, `<style>`) are not modelled.

mod args;
mod builtins;
mod exec;
pub mod gofmt;
mod parse;
pub mod text;
pub mod time;
mod value;

use std::collections::HashMap;
use std::sync::Arc;

pub use args::{as_str, as_strings, go_regex, want_args};
pub use builtins::query_escape;
pub use value::{Object, SafeHtml, Value};

/// The functions a host adds to Go's predefined ones (and which win over them, as in Go).
pub trait Funcs {
    /// Whether `name` is defined: Go's parser rejects a template calling an unknown function.
    fn has(&self, name: &str) -> bool;
    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String>;
}

/// Go's predefined functions only.
pub struct NoFuncs;

impl Funcs for NoFuncs {
    fn has(&self, _name: &str) -> bool {
        false
    }
    fn call(&self, name: &str, _args: &[Value]) -> Result<Value, String> {
        Err(format!("function {name:?} not defined"))
    }
}

/// How action output is written: as is (text/template) or HTML-escaped (html/template).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Escape {
    #[default]
    Text,
    Html,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{line}: {}{message}", if *.kind == "execute" { "executing: " } else { "" })]
pub struct TemplateError {
    pub kind: &'static str,
    pub line: usize,
    pub message: String,
}

impl TemplateError {
    fn parse(line: usize, message: &str) -> Self {
        TemplateError {
            kind: "parse",
            line,
            message: message.to_string(),
        }
    }
    fn exec(line: usize, message: &str) -> Self {
        TemplateError {
            kind: "execute",
            line,
            message: message.to_string(),
        }
    }
}

type Defs = HashMap<String, Arc<Vec<parse::Node>>>;

/// Named templates (`{{define}}`) shared by the templates parsed from the set, as Alertmanager shares
/// its default and `templates:` files with every configured string.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    defs: Defs,
}

impl TemplateSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the definitions in `text` (a template file); its text outside definitions is checked and
    /// then unused, as Go keeps it under the file's name, which nothing calls.
    pub fn add_file(&mut self, text: &str, funcs: &dyn Funcs) -> Result<(), TemplateError> {
        let parsed = parse_checked(text, funcs)?;
        add_defines(&mut self.defs, parsed.defines);
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// Parses `text` against a copy of the set: its own definitions are visible to it alone.
    pub fn parse(&self, text: &str, funcs: &dyn Funcs) -> Result<Template, TemplateError> {
        let parsed = parse_checked(text, funcs)?;
        let defs = if parsed.defines.is_empty() {
            Arc::new(self.defs.clone())
        } else {
            let mut defs = self.defs.clone();
            add_defines(&mut defs, parsed.defines);
            Arc::new(defs)
        };
        Ok(Template {
            nodes: Arc::new(parsed.nodes),
            defs,
        })
    }
}

/// Go replaces a definition with a later one, unless the later body is empty.
fn add_defines(defs: &mut Defs, new: Vec<(String, Vec<parse::Node>)>) {
    for (name, body) in new {
        let empty = body
            .iter()
            .all(|n| matches!(n, parse::Node::Text(t) if t.trim().is_empty()));
        if empty && defs.contains_key(&name) {
            continue;
        }
        defs.insert(name, Arc::new(body));
    }
}

fn parse_checked(text: &str, funcs: &dyn Funcs) -> Result<parse::Parsed, TemplateError> {
    let parsed = parse::parse(text)?;
    let check = Check { funcs };
    check.list(&parsed.nodes, &mut vec!["$".to_string()])?;
    for (_, body) in &parsed.defines {
        check.list(body, &mut vec!["$".to_string()])?;
    }
    Ok(parsed)
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Arc<Vec<parse::Node>>,
    defs: Arc<Defs>,
}

impl Template {
    /// A template on its own (its `{{define}}`s are its only named templates).
    pub fn parse(text: &str, funcs: &dyn Funcs) -> Result<Template, TemplateError> {
        TemplateSet::new().parse(text, funcs)
    }

    /// Executes as text/template does.
    pub fn execute(&self, data: &Value, funcs: &dyn Funcs) -> Result<String, TemplateError> {
        self.run(data, funcs, Escape::Text)
    }

    /// Executes with html/template's escaping of every action's output.
    pub fn execute_html(&self, data: &Value, funcs: &dyn Funcs) -> Result<String, TemplateError> {
        self.run(data, funcs, Escape::Html)
    }

    fn run(
        &self,
        data: &Value,
        funcs: &dyn Funcs,
        escape: Escape,
    ) -> Result<String, TemplateError> {
        let mut ex = exec::Exec::new(data, funcs, &self.defs, escape);
        ex.run(&self.nodes, data)?;
        Ok(ex.out)
    }
}

/// Go's parser rejects undefined variables and unknown functions when the template is parsed.
struct Check<'a> {
    funcs: &'a dyn Funcs,
}

impl Check<'_> {
    fn list(&self, nodes: &[parse::Node], scope: &mut Vec<String>) -> Result<(), TemplateError> {
        use parse::Node;
        for node in nodes {
            match node {
                Node::Text(_) | Node::Break | Node::Continue => {}
                Node::Template { pipe, .. } => {
                    if let Some(p) = pipe {
                        let mark = scope.len();
                        self.pipe(p, scope)?;
                        scope.truncate(mark);
                    }
                }
                Node::Action(p) => self.pipe(p, scope)?,
                Node::If(p, a, b) | Node::Range(p, a, b) | Node::With(p, a, b) => {
                    let mark = scope.len();
                    self.pipe(p, scope)?;
                    self.list(a, scope)?;
                    scope.truncate(mark);
                    self.pipe_uses(p, scope)?;
                    self.list(b, scope)?;
                    scope.truncate(mark);
                }
            }
        }
        Ok(())
    }

    fn pipe(&self, p: &parse::Pipeline, scope: &mut Vec<String>) -> Result<(), TemplateError> {
        self.pipe_uses(p, scope)?;
        if !p.is_assign {
            scope.extend(p.decl.iter().cloned());
        } else {
            for d in &p.decl {
                if !scope.contains(d) {
                    return Err(TemplateError::parse(
                        p.line,
                        &format!("undefined variable {d:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn pipe_uses(&self, p: &parse::Pipeline, scope: &mut Vec<String>) -> Result<(), TemplateError> {
        for cmd in &p.cmds {
            for op in cmd {
                match &op.term {
                    parse::Term::Var(v) if !scope.contains(v) => {
                        return Err(TemplateError::parse(
                            p.line,
                            &format!("undefined variable {v:?}"),
                        ));
                    }
                    parse::Term::Func(f) if !self.funcs.has(f) && !builtins::is_builtin(f) => {
                        return Err(TemplateError::parse(
                            p.line,
                            &format!("function {f:?} not defined"),
                        ));
                    }
                    parse::Term::Sub(inner) => {
                        let mark = scope.len();
                        self.pipe(inner, scope)?;
                        scope.truncate(mark);
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

/// What a call to a function takes, as far as it can be known without running the template.
#[derive(Debug, Clone, PartialEq)]
pub enum CallArg {
    /// A string literal: `{{ query "up" }}`, `{{ "up" | query }}`.
    Literal(String),
    /// The result of `printf` with a literal format: `{{ query (printf "x{a=%q}" .Labels.a) }}`,
    /// `{{ printf "x{a=%q}" .Labels.a | query }}`. The format tells the shape of the argument.
    Printf(String),
}

/// The arguments of every call to the function `func` in `text` (see [`CallArg`]); `None` when a call
/// takes anything else, which only running the template can tell. A host uses it to know, before
/// running, what a template will ask.
pub fn literal_calls(text: &str, func: &str) -> Result<Option<Vec<CallArg>>, TemplateError> {
    let parsed = parse::parse(text)?;
    let mut out = Vec::new();
    let nodes = parsed
        .nodes
        .iter()
        .chain(parsed.defines.iter().flat_map(|(_, body)| body.iter()));
    for n in nodes {
        if !literal_calls_in_node(n, func, &mut out) {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

fn literal_calls_in_node(n: &parse::Node, func: &str, out: &mut Vec<CallArg>) -> bool {
    use parse::Node;
    match n {
        Node::Text(_) | Node::Break | Node::Continue => true,
        Node::Action(p) => literal_calls_in_pipeline(p, func, out),
        Node::If(p, a, b) | Node::Range(p, a, b) | Node::With(p, a, b) => {
            literal_calls_in_pipeline(p, func, out)
                && a.iter()
                    .chain(b)
                    .all(|n| literal_calls_in_node(n, func, out))
        }
        Node::Template { pipe, .. } => pipe
            .as_ref()
            .is_none_or(|p| literal_calls_in_pipeline(p, func, out)),
    }
}

/// A command's value as a call argument: a string literal, or `printf` with a literal format.
fn known_arg(cmd: &[parse::Operand]) -> Option<CallArg> {
    use parse::Term;
    match cmd {
        [a] if a.fields.is_empty() => match &a.term {
            Term::Str(s) => Some(CallArg::Literal(s.clone())),
            Term::Sub(p) if p.cmds.len() == 1 && p.decl.is_empty() => known_arg(&p.cmds[0]),
            _ => None,
        },
        [f, format, ..] if f.term == Term::Func("printf".into()) && format.fields.is_empty() => {
            match &format.term {
                Term::Str(s) => Some(CallArg::Printf(s.clone())),
                _ => None,
            }
        }
        _ => None,
    }
}

fn literal_calls_in_pipeline(p: &parse::Pipeline, func: &str, out: &mut Vec<CallArg>) -> bool {
    use parse::Term;
    for (i, cmd) in p.cmds.iter().enumerate() {
        for op in cmd {
            if let Term::Sub(sub) = &op.term {
                if !literal_calls_in_pipeline(sub, func, out) {
                    return false;
                }
            }
        }
        let Some(first) = cmd.first() else { continue };
        if first.term != Term::Func(func.to_string()) {
            continue;
        }
        // `query ARG`, or `... | query`: the previous command's result is the argument.
        let arg = match (&cmd[1..], i) {
            ([a], _) => known_arg(std::slice::from_ref(a)),
            ([], i) if i > 0 => known_arg(&p.cmds[i - 1]),
            _ => None,
        };
        match arg {
            Some(a) => out.push(a),
            None => return false,
        }
    }
    true
}
