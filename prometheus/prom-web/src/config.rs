//! The web configuration file of Prometheus' exporter-toolkit (`--web.config.file`), read with its
//! semantics so that a file written for Prometheus or node_exporter works here unchanged:
//! unknown keys are errors (exporter-toolkit unmarshals strictly), relative paths resolve against the
//! file's directory, enumerated values are checked as exporter-toolkit checks them and with its words.
//!
//! Where exporter-toolkit accepts a value that rustls cannot honour (TLS 1.0/1.1, CBC or RSA key
//! exchange cipher suites, P-521), the file is refused with a message saying so: silently serving
//! something other than what the file asks for would be worse than not starting.
//!
//! Values are checked while deserializing (as exporter-toolkit's UnmarshalYAML methods do), so that
//! serde_yaml's error carries the key path and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer};
use serde::Deserialize;
use yaml_location::YamlError;

/// A value that must never reach a log: `Debug` prints a placeholder.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// The file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfigFile {
    pub tls_server_config: Option<TlsServerConfig>,
    pub http_server_config: Option<HttpServerConfig>,
    #[serde(default, deserialize_with = "strict_map")]
    pub basic_auth_users: Option<BTreeMap<String, BcryptHash>>,
    /// exporter-toolkit 0.14's request rate limiter: refused, not ignored (see [`Unsupported`]).
    #[serde(default)]
    pub rate_limit: Option<Unsupported>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// The certificate inline, as PEM (exporter-toolkit 0.11 and later); `cert_file` wins when both are set.
    pub cert: Option<String>,
    pub key: Option<Secret>,
    pub client_ca: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub client_auth_type: Option<ClientAuth>,
    pub client_ca_file: Option<PathBuf>,
    pub cipher_suites: Option<Vec<Cipher>>,
    pub curve_preferences: Option<Vec<Curve>>,
    pub min_version: Option<TlsVersion>,
    pub max_version: Option<TlsVersion>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub client_allowed_sans: Option<Vec<String>>,
}

impl TlsServerConfig {
    /// exporter-toolkit's `IsEnabled`: TLS is on as soon as one TLS setting is present.
    pub fn is_enabled(&self) -> bool {
        let set = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        let set_path = |p: &Option<PathBuf>| p.as_ref().is_some_and(|p| !p.as_os_str().is_empty());
        set(&self.cert)
            || self.key.as_ref().is_some_and(|k| !k.0.is_empty())
            || set(&self.client_ca)
            || set_path(&self.cert_file)
            || set_path(&self.key_file)
            || set_path(&self.client_ca_file)
            || self
                .client_auth_type
                .is_some_and(|c| c != ClientAuth::Unset)
    }

    /// exporter-toolkit's `SetDirectory`: relative file names are relative to the config file's folder.
    fn resolve_paths(&mut self, dir: &Path) {
        for p in [
            &mut self.cert_file,
            &mut self.key_file,
            &mut self.client_ca_file,
        ] {
            if let Some(path) = p {
                if path.as_os_str().is_empty() {
                    *p = None;
                } else if path.is_relative() {
                    *path = dir.join(&*path);
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpServerConfig {
    /// HTTP/2 over TLS (ALPN "h2"); fixed at start-up, as in exporter-toolkit.
    pub http2: Option<bool>,
    pub headers: Option<Headers>,
}

/// Go's `tls.ClientAuthType`, by the names exporter-toolkit accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// The empty string: the same as NoClientCert, but does not by itself turn TLS on.
    Unset,
    NoClientCert,
    /// Ask for a certificate; accept none, and do not verify one.
    RequestClientCert,
    /// Require a certificate, do not verify it (also spelled RequireClientCert).
    RequireAnyClientCert,
    /// Verify a certificate when one is sent; accept none.
    VerifyClientCertIfGiven,
    RequireAndVerifyClientCert,
}

impl<'de> Deserialize<'de> for ClientAuth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "" => ClientAuth::Unset,
            "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return Err(de::Error::custom(format!("invalid ClientAuth: {s}"))),
        })
    }
}

/// A cipher suite by Go's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cipher {
    /// A TLS 1.3 suite: Go accepts the name and does not let it be configured (all three are always on).
    Tls13,
    Tls12(rustls::CipherSuite),
}

/// Go's `tls.CipherSuites()` entries for TLS 1.2 that rustls implements.
const TLS12_CIPHERS: &[(&str, rustls::CipherSuite)] = &[
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ),
    (
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    ),
    (
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
    (
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ),
];

const TLS13_CIPHERS: &[&str] = &[
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

/// Names Go's `tls.CipherSuites()` lists that rustls deliberately does not implement.
const GO_ONLY_CIPHERS: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
];

