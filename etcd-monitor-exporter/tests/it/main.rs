//! The exporter library against real etcd clusters: healthy, under faults, through outages.

mod certificates;
mod consistency;
mod current_metrics;
mod faults;
mod healthy_cluster;
mod outage;
mod support;
