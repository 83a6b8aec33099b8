//! `etcd-monitor exporter` through its command line and its web server.

mod cli;
mod web;
