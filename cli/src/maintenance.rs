//! `etcd-monitor status|defrag|compact|alarm|snapshot`: the etcdctl-style maintenance commands (the
//! status and maintenance issue owns this file).

use std::process::ExitCode;

use crate::LoggingArgs;

#[derive(Debug, clap::Subcommand)]
pub enum MaintenanceCommand {}

pub async fn run(command: MaintenanceCommand, _logging: &LoggingArgs) -> ExitCode {
    match command {}
}
