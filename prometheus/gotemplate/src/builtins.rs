//! Go's predefined template functions (text/template's `builtins`).

use crate::args::{as_str, want_args};
use crate::gofmt::sprintf;
use crate::value::Value;

pub const NAMES: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "println", "printf", "eq", "ne", "lt", "le", "gt",
    "ge", "html", "urlquery", "js",
];

pub fn is_builtin(name: &str) -> bool {
    NAMES.contains(&name)
}

fn cmp_values(name: &str, a: &Value, b: &Value) -> Result<std::cmp::Ordering, String> {
    use std::cmp::Ordering;
    match (a.plain(), b.plain()) {
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(x.partial_cmp(y).unwrap_or(Ordering::Equal)),
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) if name == "eq" || name == "ne" => Ok(x.cmp(y)),
        _ => Err("incompatible types for comparison".to_string()),
    }
}

fn values_equal(a: &Value, b: &Value) -> Result<bool, String> {
    if let (Value::Float(x), Value::Float(y)) = (a.plain(), b.plain()) {
        return Ok(x == y);
    }
    Ok(cmp_values("eq", a, b)? == std::cmp::Ordering::Equal)
}

/// `fmt.Sprint`: spaces between operands when neither side is a string.
pub fn go_sprint(args: &[Value]) -> String {
    let mut out = String::new();
    let is_str = |v: &Value| matches!(v.plain(), Value::Str(_));
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !is_str(a) && !is_str(&args[i - 1]) {
            out.push(' ');
        }
        out.push_str(&a.to_go_string());
    }
    out
}

/// text/template's `html` function (no `+` escaping, unlike html/template's escaper).
fn html_func(s: &str) -> String {
    crate::text::escape_html(s, false)
}

/// Go's `url.QueryEscape`.
pub fn query_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Calls a predefined function other than `and`/`or`, which the executor short-circuits itself.
pub fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    let s = |v: String| Ok(Value::Str(v));
    match name {
        "not" => {
            want_args(name, args, 1)?;
            Ok(Value::Bool(!args[0].truthy()))
        }
        "len" => {
            want_args(name, args, 1)?;
            match args[0].plain() {
                Value::Str(x) => Ok(Value::Int(x.len() as i64)),
                Value::List(l) => Ok(Value::Int(l.len() as i64)),
                Value::Map(m) => Ok(Value::Int(m.len() as i64)),
                _ => Err(format!("len of type {}", args[0].go_type())),
            }
        }
        "index" => {
            if args.is_empty() {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = match (v.plain(), k.plain()) {
                    (Value::Map(m), Value::Str(key)) => {
                        m.get(key).cloned().unwrap_or(Value::Str(String::new()))
                    }
                    (Value::List(l), Value::Int(i)) => l
                        .get(usize::try_from(*i).map_err(|_| format!("index out of range: {i}"))?)
                        .cloned()
                        .ok_or_else(|| format!("index out of range: {i}"))?,
                    _ => return Err(format!("can't index item of type {}", v.go_type())),
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
            if let (Value::Float(a), Value::Float(b)) = (args[0].plain(), args[1].plain()) {
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
        "html" => s(html_func(&go_sprint(args))),
        "urlquery" => s(query_escape(&go_sprint(args))),
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
        other => Err(format!("function {other:?} not defined")),
    }
}
