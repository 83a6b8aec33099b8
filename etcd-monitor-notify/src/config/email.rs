//! `email_configs`: the SMTP settings (the global ones where unset) and the message's templates.

use std::collections::BTreeMap;
use std::path::PathBuf;

use prom_http_config::{Secret, TlsConfig};
use serde::Deserialize;

use super::receivers::Scope;
use super::ConfigError;

#[derive(Clone, Debug)]
pub struct EmailConfig {
    pub send_resolved: bool,
    pub to: String,
    pub from: String,
    pub hello: String,
    /// `host:port`.
    pub smarthost: String,
    pub auth_username: Option<String>,
    pub auth_password: Option<Secret>,
    pub auth_identity: Option<String>,
    pub require_tls: bool,
    pub tls_config: TlsConfig,
    /// Extra headers (templates); `Subject` here replaces the default subject.
    pub headers: BTreeMap<String, String>,
    /// Body templates; Alertmanager's default is `html` alone.
    pub html: Option<String>,
    pub text: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEmail {
    #[serde(default)]
    send_resolved: Option<bool>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    hello: Option<String>,
    #[serde(default)]
    smarthost: Option<String>,
    #[serde(default)]
    auth_username: Option<String>,
    #[serde(default)]
    auth_password: Option<String>,
    #[serde(default)]
    auth_password_file: Option<PathBuf>,
    #[serde(default)]
    auth_secret: Option<String>,
    #[serde(default)]
    auth_identity: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    html: Option<String>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    require_tls: Option<bool>,
    #[serde(default)]
    tls_config: TlsConfig,
}

impl RawEmail {
    pub(super) fn resolve(self, r: &Scope<'_>) -> Result<EmailConfig, ConfigError> {
        let g = r.defaults;
        let missing = |what: &str| {
            r.err(
                "email_configs",
                format!("receivers[{}].email_configs: {what}", r.name),
            )
        };
        let to = self.to.ok_or_else(|| missing("missing to address"))?;
        let smarthost = self
            .smarthost
            .or_else(|| g.smtp_smarthost.clone())
            .ok_or_else(|| missing("no global SMTP smarthost set"))?;
        let from = self
            .from
            .or_else(|| g.smtp_from.clone())
            .ok_or_else(|| missing("no global SMTP from set"))?;
        let password = match (self.auth_password, &self.auth_password_file) {
            (Some(p), _) => Some(p),
            (None, Some(f)) => Some(r.secret_file("auth_password_file", f)?),
            (None, None) => self.auth_secret.or_else(|| g.smtp_password.clone()),
        };
        let mut tls = self.tls_config;
        tls.check().map_err(|e| r.err(e.key(), e.to_string()))?;
        if let Some(ca) = tls.ca_file.as_mut() {
            if ca.is_relative() {
                *ca = r.at.dir.join(&*ca);
            }
        }
        // Alertmanager capitalises header names; keep the case-insensitive lookup simple.
        let headers = self
            .headers
            .into_iter()
            .map(|(k, v)| (title_case(&k), v))
            .collect();
        Ok(EmailConfig {
            send_resolved: self.send_resolved.unwrap_or(false),
            to,
            from,
            hello: self
                .hello
                .or_else(|| g.smtp_hello.clone())
                .unwrap_or_else(|| "localhost".into()),
            smarthost,
            auth_username: self.auth_username.or_else(|| g.smtp_auth_username.clone()),
            auth_password: password.map(Secret::from),
            auth_identity: self.auth_identity.or_else(|| g.smtp_auth_identity.clone()),
            require_tls: self.require_tls.or(g.smtp_require_tls).unwrap_or(true),
            tls_config: tls,
            headers,
            html: self.html,
            text: self.text,
        })
    }
}

fn title_case(k: &str) -> String {
    k.split('-')
        .map(|p| {
            let mut c = p.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}
