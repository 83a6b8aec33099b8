//! Calendar functions (`minute()`, `hour()`, `day_of_week()`, ...), always in UTC.
//!
//! Prometheus converts the value to whole seconds with Go's `int64(v)` and builds a UTC
//! `time.Time`; here the civil date comes from Howard Hinnant's days-to-civil algorithm,
//! which is exact over the whole `i64` range of days we can reach.

/// Which component a date function extracts, from Unix seconds.
pub fn date_function(name: &str) -> Option<fn(i64) -> f64> {
    Some(match name {
        "minute" => |s| (s.rem_euclid(3600) / 60) as f64,
        "hour" => |s| (s.rem_euclid(86_400) / 3600) as f64,
        "day_of_week" => |s| {
            // 1970-01-01 was a Thursday (4).
            (s.div_euclid(86_400) + 4).rem_euclid(7) as f64
        },
        "day_of_month" => |s| civil(s).2 as f64,
        "day_of_year" => |s| {
            let (y, m, d) = civil(s);
            let mut n = d;
            for mm in 1..m {
                n += days_in_month(y, mm);
            }
            n as f64
        },
        "days_in_month" => |s| {
            let (y, m, _) = civil(s);
            days_in_month(y, m) as f64
        },
        "month" => |s| civil(s).1 as f64,
        "year" => |s| civil(s).0 as f64,
        _ => return None,
    })
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

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> i64 {
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

/// (year, month 1-12, day 1-31) of a Unix timestamp in seconds.
fn civil(secs: i64) -> (i64, u32, i64) {
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
        let f = |n: &str| date_function(n).unwrap()(t);
        assert_eq!(f("year"), 2024.0);
        assert_eq!(f("month"), 2.0);
        assert_eq!(f("day_of_month"), 29.0);
        assert_eq!(f("days_in_month"), 29.0);
        assert_eq!(f("hour"), 13.0);
        assert_eq!(f("minute"), 45.0);
        assert_eq!(f("day_of_week"), 4.0); // Thursday
        assert_eq!(f("day_of_year"), 60.0);
        // 1969-12-31T23:59:59Z
        assert_eq!(date_function("year").unwrap()(-1), 1969.0);
        assert_eq!(date_function("day_of_week").unwrap()(-1), 3.0);
    }
}
