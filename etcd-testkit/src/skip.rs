//! Honest skips: a test whose peer (etcd 3.5, promtool, Alertmanager, a Python package, the `../shared`
//! reference case...) is missing must not pass quietly.
//!
//! Under `CI=true` (CI always sets it) a missing peer fails the test: CI installs every peer, so one that
//! is absent there is a broken set-up, never a reason to test less. Elsewhere the test prints a loud
//! `SKIP` line past the test harness' output capture, and appends it to the file named by
//! `ETCD_MONITOR_SKIP_LOG`, from which `make test` prints its summary line ("make test: 2 skipped: ...").
//!
//! Usage: find the peer with [`program`], [`python_module`] or [`shared_reference`]; when it is missing,
//! call [`skip`] and return (or leave out only the part that needs it, and say so in the reason).
//!
//! ```no_run
//! fn promtool_agrees() {
//!     let promtool = match etcd_testkit::skip::program("promtool", "prometheus") {
//!         Ok(p) => p,
//!         Err(why) => return etcd_testkit::skip::skip(&why),
//!     };
//!     // ...
//! # let _ = promtool;
//! }
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};

/// The environment variable naming the file that collects skips (one line each).
pub const SKIP_LOG_ENV: &str = "ETCD_MONITOR_SKIP_LOG";

/// True when running under CI (`CI=true`), where nothing may be skipped.
pub fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The current test lacks `why` (a peer, and how to install it). Fails the test under `CI=true`;
/// elsewhere prints `SKIP <test>: <why>` where the developer sees it and records it for the summary.
#[track_caller]
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test)")
        .to_string();
    if under_ci() {
        panic!("{test}: {why}; under CI=true a missing peer fails the test (scripts/deps.sh installs every peer)");
    }
    let line = format!("SKIP {test}: {why}");
    // Straight to the stderr handle: libtest captures eprintln! of passing tests, which would hide it.
    let _ = writeln!(std::io::stderr(), "\n*** {line} ***");
    if let Ok(path) = std::env::var(SKIP_LOG_ENV) {
        // One short write in append mode: lines from concurrent test processes do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// A program on `PATH`, or why it is missing (naming the Debian package that brings it).
pub fn program(name: &str, package: &str) -> Result<PathBuf, String> {
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(format!(
        "{name} is not installed (Debian package {package}; scripts/deps.sh installs it)"
    ))
}

/// Whether python3 can import `module`, or why not (naming the PyPI package that brings it).
pub fn python_module(module: &str, package: &str) -> Result<(), String> {
    let ok = std::process::Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "python3 cannot import {module} (PyPI package {package}; scripts/deps.sh installs it)"
        ))
    }
}

/// A reference case kept outside the repository, in `../shared/<relative>` beside the checkout (the etcd
/// mixin's own rules and tests), or why it is missing.
pub fn shared_reference(relative: &str) -> Result<PathBuf, String> {
    let p = workspace_root().join("../shared").join(relative);
    if p.exists() {
        Ok(p)
    } else {
        Err(format!(
            "the reference case ../shared/{relative} is absent ({} does not exist)",
            p.display()
        ))
    }
}

/// The checkout's root: the nearest folder above this crate whose Cargo.toml declares the workspace.
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .skip(1)
        .find(|d| {
            std::fs::read_to_string(d.join("Cargo.toml")).is_ok_and(|t| t.contains("[workspace]"))
        })
        .unwrap_or(here)
        .to_path_buf()
}
