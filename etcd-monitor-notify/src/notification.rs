//! What one notification is made of, between the core that decides it and the templates and
//! integrations that render and send it: the alerts as they go out ([`OutAlert`]) and Alertmanager's
//! template data ([`MessageData`]).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::alert::{Alert, Fingerprint, LabelSet};

/// An alert as it goes out in one notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutAlert {
    pub alert: Alert,
    pub fingerprint: Fingerprint,
    pub resolved: bool,
}

/// Alertmanager's `template.Data`: what every message is made from.
#[derive(Clone, Debug)]
pub struct MessageData {
    pub receiver: String,
    pub status: &'static str,
    pub alerts: Vec<OutAlert>,
    pub group_labels: LabelSet,
    pub common_labels: LabelSet,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    pub group_key: String,
}

fn common(maps: &[&BTreeMap<String, String>]) -> BTreeMap<String, String> {
    let Some(first) = maps.first() else {
        return BTreeMap::new();
    };
    first
        .iter()
        .filter(|(k, v)| maps.iter().all(|m| m.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl MessageData {
    pub fn new(
        receiver: &str,
        group_key: &str,
        group_labels: &LabelSet,
        alerts: Vec<OutAlert>,
        external_url: &str,
    ) -> Self {
        let labels: Vec<&BTreeMap<String, String>> =
            alerts.iter().map(|a| &a.alert.labels).collect();
        let anns: Vec<&BTreeMap<String, String>> =
            alerts.iter().map(|a| &a.alert.annotations).collect();
        MessageData {
            receiver: receiver.to_string(),
            status: if alerts.iter().any(|a| !a.resolved) {
                "firing"
            } else {
                "resolved"
            },
            common_labels: common(&labels),
            common_annotations: common(&anns),
            alerts,
            group_labels: group_labels.clone(),
            external_url: external_url.trim_end_matches('/').to_string(),
            group_key: group_key.to_string(),
        }
    }

    pub fn firing(&self) -> impl Iterator<Item = &OutAlert> {
        self.alerts.iter().filter(|a| !a.resolved)
    }

    pub fn resolved(&self) -> impl Iterator<Item = &OutAlert> {
        self.alerts.iter().filter(|a| a.resolved)
    }

    /// Alertmanager's `notify.Key.Hash()`: SHA-256 of the group key, the PagerDuty dedup key.
    pub fn group_key_hash(&self) -> String {
        hex(&Sha256::digest(self.group_key.as_bytes()))
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
