//! The pure core of the dispatcher: alert store, routing into aggregation groups, flush timing,
//! muting (inhibition, silences) and deduplication against the notification log. No I/O and no clock:
//! every method takes `now`. The dispatcher drives it and performs the deliveries it asks for.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{Alert, Fingerprint, LabelSet};
use crate::config::{Integration, NotifyConfig};
use crate::inhibit::is_inhibited;
use crate::nflog::{needs_update, Nflog, NflogEntry};
use crate::notification::OutAlert;
use crate::route::RouteTree;
use crate::silence::{Silence, Silences};
use crate::time::{chrono_dur, later};

/// An alert as the store keeps it: `ends_at` always set (Alertmanager fills it from `resolve_timeout`
/// when the sender gave none and marks it `timeout`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub alert: Alert,
    pub ends_at: DateTime<Utc>,
    pub timeout: bool,
    pub updated_at: DateTime<Utc>,
}

impl StoredAlert {
    pub fn resolved(&self, now: DateTime<Utc>) -> bool {
        self.ends_at <= now
    }
}

#[derive(Clone, Debug)]
struct Group {
    route: usize,
    key: String,
    labels: LabelSet,
    alerts: BTreeMap<Fingerprint, StoredAlert>,
    has_flushed: bool,
    next_flush: DateTime<Utc>,
}

/// One delivery to one integration of a receiver, decided by a flush.
#[derive(Clone, Debug)]
pub struct Notification {
    /// Index into the receiver's `integrations`.
    pub integration: usize,
    pub kind: &'static str,
    /// Index among the receiver's integrations of the same kind (`webhook[1]`).
    pub kind_index: usize,
    /// What to send; with `send_resolved` off, firing alerts only.
    pub alerts: Vec<OutAlert>,
    /// Nothing to send (only resolved alerts and `send_resolved` off), but the log still records it.
    pub log_only: bool,
    firing: BTreeSet<u64>,
    resolved: BTreeSet<u64>,
}

/// The outcome of flushing one aggregation group.
#[derive(Clone, Debug)]
pub struct FlushJob {
    pub route: usize,
    pub group_key: String,
    pub group_labels: LabelSet,
    pub receiver: String,
    pub notifications: Vec<Notification>,
    /// Deliveries (with retries) must end by then: the group interval after the flush.
    pub deadline: DateTime<Utc>,
    pub flushed_at: DateTime<Utc>,
    snapshot: Vec<(Fingerprint, StoredAlert)>,
}

/// The part of the core that must survive a restart.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PersistedState {
    pub alerts: Vec<StoredAlert>,
    pub nflog: Nflog,
    pub silences: Vec<Silence>,
}

pub struct Core {
    config: Arc<NotifyConfig>,
    tree: RouteTree,
    alerts: BTreeMap<Fingerprint, StoredAlert>,
    groups: BTreeMap<(usize, String), Group>,
    pub silences: Silences,
    pub nflog: Nflog,
}

/// Alertmanager's sort for notifications: by `job`, then `instance`, then the whole label set.
fn sort_alerts(v: &mut [OutAlert]) {
    v.sort_by(|a, b| {
        let la = &a.alert.labels;
        let lb = &b.alert.labels;
        la.get("job")
            .cmp(&lb.get("job"))
            .then(la.get("instance").cmp(&lb.get("instance")))
            .then(la.cmp(lb))
    });
}

impl Core {
    pub fn new(config: Arc<NotifyConfig>) -> Core {
        let tree = RouteTree::new(&config.route);
        Core {
            config,
            tree,
            alerts: BTreeMap::new(),
            groups: BTreeMap::new(),
            silences: Silences::default(),
            nflog: Nflog::default(),
        }
    }

    pub fn config(&self) -> &Arc<NotifyConfig> {
        &self.config
    }

    pub fn tree(&self) -> &RouteTree {
        &self.tree
    }

    /// Restores persisted state; alerts are routed again (under the current configuration), so a
    /// pending group flushes after `group_wait` (or at once if its alerts are older than that).
    pub fn restore(&mut self, st: PersistedState, now: DateTime<Utc>) {
        self.nflog = st.nflog;
        self.silences = Silences::from_list(st.silences, self.silences.limits());
        for a in st.alerts {
            let fp = a.alert.fingerprint();
            self.alerts.insert(fp, a.clone());
            self.route_alert(fp, &a, now);
        }
    }

    pub fn persisted(&self) -> PersistedState {
        PersistedState {
            alerts: self.alerts.values().cloned().collect(),
            nflog: self.nflog.clone(),
            silences: self.silences.list().cloned().collect(),
        }
    }

