//! Open-loop pacing: with `--rate R`, request `i` is meant to leave at `start + i/R`, whatever happened
//! to earlier requests. Latency is measured from that intended time (as wrk2 does), so a stalled
//! cluster shows up in the figures instead of silently slowing the senders down (coordinated omission).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pacing {
    /// Nanoseconds between intended sends; `None` is closed loop.
    interval_ns: Option<f64>,
}

impl Pacing {
    pub fn new(rate: f64) -> Pacing {
        Pacing {
            interval_ns: (rate > 0.0).then(|| 1e9 / rate),
        }
    }

    pub fn open_loop(&self) -> bool {
        self.interval_ns.is_some()
    }

    /// Offset of request `i`'s intended send time from the start (open loop only).
    pub fn intended_offset(&self, i: u64) -> Option<Duration> {
        self.interval_ns
            .map(|ns| Duration::from_nanos((i as f64 * ns).round() as u64))
    }

    /// How many requests a run of `d` holds at this rate (open loop only).
    pub fn requests_within(&self, d: Duration) -> Option<u64> {
        self.interval_ns
            .map(|ns| (d.as_nanos() as f64 / ns).ceil() as u64)
    }
}

/// What one request's timing says, given its intended send time, the actual send and the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// From the intended send (the actual send in closed loop) to the answer.
    pub corrected: Duration,
    /// From the actual send to the answer.
    pub service: Duration,
    pub late: bool,
}

/// Pure: offsets are from the run's start.
pub fn timing(
    intended: Option<Duration>,
    sent: Duration,
    answered: Duration,
    late_threshold: Duration,
) -> Timing {
    let service = answered.saturating_sub(sent);
    match intended {
        Some(t) => Timing {
            corrected: answered.saturating_sub(t),
            service,
            late: sent.saturating_sub(t) > late_threshold,
        },
        None => Timing {
            corrected: service,
            service,
            late: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_times_follow_the_rate() {
        let p = Pacing::new(1000.0);
        assert_eq!(p.intended_offset(0), Some(Duration::ZERO));
        assert_eq!(p.intended_offset(1500), Some(Duration::from_millis(1500)));
        assert_eq!(p.requests_within(Duration::from_secs(2)), Some(2000));
        assert!(!Pacing::new(0.0).open_loop());
        assert_eq!(Pacing::new(0.0).intended_offset(5), None);
    }

    #[test]
    fn a_stall_is_charged_to_the_requests_that_waited() {
        // Intended at 10 ms, sent at 510 ms because every client was stuck, answered at 512 ms.
        let t = timing(
            Some(Duration::from_millis(10)),
            Duration::from_millis(510),
            Duration::from_millis(512),
            Duration::from_millis(5),
        );
        assert_eq!(t.corrected, Duration::from_millis(502));
        assert_eq!(t.service, Duration::from_millis(2));
        assert!(t.late);
        // On time: both agree within the send jitter, not late.
        let t = timing(
            Some(Duration::from_millis(10)),
            Duration::from_millis(11),
            Duration::from_millis(13),
            Duration::from_millis(5),
        );
        assert_eq!(t.corrected, Duration::from_millis(3));
        assert!(!t.late);
        // Closed loop: latency is the service time.
        let t = timing(
            None,
            Duration::from_millis(11),
            Duration::from_millis(13),
            Duration::from_millis(5),
        );
        assert_eq!(t.corrected, t.service);
    }
}