impl<'de> Deserialize<'de> for Cipher {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if TLS13_CIPHERS.contains(&s.as_str()) {
            return Ok(Cipher::Tls13);
        }
        if let Some((_, suite)) = TLS12_CIPHERS.iter().find(|(name, _)| *name == s) {
            return Ok(Cipher::Tls12(*suite));
        }
        if GO_ONLY_CIPHERS.contains(&s.as_str()) {
            let offered: Vec<&str> = TLS12_CIPHERS.iter().map(|(n, _)| *n).collect();
            return Err(de::Error::custom(format!(
                "cipher {s}: rustls implements no CBC or RSA key exchange suite; use one of {}",
                offered.join(", ")
            )));
        }
        Err(de::Error::custom(format!("unknown cipher: {s}")))
    }
}

/// An elliptic curve by Go's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Curve(pub rustls::NamedGroup);

impl<'de> Deserialize<'de> for Curve {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Curve(match s.as_str() {
            "X25519" => rustls::NamedGroup::X25519,
            "CurveP256" => rustls::NamedGroup::secp256r1,
            "CurveP384" => rustls::NamedGroup::secp384r1,
            "CurveP521" => {
                return Err(de::Error::custom(
                    "curve CurveP521: rustls does not implement P-521; use X25519, CurveP256 or CurveP384",
                ))
            }
            _ => return Err(de::Error::custom(format!("unknown curve: {s}"))),
        }))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "TLS12" => Ok(TlsVersion::Tls12),
            "TLS13" => Ok(TlsVersion::Tls13),
            "TLS10" | "TLS11" => Err(de::Error::custom(format!(
                "TLS version {s}: rustls does not implement TLS 1.0 or 1.1; use TLS12 or TLS13"
            ))),
            _ => Err(de::Error::custom(format!("unknown TLS version: {s}"))),
        }
    }
}

/// `http_server_config.headers`: only the names exporter-toolkit allows, enumerated values checked.
#[derive(Debug, Clone, Default)]
pub struct Headers(pub BTreeMap<String, String>);

/// exporter-toolkit's `extraHTTPHeaders`: header name and, where it is an enumeration, the values.
const ALLOWED_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map: BTreeMap<String, String> = strict_map(d)?.unwrap_or_default();
        for (name, value) in &map {
            let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == name) else {
                return Err(de::Error::custom(format!(
                    "HTTP header {name:?} can not be configured"
                )));
            };
            if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
                let quoted: Vec<String> = allowed.iter().map(|v| format!("{v:?}")).collect();
                return Err(de::Error::custom(format!(
                    "invalid value for {name}. Expected one of: [{}], but got: {value:?}",
                    quoted.join(" ")
                )));
            }
            if axum::http::HeaderValue::from_str(value).is_err() {
                return Err(de::Error::custom(format!(
                    "invalid value for {name}: not a valid HTTP header value"
                )));
            }
        }
        Ok(Headers(map))
    }
}

/// A mapping whose keys must differ, as yaml.v2's strict mode requires (serde_yaml keeps the last).
fn strict_map<'de, D, V>(d: D) -> Result<Option<BTreeMap<String, V>>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Strict<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> de::Visitor<'de> for Strict<V> {
        type Value = Option<BTreeMap<String, V>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a mapping")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<Self::Value, D2::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    return Err(de::Error::custom(format!("key {key:?} already set in map")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(Some(out))
        }
    }
    d.deserialize_option(Strict(std::marker::PhantomData))
}

/// A bcrypt hash as `htpasswd -B` and Python's `bcrypt` write it. The hash is a secret: it is never
/// printed, not even in the error that rejects it.
#[derive(Clone, PartialEq, Eq)]
pub struct BcryptHash(Secret);

impl BcryptHash {
    pub fn as_str(&self) -> &str {
        self.0.expose()
    }

    /// The cost, from `$2b$NN$`.
    pub fn cost(&self) -> u32 {
        self.as_str()
            .get(4..6)
            .and_then(|c| c.parse().ok())
            .unwrap_or(bcrypt::DEFAULT_COST)
    }

    fn parse(s: String) -> Result<BcryptHash, String> {
        const ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let b = s.as_bytes();
        let version_ok = ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p));
        let cost_ok = s
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| (4..=31).contains(&c));
        let body_ok = b.len() == 60 && b[6] == b'$' && b[7..].iter().all(|c| ALPHABET.contains(c));
        if version_ok && cost_ok && body_ok {
            Ok(BcryptHash(Secret(s)))
        } else {
            Err("not a bcrypt hash: expected $2a$, $2b$ or $2y$, a cost from 04 to 31 and 60 characters in all, as `htpasswd -nBC 10 \"\"` writes it".to_string())
        }
    }
}

impl fmt::Debug for BcryptHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<bcrypt hash>")
    }
}

impl<'de> Deserialize<'de> for BcryptHash {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        BcryptHash::parse(String::deserialize(d)?).map_err(de::Error::custom)
    }
}

