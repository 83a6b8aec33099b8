//! Helpers for promtool's rule unit-test format (`promtool test rules`).
//!
//! `input_series` entries are a series descriptor (`metric{label="value"}`) and a values
//! string in the "expanding notation" of Prometheus' series-description grammar:
//!
//! | item      | expands to                                         |
//! |-----------|----------------------------------------------------|
//! | `a`       | one sample `a` (numbers, `Inf`, `NaN`, signed)     |
//! | `_`       | one omitted sample                                 |
//! | `_xn`     | `n` omitted samples                                |
//! | `axn`     | `n+1` samples of `a`                               |
//! | `a+bxn`   | `n+1` samples `a, a+b, ..., a+n*b` (by repeated addition, as Go does) |
//! | `a-bxn`   | the same with `-b`                                 |
//! | `stale`   | a staleness marker                                 |
//!
//! The i-th expanded item is the sample at `i * interval` milliseconds after time 0, the
//! start of every promtool test.

use crate::error::FormatError;
use crate::labels::{Labels, METRIC_NAME};
use crate::storage::{stale_nan, MemStorage};

/// Expands a values string; `None` is an omitted sample (`_`).
pub fn expand_values(input: &str) -> Result<Vec<Option<f64>>, FormatError> {
    let err = |reason: String| FormatError::Values {
        input: input.to_string(),
        reason,
    };
    let mut out = Vec::new();
    for item in input.split_whitespace() {
        expand_item(item, &mut out).map_err(err)?;
    }
    Ok(out)
}

fn expand_item(item: &str, out: &mut Vec<Option<f64>>) -> Result<(), String> {
    if item == "_" {
        out.push(None);
        return Ok(());
    }
    if let Some(n) = item.strip_prefix("_x") {
        let n = parse_uint(n).ok_or_else(|| format!("bad repetition count in {item:?}"))?;
        if n > 10_000_000 {
            return Err(format!("repetition count {n} too large in {item:?}"));
        }
        out.resize(out.len() + n as usize, None);
        return Ok(());
    }
    if item == "stale" {
        out.push(Some(stale_nan()));
        return Ok(());
    }
    let mut cur = Cursor { s: item, pos: 0 };
    let first = cur
        .number(true)
        .ok_or_else(|| format!("expected a number or \"stale\" in {item:?}"))?;
    if cur.at_end() {
        out.push(Some(first));
        return Ok(());
    }
    let step = if cur.peek() == Some('+') || cur.peek() == Some('-') {
        Some(
            cur.number(true)
                .ok_or_else(|| format!("expected an increment in {item:?}"))?,
        )
    } else {
        None
    };
    if cur.peek() != Some('x') {
        return Err(format!("unexpected {:?} in {item:?}", &item[cur.pos..]));
    }
    cur.pos += 1;
    let n =
        parse_uint(&item[cur.pos..]).ok_or_else(|| format!("bad repetition count in {item:?}"))?;
    if n > 10_000_000 {
        return Err(format!("repetition count {n} too large in {item:?}"));
    }
    let mut v = first;
    for _ in 0..=n {
        out.push(Some(v));
        if let Some(b) = step {
            v += b;
        }
    }
    Ok(())
}

fn parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }
    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }
    /// A decimal number (no hex: the series grammar forbids it because `0x3` means "0
    /// three more times"), or Inf/NaN, with an optional sign.
    fn number(&mut self, allow_sign: bool) -> Option<f64> {
        let start = self.pos;
        let rest = &self.s[self.pos..];
        let mut i = 0;
        let b = rest.as_bytes();
        if allow_sign && i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        let body = &rest[i..];
        for word in ["inf", "nan"] {
            if body.get(..3).is_some_and(|b| b.eq_ignore_ascii_case(word)) {
                let is_ident_tail = body[3..]
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() && c != 'x');
                if is_ident_tail {
                    return None;
                }
                self.pos = start + i + 3;
                let neg = i == 1 && b[0] == b'-';
                return Some(match (word, neg) {
                    ("inf", false) => f64::INFINITY,
                    ("inf", true) => f64::NEG_INFINITY,
                    _ => f64::NAN,
                });
            }
        }
        let digits_start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        if i == digits_start {
            return None;
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                j += 1;
            }
            let exp_digits = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j > exp_digits {
                i = j;
            }
        }
        let v: f64 = rest[..i].parse().ok()?;
        self.pos = start + i;
        Some(v)
    }
}

