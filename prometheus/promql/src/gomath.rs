//! Go `math` semantics where they differ from Rust's `f64` methods.
//!
//! Prometheus is written in Go: `math.Max(x, NaN)` is NaN (Rust's `f64::max` ignores NaN),
//! `int64(f)` conversions and `strconv.FormatFloat` spellings differ. Results must match
//! promtool bit for bit where possible, so these small shims are used throughout.

/// Go's `math.Max`.
pub fn max(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x > 0.0 || y.is_infinite() && y > 0.0 {
        return f64::INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { y } else { x };
    }
    if x > y {
        x
    } else {
        y
    }
}

/// Go's `math.Min`.
pub fn min(x: f64, y: f64) -> f64 {
    if x.is_infinite() && x < 0.0 || y.is_infinite() && y < 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_nan() || y.is_nan() {
        return f64::NAN;
    }
    if x == 0.0 && y == 0.0 {
        return if x.is_sign_negative() { x } else { y };
    }
    if x < y {
        x
    } else {
        y
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` (used by `count_values` for label values).
pub fn format_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else {
        // Rust's Display prints the shortest round-tripping digits without an exponent,
        // which is what Go's 'f' format with precision -1 does.
        format!("{v}")
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the spellings that occur in `le` labels.
pub fn parse_float(s: &str) -> Option<f64> {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let neg = s.starts_with('-');
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if neg {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        return if body.len() == s.len() {
            Some(f64::NAN)
        } else {
            None
        };
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b"._eE+-".contains(&b))
    {
        return None;
    }
    if body.contains('_') {
        // Go accepts underscores only between digits with a base prefix; never in decimals.
        return None;
    }
    s.parse::<f64>().ok()
}

/// Whether Go's `int64(f)` is well defined (Prometheus' `convertibleToInt64`).
pub fn convertible_to_i64(v: f64) -> bool {
    (i64::MIN as f64..=i64::MAX as f64).contains(&v)
}

/// Go's `%v` formatting of a float64, as used in error messages.
pub use prom_exposition::go_float as format_float_g;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_min_max() {
        assert!(max(1.0, f64::NAN).is_nan());
        assert_eq!(max(f64::NAN, f64::INFINITY), f64::INFINITY);
        assert!(min(1.0, f64::NAN).is_nan());
        assert_eq!(min(f64::NAN, f64::NEG_INFINITY), f64::NEG_INFINITY);
        assert!(max(-0.0, 0.0).is_sign_positive());
        assert!(min(-0.0, 0.0).is_sign_negative());
    }

    #[test]
    fn floats() {
        assert_eq!(format_float_f(0.1), "0.1");
        assert_eq!(format_float_f(1e21), "1000000000000000000000");
        assert_eq!(format_float_f(f64::INFINITY), "+Inf");
        assert_eq!(parse_float("+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_float("0.25"), Some(0.25));
        assert_eq!(parse_float("1e3"), Some(1000.0));
        assert_eq!(parse_float("abc"), None);
        assert_eq!(format_float_g(1e19), "1e+19");
        assert_eq!(format_float_g(-1.5e19), "-1.5e+19");
        assert_eq!(
            format_float_g(1.2345678901234568e22),
            "1.2345678901234568e+22"
        );
        assert_eq!(format_float_g(1e-5), "1e-05");
        assert_eq!(format_float_g(0.5), "0.5");
        assert_eq!(format_float_g(123456.0), "123456");
        assert_eq!(format_float_g(1234567.0), "1.234567e+06");
        assert_eq!(parse_float(""), None);
    }
}
