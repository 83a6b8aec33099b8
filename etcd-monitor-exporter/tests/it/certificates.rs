//! Certificate expiry against real TLS clusters (etcd 3.4 and 3.5, client and peer URLs over TLS with
//! client certificates), whose certificates the test makes with a few days of validity. The expected
//! notAfter of each file is read by Python's ssl module (OpenSSL), not by our parser. A certificate
//! rotated on disk is seen within the certificate interval, from the renewed /metrics connection.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::*;
use etcd_testkit::{CertValidity, Cluster, ClusterOptions, EtcdVersion};

/// notAfter of a PEM certificate file, seconds since the Unix epoch, as OpenSSL reads it.
fn openssl_not_after(path: &Path) -> f64 {
    let out = Command::new("python3")
        .args([
            "-c",
            "import ssl, sys\nprint(int(ssl.cert_time_to_seconds(ssl._ssl._test_decode_cert(sys.argv[1])['notAfter'])))",
        ])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_and_own_certificates_expire_when_openssl_says() {
    for version in EtcdVersion::ALL {
        let mut options = ClusterOptions::new(3, version);
        options.tls = true;
        options.peer_tls = true;
        options.cert_validity = CertValidity {
            server_days: Some(10),
            peer_days: Some(2),
            client_days: Some(20),
        };
        let cluster = Cluster::start(options).await.unwrap();
        let certs = cluster.certs.clone().unwrap();
        let mut cfg = config(vec![cluster_config("tls", &cluster)]);
        cfg.certificate_interval = Duration::from_millis(300);
        let exporter = start(cfg).await;
        let c = [("cluster", "tls")];
        let fams = scrape_until(
            &exporter,
            Duration::from_secs(20),
            "every certificate read",
            |f| {
                count(
                    f,
                    "etcd_member_certificate_expiry_timestamp_seconds",
                    &[("url", "client")],
                ) == 3
                    && count(
                        f,
                        "etcd_member_certificate_expiry_timestamp_seconds",
                        &[("url", "peer")],
                    ) == 3
                    && value(
                        f,
                        "etcd_exporter_collector_success",
                        &[("cluster", "tls"), ("collector", "certificates")],
                    ) == Some(1.0)
            },
        )
        .await;
        let server = openssl_not_after(&certs.server_cert);
        let peer = openssl_not_after(&certs.peer_cert);
        let client = openssl_not_after(&certs.client_cert);
        for m in &cluster.members {
            let l = |url| {
                [
                    ("cluster", "tls"),
                    ("member", m.name.as_str()),
                    ("url", url),
                ]
            };
            assert_eq!(
                value(
                    &fams,
                    "etcd_member_certificate_expiry_timestamp_seconds",
                    &l("client")
                ),
                Some(server),
                "etcd {} {}",
                version.label(),
                m.name
            );
            assert_eq!(
                value(
                    &fams,
                    "etcd_member_certificate_expiry_timestamp_seconds",
                    &l("peer")
                ),
                Some(peer)
            );
        }
        assert_eq!(
            value(
                &fams,
                "etcd_exporter_client_certificate_expiry_timestamp_seconds",
                &c
            ),
            Some(client)
        );
        // What the rules see: the peer certificate within the critical 3 days, the served one within
        // the warning's 14, the exporter's own beyond both.
        let days = |t: f64| (t - now()) / 86400.0;
        assert!((1.9..2.01).contains(&days(peer)), "{}", days(peer));
        assert!((9.9..10.01).contains(&days(server)), "{}", days(server));
        assert!(days(client) > 14.0);

        // None of the new names is one etcd exports.
        let etcd_own = reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&certs.ca_cert).unwrap()).unwrap(),
            )
            .identity(
                reqwest::Identity::from_pem(
                    &[
                        std::fs::read(&certs.client_cert).unwrap(),
                        std::fs::read(&certs.client_key).unwrap(),
                    ]
                    .concat(),
                )
                .unwrap(),
            )
            .build()
            .unwrap()
            .get(format!("{}/metrics", cluster.client_url(0)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let etcd_names: BTreeSet<String> = prom_exposition::parse_text(&etcd_own)
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        for ours in [
            "etcd_member_certificate_expiry_timestamp_seconds",
            "etcd_exporter_client_certificate_expiry_timestamp_seconds",
        ] {
            assert!(
                !etcd_names.contains(ours),
                "{ours} is one of etcd {}'s names",
                version.label()
            );
        }

        // Rotation: new files for the client URLs, valid 30 days. etcd serves them on new handshakes;
        // the exporter's renewed /metrics connection sees them within the certificate interval.
        certs.reissue_server(30).unwrap();
        let rotated = openssl_not_after(&certs.server_cert);
        assert!(rotated > server);
        scrape_until(
            &exporter,
            Duration::from_secs(20),
            "the rotated certificate",
            |f| {
                cluster.members.iter().all(|m| {
                    value(
                        f,
                        "etcd_member_certificate_expiry_timestamp_seconds",
                        &[("member", m.name.as_str()), ("url", "client")],
                    ) == Some(rotated)
                })
            },
        )
        .await;
        eprintln!(
            "certificates, etcd {}: client URLs expire in {:.2} days (then {:.2} after rotation), peer URLs in {:.2}, the exporter's own in {:.2}",
            version.label(),
            days(server),
            days(rotated),
            days(peer),
            days(client)
        );
        exporter.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_members_have_no_certificate_series_and_the_collector_succeeds() {
    let cluster = Cluster::start(ClusterOptions::new(1, EtcdVersion::V3_5))
        .await
        .unwrap();
    let mut cfg = config(vec![cluster_config("plain", &cluster)]);
    cfg.certificate_interval = Duration::from_millis(300);
    let exporter = start(cfg).await;
    let fams = scrape_until(
        &exporter,
        Duration::from_secs(15),
        "a certificates round",
        |f| {
            value(
                f,
                "etcd_exporter_collector_success",
                &[("cluster", "plain"), ("collector", "certificates")],
            )
            .is_some()
        },
    )
    .await;
    assert_eq!(
        value(
            &fams,
            "etcd_exporter_collector_success",
            &[("cluster", "plain"), ("collector", "certificates")]
        ),
        Some(1.0)
    );
    assert_eq!(
        count(
            &fams,
            "etcd_member_certificate_expiry_timestamp_seconds",
            &[]
        ),
        0
    );
    assert_eq!(
        count(
            &fams,
            "etcd_exporter_client_certificate_expiry_timestamp_seconds",
            &[]
        ),
        0
    );
    exporter.stop().await;
}
