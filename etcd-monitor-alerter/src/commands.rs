//! `alerter check rules`, `alerter check config` and `alerter test`: promtool's commands, with its
//! output and exit codes; `alerter check notify-config`: amtool's `check-config`.

use std::io::Write;
use std::path::PathBuf;

use crate::rules::load_rule_file;
use crate::unittest::run_file;

/// `promtool check rules`: 0 when every file is valid, 1 otherwise. Duplicate rules are reported as
/// promtool's lint does, without failing.
pub fn check_rules(files: &[PathBuf]) -> u8 {
    // Rule files written for Prometheus 2.42 may use its functions that promql-parser lacks.
    promql::register_prometheus_2_42_functions();
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for f in files {
        let _ = writeln!(out, "Checking {}", f.display());
        match load_rule_file(f) {
            Ok((groups, lint)) => {
                let n: usize = groups.iter().map(|g| g.rules.len()).sum();
                if lint.duplicates.is_empty() {
                    let _ = writeln!(out, "  SUCCESS: {n} rules found");
                } else {
                    let _ = out.flush();
                    let mut text = format!(
                        "lint error {} duplicate rule(s) found.\n",
                        lint.duplicates.len()
                    );
                    for (name, labels) in &lint.duplicates {
                        text.push_str(&format!("Metric: {name}\nLabel(s):\n"));
                        for (k, v) in labels {
                            text.push_str(&format!("\t{k}: {v}\n"));
                        }
                    }
                    text.push_str("Might cause inconsistency while recording expressions");
                    eprintln!("  FAILED:\n{text}");
                }
            }
            Err(errors) => {
                failed = true;
                let _ = out.flush();
                eprintln!("  FAILED:");
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
        let _ = writeln!(out);
    }
    u8::from(failed)
}

/// `promtool check config`: each configuration file as the alerter reads it (scrape targets through
/// relabelling, secrets and TLS files, the Alertmanagers), then the rule files it names. 0 when all is
/// valid, 1 otherwise.
pub fn check_config(files: &[PathBuf]) -> u8 {
    promql::register_prometheus_2_42_functions();
    let mut failed = false;
    for f in files {
        let _ = writeln!(std::io::stdout(), "Checking {}", f.display());
        let checked = crate::daemon::config::load_config(Some(f))
            .map_err(|e| e.to_string())
            .and_then(|cfg| {
                crate::daemon::forward::AlertmanagerForwarder::new(
                    &cfg.alerting,
                    &cfg.base_dir,
                    crate::daemon::forward::ForwarderOptions::default(),
                )
                .map_err(|e| format!("{}: {e:#}", f.display()))?;
                Ok(cfg)
            });
        match checked {
            Ok(cfg) => {
                let _ = writeln!(
                    std::io::stdout(),
                    " SUCCESS: {} is valid prometheus config file syntax\n",
                    f.display()
                );
                if check_rules(&cfg.rule_files) != 0 {
                    failed = true;
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("  FAILED: {e}\n");
            }
        }
    }
    u8::from(failed)
}

/// `amtool check-config`: each Alertmanager configuration as the notifier reads it (routes,
/// receivers, templates, time intervals, secrets). 0 when all are valid, 1 otherwise.
pub fn check_notify_config(files: &[PathBuf]) -> u8 {
    let mut failed = false;
    for f in files {
        match etcd_monitor_notify::NotifyConfig::load(f) {
            Ok(c) => {
                let _ = writeln!(
                    std::io::stdout(),
                    "Checking '{}'  SUCCESS\nFound:\n - global config\n - route\n - {} inhibit rules\n - {} receivers\n - {} time intervals\n",
                    f.display(),
                    c.inhibit_rules.len(),
                    c.receivers.len(),
                    c.time_intervals.len()
                );
            }
            Err(e) => {
                failed = true;
                eprintln!("Checking '{}'  FAILED: {e}\n", f.display());
            }
        }
    }
    u8::from(failed)
}

/// `promtool test rules`: 0 when every test of every file passes, 1 otherwise.
pub fn test_rules(files: &[PathBuf]) -> u8 {
    promql::register_prometheus_2_42_functions();
    let mut failed = false;
    for f in files {
        println!("Unit Testing:  {}", f.display());
        let outcome = run_file(f);
        if outcome.passed() {
            println!("  SUCCESS");
        } else {
            failed = true;
            let _ = std::io::stdout().flush();
            eprintln!("  FAILED:");
            for e in &outcome.errors {
                eprintln!("{e}");
            }
        }
        println!();
    }
    u8::from(failed)
}
