//! Template values: the Go types templates are handed, and [`Object`] for a host's own named types.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::Rc;

use crate::gofmt;

#[derive(Debug, Clone)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    /// A Go map (`map[string]string` for labels): a missing key yields the zero value (Prometheus and
    /// Alertmanager both set `missingkey=zero`).
    Map(Rc<BTreeMap<String, Value>>),
    /// A Go struct (the template data, a query sample): a missing field is an error.
    Struct(&'static str, Rc<BTreeMap<String, Value>>),
    List(Rc<Vec<Value>>),
    /// A named Go type with methods (Alertmanager's `KV`, `time.Time`, `template.HTML`).
    Object(Rc<dyn Object>),
}

/// A Go value of a named type: it behaves as its [`plain`](Object::plain) value (a map, a list, a
/// struct, a string) and also answers method calls, which Go looks up before fields and map keys.
pub trait Object: fmt::Debug {
    fn type_name(&self) -> &'static str;
    /// The value under the type: what `len`, `index`, `range`, fields and printing see.
    fn plain(&self) -> &Value;
    /// `.Name args...`: `None` when the type has no such method.
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>>;
    /// The type's `String()` method, which Go's printing prefers to the plain value.
    fn go_string(&self) -> Option<String> {
        None
    }
    fn as_any(&self) -> &dyn Any;
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Nil, Value::Nil) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Float(a), Value::Float(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Map(a), Value::Map(b)) => a == b,
            (Value::Struct(n, a), Value::Struct(m, b)) => n == m && a == b,
            (Value::List(a), Value::List(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => {
                a.type_name() == b.type_name()
                    && a.plain() == b.plain()
                    && a.go_string() == b.go_string()
            }
            _ => false,
        }
    }
}

impl Value {
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    pub fn labels(labels: &BTreeMap<String, String>) -> Value {
        Value::Map(Rc::new(
            labels
                .iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        ))
    }

    pub fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Value {
        Value::List(Rc::new(
            items.into_iter().cloned().map(Value::Str).collect(),
        ))
    }

    pub fn object(o: impl Object + 'static) -> Value {
        Value::Object(Rc::new(o))
    }

    /// The value with named types peeled off.
    pub fn plain(&self) -> &Value {
        match self {
            Value::Object(o) => o.plain().plain(),
            other => other,
        }
    }

    /// The object of type `T` this value is, if it is one.
    pub fn downcast<T: 'static>(&self) -> Option<&T> {
        match self {
            Value::Object(o) => o.as_any().downcast_ref::<T>(),
            _ => None,
        }
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
            Value::Object(o) => o.plain().truthy(),
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
            Value::Object(o) => o.type_name(),
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
            Value::Object(o) => o.go_string().unwrap_or_else(|| o.plain().to_go_string()),
        }
    }

    fn inner_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".to_string(),
            other => other.to_go_string(),
        }
    }
}

/// html/template's `template.HTML`: text the HTML escaper leaves alone (what `safeHtml` returns).
#[derive(Debug)]
pub struct SafeHtml(Value);

impl SafeHtml {
    pub fn value(s: String) -> Value {
        Value::object(SafeHtml(Value::Str(s)))
    }
}

impl Object for SafeHtml {
    fn type_name(&self) -> &'static str {
        "template.HTML"
    }
    fn plain(&self) -> &Value {
        &self.0
    }
    fn method(&self, _name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        None
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
