//! Serving HTTP as a Prometheus exporter does, hardened against slow clients.
//!
//! - The exporter-toolkit web configuration file (`--web.config.file`): TLS with rustls, client
//!   certificates, basic auth with bcrypt, extra response headers. Re-read when it or a certificate it
//!   names changes on disk, so certificates rotate without a restart ([`config`] for the format).
//! - Limits: a header-read timeout, an idle timeout, a per-request timeout, a write-stall timeout and a
//!   connection limit that evicts connections still waiting for a request head before it turns
//!   anyone away.
//!
//! ```no_run
//! # async fn example(app: axum::Router) -> anyhow::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9100").await?;
//! let opts = prom_web::WebOptions::default();
//! opts.validate()?; // a bad file fails start-up here, in one line
//! prom_web::serve(listener, app, opts, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Knows nothing of what the router serves.

mod auth;
pub mod config;
mod limits;
mod live;
mod server;
mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;

pub use limits::{raise_fd_limit, FdLimit, DEFAULT_FD_RESERVE};

/// Prometheus' `--web.max-connections` default.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Prometheus' `--web.read-timeout` default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// Time a client has to send a complete request head (and, with TLS, to finish the handshake). Ten
/// seconds is far more than any scraper on a working network needs, and short enough that held
/// connections do not pile up. hyper's timer also runs while a keep-alive HTTP/1.1 connection waits for
/// its next request, so idle HTTP/1.1 connections close after this too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server is exposed: the web configuration file and the limits.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// `--web.config.file`: TLS, basic auth, headers. None: plain HTTP, open to all.
    pub config_file: Option<PathBuf>,
    /// `--web.max-connections`; capped by the file-descriptor limit. 0: as many as that allows.
    pub max_connections: usize,
    /// `--web.read-timeout`: idle connections, a request's handling, a client that stops reading.
    pub read_timeout: Duration,
    pub header_read_timeout: Duration,
    /// File descriptors kept for everything that is not a client connection.
    pub fd_reserve: u64,
}

impl Default for WebOptions {
    fn default() -> WebOptions {
        WebOptions {
            config_file: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            header_read_timeout: HEADER_READ_TIMEOUT,
            fd_reserve: DEFAULT_FD_RESERVE,
        }
    }
}

impl WebOptions {
    /// Loads the configuration file and everything it names, as serving would; the error is one line
    /// naming the file (and, where the YAML parser gives them, key and line).
    pub fn validate(&self) -> anyhow::Result<()> {
        self.check_timeouts()?;
        live::LiveConfig::start(self.config_file.as_deref()).map_err(anyhow::Error::msg)?;
        Ok(())
    }

    fn check_timeouts(&self) -> anyhow::Result<()> {
        if self.read_timeout.is_zero() || self.header_read_timeout.is_zero() {
            anyhow::bail!("--web.read-timeout must be more than 0");
        }
        Ok(())
    }

    fn timeouts(&self) -> Timeouts {
        Timeouts {
            header_read: self.header_read_timeout,
            read: self.read_timeout,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Timeouts {
    pub header_read: Duration,
    pub read: Duration,
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets requests in progress finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: WebOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    opts.check_timeouts()?;
    let live =
        Arc::new(live::LiveConfig::start(opts.config_file.as_deref()).map_err(anyhow::Error::msg)?);
    let fd = raise_fd_limit();
    let limit = limits::effective_connection_limit(opts.max_connections, fd, opts.fd_reserve);
    let address = listener
        .local_addr()
        .context("the listener has no address")?;
    let first = live.current();
    tracing::info!(
        %address,
        tls = first.tls.is_some(),
        http2 = first.tls.is_some() && first.http2,
        basic_auth = !first.users.is_empty(),
        max_connections = limit,
        requested_max_connections = opts.max_connections,
        fd_soft_limit = fd.map(|f| f.soft),
        fd_hard_limit = fd.map(|f| f.hard),
        fd_reserve = opts.fd_reserve,
        "web server listening"
    );
    drop(first);
    let guard = Arc::new(auth::Guard::new(live.clone()));
    let app = app
        .layer(axum::middleware::from_fn_with_state(guard, auth::guard))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            opts.read_timeout,
        ));
    let registry = Arc::new(limits::Registry::new(limit));
    server::accept_loop(listener, app, live, registry, opts.timeouts(), shutdown).await;
    Ok(())
}
