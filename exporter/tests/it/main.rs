//! The exporter library against real etcd clusters: healthy, under faults, through outages.

mod faults;
mod healthy_cluster;
mod outage;
mod support;
