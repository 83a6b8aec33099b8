//! The web server every etcd-monitor server goes through (`--web.config.file`): TLS, client certificates,
//! basic auth and slow clients, against real clients (reqwest, curl).

mod client_auth;
mod slow_clients;
mod support;
mod tls_auth;
