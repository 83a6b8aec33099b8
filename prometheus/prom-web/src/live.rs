//! The web configuration in force, re-read when its file or a certificate it names changes on disk.
//!
//! exporter-toolkit re-reads the file on every request and the certificate on every handshake, so
//! that rotated certificates and changed users take effect without a restart. We look at the files'
//! metadata instead (a few `stat` calls per connection and per request) and parse only when it changed.
//! A file that no longer loads does not take the server down: the last good configuration stays in
//! force and the error is logged once per change.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::{HeaderName, HeaderValue};

use crate::config::{BcryptHash, WebConfigFile};

/// One loaded, checked configuration.
#[derive(Debug)]
pub(crate) struct WebConfig {
    /// None: plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub http2: bool,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub users: BTreeMap<String, BcryptHash>,
    /// The hash unknown users are checked against, at the highest cost any user has, so that an
    /// unknown user takes as long as a known one. Made on first need (bcrypt takes a while).
    pub dummy_hash: OnceLock<String>,
    /// The config file and the files it names.
    watched: Vec<PathBuf>,
}

impl WebConfig {
    /// No file: plain HTTP, no authentication, no extra headers.
    fn plain() -> WebConfig {
        WebConfig {
            tls: None,
            http2: false,
            headers: Vec::new(),
            users: BTreeMap::new(),
            dummy_hash: OnceLock::new(),
            watched: Vec::new(),
        }
    }

    /// Reads and checks `path` and the files it names. The error is one line naming the file.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("web config file {}: {e}", path.display()))?;
        let fail = |e: String| format!("web config file {}: {e}", path.display());
        // The YAML error names the file itself, with the line and column.
        let file = WebConfigFile::parse(&text, path).map_err(|e| format!("web config file {e}"))?;
        let http2 = file.http2();
        let mut watched = vec![path.to_path_buf()];
        let tls = match &file.tls_server_config {
            Some(t) => {
                watched.extend(crate::tls::files(t));
                if t.client_allowed_sans.is_some() && t.client_auth_type.is_none() {
                    tracing::warn!(file = %path.display(), "client_allowed_sans has no effect without client_auth_type");
                }
                crate::tls::server_config(t, http2).map_err(fail)?
            }
            None => None,
        };
        let headers = file
            .http_server_config
            .as_ref()
            .and_then(|h| h.headers.as_ref())
            .map(|h| {
                h.0.iter()
                    // "Unset if blank", as exporter-toolkit documents.
                    .filter(|(_, v)| !v.is_empty())
                    .filter_map(|(k, v)| {
                        Some((
                            HeaderName::try_from(k).ok()?,
                            HeaderValue::try_from(v).ok()?,
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(WebConfig {
            tls,
            http2,
            headers,
            users: file.basic_auth_users.unwrap_or_default(),
            dummy_hash: OnceLock::new(),
            watched,
        })
    }

    pub fn max_cost(&self) -> u32 {
        self.users.values().map(|h| h.cost()).max().unwrap_or(10)
    }
}

/// What a file looked like on disk; any difference means it was written, replaced or re-linked.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp(Vec<Option<FileStamp>>);

/// mtime, ctime (seconds and nanoseconds), size, inode, device.
type FileStamp = (i64, i64, i64, i64, u64, u64, u64);

fn stamp(files: &[PathBuf]) -> Stamp {
    Stamp(
        files
            .iter()
            .map(|f| {
                // metadata() follows symlinks: a Kubernetes secret volume swaps a symlink.
                std::fs::metadata(f).ok().map(|m| {
                    (
                        m.mtime(),
                        m.mtime_nsec(),
                        m.ctime(),
                        m.ctime_nsec(),
                        m.size(),
                        m.ino(),
                        m.dev(),
                    )
                })
            })
            .collect(),
    )
}

struct State {
    current: Arc<WebConfig>,
    stamp: Stamp,
    /// The stamp of a change that failed to load, so that it is reported once, not on every request.
    rejected: Option<Stamp>,
}

/// The configuration in force for one server.
pub(crate) struct LiveConfig {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl LiveConfig {
    /// Loads the file once; a bad file is an error here, before anything is served.
    pub fn start(path: Option<&Path>) -> Result<LiveConfig, String> {
        let config = match path {
            Some(p) => WebConfig::load(p)?,
            None => WebConfig::plain(),
        };
        let stamp = stamp(&config.watched);
        Ok(LiveConfig {
            path: path.map(Path::to_path_buf),
            state: Mutex::new(State {
                current: Arc::new(config),
                stamp,
                rejected: None,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every update is a plain assignment: a panic elsewhere leaves consistent data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configuration in force, re-read first if a watched file changed.
    pub fn current(&self) -> Arc<WebConfig> {
        let Some(path) = &self.path else {
            return self.lock().current.clone();
        };
        let (current, old_stamp, rejected) = {
            let st = self.lock();
            (st.current.clone(), st.stamp.clone(), st.rejected.clone())
        };
        // The file reads happen without the lock held.
        let now = stamp(&current.watched);
        if now == old_stamp || Some(&now) == rejected.as_ref() {
            return current;
        }
        let result = WebConfig::load(path).and_then(|new| {
            if new.tls.is_some() != current.tls.is_some() {
                return Err(format!(
                    "web config file {}: turning TLS on or off needs a restart",
                    path.display()
                ));
            }
            if new.tls.is_some() && new.http2 != current.http2 {
                tracing::warn!(file = %path.display(), "http_server_config.http2 changes take effect on restart");
            }
            Ok(new)
        });
        let mut st = self.lock();
        let outcome = match result {
            Ok(mut new) => {
                new.http2 = current.http2;
                // When the set of files is the same, the stamp taken before reading is kept: a write
                // during the read is then seen as a further change.
                let new_stamp = if new.watched == current.watched {
                    now
                } else {
                    stamp(&new.watched)
                };
                let (tls, users) = (new.tls.is_some(), new.users.len());
                st.current = Arc::new(new);
                st.stamp = new_stamp;
                st.rejected = None;
                Ok((tls, users))
            }
            Err(e) => {
                st.rejected = Some(now);
                Err(e)
            }
        };
        let in_force = st.current.clone();
        drop(st);
        match outcome {
            Ok((tls, users)) => {
                tracing::info!(file = %path.display(), tls, users, "web config reloaded")
            }
            Err(e) => {
                tracing::error!(error = %e, "web config not reloaded; the last good one stays in force")
            }
        }
        in_force
    }
}
