//! Reporting what went wrong with a request without printing the credential: Slack and webhook URLs
//! carry theirs in the path, proxy URLs in `user:password@`.

/// A reqwest error as one line, its causes joined, without the URL: reqwest's own text is `error
/// sending request for url (<the whole URL>)`, and a Slack or webhook URL is a credential.
pub fn http_error(e: reqwest::Error) -> String {
    error_chain(&e.without_url())
}

/// An error and its causes as one line, each cause once: hyper and tonic wrap an I/O error in layers
/// that often repeat its text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ")
}

/// A URL fit for a log: scheme, host and port only.
pub fn redact(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".into(),
    }
}

/// An answer other than 2xx, with the start of its body: receivers explain a refusal there.
#[derive(Debug, thiserror::Error)]
#[error("unexpected status code {status}: {body}")]
pub struct UnexpectedStatus {
    pub status: u16,
    /// At most 1024 characters, trimmed.
    pub body: String,
}

impl UnexpectedStatus {
    /// Worth another try (5xx or 429), as Alertmanager's integrations and Prometheus' notifier decide.
    pub fn is_retryable(&self) -> bool {
        (500..600).contains(&self.status) || self.status == 429
    }
}

/// `Ok` for a 2xx answer; otherwise its status and the start of its body.
pub async fn expect_success(resp: reqwest::Response) -> Result<(), UnexpectedStatus> {
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    let body: String = body.chars().take(1024).collect();
    Err(UnexpectedStatus {
        status: status.as_u16(),
        body: body.trim().to_string(),
    })
}
