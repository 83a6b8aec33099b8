//! TLS, basic auth and headers from a web config file, as exporter-toolkit serves them, checked with
//! real clients (reqwest over rustls, curl over OpenSSL) and hashes from Python's bcrypt.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{client, Dir, Server};
use etcd_testkit::bcrypt_hash;
use reqwest::StatusCode;

#[tokio::test]
async fn tls_basic_auth_and_headers() {
    let d = Dir::new();
    let hash = bcrypt_hash("s3cret", 10);
    // Relative file names: they resolve against the config file's folder, not the working directory.
    let path = d.config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=31536000\n\
         basic_auth_users:\n  alice: '{hash}'\n"
    ));
    let server = Server::start(Server::with_file(&path)).await;
    let http = client(&d.ca.pem, None);
    let url = format!("{}/", server.https());

    // Every path asks for credentials, those the router does not have too.
    let unknown_path = http
        .get(format!("{}/no/such/path", server.https()))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_path.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_path.headers()["x-frame-options"], "deny");
    let anonymous = http.get(&url).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["www-authenticate"], "Basic");
    // exporter-toolkit sets the headers before it checks the password: on a 401 too.
    assert_eq!(anonymous.headers()["x-frame-options"], "deny");

    for (user, password) in [("alice", "wrong"), ("bob", "s3cret"), ("alice", "")] {
        let r = http
            .get(&url)
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{user}:{password}");
    }

    let ok = http
        .get(&url)
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["x-frame-options"], "deny");
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        ok.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert_eq!(ok.text().await.unwrap(), "ok");

    // Plain HTTP on a TLS port gets nothing served.
    let plain = reqwest::Client::new()
        .get(format!("{}/", server.http()))
        .basic_auth("alice", Some("s3cret"))
        .send()
        .await;
    assert!(plain.map(|r| !r.status().is_success()).unwrap_or(true));
}

#[tokio::test]
async fn hashes_from_htpasswd_and_python_of_every_version_prefix() {
    let d = Dir::new();
    // Python's bcrypt writes $2b$; the same hash under $2a$ and $2y$ is what htpasswd and PHP write.
    let hash = bcrypt_hash("pw", 4);
    let users: String = ["2a", "2b", "2y"]
        .iter()
        .map(|v| {
            format!(
                "  user{v}: '{}'\n",
                hash.replacen("$2b$", &format!("${v}$"), 1)
            )
        })
        .collect();
    let path = d.config(&format!("basic_auth_users:\n{users}"));
    let server = Server::start(Server::with_file(&path)).await;
    let http = reqwest::Client::new();
    for v in ["2a", "2b", "2y"] {
        let r = http
            .get(format!("{}/", server.http()))
            .basic_auth(format!("user{v}"), Some("pw"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "${v}$");
    }
}

#[tokio::test]
async fn bcrypt_results_are_cached_and_unknown_users_cost_as_much() {
    let d = Dir::new();
    // Cost 12: a few hundred milliseconds a check, far above a cached answer.
    let path = d.config(&format!(
        "basic_auth_users:\n  alice: '{}'\n",
        bcrypt_hash("pw", 12)
    ));
    let server = Server::start(Server::with_file(&path)).await;
    let http = reqwest::Client::new();
    let url = format!("{}/", server.http());
    let timed = |user: &'static str, pw: &'static str| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let t = Instant::now();
            let r = http
                .get(&url)
                .basic_auth(user, Some(pw))
                .send()
                .await
                .unwrap();
            (r.status(), t.elapsed())
        }
    };
    let (status, first) = timed("alice", "pw").await;
    assert_eq!(status, StatusCode::OK);
    let (status, again) = timed("alice", "pw").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        again * 5 < first,
        "a cached check took {again:?}, the first {first:?}"
    );
    let (status, wrong) = timed("alice", "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, unknown) = timed("mallory", "nope").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // An unknown user pays a bcrypt check of the same cost, so timing does not reveal who exists.
    assert!(
        unknown * 2 > wrong,
        "unknown user {unknown:?}, known user with a wrong password {wrong:?}"
    );
}

