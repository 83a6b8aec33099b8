//! The functions a Prometheus rule template can call: Go's built-ins and Prometheus' own (template.go).

use std::collections::BTreeMap;
use std::rc::Rc;

use super::exec::Exec;
use super::gofmt::{self, sprintf};
use super::value::Value;

type R = Result<Value, String>;

fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn as_str<'v>(v: &'v Value, what: &str) -> Result<&'v str, String> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!(
            "{what}: wrong type for value; expected string; got {}",
            other.go_type()
        )),
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

/// Go's `time.Time.String()` of a UTC time: `2006-01-02 15:04:05.999999999 +0000 UTC`.
fn humanize_timestamp(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return sprintf("%.4g", &[Value::Float(v)]);
    }
    let nanos = (v * 1e9) as i64;
    let ms = nanos.div_euclid(1_000_000);
    let Some(t) = chrono::DateTime::from_timestamp_millis(ms) else {
        return sprintf("%.4g", &[Value::Float(v)]);
    };
    let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = ms.rem_euclid(1000) * 1_000_000;
    if frac != 0 {
        let digits = format!("{frac:09}");
        s.push('.');
        s.push_str(digits.trim_end_matches('0'));
    }
    s.push_str(" +0000 UTC");
    s
}

/// Go's deprecated strings.Title: upper-cases the first letter of each word.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            c.is_whitespace()
        };
    }
    out
}

fn go_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern)
        .map_err(|e| format!("regexp: Compile({}): {e}", gofmt::quote(pattern)))
}

/// Go's `$1`/`${name}` expansion in ReplaceAllString: `$1x` means group `1x` (empty), as in Go; Rust's regex
/// expansion follows the same rule.
fn re_replace_all(pattern: &str, repl: &str, text: &str) -> Result<String, String> {
    let re = go_regex(pattern)?;
    Ok(re.replace_all(text, repl).into_owned())
}

fn cmp_values(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Equal)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if name == "eq" || name == "ne" => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".to_string()),
    }
}

fn values_equal(a: &Value, b: &Value) -> Result<bool, String> {
    if let (Value::Float(x), Value::Float(y)) = (a, b) {
        return Ok(x == y);
    }
    Ok(cmp_values("eq", a, b)? == std::cmp::Ordering::Equal)
}

fn go_sprint(args: &[Value]) -> String {
    // fmt.Sprint adds spaces between operands when neither side is a string.
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
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

pub fn call(ex: &mut Exec<'_>, name: &str, args: &[Value]) -> R {
    let s = |v: String| Ok(Value::Str(v));
    match name {
        "not" => {
            want_args(name, args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want_args(name, args, 1)?;
            match &args[0] {
                Value::Str(x) => Ok(Value::Int(x.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                other => Err(format!("len of type {}", other.go_type())),
            }
        }
        "index" => {
            if args.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = match (&v, k) {
                    (Value::Map(m), Value::Str(key)) => {
                        m.get(key).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    (other, _) => {
                        return Err(format!("can't index item of type {}", other.go_type()))
                    }
                };
            }
            Ok(v)
        }
        "print" => s(go_sprint(args)),
        "println" => {
            let parts: Vec<String> = args.iter().map(Value::to_go_string).collect();
            s(format!("{}\n", parts.join(" ")))
        }
        "printf" => {
            let Some(first) = args.first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            s(sprintf(as_str(first, "printf")?, &args[1..]))
        }
        "eq" => {
            if args.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &args[1..] {
                if values_equal(&args[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" | "lt" | "le" | "gt" | "ge" => {
            want_args(name, args, 2)?;
            use std::cmp::Ordering::*;
            if name == "ne" {
                return Ok(Value::Bool(!values_equal(&args[0], &args[1])?));
            }
            if let (Value::Float(a), Value::Float(b)) = (&args[0], &args[1]) {
                return Ok(Value::Bool(match name {
                    "lt" => a < b,
                    "le" => a <= b,
                    "gt" => a > b,
                    _ => a >= b,
                }));
            }
            let o = cmp_values(name, &args[0], &args[1])?;
            Ok(Value::Bool(match name {
                "lt" => o == Less,
                "le" => o != Greater,
                "gt" => o == Greater,
                _ => o != Less,
            }))
        }
        "html" => s(html_escape(&go_sprint(args))),
        "urlquery" => s(go_sprint(args)
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()),
        "js" => s(go_sprint(args)
            .chars()
            .map(|c| match c {
                '\\' => "\\\\".to_string(),
                '\'' => "\\'".to_string(),
                '"' => "\\\"".to_string(),
                '<' => "\\u003C".to_string(),
                '>' => "\\u003E".to_string(),
                '&' => "\\u0026".to_string(),
                '=' => "\\u003D".to_string(),
                '\n' => "\\n".to_string(),
                '\r' => "\\r".to_string(),
                '\t' => "\\t".to_string(),
                c => c.to_string(),
            })
            .collect()),
        // Prometheus' functions (template/template.go).
        "query" => {
            want_args(name, args, 1)?;
            let q = as_str(&args[0], name)?;
            let rows = ex.funcs.query(q)?;
            Ok(Value::List(Rc::new(
                rows.iter().map(|(l, v)| Value::sample(l, *v)).collect(),
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
        "reReplaceAll" => {
            want_args(name, args, 3)?;
            s(re_replace_all(
                as_str(&args[0], name)?,
                as_str(&args[1], name)?,
                as_str(&args[2], name)?,
            )?)
        }
        "match" => {
            want_args(name, args, 2)?;
            Ok(Value::Bool(
                go_regex(as_str(&args[0], name)?)?.is_match(as_str(&args[1], name)?),
            ))
        }
        "safeHtml" => {
            want_args(name, args, 1)?;
            s(as_str(&args[0], name)?.to_string())
        }
        "toUpper" => {
            want_args(name, args, 1)?;
            s(as_str(&args[0], name)?.to_uppercase())
        }
        "toLower" => {
            want_args(name, args, 1)?;
            s(as_str(&args[0], name)?.to_lowercase())
        }
        "title" => {
            want_args(name, args, 1)?;
            s(title(as_str(&args[0], name)?))
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
        "externalURL" => Ok(ex.funcs.external_url()),
        "pathPrefix" => Ok(Value::Str(String::new())),
        other => Err(format!("function {other:?} not defined")),
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

/// Whether `name` is a function a template may call (checked when a rule file is loaded, as Go's parser does).
pub fn is_known(name: &str) -> bool {
    matches!(
        name,
        "and"
            | "or"
            | "not"
            | "len"
            | "index"
            | "print"
            | "println"
            | "printf"
            | "eq"
            | "ne"
            | "lt"
            | "le"
            | "gt"
            | "ge"
            | "html"
            | "urlquery"
            | "js"
            | "query"
            | "first"
            | "label"
            | "value"
            | "strvalue"
            | "sortByLabel"
            | "args"
            | "reReplaceAll"
            | "match"
            | "safeHtml"
            | "toUpper"
            | "toLower"
            | "title"
            | "stripPort"
            | "stripDomain"
            | "humanize"
            | "humanize1024"
            | "humanizeDuration"
            | "humanizePercentage"
            | "humanizeTimestamp"
            | "parseDuration"
            | "externalURL"
            | "pathPrefix"
    )
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
        assert_eq!(title("aa bb-cc_dd"), "Aa Bb-Cc_dd");
    }
}
