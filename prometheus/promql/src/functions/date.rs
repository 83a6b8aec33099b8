//! Calendar functions (`minute()`, `hour()`, `day_of_week()`, ...), always in UTC.
//!
//! Prometheus converts the value to whole seconds with Go's `int64(v)` and builds a UTC
//! `time.Time`; here the civil date comes from Howard Hinnant's days-to-civil algorithm
//! (proleptic Gregorian, like Go), computed in `i128` so no input overflows.

/// Seconds from Go's "absolute" epoch (year -292277022399) to the Unix epoch:
/// `unixToInternal + internalToAbsolute` in Go's `time` package.
const UNIX_TO_ABSOLUTE: i128 = 9_223_372_028_683_721_448;

/// A date component of a Unix time in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePart {
    Minute,
    Hour,
    DayOfWeek,
    DayOfMonth,
    DayOfYear,
    DaysInMonth,
    Month,
    Year,
}

/// The component a PromQL date function extracts.
pub fn date_part(name: &str) -> Option<DatePart> {
    Some(match name {
        "minute" => DatePart::Minute,
        "hour" => DatePart::Hour,
        "day_of_week" => DatePart::DayOfWeek,
        "day_of_month" => DatePart::DayOfMonth,
        "day_of_year" => DatePart::DayOfYear,
        "days_in_month" => DatePart::DaysInMonth,
        "month" => DatePart::Month,
        "year" => DatePart::Year,
        _ => return None,
    })
}

/// The Unix time Go's `time.Unix(s, 0).UTC()` actually represents: Go computes dates from
/// `uint64(s + UNIX_TO_ABSOLUTE)`, which wraps for seconds near `i64::MIN` (what
/// `int64(NaN)` gives on amd64), so `year(vector(NaN))` is 292277026596 in Prometheus.
fn go_effective_seconds(s: i64) -> i128 {
    (i128::from(s) + UNIX_TO_ABSOLUTE).rem_euclid(1 << 64) - UNIX_TO_ABSOLUTE
}

/// The component of the UTC date of Unix time `secs`.
pub fn date_value(part: DatePart, secs: i64) -> f64 {
    let s = go_effective_seconds(secs);
    match part {
        DatePart::Minute => (s.rem_euclid(3600) / 60) as f64,
        DatePart::Hour => (s.rem_euclid(86_400) / 3600) as f64,
        // 1970-01-01 was a Thursday (4).
        DatePart::DayOfWeek => (s.div_euclid(86_400) + 4).rem_euclid(7) as f64,
        DatePart::DayOfMonth => civil(s).2 as f64,
        DatePart::DayOfYear => {
            let (y, m, d) = civil(s);
            let before: i128 = (1..m).map(|mm| days_in_month(y, mm)).sum();
            (before + d) as f64
        }
        DatePart::DaysInMonth => {
            let (y, m, _) = civil(s);
            days_in_month(y, m) as f64
        }
        DatePart::Month => civil(s).1 as f64,
        DatePart::Year => civil(s).0 as f64,
    }
}

/// Go's `int64(f)` on amd64: truncation toward zero; NaN, infinities and out-of-range
/// values become `i64::MIN` (the CPU's "integer indefinite" value).
pub fn go_float_to_i64(v: f64) -> i64 {
    // 2^63 is the first value out of range.
    if v.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v) {
        i64::MIN
    } else {
        v.trunc() as i64
    }
}

fn is_leap(y: i128) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i128, m: u32) -> i128 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// (year, month 1-12, day 1-31) of a Unix time in seconds.
fn civil(secs: i128) -> (i128, u32, i128) {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        // 2024-02-29T13:45:00Z = 1709214300
        let t = 1_709_214_300;
        let f = |n: &str| date_value(date_part(n).unwrap(), t);
        assert_eq!(f("year"), 2024.0);
        assert_eq!(f("month"), 2.0);
        assert_eq!(f("day_of_month"), 29.0);
        assert_eq!(f("days_in_month"), 29.0);
        assert_eq!(f("hour"), 13.0);
        assert_eq!(f("minute"), 45.0);
        assert_eq!(f("day_of_week"), 4.0); // Thursday
        assert_eq!(f("day_of_year"), 60.0);
        // 1969-12-31T23:59:59Z
        assert_eq!(date_value(DatePart::Year, -1), 1969.0);
        assert_eq!(date_value(DatePart::DayOfWeek, -1), 3.0);
        // Go's wrap-around for int64(NaN).
        assert_eq!(
            date_value(DatePart::Year, go_float_to_i64(f64::NAN)),
            292_277_026_596.0
        );
    }
}