#[tokio::test]
async fn new_users_and_rotated_certificates_take_effect_without_restart() {
    let d = Dir::new();
    let alice = bcrypt_hash("a", 4);
    let bob = bcrypt_hash("b", 4);
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let path = d.config(&format!("{base}basic_auth_users:\n  alice: '{alice}'\n"));
    let server = Server::start(Server::with_file(&path)).await;
    let url = format!("{}/", server.https());
    let get = |user: &'static str, pw: &'static str| {
        let (ca, url) = (d.ca.pem.clone(), url.clone());
        async move {
            client(&ca, None)
                .get(&url)
                .basic_auth(user, Some(pw))
                .send()
                .await
        }
    };
    assert_eq!(get("alice", "a").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        get("bob", "b").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    d.config(&format!(
        "{base}basic_auth_users:\n  alice: '{alice}'\n  bob: '{bob}'\n"
    ));
    assert!(
        etcd_testkit::wait_for("the new user let in", Duration::from_secs(5), || async {
            get("bob", "b").await.map(|r| r.status()).ok() == Some(StatusCode::OK)
        })
        .await
        .is_ok(),
        "the new user was not let in"
    );

    // A broken file: the last good one stays in force.
    d.config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  bogus: 1\n");
    assert_eq!(get("bob", "b").await.unwrap().status(), StatusCode::OK);

    // Rotate the certificate in place (cert-manager style): new connections get the new one.
    let fresh = d.ca.server();
    d.config(&format!("{base}basic_auth_users:\n  alice: '{alice}'\n"));
    fresh.write(d.dir.path(), "server");
    let served = |ca: String, url: String| async move {
        let r = client(&ca, None).get(&url).send().await.ok()?;
        let info = r.extensions().get::<reqwest::tls::TlsInfo>()?;
        info.peer_certificate().map(|c| c.to_vec())
    };
    assert!(
        etcd_testkit::wait_for(
            "the rotated certificate served",
            Duration::from_secs(5),
            || {
                let (ca, url, want) = (d.ca.pem.clone(), url.clone(), fresh.der.clone());
                async move { served(ca, url).await == Some(want) }
            }
        )
        .await
        .is_ok(),
        "the rotated certificate is not served"
    );
    assert_eq!(
        get("bob", "b").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn tls_versions_as_configured() {
    let d = Dir::new();
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let tls12_client = |ca: &str| {
        reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
            .max_tls_version(reqwest::tls::Version::TLS_1_2)
            .build()
            .unwrap()
    };
    // Default: TLS12 to TLS13.
    let server = Server::start(Server::with_file(&d.config(base))).await;
    let r = tls12_client(&d.ca.pem)
        .get(format!("{}/", server.https()))
        .send()
        .await;
    assert_eq!(r.unwrap().status(), StatusCode::OK);
    drop(server);

    let server = Server::start(Server::with_file(
        &d.config(&format!("{base}  min_version: TLS13\n")),
    ))
    .await;
    assert!(tls12_client(&d.ca.pem)
        .get(format!("{}/", server.https()))
        .send()
        .await
        .is_err());
    assert_eq!(
        client(&d.ca.pem, None)
            .get(format!("{}/", server.https()))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

/// curl (OpenSSL) negotiates HTTP/2 by ALPN when `http2` is on, the default, and not otherwise.
#[tokio::test]
async fn http2_by_alpn_as_configured() {
    let d = Dir::new();
    let base = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    for (extra, want) in [("", "2"), ("http_server_config:\n  http2: false\n", "1.1")] {
        let server = Server::start(Server::with_file(&d.config(&format!("{base}{extra}")))).await;
        let url = format!("{}/", server.https());
        let ca = d.path("ca.crt");
        let out = tokio::task::spawn_blocking(move || {
            Command::new("curl")
                .args(["-sS", "--http2", "--cacert"])
                .arg(ca)
                .args([
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version} %{http_code}",
                    &url,
                ])
                .output()
                .expect("curl runs")
        })
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{want} 200"),
            "{extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_bad_file_fails_validation_in_one_line() {
    let d = Dir::new();
    for (text, want) in [
        ("tls_server_config:\n  cert_file: server.crt\n", "missing one of key or key_file"),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "tls_server_config.cert_file: cannot read",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
            "client CA's have been configured without a Client Auth Policy",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n",
            "needs client_ca_file",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: ca.crt\n",
            "tls_server_config.key_file",
        ),
        ("http_server_config:\n  headers:\n    Server: x\n", "web.yml:2:3: http_server_config.headers: HTTP header \"Server\" can not be configured"),
    ] {
        let path = d.config(text);
        let opts = Server::with_file(&path);
        let e = format!("{:#}", opts.validate().unwrap_err());
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains(&path.display().to_string()), "{e}");
        assert!(e.contains(want), "{text:?}: {e}");
        // serve() refuses the same file before serving anything.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = prom_web::serve(listener, axum::Router::new(), opts, async {}).await;
        assert!(r.is_err());
    }
    let key = std::fs::read_to_string(d.path("server.key")).unwrap();
    let path = d.config(&format!(
        "tls_server_config:\n  cert_file: ca.crt\n  key: |\n{}",
        key.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    ));
    let e = format!("{:#}", Server::with_file(&path).validate().unwrap_err());
    assert!(!e.contains("PRIVATE KEY"), "the key leaked: {e}");
}
