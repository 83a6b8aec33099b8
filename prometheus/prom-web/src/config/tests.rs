//! The file format as exporter-toolkit reads it: keys, values, messages, lines.
use super::*;

fn parse(text: &str) -> Result<WebConfigFile, String> {
    WebConfigFile::parse(text, Path::new("/etc/web/web.yml")).map_err(|e| e.to_string())
}

// A hash made by Python's bcrypt 5.0 (`bcrypt.hashpw(b"secret", bcrypt.gensalt(4))`).
const HASH: &str = "$2b$04$ye/dHC0lnGYkdjp9khLbz.8BD9Y5BtC4H9pmmT2AyhlZ7XxIcJVH.";

#[test]
fn empty_file_is_plain_http_without_auth() {
    for text in ["", "# nothing\n", "{}"] {
        let f = parse(text).unwrap();
        assert!(f.tls_server_config.is_none());
        assert!(f.basic_auth_users.is_none());
        assert!(f.http2());
    }
}

#[test]
fn relative_paths_resolve_against_the_file_directory() {
    let f = parse(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: /abs/server.key\n  client_ca_file: ../ca.crt\n",
    )
    .unwrap();
    let tls = f.tls_server_config.unwrap();
    assert_eq!(tls.cert_file.unwrap(), Path::new("/etc/web/server.crt"));
    assert_eq!(tls.key_file.unwrap(), Path::new("/abs/server.key"));
    assert_eq!(tls.client_ca_file.unwrap(), Path::new("/etc/web/../ca.crt"));
}

#[test]
fn unknown_keys_are_rejected_with_key_and_line() {
    let e = parse("tls_server_config:\n  cert_file: a\n  certfile: b\n").unwrap_err();
    assert!(
        e.starts_with("/etc/web/web.yml:3:3: tls_server_config.certfile: unknown field `certfile`"),
        "{e}"
    );
    let e = parse("# c\nbasic_auth:\n  a: b\n").unwrap_err();
    assert!(
        e.starts_with("/etc/web/web.yml:2:1: basic_auth: unknown field `basic_auth`"),
        "{e}"
    );
}

#[test]
fn errors_name_the_line_of_the_key() {
    let text = "# web config\nhttp_server_config:\n  http2: true\ntls_server_config:\n  cert_file: a\n  key_file: b\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n    - TLS_NOPE\n";
    assert_eq!(
        parse(text).unwrap_err(),
        "/etc/web/web.yml:9:5: tls_server_config.cipher_suites[1]: unknown cipher: TLS_NOPE"
    );
    let text = "tls_server_config:\n  cert_file: a\n  min_version: TLS11\n";
    assert_eq!(
        parse(text).unwrap_err(),
        "/etc/web/web.yml:3:3: tls_server_config.min_version: TLS version TLS11: rustls does not implement TLS 1.0 or 1.1; use TLS12 or TLS13"
    );
    let text = "tls_server_config: {cert_file: a, client_auth_type: Sometimes}\n";
    assert_eq!(
        parse(text).unwrap_err(),
        "/etc/web/web.yml:1:35: tls_server_config.client_auth_type: invalid ClientAuth: Sometimes"
    );
    // A syntax error: serde_yaml's own line.
    let e = parse("tls_server_config:\n  cert_file: [a\n").unwrap_err();
    assert!(e.starts_with("/etc/web/web.yml:2:"), "{e}");
    assert!(!e.contains(" at line "), "the location once: {e}");
}

#[test]
fn every_client_auth_type_go_names() {
    for (name, want) in [
        ("NoClientCert", ClientAuth::NoClientCert),
        ("RequestClientCert", ClientAuth::RequestClientCert),
        ("RequireAnyClientCert", ClientAuth::RequireAnyClientCert),
        ("RequireClientCert", ClientAuth::RequireAnyClientCert),
        (
            "VerifyClientCertIfGiven",
            ClientAuth::VerifyClientCertIfGiven,
        ),
        (
            "RequireAndVerifyClientCert",
            ClientAuth::RequireAndVerifyClientCert,
        ),
    ] {
        let f = parse(&format!("tls_server_config:\n  client_auth_type: {name}\n")).unwrap();
        assert_eq!(f.tls_server_config.unwrap().client_auth_type, Some(want));
    }
    let e = parse("tls_server_config:\n  client_auth_type: Always\n").unwrap_err();
    assert!(e.contains("invalid ClientAuth: Always"), "{e}");
    assert!(e.contains("tls_server_config.client_auth_type"), "{e}");
}

#[test]
fn versions_rustls_lacks_are_refused_not_ignored() {
    let e = parse("tls_server_config:\n  min_version: TLS10\n").unwrap_err();
    assert!(e.contains("rustls does not implement TLS 1.0"), "{e}");
    assert!(e.contains("tls_server_config.min_version"), "{e}");
    assert!(e.starts_with("/etc/web/web.yml:2:3: "), "{e}");
    let e = parse("tls_server_config:\n  max_version: TLS14\n").unwrap_err();
    assert!(e.contains("unknown TLS version: TLS14"), "{e}");
    let f = parse("tls_server_config:\n  min_version: TLS13\n").unwrap();
    assert_eq!(
        f.tls_server_config.unwrap().min_version,
        Some(TlsVersion::Tls13)
    );
}

