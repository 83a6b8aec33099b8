//! Helpers shared by the bench's integration tests: run the real binary against a real cluster, read
//! what etcd itself says about revisions and keys.

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

/// `etcd-monitor bench <args>` as a daemon on a free loopback port, its log in a file; killed on drop.
pub struct Daemon {
    pub child: etcd_testkit::KillOnDrop,
    pub base: String,
    log: tempfile::NamedTempFile,
}

impl Daemon {
    /// Starts the daemon and waits until it answers.
    pub async fn start(cluster: &etcd_testkit::Cluster, args: &[&str]) -> Daemon {
        let port = etcd_testkit::free_port().expect("free port");
        let log = tempfile::NamedTempFile::new().expect("log file");
        let child = Command::new(bin())
            .arg("bench")
            .args(args)
            .arg(format!("--listen=127.0.0.1:{port}"))
            .args(cluster.connection_args())
            .env("LOG_LEVEL", "info")
            .env_remove("ENDPOINTS")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().expect("log file"))
            .spawn()
            .expect("etcd-monitor runs");
        let daemon = Daemon {
            child: etcd_testkit::KillOnDrop(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        if let Err(e) =
            etcd_testkit::wait_http_ok(&daemon.url("/healthz"), Duration::from_secs(20)).await
        {
            panic!("the daemon did not answer: {e}\n{}", daemon.log());
        }
        daemon
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the daemon logged so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// SIGTERM, then waits (at most `within`) for the exit status.
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        sigterm(self.child.0.id());
        let stopped = etcd_testkit::wait_for_blocking("the daemon to stop", within, || {
            self.child.0.try_wait().expect("wait")
        });
        stopped.unwrap_or_else(|e| panic!("{e}\n{}", self.log()))
    }

    pub async fn metrics(&self) -> String {
        match reqwest::get(self.url("/metrics")).await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }
}

/// The value of the first sample of `name` that has all `labels`, from a text exposition. A test-only
/// lookup: which sample carries which value is all it needs to know.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
