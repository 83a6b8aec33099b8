//! etcd-monitor status and safe maintenance (placeholder until that issue lands).
