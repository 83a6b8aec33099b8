//! What each integration sends, built as Alertmanager's default templates build it (pure functions).
//! Go templates in the configuration are not rendered: a configured string is sent as written.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::alert::LabelSet;
use crate::config::{PagerDutyConfig, SlackConfig};
use crate::core::OutAlert;

/// Who we say we are where Alertmanager says "Alertmanager" (Slack username, PagerDuty client).
pub const SENDER: &str = "etcd-monitor";

/// Alertmanager's `template.Data`: what every message is made from.
#[derive(Clone, Debug)]
pub struct MessageData {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<OutAlert>,
    pub group_labels: LabelSet,
    pub common_labels: LabelSet,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    pub group_key: String,
}

fn common(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl MessageData {
    pub fn new(
        receiver: &str,
        group_key: &str,
        group_labels: &LabelSet,
        alerts: Vec<OutAlert>,
        external_url: &str,
    ) -> Self {
        let labels: Vec<&BTreeMap<String, String>> =
            alerts.iter().map(|a| &a.alert.labels).collect();
        let anns: Vec<&BTreeMap<String, String>> =
            alerts.iter().map(|a| &a.alert.annotations).collect();
        MessageData {
            receiver: receiver.to_string(),
            status: if alerts.iter().any(|a| !a.resolved) {
                "firing"
            } else {
                "resolved"
            },
            common_labels: common(&labels),
            common_annotations: common(&anns),
            alerts,
            group_labels: group_labels.clone(),
            external_url: external_url.trim_end_matches('/').to_string(),
            group_key: group_key.to_string(),
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &OutAlert> {
        self.alerts.iter().filter(|a| !a.resolved)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &OutAlert> {
        self.alerts.iter().filter(|a| a.resolved)
    }

    /// `__subject`: `[FIRING:2] <group label values> (<other common label values>)`.
    pub fn subject(&self) -> String {
        let mut s = format!("[{}", self.status.to_uppercase());
        if self.status == "firing" {
            s.push_str(&format!(":{}", self.firing().count()));
        }
        s.push_str("] ");
        s.push_str(
            &self
                .group_labels
                .values()
                .cloned()
                .collect::<Vec<_>>()
                .join(" "),
        );
        s.push(' ');
        if self.common_labels.len() > self.group_labels.len() {
            let rest: Vec<String> = self
                .common_labels
                .iter()
                .filter(|(k, _)| !self.group_labels.contains_key(*k))
                .map(|(_, v)| v.clone())
                .collect();
            s.push_str(&format!("({})", rest.join(" ")));
        }
        s
    }

    /// `__alertmanagerURL`: where a person looks at this receiver's alerts.
    pub fn alertmanager_url(&self) -> String {
        format!(
            "{}/#/alerts?receiver={}",
            self.external_url,
            query_escape(&self.receiver)
        )
    }

    /// Alertmanager's `notify.Key.Hash()`: SHA-256 of the group key, the PagerDuty dedup key.
    pub fn group_key_hash(&self) -> String {
        hex(&Sha256::digest(self.group_key.as_bytes()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `time.Time` JSON form (RFC 3339 with trailing fractional zeros trimmed); the zero time for
/// an alert with no end, as Alertmanager prints it.
pub fn go_time(t: Option<DateTime<Utc>>) -> String {
    match t {
        None => "0001-01-01T00:00:00Z".to_string(),
        Some(t) => {
            let s = t.to_rfc3339_opts(SecondsFormat::Nanos, true);
            // "2026-01-01T00:00:00.500000000Z" -> "2026-01-01T00:00:00.5Z"
            match s.find('.') {
                Some(dot) => {
                    let frac = s[dot + 1..s.len() - 1].trim_end_matches('0');
                    if frac.is_empty() {
                        format!("{}Z", &s[..dot])
                    } else {
                        format!("{}.{frac}Z", &s[..dot])
                    }
                }
                None => s,
            }
        }
    }
}

/// `__text_alert_list` (also PagerDuty's default `firing`/`resolved` details).
pub fn text_alert_list<'a>(alerts: impl Iterator<Item = &'a OutAlert>) -> String {
    let mut s = String::new();
    for a in alerts {
        s.push_str("Labels:\n");
        for (k, v) in &a.alert.labels {
            s.push_str(&format!(" - {k} = {v}\n"));
        }
        s.push_str("Annotations:\n");
        for (k, v) in &a.alert.annotations {
            s.push_str(&format!(" - {k} = {v}\n"));
        }
        s.push_str(&format!("Source: {}\n", a.alert.generator_url));
    }
    s
}

/// The webhook body, Alertmanager's version "4", keeping the first `max_alerts` alerts (0 = all).
pub fn webhook_payload(d: &MessageData, max_alerts: usize) -> Value {
    let total = d.alerts.len();
    let keep = if max_alerts == 0 {
        total
    } else {
        total.min(max_alerts)
    };
    // As Alertmanager: truncate first, so status and common labels describe the alerts sent.
    let d = &MessageData::new(
        &d.receiver,
        &d.group_key,
        &d.group_labels,
        d.alerts[..keep].to_vec(),
        &d.external_url,
    );
    let alerts: Vec<Value> = d
        .alerts
        .iter()
        .map(|a| {
            json!({
                "status": if a.resolved { "resolved" } else { "firing" },
                "labels": a.alert.labels,
                "annotations": a.alert.annotations,
                "startsAt": go_time(Some(a.alert.starts_at)),
                "endsAt": go_time(a.alert.ends_at),
                "generatorURL": a.alert.generator_url,
                "fingerprint": a.fingerprint.to_string(),
            })
        })
        .collect();
    json!({
        "receiver": d.receiver,
        "status": d.status,
        "alerts": alerts,
        "groupLabels": d.group_labels,
        "commonLabels": d.common_labels,
        "commonAnnotations": d.common_annotations,
        "externalURL": d.external_url,
        "version": "4",
        "groupKey": d.group_key,
        "truncatedAlerts": total - keep,
    })
}

fn put_nonempty(m: &mut Map<String, Value>, k: &str, v: Option<String>) {
    if let Some(v) = v.filter(|v| !v.is_empty()) {
        m.insert(k.to_string(), Value::String(v));
    }
}

/// Slack incoming-webhook body with one attachment, Alertmanager's defaults for unset fields.
pub fn slack_payload(c: &SlackConfig, d: &MessageData) -> Value {
    let title = c.title.clone().unwrap_or_else(|| d.subject());
    let title_link = c.title_link.clone().unwrap_or_else(|| d.alertmanager_url());
    let color = c.color.clone().unwrap_or_else(|| {
        if d.status == "firing" {
            "danger"
        } else {
            "good"
        }
        .to_string()
    });
    let fallback = c
        .fallback
        .clone()
        .unwrap_or_else(|| format!("{title} | {title_link}"));
    let mut att = Map::new();
    put_nonempty(&mut att, "title", Some(title));
    put_nonempty(&mut att, "title_link", Some(title_link));
    put_nonempty(&mut att, "pretext", c.pretext.clone());
    // Alertmanager's attachment always carries these, empty or not.
    att.insert(
        "text".into(),
        Value::String(c.text.clone().unwrap_or_default()),
    );
    att.insert("fallback".into(), Value::String(fallback));
    att.insert("callback_id".into(), Value::String(String::new()));
    att.insert(
        "footer".into(),
        Value::String(c.footer.clone().unwrap_or_default()),
    );
    put_nonempty(&mut att, "color", Some(color));
    att.insert("mrkdwn_in".into(), json!(["fallback", "pretext", "text"]));
    let mut req = Map::new();
    put_nonempty(&mut req, "channel", c.channel.clone());
    put_nonempty(
        &mut req,
        "username",
        Some(c.username.clone().unwrap_or_else(|| SENDER.to_string())),
    );
    put_nonempty(&mut req, "icon_emoji", c.icon_emoji.clone());
    put_nonempty(&mut req, "icon_url", c.icon_url.clone());
    if c.link_names {
        req.insert("link_names".into(), Value::Bool(true));
    }
    req.insert("attachments".into(), Value::Array(vec![Value::Object(att)]));
    Value::Object(req)
}

/// PagerDuty Events API v2 body: `trigger` while anything fires, `resolve` once all resolved, both
/// with the group's dedup key.
pub fn pagerduty_payload(c: &PagerDutyConfig, d: &MessageData) -> Value {
    let client = c.client.clone().unwrap_or_else(|| SENDER.to_string());
    let details: BTreeMap<String, String> = c.details.clone().unwrap_or_else(|| {
        BTreeMap::from([
            ("firing".to_string(), text_alert_list(d.firing())),
            ("resolved".to_string(), text_alert_list(d.resolved())),
            ("num_firing".to_string(), d.firing().count().to_string()),
            ("num_resolved".to_string(), d.resolved().count().to_string()),
        ])
    });
    // PagerDuty rejects summaries over 1024 characters; Alertmanager truncates with an ellipsis.
    let mut summary = c.description.clone().unwrap_or_else(|| d.subject());
    if summary.chars().count() > 1024 {
        summary = summary.chars().take(1023).collect::<String>() + "…";
    }
    let mut payload = Map::new();
    payload.insert("summary".into(), Value::String(summary));
    payload.insert(
        "source".into(),
        Value::String(c.source.clone().unwrap_or_else(|| client.clone())),
    );
    payload.insert(
        "severity".into(),
        Value::String(c.severity.clone().unwrap_or_else(|| "error".into())),
    );
    put_nonempty(&mut payload, "class", c.class.clone());
    put_nonempty(&mut payload, "component", c.component.clone());
    put_nonempty(&mut payload, "group", c.group.clone());
    payload.insert("custom_details".into(), json!(details));
    json!({
        "routing_key": c.routing_key,
        "dedup_key": d.group_key_hash(),
        "event_action": if d.status == "resolved" { "resolve" } else { "trigger" },
        "payload": Value::Object(payload),
        "client": client,
        "client_url": c.client_url.clone().unwrap_or_else(|| d.alertmanager_url()),
    })
}

/// A plain-text email body listing firing then resolved alerts, in the spirit of Alertmanager's
/// default email (which is HTML).
pub fn email_body(d: &MessageData) -> String {
    let firing: Vec<&OutAlert> = d.firing().collect();
    let resolved: Vec<&OutAlert> = d.resolved().collect();
    let mut s = format!(
        "{} alert{} for {}\n",
        d.alerts.len(),
        if d.alerts.len() == 1 { "" } else { "s" },
        d.group_labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !d.external_url.is_empty() {
        s.push_str(&format!("View in the alerter: {}\n", d.alertmanager_url()));
    }
    if !firing.is_empty() {
        s.push_str(&format!("\n[{}] Firing\n", firing.len()));
        s.push_str(&text_alert_list(firing.into_iter()));
    }
    if !resolved.is_empty() {
        s.push_str(&format!("\n[{}] Resolved\n", resolved.len()));
        s.push_str(&text_alert_list(resolved.into_iter()));
    }
    s
}

/// One console line per alert.
pub fn console_lines(d: &MessageData, json: bool, now: DateTime<Utc>) -> Vec<String> {
    d.alerts
        .iter()
        .map(|a| {
            let status = if a.resolved { "resolved" } else { "firing" };
            if json {
                json!({
                    "ts": go_time(Some(now)),
                    "receiver": d.receiver,
                    "status": status,
                    "alertname": a.alert.name(),
                    "labels": a.alert.labels,
                    "annotations": a.alert.annotations,
                    "startsAt": go_time(Some(a.alert.starts_at)),
                    "endsAt": go_time(a.alert.ends_at),
                    "fingerprint": a.fingerprint.to_string(),
                    "groupKey": d.group_key,
                })
                .to_string()
            } else {
                let labels = crate::alert::labelset_string(&a.alert.labels);
                let anns: Vec<String> = a
                    .alert
                    .annotations
                    .iter()
                    .map(|(k, v)| format!("{k}={}", crate::alert::go_quote(v)))
                    .collect();
                let mut line = format!(
                    "{} {} {} {labels}",
                    go_time(Some(now)),
                    status.to_uppercase(),
                    a.alert.name()
                );
                if !anns.is_empty() {
                    line.push(' ');
                    line.push_str(&anns.join(" "));
                }
                line.push_str(&format!(" startsAt={}", go_time(Some(a.alert.starts_at))));
                if a.resolved {
                    line.push_str(&format!(" endsAt={}", go_time(a.alert.ends_at)));
                }
                line
            }
        })
        .collect()
}
