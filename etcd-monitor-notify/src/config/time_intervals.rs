//! `time_intervals:` and its older name `mute_time_intervals:`, by name (each name once).

use std::collections::BTreeMap;

use super::locate::Locator;
use super::ConfigError;
use crate::timeinterval::{NamedTimeInterval, TimeInterval};

pub(super) fn collect(
    at: &Locator<'_>,
    mute_time_intervals: Vec<NamedTimeInterval>,
    time_intervals: Vec<NamedTimeInterval>,
) -> Result<BTreeMap<String, Vec<TimeInterval>>, ConfigError> {
    let mut by_name = BTreeMap::new();
    for (key, list) in [
        ("mute_time_intervals", mute_time_intervals),
        ("time_intervals", time_intervals),
    ] {
        for ti in list {
            if ti.name.is_empty() {
                return Err(at.err(key, format!("{key}: missing name in time interval")));
            }
            if by_name.contains_key(&ti.name) {
                let what = if key == "time_intervals" {
                    "time interval"
                } else {
                    "mute time interval"
                };
                let first = format!("name: {}", ti.name);
                return Err(at.err_after(
                    &first,
                    2,
                    &first,
                    format!("{key}: {what} {:?} is not unique", ti.name),
                ));
            }
            by_name.insert(ti.name, ti.time_intervals);
        }
    }
    Ok(by_name)
}
