//! What each integration sends: its configured templates (Alertmanager's defaults where unset)
//! rendered over the notification's data. Pure functions; a template that fails to render fails the
//! notification, as in Alertmanager.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::alert::go_time;
use crate::config::{EmailConfig, PagerDutyConfig, SlackConfig};
use crate::notification::MessageData;
use crate::template::{self, Templates};

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

fn put_nonempty(m: &mut Map<String, Value>, k: &str, v: String) {
    if !v.is_empty() {
        m.insert(k.to_string(), Value::String(v));
    }
}

/// Renders configured-or-default template strings over one notification's data.
struct Render<'a> {
    templates: &'a Templates,
    data: gotemplate::Value,
}

impl<'a> Render<'a> {
    fn new(templates: &'a Templates, d: &MessageData) -> Self {
        Render {
            templates,
            data: template::data(d),
        }
    }

    fn text(&self, configured: &Option<String>, default: &str) -> Result<String, String> {
        self.templates
            .text(configured.as_deref().unwrap_or(default), &self.data)
    }
}

/// Alertmanager's `TruncateInRunes`: at most `n` characters, the last one an ellipsis when cut.
fn truncate(s: String, n: usize) -> String {
    if s.chars().count() <= n {
        return s;
    }
    s.chars().take(n - 1).collect::<String>() + "…"
}

