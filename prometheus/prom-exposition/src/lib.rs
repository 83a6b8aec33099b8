//! The Prometheus text exposition format (0.0.4) and OpenMetrics 1.0: a parser and two writers.
//!
//! Why our own: the exporter passes each etcd member's `/metrics` through with extra labels, which needs
//! a parser that keeps families, HELP and TYPE intact, and it must answer in both formats by content
//! negotiation. prometheus-client writes OpenMetrics only and does not escape label values
//! (client_rust#151); the `prometheus` crate has no OpenMetrics writer and no parser. The alerter's
//! scraper uses the same parser.
//!
//! Beside them, [`duration`]: Prometheus' duration syntax, which rule files and configs share, and
//! [`bytes`]: its byte sizes (`body_size_limit: 10MB`).
//!
//! The model is deliberately plain: a [`MetricFamily`] holds its samples with their full names
//! (`x_bucket`, `x_sum`, ...), as they appear on the wire.

pub mod bytes;
pub mod duration;
mod model;
mod parse;
mod write;

pub use model::{MetricFamily, MetricKind, Sample};
pub use parse::{parse_text, parse_text_filtered, Filtered, ParseError};
pub use write::{
    format_value, write_openmetrics, write_text, Exposition, PassedFamily,
    OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE,
};

/// Quotes a string as Go's `strconv.Quote` does for the characters label values realistically
/// contain: how Prometheus and Alertmanager print label sets (`{a="b"}`), hence how their group keys,
/// error messages and promtool's reports read.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is also how `%v` prints a float64: the shortest
/// digits that round-trip, in exponent form when the decimal exponent is < -4 or >= 6; `+Inf`, `-Inf`,
/// `NaN`, `-0`. Prometheus prints values this way in error messages and templates.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Rust's `{:e}` and `{}` print the same shortest round-tripping digits Go chooses.
    let sci = format!("{v:e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

/// True when an HTTP `Accept` header asks for OpenMetrics, as Prometheus' scraper does.
pub fn accepts_openmetrics(accept: &str) -> bool {
    accept
        .split(',')
        .any(|part| part.trim().starts_with("application/openmetrics-text"))
}
