//! The routing tree, compiled from `route:` with settings inherited as in Alertmanager's
//! `dispatch.NewRoute`, and matched as `Route.Match` does (depth first, `continue` to go on).

use std::collections::BTreeSet;
use std::time::Duration;

use crate::alert::{labelset_string, LabelSet};
use crate::config::RouteConfig;
use crate::matcher::Matchers;

pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOpts {
    pub receiver: String,
    pub group_by: BTreeSet<String>,
    /// `group_by: ['...']`: every label groups.
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
}

#[derive(Clone, Debug)]
pub struct RouteNode {
    /// Alertmanager's `Route.Key()`: the parents' matchers then ours, joined by `/`.
    pub key: String,
    pub opts: RouteOpts,
    pub matchers: Matchers,
    pub continue_matching: bool,
    pub children: Vec<usize>,
    /// The route's own time intervals (Alertmanager does not pass them to child routes).
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct RouteTree {
    pub nodes: Vec<RouteNode>,
}

impl RouteTree {
    pub fn new(root: &RouteConfig) -> RouteTree {
        let defaults = RouteOpts {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
        };
        let mut tree = RouteTree { nodes: Vec::new() };
        tree.add(root, &defaults, None);
        tree
    }

    fn add(&mut self, cfg: &RouteConfig, parent: &RouteOpts, parent_key: Option<&str>) -> usize {
        let mut opts = parent.clone();
        if let Some(r) = &cfg.receiver {
            opts.receiver = r.clone();
        }
        if let Some(gb) = &cfg.group_by {
            opts.group_by_all = gb.iter().any(|l| l == "...");
            opts.group_by = gb.iter().filter(|l| *l != "...").cloned().collect();
        }
        if let Some(d) = cfg.group_wait {
            opts.group_wait = d;
        }
        if let Some(d) = cfg.group_interval {
            opts.group_interval = d;
        }
        if let Some(d) = cfg.repeat_interval {
            opts.repeat_interval = d;
        }
        let matchers = cfg.all_matchers();
        let key = match parent_key {
            Some(p) => format!("{p}/{matchers}"),
            None => matchers.to_string(),
        };
        let idx = self.nodes.len();
        self.nodes.push(RouteNode {
            key: key.clone(),
            opts: opts.clone(),
            matchers,
            continue_matching: cfg.continue_matching,
            children: Vec::new(),
            mute_time_intervals: cfg.mute_time_intervals.clone(),
            active_time_intervals: cfg.active_time_intervals.clone(),
        });
        for child in &cfg.routes {
            let c = self.add(child, &opts, Some(&key));
            self.nodes[idx].children.push(c);
        }
        idx
    }

    /// The routes an alert with these labels goes to (indices into `nodes`).
    pub fn matching(&self, labels: &LabelSet) -> Vec<usize> {
        self.match_node(0, labels)
    }

    fn match_node(&self, idx: usize, labels: &LabelSet) -> Vec<usize> {
        let node = &self.nodes[idx];
        if !node.matchers.matches(labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for &c in &node.children {
            let m = self.match_node(c, labels);
            let matched = !m.is_empty();
            all.extend(m);
            if matched && !self.nodes[c].continue_matching {
                break;
            }
        }
        if all.is_empty() {
            all.push(idx);
        }
        all
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, idx: usize, labels: &LabelSet) -> LabelSet {
        let opts = &self.nodes[idx].opts;
        if opts.group_by_all {
            return labels.clone();
        }
        labels
            .iter()
            .filter(|(k, _)| opts.group_by.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Alertmanager's group key: `<route key>:<group labels>`.
    pub fn group_key(&self, idx: usize, group_labels: &LabelSet) -> String {
        format!("{}:{}", self.nodes[idx].key, labelset_string(group_labels))
    }
}
