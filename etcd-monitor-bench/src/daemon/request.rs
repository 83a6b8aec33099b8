//! What a `POST /api/v1/performance/benchmark` may ask for, and the limits every run of the daemon stays
//! inside. Pure: the body in, the job (or why not) out; property-tested in `etcd-monitor-bench/tests/trigger_requests.rs`.

use crate::config::{invalid, InvalidFlag};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{BenchConfig, StopAfter, Workload};
use crate::job::JobOptions;

/// The largest request body read. The whole vocabulary fits in a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 4096;

/// Bounds on what the trigger may start (`--trigger-max-*`). The daemon's own job must be inside them
/// too, because an empty POST runs it; `max_duration` also stops every run, scheduled or requested,
/// that goes on longer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TriggerLimits {
    pub max_clients: usize,
    pub max_conns: usize,
    pub max_total: u64,
    /// Requests per second of an open-loop run. A closed-loop run (rate 0) is bounded by its clients.
    pub max_rate: f64,
    pub max_duration: Duration,
}

impl Default for TriggerLimits {
    /// Ten times the original design's documented run (10,000 writes) and etcd's benchmark examples'
    /// 100 clients; a run longer than ten minutes is a load test, not a probe.
    fn default() -> TriggerLimits {
        TriggerLimits {
            max_clients: 100,
            max_conns: 50,
            max_total: 100_000,
            max_rate: 10_000.0,
            max_duration: Duration::from_secs(600),
        }
    }
}

/// Which names a limit message uses: the request's fields, or the daemon's own flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    Request,
    Flags,
}

/// A request (or the daemon's own job) over one of the limits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitExceeded {
    /// The flag that sets the limit, e.g. `--trigger-max-clients`.
    pub limit: &'static str,
    pub value: Value,
    pub max: Value,
    /// One line naming what was asked, the limit and its value.
    pub message: String,
}

/// Why a request is refused; both are answered with 400.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    BadRequest(String),
    Limit(LimitExceeded),
}

impl Rejection {
    pub fn message(&self) -> &str {
        match self {
            Rejection::BadRequest(m) => m,
            Rejection::Limit(l) => &l.message,
        }
    }
}

fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

impl TriggerLimits {
    /// Checks the limits themselves; the message names the flag.
    pub fn validate(&self) -> Result<(), InvalidFlag> {
        if self.max_clients == 0 {
            return Err(invalid(
                "--trigger-max-clients",
                "--trigger-max-clients must be at least 1",
            ));
        }
        if self.max_conns == 0 {
            return Err(invalid(
                "--trigger-max-conns",
                "--trigger-max-conns must be at least 1",
            ));
        }
        if self.max_total == 0 {
            return Err(invalid(
                "--trigger-max-total",
                "--trigger-max-total must be at least 1",
            ));
        }
        if !(self.max_rate.is_finite() && self.max_rate > 0.0) {
            return Err(invalid(
                "--trigger-max-rate",
                "--trigger-max-rate must be a positive number",
            ));
        }
        if self.max_duration.is_zero() {
            return Err(invalid(
                "--trigger-max-duration",
                "--trigger-max-duration must be longer than 0",
            ));
        }
        Ok(())
    }

