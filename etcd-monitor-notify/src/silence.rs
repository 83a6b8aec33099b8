//! Silences as Alertmanager keeps them (`silence/silence.go`): a set of matchers and an active window;
//! created, updated, listed and expired; kept for a retention period after they end.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::LabelSet;
use crate::matcher::{MatchType, Matcher, Matchers};

/// How long an expired silence stays listed (Alertmanager's `--data.retention` default, 120h).
pub const SILENCE_RETENTION: ChronoDuration = ChronoDuration::hours(120);

/// A matcher in Alertmanager's API v2 JSON shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl SilenceMatcher {
    pub fn to_matcher(&self) -> Result<Matcher, String> {
        let kind = match (self.is_regex, self.is_equal) {
            (false, true) => MatchType::Equal,
            (false, false) => MatchType::NotEqual,
            (true, true) => MatchType::Regexp,
            (true, false) => MatchType::NotRegexp,
        };
        Matcher::new(&self.name, kind, &self.value)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// A silence, serialised in Alertmanager's `gettableSilence` shape minus `status` (added by the API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn compiled(&self) -> Result<Matchers, String> {
        self.matchers
            .iter()
            .map(SilenceMatcher::to_matcher)
            .collect::<Result<Vec<_>, _>>()
            .map(Matchers)
    }
}

/// A silence as posted to `POST /api/v2/silences`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SilenceError {
    #[error("silence {0} not found")]
    NotFound(String),
    #[error("silence {0} already expired")]
    AlreadyExpired(String),
    #[error("invalid silence: {0}")]
    Invalid(String),
    /// Alertmanager's `--silences.max-silences`, its message.
    #[error("exceeded maximum number of silences: {count} (limit: {limit})")]
    TooMany { count: usize, limit: usize },
    /// Alertmanager's `--silences.max-silence-size-bytes`, its message.
    #[error("silence exceeded maximum size: {size} bytes (limit: {limit} bytes)")]
    TooLarge { size: usize, limit: usize },
}

/// Alertmanager's `--silences.max-silences` (every silence kept, expired ones included) and
/// `--silences.max-silence-size-bytes` (one silence; here its JSON size, Alertmanager measures its
/// protobuf). 0 is no limit, as there; unlike there, the defaults are limits, so that nobody who can
/// reach the API can fill the memory and the state file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SilenceLimits {
    pub max_silences: usize,
    pub max_silence_size_bytes: usize,
}

impl Default for SilenceLimits {
    fn default() -> Self {
        SilenceLimits {
            max_silences: 2_000,
            max_silence_size_bytes: 16 * 1024,
        }
    }
}