/// Parses a series descriptor such as `etcd_server_has_leader{job="etcd", instance="a"}`
/// or `{__name__="up", job="x"}` into labels. Label values take Go string syntax (double
/// quotes, single quotes or backticks, with `\` escapes).
pub fn parse_series(input: &str) -> Result<Labels, FormatError> {
    let err = |reason: &str| FormatError::Series {
        input: input.to_string(),
        reason: reason.to_string(),
    };
    let s = input.trim();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
        i += 1;
    }
    let name = &s[..i];
    if name.as_bytes().first().is_some_and(|c| c.is_ascii_digit()) {
        return Err(err("metric name must not start with a digit"));
    }
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !name.is_empty() {
        pairs.push((METRIC_NAME.to_string(), name.to_string()));
    }
    let rest = s[i..].trim_start();
    if rest.is_empty() {
        if name.is_empty() {
            return Err(err("empty series descriptor"));
        }
        return Ok(Labels::new(pairs));
    }
    let rest = rest
        .strip_prefix('{')
        .ok_or_else(|| err("expected '{' after the metric name"))?;
    let mut chars = rest.char_indices().peekable();
    let mut seen_names: Vec<String> = Vec::new();
    loop {
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            Some((_, '}')) => {
                chars.next();
                break;
            }
            None => return Err(err("missing '}'")),
            _ => {}
        }
        let mut lname = String::new();
        while let Some(&(_, c)) = chars.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                lname.push(c);
                chars.next();
            } else {
                break;
            }
        }
        if lname.is_empty() || lname.as_bytes()[0].is_ascii_digit() {
            return Err(err("expected a label name"));
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        if chars.next().map(|(_, c)| c) != Some('=') {
            return Err(err("expected '=' after a label name"));
        }
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        let quote = match chars.next() {
            Some((_, q)) if q == '"' || q == '\'' || q == '`' => q,
            _ => return Err(err("expected a quoted label value")),
        };
        let mut value = String::new();
        loop {
            let (_, c) = chars
                .next()
                .ok_or_else(|| err("unterminated label value"))?;
            if c == quote {
                break;
            }
            if c == '\\' && quote != '`' {
                let (_, e) = chars.next().ok_or_else(|| err("unterminated escape"))?;
                match e {
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    '\'' => value.push('\''),
                    'a' => value.push('\u{7}'),
                    'b' => value.push('\u{8}'),
                    'f' => value.push('\u{c}'),
                    'v' => value.push('\u{b}'),
                    _ => return Err(err("unsupported escape in label value")),
                }
            } else {
                value.push(c);
            }
        }
        if seen_names.contains(&lname) {
            return Err(err("duplicate label name"));
        }
        seen_names.push(lname.clone());
        pairs.push((lname, value));
        while chars.peek().is_some_and(|(_, c)| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            Some((_, ',')) => {
                chars.next();
            }
            Some((_, '}')) => {}
            _ => return Err(err("expected ',' or '}'")),
        }
    }
    if chars.next().is_some() {
        return Err(err("trailing characters after '}'"));
    }
    let labels = Labels::new(pairs);
    if labels.metric_name().is_none() && labels.is_empty() {
        return Err(err("no labels"));
    }
    Ok(labels)
}

