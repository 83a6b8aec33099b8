//! `etcd-monitor backup` against real peers: etcd 3.5 and 3.4 clusters, etcd's own tools (`etcdutl
//! snapshot status` and `restore`, etcdctl 3.4 for 3.4) reading and restoring every file into a new
//! member that serves the keys again, Debian's Pushgateway receiving the metrics, and, for the daemon,
//! Debian's Prometheus scraping it through its web configuration (basic auth) and firing
//! `etcdBackupTooOld` from rules/ when backups stop.
//!
//! Failure paths are real too: an unreachable cluster, a transfer cut by `--timeout`, and SIGTERM while
//! a member is frozen mid-stream. None may leave a partial file, replace or delete a good backup, or
//! erase the last success from the metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{
    program, repo_root, start_prometheus_with, start_pushgateway, wait_for, Proc,
};
use anyhow::{bail, Result};
use etcd_testkit::{free_port, Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_etcd-monitor")
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `etcd-monitor backup` with the cluster's connection flags and `args`.
fn backup(cluster: &Cluster, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("backup")
        .args(args)
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .env_remove("ENDPOINTS")
        .env_remove("PUSHGATEWAY_URL")
        .stdin(Stdio::null())
        .output()
        .expect("etcd-monitor runs")
}

/// etcd's offline snapshot tool: etcdutl for 3.5, etcdctl for 3.4.
fn etcdutl(version: EtcdVersion) -> PathBuf {
    let ctl = version.etcdctl().unwrap();
    match version {
        EtcdVersion::V3_5 => ctl.with_file_name("etcdutl"),
        EtcdVersion::V3_4 => ctl,
    }
}

/// `snapshot status -w json` by etcd's own tool.
fn snapshot_status(version: EtcdVersion, file: &Path) -> Value {
    let o = Command::new(etcdutl(version))
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "snapshot status: {}", show(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)))
}

