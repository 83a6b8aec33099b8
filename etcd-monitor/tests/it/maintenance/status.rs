//! `etcd-monitor status` against real clusters (etcd 3.4 and 3.5): the table and the JSON compared with
//! etcdctl's own view, a member stopped, quorum lost, a NOSPACE alarm, wrong endpoints and credentials,
//! and the exit codes scripts rely on.

use std::process::Command;

use super::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

fn member<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("member {name} not in the report: {report}"))
}

/// The table row of a member: the line that starts with its name.
fn row<'a>(table: &'a str, name: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name}:\n{table}"))
}

async fn healthy(version: EtcdVersion) {
    let cluster = Cluster::start(ClusterOptions::new(3, version))
        .await
        .unwrap();
    let leader = cluster.leader_index().await.unwrap();
    cluster.etcdctl(&["put", "/k", "v"]).unwrap();

    let o = run(&cluster, &["status", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report = json(&o);
    assert_eq!(report["state"], "healthy");
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["members"].as_array().unwrap().len(), 3);
    assert_eq!(report["verdict"]["fault_tolerance"], 1);
    assert_eq!(report["verdict"]["quorum_size"], 2);
    assert_eq!(report["verdict"]["split_brain"], false);
    assert_eq!(
        report["verdict"]["leader_name"],
        cluster.members[leader].name
    );
    // status is read-only by default: no write probe.
    for m in report["members"].as_array().unwrap() {
        assert!(
            m["probes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["op"] != "write"),
            "{m}"
        );
    }
    // What etcd itself says about each member (etcdctl endpoint status) agrees with the report.
    for i in 0..3 {
        let etcd = etcd_view(&cluster, i);
        let m = member(&report, &cluster.members[i].name);
        assert_eq!(m["id"], etcd.id.as_str());
        assert_eq!(m["status"]["version"], etcd.version.as_str());
        assert_eq!(m["status"]["leader"], etcd.leader.as_str());
        assert_eq!(m["status"]["raft_term"], etcd.raft_term);
        assert_eq!(m["status"]["revision"], etcd.revision);
        assert_eq!(m["status"]["is_leader"], i == leader);
        assert_eq!(m["endpoint"], cluster.client_url(i).as_str());
    }
    // The quota comes from the members' /metrics: etcd's default is 2 GiB.
    assert_eq!(member(&report, "m0")["quota_bytes"], 2u64 << 30);

    let o = run(&cluster, &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let table = stdout(&o);
    let header = table.lines().next().unwrap();
    for col in [
        "NAME",
        "ID",
        "ENDPOINT",
        "VERSION",
        "LEADER",
        "LEARNER",
        "RAFT TERM",
        "RAFT INDEX",
        "APPLIED INDEX",
        "REVISION",
        "DB SIZE",
        "IN USE",
        "QUOTA %",
        "ALARMS",
        "PROBE",
        "ERRORS",
    ] {
        assert!(header.contains(col), "column {col} missing: {header}");
    }
    for i in 0..3 {
        let etcd = etcd_view(&cluster, i);
        let r = row(&table, &cluster.members[i].name);
        let cells: Vec<&str> = r.split_whitespace().collect();
        assert_eq!(cells[1], etcd.id, "{r}");
        assert_eq!(cells[2], cluster.client_url(i), "{r}");
        assert_eq!(cells[3], etcd.version, "{r}");
        assert_eq!(cells[4], if i == leader { "yes" } else { "no" }, "{r}");
    }
    assert!(
        table.contains("fault tolerance:    1 member(s) can fail"),
        "{table}"
    );
    assert!(table.contains("split brain:        no"), "{table}");
    assert!(
        table.contains("state:              healthy (exit 0)"),
        "{table}"
    );
    // Not a terminal: no colours.
    assert!(!table.contains('\x1b'), "{table}");
    let o = run(&cluster, &["status", "--color=always"]);
    assert!(stdout(&o).contains("\x1b[32m"), "{}", show(&o));
    // Nothing was written so far; with --probe-write, one probe key per member.
    let probe_keys = || {
        cluster
            .etcdctl(&["get", "--prefix", "/etcd-monitor/probe/", "--keys-only"])
            .unwrap()
            .lines()
            .filter(|l| !l.is_empty())
            .count()
    };
    assert_eq!(probe_keys(), 0);
    let o = run(&cluster, &["status", "-o", "json", "--probe-write"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report = json(&o);
    for m in report["members"].as_array().unwrap() {
        let write = m["probes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["op"] == "write")
            .unwrap_or_else(|| panic!("no write probe: {m}"));
        assert_eq!(write["success"], true, "{m}");
    }
    assert_eq!(probe_keys(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_cluster_3_5() {
    healthy(EtcdVersion::V3_5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn healthy_cluster_3_4() {
    healthy(EtcdVersion::V3_4).await;
}

async fn member_down_then_quorum_lost(version: EtcdVersion) {
    let mut cluster = Cluster::start(ClusterOptions::new(3, version))
        .await
        .unwrap();
    let leader = cluster.leader_index().await.unwrap();
    let victim = (leader + 1) % 3;
    cluster.kill(victim).unwrap();
    let name = cluster.members[victim].name.clone();

    let o = run(&cluster, &["status", "-o", "json", "--dial-timeout=1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let report = json(&o);
    assert_eq!(report["state"], "degraded");
    assert_eq!(report["verdict"]["fault_tolerance"], 0);
    assert_eq!(report["verdict"]["has_leader"], true);
    let m = member(&report, &name);
    assert!(m["status"].is_null(), "{m}");
    assert!(m["error"].is_string(), "{m}");

    let o = run(&cluster, &["status", "--dial-timeout=1s"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let table = stdout(&o);
    let r = row(&table, &name);
    // The stopped member: no version, no leader flag, and an error.
    let cells: Vec<&str> = r.split_whitespace().collect();
    assert_eq!(cells[3], "-", "{r}");
    assert!(r.len() > 60, "{r}");
    assert!(
        table.contains(&format!("member {name} does not answer")),
        "{table}"
    );
    assert!(table.contains("(no spare member)"), "{table}");
    assert!(
        table.contains("state:              degraded (exit 1)"),
        "{table}"
    );

    // Two of three down: the survivor has no quorum.
    let other = (0..3).find(|i| *i != victim && *i != leader).unwrap();
    cluster.kill(other).unwrap();
    let o = run(&cluster, &["status", "-o", "json", "--dial-timeout=1s"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let report = json(&o);
    assert_eq!(report["state"], "no_quorum");
    assert!(report["verdict"]["fault_tolerance"].as_i64().unwrap() < 0);
    let o = run(&cluster, &["status", "--dial-timeout=1s"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(stdout(&o).contains("quorum lost"), "{}", show(&o));

    // All down: one error line, exit 2.
    cluster.kill(leader).unwrap();
    let o = run(&cluster, &["status", "--dial-timeout=1s"]);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let line = one_error_line(&o);
    assert!(line.contains(&cluster.client_url(0)), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn member_down_then_quorum_lost_3_4() {
    member_down_then_quorum_lost(EtcdVersion::V3_4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn member_down_then_quorum_lost_3_5() {
    member_down_then_quorum_lost(EtcdVersion::V3_5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_endpoint_and_wrong_password_are_one_line_and_exit_2() {
    let port = etcd_testkit::free_port().unwrap();
    let o = Command::new(bin())
        .args(["status", "--dial-timeout=1s"])
        .arg(format!("--endpoints=127.0.0.1:{port}"))
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let line = one_error_line(&o);
    assert!(line.contains(&port.to_string()), "{line}");
    assert!(stdout(&o).is_empty(), "{}", show(&o));

    let o = Command::new(bin())
        .args([
            "defrag",
            "--endpoints=127.0.0.1:2379",
            "--cert=/nonexistent.pem",
        ])
        .env("LOG_LEVEL", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    let line = one_error_line(&o);
    assert!(line.contains("--key"), "{line}");

    let mut options = ClusterOptions::new(1, EtcdVersion::V3_5);
    options.auth = true;
    let cluster = Cluster::start(options).await.unwrap();
    for sub in [&["status"][..], &["alarm", "list"], &["compact"]] {
        let o = Command::new(bin())
            .args(sub)
            .arg(format!("--endpoints={}", cluster.client_url(0)))
            .args(["--username=root", "--password=wrong"])
            .env("LOG_LEVEL", "warn")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{sub:?}: {}", show(&o));
        let line = one_error_line(&o);
        assert!(line.contains("root"), "{line}");
        assert!(line.contains("authentication failed"), "{line}");
    }
    // With the right password the same cluster is healthy.
    let o = run(&cluster, &["status", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
}
