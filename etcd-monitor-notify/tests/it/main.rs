//! Notifications as Alertmanager sends them: configuration, routing core, receivers (webhook, email through a
//! real SMTP server, console), against real Alertmanager and amtool where they can tell.

mod alertmanager;
mod config;
mod console;
mod core;
mod email;
mod metrics;
mod support;
mod webhook;
