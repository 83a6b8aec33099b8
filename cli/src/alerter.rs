//! `etcd-monitor alerter ...`: flags and dispatch for the alerter (the alerter issues own this file).

use std::process::ExitCode;

use crate::LoggingArgs;

#[derive(Debug, clap::Args)]
pub struct AlerterArgs {}

pub async fn run(_args: AlerterArgs, _logging: &LoggingArgs) -> ExitCode {
    crate::fail(anyhow::anyhow!("the alerter is not built yet"), 2)
}
