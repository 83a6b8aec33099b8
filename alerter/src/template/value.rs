//! Template values: the handful of Go types Prometheus hands to its templates.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::gofmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A Go map (`map[string]string` for labels): a missing key yields the zero value (Prometheus sets
    /// `missingkey=zero`).
    Map(Rc<BTreeMap<String, Value>>),
    /// A Go struct (the template data, a query sample): a missing field is an error.
    Struct(&'static str, Rc<BTreeMap<String, Value>>),
    List(Rc<Vec<Value>>),
}

impl Value {
    pub fn labels(labels: &BTreeMap<String, String>) -> Value {
        Value::Map(Rc::new(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        ))
    }

    /// A query result element, as Prometheus' `sample{Labels, Value}`.
    pub fn sample(labels: &BTreeMap<String, String>, value: f64) -> Value {
        let mut fields = BTreeMap::new();
        fields.insert("Labels".to_string(), Value::labels(labels));
        fields.insert("Value".to_string(), Value::Float(value));
        Value::Struct("*template.sample", Rc::new(fields))
    }

    /// Go's truth rule for `if`, `with`, `and`, `or`, `not`.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct(..) => true,
            Value::List(l) => !l.is_empty(),
        }
    }

    pub fn go_type(&self) -> &'static str {
        match self {
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(_) => "map[string]string",
            Value::Struct(name, _) => name,
            Value::List(_) => "[]interface {}",
        }
    }

    /// How Go's `fmt.Sprint` prints the value (what `{{ x }}` writes).
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<no value>".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_float(*f),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.to_go_string()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::Struct(name, fields) => {
                let parts: Vec<String> = fields.values().map(|v| v.to_go_string()).collect();
                let amp = if name.starts_with('*') { "&" } else { "" };
                format!("{amp}{{{}}}", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(|v| v.inner_go_string()).collect();
                format!("[{}]", parts.join(" "))
            }
        }
    }

    fn inner_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            other => other.to_go_string(),
        }
    }
}
