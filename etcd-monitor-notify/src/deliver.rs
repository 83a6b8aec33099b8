//! The I/O edge: sending one notification through one integration, with Alertmanager's retry policy
//! (5xx, 429 and connection errors retried with exponential backoff until the group interval runs out;
//! other 4xx answers are final and logged with the receiver's reply).

use std::time::Duration;

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, MessageBuilder, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters, TlsVersion};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::Value;

use prom_http_config::{
    expect_success, http_error, redact, HttpClientConfig, TlsVersion as HttpTlsVersion,
};

use crate::config::{ConsoleFormat, EmailConfig, Integration};
use crate::message::{
    console_lines, email_message, pagerduty_payload, slack_payload, webhook_payload,
};
use crate::notification::MessageData;
use crate::template::Templates;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// Worth another try: 5xx, 429, connection or timeout.
    #[error("{0}")]
    Retryable(String),
    /// The receiver refused (4xx) or the configuration cannot work: never retried.
    #[error("{0}")]
    Permanent(String),
}

const INITIAL_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// One attempt never waits longer than this for the receiver.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Delivery context the dispatcher passes down.
#[derive(Clone, Debug)]
pub struct DeliveryContext {
    pub console_json: bool,
    /// The configuration's templates (they change with it on reload).
    pub templates: Templates,
}

