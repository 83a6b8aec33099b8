//! Argument checks worded as Go's reflection-based calls word them.

use crate::gofmt;
use crate::value::Value;

pub fn want_args(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

pub fn as_str<'v>(v: &'v Value, what: &str) -> Result<&'v str, String> {
    match v.plain() {
        Value::Str(s) => Ok(s),
        _ => Err(format!(
            "{what}: wrong type for value; expected string; got {}",
            v.go_type()
        )),
    }
}

/// A `[]string` argument.
pub fn as_strings(v: &Value, what: &str) -> Result<Vec<String>, String> {
    let wrong = || {
        format!(
            "{what}: wrong type for value; expected []string; got {}",
            v.go_type()
        )
    };
    match v.plain() {
        Value::List(l) => l
            .iter()
            .map(|e| match e.plain() {
                Value::Str(s) => Ok(s.clone()),
                _ => Err(wrong()),
            })
            .collect(),
        Value::Nil => Ok(Vec::new()),
        _ => Err(wrong()),
    }
}

/// A regular expression in Go's RE2 syntax, which Rust's `regex` shares.
pub fn go_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern)
        .map_err(|e| format!("regexp: Compile({}): {e}", gofmt::quote(pattern)))
}
