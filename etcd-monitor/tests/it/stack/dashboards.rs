//! Every Grafana dashboard in dashboards/, checked live: a real 3-member etcd 3.5 cluster (TLS on client
//! and peer URLs, so the certificate panels have data), the real
//! exporter (this package's binary), and Debian's Prometheus scraping it every second with rules/ loaded.
//! Every panel query and every variable query is run through Prometheus' HTTP API with Grafana's
//! variables filled in as Grafana fills them; each must parse and return data. Panels whose description
//! says they have data only under a fault ("Data only ...") are checked after the test has made those
//! faults: a member killed for a few seconds (calls to it fail), and the database quota filled (a NOSPACE
//! alarm, which also fires etcdClusterAlarmActive).
//!
//! The bench dashboard needs `etcd-monitor bench` results in a Pushgateway: the test runs a bench and
//! pushes it to a real Pushgateway.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use anyhow::{bail, Context, Result};
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};
use serde_json::Value;

/// Small enough to fill in a second, large enough for a few minutes of probes and a short bench.
const QUOTA_BYTES: u64 = 8 * 1024 * 1024;
/// The data source's scrape interval as Grafana knows it (`timeInterval` in
/// deploy/grafana/provisioning), from which Grafana derives `$__rate_interval`. Prometheus scrapes every
/// second here, so the windows hold more samples than in production, never fewer.
const SCRAPE_SECONDS: u64 = 15;
const STEP_SECONDS: u64 = 1;

struct PanelQuery {
    dashboard: String,
    panel_id: u64,
    panel: String,
    ref_id: String,
    expr: String,
    instant: bool,
    /// The panel's description says it has data only under a fault.
    fault_only: bool,
}

/// Data a panel can draw: at least one sample that is a number (histogram_quantile over an empty window
/// gives NaN, which Grafana draws as nothing).
fn has_data(result: &[Value]) -> bool {
    let finite = |v: &Value| {
        v.get(1)
            .and_then(|x| x.as_str())
            .and_then(|x| x.parse::<f64>().ok())
            .is_some_and(f64::is_finite)
    };
    result.iter().any(|r| {
        r["values"]
            .as_array()
            .is_some_and(|vs| vs.iter().any(finite))
            || finite(&r["value"])
            || finite(r)
    })
}

fn load_dashboards() -> Result<Vec<(String, Value)>> {
    let dir = repo_root().join("dashboards");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let board: Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            board,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if out.len() < 3 {
        bail!("expected the overview, internals and bench dashboards in dashboards/");
    }
    Ok(out)
}

fn all_panels(board: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in board["panels"].as_array().into_iter().flatten() {
        out.push(p);
        for inner in p["panels"].as_array().into_iter().flatten() {
            out.push(inner);
        }
    }
    out
}

fn panel_queries(name: &str, board: &Value) -> Vec<PanelQuery> {
    let mut out = Vec::new();
    for p in all_panels(board) {
        let fault_only = p["description"]
            .as_str()
            .is_some_and(|d| d.contains("Data only"));
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(PanelQuery {
                dashboard: name.to_string(),
                panel_id: p["id"].as_u64().unwrap_or(0),
                panel: p["title"].as_str().unwrap_or("?").to_string(),
                ref_id: t["refId"].as_str().unwrap_or("?").to_string(),
                expr: t["expr"].as_str().unwrap_or("").to_string(),
                instant: t["instant"].as_bool().unwrap_or(false),
                fault_only,
            });
        }
    }
    out
}

