//! Helpers shared by the maintenance integration tests: run the real binary against a real cluster, and
//! read what etcd itself (etcdctl) says, to compare.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use etcd_testkit::Cluster;
use serde_json::Value;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_etcd-monitor")
}

/// `etcd-monitor <args>` with the cluster's connection flags, waited for.
pub fn run(cluster: &Cluster, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin());
    cmd.args(args)
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .env_remove("ENDPOINTS")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null());
    cmd.output().expect("etcd-monitor runs")
}

/// Same, off the async runtime's threads (for tests that keep a load running meanwhile).
pub async fn run_async(cluster: &Cluster, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(bin());
    cmd.args(args)
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .env_remove("ENDPOINTS")
        .stdin(Stdio::null());
    cmd.output().await.expect("etcd-monitor runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    )
}

/// The JSON on stdout, with the exit code it came with.
pub fn json(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", show(o)))
}

/// The single `etcd-monitor: error:` line of a failed run (and no panic).
pub fn one_error_line(o: &Output) -> String {
    let err = stderr(o);
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("etcd-monitor: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected:\n{}", show(o));
    lines[0].to_string()
}

/// `etcdctl endpoint status -w json` for the given client URLs: etcd's own view of each member.
pub fn endpoint_status(cluster: &Cluster, urls: &[String]) -> Vec<Value> {
    let mut cmd = Command::new(cluster.options.version.etcdctl().expect("etcdctl"));
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", urls.join(",")))
        .args(["endpoint", "status", "-w", "json"]);
    if let Some(c) = &cluster.certs {
        cmd.arg(format!("--cacert={}", c.ca_cert.display()))
            .arg(format!("--cert={}", c.client_cert.display()))
            .arg(format!("--key={}", c.client_key.display()));
    }
    if cluster.options.auth {
        cmd.arg(format!("--user=root:{}", etcd_testkit::ROOT_PASSWORD));
    }
    let out = cmd.output().expect("etcdctl runs");
    assert!(
        out.status.success(),
        "etcdctl endpoint status: {}",
        show(&out)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("etcdctl JSON");
    v.as_array().expect("an array").clone()
}

/// etcd's view of member `i`: (member id in hex, db size, db size in use, leader id in hex, raft term).
pub struct EtcdView {
    pub id: String,
    pub db_size: i64,
    pub in_use: i64,
    pub leader: String,
    pub raft_term: u64,
    pub revision: i64,
    pub version: String,
}

pub fn etcd_view(cluster: &Cluster, i: usize) -> EtcdView {
    let v = &endpoint_status(cluster, &[cluster.client_url(i)])[0]["Status"];
    EtcdView {
        id: format!(
            "{:x}",
            v["header"]["member_id"].as_u64().expect("member_id")
        ),
        db_size: v["dbSize"].as_i64().expect("dbSize"),
        in_use: v["dbSizeInUse"].as_i64().expect("dbSizeInUse"),
        leader: format!("{:x}", v["leader"].as_u64().expect("leader")),
        raft_term: v["raftTerm"]
            .as_u64()
            .or_else(|| v["header"]["raft_term"].as_u64())
            .expect("raft term"),
        revision: v["header"]["revision"].as_i64().expect("revision"),
        version: v["version"].as_str().expect("version").to_string(),
    }
}

/// Every member's status (etcdctl's JSON), read until each one's `Status` passes `ok`.
fn statuses_when(
    cluster: &Cluster,
    urls: &[String],
    what: &str,
    ok: impl Fn(&Value) -> bool,
) -> anyhow::Result<Vec<Value>> {
    etcd_testkit::wait_for_blocking(what, Duration::from_secs(30), || {
        let status = endpoint_status(cluster, urls);
        status.iter().all(|s| ok(&s["Status"])).then_some(status)
    })
}

/// Writes 256 KiB values under `prefix` until every member's database (as etcd reports it) reaches
/// `target_bytes`, overshooting it by as little as it can: members' files differ by a few percent, and
/// etcd checks the quota on each.
///
/// The sizes etcd reports lag behind: a member's `dbSize` is updated when its backend commits (every
/// 100 ms by default), not when it applies a write. Sizes are read once every member has applied the
/// last write, and a round never writes more than half of what the largest member lacks by its
/// report, nor more than half of what the values written so far lack (a database holds at least its
/// values): stale reports cannot make it write much past the target. Once the values alone reach the
/// target it only waits for the reports to catch up.
pub async fn fill(cluster: &Cluster, prefix: &str, target_bytes: i64) -> usize {
    let mut client = cluster.client().await.expect("client");
    let value = vec![b'v'; 256 << 10];
    let urls = cluster.client_urls();
    let mut written = 0;
    let mut revision = 0;
    loop {
        let status = statuses_when(
            cluster,
            &urls,
            "every member to apply the last write",
            |s| s["header"]["revision"].as_i64() >= Some(revision),
        )
        .unwrap();
        let sizes: Vec<i64> = status
            .iter()
            .map(|s| s["Status"]["dbSize"].as_i64().expect("dbSize"))
            .collect();
        let smallest = sizes.iter().copied().min().expect("members");
        let largest = sizes.iter().copied().max().expect("members");
        if smallest >= target_bytes {
            return written;
        }
        let values_bytes = (written * value.len()) as i64;
        if values_bytes >= target_bytes {
            // Enough is written; the reports are behind.
            statuses_when(
                cluster,
                &urls,
                "every member to report the size it holds",
                |s| s["dbSize"].as_i64() >= Some(target_bytes),
            )
            .expect("a database holds at least the values written to it");
            return written;
        }
        let lacking = (target_bytes - largest.max(values_bytes)).max(0) as usize;
        for _ in 0..(lacking / value.len() / 2).max(1) {
            let put = client
                .put(format!("{prefix}{written:05}"), value.clone(), None)
                .await
                .expect("put while filling");
            revision = put.header().expect("a put's header").revision();
            written += 1;
        }
    }
}
