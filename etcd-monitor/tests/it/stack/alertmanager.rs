//! deploy/alertmanager/alertmanager.yml, as shipped, in a real Alertmanager (Debian's
//! `prometheus-alertmanager`): its inhibition rules keep only the most severe step of a stepped alert
//! (the quota alert at 80/90/95%) per member, and the cluster-level causes ("cluster unreachable",
//! "quorum lost") suppress the alerts they imply for that cluster only. `amtool check-config` (in
//! scripts/validate-deploy.sh) proves the file parses; this proves it does what its comments say.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::*;
use anyhow::{Context, Result};
use serde_json::{json, Value};

fn alert(labels: &[(&str, &str)]) -> Value {
    let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
    json!({ "labels": labels, "annotations": { "summary": "stack_alertmanager test" } })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_inhibition_rules_keep_the_most_severe_and_the_cause() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = repo_root().join("deploy/alertmanager/alertmanager.yml");
    let (mut am, base) = start_alertmanager(dir.path(), "alertmanager", &config, &[]).await?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;

    let q = "etcdDatabaseQuotaLowSpace";
    let alerts = vec![
        // Member m1 at 97%: all three steps fire; only critical should remain.
        alert(&[
            ("alertname", q),
            ("cluster", "a"),
            ("member", "m1"),
            ("severity", "info"),
        ]),
        alert(&[
            ("alertname", q),
            ("cluster", "a"),
            ("member", "m1"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", q),
            ("cluster", "a"),
            ("member", "m1"),
            ("severity", "critical"),
        ]),
        // Member m2 at 85%: only the info step, which nothing inhibits (another member).
        alert(&[
            ("alertname", q),
            ("cluster", "a"),
            ("member", "m2"),
            ("severity", "info"),
        ]),
        // Cluster b unreachable: its member-down alert is implied; cluster a's is not.
        alert(&[
            ("alertname", "etcdExporterClusterUnreachable"),
            ("cluster", "b"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "etcdClusterMemberDown"),
            ("cluster", "b"),
            ("member", "m3"),
            ("severity", "warning"),
        ]),
        alert(&[
            ("alertname", "etcdClusterMemberDown"),
            ("cluster", "a"),
            ("member", "m3"),
            ("severity", "warning"),
        ]),
        // Quorum lost in cluster c implies "at risk".
        alert(&[
            ("alertname", "etcdClusterQuorumLost"),
            ("cluster", "c"),
            ("severity", "critical"),
        ]),
        alert(&[
            ("alertname", "etcdClusterQuorumAtRisk"),
            ("cluster", "c"),
            ("severity", "warning"),
        ]),
    ];
    let r = http
        .post(format!("{base}/api/v2/alerts"))
        .json(&alerts)
        .send()
        .await?;
    assert!(r.status().is_success(), "posting alerts: {}", r.status());

    // Alertmanager's inhibitor takes the alerts in asynchronously: under load the API can list all
    // nine before the inhibitor has seen a source. Wait until the four expected to be muted are (or
    // 20 s pass), then check every alert's state in the last listing.
    let list = || {
        let http = http.clone();
        let base = base.clone();
        async move {
            let v: Vec<Value> = http
                .get(format!("{base}/api/v2/alerts"))
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v)
        }
    };
    // On a timeout the assertions below show what Alertmanager held last.
    let last = std::cell::RefCell::new(Vec::new());
    let got = wait_for(
        "nine alerts in Alertmanager, four suppressed",
        Duration::from_secs(20),
        || async {
            let v = list().await?;
            let suppressed = v
                .iter()
                .filter(|a| a["status"]["state"] == "suppressed")
                .count();
            *last.borrow_mut() = v.clone();
            anyhow::Ok((v.len() == 9 && suppressed >= 4).then_some(v))
        },
    )
    .await
    .unwrap_or_else(|_| last.take());
    assert_eq!(got.len(), 9, "the alerts in Alertmanager: {got:?}");
    let state = |name: &str, cluster: &str, member: &str, severity: &str| -> Result<String> {
        let a = got
            .iter()
            .find(|a| {
                let l = &a["labels"];
                l["alertname"] == name
                    && l["cluster"] == cluster
                    && l["severity"] == severity
                    && l["member"].as_str().unwrap_or("") == member
            })
            .with_context(|| format!("{name} {cluster} {member} {severity} not in Alertmanager"))?;
        Ok(a["status"]["state"].as_str().unwrap_or("?").to_string())
    };
    assert_eq!(state(q, "a", "m1", "critical")?, "active");
    assert_eq!(state(q, "a", "m1", "warning")?, "suppressed");
    assert_eq!(state(q, "a", "m1", "info")?, "suppressed");
    assert_eq!(state(q, "a", "m2", "info")?, "active");
    assert_eq!(
        state("etcdExporterClusterUnreachable", "b", "", "critical")?,
        "active"
    );
    assert_eq!(
        state("etcdClusterMemberDown", "b", "m3", "warning")?,
        "suppressed"
    );
    assert_eq!(
        state("etcdClusterMemberDown", "a", "m3", "warning")?,
        "active"
    );
    assert_eq!(
        state("etcdClusterQuorumLost", "c", "", "critical")?,
        "active"
    );
    assert_eq!(
        state("etcdClusterQuorumAtRisk", "c", "", "warning")?,
        "suppressed"
    );
    am.check_running()?;
    Ok(())
}