/// Loads one `input_series` entry into `store`: sample i at `i * interval_ms`.
pub fn load_series(
    store: &mut MemStorage,
    series: &str,
    values: &str,
    interval_ms: i64,
) -> Result<(), FormatError> {
    load_series_until(store, series, values, interval_ms, i64::MAX)
}

/// Like [`load_series`], but only the samples at or before `until_ms`; see
/// [`promtool_load_horizon`] for why promtool's results depend on it.
pub fn load_series_until(
    store: &mut MemStorage,
    series: &str,
    values: &str,
    interval_ms: i64,
    until_ms: i64,
) -> Result<(), FormatError> {
    let labels = parse_series(series)?;
    let values = expand_values(values)?;
    for (i, v) in values.into_iter().enumerate() {
        let Some(t) = (i as i64).checked_mul(interval_ms) else {
            break;
        };
        if t > until_ms {
            break;
        }
        if let Some(v) = v {
            store.append(&labels, t, v)?;
        }
    }
    Ok(())
}

/// The last timestamp whose samples promtool has loaded when it evaluates a test group.
///
/// promtool (2.42, `cmd/promtool/unittest.go`) steps from 0 to the group's largest
/// `eval_time` (over `alert_rule_test` and `promql_expr_test`) by `evaluation_interval`,
/// loading input samples only up to the current step. So samples after the last step
/// `floor(max_eval_time / evaluation_interval) * evaluation_interval` never exist for
/// the group's queries: `x offset -5m` or `x @ <later time>` do not see them. Reproducing
/// promtool's results requires loading with [`load_series_until`] and this horizon.
pub fn promtool_load_horizon(max_eval_time_ms: i64, evaluation_interval_ms: i64) -> i64 {
    if evaluation_interval_ms <= 0 {
        return max_eval_time_ms;
    }
    max_eval_time_ms.div_euclid(evaluation_interval_ms) * evaluation_interval_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::is_stale;

    fn vals(s: &str) -> Vec<Option<f64>> {
        expand_values(s).unwrap()
    }

    #[test]
    fn expanding_notation() {
        assert_eq!(
            vals("1+2x3"),
            vec![Some(1.0), Some(3.0), Some(5.0), Some(7.0)]
        );
        assert_eq!(vals("10-1x2"), vec![Some(10.0), Some(9.0), Some(8.0)]);
        assert_eq!(vals("5x2"), vec![Some(5.0); 3]);
        assert_eq!(vals("_x2 1 _"), vec![None, None, Some(1.0), None]);
        assert_eq!(vals("-1 +2 1e3"), vec![Some(-1.0), Some(2.0), Some(1000.0)]);
        assert_eq!(vals("0x3"), vec![Some(0.0); 4]);
        assert_eq!(vals("-2-1x1"), vec![Some(-2.0), Some(-3.0)]);
        assert!(expand_values("-2+-1x1").is_err());
        let v = vals("Inf -Inf NaN stale");
        assert_eq!(v[0], Some(f64::INFINITY));
        assert_eq!(v[1], Some(f64::NEG_INFINITY));
        assert!(v[2].unwrap().is_nan() && !is_stale(v[2].unwrap()));
        assert!(is_stale(v[3].unwrap()));
        assert!(expand_values("1+x3").is_err());
        assert!(expand_values("abc").is_err());
        assert!(expand_values("1x").is_err());
    }

    #[test]
    fn series_descriptors() {
        let l = parse_series(r#"up{job="etcd", instance='a\'b'}"#).unwrap();
        assert_eq!(
            l.to_string(),
            r#"{__name__="up", instance="a'b", job="etcd"}"#
        );
        let l = parse_series(r#"{__name__="x",a="1",}"#).unwrap();
        assert_eq!(l.to_string(), r#"{__name__="x", a="1"}"#);
        assert!(parse_series("up{job=etcd}").is_err());
        assert!(parse_series("up{").is_err());
        assert!(parse_series("").is_err());
    }
}
