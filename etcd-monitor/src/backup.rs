//! `etcd-monitor backup --dir DIR --keep N`: the command line of the backups; the work is in
//! `etcd_monitor_maintenance::backup`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use etcd_monitor_maintenance::backup::{daemon, push, BackupOptions, Backups};
use etcd_monitor_maintenance::{Error, InspectSettings};
use tokio_util::sync::CancellationToken;

use crate::connection::parse_long;
use crate::maintenance::{CommonArgs, Output};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// Directory of the backups, made (mode 0700) when missing. Files are named
    /// etcd-CLUSTER-YYYYMMDDTHHMMSSZ-revREVISION.db; nothing else in it is ever touched
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Keep the newest N backups of this cluster in DIR; older ones made by this command are deleted
    /// after a backup succeeds (1 to 100000)
    #[arg(long, value_name = "N")]
    keep: usize,
    /// Member (name or hex ID) to take the snapshot from; the leader by default
    #[arg(long, value_name = "NAME")]
    member: Option<String>,
    /// Time one snapshot transfer may take (at most 30 days)
    #[arg(long, default_value = "30m", value_parser = parse_long)]
    timeout: Duration,
    /// A last successful backup older than this makes etcdBackupTooOld fire (exported as
    /// etcd_backup_max_age_seconds; at most 30 days): a little more than the schedule's period
    #[arg(long, default_value = "25h", value_parser = parse_long)]
    max_age: Duration,
    /// Push the backup metrics to this Pushgateway (http://HOST:9091) after every run
    // Hidden in --help: the URL may carry user:password@.
    #[arg(
        long,
        env = "PUSHGATEWAY_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pushgateway: Option<String>,

    /// Keep running as a daemon and back up on this cron schedule ("0 */6 * * *"), serving the
    /// metrics on /metrics
    #[arg(long, value_name = "CRON", help_heading = "Daemon")]
    schedule: Option<String>,
    /// Daemon: serve /metrics, /-/healthy and /-/ready here
    #[arg(long, default_value = "0.0.0.0:9107", help_heading = "Daemon")]
    listen: SocketAddr,
    #[command(flatten)]
    web: crate::web::WebArgs,

    #[command(flatten)]
    common: CommonArgs,
}

/// SIGINT or SIGTERM cancels the token: the backup going stops and leaves no partial file.
fn cancel_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => tokio::select! {
                    _ = tokio::signal::ctrl_c() => tracing::warn!("SIGINT: stopping"),
                    _ = term.recv() => tracing::warn!("SIGTERM: stopping"),
                },
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        t.cancel();
    });
    token
}

/// Runs the command; `Ok` is the exit code. Errors: [`Error::Usage`] (exit 2) for the command line,
/// the others (exit 1) when no backup was made.
pub async fn execute(args: BackupArgs) -> Result<u8, Error> {
    let schedule = args
        .schedule
        .as_deref()
        .map(daemon::parse_schedule)
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let web = args
        .web
        .validated()
        .map_err(|e| Error::Usage(format!("{e:#}")))?;
    if let Some(pg) = &args.pushgateway {
        push::push_url(pg, "x").map_err(|e| Error::Usage(e.to_string()))?;
    }
    let common = &args.common;
    let target = common
        .connection
        .target()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let backups = Backups::new(
        BackupOptions {
            dir: args.dir.clone(),
            keep: args.keep,
            member: args.member.clone(),
            timeout: args.timeout,
            max_age: args.max_age,
        },
        &common.cluster_name,
    )?;
    let settings = InspectSettings {
        cluster_name: common.cluster_name.clone(),
        member_timeout: common.member_timeout,
        probe_write: false,
    };
    let cancel = cancel_on_signals();
    if let Some(schedule) = schedule {
        let options = daemon::DaemonOptions {
            schedule,
            listen: args.listen,
            web,
            pushgateway: args.pushgateway.clone(),
        };
        // What ends the daemon before a signal is its server failing to start (--listen, --web.*).
        return daemon::serve(backups, target, settings, options, cancel)
            .await
            .map(|()| 0)
            .map_err(|e| Error::Usage(format!("{e:#}")));
    }

    let outcome = backups.run(&target, &settings, &cancel).await;
    let pushed = match (&args.pushgateway, outcome.recorded) {
        (Some(pg), true) => {
            push::push(pg, backups.cluster(), backups.metrics(&outcome.state)).await
        }
        _ => Ok(()),
    };
    let report = match outcome.result {
        Ok(r) => r,
        Err(e) => {
            if let Err(p) = pushed {
                tracing::error!("{p}");
            }
            // Whatever went wrong, no backup was made: exit 1 (2 is for the command line).
            return Err(Error::Failed(
                match e {
                    Error::Usage(s) | Error::Refused(s) => anyhow::anyhow!(s),
                    Error::Unreachable(e) | Error::Failed(e) => e,
                }
                .context("no backup made"),
            ));
        }
    };
    match common.output {
        Output::Json => crate::maintenance::print_json(&report)?,
        Output::Table => crate::maintenance::out(&format!(
            "backup of {} ({}) at revision {} or later saved to {}: {} bytes, sha256 verified, {:.1}s; \
             {} kept, {} deleted\n",
            report.member,
            report.endpoint,
            report.revision,
            report.file.display(),
            report.size_bytes,
            report.seconds,
            report.kept,
            report.deleted.len()
        )),
    }
    pushed.map_err(|p| Error::Failed(p.into()))?;
    Ok(0)
}
