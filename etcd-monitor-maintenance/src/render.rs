//! The status table and verdict as text, with ANSI colours when asked (the caller decides: a terminal
//! and no NO_COLOR). Pure: snapshot in, string out.

use etcd_monitor_exporter::snapshot::{MemberSnapshot, ProbeOp};

use crate::status::{ClusterState, StatusReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paint {
    Plain,
    Bold,
    Green,
    Yellow,
    Red,
}

impl Paint {
    fn code(self) -> &'static str {
        match self {
            Paint::Plain => "",
            Paint::Bold => "\x1b[1m",
            Paint::Green => "\x1b[32m",
            Paint::Yellow => "\x1b[33m",
            Paint::Red => "\x1b[31m",
        }
    }
}

struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, p: Paint, s: &str) -> String {
        if !self.color || p == Paint::Plain || s.is_empty() {
            s.to_string()
        } else {
            format!("{}{s}\x1b[0m", p.code())
        }
    }
}

/// Bytes the way etcdctl's table shows them (decimal units, as go-humanize does), e.g. `25 MB`.
pub fn human_bytes(n: i64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v.abs() >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else if v.abs() < 10.0 {
        format!("{v:.1} {}", units[i])
    } else {
        format!("{v:.0} {}", units[i])
    }
}

fn human_seconds(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.0}µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.1}ms", s * 1e3)
    } else {
        format!("{s:.2}s")
    }
}

const HEADERS: [&str; 16] = [
    "NAME",
    "ID",
    "ENDPOINT",
    "VERSION",
    "LEADER",
    "LEARNER",
    "RAFT TERM",
    "RAFT INDEX",
    "APPLIED INDEX",
    "REVISION",
    "DB SIZE",
    "IN USE",
    "QUOTA %",
    "ALARMS",
    "PROBE",
    "ERRORS",
];

/// The gist of a gRPC/transport error for a table cell: tonic's chain ends with the OS's words (e.g.
/// `message: "Connection refused"`); the JSON output keeps the whole text.
pub fn short_error(e: &str) -> String {
    const KEY: &str = "message: \"";
    let gist = e.rfind(KEY).and_then(|i| {
        let rest = &e[i + KEY.len()..];
        rest.find('"').map(|j| &rest[..j])
    });
    match gist {
        Some(g) if !g.is_empty() && g.len() < e.len() => g.to_string(),
        _ => e.to_string(),
    }
}

