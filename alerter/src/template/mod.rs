//! Go text/template, as Prometheus renders alert labels and annotations.
//!
//! Written here rather than taken from a crate: `gtmpl` (the only maintained Go-template crate) refuses `%v`
//! and `%g` on floats, prints numbers with Rust's formatting (1e21 as `1000000000000000000000`, Go prints
//! `1e+21`) and takes custom functions as plain `fn` pointers, so `query` could not reach the evaluator. Rule
//! templates use a small part of the language; this module implements that part (actions, pipelines,
//! variables, `if`/`else if`/`range`/`with`/`break`/`continue`, comments, trim markers) with Go's printing.

mod exec;
pub mod funcs;
pub mod gofmt;
mod parse;
pub mod value;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use value::Value;

/// Rows of an instant query result: labels and value.
pub type QueryRows = Vec<(BTreeMap<String, String>, f64)>;

/// What a template may ask of the outside world.
pub trait Funcs {
    /// The `query` function: an instant query at the evaluation time.
    fn query(&self, q: &str) -> Result<QueryRows, String>;
    fn external_url(&self) -> Value {
        Value::Str(String::new())
    }
}

/// Functions for contexts without an evaluator (e.g. `check rules`): `query` fails.
pub struct NoQuery;

impl Funcs for NoQuery {
    fn query(&self, _q: &str) -> Result<QueryRows, String> {
        Err("query is not available here".to_string())
    }
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

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<parse::Node>,
}

/// The variables Prometheus defines before every rule template (rules/alerting.go, template.go).
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

impl Template {
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(text)?;
        check_vars(&nodes, &mut vec!["$".to_string()])?;
        Ok(Template { nodes })
    }

    /// Parses a rule's label or annotation template with Prometheus' variable definitions in front.
    pub fn parse_rule_template(text: &str) -> Result<Template, TemplateError> {
        Template::parse(&format!("{DEFS}{text}"))
    }

    pub fn execute(&self, data: &Value, funcs: &dyn Funcs) -> Result<String, TemplateError> {
        let mut ex = exec::Exec::new(data, funcs);
        ex.run(&self.nodes, data)?;
        Ok(ex.out)
    }
}

/// The data a rule template sees (Prometheus' tmplData).
pub struct AlertData<'a> {
    pub labels: &'a BTreeMap<String, String>,
    pub external_labels: &'a BTreeMap<String, String>,
    pub external_url: &'a str,
    pub value: f64,
}

impl AlertData<'_> {
    pub fn to_value(&self) -> Value {
        let mut m = BTreeMap::new();
        m.insert("Labels".to_string(), Value::labels(self.labels));
        m.insert(
            "ExternalLabels".to_string(),
            Value::labels(self.external_labels),
        );
        m.insert(
            "ExternalURL".to_string(),
            Value::Str(self.external_url.to_string()),
        );
        m.insert("Value".to_string(), Value::Float(self.value));
        Value::Struct("template.tmplData", Rc::new(m))
    }
}

/// Expands a rule template as Prometheus does: a failure becomes the text `<error expanding template: ...>`.
pub fn expand_rule_template(
    name: &str,
    text: &str,
    data: &AlertData<'_>,
    funcs: &dyn Funcs,
) -> String {
    let result =
        Template::parse_rule_template(text).and_then(|t| t.execute(&data.to_value(), funcs));
    match result {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(template = name, error = %e, "error expanding template");
            format!("<error expanding template: template: {name}:{e}>")
        }
    }
}

/// Go's parser rejects undefined variables and unknown functions when the template is parsed.
fn check_vars(nodes: &[parse::Node], scope: &mut Vec<String>) -> Result<(), TemplateError> {
    use parse::Node;
    for node in nodes {
        match node {
            Node::Text(_) | Node::Break | Node::Continue => {}
            Node::Action(p) => check_pipe(p, scope)?,
            Node::If(p, a, b) | Node::Range(p, a, b) | Node::With(p, a, b) => {
                let mark = scope.len();
                check_pipe(p, scope)?;
                check_vars(a, scope)?;
                scope.truncate(mark);
                check_pipe_uses(p, scope)?;
                check_vars(b, scope)?;
                scope.truncate(mark);
            }
        }
    }
    Ok(())
}

fn check_pipe(p: &parse::Pipeline, scope: &mut Vec<String>) -> Result<(), TemplateError> {
    check_pipe_uses(p, scope)?;
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

fn check_pipe_uses(p: &parse::Pipeline, scope: &mut Vec<String>) -> Result<(), TemplateError> {
    for cmd in &p.cmds {
        for op in cmd {
            match &op.term {
                parse::Term::Var(v) if !scope.contains(v) => {
                    return Err(TemplateError::parse(
                        p.line,
                        &format!("undefined variable {v:?}"),
                    ));
                }
                parse::Term::Func(f) if !funcs::is_known(f) => {
                    return Err(TemplateError::parse(
                        p.line,
                        &format!("function {f:?} not defined"),
                    ));
                }
                parse::Term::Sub(inner) => {
                    let mark = scope.len();
                    check_pipe(inner, scope)?;
                    scope.truncate(mark);
                }
                _ => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
