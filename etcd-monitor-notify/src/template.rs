//! Alertmanager's notification templates: the data (`.Receiver`, `.Status`, `.Alerts`,
//! `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations`, `.ExternalURL`), its types' methods
//! (`.Alerts.Firing`, `.Labels.SortedPairs`, `.CommonLabels.Remove`...), its functions, the default
//! templates (`templates/default.tmpl`) and the `templates:` files of `alertmanager.yml`.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use gotemplate::text::{call_shared, cases_title, SHARED_FUNCS};
use gotemplate::time::GoTime;
use gotemplate::{as_str, as_strings, want_args, Object, TemplateSet, Value};

use crate::notification::MessageData;

const DEFAULT_TEMPLATES: &str = include_str!("../templates/default.tmpl");

/// The functions Alertmanager 0.25 adds to Go's (template.DefaultFuncs).
pub struct AlertmanagerFuncs;

/// Besides [`gotemplate::text::SHARED_FUNCS`].
const NAMES: &[&str] = &["title", "join", "stringSlice"];

impl gotemplate::Funcs for AlertmanagerFuncs {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name) || SHARED_FUNCS.contains(&name)
    }

    fn call(&self, name: &str, args: &[Value]) -> Result<Value, String> {
        let one = || want_args(name, args, 1).and_then(|_| as_str(&args[0], name));
        match name {
            "title" => Ok(Value::str(cases_title(one()?))),
            // join inverts strings.Join's arguments, for pipelines: `.Values | join ", "`.
            "join" => {
                want_args(name, args, 2)?;
                let sep = as_str(&args[0], name)?;
                Ok(Value::str(as_strings(&args[1], name)?.join(sep)))
            }
            "stringSlice" => {
                let strings = args
                    .iter()
                    .map(|a| as_str(a, name).map(str::to_string))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Value::strings(&strings))
            }
            other => call_shared(other, args)
                .unwrap_or_else(|| Err(format!("function {other:?} not defined"))),
        }
    }
}

/// The named templates every configured string can call: ours, then the `templates:` files.
#[derive(Clone, Debug)]
pub struct Templates {
    set: Arc<TemplateSet>,
}

impl Default for Templates {
    fn default() -> Self {
        Templates::builtin()
    }
}

impl Templates {
    /// The default templates alone.
    pub fn builtin() -> Templates {
        let mut set = TemplateSet::new();
        // Our own file, checked by this crate's tests: failing here is a build defect, not input.
        if let Err(e) = set.add_file(DEFAULT_TEMPLATES, &AlertmanagerFuncs) {
            unreachable!("templates/default.tmpl: {e}");
        }
        Templates { set: Arc::new(set) }
    }

    /// The defaults plus the files matched by `globs` (relative to `dir`, the configuration's
    /// directory), in order; a pattern matching nothing is allowed, as in Alertmanager.
    pub fn load(globs: &[String], dir: &Path) -> Result<Templates, String> {
        let mut t = Templates::builtin();
        let set = Arc::make_mut(&mut t.set);
        for pattern in globs {
            let full = if Path::new(pattern).is_absolute() {
                pattern.clone()
            } else {
                dir.join(pattern).display().to_string()
            };
            let paths = glob::glob(&full).map_err(|e| format!("{pattern:?}: {e}"))?;
            let mut paths: Vec<_> = paths.filter_map(Result::ok).collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p)
                    .map_err(|e| format!("{}: cannot read: {e}", p.display()))?;
                set.add_file(&text, &AlertmanagerFuncs)
                    .map_err(|e| format!("{}: template: {e}", p.display()))?;
            }
        }
        Ok(t)
    }

    /// Whether `text` parses (functions and variables defined), as the configuration is loaded.
    pub fn check(&self, text: &str) -> Result<(), String> {
        self.set
            .parse(text, &AlertmanagerFuncs)
            .map(|_| ())
            .map_err(|e| format!("template: {e}"))
    }

    /// Alertmanager's `ExecuteTextString`: an empty string renders as empty.
    pub fn text(&self, text: &str, data: &Value) -> Result<String, String> {
        self.render(text, data, false)
    }

    /// Alertmanager's `ExecuteHTMLString` (html/template escaping).
    pub fn html(&self, text: &str, data: &Value) -> Result<String, String> {
        self.render(text, data, true)
    }

    fn render(&self, text: &str, data: &Value, html: bool) -> Result<String, String> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let t = self
            .set
            .parse(text, &AlertmanagerFuncs)
            .map_err(|e| format!("template: {e}"))?;
        let out = if html {
            t.execute_html(data, &AlertmanagerFuncs)
        } else {
            t.execute(data, &AlertmanagerFuncs)
        };
        out.map_err(|e| format!("template: {e}"))
    }
}

