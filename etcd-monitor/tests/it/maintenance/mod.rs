//! The maintenance commands (`status`, `defrag`, ...) against real etcd 3.4 and 3.5 clusters.

mod backup;
mod defrag;
mod ops;
mod status;
mod support;
