//! Alertmanager's time intervals (`time_intervals:`, the older `mute_time_intervals:`), which routes
//! name in `mute_time_intervals` and `active_time_intervals`. Pure: parsing with Alertmanager's checks
//! and messages, and whether an instant falls inside.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Timelike};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A named list of intervals; an instant is inside when any interval contains it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeInterval {
    pub name: String,
    pub time_intervals: Vec<TimeInterval>,
}

/// Every field that is set must contain the instant; an empty interval contains every instant.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(default)]
    pub times: Option<Vec<TimeRange>>,
    #[serde(default)]
    pub weekdays: Option<Vec<WeekdayRange>>,
    #[serde(default)]
    pub days_of_month: Option<Vec<DayOfMonthRange>>,
    #[serde(default)]
    pub months: Option<Vec<MonthRange>>,
    #[serde(default)]
    pub years: Option<Vec<YearRange>>,
    #[serde(default)]
    pub location: Option<Location>,
}

/// `[start, end)` in minutes of the day.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// An inclusive range: `monday:friday`, `1:15`, `-3:-1`, `2024`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InclusiveRange {
    pub begin: i32,
    pub end: i32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WeekdayRange(pub InclusiveRange);
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DayOfMonthRange(pub InclusiveRange);
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MonthRange(pub InclusiveRange);
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct YearRange(pub InclusiveRange);

/// An IANA time zone (`Europe/Berlin`), or `UTC`/`Local`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Location(Option<chrono_tz::Tz>);

impl fmt::Display for InclusiveRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.begin, self.end)
    }
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `a:b` or `a`, each side read by `member`; lower-cased first, as Alertmanager does.
fn range_from(
    s: &str,
    member: impl Fn(&str) -> Result<i32, String>,
) -> Result<InclusiveRange, String> {
    let s = s.to_lowercase();
    match s.split_once(':') {
        Some((a, b)) => {
            if b.contains(':') {
                return Err(format!("couldn't parse range {s}, invalid format"));
            }
            Ok(InclusiveRange {
                begin: member(a)?,
                end: member(b)?,
            })
        }
        None => {
            let v = member(&s)?;
            Ok(InclusiveRange { begin: v, end: v })
        }
    }
}

/// Go's `strconv.Atoi` message.
fn atoi(s: &str) -> Result<i32, String> {
    s.parse::<i32>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: invalid syntax"))
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d)
}

impl<'de> Deserialize<'de> for WeekdayRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_string(d)?;
        let r = range_from(&s, |m| {
            WEEKDAYS
                .iter()
                .position(|w| *w == m)
                .map(|i| i as i32)
                .ok_or_else(|| format!("{m} is not a valid weekday"))
        })
        .map_err(D::Error::custom)?;
        if r.begin > r.end {
            return Err(D::Error::custom("start day cannot be before end day"));
        }
        Ok(WeekdayRange(r))
    }
}

impl<'de> Deserialize<'de> for DayOfMonthRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_string(d)?;
        let r = range_from(&s, atoi).map_err(D::Error::custom)?;
        for v in [r.begin, r.end] {
            if v == 0 || !(-31..=31).contains(&v) {
                return Err(D::Error::custom(format!(
                    "{v} is not a valid day of the month: out of range"
                )));
            }
        }
        if r.begin < 0 && r.end > 0 {
            return Err(D::Error::custom(
                "end day must be negative if start day is negative",
            ));
        }
        // Alertmanager compares negative days as in a 28-day month.
        let at = |v: i32| if v < 0 { 28 + v } else { v };
        if at(r.begin) > at(r.end) {
            return Err(D::Error::custom(format!(
                "end day {} is always before start day {}",
                r.end, r.begin
            )));
        }
        Ok(DayOfMonthRange(r))
    }
}

impl<'de> Deserialize<'de> for MonthRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_string(d)?;
        let r = range_from(&s, |m| match MONTHS.iter().position(|x| *x == m) {
            Some(i) => Ok(i as i32 + 1),
            None => m
                .parse::<i32>()
                .map_err(|_| format!("{m} is not a valid month")),
        })
        .map_err(D::Error::custom)?;
        if r.begin > r.end {
            let name = |v: i32| {
                usize::try_from(v - 1)
                    .ok()
                    .and_then(|i| MONTHS.get(i))
                    .copied()
                    .unwrap_or("")
            };
            return Err(D::Error::custom(format!(
                "end month {} is before start month {}",
                name(r.end),
                name(r.begin)
            )));
        }
        Ok(MonthRange(r))
    }
}

