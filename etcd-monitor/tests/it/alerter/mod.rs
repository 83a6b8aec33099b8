//! `etcd-monitor alerter`: the daemon against real etcd, Prometheus (the reference) and Alertmanager.

mod alertmanager;
mod conformance;
mod daemon;
mod exporter;
mod file_sd;
mod hardening;
mod high_availability;
mod prometheus;
mod relabel;
mod scrape_options;
mod scrape_tls;
