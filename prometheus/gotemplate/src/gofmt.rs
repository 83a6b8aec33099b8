//! Go's `fmt` number formatting (`%v`, `%g`, `%e`, `%f`, `printf`), because Prometheus' templates print values
//! through Go: `{{ $value }}` of 1e21 is `1e+21`, `%.4g` of 12345 is `1.234e+04`. Rust's formatting gives
//! the same digits (both round the exact binary value), so this only re-lays them out as Go does.

use crate::value::Value;

/// Decimal digits of a float without trailing zeros, and the decimal point position (Go's `decimalSlice`).
struct Digits {
    digits: Vec<u8>,
    dp: i32,
}

fn digits_from_exp(s: &str) -> Digits {
    // `s` is Rust's `{:e}` output of a finite, non-negative number, e.g. "1.2345e6", "5e-1", "0e0".
    let (mant, exp) = s.split_once('e').unwrap_or((s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return Digits { digits, dp: 0 };
    }
    Digits {
        digits,
        dp: exp + 1,
    }
}

fn shortest(v: f64) -> Digits {
    digits_from_exp(&format!("{:e}", v.abs()))
}

fn rounded(v: f64, significant: usize) -> Digits {
    let significant = significant.max(1);
    digits_from_exp(&format!("{:.*e}", significant - 1, v.abs()))
}

fn fmt_e(d: &Digits, prec: usize, upper: bool) -> String {
    let mut out = String::new();
    out.push(d.digits.first().map(|&c| c as char).unwrap_or('0'));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(d.digits.get(i).map(|&c| c as char).unwrap_or('0'));
        }
    }
    out.push(if upper { 'E' } else { 'e' });
    let exp = if d.digits.is_empty() { 0 } else { d.dp - 1 };
    out.push(if exp < 0 { '-' } else { '+' });
    let exp = exp.unsigned_abs();
    if exp < 10 {
        out.push('0');
    }
    out.push_str(&exp.to_string());
    out
}

fn fmt_f(d: &Digits, prec: usize) -> String {
    let mut out = String::new();
    if d.dp > 0 {
        for i in 0..d.dp as usize {
            out.push(d.digits.get(i).map(|&c| c as char).unwrap_or('0'));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i32 {
            let j = d.dp + i - 1;
            let c = if j >= 0 {
                d.digits.get(j as usize).copied()
            } else {
                None
            };
            out.push(c.map(|c| c as char).unwrap_or('0'));
        }
    }
    out
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v.is_infinite() {
        Some(if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        })
    } else {
        None
    }
}

fn sign(v: f64, plus: bool, space: bool) -> &'static str {
    if v.is_sign_negative() {
        "-"
    } else if plus {
        "+"
    } else if space {
        " "
    } else {
        ""
    }
}

/// `%g` (precision None = shortest, as `%v` prints floats).
pub fn format_g(v: f64, prec: Option<usize>, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let body = g_body(v, prec, upper);
    format!("{}{}", sign(v, false, false), body)
}

fn g_body(v: f64, prec: Option<usize>, upper: bool) -> String {
    let (d, mut p, eprec) = match prec {
        None => {
            let d = shortest(v);
            let nd = d.digits.len();
            (d, nd, 6i32)
        }
        Some(p) => {
            let p = p.max(1);
            let d = rounded(v, p);
            let nd = d.digits.len() as i32;
            let mut eprec = p as i32;
            if eprec > nd && nd >= d.dp {
                eprec = nd;
            }
            (d, p, eprec)
        }
    };
    let nd = d.digits.len();
    let exp = d.dp - 1;
    if exp < -4 || exp >= eprec {
        if p > nd {
            p = nd;
        }
        return fmt_e(&d, p.saturating_sub(1), upper);
    }
    if p as i32 > d.dp {
        p = nd;
    }
    fmt_f(&d, (p as i32 - d.dp).max(0) as usize)
}

pub fn format_e(v: f64, prec: usize, upper: bool) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let d = rounded(v, prec + 1);
    format!("{}{}", sign(v, false, false), fmt_e(&d, prec, upper))
}

pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(s) = special(v) {
        return s;
    }
    let s = format!("{:.*}", prec, v.abs());
    format!("{}{}", sign(v, false, false), s)
}

/// Go's `%v` of a float64.
pub use prom_exposition::go_float as format_float;

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

fn pad(s: String, spec: &Spec, numeric: bool) -> String {
    let Some(width) = spec.width else { return s };
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let fill = width - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, rest) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s.clone()),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

fn with_sign(body: String, negative: bool, spec: &Spec) -> String {
    if negative {
        format!("-{body}")
    } else if spec.plus {
        format!("+{body}")
    } else if spec.space {
        format!(" {body}")
    } else {
        body
    }
}

fn bad_verb(verb: char, v: &Value) -> String {
    format!("%!{verb}({}={})", v.go_type(), v.to_go_string())
}

fn format_float_verb(verb: char, f: f64, spec: &Spec) -> String {
    if f.is_nan() || f.is_infinite() {
        let s = if f.is_nan() {
            if spec.plus {
                "+NaN".to_string()
            } else if spec.space {
                " NaN".to_string()
            } else {
                "NaN".to_string()
            }
        } else if f > 0.0 {
            if spec.plus || !spec.space {
                "+Inf".to_string()
            } else {
                " Inf".to_string()
            }
        } else {
            "-Inf".to_string()
        };
        let mut no_zero = *spec;
        no_zero.zero = false;
        return pad(s, &no_zero, false);
    }
    let neg = f.is_sign_negative();
    let a = f.abs();
    let body = match verb {
        'v' | 'g' => g_body(a, spec.prec, false),
        'G' => g_body(a, spec.prec, true),
        'e' => fmt_e(
            &rounded(a, spec.prec.unwrap_or(6) + 1),
            spec.prec.unwrap_or(6),
            false,
        ),
        'E' => fmt_e(
            &rounded(a, spec.prec.unwrap_or(6) + 1),
            spec.prec.unwrap_or(6),
            true,
        ),
        _ => format!("{:.*}", spec.prec.unwrap_or(6), a),
    };
    pad(with_sign(body, neg, spec), spec, true)
}

fn format_int_verb(verb: char, i: i64, spec: &Spec) -> String {
    let neg = i < 0;
    let a = i.unsigned_abs();
    let mut body = match verb {
        'x' => format!("{a:x}"),
        'X' => format!("{a:X}"),
        'o' => format!("{a:o}"),
        'b' => format!("{a:b}"),
        _ => a.to_string(),
    };
    if let Some(p) = spec.prec {
        while body.len() < p {
            body.insert(0, '0');
        }
    }
    pad(with_sign(body, neg, spec), spec, spec.prec.is_none())
}

/// Go's `%q` of a string (strconv.Quote).
pub fn quote(s: &str) -> String {
    prom_exposition::go_quote(s)
}

