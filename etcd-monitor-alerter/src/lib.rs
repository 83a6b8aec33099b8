//! etcd-monitor's alerter: Prometheus rule files evaluated as Prometheus evaluates them.
//!
//! The core is pure: rule files ([`rules`]), templates ([`template`]), the alert state machine
//! ([`alerting`]) and group evaluation ([`group`]) take the clock as an argument and reach data only through
//! the [`engine::QueryEngine`] trait. Scraping, HTTP and the state file are at the edges.

pub mod alerting;
pub mod commands;
pub mod daemon;
pub use prom_exposition::duration;
pub mod engine;
pub mod group;
pub mod rules;
pub mod template;
pub mod unittest;
