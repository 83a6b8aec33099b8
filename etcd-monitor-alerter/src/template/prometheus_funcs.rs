//! The functions Prometheus adds to Go's for rule templates (template/template.go).

use std::collections::BTreeMap;
use std::rc::Rc;

use gotemplate::gofmt::{self, sprintf};
use gotemplate::text::{call_shared, strings_title, SHARED_FUNCS};
use gotemplate::{as_str, want_args, Value};

use super::Funcs;

type R = Result<Value, String>;

/// Besides [`gotemplate::text::SHARED_FUNCS`].
const NAMES: &[&str] = &[
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "args",
    "title",
    "stripPort",
    "stripDomain",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "parseDuration",
    "externalURL",
    "pathPrefix",
];

/// Prometheus' function map, answering `query` and `externalURL` through the rule's context.
pub struct PrometheusFuncs<'a>(pub &'a dyn Funcs);

impl gotemplate::Funcs for PrometheusFuncs<'_> {
    fn has(&self, name: &str) -> bool {
        NAMES.contains(&name) || SHARED_FUNCS.contains(&name)
    }
    fn call(&self, name: &str, args: &[Value]) -> R {
        call(self.0, name, args)
    }
}

/// Prometheus' convertToFloat: numbers, and strings that parse as floats.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Str(s) => parse_go_float(s).ok_or_else(|| {
            format!(
                "strconv.ParseFloat: parsing {}: invalid syntax",
                gofmt::quote(s)
            )
        }),
        other => Err(format!("can't convert {} to float", other.go_type())),
    }
}

fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim_start_matches(['+', '-']);
    let lower = t.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    if t.chars().any(|c| c.is_alphabetic() && c != 'e' && c != 'E') {
        return None;
    }
    s.parse().ok()
}

fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    let mut v = v;
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", sprintf("%.4g", &[Value::Float(v)]))
}

fn humanize1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", sprintf("%.4g", &[Value::Float(v)]))
}

fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    if v == 0.0 {
        return format!("{}s", sprintf("%.4g", &[Value::Float(v)]));
    }
    if v.abs() >= 1.0 {
        let (sign, v) = if v < 0.0 { ("-", -v) } else { ("", v) };
        let d = v as i64;
        let (s, m, h, days) = (d % 60, (d / 60) % 60, (d / 3600) % 24, d / 86400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", sprintf("%.4g", &[Value::Float(v)]));
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", sprintf("%.4g", &[Value::Float(v)]))
}

fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    let nanos = (v * 1e9) as i64;
    let ms = nanos.div_euclid(1_000_000);
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return sprintf("%.4g", &[Value::Float(v)]);
    };
    // Prometheus keeps millisecond precision: time.Unix(0, ms*1e6).UTC().String().
    gotemplate::time::go_time_string(t)
}

/// A query result element, as Prometheus' `sample{Labels, Value}`.
fn sample(labels: &BTreeMap<String, String>, value: f64) -> Value {
    let mut fields = BTreeMap::new();
    fields.insert("Labels".to_string(), Value::labels(labels));
    fields.insert("Value".to_string(), Value::Float(value));
    Value::Struct("*template.sample", Rc::new(fields))
}

fn sample_field(v: &Value, f: &str) -> Result<Value, String> {
    match v {
        Value::Struct(_, m) => m
            .get(f)
            .cloned()
            .ok_or_else(|| format!("sample has no {f}")),
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.go_type()
        )),
    }
}

