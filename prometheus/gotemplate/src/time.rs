//! Go's `time.Time` as templates see it: printed by `String()`, formatted by `.Format` with Go's
//! reference-time layouts, and a few accessors. Times here are UTC (alerts carry UTC times).

use std::any::Any;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};

use crate::args::{as_str, want_args};
use crate::value::{Object, Value};

#[derive(Debug)]
pub struct GoTime {
    t: DateTime<Utc>,
    plain: Value,
}

impl GoTime {
    /// `None` is Go's zero time (an alert without an end).
    pub fn value(t: Option<DateTime<Utc>>) -> Value {
        Value::object(GoTime {
            t: t.unwrap_or_else(zero),
            plain: Value::Struct("time.Time", Default::default()),
        })
    }
}

fn zero() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(1, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
pub fn go_time_string(t: DateTime<Utc>) -> String {
    format(t, "2006-01-02 15:04:05.999999999 -0700 MST")
}

impl Object for GoTime {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }
    fn plain(&self) -> &Value {
        &self.plain
    }
    fn go_string(&self) -> Option<String> {
        Some(go_time_string(self.t))
    }
    fn method(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let t = self.t;
        let no_args = |v: Value| want_args(name, args, 0).map(|_| v);
        Some(match name {
            "Format" => want_args(name, args, 1)
                .and_then(|_| as_str(&args[0], name))
                .map(|layout| Value::Str(format(t, layout))),
            "String" => no_args(Value::Str(go_time_string(t))),
            "UTC" | "Local" => no_args(Value::object(GoTime {
                t,
                plain: self.plain.clone(),
            })),
            "Unix" => no_args(Value::Int(t.timestamp())),
            "UnixMilli" => no_args(Value::Int(t.timestamp_millis())),
            "UnixNano" => no_args(Value::Int(t.timestamp_nanos_opt().unwrap_or(i64::MIN))),
            "IsZero" => no_args(Value::Bool(t == zero())),
            "Year" => no_args(Value::Int(t.year().into())),
            "YearDay" => no_args(Value::Int(t.ordinal().into())),
            "Day" => no_args(Value::Int(t.day().into())),
            "Hour" => no_args(Value::Int(t.hour().into())),
            "Minute" => no_args(Value::Int(t.minute().into())),
            "Second" => no_args(Value::Int(t.second().into())),
            "Nanosecond" => no_args(Value::Int(t.nanosecond().into())),
            "Month" => no_args(Value::Str(MONTHS[t.month0() as usize].to_string())),
            "Weekday" => no_args(Value::Str(
                DAYS[t.weekday().num_days_from_sunday() as usize].to_string(),
            )),
            _ => return None,
        })
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `Time.Format` for a UTC time: the layout is the reference time `Mon Jan 2 15:04:05 MST 2006`
/// written the way the output should look.
pub fn format(t: DateTime<Utc>, layout: &str) -> String {
    let b = layout.as_bytes();
    let mut out = String::with_capacity(layout.len() + 10);
    let mut i = 0;
    let at = |i: usize, s: &str| layout[i..].starts_with(s);
    let hour12 = |h: u32| if h.is_multiple_of(12) { 12 } else { h % 12 };
    while i < b.len() {
        // Longest chunks first, in the order Go's nextStdChunk tries them.
        let (text, len): (String, usize) = match b[i] {
            b'J' if at(i, "January") => (MONTHS[t.month0() as usize].into(), 7),
            b'J' if at(i, "Jan") => (MONTHS[t.month0() as usize][..3].into(), 3),
            b'M' if at(i, "Monday") => {
                (DAYS[t.weekday().num_days_from_sunday() as usize].into(), 6)
            }
            b'M' if at(i, "Mon") => (
                DAYS[t.weekday().num_days_from_sunday() as usize][..3].into(),
                3,
            ),
            b'M' if at(i, "MST") => ("UTC".into(), 3),
            b'0' if at(i, "002") => (format!("{:03}", t.ordinal()), 3),
            b'0' if at(i, "01") => (format!("{:02}", t.month()), 2),
            b'0' if at(i, "02") => (format!("{:02}", t.day()), 2),
            b'0' if at(i, "03") => (format!("{:02}", hour12(t.hour())), 2),
            b'0' if at(i, "04") => (format!("{:02}", t.minute()), 2),
            b'0' if at(i, "05") => (format!("{:02}", t.second()), 2),
            b'0' if at(i, "06") => (format!("{:02}", t.year().rem_euclid(100)), 2),
            b'1' if at(i, "15") => (format!("{:02}", t.hour()), 2),
            b'1' => (t.month().to_string(), 1),
            b'2' if at(i, "2006") => (format!("{:04}", t.year()), 4),
            b'2' => (t.day().to_string(), 1),
            b'_' if at(i, "_2006") => (format!("_{:04}", t.year()), 5),
            b'_' if at(i, "__2") => (format!("{:>3}", t.ordinal()), 3),
            b'_' if at(i, "_2") => (format!("{:>2}", t.day()), 2),
            b'3' => (hour12(t.hour()).to_string(), 1),
            b'4' => (t.minute().to_string(), 1),
            b'5' => (t.second().to_string(), 1),
            b'P' if at(i, "PM") => ((if t.hour() >= 12 { "PM" } else { "AM" }).into(), 2),
            b'p' if at(i, "pm") => ((if t.hour() >= 12 { "pm" } else { "am" }).into(), 2),
            b'-' if at(i, "-07:00:00") => ("+00:00:00".into(), 9),
            b'-' if at(i, "-070000") => ("+000000".into(), 7),
            b'-' if at(i, "-07:00") => ("+00:00".into(), 6),
            b'-' if at(i, "-0700") => ("+0000".into(), 5),
            b'-' if at(i, "-07") => ("+00".into(), 3),
            b'Z' if at(i, "Z07:00:00") => ("Z".into(), 9),
            b'Z' if at(i, "Z070000") => ("Z".into(), 7),
            b'Z' if at(i, "Z07:00") => ("Z".into(), 6),
            b'Z' if at(i, "Z0700") => ("Z".into(), 5),
            b'Z' if at(i, "Z07") => ("Z".into(), 3),
            b'.' | b',' if matches!(b.get(i + 1), Some(b'0' | b'9')) => {
                let digit = b[i + 1];
                let mut j = i + 1;
                while j < b.len() && b[j] == digit {
                    j += 1;
                }
                if j < b.len() && b[j].is_ascii_digit() {
                    (char::from(b[i]).to_string(), 1)
                } else {
                    let n = j - i - 1;
                    let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
                    let mut frac = nanos[..n.min(9)].to_string();
                    if digit == b'9' {
                        frac = frac.trim_end_matches('0').to_string();
                        if frac.is_empty() {
                            (String::new(), j - i)
                        } else {
                            (format!("{}{frac}", char::from(b[i])), j - i)
                        }
                    } else {
                        (format!("{}{frac}", char::from(b[i])), j - i)
                    }
                }
            }
            _ => {
                let ch = layout[i..].chars().next().unwrap_or(' ');
                (ch.to_string(), ch.len_utf8())
            }
        };
        out.push_str(&text);
        i += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    // Expected strings are Go's (time.Format documentation and time/format_test.go); the Unix
    // second comes from `date -u -d 2026-11-26T18:47:25Z +%s`.
    #[test]
    fn go_layouts() {
        let x = t("2009-02-04T21:00:57.0123Z");
        assert_eq!(go_time_string(x), "2009-02-04 21:00:57.0123 +0000 UTC");
        assert_eq!(
            format(x, "2006-01-02T15:04:05Z07:00"),
            "2009-02-04T21:00:57Z"
        );
        assert_eq!(
            format(x, "Mon, 02 Jan 2006 15:04:05 MST"),
            "Wed, 04 Feb 2009 21:00:57 UTC"
        );
        assert_eq!(
            format(x, "Monday January _2 3:4:5 PM 06"),
            "Wednesday February  4 9:0:57 PM 09"
        );
        assert_eq!(format(x, "15:04:05.000"), "21:00:57.012");
        assert_eq!(format(x, "15:04:05.999999"), "21:00:57.0123");
        assert_eq!(format(x, "-0700 -07:00 Z0700"), "+0000 +00:00 Z");
        assert_eq!(format(x, "002 __2"), "035  35");
        assert_eq!(go_time_string(zero()), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(format(t("2026-01-01T00:00:00Z"), "3PM .999"), "12AM ");
    }
}
