//! The `etcd-monitor` binary's integration tests, one test binary grouped by part: each runs the real
//! binary (`CARGO_BIN_EXE_etcd-monitor`) against real etcd, Prometheus, Alertmanager, Pushgateway and
//! SMTP servers on loopback. `support` starts those programs; each part may have its own `support`.
//!
//! Run one part with `cargo test -p etcd-monitor --test it alerter::` (or `cargo nextest run ...`).

mod alerter;
mod bench;
mod bounds;
mod exporter;
mod maintenance;
mod original_design;
mod secrets;
mod stack;
mod support;