fn call(ctx: &dyn Funcs, name: &str, args: &[Value]) -> R {
    let s = |v: String| Ok(Value::Str(v));
    match name {
        // Prometheus' functions (template/template.go).
        "query" => {
            want_args(name, args, 1)?;
            let q = as_str(&args[0], name)?;
            let rows = ctx.query(q)?;
            Ok(Value::List(Rc::new(
                rows.iter().map(|(l, v)| sample(l, *v)).collect(),
            )))
        }
        "first" => {
            want_args(name, args, 1)?;
            match &args[0] {
                Value::List(l) => l
                    .first()
                    .cloned()
                    .ok_or_else(|| "first() called on vector with no elements".to_string()),
                other => Err(format!(
                    "wrong type for value; expected queryResult; got {}",
                    other.go_type()
                )),
            }
        }
        "label" => {
            want_args(name, args, 2)?;
            let l = as_str(&args[0], name)?;
            match sample_field(&args[1], "Labels")? {
                Value::Map(m) => Ok(m.get(l).cloned().unwrap_or(Value::Str(String::new()))),
                _ => Ok(Value::Str(String::new())),
            }
        }
        "value" => {
            want_args(name, args, 1)?;
            sample_field(&args[0], "Value")
        }
        "strvalue" => {
            want_args(name, args, 1)?;
            match sample_field(&args[0], "Labels")? {
                Value::Map(m) => Ok(m
                    .get("__value__")
                    .cloned()
                    .unwrap_or(Value::Str(String::new()))),
                _ => Ok(Value::Str(String::new())),
            }
        }
        "sortByLabel" => {
            want_args(name, args, 2)?;
            let l = as_str(&args[0], name)?.to_string();
            let Value::List(list) = &args[1] else {
                return Err(format!(
                    "wrong type for value; expected queryResult; got {}",
                    args[1].go_type()
                ));
            };
            let mut v: Vec<Value> = list.as_ref().clone();
            let key = |x: &Value| match sample_field(x, "Labels") {
                Ok(Value::Map(m)) => m.get(&l).map(Value::to_go_string).unwrap_or_default(),
                _ => String::new(),
            };
            v.sort_by_key(key);
            Ok(Value::List(Rc::new(v)))
        }
        "args" => {
            let m: BTreeMap<String, Value> = args
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("arg{i}"), a.clone()))
                .collect();
            Ok(Value::Map(Rc::new(m)))
        }
        "title" => {
            want_args(name, args, 1)?;
            s(strings_title(as_str(&args[0], name)?))
        }
        "stripPort" => {
            want_args(name, args, 1)?;
            let hp = as_str(&args[0], name)?;
            s(split_host_port(hp)
                .map(|h| h.to_string())
                .unwrap_or_else(|| hp.to_string()))
        }
        "stripDomain" => {
            want_args(name, args, 1)?;
            let hp = as_str(&args[0], name)?;
            let (host, port) = match split_host_port(hp) {
                Some(h) => (h, &hp[h.len() + usize::from(hp.starts_with('['))..]),
                None => (hp, ""),
            };
            if host.parse::<std::net::IpAddr>().is_ok() {
                return s(hp.to_string());
            }
            let short = host.split('.').next().unwrap_or(host);
            s(format!("{short}{}", port.trim_start_matches(']')))
        }
        "humanize" => {
            want_args(name, args, 1)?;
            s(humanize(to_float(&args[0])?))
        }
        "humanize1024" => {
            want_args(name, args, 1)?;
            s(humanize1024(to_float(&args[0])?))
        }
        "humanizeDuration" => {
            want_args(name, args, 1)?;
            s(humanize_duration(to_float(&args[0])?))
        }
        "humanizePercentage" => {
            want_args(name, args, 1)?;
            s(sprintf(
                "%.4g%%",
                &[Value::Float(to_float(&args[0])? * 100.0)],
            ))
        }
        "humanizeTimestamp" => {
            want_args(name, args, 1)?;
            s(humanize_timestamp(to_float(&args[0])?))
        }
        "parseDuration" => {
            want_args(name, args, 1)?;
            let d = crate::duration::parse(as_str(&args[0], name)?).map_err(|e| e.to_string())?;
            Ok(Value::Float(d.as_secs_f64()))
        }
        "externalURL" => Ok(ctx.external_url()),
        "pathPrefix" => Ok(Value::Str(String::new())),
        other => call_shared(other, args)
            .unwrap_or_else(|| Err(format!("function {other:?} not defined"))),
    }
}

fn split_host_port(hp: &str) -> Option<&str> {
    if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')?;
        return Some(&rest[..end]);
    }
    let (h, _) = hp.rsplit_once(':')?;
    if h.contains(':') {
        return None;
    }
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings from Prometheus' template/template_test.go and its documented behaviour.
    #[test]
    fn humanizers() {
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize(1.0), "1");
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.001), "1m");
        assert_eq!(humanize(0.0012345), "1.234m");
        assert_eq!(humanize(1e30), "1e+06Y");
        assert_eq!(humanize1024(1024.0), "1ki");
        assert_eq!(humanize1024(1048576.0), "1Mi");
        assert_eq!(humanize1024(0.5), "0.5");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_duration(1.0), "1s");
        assert_eq!(humanize_duration(60.0), "1m 0s");
        assert_eq!(humanize_duration(3600.0), "1h 0m 0s");
        assert_eq!(humanize_duration(86400.0), "1d 0h 0m 0s");
        assert_eq!(
            humanize_duration(86400.0 + 3600.0 * 12.0 + 34.0 * 60.0 + 56.0),
            "1d 12h 34m 56s"
        );
        assert_eq!(humanize_duration(-86400.0 * 2.0), "-2d 0h 0m 0s");
        assert_eq!(humanize_duration(0.1), "100ms");
        assert_eq!(humanize_duration(0.0001), "100us");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(
            humanize_timestamp(1435065584.128),
            "2015-06-23 13:19:44.128 +0000 UTC"
        );
        assert_eq!(humanize_timestamp(0.0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            sprintf("%.4g%%", &[Value::Float(0.1234567 * 100.0)]),
            "12.35%"
        );
    }
}
