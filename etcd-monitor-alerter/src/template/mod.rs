//! Rule templates as Prometheus expands them: the Go template engine (`gotemplate`) with Prometheus'
//! functions (`query`, `humanize`, ...) and data (`$labels`, `$value`, `$externalLabels`, `$externalURL`).

mod prometheus_funcs;

use std::collections::BTreeMap;
use std::rc::Rc;

pub use gotemplate::{gofmt, Template, TemplateError, Value};
use prometheus_funcs::PrometheusFuncs;

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

/// The variables Prometheus defines before every rule template (rules/alerting.go, template.go).
const DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// Parses a rule's label or annotation template with Prometheus' variable definitions in front.
pub fn parse_rule_template(text: &str) -> Result<Template, TemplateError> {
    Template::parse(&format!("{DEFS}{text}"), &PrometheusFuncs(&NoQuery))
}

/// Executes a parsed rule template with Prometheus' functions answering through `funcs`.
pub fn execute_rule_template(
    t: &Template,
    data: &Value,
    funcs: &dyn Funcs,
) -> Result<String, TemplateError> {
    t.execute(data, &PrometheusFuncs(funcs))
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
        parse_rule_template(text).and_then(|t| execute_rule_template(&t, &data.to_value(), funcs));
    match result {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(template = name, error = %e, "error expanding template");
            format!("<error expanding template: template: {name}:{e}>")
        }
    }
}

#[cfg(test)]
mod tests;
