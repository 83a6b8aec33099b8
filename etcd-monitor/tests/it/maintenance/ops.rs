//! `etcd-monitor compact`, `alarm list|disarm` and `snapshot save|verify` against real clusters: a
//! NOSPACE alarm seen by status and cleared by compact + defrag + disarm, compaction checked by what
//! etcd still serves, and snapshots that etcd's own tools accept (and a corrupted one they and we
//! reject).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::support::*;
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

/// `etcdctl alarm list` as (member id in hex, alarm) pairs: etcd's own list.
fn etcdctl_alarms(cluster: &Cluster) -> Vec<(String, String)> {
    let out = cluster.etcdctl(&["alarm", "list"]).unwrap();
    let mut alarms: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| {
            let (id, alarm) = l.strip_prefix("memberID:")?.split_once(" alarm:")?;
            Some((
                format!("{:x}", id.trim().parse::<u64>().ok()?),
                alarm.trim().to_string(),
            ))
        })
        .collect();
    alarms.sort();
    alarms
}

async fn nospace_then_recovery(version: EtcdVersion) {
    let mut options = ClusterOptions::new(3, version);
    options.quota_backend_bytes = Some(4 << 20);
    let cluster = Cluster::start(options).await.unwrap();
    let mut client = cluster.client().await.unwrap();
    let value = vec![b'x'; 1 << 20];
    let mut raised = false;
    for i in 0..64 {
        if let Err(e) = client.put(format!("/fill/{i}"), value.clone(), None).await {
            assert!(e.to_string().contains("space"), "unexpected error: {e}");
            raised = true;
            break;
        }
    }
    assert!(raised, "etcd never raised NOSPACE with a 4 MiB quota");
    // Every member that hits the quota before the first alarm is applied raises its own (etcd's
    // applyEntryNormal), so the list can still grow after the refused put. It never shrinks until the
    // disarm: our report must hold at least what etcd listed before it and at most what etcd lists after.
    let listed_before = etcdctl_alarms(&cluster);
    assert!(!listed_before.is_empty());

    let o = run(&cluster, &["status", "-o", "json"]);
    let listed_after = etcdctl_alarms(&cluster);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let report = json(&o);
    assert_eq!(report["state"], "degraded");
    assert_eq!(report["verdict"]["alarms_active"], true);
    assert_eq!(report["verdict"]["has_leader"], true);
    let mut seen: Vec<(String, String)> = report["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["member_id"].as_str().unwrap().to_string(),
                a["alarm"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert!(
        listed_before.iter().all(|a| seen.contains(a)) && seen.iter().all(|a| listed_after.contains(a)),
        "status reported {seen:?}; etcdctl listed {listed_before:?} before and {listed_after:?} after"
    );

    let o = run(&cluster, &["status"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let table = stdout(&o);
    for (id, alarm) in &listed_before {
        let row = table
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(id.as_str()))
            .unwrap_or_else(|| panic!("no row for {id}:\n{table}"));
        assert!(row.contains(alarm.as_str()), "{row}");
    }
    assert!(table.contains("alarms:             NOSPACE on"), "{table}");

    let o = run(&cluster, &["alarm", "list"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    for (id, alarm) in &listed_before {
        assert!(
            stdout(&o).contains(&format!("memberID:{id} ")) && stdout(&o).contains(alarm.as_str()),
            "{}",
            show(&o)
        );
    }

    // etcd's space-quota recovery: free the keys, compact, defragment, disarm.
    cluster.etcdctl(&["del", "--prefix", "/fill/"]).unwrap();
    let o = run(&cluster, &["compact", "--physical"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = run(&cluster, &["defrag", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = run(&cluster, &["alarm", "disarm"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(stdout(&o).contains("disarmed NOSPACE"), "{}", show(&o));
    assert!(etcdctl_alarms(&cluster).is_empty());
    cluster
        .etcdctl(&["put", "/after", "writes work again"])
        .unwrap();
    let o = run(&cluster, &["status", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let o = run(&cluster, &["alarm", "list"]);
    assert_eq!(stdout(&o).trim(), "no active alarm", "{}", show(&o));
}

#[tokio::test(flavor = "multi_thread")]
async fn nospace_alarm_status_then_recovery_3_5() {
    nospace_then_recovery(EtcdVersion::V3_5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nospace_alarm_status_then_recovery_3_4() {
    nospace_then_recovery(EtcdVersion::V3_4).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compact_keeps_the_requested_history() {
    let cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_4))
        .await
        .unwrap();
    for i in 0..10 {
        cluster.etcdctl(&["put", "/c", &format!("v{i}")]).unwrap();
    }
    let rev = etcd_view(&cluster, 0).revision;
    let o = run(&cluster, &["compact", "--keep=5", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report = json(&o);
    assert_eq!(report["current_revision"], rev);
    assert_eq!(report["compacted_to"], rev - 5);
    // What etcd serves: history from the compaction revision on, nothing before.
    let kept = cluster
        .etcdctl(&["get", "/c", &format!("--rev={}", rev - 5)])
        .unwrap();
    assert!(kept.contains("v4"), "{kept}");
    let gone = cluster
        .etcdctl(&["get", "/c", &format!("--rev={}", rev - 6)])
        .unwrap_err()
        .to_string();
    assert!(gone.contains("compacted"), "{gone}");

    // The same compaction again: already done, nothing to do.
    let o = run(&cluster, &["compact", "--keep=5"]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        one_error_line(&o).contains("already compacted"),
        "{}",
        show(&o)
    );
    let o = run(&cluster, &["compact", &format!("--keep={}", rev + 10)]);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        one_error_line(&o).contains("nothing to compact"),
        "{}",
        show(&o)
    );
}

fn etcdutl(version: EtcdVersion) -> PathBuf {
    let ctl = version.etcdctl().unwrap();
    match version {
        // etcd 3.5 moved the offline snapshot commands to etcdutl.
        EtcdVersion::V3_5 => ctl.with_file_name("etcdutl"),
        EtcdVersion::V3_4 => ctl,
    }
}

/// `snapshot status -w json` by etcd's own tool.
fn snapshot_status(version: EtcdVersion, file: &Path) -> Result<serde_json::Value, String> {
    let o = Command::new(etcdutl(version))
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(show(&o));
    }
    serde_json::from_slice(&o.stdout).map_err(|e| format!("{e}: {}", show(&o)))
}

/// `snapshot restore` by etcd's own tool, which checks the sha256 trailer.
fn restore(version: EtcdVersion, file: &Path, dir: &Path) -> Result<(), String> {
    let o = Command::new(etcdutl(version))
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(file)
        .arg(format!("--data-dir={}", dir.display()))
        .output()
        .unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(show(&o))
    }
}

async fn snapshots(version: EtcdVersion) {
    let cluster = Cluster::start(ClusterOptions::new(3, version))
        .await
        .unwrap();
    // Through one client connection: 100 etcdctl processes took half a minute on etcd 3.5.
    let mut client = cluster.client().await.unwrap();
    for i in 0..100 {
        client
            .put(format!("/snap/{i:03}"), "v".repeat(i * 10), None)
            .await
            .unwrap();
    }
    let rev = etcd_view(&cluster, 0).revision;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leader.db");
    let o = run(
        &cluster,
        &["snapshot", "save", file.to_str().unwrap(), "-o", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let report = json(&o);
    let leader = cluster.leader_index().await.unwrap();
    assert_eq!(report["member"], cluster.members[leader].name);
    assert!(file.exists());
    assert!(!dir.path().join("leader.db.part").exists());
    let status = snapshot_status(version, &file).unwrap();
    assert_eq!(status["revision"], rev, "{status}");
    assert!(status["totalKey"].as_i64().unwrap() >= 100, "{status}");
    // The file holds the database and the 32-byte sha256 trailer, as etcdctl saves it.
    let len = std::fs::metadata(&file).unwrap().len();
    assert_eq!(report["db_bytes"], len - 32);
    restore(version, &file, &dir.path().join("restored")).unwrap();

    // From a named follower.
    let follower = (leader + 1) % 3;
    let file2 = dir.path().join("follower.db");
    let name = cluster.members[follower].name.clone();
    let o = run(
        &cluster,
        &[
            "snapshot",
            "save",
            file2.to_str().unwrap(),
            "--member",
            &name,
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        stdout(&o).contains(&format!("snapshot of {name} ")),
        "{}",
        show(&o)
    );
    assert_eq!(snapshot_status(version, &file2).unwrap()["revision"], rev);

    let o = run(
        &cluster,
        &["snapshot", "save", "x.db", "--member", "nosuch"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(one_error_line(&o).contains("nosuch"), "{}", show(&o));

    // Our verification accepts the good file and rejects a flipped byte, as etcd's restore does.
    let o = Command::new(bin())
        .args(["snapshot", "verify"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    let bad = dir.path().join("bad.db");
    std::fs::write(&bad, &bytes).unwrap();
    let o = Command::new(bin())
        .args(["snapshot", "verify"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        one_error_line(&o).contains("sha256 mismatch"),
        "{}",
        show(&o)
    );
    let refused = restore(version, &bad, &dir.path().join("restored-bad")).unwrap_err();
    assert!(refused.contains("sha256"), "{refused}");
    // Truncated: not whole blocks plus a trailer.
    let short = dir.path().join("short.db");
    std::fs::write(&short, &bytes[..bytes.len() - 100]).unwrap();
    let o = Command::new(bin())
        .args(["snapshot", "verify"])
        .arg(&short)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    one_error_line(&o);
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_save_accepted_by_etcdutl_3_5() {
    snapshots(EtcdVersion::V3_5).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_save_accepted_by_etcdctl_3_4() {
    snapshots(EtcdVersion::V3_4).await;
}