/// Restores `file` with etcd's own tool into a new single-member cluster, starts a real etcd on it and
/// reads `key` back with etcdctl.
async fn restore_and_get(
    version: EtcdVersion,
    file: &Path,
    work: &Path,
    key: &str,
) -> Result<String> {
    let (client, peer) = (free_port()?, free_port()?);
    let data = work.join("restored");
    let peer_url = format!("http://127.0.0.1:{peer}");
    let o = Command::new(etcdutl(version))
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore"])
        .arg(file)
        .arg("--name=restored")
        .arg(format!("--initial-cluster=restored={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg("--initial-cluster-token=restore-test")
        .arg(format!("--data-dir={}", data.display()))
        .output()?;
    if !o.status.success() {
        bail!("snapshot restore: {}", show(&o));
    }
    let client_url = format!("http://127.0.0.1:{client}");
    let mut cmd = Command::new(version.binary()?);
    cmd.arg("--name=restored")
        .arg(format!("--data-dir={}", data.display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .arg(format!("--initial-advertise-peer-urls={peer_url}"))
        .arg(format!("--initial-cluster=restored={peer_url}"));
    let mut etcd = Proc::spawn("restored etcd", &mut cmd, work.join("restored.log"))?;
    let get = || {
        Command::new(version.etcdctl().unwrap())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={client_url}"))
            .args(["get", key, "--print-value-only"])
            .output()
    };
    let value = wait_for(
        "the restored member to serve the key",
        Duration::from_secs(30),
        || {
            let o = get();
            async move {
                let o = o?;
                Ok(o.status
                    .success()
                    .then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
                    .filter(|v| !v.is_empty()))
            }
        },
    )
    .await;
    match value {
        Ok(v) => Ok(v),
        Err(e) => {
            etcd.check_running()?;
            Err(e.context(etcd.log_tail(20)))
        }
    }
}

/// Whether `name` is a backup of `cluster` as the documentation spells it:
/// `etcd-CLUSTER-YYYYMMDDTHHMMSSZ-revREVISION.db`.
fn is_backup_name(name: &str, cluster: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(&format!("etcd-{cluster}-"))
        .and_then(|r| r.strip_suffix(".db"))
    else {
        return false;
    };
    let (time, rev) = rest.split_at(rest.len().min(16));
    let time_ok = time.len() == 16
        && time.char_indices().all(|(i, c)| match i {
            8 => c == 'T',
            15 => c == 'Z',
            _ => c.is_ascii_digit(),
        });
    let rev = rev.strip_prefix("-rev").unwrap_or("");
    time_ok
        && !rev.is_empty()
        && rev.bytes().all(|b| b.is_ascii_digit())
        && (rev == "0" || !rev.starts_with('0'))
}

/// Our backups of `cluster` in `dir`, sorted (by time, as the names sort).
fn our_files(dir: &Path, cluster: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_backup_name(n, cluster))
        .collect();
    v.sort();
    v
}

fn all_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The revision in a backup's name.
fn name_revision(name: &str) -> i64 {
    name.rsplit_once("-rev")
        .and_then(|(_, r)| r.strip_suffix(".db"))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("{name}: no revision in the name"))
}

/// Waits until the wall clock's second changes (backup names are to the second).
async fn next_second() {
    let second = || epoch_now().floor();
    let now = second();
    wait_for("the next second", Duration::from_secs(3), || async move {
        Ok((second() > now).then_some(()))
    })
    .await
    .unwrap();
}

/// The samples of `name` with `cluster="main"` in a text exposition, by their other labels.
fn samples(text: &str, name: &str) -> Vec<(BTreeMap<String, String>, f64)> {
    let families = prom_exposition::parse_text(text).expect("the exposition parses");
    families
        .iter()
        .flat_map(|f| f.samples.iter())
        .filter(|s| s.name == name)
        .map(|s| {
            (
                s.labels.iter().cloned().collect::<BTreeMap<_, _>>(),
                s.value,
            )
        })
        .filter(|(l, _)| l.get("cluster").map(String::as_str) == Some("main"))
        .collect()
}

/// The one value of `name{cluster="main"}` in the Pushgateway's group of the backups.
async fn pushed(pushgateway: &str, name: &str) -> Option<f64> {
    let text = reqwest::get(format!("{pushgateway}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let s: Vec<f64> = samples(&text, name)
        .into_iter()
        .filter(|(l, _)| l.get("job").map(String::as_str) == Some("etcd-monitor-backup"))
        .map(|(_, v)| v)
        .collect();
    assert!(s.len() <= 1, "{name}: {s:?}");
    s.first().copied()
}

fn epoch_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn backups_are_verified_named_rotated_pushed_and_restore_into_a_new_member() {
    let mut cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_5))
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("backups");
    std::fs::create_dir(&dir).unwrap();
    // What others keep in the directory: never touched.
    let foreign = [
        ("notes.txt", "hand-written"),
        ("my-snapshot.db", "etcdctl's"),
        (
            "etcd-other-20200101T000000Z-rev5.db",
            "another cluster's backup",
        ),
        (
            "etcd-main-20200101T000000Z-rev0012.db",
            "not a name we write",
        ),
        ("notes.db.part", "someone's partial file"),
    ];
    for (name, text) in foreign {
        std::fs::write(dir.join(name), text).unwrap();
    }
    // A partial file of ours, as a killed run leaves it: removed by the next run.
    std::fs::write(dir.join("etcd-main-20200101T000000Z-rev1.db.part"), "x").unwrap();
    let (_pg, pg) = start_pushgateway(work.path()).await.unwrap();
    let dir_flag = format!("--dir={}", dir.display());
    let pg_flag = format!("--pushgateway={pg}");
    let args = [
        dir_flag.as_str(),
        "--keep=2",
        "--cluster-name=main",
        "-o",
        "json",
        pg_flag.as_str(),
    ];

    let mut reports = Vec::new();
    for i in 1..=3 {
        cluster
            .etcdctl(&["put", "/backup/key", &format!("value-{i}")])
            .unwrap();
        next_second().await;
        let before = epoch_now();
        let o = backup(&cluster, &args);
        let after = epoch_now();
        assert_eq!(o.status.code(), Some(0), "{}", show(&o));
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        let file = PathBuf::from(report["file"].as_str().unwrap());
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // The name carries the revision the cluster is at (nothing writes meanwhile), as etcd reads it.
        let status = snapshot_status(EtcdVersion::V3_5, &file);
        assert_eq!(status["revision"], report["revision"], "{status}");
        assert_eq!(name_revision(&name), report["revision"].as_i64().unwrap());
        let rev: Value =
            serde_json::from_str(&cluster.etcdctl(&["get", "x", "-w", "json"]).unwrap()).unwrap();
        assert_eq!(report["revision"], rev["header"]["revision"]);
        assert_eq!(
            report["size_bytes"].as_u64().unwrap(),
            std::fs::metadata(&file).unwrap().len()
        );
        // Pushed: the last success is this run, with its size and duration.
        let last = pushed(&pg, "etcd_backup_last_success_timestamp_seconds")
            .await
            .unwrap();
        assert!(
            before <= last && last <= after,
            "{before} <= {last} <= {after}"
        );
        assert_eq!(
            pushed(&pg, "etcd_backup_size_bytes").await,
            report["size_bytes"].as_f64()
        );
        let duration = pushed(&pg, "etcd_backup_duration_seconds").await.unwrap();
        assert!(duration > 0.0 && duration <= after - before, "{duration}");
        assert_eq!(pushed(&pg, "etcd_backup_failures_total").await, Some(0.0));
        assert_eq!(
            pushed(&pg, "etcd_backup_max_age_seconds").await,
            Some(90000.0)
        );
        reports.push((name, report));
    }
    // The newest two kept, the first deleted; nothing else touched; no partial or temporary file.
    let kept: Vec<String> = reports[1..].iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(our_files(&dir, "main"), kept);
    assert_eq!(
        reports[2].1["deleted"][0]
            .as_str()
            .map(|p| p.ends_with(&reports[0].0)),
        Some(true)
    );
    for (name, text) in foreign {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            text,
            "{name}"
        );
    }
    let mut expected: Vec<String> = foreign.iter().map(|(n, _)| n.to_string()).collect();
    expected.extend(kept.iter().cloned());
    expected.push(".etcd-monitor-backup-main.json".into());
    expected.sort();
    assert_eq!(all_files(&dir), expected);

    // Every kept file restores into a new member that serves the key as it was when it was taken.
    for (i, name) in kept.iter().enumerate() {
        let restore_dir = work.path().join(format!("restore-{i}"));
        std::fs::create_dir(&restore_dir).unwrap();
        let value = restore_and_get(
            EtcdVersion::V3_5,
            &dir.join(name),
            &restore_dir,
            "/backup/key",
        )
        .await
        .unwrap();
        assert_eq!(value, format!("value-{}", i + 2));
    }
    let last_success = pushed(&pg, "etcd_backup_last_success_timestamp_seconds")
        .await
        .unwrap();

    // Unreachable: a failure counted and pushed, the last success kept, the files untouched.
    let dead = format!("--endpoints=127.0.0.1:{}", free_port().unwrap());
    let o = Command::new(bin())
        .args(["backup", &dead, "--dial-timeout=1s"])
        .args(args)
        .env_remove("ENDPOINTS")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.lines().count() == 1 && stderr.contains("no backup made"),
        "{}",
        show(&o)
    );
    assert_eq!(pushed(&pg, "etcd_backup_failures_total").await, Some(1.0));
    assert_eq!(
        pushed(&pg, "etcd_backup_last_success_timestamp_seconds").await,
        Some(last_success)
    );
    assert!(pushed(&pg, "etcd_backup_last_failure_timestamp_seconds")
        .await
        .is_some_and(|t| t > last_success));
    assert_eq!(all_files(&dir), expected);

    // A database of 16 MiB, whose transfer cannot finish in a millisecond: the partial file is
    // removed and nothing else changes.
    let mut client = cluster.client().await.unwrap();
    for i in 0..160 {
        client
            .put(format!("/backup/big/{i:03}"), vec![b'x'; 100 * 1024], None)
            .await
            .unwrap();
    }
    next_second().await;
    let o = backup(&cluster, &[&args[..], &["--timeout=1ms"]].concat());
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not finished within 1ms"),
        "{}",
        show(&o)
    );
    assert_eq!(all_files(&dir), expected);
    assert_eq!(pushed(&pg, "etcd_backup_failures_total").await, Some(2.0));

    // SIGTERM while the source member is frozen mid-stream: the partial file goes, a failure counts.
    next_second().await;
    let source = 1;
    let member_flag = format!("--member={}", cluster.members[source].name);
    let mut child = Command::new(bin())
        .arg("backup")
        .args(args)
        .arg(&member_flag)
        .args(cluster.connection_args())
        .env("LOG_LEVEL", "warn")
        .env_remove("ENDPOINTS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let part = loop {
        let part = all_files(&dir)
            .into_iter()
            .find(|n| n.starts_with("etcd-main-") && n.ends_with(".db.part"));
        if let Some(p) = part {
            break p;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup ended before its stream was seen"
        );
        assert!(Instant::now() < deadline, "no .part file appeared");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    cluster.pause(source).unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_for(
        "the backup to stop on SIGTERM",
        Duration::from_secs(20),
        || {
            let s = child.try_wait();
            async move { Ok(s?) }
        },
    )
    .await
    .unwrap();
    cluster.resume(source).unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(!dir.join(&part).exists(), "{part} left behind");
    assert_eq!(all_files(&dir), expected);
    assert_eq!(pushed(&pg, "etcd_backup_failures_total").await, Some(3.0));

    // And the next run succeeds from where things were, keeping two.
    next_second().await;
    let o = backup(&cluster, &args);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let files = our_files(&dir, "main");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0], kept[1]);
    let status = snapshot_status(EtcdVersion::V3_5, &dir.join(&files[1]));
    assert!(status["totalKey"].as_i64().unwrap() >= 161, "{status}");
    assert_eq!(pushed(&pg, "etcd_backup_failures_total").await, Some(3.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn etcd_3_4_backups_read_and_restore_with_etcdctl_3_4() {
    let cluster = Cluster::start(ClusterOptions::new(3, EtcdVersion::V3_4))
        .await
        .unwrap();
    cluster
        .etcdctl(&["put", "/backup/key", "from-3.4"])
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("backups");
    let dir_flag = format!("--dir={}", dir.display());
    let o = backup(&cluster, &[&dir_flag, "--keep=1", "--cluster-name=main"]);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).starts_with("backup of "),
        "{}",
        show(&o)
    );
    let files = our_files(&dir, "main");
    assert_eq!(files.len(), 1);
    let status = snapshot_status(EtcdVersion::V3_4, &dir.join(&files[0]));
    assert_eq!(status["revision"].as_i64(), Some(name_revision(&files[0])));
    let value = restore_and_get(
        EtcdVersion::V3_4,
        &dir.join(&files[0]),
        work.path(),
        "/backup/key",
    )
    .await
    .unwrap();
    assert_eq!(value, "from-3.4");
    // A Pushgateway that is not there: the backup is kept, the run fails in one line, and the password in
    // the URL appears nowhere.
    next_second().await;
    let dead = format!(
        "--pushgateway=http://u:S3CRET-pw@127.0.0.1:{}",
        free_port().unwrap()
    );
    let o = backup(
        &cluster,
        &[&dir_flag, "--keep=1", "--cluster-name=main", &dead],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("pushing to the Pushgateway at http://127.0.0.1:"),
        "{}",
        show(&o)
    );
    assert!(!show(&o).contains("S3CRET"), "{}", show(&o));
    assert_eq!(our_files(&dir, "main").len(), 1);
    // The directory was made private: snapshots hold every key.
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let kept = our_files(&dir, "main");
    assert_eq!(
        std::fs::metadata(dir.join(&kept[0]))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

#[test]
fn bad_command_lines_fail_in_one_line_before_touching_anything() {
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("a-file");
    std::fs::write(&file, "").unwrap();
    let dir = format!("--dir={}", work.path().join("d").display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![dir.clone(), "--keep=0".into()], "--keep 0"),
        (
            vec![dir.clone(), "--keep=2".into(), "--cluster-name=a/b".into()],
            "--cluster-name \"a/b\"",
        ),
        (
            vec![format!("--dir={}", file.display()), "--keep=2".into()],
            "not a directory",
        ),
        (
            vec![dir.clone(), "--keep=2".into(), "--schedule=daily".into()],
            "--schedule \"daily\"",
        ),
        (
            vec![
                dir.clone(),
                "--keep=2".into(),
                "--pushgateway=pg:9091".into(),
            ],
            "--pushgateway",
        ),
        (
            vec![dir.clone(), "--keep=2".into(), "--timeout=31days".into()],
            "--timeout",
        ),
        (vec![dir.clone()], "--keep"),
    ];
    for (args, expected) in cases {
        let o = Command::new(bin())
            .arg("backup")
            .args(&args)
            .arg("--endpoints=127.0.0.1:1")
            .env_remove("ENDPOINTS")
            .env_remove("PUSHGATEWAY_URL")
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(expected), "{args:?}: {}", show(&o));
        assert!(!stderr.contains("panicked"), "{}", show(&o));
    }
    // None of them made the directory.
    assert!(!work.path().join("d").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_backs_up_on_schedule_and_prometheus_fires_etcd_backup_too_old_when_backups_stop(
) {
    program("prometheus", "prometheus").unwrap();
    let mut cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("backups");
    let web = work.path().join("web.yml");
    std::fs::write(
        &web,
        format!(
            "basic_auth_users:\n  prometheus: '{}'\n",
            etcd_testkit::bcrypt_hash("scrape-pw", 10)
        ),
    )
    .unwrap();
    let port = free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let mut cmd = Command::new(bin());
    cmd.arg("backup")
        .arg(format!("--dir={}", dir.display()))
        .args(["--keep=3", "--cluster-name=main", "--max-age=6s"])
        // Every second (the cron crate's six fields, seconds first).
        .arg("--schedule=* * * * * *")
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--web.config.file={}", web.display()))
        .args(cluster.connection_args())
        .env_remove("ENDPOINTS")
        .env_remove("PUSHGATEWAY_URL");
    let mut daemon =
        Proc::spawn("backup daemon", &mut cmd, work.path().join("daemon.log")).unwrap();
    let http = reqwest::Client::new();
    let scrape = |http: reqwest::Client, url: String| async move {
        let r = http
            .get(format!("{url}/metrics"))
            .basic_auth("prometheus", Some("scrape-pw"))
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "{}", r.status());
        Ok::<String, anyhow::Error>(r.text().await?)
    };
    // Three files, then a fourth run: still three, the oldest gone.
    let first = wait_for("three scheduled backups", Duration::from_secs(30), || {
        let files = our_files_if_any(&dir);
        async move { Ok((files.len() == 3).then_some(files)) }
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", daemon.log_tail(20)));
    let later = wait_for("a later backup", Duration::from_secs(30), || {
        let files = our_files_if_any(&dir);
        let newest = first.last().cloned();
        async move { Ok((files.last() != newest.as_ref()).then_some(files)) }
    })
    .await
    .unwrap();
    assert_eq!(later.len(), 3, "{later:?}");
    assert!(!later.contains(&first[0]), "{later:?}");
    // /metrics behind the web configuration: refused without the password, served with it.
    let r = http.get(format!("{url}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    let text = scrape(http.clone(), url.clone()).await.unwrap();
    let last = samples(&text, "etcd_backup_last_success_timestamp_seconds");
    assert_eq!(last.len(), 1, "{text}");
    assert!(epoch_now() - last[0].1 < 10.0, "{text}");
    assert_eq!(samples(&text, "etcd_backup_max_age_seconds")[0].1, 6.0);

    // Prometheus scrapes it with the password and evaluates rules/etcd-backup.rules.yml, `for:`
    // shortened to 1 s so that the test takes seconds.
    let prom_dir = work.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let rules = std::fs::read_to_string(repo_root().join("rules/etcd-backup.rules.yml"))
        .unwrap()
        .replace("for: 5m", "for: 1s");
    std::fs::write(prom_dir.join("backup.rules.yml"), rules).unwrap();
    std::fs::write(prom_dir.join("password"), "scrape-pw").unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [backup.rules.yml]\n\
         scrape_configs:\n  - job_name: etcd-monitor-backup\n    basic_auth:\n      username: prometheus\n\
         \x20     password_file: password\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
    );
    let (_prom_proc, prom) = start_prometheus_with(&prom_dir, &config).await.unwrap();
    let alert = |prom: &crate::support::Prometheus| {
        let prom = prom.clone();
        async move {
            prom.query(
                "ALERTS{alertname=\"etcdBackupTooOld\",cluster=\"main\"}",
                crate::support::now(),
            )
            .await
        }
    };
    // Healthy: four scrapes (and as many evaluations) of backups every second, and no alert, not even
    // pending, at any of them.
    wait_for("four scrapes of the daemon", Duration::from_secs(30), || {
        let prom = prom.clone();
        async move {
            let v = prom
                .query(
                    "count_over_time(etcd_backup_last_success_timestamp_seconds{cluster=\"main\"}[1m]) >= 4",
                    crate::support::now(),
                )
                .await?;
            Ok((!v.is_empty()).then_some(()))
        }
    })
    .await
    .unwrap();
    let ever = prom
        .query(
            "count_over_time(ALERTS{alertname=\"etcdBackupTooOld\"}[1m])",
            crate::support::now(),
        )
        .await
        .unwrap();
    assert_eq!(ever, Vec::<Value>::new(), "{}", daemon.log_tail(30));

    // The cluster goes: every run fails, the last success ages past --max-age, the alert fires.
    let stopped_at = epoch_now();
    cluster.kill(0).unwrap();
    let firing = wait_for("etcdBackupTooOld to fire", Duration::from_secs(60), || {
        let a = alert(&prom);
        async move {
            let v = a.await?;
            Ok(v.iter()
                .any(|s| s["metric"]["alertstate"] == "firing")
                .then_some(v))
        }
    })
    .await
    .unwrap();
    assert!(epoch_now() - stopped_at >= 6.0);
    assert_eq!(firing[0]["metric"]["severity"], "warning", "{firing:?}");
    let groups = prom.rule_groups().await.unwrap();
    let rule = &groups[0]["rules"][0];
    assert_eq!(rule["health"], "ok", "{rule}");
    let description = rule["alerts"][0]["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.starts_with("etcd cluster main: no backup has succeeded within the backup job's --max-age; the last one finished "),
        "{rule}"
    );
    let text = scrape(http.clone(), url.clone()).await.unwrap();
    assert!(
        samples(&text, "etcd_backup_failures_total")[0].1 >= 1.0,
        "{text}"
    );
    // The files stay: failed runs never delete a good backup.
    assert_eq!(our_files_if_any(&dir).len(), 3);

    // SIGTERM: the daemon stops cleanly and leaves no partial file.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(daemon.child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_for("the daemon to exit", Duration::from_secs(20), || {
        let s = daemon.child.try_wait();
        async move { Ok(s?) }
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(0), "{}", daemon.log_tail(20));
    assert!(
        !all_files(&dir).iter().any(|n| n.ends_with(".part")),
        "{:?}",
        all_files(&dir)
    );
}

/// Our backups of cluster "main" in `dir`, or none while it does not exist yet.
fn our_files_if_any(dir: &Path) -> Vec<String> {
    if dir.exists() {
        our_files(dir, "main")
    } else {
        Vec::new()
    }
}
