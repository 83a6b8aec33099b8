//! String functions that both Prometheus and Alertmanager give their templates, under the same names.

use crate::args::{as_str, go_regex, want_args};
use crate::value::{SafeHtml, Value};

/// The functions Prometheus and Alertmanager both define, from the same Go code. `title` is not one
/// of them: Prometheus uses `strings.Title`, Alertmanager `cases.Title` ([`strings_title`],
/// [`cases_title`]).
pub const SHARED_FUNCS: &[&str] = &["toUpper", "toLower", "match", "reReplaceAll", "safeHtml"];

/// Calls one of [`SHARED_FUNCS`]; `None` for any other name.
pub fn call_shared(name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let one = || want_args(name, args, 1).and_then(|_| as_str(&args[0], name));
    let result = match name {
        "toUpper" => one().map(|s| Value::str(s.to_uppercase())),
        "toLower" => one().map(|s| Value::str(s.to_lowercase())),
        "safeHtml" => one().map(|s| SafeHtml::value(s.to_string())),
        "match" => want_args(name, args, 2).and_then(|_| {
            re_match(as_str(&args[0], name)?, as_str(&args[1], name)?).map(Value::Bool)
        }),
        "reReplaceAll" => want_args(name, args, 3).and_then(|_| {
            re_replace_all(
                as_str(&args[0], name)?,
                as_str(&args[1], name)?,
                as_str(&args[2], name)?,
            )
            .map(Value::str)
        }),
        _ => return None,
    };
    Some(result)
}

/// Go's deprecated `strings.Title` (Prometheus' `title`): upper-cases the first letter of each word.
pub fn strings_title(s: &str) -> String {
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

/// `cases.Title(language.AmericanEnglish)` (Alertmanager's `title`): each word's first letter upper
/// case and the rest lower case; a word continues through letters, digits and apostrophes.
pub fn cases_title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for c in s.chars() {
        if c.is_alphanumeric() || (in_word && matches!(c, '\'' | '’')) {
            if in_word {
                out.extend(c.to_lowercase());
            } else {
                out.extend(c.to_uppercase());
            }
            in_word = true;
        } else {
            out.push(c);
            in_word = false;
        }
    }
    out
}

/// `regexp.MustCompile(pattern).ReplaceAllString(text, repl)`: Go's `$1`/`${name}` expansion,
/// where `$1x` names group `1x`, is also Rust's rule.
pub fn re_replace_all(pattern: &str, repl: &str, text: &str) -> Result<String, String> {
    Ok(go_regex(pattern)?.replace_all(text, repl).into_owned())
}

/// `regexp.MatchString`: unanchored.
pub fn re_match(pattern: &str, text: &str) -> Result<bool, String> {
    Ok(go_regex(pattern)?.is_match(text))
}

/// html/template's escaping of text between tags and inside quoted attributes.
pub fn html_escape(s: &str) -> String {
    escape_html(s, true)
}

/// The escaping html/template and text/template's `html` share; html/template also escapes `+`.
pub(crate) fn escape_html(s: &str, plus: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '+' if plus => out.push_str("&#43;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles() {
        // strings.Title("aa bb-cc_dd") and cases.Title's documented examples.
        assert_eq!(strings_title("aa bb-cc_dd"), "Aa Bb-Cc_dd");
        assert_eq!(cases_title("hELLO wORLD"), "Hello World");
        assert_eq!(cases_title("don't stop-now"), "Don't Stop-Now");
    }
}
