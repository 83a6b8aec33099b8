//! The web server flags every serving subcommand shares, with Prometheus' names.

use std::path::PathBuf;
use std::time::Duration;

use prom_web::WebOptions;

use crate::connection::parse_timeout;

#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Web server")]
pub struct WebArgs {
    /// Prometheus' web configuration file (exporter-toolkit format): TLS, client certificates, basic auth,
    /// response headers; re-read when it or a certificate it names changes
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub config_file: Option<PathBuf>,

    /// Most connections served at once, capped by the file-descriptor limit; when full, connections
    /// still waiting for a request are closed first (0: as many as file descriptors allow)
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = prom_web::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Longest a connection may idle, a request take, or a client leave an answer unread (the request
    /// head has 10s)
    #[arg(long = "web.read-timeout", value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub read_timeout: Duration,
}

impl WebArgs {
    /// The options, with the file loaded and checked once, so that a bad file fails start-up in one line.
    pub fn validated(&self) -> anyhow::Result<WebOptions> {
        let opts = WebOptions {
            config_file: self.config_file.clone(),
            max_connections: self.max_connections,
            read_timeout: self.read_timeout,
            ..WebOptions::default()
        };
        opts.validate()?;
        Ok(opts)
    }
}