/// Go's RFC 3339 parser, which Alertmanager's API uses, reads four-digit years only: a time outside
/// 0000-9999 is refused there, and would overflow date arithmetic here.
fn check_time(what: &str, t: &DateTime<Utc>) -> Result<(), SilenceError> {
    use chrono::Datelike;
    if (0..=9999).contains(&t.year()) {
        Ok(())
    } else {
        Err(SilenceError::Invalid(format!(
            "{what} {} is outside the years 0000 to 9999",
            t.to_rfc3339()
        )))
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Silences {
    items: BTreeMap<String, Silence>,
    #[serde(skip)]
    compiled: BTreeMap<String, Matchers>,
    #[serde(skip)]
    limits: SilenceLimits,
}

impl Silences {
    pub fn new(limits: SilenceLimits) -> Silences {
        Silences {
            limits,
            ..Silences::default()
        }
    }

    /// Silences read back from a state file. One that the API would refuse (times out of range,
    /// matchers that do not compile) is dropped, logged: a state file is outside input too.
    pub fn from_list(list: Vec<Silence>, limits: SilenceLimits) -> Silences {
        let mut s = Silences::new(limits);
        for sil in list {
            let valid = check_time("startsAt", &sil.starts_at)
                .and_then(|()| check_time("endsAt", &sil.ends_at))
                .and_then(|()| check_time("updatedAt", &sil.updated_at))
                .and_then(|()| sil.compiled().map_err(SilenceError::Invalid));
            match valid {
                Ok(m) => {
                    s.compiled.insert(sil.id.clone(), m);
                    s.items.insert(sil.id.clone(), sil);
                }
                Err(e) => {
                    tracing::warn!(silence = %sil.id, error = %e, "dropped a silence from the state file")
                }
            }
        }
        s
    }

    pub fn limits(&self) -> SilenceLimits {
        self.limits
    }

    /// Creates a silence, or updates the one with `p.id` (which must exist). Returns its id.
    pub fn set(&mut self, p: PostableSilence, now: DateTime<Utc>) -> Result<String, SilenceError> {
        check_time("startsAt", &p.starts_at)?;
        check_time("endsAt", &p.ends_at)?;
        if p.matchers.is_empty() {
            return Err(SilenceError::Invalid(
                "at least one matcher required".into(),
            ));
        }
        let mut compiled = Vec::new();
        for m in &p.matchers {
            if m.name.is_empty() {
                return Err(SilenceError::Invalid(
                    "matcher with empty label name".into(),
                ));
            }
            compiled.push(m.to_matcher().map_err(SilenceError::Invalid)?);
        }
        if compiled.iter().all(|m| m.matches_value("")) {
            return Err(SilenceError::Invalid(
                "at least one matcher must not match the empty string".into(),
            ));
        }
        if p.ends_at <= p.starts_at {
            return Err(SilenceError::Invalid(
                "end time must not be before start time".into(),
            ));
        }
        if p.ends_at <= now {
            return Err(SilenceError::Invalid(
                "end time can't be in the past".into(),
            ));
        }
        if p.created_by.is_empty() {
            return Err(SilenceError::Invalid("missing creator".into()));
        }
        if p.comment.is_empty() {
            return Err(SilenceError::Invalid("missing comment".into()));
        }
        let starts_at = p.starts_at.max(now);
        let id = match &p.id {
            Some(id) if !id.is_empty() => {
                let old = self
                    .items
                    .get(id)
                    .ok_or_else(|| SilenceError::NotFound(id.clone()))?;
                if old.state(now) == SilenceState::Expired {
                    // Alertmanager never revives an expired silence: the update becomes a new one.
                    None
                } else {
                    Some(id.clone())
                }
            }
            _ => None,
        };
        // A new silence needs room; an update replaces one in place.
        let limit = self.limits.max_silences;
        if id.is_none() && limit > 0 && self.items.len() >= limit {
            return Err(SilenceError::TooMany {
                count: self.items.len(),
                limit,
            });
        }
        let id = id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let sil = Silence {
            id: id.clone(),
            matchers: p.matchers,
            starts_at,
            ends_at: p.ends_at,
            updated_at: now,
            created_by: p.created_by,
            comment: p.comment,
        };
        let limit = self.limits.max_silence_size_bytes;
        if limit > 0 {
            let size = serde_json::to_vec(&sil)
                .map(|b| b.len())
                .unwrap_or(usize::MAX);
            if size > limit {
                return Err(SilenceError::TooLarge { size, limit });
            }
        }
        self.compiled.insert(id.clone(), Matchers(compiled));
        self.items.insert(id.clone(), sil);
        Ok(id)
    }

    /// Ends a silence now; a pending one never becomes active.
    pub fn expire(&mut self, id: &str, now: DateTime<Utc>) -> Result<(), SilenceError> {
        let s = self
            .items
            .get_mut(id)
            .ok_or_else(|| SilenceError::NotFound(id.to_string()))?;
        match s.state(now) {
            SilenceState::Expired => return Err(SilenceError::AlreadyExpired(id.to_string())),
            SilenceState::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
            SilenceState::Active => s.ends_at = now,
        }
        s.updated_at = now;
        Ok(())
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.items.get(id)
    }

    pub fn list(&self) -> impl Iterator<Item = &Silence> {
        self.items.values()
    }

    /// Ids of the active silences that match these labels.
    pub fn silenced_by(&self, labels: &LabelSet, now: DateTime<Utc>) -> Vec<String> {
        self.items
            .values()
            .filter(|s| s.state(now) == SilenceState::Active)
            .filter(|s| self.compiled.get(&s.id).is_some_and(|m| m.matches(labels)))
            .map(|s| s.id.clone())
            .collect()
    }

    /// Drops silences that ended more than the retention ago.
    pub fn gc(&mut self, now: DateTime<Utc>) {
        let dead: Vec<String> = self
            .items
            .values()
            .filter(|s| crate::time::later(s.ends_at, SILENCE_RETENTION) < now)
            .map(|s| s.id.clone())
            .collect();
        for id in dead {
            self.items.remove(&id);
            self.compiled.remove(&id);
        }
    }
}