/// One table row: the cell texts and the colour of the row.
fn row(m: &MemberSnapshot, report: &StatusReport) -> (Vec<String>, Paint) {
    let alarms: Vec<&str> = report
        .snapshot
        .alarms
        .iter()
        .filter(|a| a.member == m.name)
        .map(|a| a.alarm.as_str())
        .collect();
    let mut errors: Vec<String> = Vec::new();
    if let Some(e) = &m.error {
        errors.push(short_error(e));
    }
    for p in m.probes.iter().filter(|p| !p.success) {
        errors.push(format!(
            "{} probe: {}",
            p.op.as_str(),
            p.error
                .as_deref()
                .map(short_error)
                .unwrap_or("failed".into())
        ));
    }
    let dash = || "-".to_string();
    let (cells, paint) = match &m.status {
        Some(s) => {
            for e in &s.errors {
                // Alarms are in their own column already.
                if !e.contains("alarm:") {
                    errors.push(e.clone());
                }
            }
            let quota = m
                .quota_bytes
                .filter(|q| *q > 0)
                .map(|q| format!("{:.1}", s.db_size_bytes as f64 * 100.0 / q as f64))
                .unwrap_or_else(dash);
            let paint = if !errors.is_empty() || !alarms.is_empty() {
                Paint::Yellow
            } else if s.is_leader {
                Paint::Bold
            } else {
                Paint::Plain
            };
            (
                vec![
                    s.version.clone(),
                    if s.is_leader { "yes" } else { "no" }.into(),
                    if m.is_learner { "yes" } else { "no" }.into(),
                    s.raft_term.to_string(),
                    s.raft_index.to_string(),
                    s.raft_applied_index.to_string(),
                    s.revision.to_string(),
                    human_bytes(s.db_size_bytes),
                    human_bytes(s.db_size_in_use_bytes),
                    quota,
                ],
                paint,
            )
        }
        None => (
            vec![
                dash(),
                dash(),
                if m.is_learner { "yes" } else { "no" }.into(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
                dash(),
            ],
            Paint::Red,
        ),
    };
    let mut out = vec![
        m.name.clone(),
        m.id.clone(),
        m.endpoint.clone().unwrap_or_else(dash),
    ];
    out.extend(cells);
    out.push(if alarms.is_empty() {
        dash()
    } else {
        alarms.join(",")
    });
    let probe_cell = match &m.status {
        Some(_) => m
            .probes
            .iter()
            .find(|p| p.op == ProbeOp::ReadLinearizable && p.success)
            .or_else(|| m.probes.iter().find(|p| p.success))
            .map(|p| human_seconds(p.duration_seconds))
            .unwrap_or_else(dash),
        None => dash(),
    };
    out.push(probe_cell);
    out.push(if errors.is_empty() {
        dash()
    } else {
        errors.join("; ")
    });
    (out, paint)
}

/// The member table followed by the verdict.
pub fn table(report: &StatusReport, color: bool) -> String {
    let style = Style { color };
    let rows: Vec<(Vec<String>, Paint)> = report
        .snapshot
        .members
        .iter()
        .map(|m| row(m, report))
        .collect();
    let mut widths: Vec<usize> = HEADERS.iter().map(|h| h.chars().count()).collect();
    for (cells, _) in &rows {
        for (w, c) in widths.iter_mut().zip(cells) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String], paint: Paint| -> String {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            // Padding is computed on the plain text, so colour codes do not skew the columns.
            let padded = if i == last {
                c.clone()
            } else {
                format!("{c:<w$}  ", w = *w)
            };
            s.push_str(&style.paint(paint, &padded));
        }
        s.trim_end().to_string()
    };
    let mut out = String::new();
    let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    out.push_str(&line(&headers, Paint::Bold));
    out.push('\n');
    for (cells, paint) in &rows {
        out.push_str(&line(cells, *paint));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&verdict(report, &style));
    out
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn verdict(report: &StatusReport, style: &Style) -> String {
    let snap = &report.snapshot;
    let v = &snap.verdict;
    let good = |ok: bool, s: &str| style.paint(if ok { Paint::Green } else { Paint::Red }, s);
    let mut out = String::new();
    out.push_str(&format!(
        "cluster:            {} (id {})\n",
        snap.cluster,
        snap.cluster_id.as_deref().unwrap_or("unknown")
    ));
    let leader = match (&v.leader_name, &v.leader_id) {
        (Some(n), Some(id)) => format!("{n} ({id})"),
        _ => "none".to_string(),
    };
    out.push_str(&format!(
        "leader:             {}\n",
        good(v.has_leader, &leader)
    ));
    out.push_str(&format!(
        "quorum:             {}\n",
        good(
            v.fault_tolerance >= 0,
            &format!(
                "{} of {} voting members healthy, {} needed{}",
                v.healthy_members,
                v.voting_members,
                v.quorum_size,
                if v.learners > 0 {
                    format!(" ({} learner(s) do not vote)", v.learners)
                } else {
                    String::new()
                }
            )
        )
    ));
    let ft = v.fault_tolerance;
    let ft_paint = if ft >= 1 {
        Paint::Green
    } else if ft == 0 {
        Paint::Yellow
    } else {
        Paint::Red
    };
    out.push_str(&format!(
        "fault tolerance:    {}\n",
        style.paint(
            ft_paint,
            &format!(
                "{} member(s) can fail{}",
                ft.max(0),
                if ft == 0 {
                    " (no spare member)"
                } else if ft < 0 {
                    " (quorum lost)"
                } else {
                    ""
                }
            )
        )
    ));
    out.push_str(&format!(
        "split brain:        {}\n",
        good(!v.split_brain, yes_no(v.split_brain))
    ));
    out.push_str(&format!(
        "divergence:         revision {}, raft index {}\n",
        v.revision_divergence, v.raft_index_divergence
    ));
    let alarms: Vec<String> = snap
        .alarms
        .iter()
        .map(|a| format!("{} on {}", a.alarm, a.member))
        .collect();
    out.push_str(&format!(
        "alarms:             {}\n",
        if alarms.is_empty() {
            good(true, "none")
        } else {
            good(false, &alarms.join(", "))
        }
    ));
    out.push_str(&format!(
        "defrag recommended: {}\n",
        if v.defrag_recommended.is_empty() {
            "none".to_string()
        } else {
            style.paint(Paint::Yellow, &v.defrag_recommended.join(", "))
        }
    ));
    let problems: Vec<&String> = v
        .problems
        .iter()
        .chain(report.member_problems.iter())
        .collect();
    if !problems.is_empty() {
        out.push_str("problems:\n");
        for p in problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    let paint = match report.state {
        ClusterState::Healthy => Paint::Green,
        ClusterState::Degraded => Paint::Yellow,
        ClusterState::NoQuorum | ClusterState::Unreachable => Paint::Red,
    };
    out.push_str(&format!(
        "state:              {} (exit {})\n",
        style.paint(paint, report.state.as_str()),
        report.exit_code
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_errors_keep_the_os_words() {
        let e = "grpc request error: code: 'The service is currently unavailable', message: \"tcp connect \
                 error\", source: tonic::transport::Error(Transport, ConnectError(ConnectError(\"tcp connect \
                 error\", 127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, message: \"Connection \
                 refused\" })))";
        assert_eq!(short_error(e), "Connection refused");
        assert_eq!(short_error("no answer within 2s"), "no answer within 2s");
    }

    #[test]
    fn bytes_as_go_humanize_prints_them() {
        // go-humanize.Bytes: 82854982 -> "83 MB", 1000 -> "1.0 kB", 999 -> "999 B".
        assert_eq!(human_bytes(82_854_982), "83 MB");
        assert_eq!(human_bytes(1000), "1.0 kB");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(20_480), "20 kB");
    }
}