/// Sends until success, a permanent error, or `deadline`. Returns the number of attempts on success.
pub async fn deliver_with_retry(
    integ: &Integration,
    data: &MessageData,
    ctx: &DeliveryContext,
    deadline: DateTime<Utc>,
) -> Result<u32, DeliveryError> {
    let mut backoff = INITIAL_BACKOFF;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let remaining = (deadline - Utc::now())
            .to_std()
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(100));
        let res =
            match tokio::time::timeout(remaining.min(ATTEMPT_TIMEOUT), attempt(integ, data, ctx))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(DeliveryError::Retryable("timed out".into())),
            };
        match res {
            Ok(()) => return Ok(attempts),
            Err(DeliveryError::Permanent(e)) => return Err(DeliveryError::Permanent(e)),
            Err(DeliveryError::Retryable(e)) => {
                let now = Utc::now();
                if crate::time::later(now, crate::time::chrono_dur(backoff)) >= deadline {
                    return Err(DeliveryError::Retryable(format!(
                        "{e} (gave up after {attempts} attempts)"
                    )));
                }
                tracing::warn!(integration = integ.kind(), receiver = %data.receiver, attempt = attempts, error = %e, retry_in = ?backoff, "notification failed, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One try, no retry.
pub async fn attempt(
    integ: &Integration,
    data: &MessageData,
    ctx: &DeliveryContext,
) -> Result<(), DeliveryError> {
    match integ {
        Integration::Webhook(c) => {
            post_json(
                c.url.expose(),
                &c.http_config,
                &webhook_payload(data, c.max_alerts),
            )
            .await
        }
        Integration::Slack(c) => {
            let body = slack_payload(c, data, &ctx.templates).map_err(template_err)?;
            post_json(c.api_url.expose(), &c.http_config, &body).await
        }
        Integration::PagerDuty(c) => {
            let body = pagerduty_payload(c, data, &ctx.templates).map_err(template_err)?;
            post_json(&c.url, &c.http_config, &body).await
        }
        Integration::Email(c) => send_email(c, data, &ctx.templates).await,
        Integration::Console(c) => {
            let json = match c.format {
                ConsoleFormat::Json => true,
                ConsoleFormat::Text => false,
                ConsoleFormat::Auto => ctx.console_json,
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for line in console_lines(data, json, Utc::now()) {
                writeln!(out, "{line}")
                    .map_err(|e| DeliveryError::Retryable(format!("stdout: {e}")))?;
            }
            out.flush()
                .map_err(|e| DeliveryError::Retryable(format!("stdout: {e}")))
        }
    }
}

/// A template that fails to render fails the notification for good: retrying renders it the same.
fn template_err(e: String) -> DeliveryError {
    DeliveryError::Permanent(e)
}

/// Classifies an HTTP answer as Alertmanager's integrations do.
pub async fn check_response(resp: reqwest::Response) -> Result<(), DeliveryError> {
    expect_success(resp).await.map_err(|e| {
        if e.is_retryable() {
            DeliveryError::Retryable(e.to_string())
        } else {
            DeliveryError::Permanent(e.to_string())
        }
    })
}

async fn post_json(url: &str, h: &HttpClientConfig, body: &Value) -> Result<(), DeliveryError> {
    let client = h
        .client(ATTEMPT_TIMEOUT)
        .map_err(|e| DeliveryError::Permanent(e.to_string()))?;
    let req = h.authorize(client.post(url).json(body));
    let resp = req.send().await.map_err(|e| {
        DeliveryError::Retryable(format!("POST {}: {}", redact(url), http_error(e)))
    })?;
    check_response(resp).await
}

fn smtp_err(e: lettre::transport::smtp::Error) -> DeliveryError {
    if e.is_permanent() {
        DeliveryError::Permanent(format!("smtp: {e}"))
    } else {
        DeliveryError::Retryable(format!("smtp: {e}"))
    }
}

async fn send_email(
    c: &EmailConfig,
    d: &MessageData,
    templates: &Templates,
) -> Result<(), DeliveryError> {
    let m = email_message(c, d, templates).map_err(template_err)?;
    let (host, port) = c
        .smarthost
        .rsplit_once(':')
        .and_then(|(h, p)| {
            p.parse::<u16>()
                .ok()
                .map(|p| (h.trim_matches(['[', ']']).to_string(), p))
        })
        .ok_or_else(|| {
            DeliveryError::Permanent(format!("smarthost {:?}: expected host:port", c.smarthost))
        })?;
    let server_name = c
        .tls_config
        .server_name
        .clone()
        .unwrap_or_else(|| host.clone());
    let mut tls = TlsParameters::builder(server_name)
        .dangerous_accept_invalid_certs(c.tls_config.insecure_skip_verify);
    if let Some(ca) = &c.tls_config.ca_file {
        let pem = std::fs::read(ca)
            .map_err(|e| DeliveryError::Permanent(format!("ca_file {}: {e}", ca.display())))?;
        tls = tls.add_root_certificate(
            Certificate::from_pem(&pem)
                .map_err(|e| DeliveryError::Permanent(format!("ca_file {}: {e}", ca.display())))?,
        );
    }
    // rustls speaks TLS 1.2 and 1.3 only: an older minimum changes nothing.
    if c.tls_config.min_tls_version().ok().flatten() == Some(HttpTlsVersion::Tls13) {
        tls = tls.set_min_tls_version(TlsVersion::Tlsv13);
    }
    let tls = tls
        .build()
        .map_err(|e| DeliveryError::Permanent(format!("smtp tls: {e}")))?;
    // As Alertmanager: port 465 speaks TLS from the first byte; otherwise STARTTLS when required.
    let mode = if port == 465 {
        Tls::Wrapper(tls)
    } else if c.require_tls {
        Tls::Required(tls)
    } else {
        Tls::None
    };
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
        .port(port)
        .tls(mode)
        .hello_name(ClientId::Domain(c.hello.clone()))
        .timeout(Some(ATTEMPT_TIMEOUT));
    if let Some(user) = &c.auth_username {
        transport = transport.credentials(Credentials::new(
            user.clone(),
            c.auth_password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default(),
        ));
    }
    let transport = transport.build();

    let from: Mailbox = m
        .from
        .parse()
        .map_err(|e| DeliveryError::Permanent(format!("from {:?}: {e}", m.from)))?;
    let mut msg: MessageBuilder = lettre::Message::builder().from(from).date_now();
    for to in m.to.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let mb: Mailbox = to
            .parse()
            .map_err(|e| DeliveryError::Permanent(format!("to {to:?}: {e}")))?;
        msg = msg.to(mb);
    }
    msg = msg.subject(m.subject);
    for (k, v) in m.headers {
        let name = lettre::message::header::HeaderName::new_from_ascii(k.clone())
            .map_err(|e| DeliveryError::Permanent(format!("header {k:?}: {e}")))?;
        msg = msg.raw_header(lettre::message::header::HeaderValue::new(name, v));
    }
    // As Alertmanager: always multipart/alternative, with the text part and the HTML part there are.
    let mut body = MultiPart::alternative().build();
    if let Some(text) = m.text {
        body = body.singlepart(SinglePart::plain(text));
    }
    if let Some(html) = m.html {
        body = body.singlepart(SinglePart::html(html));
    }
    let email = msg
        .multipart(body)
        .map_err(|e| DeliveryError::Permanent(format!("email: {e}")))?;
    transport.send(email).await.map_err(smtp_err)?;
    Ok(())
}
