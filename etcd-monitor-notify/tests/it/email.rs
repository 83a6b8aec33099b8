//! Email through a real SMTP server (Python's aiosmtpd, started by the test): plain SMTP, STARTTLS
//! with AUTH, and implicit TLS, checking what the server received.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::support::{alert, free_port, start_alertmanager, write_config};
use chrono::Utc;
use etcd_monitor_notify::{Dispatcher, DispatcherOptions};
use serde_json::Value;

/// Receives mail and writes each message as JSON (envelope, parsed headers, decoded body, whether
/// the session was TLS and authenticated) into a folder.
const SERVER: &str = r#"
import sys, os, json, ssl, time, email, logging, warnings
logging.disable(logging.WARNING)
warnings.simplefilter("ignore")
from email import policy
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

mode, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=policy.default)
        part = lambda kind: msg.get_body(preferencelist=(kind,))
        content = lambda p: p.get_content().replace("\r\n", "\n") if p is not None else None
        text, html = content(part('plain')), content(part('html'))
        rec = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
               "subject": msg["Subject"], "to": msg["To"], "from": msg["From"],
               "content_type": msg.get_content_type(), "text": text, "html": html,
               "body": text if text is not None else html, "authenticated": bool(session.authenticated),
               "tls": server.transport.get_extra_info("ssl_object") is not None}
        n = len([f for f in os.listdir(outdir) if f.endswith(".json")])
        tmp = os.path.join(outdir, "%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(rec, f)
        os.rename(tmp, os.path.join(outdir, "%04d.json" % n))
        return "250 OK"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"alerter" and auth_data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)

kw = {}
if mode != "plain":
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    kw = dict(authenticator=authenticator, auth_required=True)
    if mode == "starttls":
        kw.update(tls_context=ctx, require_starttls=True)
    else:
        kw.update(ssl_context=ctx, auth_require_tls=False)
c = Controller(Handler(), hostname="127.0.0.1", port=port, **kw)
c.start()
print("READY", flush=True)
while True:
    time.sleep(3600)
"#;

struct Smtp {
    child: Child,
    out: PathBuf,
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Smtp {
    /// Starts aiosmtpd, or None where it is not installed (a skip, which fails the test under `CI=true`).
    fn start(dir: &Path, mode: &str, port: u16, tls: Option<&(PathBuf, PathBuf)>) -> Option<Smtp> {
        if let Err(why) = etcd_testkit::skip::python_module("aiosmtpd", "aiosmtpd") {
            etcd_testkit::skip::skip(&why);
            return None;
        }
        let script = dir.join("smtpd.py");
        std::fs::write(&script, SERVER).unwrap();
        let out = dir.join(format!("mail-{mode}"));
        std::fs::create_dir_all(&out).unwrap();
        let mut cmd = Command::new("python3");
        cmd.arg(&script).arg(mode).arg(port.to_string()).arg(&out);
        if let Some((cert, key)) = tls {
            cmd.arg(cert).arg(key);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "smtp server did not start");
        Some(Smtp { child, out })
    }

    async fn wait_messages(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let files = etcd_testkit::wait_for(&format!("{n} messages"), timeout, || async {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            files.sort();
            (files.len() >= n).then_some(files)
        })
        .await
        .unwrap_or_else(|e| panic!("{e}: got {}", self.count()));
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    fn count(&self) -> usize {
        std::fs::read_dir(&self.out)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "json")
            })
            .count()
    }
}

/// A CA and a server certificate for 127.0.0.1, as PEM files: (ca, (cert, key)).
fn certs(dir: &Path) -> (PathBuf, (PathBuf, PathBuf)) {
    let c = etcd_testkit::TestCerts::generate(dir).unwrap();
    (c.ca_cert, (c.server_cert, c.server_key))
}

fn route(receiver_cfg: &str) -> String {
    format!(
        r#"
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 500ms
receivers:
  - name: mail
    email_configs:
{receiver_cfg}
"#
    )
}

fn etcd_alerts() -> Vec<etcd_monitor_notify::Alert> {
    let t = Utc::now();
    let mut a = alert(
        &[
            ("alertname", "EtcdNoLeader"),
            ("job", "etcd"),
            ("severity", "critical"),
            ("instance", "m1:2379"),
        ],
        t,
    );
    a.annotations
        .insert("description".into(), "member m1 has no leader".into());
    let b = alert(
        &[
            ("alertname", "EtcdNoLeader"),
            ("job", "etcd"),
            ("severity", "critical"),
            ("instance", "m2:2379"),
        ],
        t,
    );
    vec![a, b]
}