/// What a dashboard must have for Grafana and for this project: current schema, a `datasource`
/// variable that every panel and query uses, `cluster`/`member` variables where the data has them.
fn structure_problems(name: &str, board: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if board["schemaVersion"].as_u64().unwrap_or(0) < 39 {
        p.push(format!("{name}: schemaVersion below Grafana 11's"));
    }
    if board["uid"].as_str().unwrap_or("").is_empty() {
        p.push(format!("{name}: no uid"));
    }
    let vars: Vec<&Value> = board["templating"]["list"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let var = |n: &str| vars.iter().find(|v| v["name"] == n);
    match var("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        _ => p.push(format!(
            "{name}: no `datasource` variable of Prometheus data sources"
        )),
    }
    let needs_member = !name.contains("bench");
    if needs_member && (var("cluster").is_none() || var("member").is_none()) {
        p.push(format!("{name}: needs `cluster` and `member` variables"));
    }
    let mut ids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    for panel in all_panels(board) {
        let title = panel["title"].as_str().unwrap_or("?");
        if !titles.insert(title) {
            p.push(format!("{name}: two panels titled {title:?}"));
        }
        if !ids.insert(panel["id"].as_u64().unwrap_or(0)) {
            p.push(format!("{name}: panel {title:?}: duplicate id"));
        }
        let g = &panel["gridPos"];
        if g["x"].as_u64().unwrap_or(99) + g["w"].as_u64().unwrap_or(99) > 24 {
            p.push(format!(
                "{name}: panel {title:?}: outside the 24-column grid"
            ));
        }
        if panel["type"] == "row" {
            continue;
        }
        if panel["datasource"]["uid"] != "${datasource}" {
            p.push(format!(
                "{name}: panel {title:?}: does not use the datasource variable"
            ));
        }
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            p.push(format!("{name}: panel {title:?}: no query"));
        }
        for t in targets {
            if t["datasource"]["uid"] != "${datasource}" {
                p.push(format!(
                    "{name}: panel {title:?}: a query does not use the datasource variable"
                ));
            }
            let expr = t["expr"].as_str().unwrap_or("");
            if needs_member && !expr.contains("$cluster") {
                p.push(format!(
                    "{name}: panel {title:?}: query not filtered by $cluster: {expr}"
                ));
            }
        }
    }
    p
}

/// Fills in Grafana's variables as Grafana does for a Prometheus query: `$__rate_interval` is
/// max($__interval + scrape interval, 4 × scrape interval); a multi-value variable set to "All" becomes
/// its `allValue` (here `.+`).
fn substitute(expr: &str, vars: &HashMap<&str, String>, range_seconds: u64) -> String {
    let rate_interval = (STEP_SECONDS + SCRAPE_SECONDS).max(4 * SCRAPE_SECONDS);
    let mut out = expr
        .replace("$__rate_interval", &format!("{rate_interval}s"))
        .replace("$__interval", &format!("{STEP_SECONDS}s"))
        .replace("$__range", &format!("{range_seconds}s"));
    // Longest names first, so that `$member` is not taken for a prefix of another variable.
    let mut names: Vec<&&str> = vars.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for n in names {
        out = out
            .replace(&format!("${{{n}}}"), &vars[*n])
            .replace(&format!("${n}"), &vars[*n]);
    }
    out
}

/// `label_values(SELECTOR, LABEL)`, Grafana's Prometheus variable query.
fn parse_label_values(q: &str) -> Option<(String, String)> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_string(), label.trim().to_string()))
}