/// A key exporter-toolkit knows that etcd-monitor does not implement: refused with a message, since
/// ignoring it would leave the user believing it is in force.
#[derive(Debug)]
pub struct Unsupported;

impl<'de> Deserialize<'de> for Unsupported {
    fn deserialize<D: Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(de::Error::custom(
            "not supported by etcd-monitor (use --web.max-connections and a reverse proxy to limit clients)",
        ))
    }
}

impl WebConfigFile {
    /// Parses the text of `path`; relative paths in it become relative to its folder. The error is
    /// `FILE:LINE:COLUMN: KEY.PATH: reason` (the location when it can be found).
    pub fn parse(text: &str, path: &Path) -> Result<WebConfigFile, YamlError> {
        // An empty file (or only comments) is valid and means no TLS and no authentication.
        let parsed: Option<WebConfigFile> =
            serde_path_to_error::deserialize(serde_yaml::Deserializer::from_str(text))
                .map_err(|e| locate_error(text, path, e))?;
        let mut file = parsed.unwrap_or_default();
        if let Some(tls) = &mut file.tls_server_config {
            tls.resolve_paths(path.parent().unwrap_or(Path::new("")));
        }
        Ok(file)
    }

    pub fn http2(&self) -> bool {
        self.http_server_config
            .as_ref()
            .and_then(|h| h.http2)
            .unwrap_or(true)
    }
}

/// serde_yaml knows the line of a syntax error, but for a bad value only that of the enclosing mapping;
/// serde_path_to_error knows the key path. The line of the key is found by following the path down the
/// text, each key further in and below its parent (block style; a flow-style value stays on its
/// parent's line).
fn locate_error(
    text: &str,
    file: &Path,
    e: serde_path_to_error::Error<serde_yaml::Error>,
) -> YamlError {
    use serde_path_to_error::Segment;
    let mut keys: Vec<Segment> = e.path().iter().cloned().collect();
    let inner = e.into_inner();
    let mut message = yaml_location::message(&inner).replace('\n', " ");
    // serde_yaml prefixes the path it knows (the enclosing mapping); ours is longer.
    if let Some((_, rest)) = message.split_once(": ").filter(|(p, _)| !p.contains(' ')) {
        message = rest.to_string();
    }
    // For an unknown key, serde_path_to_error's path ends at the key or at its mapping.
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split('`').next())
    {
        let named = matches!(keys.last(), Some(Segment::Map { key }) if key == field);
        if !named {
            keys.push(Segment::Map {
                key: field.to_string(),
            });
        }
    }
    let path = keys
        .iter()
        .map(|s| match s {
            Segment::Seq { index } => format!("[{index}]"),
            Segment::Map { key } => format!(".{key}"),
            _ => String::new(),
        })
        .collect::<String>();
    let path = path.trim_start_matches('.');
    let at = key_location(text, &keys).or_else(|| yaml_location::position(&inner));
    let message = if path.is_empty() {
        message
    } else {
        format!("{path}: {message}")
    };
    YamlError::new(file.display().to_string(), 0, 0, message).at(at.unwrap_or((0, 0)))
}

/// The line and column of the key at the end of `keys`, 1-based.
fn key_location(text: &str, keys: &[serde_path_to_error::Segment]) -> Option<(usize, usize)> {
    use serde_path_to_error::Segment;
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut at, mut parent_indent): (Option<usize>, Option<usize>) = (None, None);
    for key in keys {
        let from = at.map_or(0, |a| a + 1);
        match key {
            Segment::Map { key } => {
                if let Some(a) = at {
                    // A flow mapping on the parent's line: the key is there.
                    let line = lines.get(a)?;
                    if line.contains('{') && line.contains(&format!("{key}:")) {
                        continue;
                    }
                }
                let found = (from..lines.len()).find(|&i| {
                    let l = lines[i];
                    let body = l.trim_start().trim_start_matches("- ");
                    let deeper = parent_indent.is_none_or(|p| indent(l) > p);
                    deeper
                        && [
                            format!("{key}:"),
                            format!("\"{key}\":"),
                            format!("'{key}':"),
                        ]
                        .iter()
                        .any(|k| body.starts_with(k.as_str()))
                })?;
                at = Some(found);
                parent_indent = Some(indent(lines[found]));
            }
            Segment::Seq { index } => {
                let a = at?;
                if lines.get(a)?.contains('[') {
                    continue;
                }
                let found = (from..lines.len())
                    .filter(|&i| lines[i].trim_start().starts_with("- "))
                    .nth(*index)?;
                at = Some(found);
                parent_indent = Some(indent(lines[found]));
            }
            _ => {}
        }
    }
    let a = at?;
    let line = lines[a];
    let column = match keys.last() {
        Some(Segment::Map { key }) => line.find(key.as_str()),
        _ => None,
    }
    .unwrap_or_else(|| indent(line));
    Some((a + 1, column + 1))
}

#[cfg(test)]
mod tests;
