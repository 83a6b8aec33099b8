//! The whole stack together: exporter, alerter, Prometheus, Alertmanager, dashboards.

mod alertmanager;
mod dashboards;
mod e2e;