    /// Receives a batch of alerts, as `POST /api/v2/alerts` does in Alertmanager.
    pub fn put(&mut self, alerts: Vec<Alert>, now: DateTime<Utc>) {
        let resolve_timeout = chrono_dur(self.config.global.resolve_timeout);
        for alert in alerts {
            let fp = alert.fingerprint();
            let (ends_at, timeout) = match alert.ends_at {
                Some(e) => (e, false),
                None => (later(now, resolve_timeout), true),
            };
            let mut new = StoredAlert {
                alert,
                ends_at,
                timeout,
                updated_at: now,
            };
            if let Some(old) = self.alerts.get(&fp) {
                // Alertmanager merges only when the activity ranges overlap; otherwise it's a new incident.
                let overlaps = (new.ends_at > old.alert.starts_at && new.ends_at < old.ends_at)
                    || (new.alert.starts_at > old.alert.starts_at
                        && new.alert.starts_at < old.ends_at)
                    || (new.alert.starts_at <= old.alert.starts_at && new.ends_at >= old.ends_at);
                if overlaps && old.alert.starts_at < new.alert.starts_at {
                    new.alert.starts_at = old.alert.starts_at;
                }
            }
            self.alerts.insert(fp, new.clone());
            self.route_alert(fp, &new, now);
        }
    }

    fn route_alert(&mut self, fp: Fingerprint, a: &StoredAlert, now: DateTime<Utc>) {
        for route in self.tree.matching(&a.alert.labels) {
            let labels = self.tree.group_labels(route, &a.alert.labels);
            let key = self.tree.group_key(route, &labels);
            let opts = &self.tree.nodes[route].opts;
            let group_wait = chrono_dur(opts.group_wait);
            let g = self
                .groups
                .entry((route, key.clone()))
                .or_insert_with(|| Group {
                    route,
                    key,
                    labels,
                    alerts: BTreeMap::new(),
                    has_flushed: false,
                    next_flush: later(now, group_wait),
                });
            g.alerts.insert(fp, a.clone());
            // An alert older than group_wait need not wait for the first flush.
            if !g.has_flushed && later(a.alert.starts_at, group_wait) < now {
                g.next_flush = g.next_flush.min(now);
            }
        }
    }

    /// When the core next needs `flush_due` to be called.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Is this alert muted now, and by what? (inhibition first, as in Alertmanager's pipeline)
    pub fn muted(&self, labels: &LabelSet, now: DateTime<Utc>) -> (bool, Vec<String>) {
        let firing = self
            .alerts
            .values()
            .filter(|a| !a.resolved(now))
            .map(|a| &a.alert.labels);
        let inhibited = is_inhibited(&self.config.inhibit_rules, labels, firing);
        (inhibited, self.silences.silenced_by(labels, now))
    }

    /// Whether the route sends nothing now: inside one of its mute intervals, or outside all of its
    /// active intervals (Alertmanager reads the instant in UTC, then each interval's location).
    pub fn time_muted(&self, route: usize, now: DateTime<Utc>) -> bool {
        let node = &self.tree.nodes[route];
        let inside = |names: &[String]| {
            names.iter().any(|n| {
                self.config
                    .time_intervals
                    .get(n)
                    .is_some_and(|tis| tis.iter().any(|ti| ti.contains(now.fixed_offset())))
            })
        };
        inside(&node.mute_time_intervals)
            || (!node.active_time_intervals.is_empty() && !inside(&node.active_time_intervals))
    }

    /// Fingerprints of the alerts inhibiting this one now (Alertmanager lists one).
    pub fn inhibited_by(&self, labels: &LabelSet, now: DateTime<Utc>) -> Vec<String> {
        let firing = self
            .alerts
            .values()
            .filter(|a| !a.resolved(now))
            .map(|a| &a.alert.labels);
        crate::inhibit::inhibitor(&self.config.inhibit_rules, labels, firing)
            .map(|src| vec![Fingerprint::of(src).to_string()])
            .unwrap_or_default()
    }

    /// Flushes every group whose time has come and returns what must be delivered.
    pub fn flush_due(&mut self, now: DateTime<Utc>) -> Vec<FlushJob> {
        let due: Vec<(usize, String)> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let mut jobs = Vec::new();
        for k in due {
            let Some(g) = self.groups.get_mut(&k) else {
                continue;
            };
            let opts = self.tree.nodes[g.route].opts.clone();
            g.has_flushed = true;
            g.next_flush = later(now, chrono_dur(opts.group_interval));
            let snapshot: Vec<(Fingerprint, StoredAlert)> =
                g.alerts.iter().map(|(f, a)| (*f, a.clone())).collect();
            let (route, group_key, group_labels) = (g.route, g.key.clone(), g.labels.clone());
            jobs.push(self.build_job(route, group_key, group_labels, &opts, snapshot, now));
        }
        jobs
    }

