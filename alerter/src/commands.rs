//! `alerter check rules` and `alerter test`: promtool's two rule commands, same output and exit codes.

use std::io::Write;
use std::path::PathBuf;

use crate::rules::load_rule_file;
use crate::unittest::run_file;

/// `promtool check rules`: 0 when every file is valid, 1 otherwise. Duplicate rules are reported as
/// promtool's lint does, without failing.
pub fn check_rules(files: &[PathBuf]) -> u8 {
    // Rule files written for Prometheus 2.42 may use its functions that promql-parser lacks.
    etcd_monitor_promql::register_prometheus_2_42_functions();
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

/// `promtool test rules`: 0 when every test of every file passes, 1 otherwise.
pub fn test_rules(files: &[PathBuf]) -> u8 {
    etcd_monitor_promql::register_prometheus_2_42_functions();
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
