use std::path::Path;
use std::time::Duration;

use super::*;

fn settings(yaml: &str) -> HttpClientConfig {
    serde_yaml::from_str(yaml).unwrap()
}

#[test]
fn validate_as_prometheus_common() {
    // Messages of prometheus/common's HTTPClientConfig.Validate.
    let e = settings("basic_auth: {username: u}\nbearer_token: t\n")
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "at most one of basic_auth, authorization and bearer_token(_file) must be configured"
    );
    let e = settings("authorization: {type: Basic, credentials: x}\n")
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "authorization type cannot be set to \"basic\", use \"basic_auth\" instead"
    );
    let e = settings("tls_config: {min_version: SSL3}\n")
        .validate()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "tls_config.min_version: unknown TLS version: SSL3"
    );
    assert_eq!(e.key(), "min_version");
    let e = settings("tls_config: {server_name: 'not a name'}\n")
        .validate()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("tls_config.server_name \"not a name\": "),
        "{e}"
    );
    settings("bearer_token_file: t\ntls_config: {min_version: TLS12, server_name: etcd-0}\n")
        .validate()
        .unwrap();
}

#[test]
fn unknown_keys_are_refused() {
    let e = serde_yaml::from_str::<HttpClientConfig>("bearer_tokn: x\n").unwrap_err();
    assert!(e.to_string().contains("unknown field `bearer_tokn`"), "{e}");
}

#[test]
fn secrets_are_read_from_files_relative_to_the_configuration() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "s3cret\n").unwrap();
    std::fs::write(dir.path().join("token"), "tok3n\r\n").unwrap();
    let abs = dir.path().join("credentials");
    std::fs::write(&abs, "cr3d").unwrap();
    let h = settings(&format!(
        "basic_auth: {{username: u, password_file: password}}\nbearer_token_file: token\nauthorization: {{credentials_file: {}}}\ntls_config: {{ca_file: ca.pem, cert_file: /etc/c.pem}}\n",
        abs.display()
    ))
    .resolve_files(dir.path())
    .unwrap();
    let basic = h.basic_auth.as_ref().unwrap();
    assert_eq!(basic.password.as_ref().unwrap().expose(), "s3cret");
    assert!(basic.password_file.is_none());
    assert_eq!(h.bearer_token.as_ref().unwrap().expose(), "tok3n");
    let auth = h.authorization.as_ref().unwrap();
    assert_eq!(auth.credentials.as_ref().unwrap().expose(), "cr3d");
    assert_eq!(h.tls_config.ca_file.unwrap(), dir.path().join("ca.pem"));
    assert_eq!(h.tls_config.cert_file.unwrap(), Path::new("/etc/c.pem"));

    let e = settings("basic_auth: {username: u, password_file: missing}\n")
        .resolve_files(dir.path())
        .unwrap_err();
    let want = format!(
        "basic_auth.password_file {}: ",
        dir.path().join("missing").display()
    );
    assert!(e.to_string().starts_with(&want), "{e}");
    assert_eq!(e.key(), "password_file");
}

#[test]
fn an_unreadable_tls_file_is_named() {
    let e = settings("tls_config: {ca_file: /nonexistent/ca.pem}\n")
        .client(Duration::from_secs(1))
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("tls_config.ca_file /nonexistent/ca.pem: "),
        "{e}"
    );
}

#[test]
fn credentials_go_into_the_authorization_header() {
    let header = |yaml: &str| {
        let h = settings(yaml);
        let client = h.client(Duration::from_secs(1)).unwrap();
        let req = h
            .authorize(client.get("http://127.0.0.1:1/"))
            .build()
            .unwrap();
        req.headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_string())
    };
    // RFC 7617: base64("alerter:s3cret").
    assert_eq!(
        header("basic_auth: {username: alerter, password: s3cret}\n").unwrap(),
        "Basic YWxlcnRlcjpzM2NyZXQ="
    );
    assert_eq!(header("bearer_token: tok\n").unwrap(), "Bearer tok");
    assert_eq!(
        header("authorization: {credentials: tok}\n").unwrap(),
        "Bearer tok"
    );
    assert_eq!(
        header("authorization: {type: Token, credentials: tok}\n").unwrap(),
        "Token tok"
    );
    assert_eq!(header("{}\n"), None);
}

#[test]
fn settings_never_print_their_secrets() {
    let h = settings(
        "basic_auth: {username: u, password: pw-SECRET}\nbearer_token: tok-SECRET\nproxy_url: http://user:px-SECRET@proxy:3128\n",
    );
    assert!(!format!("{h:?}").contains("SECRET"), "{h:?}");
}

#[tokio::test]
async fn a_failed_request_is_reported_without_its_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}/services/T0/B0/TOKEN-SECRET");
    let e = reqwest::Client::new().post(&url).send().await.unwrap_err();
    let text = http_error(e);
    assert!(!text.contains("SECRET"), "{text}");
    assert!(!text.is_empty());
    assert_eq!(redact(&url), format!("http://127.0.0.1:{port}"));
    assert_eq!(redact("not a url"), "<invalid url>");
}
