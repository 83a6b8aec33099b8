//! `basic_auth_users` and `http_server_config.headers`, as exporter-toolkit's handler applies them.
//!
//! bcrypt is slow on purpose (a cost of 10 takes about 60 ms), so, as exporter-toolkit does: checks run
//! one at a time, so that a flood of wrong passwords takes one core and not all of them, and results are
//! cached, so that a scrape every 15 s does not pay the cost each time. An unknown user is checked
//! against a dummy hash of the same cost, so that timing does not tell which users exist. Unlike
//! exporter-toolkit the cache is keyed by a SHA-256 of user, hash and password, not the plaintext.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::live::{LiveConfig, WebConfig};

/// exporter-toolkit's cache size.
const CACHE_SIZE: usize = 100;

pub(crate) struct Guard {
    pub live: Arc<LiveConfig>,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    /// One bcrypt at a time.
    bcrypt_turn: Semaphore,
}

impl Guard {
    pub fn new(live: Arc<LiveConfig>) -> Guard {
        Guard {
            live,
            cache: Mutex::new(HashMap::new()),
            bcrypt_turn: Semaphore::new(1),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], bool>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the request's credentials name a configured user with the right password.
    async fn authorized(
        &self,
        config: &Arc<WebConfig>,
        authorization: Option<&HeaderValue>,
    ) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let known = config.users.get(&user).map(|h| h.as_str().to_string());
        let valid_user = known.is_some();
        let key = cache_key(&user, known.as_deref().unwrap_or(""), &password);
        if let Some(ok) = self.cache().get(&key).copied() {
            return ok;
        }
        let Ok(_turn) = self.bcrypt_turn.acquire().await else {
            return false;
        };
        // Another request may have checked the same credentials while this one waited.
        if let Some(ok) = self.cache().get(&key).copied() {
            return ok;
        }
        let config = config.clone();
        let matched = tokio::task::spawn_blocking(move || {
            let hash = match &known {
                Some(h) => h.as_str(),
                None => config.dummy_hash.get_or_init(|| {
                    bcrypt::hash("etcd-monitor: no such user", config.max_cost())
                        .unwrap_or_default()
                }),
            };
            bcrypt::verify(&password, hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        let ok = valid_user && matched;
        let mut cache = self.cache();
        if cache.len() >= CACHE_SIZE {
            // Drop a tenth, in the map's order, which its random hasher keys make arbitrary.
            let drop: Vec<[u8; 32]> = cache.keys().take(CACHE_SIZE / 10).copied().collect();
            for k in drop {
                cache.remove(&k);
            }
        }
        cache.insert(key, ok);
        ok
    }
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [user, hash, password] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// Go's `Request.BasicAuth`: "Basic " in any case, standard base64, user and password split at the
/// first colon.
fn basic_credentials(value: &HeaderValue) -> Option<(String, String)> {
    let value = value.to_str().ok()?;
    let (scheme, encoded) = value.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("basic ") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The middleware: headers on every answer, the 401 included; basic auth when users are configured.
pub(crate) async fn guard(
    State(guard): State<Arc<Guard>>,
    request: Request,
    next: Next,
) -> Response {
    let config = guard.live.current();
    let mut response = if config.users.is_empty()
        || guard
            .authorized(&config, request.headers().get(header::AUTHORIZATION))
            .await
    {
        next.run(request).await
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic")],
            "Unauthorized\n",
        )
            .into_response()
    };
    // exporter-toolkit sets them before the handler runs, so a handler's own value wins.
    for (name, value) in &config.headers {
        response
            .headers_mut()
            .entry(name.clone())
            .or_insert_with(|| value.clone());
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_as_go_reads_them() {
        let enc = |s: &str| {
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(s)
            ))
            .unwrap()
        };
        assert_eq!(
            basic_credentials(&enc("alice:pa:ss")),
            Some(("alice".into(), "pa:ss".into()))
        );
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("bAsIc YTpi")),
            Some(("a".into(), "b".into()))
        );
        assert_eq!(basic_credentials(&enc("no-colon")), None);
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("Bearer YTpi")),
            None
        );
        assert_eq!(
            basic_credentials(&HeaderValue::from_static("Basic !!")),
            None
        );
    }

    #[test]
    fn cache_key_separates_fields() {
        assert_ne!(cache_key("ab", "c", "d"), cache_key("a", "bc", "d"));
    }
}
