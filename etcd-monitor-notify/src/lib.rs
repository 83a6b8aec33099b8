//! Alertmanager-compatible notifications for the etcd-monitor alerter.
//!
//! The alerter hands over the alerts of each rule evaluation; this crate routes them (Alertmanager's
//! routing tree from an `alertmanager.yml`), groups, inhibits, silences, deduplicates against a
//! notification log, and delivers through email, Slack, PagerDuty, webhooks and the console. (Handing
//! alerts to real Alertmanagers, Prometheus' notifier, is the alerter's.)
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use etcd_monitor_notify::{Alert, Dispatcher, DispatcherOptions, NotifyConfig};
//! let config = NotifyConfig::load("alertmanager.yml")?;
//! let dispatcher = Dispatcher::start(config, DispatcherOptions {
//!     state_file: Some("notify-state.json".into()),
//!     external_url: "http://alerter:9093".into(),
//!     ..Default::default()
//! })?;
//! let app = axum::Router::new().merge(dispatcher.router()); // /api/v2/silences ...
//! dispatcher.send(vec![/* the evaluation's firing and resolved alerts */]);
//! # let _ = app; Ok(()) }
//! ```
//!
//! Architecture: `core` is pure (clock passed in): alert store, aggregation groups, flush timing,
//! muting and the dedup decision. `dispatcher` drives it on a timer and calls `deliver` for I/O.
//! `message` builds each integration's body from the configured Go templates, rendered by `template`
//! with Alertmanager's data, functions and default template names.
//!
//! The modules form layers, and none imports one above it (a test below keeps it so): the data
//! (`alert`, `notification`, `matcher`, `timeinterval`), the configuration (`config`, which reads the
//! `templates:` files through `template` once the file is parsed), the pure core (`route`,
//! `inhibit`, `silence`, `nflog`, `core`), then the I/O edge (`message`, `deliver`, `dispatcher`,
//! `api`, `state`).

pub mod alert;
mod api;
pub mod config;
pub mod core;
pub mod deliver;
pub mod dispatcher;
pub mod inhibit;
pub mod matcher;
pub mod message;
pub mod metrics;
pub mod nflog;
pub mod notification;
pub mod route;
pub mod silence;
pub mod state;
pub mod template;
mod time;
pub mod timeinterval;

pub use alert::{Alert, Fingerprint, LabelSet};
pub use config::{ConfigError, NotifyConfig};
pub use dispatcher::{Dispatcher, DispatcherOptions};
pub use matcher::{parse_matcher, parse_matchers, Matcher, Matchers};
pub use metrics::Metrics;
pub use silence::{PostableSilence, Silence, SilenceMatcher};

#[cfg(test)]
mod layering;