/// Alertmanager's `template.Data` for one notification.
pub fn data(d: &MessageData) -> Value {
    let alerts: Vec<Value> = d
        .alerts
        .iter()
        .map(|a| {
            strukt(
                "template.Alert",
                [
                    (
                        "Status",
                        Value::str(if a.resolved { "resolved" } else { "firing" }),
                    ),
                    ("Labels", kv(&a.alert.labels)),
                    ("Annotations", kv(&a.alert.annotations)),
                    ("StartsAt", GoTime::value(Some(a.alert.starts_at))),
                    ("EndsAt", GoTime::value(a.alert.ends_at)),
                    ("GeneratorURL", Value::str(a.alert.generator_url.clone())),
                    ("Fingerprint", Value::str(a.fingerprint.to_string())),
                ],
            )
        })
        .collect();
    strukt(
        "*template.Data",
        [
            // Alertmanager hands templates the receiver name regexp-quoted.
            ("Receiver", Value::str(quote_meta(&d.receiver))),
            ("Status", Value::str(d.status)),
            (
                "Alerts",
                Value::object(Alerts(Value::List(Rc::new(alerts)))),
            ),
            ("GroupLabels", kv(&d.group_labels)),
            ("CommonLabels", kv(&d.common_labels)),
            ("CommonAnnotations", kv(&d.common_annotations)),
            ("ExternalURL", Value::str(d.external_url.clone())),
        ],
    )
}

fn strukt<const N: usize>(name: &'static str, fields: [(&str, Value); N]) -> Value {
    Value::Struct(
        name,
        Rc::new(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        ),
    )
}

/// Go's `regexp.QuoteMeta`.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn kv(m: &BTreeMap<String, String>) -> Value {
    Kv::value(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone())))
            .collect(),
    )
}

/// `template.KV`: a label or annotation map with Alertmanager's methods.
#[derive(Debug)]
struct Kv {
    map: Rc<BTreeMap<String, Value>>,
    plain: Value,
}

impl Kv {
    fn value(map: BTreeMap<String, Value>) -> Value {
        let map = Rc::new(map);
        Value::object(Kv {
            plain: Value::Map(map.clone()),
            map,
        })
    }

    fn map(&self) -> &BTreeMap<String, Value> {
        &self.map
    }

    /// SortedPairs: `alertname` first, then the other names in order.
    fn sorted(&self) -> Vec<(&String, &Value)> {
        let m = self.map();
        let first = m.get_key_value("alertname");
        first
            .into_iter()
            .chain(m.iter().filter(|(k, _)| *k != "alertname"))
            .collect()
    }
}

fn names_values(pairs: &[(&String, &Value)], values: bool) -> Value {
    Value::List(Rc::new(
        pairs
            .iter()
            .map(|(k, v)| {
                if values {
                    (*v).clone()
                } else {
                    Value::str((*k).clone())
                }
            })
            .collect(),
    ))
}

impl Object for Kv {
    fn type_name(&self) -> &'static str {
        "template.KV"
    }
    fn plain(&self) -> &Value {
        &self.plain
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let none = || want_args(name, args, 0);
        Some(match name {
            "SortedPairs" => none().map(|_| {
                let pairs = self
                    .sorted()
                    .into_iter()
                    .map(|(k, v)| {
                        strukt(
                            "template.Pair",
                            [("Name", Value::str(k.clone())), ("Value", v.clone())],
                        )
                    })
                    .collect();
                Value::object(Pairs(Value::List(Rc::new(pairs))))
            }),
            "Names" => none().map(|_| names_values(&self.sorted(), false)),
            "Values" => none().map(|_| names_values(&self.sorted(), true)),
            "Remove" => want_args(name, args, 1)
                .and_then(|_| as_strings(&args[0], name))
                .map(|drop| {
                    let kept = self
                        .map()
                        .iter()
                        .filter(|(k, _)| !drop.contains(k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    Kv::value(kept)
                }),
            _ => return None,
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `template.Pairs`: sorted `{Name, Value}` pairs with `.Names` and `.Values`.
#[derive(Debug)]
struct Pairs(Value);

impl Object for Pairs {
    fn type_name(&self) -> &'static str {
        "template.Pairs"
    }
    fn plain(&self) -> &Value {
        &self.0
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let field = match name {
            "Names" => "Name",
            "Values" => "Value",
            _ => return None,
        };
        Some(
            want_args(name, args, 0)
                .map(|_| each_struct(&self.0, |_, fields| fields.get(field).cloned())),
        )
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `template.Alerts` with `.Firing` and `.Resolved`.
#[derive(Debug)]
struct Alerts(Value);

impl Object for Alerts {
    fn type_name(&self) -> &'static str {
        "template.Alerts"
    }
    fn plain(&self) -> &Value {
        &self.0
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let want = match name {
            "Firing" => "firing",
            "Resolved" => "resolved",
            _ => return None,
        };
        Some(want_args(name, args, 0).map(|_| {
            each_struct(&self.0, |alert, fields| {
                (fields.get("Status") == Some(&Value::str(want))).then(|| alert.clone())
            })
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The list of what `f` makes of each struct in `list` (`None` drops it): `.Names`, `.Firing`...
fn each_struct(
    list: &Value,
    f: impl Fn(&Value, &BTreeMap<String, Value>) -> Option<Value>,
) -> Value {
    let items = match list {
        Value::List(l) => l
            .iter()
            .filter_map(|v| match v {
                Value::Struct(_, fields) => f(v, fields),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    Value::List(Rc::new(items))
}
