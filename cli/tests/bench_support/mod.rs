//! Helpers shared by the bench's integration tests: run the real binary against a real cluster, read
//! what etcd itself says about revisions and keys.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

pub const PREFIX: &str = "/etcd-monitor-bench/";

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_etcd-monitor")
}

/// `etcd-monitor bench <args>` with the cluster's connection flags, waited for (killed after 2 minutes,
/// so that a hang fails the test instead of stalling the suite).
pub fn bench(cluster: &etcd_testkit::Cluster, args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .arg("bench")
        .args(args)
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .env_remove("ENDPOINTS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etcd-monitor runs");
    // Drained by threads, so that a chatty child never blocks on a full pipe while we wait.
    let drain = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            r.read_to_end(&mut buf).ok();
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let o = Output {
        status,
        stdout: out.join().expect("stdout thread"),
        stderr: err.join().expect("stderr thread"),
    };
    assert!(
        std::time::Instant::now() <= deadline,
        "etcd-monitor bench {args:?} did not finish within 2 minutes\nstdout:\n{}\nstderr:\n{}",
        stdout(&o),
        stderr(&o)
    );
    o
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The JSON report of a `--output json` run that must have succeeded.
pub fn json_ok(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", stdout(o)))
}

fn etcdctl_json(cluster: &etcd_testkit::Cluster, args: &[&str]) -> serde_json::Value {
    let out = cluster.etcdctl(args).expect("etcdctl");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("etcdctl {args:?}: not JSON ({e}): {out}"))
}

/// The cluster's current revision, as etcdctl reads it.
pub fn revision(cluster: &etcd_testkit::Cluster) -> i64 {
    etcdctl_json(cluster, &["get", "/", "-w", "json"])["header"]["revision"]
        .as_i64()
        .expect("revision")
}

/// Keys under `prefix`, now or at revision `rev`, as etcdctl counts them (the JSON omits a zero count).
pub fn keys_at(cluster: &etcd_testkit::Cluster, prefix: &str, rev: Option<i64>) -> i64 {
    let rev_flag = format!("--rev={}", rev.unwrap_or(0));
    let v = etcdctl_json(
        cluster,
        &[
            "get",
            prefix,
            "--prefix",
            "--keys-only",
            "--limit=1",
            &rev_flag,
            "-w",
            "json",
        ],
    );
    v["count"].as_i64().unwrap_or(0)
}

pub fn wait_until(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn get_f64(v: &serde_json::Value, path: &[&str]) -> f64 {
    let mut x = v;
    for p in path {
        x = &x[*p];
    }
    x.as_f64()
        .unwrap_or_else(|| panic!("{path:?} is not a number in {v}"))
}

/// SIGTERM to a child, through the shell's kill builtin (no procps needed).
pub fn sigterm(pid: u32) {
    let ok = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .status()
        .expect("sh")
        .success();
    assert!(ok, "kill -TERM {pid}");
}