#[tokio::test]
async fn firing_and_resolved_mail_over_plain_smtp() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(smtp) = Smtp::start(dir.path(), "plain", port, None) else {
        return;
    };
    let yaml = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:{port}
  smtp_from: alerter@etcd.test
  smtp_require_tls: false
{}"#,
        route("      - to: oncall@etcd.test, backup@etcd.test\n        send_resolved: true\n        text: '{{ template \"email.default.text\" . }}'")
    );
    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions::default(),
    )
    .unwrap();
    let alerts = etcd_alerts();
    d.send(alerts.clone());
    let m = smtp.wait_messages(1, Duration::from_secs(10)).await;
    let m = &m[0];
    // Alertmanager's default subject: status and count, group label values, other common label values.
    assert_eq!(m["subject"], "[FIRING:2] EtcdNoLeader (etcd critical)");
    assert_eq!(m["mail_from"], "alerter@etcd.test");
    assert_eq!(
        m["rcpt_tos"],
        serde_json::json!(["oncall@etcd.test", "backup@etcd.test"])
    );
    assert_eq!(m["from"], "alerter@etcd.test");
    assert_eq!(m["tls"], false);
    // `html` (the default) and the configured `text` travel as alternatives.
    assert_eq!(m["content_type"], "multipart/alternative");
    let html = m["html"].as_str().unwrap();
    assert!(html.contains("<h3>[2] Firing</h3>"), "{html}");
    assert!(html.contains("instance = m1:2379<br>"), "{html}");
    assert!(
        html.contains(r#"<a href="http://alerter.example/graph?g0.expr=up">Source</a>"#),
        "{html}"
    );
    let body = m["text"].as_str().unwrap();
    assert!(body.contains("[2] Firing"), "{body}");
    assert!(!body.contains("Resolved"), "{body}");
    for inst in ["m1:2379", "m2:2379"] {
        assert!(body.contains(&format!(" - instance = {inst}\n")), "{body}");
    }
    assert!(
        body.contains(" - description = member m1 has no leader\n"),
        "{body}"
    );
    assert!(body.contains(" - summary = something is wrong\n"), "{body}");
    assert!(
        body.contains("Source: http://alerter.example/graph?g0.expr=up"),
        "{body}"
    );

    // One resolves: with send_resolved the change is mailed; the body lists both sections.
    let mut r = alerts[1].clone();
    r.ends_at = Some(Utc::now());
    d.send(vec![r]);
    let m = smtp.wait_messages(2, Duration::from_secs(10)).await;
    assert_eq!(m[1]["subject"], "[FIRING:1] EtcdNoLeader (etcd critical)");
    let body = m[1]["body"].as_str().unwrap();
    let (firing, resolved) = body.split_once("[1] Resolved").expect("a resolved section");
    assert!(
        firing.contains("[1] Firing") && firing.contains("m1:2379") && !firing.contains("m2:2379"),
        "{body}"
    );
    assert!(resolved.contains("m2:2379"), "{body}");
    assert_eq!(d.metrics().notifications_total("email"), 2);
    d.shutdown().await;
}

#[tokio::test]
async fn starttls_with_auth_and_a_password_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server) = certs(dir.path());
    let port = free_port();
    let Some(smtp) = Smtp::start(dir.path(), "starttls", port, Some(&server)) else {
        return;
    };
    std::fs::write(dir.path().join("smtp-password"), "s3cret\n").unwrap();
    let yaml = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:{port}
  smtp_from: alerter@etcd.test
  smtp_auth_username: alerter
  smtp_auth_password_file: smtp-password
{}"#,
        route(&format!(
            "      - to: oncall@etcd.test\n        tls_config:\n          ca_file: {}",
            ca.display()
        ))
    );
    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions::default(),
    )
    .unwrap();
    d.send(etcd_alerts());
    let m = smtp.wait_messages(1, Duration::from_secs(10)).await;
    assert_eq!(m[0]["tls"], true);
    assert_eq!(m[0]["authenticated"], true);
    assert_eq!(m[0]["rcpt_tos"], serde_json::json!(["oncall@etcd.test"]));
    assert_eq!(m[0]["subject"], "[FIRING:2] EtcdNoLeader (etcd critical)");
    d.shutdown().await;
}

#[tokio::test]
async fn a_rejected_password_is_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, server) = certs(dir.path());
    let port = free_port();
    let Some(smtp) = Smtp::start(dir.path(), "starttls", port, Some(&server)) else {
        return;
    };
    let yaml = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:{port}
  smtp_from: alerter@etcd.test
{}"#,
        route(&format!(
            "      - to: oncall@etcd.test\n        auth_username: alerter\n        auth_password: wrong\n        tls_config:\n          ca_file: {}",
            ca.display()
        ))
    )
    .replace("group_interval: 500ms", "group_interval: 10s");
    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions::default(),
    )
    .unwrap();
    d.send(etcd_alerts());
    etcd_testkit::wait_for(
        "a delivery attempt to finish",
        Duration::from_secs(10),
        || async { d.metrics().notifications_total("email") > 0 },
    )
    .await
    .unwrap();
    assert_eq!(d.metrics().notifications_failed_total("email"), 1);
    assert_eq!(smtp.count(), 0);
    d.shutdown().await;
}