#[test]
fn ciphers_by_go_name() {
    let f = parse(
        "tls_server_config:\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256]\n",
    )
    .unwrap();
    assert_eq!(
        f.tls_server_config.unwrap().cipher_suites.unwrap(),
        vec![
            Cipher::Tls12(rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384),
            Cipher::Tls13
        ]
    );
    let e = parse("tls_server_config:\n  cipher_suites:\n    - TLS_RSA_WITH_AES_128_CBC_SHA\n")
        .unwrap_err();
    assert!(e.contains("rustls implements no CBC"), "{e}");
    assert!(e.starts_with("/etc/web/web.yml:3:5: "), "{e}");
    // Go's InsecureCipherSuites are not in tls.CipherSuites(): exporter-toolkit calls them unknown.
    let e = parse("tls_server_config:\n  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n").unwrap_err();
    assert!(
        e.contains("unknown cipher: TLS_RSA_WITH_RC4_128_SHA"),
        "{e}"
    );
}

#[test]
fn curves_by_go_name() {
    let f = parse("tls_server_config:\n  curve_preferences: [CurveP384, X25519]\n").unwrap();
    assert_eq!(
        f.tls_server_config.unwrap().curve_preferences.unwrap(),
        vec![
            Curve(rustls::NamedGroup::secp384r1),
            Curve(rustls::NamedGroup::X25519)
        ]
    );
    let e = parse("tls_server_config:\n  curve_preferences: [CurveP521]\n").unwrap_err();
    assert!(e.contains("does not implement P-521"), "{e}");
    let e = parse("tls_server_config:\n  curve_preferences: [P256]\n").unwrap_err();
    assert!(e.contains("unknown curve: P256"), "{e}");
}

#[test]
fn headers_as_exporter_toolkit_allows_them() {
    let f = parse(
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
    )
    .unwrap();
    let h = f.http_server_config.unwrap().headers.unwrap();
    assert_eq!(h.0["X-Frame-Options"], "deny");
    let e = parse("http_server_config:\n  headers:\n    Server: x\n").unwrap_err();
    assert!(
        e.contains("HTTP header \"Server\" can not be configured"),
        "{e}"
    );
    let e = parse("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").unwrap_err();
    assert!(
        e.contains(
            "invalid value for X-Frame-Options. Expected one of: [\"deny\" \"sameorigin\"], but got: \"allow\""
        ),
        "{e}"
    );
    // Header names are exact, as in exporter-toolkit's map.
    assert!(parse("http_server_config:\n  headers:\n    x-frame-options: deny\n").is_err());
}

#[test]
fn http2_defaults_on() {
    assert!(parse("http_server_config: {}\n").unwrap().http2());
    assert!(!parse("http_server_config:\n  http2: false\n")
        .unwrap()
        .http2());
}

#[test]
fn bcrypt_hashes_are_checked_and_never_printed() {
    let f = parse(&format!("basic_auth_users:\n  alice: '{HASH}'\n")).unwrap();
    let users = f.basic_auth_users.unwrap();
    assert_eq!(users["alice"].as_str(), HASH);
    assert_eq!(users["alice"].cost(), 4);
    assert!(!format!("{users:?}").contains("$2b$"));
    for bad in [
        "plaintext-password",
        "$1$04$ye/dHC0lnGYkdjp9khLbz.8BD9Y5BtC4H9pmmT2AyhlZ7XxIcJVH.",
        "$2b$03$ye/dHC0lnGYkdjp9khLbz.8BD9Y5BtC4H9pmmT2AyhlZ7XxIcJVH.",
        "$2b$04$ye/dHC0lnGYkdjp9khLbz.8BD9Y5BtC4H9pmmT2AyhlZ7XxIcJVH",
    ] {
        let e = parse(&format!("basic_auth_users:\n  bob: '{bad}'\n")).unwrap_err();
        assert!(e.contains("basic_auth_users.bob"), "{e}");
        assert!(e.contains("not a bcrypt hash"), "{e}");
        assert!(!e.contains(bad), "the hash leaked into the error: {e}");
    }
    for version in ["2a", "2b", "2y"] {
        let h = HASH.replacen("2b", version, 1);
        assert!(parse(&format!("basic_auth_users:\n  u: '{h}'\n")).is_ok());
    }
}

#[test]
fn inline_key_is_a_secret() {
    let f = parse("tls_server_config:\n  key: 'PRIVATE'\n").unwrap();
    assert!(!format!("{f:?}").contains("PRIVATE"));
}

#[test]
fn rate_limit_is_refused() {
    let e = parse("rate_limit:\n  interval: 1s\n  burst: 5\n").unwrap_err();
    assert!(e.contains("rate_limit"), "{e}");
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn duplicate_keys_are_rejected() {
    let e = parse(&format!(
        "basic_auth_users:\n  a: '{HASH}'\n  a: '{HASH}'\n"
    ))
    .unwrap_err();
    assert!(e.contains("key \"a\" already set in map"), "{e}");
}