/// Slack incoming-webhook body with one attachment (Alertmanager's defaults for unset fields).
pub fn slack_payload(
    c: &SlackConfig,
    d: &MessageData,
    templates: &Templates,
) -> Result<Value, String> {
    let r = Render::new(templates, d);
    let field = |configured: &Option<String>, default_name: &str| {
        r.text(
            configured,
            &format!("{{{{ template {default_name:?} . }}}}"),
        )
    };
    let mut att = Map::new();
    put_nonempty(
        &mut att,
        "title",
        truncate(field(&c.title, "slack.default.title")?, 1024),
    );
    put_nonempty(
        &mut att,
        "title_link",
        field(&c.title_link, "slack.default.titlelink")?,
    );
    put_nonempty(
        &mut att,
        "pretext",
        field(&c.pretext, "slack.default.pretext")?,
    );
    // Alertmanager's attachment always carries text, fallback, callback_id and footer.
    att.insert(
        "text".into(),
        Value::String(field(&c.text, "slack.default.text")?),
    );
    att.insert(
        "fallback".into(),
        Value::String(field(&c.fallback, "slack.default.fallback")?),
    );
    att.insert(
        "callback_id".into(),
        Value::String(field(&c.callback_id, "slack.default.callbackid")?),
    );
    if !c.fields.is_empty() {
        let fields = c
            .fields
            .iter()
            .map(|f| {
                Ok(json!({
                    "title": templates.text(&f.title, &r.data)?,
                    "value": templates.text(&f.value, &r.data)?,
                    "short": f.short.unwrap_or(c.short_fields),
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        att.insert("fields".into(), Value::Array(fields));
    }
    put_nonempty(&mut att, "image_url", r.text(&c.image_url, "")?);
    put_nonempty(&mut att, "thumb_url", r.text(&c.thumb_url, "")?);
    att.insert(
        "footer".into(),
        Value::String(field(&c.footer, "slack.default.footer")?),
    );
    put_nonempty(
        &mut att,
        "color",
        r.text(
            &c.color,
            r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#,
        )?,
    );
    let mrkdwn_in = match &c.mrkdwn_in {
        Some(m) if !m.is_empty() => json!(m),
        _ => json!(["fallback", "pretext", "text"]),
    };
    att.insert("mrkdwn_in".into(), mrkdwn_in);
    let mut req = Map::new();
    put_nonempty(&mut req, "channel", r.text(&c.channel, "")?);
    put_nonempty(
        &mut req,
        "username",
        field(&c.username, "slack.default.username")?,
    );
    put_nonempty(
        &mut req,
        "icon_emoji",
        field(&c.icon_emoji, "slack.default.iconemoji")?,
    );
    put_nonempty(
        &mut req,
        "icon_url",
        field(&c.icon_url, "slack.default.iconurl")?,
    );
    if c.link_names {
        req.insert("link_names".into(), Value::Bool(true));
    }
    req.insert("attachments".into(), Value::Array(vec![Value::Object(att)]));
    Ok(Value::Object(req))
}

/// Alertmanager's default PagerDuty details; configured details are added to these, not instead.
const PAGERDUTY_DETAILS: [(&str, &str); 4] = [
    (
        "firing",
        r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
    ),
    (
        "resolved",
        r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
    ),
    ("num_firing", "{{ .Alerts.Firing | len }}"),
    ("num_resolved", "{{ .Alerts.Resolved | len }}"),
];

/// PagerDuty Events API v2 body: `trigger` while anything fires, `resolve` once all resolved, both
/// with the group's dedup key.
pub fn pagerduty_payload(
    c: &PagerDutyConfig,
    d: &MessageData,
    templates: &Templates,
) -> Result<Value, String> {
    let r = Render::new(templates, d);
    let client_template = c
        .client
        .as_deref()
        .unwrap_or(r#"{{ template "pagerduty.default.client" . }}"#);
    let mut details: BTreeMap<&str, &str> = PAGERDUTY_DETAILS.into_iter().collect();
    for (k, v) in c.details.iter().flatten() {
        details.insert(k, v);
    }
    let details = details
        .into_iter()
        .map(|(k, v)| Ok((k.to_string(), templates.text(v, &r.data)?)))
        .collect::<Result<BTreeMap<String, String>, String>>()?;
    // PagerDuty refuses summaries over 1024 characters.
    let summary = truncate(
        r.text(
            &c.description,
            r#"{{ template "pagerduty.default.description" .}}"#,
        )?,
        1024,
    );
    let mut payload = Map::new();
    payload.insert("summary".into(), Value::String(summary));
    // Unset, the source is the client's template.
    payload.insert(
        "source".into(),
        Value::String(r.text(&c.source, client_template)?),
    );
    let severity = r.text(&c.severity, "")?;
    payload.insert(
        "severity".into(),
        Value::String(if severity.is_empty() {
            "error".into()
        } else {
            severity
        }),
    );
    put_nonempty(&mut payload, "class", r.text(&c.class, "")?);
    put_nonempty(&mut payload, "component", r.text(&c.component, "")?);
    put_nonempty(&mut payload, "group", r.text(&c.group, "")?);
    payload.insert("custom_details".into(), json!(details));
    Ok(json!({
        "routing_key": c.routing_key.expose(),
        "dedup_key": d.group_key_hash(),
        "event_action": if d.status == "resolved" { "resolve" } else { "trigger" },
        "payload": Value::Object(payload),
        "client": templates.text(client_template, &r.data)?,
        "client_url": r.text(&c.client_url, r#"{{ template "pagerduty.default.clientURL" . }}"#)?,
    }))
}

/// An e-mail's rendered parts.
#[derive(Debug, Clone)]
pub struct EmailMessage {
    pub from: String,
    pub to: String,
    pub subject: String,
    /// Other headers, rendered (not Subject, To or From).
    pub headers: BTreeMap<String, String>,
    pub html: Option<String>,
    pub text: Option<String>,
}

/// Alertmanager's e-mail: templated envelope and headers, `html` by default, `text` when configured.
pub fn email_message(
    c: &EmailConfig,
    d: &MessageData,
    templates: &Templates,
) -> Result<EmailMessage, String> {
    let r = Render::new(templates, d);
    let mut headers = BTreeMap::new();
    for (k, v) in &c.headers {
        headers.insert(k.clone(), templates.text(v, &r.data)?);
    }
    let subject = match headers.remove("Subject") {
        Some(s) => s,
        None => r.text(&None, r#"{{ template "email.default.subject" . }}"#)?,
    };
    headers.remove("To");
    headers.remove("From");
    let html = match &c.html {
        Some(h) => templates.html(h, &r.data)?,
        None => templates.html(r#"{{ template "email.default.html" . }}"#, &r.data)?,
    };
    let text = match &c.text {
        Some(t) => templates.text(t, &r.data)?,
        None => String::new(),
    };
    Ok(EmailMessage {
        from: templates.text(&c.from, &r.data)?,
        to: templates.text(&c.to, &r.data)?,
        subject,
        headers,
        html: Some(html).filter(|h| !h.is_empty()),
        text: Some(text).filter(|t| !t.is_empty()),
    })
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
