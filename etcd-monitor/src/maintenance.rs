//! `etcd-monitor status|defrag|compact|alarm|snapshot`: the etcdctl-style maintenance commands (the
//! status and maintenance issue owns this file). Only the command line is here: the work is in the
//! `etcd-monitor-maintenance` crate.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use etcd_monitor_maintenance::{
    alarm, compact, defrag, render, snapshot_file, status, Error, InspectSettings, Inspector,
};

use crate::connection::{parse_long, parse_timeout, ConnectionArgs};
use crate::LoggingArgs;

#[derive(Debug, Subcommand)]
pub enum MaintenanceCommand {
    /// One table of every member and the cluster verdict. Read-only unless --probe-write. Exit code: 0
    /// healthy, 1 degraded (a member down, an alarm, a failed probe, no spare member...), 2 unreachable
    /// or no quorum (no member answers, or no agreed leader with a quorum)
    Status {
        /// Also probe writes (one put per member under /etcd-monitor/probe/, on a 60 s lease). Off by
        /// default: status only reads
        #[arg(long, default_value_t = false, action = clap::ArgAction::Set,
              num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
        probe_write: bool,
        /// Colours: auto (on a terminal, unless NO_COLOR is set), always or never
        #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
        color: ColorChoice,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Rolling defragmentation: followers first and the leader last, one member at a time, each healthy
    /// and caught up with the leader before the next. Only the members whose fragmentation meets the
    /// exporter's rule (half the file free and 64 MiB or more, or 80% of the quota used with 10% free),
    /// unless --all. Refused when the cluster has no spare member (a member down, fault tolerance < 1)
    Defrag {
        /// Defragment every member, whatever its fragmentation
        #[arg(long)]
        all: bool,
        /// Print the plan and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Time one member's defragmentation may take (a big database takes minutes; at most 30 days)
        #[arg(long, default_value = "10m", value_parser = parse_long)]
        command_timeout: Duration,
        /// Time a member has, after its defragmentation, to be healthy and caught up again (at most 30
        /// days)
        #[arg(long, default_value = "2m", value_parser = parse_long)]
        wait_timeout: Duration,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Compact the key-value history to the current revision minus --keep
    Compact {
        /// Revisions of history to keep below the current one (0: compact to the current revision, as
        /// etcd's space-quota recovery does)
        #[arg(long, default_value_t = 0, value_name = "N")]
        keep: i64,
        /// Wait until the compaction is applied to every member's backend
        #[arg(long)]
        physical: bool,
        /// Time the compaction may take (at most 30 days)
        #[arg(long, default_value = "1m", value_parser = parse_long)]
        timeout: Duration,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// List or disarm alarms (NOSPACE, CORRUPT)
    Alarm {
        #[command(subcommand)]
        command: AlarmCommand,
    },
    /// Save or verify a snapshot of the database
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Save a verified snapshot into a directory, named with its time and revision, keep the newest N,
    /// and report etcd_backup_* metrics (to a Pushgateway; on /metrics with --schedule). Exit code: 0
    /// saved, 1 no backup made, 2 bad command line
    Backup(crate::backup::BackupArgs),
}

#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// List the active alarms
    List {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Disarm every active alarm (after freeing space: compact, defrag)
    Disarm {
        #[command(flatten)]
        common: CommonArgs,
    },
}

// Parsed once at start-up: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stream a snapshot from the leader (or --member) to FILE.part, verify etcd's sha256 trailer, then
    /// rename it to FILE
    Save {
        /// Where to write the snapshot
        file: PathBuf,
        /// Member (name or hex ID) to take the snapshot from; the leader by default
        #[arg(long, value_name = "NAME")]
        member: Option<String>,
        /// Time the whole transfer may take (at most 30 days)
        #[arg(long, default_value = "30m", value_parser = parse_long)]
        timeout: Duration,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Verify a snapshot file's sha256 trailer (as `etcdutl snapshot restore` does before restoring)
    Verify {
        /// The snapshot file
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Output format
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Table)]
    pub(crate) output: Output,

    /// Time each member has to answer Status, a probe or /metrics (at most 1h)
    #[arg(long, env = "MEMBER_TIMEOUT", default_value = "2s", value_parser = parse_timeout)]
    pub(crate) member_timeout: Duration,

    /// Name of the cluster, as shown in the report
    #[arg(long, env = "CLUSTER_NAME", default_value = "default")]
    pub(crate) cluster_name: String,

    // Last: its help heading applies to every flag after it.
    #[command(flatten)]
    pub(crate) connection: ConnectionArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        // https://no-color.org: any non-empty NO_COLOR turns colours off.
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

fn error_exit(e: Error) -> ExitCode {
    let code = e.exit_code();
    let err = match e {
        Error::Unreachable(e) | Error::Failed(e) => e,
        Error::Usage(s) | Error::Refused(s) => anyhow::anyhow!(s),
    };
    crate::fail(err, code)
}

async fn inspector(common: &CommonArgs, probe_write: bool) -> Result<Inspector, Error> {
    let target = common
        .connection
        .target()
        .map_err(|e| Error::Usage(e.to_string()))?;
    Inspector::connect(
        target,
        InspectSettings {
            cluster_name: common.cluster_name.clone(),
            member_timeout: common.member_timeout,
            probe_write,
        },
    )
    .await
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub(crate) fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush());
}

macro_rules! outln {
    ($($arg:tt)*) => {
        out(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) fn print_json<T: etcd_monitor_maintenance::Serialize>(value: &T) -> Result<(), Error> {
    out(&format!("{}\n", etcd_monitor_maintenance::to_json(value)?));
    Ok(())
}

pub async fn run(command: MaintenanceCommand, _logging: &LoggingArgs) -> ExitCode {
    match execute(command).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => error_exit(e),
    }
}

async fn execute(command: MaintenanceCommand) -> Result<u8, Error> {
    match command {
        MaintenanceCommand::Status {
            common,
            probe_write,
            color,
        } => {
            let mut inspector = inspector(&common, probe_write).await?;
            let report = status::StatusReport::new(inspector.snapshot().await);
            match common.output {
                Output::Json => print_json(&report)?,
                Output::Table => out(&render::table(&report, use_color(color))),
            }
            Ok(report.exit_code)
        }
        MaintenanceCommand::Defrag {
            common,
            all,
            dry_run,
            command_timeout,
            wait_timeout,
        } => {
            let mut inspector = inspector(&common, false).await?;
            let options = defrag::DefragOptions {
                command_timeout,
                wait_timeout,
            };
            let defrag::Prepared {
                snapshot: snap,
                steps,
                skipped,
            } = defrag::prepare(&mut inspector, all).await?;
            let json = common.output == Output::Json;
            if !json {
                for (name, why) in &skipped {
                    outln!("skipping {name}: {why}");
                }
                out(&plan_text(&steps, dry_run, all));
            }
            let done = if dry_run || steps.is_empty() {
                Vec::new()
            } else {
                let mut progress = |line: String| {
                    if json {
                        tracing::info!("{line}");
                    } else {
                        outln!("{line}");
                    }
                };
                defrag::execute(&mut inspector, snap, &steps, &options, &mut progress).await?
            };
            if json {
                print_json(&defrag::DefragReport {
                    dry_run,
                    plan: steps,
                    skipped: skipped
                        .into_iter()
                        .map(|(name, reason)| defrag::Skipped { name, reason })
                        .collect(),
                    done,
                })?;
            } else if !dry_run && !done.is_empty() {
                outln!("done: {} member(s) defragmented", done.len());
            }
            Ok(0)
        }
        MaintenanceCommand::Compact {
            common,
            keep,
            physical,
            timeout,
        } => {
            let inspector = inspector(&common, false).await?;
            let report = compact::run(
                &inspector,
                &compact::CompactOptions {
                    keep,
                    physical,
                    timeout,
                },
            )
            .await?;
            match common.output {
                Output::Json => print_json(&report)?,
                Output::Table => outln!(
                    "compacted to revision {} (current revision {}, {} kept{})",
                    report.compacted_to,
                    report.current_revision,
                    keep,
                    if physical { ", physical" } else { "" }
                ),
            }
            Ok(0)
        }
        MaintenanceCommand::Alarm { command } => match command {
            AlarmCommand::List { common } => {
                let mut inspector = inspector(&common, false).await?;
                let alarms = alarm::list(&mut inspector).await?;
                match common.output {
                    Output::Json => print_json(&alarms)?,
                    Output::Table if alarms.is_empty() => outln!("no active alarm"),
                    Output::Table => {
                        for a in &alarms {
                            outln!(
                                "memberID:{} member:{} alarm:{}",
                                a.member_id,
                                a.member,
                                a.alarm
                            );
                        }
                    }
                }
                Ok(0)
            }
            AlarmCommand::Disarm { common } => {
                let mut inspector = inspector(&common, false).await?;
                let report = alarm::disarm(&mut inspector).await?;
                for w in &report.warnings {
                    tracing::warn!("{w}");
                }
                match common.output {
                    Output::Json => print_json(&report)?,
                    Output::Table => {
                        if report.disarmed.is_empty() {
                            outln!("no active alarm");
                        }
                        for a in &report.disarmed {
                            outln!("disarmed {} on {} ({})", a.alarm, a.member, a.member_id);
                        }
                        for a in &report.remaining {
                            outln!(
                                "still active: {} on {} ({})",
                                a.alarm,
                                a.member,
                                a.member_id
                            );
                        }
                    }
                }
                Ok(if report.remaining.is_empty() { 0 } else { 1 })
            }
        },
        MaintenanceCommand::Backup(args) => crate::backup::execute(args).await,
        MaintenanceCommand::Snapshot { command } => match command {
            SnapshotCommand::Save {
                common,
                file,
                member,
                timeout,
            } => {
                let mut inspector = inspector(&common, false).await?;
                let report =
                    snapshot_file::save(&mut inspector, &file, member.as_deref(), timeout).await?;
                match common.output {
                    Output::Json => print_json(&report)?,
                    Output::Table => outln!(
                        "snapshot of {} ({}) at revision {} or later saved to {}: {} bytes, sha256 {} \
                         verified, {:.1}s",
                        report.member,
                        report.endpoint,
                        report.revision,
                        report.file.display(),
                        report.db_bytes,
                        report.sha256,
                        report.seconds
                    ),
                }
                Ok(0)
            }
            SnapshotCommand::Verify { file, output } => {
                let v = snapshot_file::verify_file(&file).await?;
                match output {
                    Output::Json => print_json(&v)?,
                    Output::Table => outln!(
                        "{}: {} bytes of database, sha256 {} matches its trailer",
                        file.display(),
                        v.db_bytes,
                        v.sha256
                    ),
                }
                Ok(0)
            }
        },
    }
}

fn plan_text(steps: &[defrag::Step], dry_run: bool, all: bool) -> String {
    let mut out = String::new();
    if steps.is_empty() {
        out.push_str(if all {
            "no member to defragment\n"
        } else {
            "no member's fragmentation meets the defragmentation rule: nothing to do (--all to \
             defragment anyway)\n"
        });
        return out;
    }
    out.push_str(if dry_run {
        "plan (dry run, nothing changed):\n"
    } else {
        "plan:\n"
    });
    for (i, s) in steps.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {} ({:?}, {}): db {}, in use {}: {}\n",
            i + 1,
            s.name,
            s.role,
            s.endpoint,
            render::human_bytes(s.db_size_bytes),
            render::human_bytes(s.db_size_in_use_bytes),
            s.reason
        ));
    }
    out
}
