//! The five client authentication policies of Go's crypto/tls, by the names exporter-toolkit takes,
//! and `client_allowed_sans`. Expected outcomes are Go's documented semantics (`tls.ClientAuthType`):
//! whether a certificate is required, and whether it must chain to `client_ca_file`.

use crate::support::{client, Ca, Dir, Server};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Served,
    Refused,
}
use Outcome::*;

async fn outcome(server: &Server, ca: &str, identity: Option<reqwest::Identity>) -> Outcome {
    match client(ca, identity)
        .get(format!("{}/", server.https()))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => Served,
        _ => Refused,
    }
}

#[tokio::test]
async fn every_client_auth_type() {
    let d = Dir::new();
    let trusted = d.ca.client(&["scraper.example"]);
    let rogue = Ca::new("rogue CA").client(&["scraper.example"]);
    // (policy, with client_ca_file, no certificate, trusted certificate, rogue certificate)
    let cases = [
        ("NoClientCert", false, Served, Served, Served),
        ("RequestClientCert", false, Served, Served, Served),
        ("RequireAnyClientCert", false, Refused, Served, Served),
        ("RequireClientCert", false, Refused, Served, Served),
        ("VerifyClientCertIfGiven", true, Served, Served, Refused),
        ("RequireAndVerifyClientCert", true, Refused, Served, Refused),
    ];
    for (policy, with_ca, none, good, bad) in cases {
        let ca_line = if with_ca {
            "  client_ca_file: ca.crt\n"
        } else {
            ""
        };
        let path = d.config(&format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {policy}\n{ca_line}"
        ));
        let server = Server::start(Server::with_file(&path)).await;
        assert_eq!(
            outcome(&server, &d.ca.pem, None).await,
            none,
            "{policy}, no certificate"
        );
        assert_eq!(
            outcome(&server, &d.ca.pem, Some(trusted.identity())).await,
            good,
            "{policy}, trusted certificate"
        );
        assert_eq!(
            outcome(&server, &d.ca.pem, Some(rogue.identity())).await,
            bad,
            "{policy}, certificate of another CA"
        );
    }
}

#[tokio::test]
async fn client_allowed_sans_must_match_exactly() {
    let d = Dir::new();
    let path = d.config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  client_allowed_sans: [prometheus.monitoring.svc]\n",
    );
    let server = Server::start(Server::with_file(&path)).await;
    let allowed =
        d.ca.client(&["node-1.example", "prometheus.monitoring.svc"]);
    let other = d.ca.client(&["prometheus.monitoring.svc.evil"]);
    assert_eq!(
        outcome(&server, &d.ca.pem, Some(allowed.identity())).await,
        Served
    );
    assert_eq!(
        outcome(&server, &d.ca.pem, Some(other.identity())).await,
        Refused
    );
    assert_eq!(outcome(&server, &d.ca.pem, None).await, Refused);
}