async fn run_bench(connection: &[String], pushgateway: &str) -> Result<()> {
    let bin = env!("CARGO_BIN_EXE_etcd-monitor");
    let out = Command::new(bin)
        .args(["bench", "put"])
        .args(connection)
        .args([
            "--total=2000",
            "--clients=4",
            "--conns=2",
            "--val-size=64",
            &format!("--pushgateway={pushgateway}"),
        ])
        .output()?;
    if !out.status.success() {
        bail!(
            "etcd-monitor bench put failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn dump_results(
    boards: &[(String, Value)],
    results: &HashMap<(String, u64, String), Vec<Value>>,
    dir: &std::path::Path,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, board) in boards {
        let mut board = board.clone();
        for panel in board["panels"].as_array_mut().into_iter().flatten() {
            let id = panel["id"].as_u64().unwrap_or(0);
            let Some(targets) = panel.get_mut("targets").and_then(|t| t.as_array_mut()) else {
                continue;
            };
            for t in targets {
                let key = (
                    name.clone(),
                    id,
                    t["refId"].as_str().unwrap_or("?").to_string(),
                );
                t["result"] = Value::Array(results.get(&key).cloned().unwrap_or_default());
            }
        }
        std::fs::write(dir.join(name), serde_json::to_string(&board)?)?;
    }
    Ok(())
}

/// The queries of panels that need no fault, over [start, end] (instant ones at `end`): each that fails or
/// has no data, described.
async fn healthy_failures(
    prom: &Prometheus,
    queries: &[PanelQuery],
    vars: &HashMap<&str, String>,
    start: f64,
    end: f64,
) -> Vec<String> {
    let mut failures = Vec::new();
    for q in queries.iter().filter(|q| !q.fault_only) {
        let range = (end - start).ceil() as u64;
        let expr = substitute(&q.expr, vars, range);
        let result = if q.instant {
            prom.query(&expr, end).await
        } else {
            prom.query_range(&expr, start, end, STEP_SECONDS).await
        };
        match result {
            Ok(r) if !has_data(&r) => failures.push(format!(
                "healthy: {} / {} / {}: no data: {expr}",
                q.dashboard, q.panel, q.ref_id
            )),
            Ok(_) => {}
            Err(e) => failures.push(format!(
                "healthy: {} / {} / {}: {e:#}: {expr}",
                q.dashboard, q.panel, q.ref_id
            )),
        }
    }
    failures
}

type PanelResults = HashMap<(String, u64, String), Vec<Value>>;

/// Every query over [start, end] with all members and with the one member picked: the failures, and the
/// "all members" results (for scripts/render-dashboards.sh).
async fn after_fault_results(
    prom: &Prometheus,
    queries: &[PanelQuery],
    [vars_all, vars_one]: [&HashMap<&str, String>; 2],
    start: f64,
    end: f64,
) -> (Vec<String>, PanelResults) {
    let range = (end - start).ceil() as u64;
    let mut failures = Vec::new();
    let mut results = PanelResults::new();
    for q in queries {
        for (label, vars) in [("all members", vars_all), ("one member", vars_one)] {
            if label == "one member" && !q.expr.contains("$member") {
                continue;
            }
            let expr = substitute(&q.expr, vars, range);
            let result = if q.instant {
                prom.query(&expr, end).await
            } else {
                prom.query_range(&expr, start, end, STEP_SECONDS).await
            };
            match result {
                Ok(r) if !has_data(&r) => failures.push(format!(
                    "after faults, {label}: {} / {} / {}: no data: {expr}",
                    q.dashboard, q.panel, q.ref_id
                )),
                Ok(r) => {
                    if label == "all members" {
                        let key = (q.dashboard.clone(), q.panel_id, q.ref_id.clone());
                        results.insert(key, r);
                    }
                }
                Err(e) => failures.push(format!(
                    "after faults, {label}: {} / {} / {}: {e:#}: {expr}",
                    q.dashboard, q.panel, q.ref_id
                )),
            }
        }
    }
    (failures, results)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_live_stack() -> Result<()> {
    let boards = load_dashboards()?;
    let problems: Vec<String> = boards
        .iter()
        .flat_map(|(n, b)| structure_problems(n, b))
        .collect();
    assert!(
        problems.is_empty(),
        "dashboard structure:\n{}",
        problems.join("\n")
    );

    let mut options = ClusterOptions::new(3, EtcdVersion::V3_5);
    options.quota_backend_bytes = Some(QUOTA_BYTES);
    // TLS on client and peer URLs, so that the certificate panels have data.
    options.tls = true;
    options.peer_tls = true;
    let mut cluster = Cluster::start(options).await?;
    let member_names: BTreeSet<String> = cluster.members.iter().map(|m| m.name.clone()).collect();
    let dir = tempfile::tempdir()?;
    let connection = cluster.connection_args();
    let mut exporter_args: Vec<&str> = connection.iter().map(String::as_str).collect();
    exporter_args.push("--cluster-name=live");
    let (_exporter, exporter_url) =
        start_exporter_with(dir.path(), &exporter_args, &["live"]).await?;
    let (_pushgateway, pushgateway_url) = start_pushgateway(dir.path()).await?;
    let exporter_target = exporter_url.trim_start_matches("http://").to_string();
    let pushgateway_target = pushgateway_url.trim_start_matches("http://").to_string();
    let (mut prometheus_proc, prom) = start_prometheus(
        dir.path(),
        &[
            ("etcd-monitor", &exporter_target, false),
            ("pushgateway", &pushgateway_target, true),
        ],
        &rule_files()?,
    )
    .await?;
    let start = now();

    // rules/ loaded, every group evaluating without error.
    let groups = wait_for(
        "Prometheus to evaluate rules/",
        Duration::from_secs(20),
        || {
            let prom = prom.clone();
            async move {
                let groups = prom.rule_groups().await?;
                let evaluated = groups.iter().all(|g| {
                    g["rules"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .all(|r| r["health"] == "ok")
                });
                Ok((groups.len() >= 3 && evaluated).then_some(groups))
            }
        },
    )
    .await?;
    let names: BTreeSet<&str> = groups.iter().filter_map(|g| g["name"].as_str()).collect();
    assert!(
        names.contains("etcd")
            && names.contains("etcd-monitor-cluster")
            && names.contains("etcd-monitor-bench"),
        "rule groups loaded: {names:?}"
    );

    run_bench(&connection, &pushgateway_url).await?;
    // A backup, pushed as the backup CronJob pushes it: the overview's backup row reads it.
    let backups = dir.path().join("backups");
    let out = Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
        .arg("backup")
        .arg(format!("--dir={}", backups.display()))
        .args(["--keep=1", "--cluster-name=live"])
        .args(&connection)
        .arg(format!("--pushgateway={pushgateway_url}"))
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "etcd-monitor backup: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let queries: Vec<PanelQuery> = boards
        .iter()
        .flat_map(|(n, b)| panel_queries(n, b))
        .collect();
    let vars_all: HashMap<&str, String> = [
        ("cluster", "live".to_string()),
        ("member", ".+".to_string()),
        ("workload", ".+".to_string()),
        ("datasource", "Prometheus".to_string()),
    ]
    .into();

    // A healthy stretch: every panel that does not need a fault must have data by its end. Its length is
    // set by etcd: members observe peer round trips every 30 s, so the round-trip panel's rate() has two
    // observations to compare only about a minute after the cluster started. Polled until every such
    // query has data; after two minutes the last attempt's failures are reported.
    let last = std::cell::RefCell::new(Vec::new());
    let _ = wait_for(
        "every panel that needs no fault to have data",
        Duration::from_secs(120),
        || async {
            let failures = healthy_failures(&prom, &queries, &vars_all, start, now()).await;
            let done = failures.is_empty();
            *last.borrow_mut() = failures;
            done
        },
    )
    .await;
    prometheus_proc.check_running()?;
    let mut failures = last.into_inner();

    // Fault 1: a member down for a few seconds; the exporter's calls to it fail.
    cluster.kill(2)?;
    let killed = cluster.members[2].name.clone();
    wait_for(
        "Prometheus to see the exporter's calls to the killed member fail",
        Duration::from_secs(30),
        || async {
            let errors = prom
                .query(
                    &format!("etcd_exporter_member_errors_total{{cluster=\"live\", member=\"{killed}\"}} > 0"),
                    now(),
                )
                .await?;
            anyhow::Ok(!errors.is_empty())
        },
    )
    .await?;
    cluster.restart(2)?;
    cluster
        .wait_member_ready(2, Duration::from_secs(30))
        .await
        .context("member 2 back after its restart")?;

    // Fault 2: fill the quota until etcd raises NOSPACE.
    let mut client = cluster.client().await?;
    let value = vec![b'x'; 256 * 1024];
    let mut nospace = false;
    for i in 0..200 {
        match client
            .put(format!("/stack-test/fill/{i}"), value.clone(), None)
            .await
        {
            Ok(_) => {}
            Err(e) if e.to_string().contains("database space exceeded") => {
                nospace = true;
                break;
            }
            Err(e) => return Err(anyhow::Error::new(e).context("filling the quota")),
        }
    }
    assert!(
        nospace,
        "etcd never refused a write with a {QUOTA_BYTES}-byte quota"
    );
    let alarms = cluster.etcdctl(&["alarm", "list"])?;
    assert!(alarms.contains("NOSPACE"), "etcdctl alarm list: {alarms}");
    // etcdClusterAlarmActive has no `for`: it fires on the first evaluation after a scrape sees the alarm.
    wait_for(
        "etcdClusterAlarmActive to fire in Prometheus",
        Duration::from_secs(30),
        || {
            let prom = prom.clone();
            async move {
                let firing = prom.firing_alerts().await?;
                Ok(firing
                    .iter()
                    .any(|a| {
                        a["labels"]["alertname"] == "etcdClusterAlarmActive"
                            && a["labels"]["alarm"] == "NOSPACE"
                    })
                    .then_some(()))
            }
        },
    )
    .await?;
    // Every query after the faults, with every member ("All") and with one member picked.
    // The one member picked is the one that was killed: the panels that have data only under a fault
    // have it for that member (calls to the others may or may not have failed meanwhile). Polled until
    // all have data (the range queries' last step, on whole seconds from `start`, must reach the alarm);
    // after 30 s the last attempt's failures are reported.
    let mut vars_one = vars_all.clone();
    vars_one.insert("member", killed);
    let last = std::cell::RefCell::new((Vec::new(), HashMap::new(), 0.0));
    let _ = wait_for(
        "every panel query to have data after the faults",
        Duration::from_secs(30),
        || async {
            let end = now();
            let (failures, results) =
                after_fault_results(&prom, &queries, [&vars_all, &vars_one], start, end).await;
            let done = failures.is_empty();
            *last.borrow_mut() = (failures, results, end);
            done
        },
    )
    .await;
    prometheus_proc.check_running()?;
    let (after_failures, results, end) = last.into_inner();
    failures.extend(after_failures);
    let range = (end - start).ceil() as u64;

    // Variable queries: the values Grafana would offer.
    for (name, board) in &boards {
        for v in board["templating"]["list"].as_array().into_iter().flatten() {
            if v["type"] != "query" {
                continue;
            }
            let var = v["name"].as_str().unwrap_or("?");
            let definition = v["definition"].as_str().unwrap_or("");
            let Some((selector, label)) = parse_label_values(definition) else {
                failures.push(format!(
                    "{name}: variable {var}: not label_values(...): {definition}"
                ));
                continue;
            };
            let selector = substitute(&selector, &vars_all, range);
            let values = match prom.label_values(&label, &selector, start, end).await {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!("{name}: variable {var}: {e:#}"));
                    continue;
                }
            };
            let got: BTreeSet<String> = values.into_iter().collect();
            match var {
                "cluster" => {
                    if !got.contains("live") {
                        failures.push(format!(
                            "{name}: variable cluster offers {got:?}, not \"live\""
                        ));
                    }
                }
                "member" => {
                    if got != member_names {
                        failures.push(format!(
                            "{name}: variable member offers {got:?}, the cluster has {member_names:?}"
                        ));
                    }
                }
                _ => {
                    if got.is_empty() {
                        failures.push(format!("{name}: variable {var} offers nothing"));
                    }
                }
            }
        }
    }

    // For scripts/render-dashboards.sh: each dashboard with every query's live result beside it.
    if let Ok(dump) = std::env::var("ETCD_MONITOR_DASHBOARD_DUMP") {
        dump_results(&boards, &results, std::path::Path::new(&dump))?;
    }

    assert!(
        failures.is_empty(),
        "{} of {} dashboard queries failed:\n{}\n\nprometheus log:\n{}",
        failures.len(),
        queries.len(),
        failures.join("\n"),
        prometheus_proc.log_tail(10)
    );
    eprintln!(
        "stack_dashboards: {} panel queries over {} dashboards returned data ({}s of live data)",
        queries.len(),
        boards.len(),
        range
    );
    Ok(())
}
