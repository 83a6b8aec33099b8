//! Scraping over TLS as Prometheus does, compared with Prometheus 2.42 on one configuration file: a
//! real etcd member that requires client certificates, scraped with a CA, a client certificate,
//! `server_name` (right and wrong) and `min_version`. `up` of every job must be the same in both, and
//! what etcd's certificate allows.

use std::collections::BTreeSet;

use crate::support::*;
use anyhow::{Context, Result};
use etcd_testkit::{Cluster, ClusterOptions, EtcdVersion};

const RULES: &str = r#"groups:
  - name: up
    rules:
      - alert: Up
        expr: up
        annotations: {value: '{{ $value }}'}
"#;

/// (job, extra tls_config lines, whether etcd lets the scrape in).
const JOBS: [(&str, &str, bool); 7] = [
    ("verified", "", true),
    // The certificate names localhost and 127.0.0.1.
    ("named", "server_name: localhost", true),
    ("misnamed", "server_name: etcd.invalid", false),
    // etcd 3.5 caps its servers at TLS 1.2 (client/pkg/transport's MaxVersion).
    ("tls12", "min_version: TLS12", true),
    ("tls13", "min_version: TLS13", false),
    (
        "named_tls13",
        "server_name: localhost\n      min_version: TLS13",
        false,
    ),
    // etcd asks for a client certificate.
    ("no_client_cert", "NO_CLIENT_CERT", false),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_scrapes_agree_with_prometheus() -> Result<()> {
    let mut opts = ClusterOptions::new(1, EtcdVersion::V3_5);
    opts.tls = true;
    let cluster = Cluster::start(opts).await?;
    let certs = cluster.certs.clone().context("TLS certificates")?;
    let target = cluster.client_url(0);
    let target = target.trim_start_matches("https://");

    let mut config = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nscrape_configs:\n",
    );
    for (job, extra, _) in JOBS {
        let client = if extra == "NO_CLIENT_CERT" {
            String::new()
        } else {
            format!(
                "      cert_file: {}\n      key_file: {}\n{}",
                certs.client_cert.display(),
                certs.client_key.display(),
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("      {extra}\n")
                }
            )
        };
        config.push_str(&format!(
            "  - job_name: {job}\n    scheme: https\n    tls_config:\n      ca_file: {}\n{client}    static_configs:\n      - targets: ['{target}']\n",
            certs.ca_cert.display()
        ));
    }
    let dir = tempfile::tempdir()?;
    let both =
        prometheus_and_alerter(dir.path(), &config, &config, &[("rules.yml", RULES)]).await?;

    // `up` per job, as etcd's certificate and TLS versions allow (given time: a scrape may fail now
    // and then on a loaded machine).
    let expected: BTreeSet<(String, String)> = JOBS
        .iter()
        .map(|(job, _, ok)| (job.to_string(), if *ok { "1" } else { "0" }.to_string()))
        .collect();
    let http = reqwest::Client::new();
    let ups = |base: &str| {
        let (http, base) = (http.clone(), base.to_string());
        async move {
            Ok(firing_alerts_at(&http, &base)
                .await?
                .into_iter()
                .map(|(l, a)| (l["job"].clone(), a["value"].clone()))
                .collect::<BTreeSet<(String, String)>>())
        }
    };
    until_equal("Prometheus (the reference)", &expected, || {
        ups(&both.prometheus.url)
    })
    .await?;
    until_equal("the alerter", &expected, || ups(&both.alerter)).await?;
    let ours_dir = &both.alerter_dir;

    // A version Prometheus does not know is refused at load, with its message.
    let bad = ours_dir.join("bad.yml");
    std::fs::write(&bad, config.replace("TLS13", "TLS14"))?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcd-monitor"))
        .args(["alerter", "--config"])
        .arg(&bad)
        .args(["--listen", "127.0.0.1:0"])
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("tls_config.min_version: unknown TLS version: TLS14"),
        "{stderr}"
    );
    Ok(())
}
