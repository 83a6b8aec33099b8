//! `etcd-monitor bench`: workloads, pacing, publishing and triggers against real etcd.

mod open_loop;
mod publish;
mod safety;
mod support;
mod trigger;
mod workloads;
