//! The whole stack together: exporter, alerter, Prometheus, Alertmanager, dashboards.

mod alertmanager;
mod dashboards;
mod demo_script;
mod e2e;