    /// Whether a run of `config` is inside the limits.
    pub fn check(&self, config: &BenchConfig, naming: Naming) -> Result<(), LimitExceeded> {
        let name = |request: &'static str, flag: &'static str| match naming {
            Naming::Request => request,
            Naming::Flags => flag,
        };
        // `shown` and `max_shown` as a person writes them: "100", "5s".
        let over = |limit: &'static str,
                    what: &str,
                    (value, shown): (Value, String),
                    (max, max_shown): (Value, String)| LimitExceeded {
            limit,
            message: format!("{what} {shown} is above {limit} {max_shown}"),
            value,
            max,
        };
        if config.clients > self.max_clients {
            return Err(over(
                "--trigger-max-clients",
                name("clients", "--clients"),
                (config.clients.into(), config.clients.to_string()),
                (self.max_clients.into(), self.max_clients.to_string()),
            ));
        }
        if config.conns > self.max_conns {
            return Err(over(
                "--trigger-max-conns",
                name("conns", "--conns"),
                (config.conns.into(), config.conns.to_string()),
                (self.max_conns.into(), self.max_conns.to_string()),
            ));
        }
        if config.rate > self.max_rate {
            return Err(over(
                "--trigger-max-rate",
                name("rate", "--rate"),
                (config.rate.into(), config.rate.to_string()),
                (self.max_rate.into(), self.max_rate.to_string()),
            ));
        }
        match config.stop {
            StopAfter::Total(n) => {
                if n > self.max_total {
                    return Err(over(
                        "--trigger-max-total",
                        name("total", "--total"),
                        (n.into(), n.to_string()),
                        (self.max_total.into(), self.max_total.to_string()),
                    ));
                }
                // An open-loop run sends on a schedule: its length is known before it starts.
                if config.rate > 0.0 {
                    let secs = n as f64 / config.rate;
                    if secs > self.max_duration.as_secs_f64() {
                        let takes = Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX);
                        return Err(LimitExceeded {
                            limit: "--trigger-max-duration",
                            value: secs.into(),
                            max: self.max_duration.as_secs_f64().into(),
                            message: format!(
                                "{} {n} at {} {} takes {}, above --trigger-max-duration {}",
                                name("total", "--total"),
                                name("rate", "--rate"),
                                config.rate,
                                human(takes),
                                human(self.max_duration)
                            ),
                        });
                    }
                }
            }
            StopAfter::Duration(d) => {
                if d > self.max_duration {
                    return Err(over(
                        "--trigger-max-duration",
                        name("duration", "--duration"),
                        (d.as_secs_f64().into(), human(d)),
                        (
                            self.max_duration.as_secs_f64().into(),
                            human(self.max_duration),
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a POST may change of the daemon's job; all optional. `type` and `ops` are the original design's
/// names for `workload` and `total`.
#[derive(Debug, Default, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops: Option<u64>,
    /// Seconds (a number) or a duration like "30s", instead of a total.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conns: Option<usize>,
}

/// The original design's benchmark types.
pub fn legacy_type(t: &str) -> Option<Workload> {
    match t {
        "write" => Some(Workload::Put),
        "read" => Some(Workload::Range),
        "mixed" => Some(Workload::Mixed),
        _ => None,
    }
}

/// A request body to the job it asks for: the daemon's `base`, changed as asked, inside `limits`.
/// An empty body runs `base` as it is.
pub fn accept(
    body: &[u8],
    base: &JobOptions,
    limits: &TriggerLimits,
) -> Result<JobOptions, Rejection> {
    let request: RunRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RunRequest::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Rejection::BadRequest(one_line(&format!("request body: {e}"))))?
    };
    request.apply(base, limits)
}

/// serde's messages quote the input with Debug escapes; this only guards the promise of one line.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ")
}

fn parse_duration(v: &Value) -> Result<Duration, String> {
    let bad = || {
        one_line(&format!(
            "duration {v} is not a number of seconds or a duration like \"30s\""
        ))
    };
    let d = match v {
        Value::Number(n) => n
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(bad)?,
        Value::String(s) => humantime::parse_duration(s.trim()).map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err("duration must be longer than 0".into());
    }
    Ok(d)
}

impl RunRequest {
    /// The job to run: `base` with this request's changes, checked against `limits`. Pure.
    pub fn apply(
        &self,
        base: &JobOptions,
        limits: &TriggerLimits,
    ) -> Result<JobOptions, Rejection> {
        let bad = |m: String| Rejection::BadRequest(one_line(&m));
        let workload = match (&self.workload, &self.kind) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "give workload or type (the original design's name), not both".into(),
                ))
            }
            (Some(w), None) => {
                Some(Workload::parse(w).ok_or_else(|| bad(format!("unknown workload {w:?}")))?)
            }
            (None, Some(t)) => Some(
                legacy_type(t)
                    .ok_or_else(|| bad(format!("unknown type {t:?} (write, read or mixed)")))?,
            ),
            (None, None) => None,
        };
        let total = match (self.total, self.ops) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "give total or ops (the original design's name), not both".into(),
                ))
            }
            (t, o) => t.or(o),
        };
        if total == Some(0) {
            return Err(bad("total must be at least 1".into()));
        }
        let duration = self
            .duration
            .as_ref()
            .map(parse_duration)
            .transpose()
            .map_err(bad)?;
        if total.is_some() && duration.is_some() {
            return Err(bad("give total or duration, not both".into()));
        }
        if self.clients == Some(0) {
            return Err(bad("clients must be at least 1".into()));
        }
        if self.conns == Some(0) {
            return Err(bad("conns must be at least 1".into()));
        }
        if let Some(r) = self.rate {
            if !r.is_finite() || r < 0.0 {
                return Err(bad(format!(
                    "rate {r} must be 0 (as fast as the clients go) or a positive number"
                )));
            }
        }

        let mut job = base.clone();
        if let Some(w) = workload.filter(|w| *w != base.config.workload) {
            // Another workload starts from etcd's defaults for it; what keeps the cluster safe and the
            // connection shape stay the daemon's.
            let from = &base.config;
            let mut c = BenchConfig::new(w);
            c.clients = from.clients;
            c.conns = from.conns;
            c.prefix = from.prefix.clone();
            c.force = from.force;
            c.target_leader = from.target_leader;
            c.max_quota_fraction = from.max_quota_fraction;
            c.auto_compact = from.auto_compact;
            c.request_timeout = from.request_timeout;
            c.late_threshold = from.late_threshold;
            c.time_limit = from.time_limit;
            job.config = c;
        }
        if let Some(n) = total {
            job.config.stop = StopAfter::Total(n);
        }
        if let Some(d) = duration {
            job.config.stop = StopAfter::Duration(d);
        }
        if let Some(r) = self.rate {
            job.config.rate = r;
        }
        if let Some(c) = self.clients {
            job.config.clients = c;
            if self.conns.is_none() {
                job.config.conns = job.config.conns.min(c);
            }
        }
        if let Some(c) = self.conns {
            job.config.conns = c;
        }
        limits
            .check(&job.config, Naming::Request)
            .map_err(Rejection::Limit)?;
        job.config.validate().map_err(|e| bad(e.message))?;
        Ok(job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> JobOptions {
        JobOptions {
            config: BenchConfig::new(Workload::Put),
            check: None,
            pushgateway: None,
            results_dir: None,
        }
    }

    fn limit_of(body: &str, limits: &TriggerLimits) -> LimitExceeded {
        match accept(body.as_bytes(), &base(), limits) {
            Err(Rejection::Limit(l)) => l,
            other => panic!("{body}: expected a limit, got {other:?}"),
        }
    }

    #[test]
    fn the_original_designs_body_is_understood() {
        let j = accept(
            br#"{"type":"read","ops":50}"#,
            &base(),
            &TriggerLimits::default(),
        )
        .unwrap();
        assert_eq!(j.config.workload, Workload::Range);
        assert_eq!(j.config.stop, StopAfter::Total(50));
        let j = accept(b"  \n", &base(), &TriggerLimits::default()).unwrap();
        assert_eq!(j.config.workload, Workload::Put);
        assert_eq!(j.config.stop, StopAfter::Total(10_000));
    }

    #[test]
    fn bad_bodies_are_one_line_400s() {
        for body in [
            r#"{"workload":"nope"}"#,
            r#"{"bogus":1}"#,
            r#"{"type":"write","workload":"put"}"#,
            r#"{"total":5,"ops":5}"#,
            r#"{"total":5,"duration":"1s"}"#,
            r#"{"duration":"soon"}"#,
            r#"{"duration":-1}"#,
            r#"{"clients":0}"#,
            r#"{"rate":-1}"#,
            r#"{"clients":-1}"#,
            "{\"workload\":\"a\nb\"}",
            "[1,2",
        ] {
            match accept(body.as_bytes(), &base(), &TriggerLimits::default()) {
                Err(Rejection::BadRequest(m)) => assert!(!m.contains('\n'), "{body}: {m}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn each_limit_is_named_with_the_value() {
        let limits = TriggerLimits {
            max_clients: 4,
            max_conns: 2,
            max_total: 1000,
            max_rate: 100.0,
            max_duration: Duration::from_secs(5),
        };
        let l = limit_of(r#"{"clients":5}"#, &limits);
        assert_eq!(l.limit, "--trigger-max-clients");
        assert_eq!(l.message, "clients 5 is above --trigger-max-clients 4");
        let l = limit_of(r#"{"clients":4,"conns":3}"#, &limits);
        assert_eq!(l.message, "conns 3 is above --trigger-max-conns 2");
        let l = limit_of(r#"{"ops":1001}"#, &limits);
        assert_eq!(l.message, "total 1001 is above --trigger-max-total 1000");
        let l = limit_of(r#"{"rate":100.5}"#, &limits);
        assert_eq!(l.message, "rate 100.5 is above --trigger-max-rate 100");
        let l = limit_of(r#"{"duration":"6s"}"#, &limits);
        assert_eq!(l.message, "duration 6s is above --trigger-max-duration 5s");
        let l = limit_of(r#"{"total":1000,"rate":100}"#, &limits);
        assert_eq!(
            l.message,
            "total 1000 at rate 100 takes 10s, above --trigger-max-duration 5s"
        );
        // Just inside every limit.
        assert!(accept(
            br#"{"clients":4,"conns":2,"total":500,"rate":100}"#,
            &base(),
            &limits
        )
        .is_ok());
    }

    #[test]
    fn the_daemons_own_job_is_named_by_its_flags() {
        let mut c = BenchConfig::new(Workload::Put);
        c.clients = 200;
        c.conns = 1;
        let e = TriggerLimits::default()
            .check(&c, Naming::Flags)
            .unwrap_err();
        assert_eq!(
            e.message,
            "--clients 200 is above --trigger-max-clients 100"
        );
        assert!(TriggerLimits {
            max_rate: f64::NAN,
            ..TriggerLimits::default()
        }
        .validate()
        .is_err_and(|e| e.flag == "--trigger-max-rate" && e.message.contains(e.flag)));
    }
}
