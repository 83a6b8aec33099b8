//! Time arithmetic that saturates instead of panicking: times and durations come from outside
//! (configuration files, the API, state files), and `DateTime + Duration` panics on overflow.

use chrono::{DateTime, Duration as ChronoDuration, Utc};

/// A `std` duration as chrono's, the longest chrono has when it is longer.
pub(crate) fn chrono_dur(d: std::time::Duration) -> ChronoDuration {
    ChronoDuration::from_std(d).unwrap_or(ChronoDuration::MAX)
}

/// `t + d`, saturating at the end of time.
pub(crate) fn later(t: DateTime<Utc>, d: ChronoDuration) -> DateTime<Utc> {
    t.checked_add_signed(d).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t - d`, saturating at the beginning of time.
pub(crate) fn earlier(t: DateTime<Utc>, d: ChronoDuration) -> DateTime<Utc> {
    t.checked_sub_signed(d).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
