//! etcd-monitor's bench job.