fn format_one(verb: char, v: &Value, spec: &Spec) -> String {
    match (verb, v) {
        ('v', Value::Float(f)) => format_float_verb('v', *f, spec),
        ('v', Value::Int(i)) => format_int_verb('d', *i, spec),
        ('v', other) => pad(other.to_go_string(), spec, false),
        ('d' | 'x' | 'X' | 'o' | 'b', Value::Int(i)) => format_int_verb(verb, *i, spec),
        ('e' | 'E' | 'f' | 'F' | 'g' | 'G', Value::Float(f)) => format_float_verb(verb, *f, spec),
        ('s', Value::Str(s)) => {
            let s = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            };
            pad(s, spec, false)
        }
        ('s', Value::Float(_) | Value::Int(_) | Value::Bool(_)) => bad_verb(verb, v),
        ('s', other) => pad(other.to_go_string(), spec, false),
        ('q', Value::Str(s)) => pad(quote(s), spec, false),
        ('x', Value::Str(s)) => pad(s.bytes().map(|b| format!("{b:02x}")).collect(), spec, false),
        ('X', Value::Str(s)) => pad(s.bytes().map(|b| format!("{b:02X}")).collect(), spec, false),
        ('t', Value::Bool(b)) => pad(b.to_string(), spec, false),
        _ => bad_verb(verb, v),
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let chars: Vec<char> = format.chars().collect();
    let mut i = 0;
    let mut argi = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let mut spec = Spec::default();
        while i < chars.len() {
            match chars[i] {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                ' ' => spec.space = true,
                '0' => spec.zero = true,
                '#' => {}
                _ => break,
            }
            i += 1;
        }
        let num = |i: &mut usize| -> Option<usize> {
            let start = *i;
            while *i < chars.len() && chars[*i].is_ascii_digit() {
                *i += 1;
            }
            if *i > start {
                Some(
                    chars[start..*i]
                        .iter()
                        .collect::<String>()
                        .parse()
                        .unwrap_or(usize::MAX),
                )
            } else {
                None
            }
        };
        // Go stops at a width or precision over a million (fmt's tooLarge): the rest of the format is
        // swallowed and reported as a missing verb, rather than allocated.
        const TOO_LARGE: usize = 1_000_000;
        spec.width = num(&mut i);
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            spec.prec = Some(num(&mut i).unwrap_or(0));
        }
        if spec.width.is_some_and(|w| w > TOO_LARGE) || spec.prec.is_some_and(|p| p > TOO_LARGE) {
            out.push_str("%!(NOVERB)");
            break;
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.get(argi) {
            Some(v) => out.push_str(&format_one(verb, v, &spec)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
        argi += 1;
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|v| format!("{}={}", v.go_type(), v.to_go_string()))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected strings are what Go's fmt prints (fmt.Sprint / fmt.Sprintf), per the Go documentation and
    // strconv.FormatFloat's 'g' rule: exponent form when exp < -4 || exp >= precision (6 for shortest).
    #[test]
    fn go_v_of_floats() {
        for (v, want) in [
            (0.5, "0.5"),
            (1e21, "1e+21"),
            (3.0, "3"),
            (0.0, "0"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (0.1 + 0.2, "0.30000000000000004"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_float(v), want, "{v}");
        }
    }

    #[test]
    fn go_printf() {
        let f = |v: f64| Value::Float(v);
        assert_eq!(sprintf("%.4g", &[f(12345.0)]), "1.234e+04");
        assert_eq!(sprintf("%.4g", &[f(100.0)]), "100");
        assert_eq!(sprintf("%.4g", &[f(0.5)]), "0.5");
        assert_eq!(sprintf("%.4g", &[f(1.23456)]), "1.235");
        assert_eq!(sprintf("%.2f", &[f(1.005)]), "1.00");
        assert_eq!(sprintf("%.2f%%", &[f(12.3456)]), "12.35%");
        assert_eq!(
            sprintf(
                "%5.1f|%-5d|%05d",
                &[f(3.25159), Value::Int(42), Value::Int(-42)]
            ),
            "  3.3|42   |-0042"
        );
        assert_eq!(sprintf("%e", &[f(123456.0)]), "1.234560e+05");
        assert_eq!(
            sprintf("%s=%q", &[Value::Str("a".into()), Value::Str("b\"".into())]),
            "a=\"b\\\"\""
        );
        assert_eq!(sprintf("%d", &[f(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(sprintf("%v", &[f(1e21)]), "1e+21");
        assert_eq!(sprintf("%.4g", &[f(0.0)]), "0");
        assert_eq!(sprintf("%f", &[f(f64::INFINITY)]), "+Inf");
        assert_eq!(
            sprintf("%.9999999999f", &[f(1.0)]),
            "%!(NOVERB)%!(EXTRA float64=1)"
        );
    }

    mod fuzz {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn sprintf_never_panics(format in "[%0-9.+ #a-zA-Z-]{0,16}", f in proptest::num::f64::ANY, i in any::<i64>(), s in "\\PC{0,8}") {
                let _ = sprintf(&format, &[Value::Float(f), Value::Int(i), Value::Str(s)]);
                let _ = format_float(f);
                let _ = format_g(f, Some(i.unsigned_abs() as usize % 30), false);
            }
        }
    }
}
