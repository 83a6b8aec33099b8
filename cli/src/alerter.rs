//! `etcd-monitor alerter ...`: flags and dispatch for the alerter. The work is in `etcd-monitor-alerter`.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::LoggingArgs;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AlerterArgs {
    #[command(subcommand)]
    command: Option<AlerterCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum AlerterCommand {
    /// Check rule files, as `promtool check rules` does
    Check {
        #[command(subcommand)]
        what: CheckCommand,
    },
    /// Run rule unit tests in promtool's format, as `promtool test rules` does
    Test {
        /// Unit-test files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum CheckCommand {
    /// Check Prometheus rule files: syntax, expressions, label names, templates
    Rules {
        /// Rule files
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub async fn run(args: AlerterArgs, _logging: &LoggingArgs) -> ExitCode {
    match args.command {
        Some(AlerterCommand::Check {
            what: CheckCommand::Rules { files },
        }) => ExitCode::from(etcd_monitor_alerter::commands::check_rules(&files)),
        Some(AlerterCommand::Test { files }) => {
            ExitCode::from(etcd_monitor_alerter::commands::test_rules(&files))
        }
        None => crate::fail(anyhow::anyhow!("the alerter daemon is not built yet"), 2),
    }
}
