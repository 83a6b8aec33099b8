//! The alerter's unit-test runner against promtool, the reference: our own test files must pass both, and a
//! deliberately wrong expectation must fail both with the same report.

use std::path::{Path, PathBuf};
use std::process::Command;

use etcd_monitor_alerter::unittest::run_file;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool")
}

/// promtool, the reference; when it is missing the comparison with it is left out, which fails the
/// test under `CI=true` and is a counted skip elsewhere.
fn promtool() -> Option<PathBuf> {
    match etcd_testkit::skip::program("promtool", "prometheus") {
        Ok(p) => Some(p),
        Err(why) => {
            etcd_testkit::skip::skip(&format!("{why}: the comparison with promtool left out"));
            None
        }
    }
}

/// promtool's failure report: its stderr lines after "FAILED:", blank lines dropped.
fn promtool_report(file: &Path) -> (bool, Vec<String>) {
    let out = Command::new("promtool")
        .args(["test", "rules"])
        .arg(file)
        .output()
        .expect("run promtool");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && l.trim() != "FAILED:")
        .map(str::to_string)
        .collect();
    (out.status.success(), lines)
}

fn our_report(file: &Path) -> (bool, Vec<String>) {
    let o = run_file(file);
    let lines = o
        .errors
        .join("\n")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    (o.passed(), lines)
}

#[test]
fn own_test_files_pass_like_promtool() {
    let file = data().join("tests.yml");
    let (ok, report) = our_report(&file);
    assert!(ok, "alerter test failed:\n{}", report.join("\n"));
    if promtool().is_some() {
        let (ok, report) = promtool_report(&file);
        assert!(
            ok,
            "promtool disagrees with the expectations:\n{}",
            report.join("\n")
        );
    }
}

#[test]
fn wrong_expectations_fail_with_promtools_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data().join("rules.yml"), dir.path().join("rules.yml")).unwrap();
    let text = std::fs::read_to_string(data().join("tests.yml")).unwrap();
    let wrong = text
        .replace("            value: 480", "            value: 481")
        .replace("summary: 'rate of api is 8 (8/s)'", "summary: 'rate of api is 9'")
        .replace("exp_annotations: {value: '1 x'}", "exp_annotations: {value: '2 x'}")
        .replace("- eval_time: 8m\n        alertname: HighRequestRate\n", "- eval_time: 8m\n        alertname: HighRequestRate\n        exp_alerts: [{exp_labels: {job: api}}]\n");
    assert_ne!(wrong, text);
    let file = dir.path().join("tests.yml");
    std::fs::write(&file, wrong).unwrap();
    let (ok, ours) = our_report(&file);
    assert!(!ok);
    assert!(ours.iter().any(|l| l.contains("4.81E+02")), "{ours:#?}");
    assert!(
        ours.iter()
            .any(|l| l.contains("alertname: HighRequestRate, time: 8m")),
        "{ours:#?}"
    );
    if promtool().is_some() {
        let (ok, theirs) = promtool_report(&file);
        assert!(!ok);
        assert_eq!(
            ours,
            theirs,
            "\nours:\n{}\n\npromtool:\n{}",
            ours.join("\n"),
            theirs.join("\n")
        );
    }
}

/// The project's own rule tests (rules/tests/*.yml): the alerter reaches promtool's verdict with
/// promtool's report, file by file.
#[test]
fn project_rule_tests_agree_with_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/tests");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (the rule tests are in the repository)",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    files.sort();
    for file in files {
        let (ok, ours) = our_report(&file);
        match promtool() {
            Some(_) => {
                let (p_ok, theirs) = promtool_report(&file);
                assert_eq!((ok, &ours), (p_ok, &theirs), "{}", file.display());
            }
            None => assert!(ok, "{}:\n{}", file.display(), ours.join("\n")),
        }
    }
}

/// A rule that fails at evaluation stops the test group with promtool's `rule: ..., time: ..., err: ...`.
#[test]
fn evaluation_errors_reported_like_promtool() {
    let file = data().join("eval_error.yml");
    let (ok, ours) = our_report(&file);
    assert!(!ok);
    assert!(
        ours.iter()
            .any(|l| l.starts_with("    rule: bad, time: 1m0s, err: ")
                && l.contains("many-to-many matching not allowed")),
        "{ours:#?}"
    );
    if promtool().is_some() {
        let (p_ok, theirs) = promtool_report(&file);
        assert_eq!((ok, ours), (p_ok, theirs));
    }
}
