//! etcd-monitor's alerter job.