    fn build_job(
        &self,
        route: usize,
        group_key: String,
        group_labels: LabelSet,
        opts: &crate::route::RouteOpts,
        snapshot: Vec<(Fingerprint, StoredAlert)>,
        now: DateTime<Utc>,
    ) -> FlushJob {
        let mut out: Vec<OutAlert> = snapshot
            .iter()
            .filter(|(_, a)| {
                let (inhibited, silences) = self.muted(&a.alert.labels, now);
                !inhibited && silences.is_empty()
            })
            .map(|(fp, a)| {
                let resolved = a.resolved(now);
                let mut alert = a.alert.clone();
                // As Alertmanager's flush: an alert still firing has no end yet, whatever the timeout said.
                alert.ends_at = if resolved { Some(a.ends_at) } else { None };
                OutAlert {
                    alert,
                    fingerprint: *fp,
                    resolved,
                }
            })
            .collect();
        sort_alerts(&mut out);
        if self.time_muted(route, now) {
            // As Alertmanager: nothing is sent and nothing logged; the flush still counts, so resolved
            // alerts leave the group.
            out.clear();
        }
        let mut notifications = Vec::new();
        let receiver = opts.receiver.clone();
        if !out.is_empty() {
            let firing: BTreeSet<u64> = out
                .iter()
                .filter(|a| !a.resolved)
                .map(|a| a.fingerprint.0)
                .collect();
            let resolved: BTreeSet<u64> = out
                .iter()
                .filter(|a| a.resolved)
                .map(|a| a.fingerprint.0)
                .collect();
            let mut per_kind: BTreeMap<&'static str, usize> = BTreeMap::new();
            if let Some(recv) = self.config.receiver(&receiver) {
                for (i, integ) in recv.integrations.iter().enumerate() {
                    let kind = integ.kind();
                    let kind_index = {
                        let c = per_kind.entry(kind).or_insert(0);
                        *c += 1;
                        *c - 1
                    };
                    let send_resolved = integ.send_resolved();
                    let entry = self.nflog.get(&receiver, kind, kind_index, &group_key);
                    if !needs_update(
                        entry,
                        &firing,
                        &resolved,
                        send_resolved,
                        chrono_dur(opts.repeat_interval),
                        now,
                    ) {
                        continue;
                    }
                    let alerts: Vec<OutAlert> = out
                        .iter()
                        .filter(|a| send_resolved || !a.resolved)
                        .cloned()
                        .collect();
                    notifications.push(Notification {
                        integration: i,
                        kind,
                        kind_index,
                        log_only: alerts.is_empty(),
                        alerts,
                        firing: firing.clone(),
                        resolved: resolved.clone(),
                    });
                }
            }
        }
        FlushJob {
            route,
            group_key,
            group_labels,
            receiver,
            notifications,
            deadline: later(now, chrono_dur(opts.group_interval)),
            flushed_at: now,
            snapshot,
        }
    }

    /// Records the deliveries of a flush: `ok[i]` for `job.notifications[i]`. Successful ones go into
    /// the notification log; when all succeeded, resolved alerts that did not change since the flush
    /// leave the group (Alertmanager's `DeleteIfNotModified`) and empty groups end.
    pub fn complete(&mut self, job: &FlushJob, ok: &[bool], now: DateTime<Utc>) {
        for (n, ok) in job.notifications.iter().zip(ok) {
            if *ok {
                self.nflog.log(NflogEntry {
                    receiver: job.receiver.clone(),
                    integration: n.kind.to_string(),
                    index: n.kind_index,
                    group_key: job.group_key.clone(),
                    timestamp: now,
                    firing: n.firing.clone(),
                    resolved: n.resolved.clone(),
                });
            }
        }
        if ok.iter().all(|o| *o) {
            if let Some(g) = self.groups.get_mut(&(job.route, job.group_key.clone())) {
                for (fp, snap) in &job.snapshot {
                    if snap.resolved(job.flushed_at) && g.alerts.get(fp) == Some(snap) {
                        g.alerts.remove(fp);
                    }
                }
                if g.alerts.is_empty() {
                    self.groups.remove(&(job.route, job.group_key.clone()));
                }
            }
        }
        self.gc(now);
    }

    /// Forgets resolved alerts no group holds any more, and old log entries and silences.
    pub fn gc(&mut self, now: DateTime<Utc>) {
        let held: BTreeSet<Fingerprint> = self
            .groups
            .values()
            .flat_map(|g| g.alerts.keys().copied())
            .collect();
        self.alerts
            .retain(|fp, a| !a.resolved(now) || held.contains(fp));
        self.nflog.gc(now);
        self.silences.gc(now);
    }

    pub fn alerts(&self) -> impl Iterator<Item = &StoredAlert> {
        self.alerts.values()
    }

    /// The receiver's integration a notification goes to.
    pub fn integration(&self, receiver: &str, idx: usize) -> Option<&Integration> {
        self.config
            .receiver(receiver)
            .and_then(|r| r.integrations.get(idx))
    }
}