#[tokio::test]
async fn implicit_tls_on_port_465() {
    // Alertmanager speaks TLS from the first byte only on port 465; binding it needs root.
    if std::net::TcpListener::bind("127.0.0.1:465").is_err() {
        return etcd_testkit::skip::skip("cannot bind 127.0.0.1:465 (not root, or in use)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (ca, server) = certs(dir.path());
    let Some(smtp) = Smtp::start(dir.path(), "tls", 465, Some(&server)) else {
        return;
    };
    let yaml = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:465
  smtp_from: alerter@etcd.test
  smtp_auth_username: alerter
  smtp_auth_password: s3cret
{}"#,
        route(&format!(
            "      - to: oncall@etcd.test\n        tls_config:\n          ca_file: {}",
            ca.display()
        ))
    );
    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions::default(),
    )
    .unwrap();
    d.send(etcd_alerts());
    let m = smtp.wait_messages(1, Duration::from_secs(10)).await;
    assert_eq!(m[0]["tls"], true);
    assert_eq!(m[0]["authenticated"], true);
    d.shutdown().await;
}

/// Alertmanager and we, given the same configuration and alerts, mail the same subject, sender and
/// recipients to the same real SMTP server.
#[tokio::test]
async fn subject_and_envelope_agree_with_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(smtp) = Smtp::start(dir.path(), "plain", port, None) else {
        return;
    };
    let yaml = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:{port}
  smtp_from: alerter@etcd.test
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 1m
receivers:
  - name: mail
    email_configs:
      - to: oncall@etcd.test
"#
    );
    let Some(am) = start_alertmanager(&yaml).await else {
        return;
    };
    let t = Utc::now();
    let alerts = vec![
        alert(
            &[
                ("alertname", "EtcdHighFsyncDurations"),
                ("cluster", "c1"),
                ("severity", "warning"),
                ("instance", "m1"),
            ],
            t,
        ),
        alert(
            &[
                ("alertname", "EtcdHighFsyncDurations"),
                ("cluster", "c1"),
                ("severity", "warning"),
                ("instance", "m2"),
            ],
            t,
        ),
    ];
    am.post(&alerts).await;
    let theirs = smtp
        .wait_messages(1, Duration::from_secs(10))
        .await
        .remove(0);

    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions::default(),
    )
    .unwrap();
    d.send(alerts);
    let ours = smtp
        .wait_messages(2, Duration::from_secs(10))
        .await
        .remove(1);
    for k in [
        "subject",
        "mail_from",
        "rcpt_tos",
        "to",
        "from",
        "content_type",
    ] {
        assert_eq!(ours[k], theirs[k], "{k}");
    }
    assert_eq!(
        ours["subject"],
        "[FIRING:2] EtcdHighFsyncDurations c1 (warning)"
    );
    d.shutdown().await;
}

/// Subject header, `text` and `html` written as templates over a `templates:` file: the mail we
/// send has the subject, text part and HTML part (escaping included) that Alertmanager's has.
#[tokio::test]
async fn templated_mail_agrees_with_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let Some(smtp) = Smtp::start(dir.path(), "plain", port, None) else {
        return;
    };
    std::fs::write(
        dir.path().join("custom.tmpl"),
        crate::support::CUSTOM_TEMPLATES,
    )
    .unwrap();
    let yaml = format!(
        r#"
global:
  smtp_smarthost: 127.0.0.1:{port}
  smtp_from: alerter@etcd.test
  smtp_require_tls: false
templates: ['{}/*.tmpl']
route:
  receiver: mail.oncall
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 1m
receivers:
  - name: mail.oncall
    email_configs:
      - to: '{{{{ .CommonLabels.cluster }}}}-oncall@etcd.test'
        headers:
          Subject: '{{{{ template "custom.title" . }}}} ({{{{ .Receiver }}}})'
        text: '{{{{ template "custom.text" . }}}}'
        html: '{{{{ template "custom.html" . }}}}'
"#,
        dir.path().display()
    );
    let Some(am) = start_alertmanager(&yaml).await else {
        return;
    };
    // Starting now: an alert older than group_wait makes Alertmanager flush at the first one it takes
    // in, racing the second of the same POST.
    let alerts = crate::support::templated_alerts(Utc::now());
    am.post(&alerts).await;
    let theirs = smtp
        .wait_messages(1, Duration::from_secs(10))
        .await
        .remove(0);

    let d = Dispatcher::start(
        write_config(dir.path(), &yaml),
        DispatcherOptions {
            external_url: crate::support::EXTERNAL_URL.into(),
            ..Default::default()
        },
    )
    .unwrap();
    d.send(alerts);
    let ours = smtp
        .wait_messages(2, Duration::from_secs(10))
        .await
        .remove(1);
    for k in ["subject", "rcpt_tos", "to", "content_type", "text", "html"] {
        assert_eq!(ours[k], theirs[k], "{k}");
    }
    assert_eq!(
        ours["subject"],
        "[FIRING:2] EtcdHighFsyncDurations / c1 (mail\\.oncall)"
    );
    assert_eq!(ours["rcpt_tos"], serde_json::json!(["c1-oncall@etcd.test"]));
    let html = ours["html"].as_str().unwrap();
    assert!(
        html.contains(
            "m1:2379: fsync p99 &gt; 1s &amp; &#34;slow&#34; &#43; &#39;more&#39; on m1:2379"
        ),
        "{html}"
    );
    assert!(html.contains("<i>as is</i>"), "{html}");
    d.shutdown().await;
}