impl<'de> Deserialize<'de> for YearRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_string(d)?;
        let r = range_from(&s, atoi).map_err(D::Error::custom)?;
        if r.begin > r.end {
            return Err(D::Error::custom(format!(
                "end year {} is before start year {}",
                r.end, r.begin
            )));
        }
        Ok(YearRange(r))
    }
}

/// `HH:MM` from 00:00 to 24:00, in minutes.
fn parse_clock(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if (h == 24 && m != 0) || h > 24 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            start_time: String,
            #[serde(default)]
            end_time: String,
        }
        let raw = Raw::deserialize(d)?;
        if raw.start_time.is_empty() || raw.end_time.is_empty() {
            return Err(D::Error::custom(
                "both start and end times must be provided",
            ));
        }
        let start = parse_clock(&raw.start_time).map_err(D::Error::custom)?;
        let end = parse_clock(&raw.end_time).map_err(D::Error::custom)?;
        if start >= end {
            return Err(D::Error::custom(
                "start time cannot be equal or greater than end time",
            ));
        }
        Ok(TimeRange {
            start_minute: start,
            end_minute: end,
        })
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = de_string(d)?;
        match s.as_str() {
            // Go's LoadLocation: "" and "UTC" are UTC, "Local" the process' zone.
            "" | "UTC" => Ok(Location(Some(chrono_tz::UTC))),
            "Local" => Ok(Location(None)),
            name => name
                .parse::<chrono_tz::Tz>()
                .map(|tz| Location(Some(tz)))
                .map_err(|_| D::Error::custom(format!("unknown time zone {name}"))),
        }
    }
}

fn days_in_month(year: i32, month: u32) -> i32 {
    let first = NaiveDate::from_ymd_opt(year, month, 1);
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    match (first, next) {
        (Some(a), Some(b)) => (b - a).num_days() as i32,
        _ => 31,
    }
}

/// The parts of a local time an interval looks at.
struct Civil {
    minute_of_day: u32,
    weekday: i32,
    day: i32,
    month: i32,
    year: i32,
    days_in_month: i32,
}

fn civil<Tz: chrono::TimeZone>(t: &DateTime<Tz>) -> Civil {
    Civil {
        minute_of_day: t.hour() * 60 + t.minute(),
        weekday: t.weekday().num_days_from_sunday() as i32,
        day: t.day() as i32,
        month: t.month() as i32,
        year: t.year(),
        days_in_month: days_in_month(t.year(), t.month()),
    }
}

impl TimeInterval {
    /// Alertmanager's `ContainsTime`: the instant read in the interval's location (as given when
    /// none is set).
    pub fn contains(&self, t: DateTime<FixedOffset>) -> bool {
        let c = match self.location {
            Some(Location(Some(tz))) => civil(&t.with_timezone(&tz)),
            Some(Location(None)) => civil(&t.with_timezone(&chrono::Local)),
            None => civil(&t),
        };
        let times_ok = match &self.times {
            None => true,
            Some(ts) => ts
                .iter()
                .any(|r| r.start_minute <= c.minute_of_day && c.minute_of_day < r.end_minute),
        };
        let days_ok = match &self.days_of_month {
            None => true,
            Some(ds) => ds.iter().any(|DayOfMonthRange(r)| {
                let n = c.days_in_month;
                let begin = if r.begin < 0 {
                    n + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { n + r.end + 1 } else { r.end };
                if begin > n {
                    return false;
                }
                let (begin, end) = (begin.clamp(-n, n), end.clamp(-n, n));
                begin <= c.day && c.day <= end
            }),
        };
        times_ok
            && days_ok
            && within(&self.months, c.month, |r| r.0)
            && within(&self.weekdays, c.weekday, |r| r.0)
            && within(&self.years, c.year, |r| r.0)
    }
}

/// Whether `v` is in one of the ranges; an unset list does not restrict.
fn within<R>(set: &Option<Vec<R>>, v: i32, range: impl Fn(&R) -> InclusiveRange) -> bool {
    match set {
        None => true,
        Some(rs) => rs.iter().map(range).any(|r| r.begin <= v && v <= r.end),
    }
}

#[cfg(test)]
mod tests;
