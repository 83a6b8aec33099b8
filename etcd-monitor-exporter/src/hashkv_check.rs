//! The I/O half of the consistency check: one `HashKV` request per voting member, all at one revision,
//! compared by [`crate::hashkv::compare`]. Runs in its own loop every `--hashkv-interval`.
//!
//! The revision is the lowest revision the members reported in the latest snapshot: every member has
//! reached it (so none answers "future revision") and, unless a compaction to a revision that recent
//! runs in between, none has compacted it away. A member that has compacted it answers an error and
//! the check fails; it is never mistaken for a divergence.
//!
//! Cost: etcd computes `HashKV` by reading its whole key bucket once, under a read transaction; one
//! request per member per interval (default 5 minutes) is what etcd's own
//! `--experimental-corrupt-check-time` checker does with peer requests.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use etcd_client::Client;
use etcd_connect::EtcdTarget;
use futures::future::join_all;

use crate::hashkv::{compare, HashKvAnswer, HashKvCheck, HashKvReply, HashKvVerdict};
use crate::snapshot::ClusterSnapshot;

/// The least time a member has to answer `HashKV`: it reads the member's whole key space, which takes
/// seconds on a large database, far longer than a Status call.
pub const MIN_HASHKV_TIMEOUT: Duration = Duration::from_secs(30);

/// Keeps one connection per member across checks, as the snapshot's collector does.
pub struct HashKvChecker {
    cluster: String,
    target: EtcdTarget,
    timeout: Duration,
    clients: HashMap<String, Client>,
}

impl HashKvChecker {
    pub fn new(cluster: String, target: EtcdTarget, member_timeout: Duration) -> HashKvChecker {
        HashKvChecker {
            cluster,
            target,
            timeout: member_timeout.max(MIN_HASHKV_TIMEOUT),
            clients: HashMap::new(),
        }
    }

    /// Checks the voting members of `snapshot`. Never fails: a check that cannot be completed is a
    /// `Failed` outcome with its reason.
    pub async fn check(&mut self, snapshot: &ClusterSnapshot) -> HashKvCheck {
        let started = Instant::now();
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let voting: Vec<_> = snapshot.members.iter().filter(|m| !m.is_learner).collect();
        let revision = voting
            .iter()
            .filter_map(|m| m.status.as_ref().map(|s| s.revision))
            .min();
        let failed = |reason: &str| HashKvCheck {
            timestamp,
            duration_seconds: started.elapsed().as_secs_f64(),
            revision: 0,
            verdict: HashKvVerdict::Failed,
            reason: Some(reason.to_string()),
            odd_members: Vec::new(),
            members: Vec::new(),
        };
        if !snapshot.reachable {
            return failed("the member list could not be read in the latest snapshot");
        }
        let Some(revision) = revision.filter(|r| *r > 0) else {
            return failed("no voting member answered Status in the latest snapshot");
        };
        // All members at once, each on its own connection (kept from the last check when it worked).
        let mut requests = Vec::with_capacity(voting.len());
        for m in &voting {
            let url = m.endpoint.clone();
            let client = url.as_ref().and_then(|u| self.clients.get(u).cloned());
            requests.push((m.name.clone(), url, client));
        }
        let target = self.target.clone();
        let timeout = self.timeout;
        let results = join_all(requests.into_iter().map(|(member, url, client)| {
            let target = target.clone();
            async move {
                let Some(url) = url else {
                    return (
                        member,
                        None,
                        Err("the member has no client URL".to_string()),
                    );
                };
                let mut client = match client {
                    Some(c) => c,
                    None => match target.connect_to(std::slice::from_ref(&url), None).await {
                        Ok(c) => c,
                        Err(e) => {
                            return (member, Some((url, None)), Err(one_line(&e.to_string())))
                        }
                    },
                };
                let reply = match tokio::time::timeout(timeout, client.hash_kv(revision)).await {
                    Ok(Ok(r)) => Ok(HashKvReply {
                        hash: r.hash(),
                        compact_revision: r.compact_version(),
                    }),
                    Ok(Err(e)) => Err(one_line(&e.to_string())),
                    Err(_) => Err(format!(
                        "no answer within {}",
                        humantime::format_duration(timeout)
                    )),
                };
                (member, Some((url, Some(client))), reply)
            }
        }))
        .await;
        let mut answers = Vec::with_capacity(results.len());
        for (member, connection, reply) in results {
            if let Some((url, client)) = connection {
                match (&reply, client) {
                    (Ok(_), Some(c)) => {
                        self.clients.insert(url, c);
                    }
                    // The next check dials afresh: a member that restarted or moved is reached again.
                    _ => {
                        self.clients.remove(&url);
                    }
                }
            }
            answers.push(HashKvAnswer { member, reply });
        }
        let (verdict, reason, odd_members, members) = compare(revision, &answers);
        let check = HashKvCheck {
            timestamp,
            duration_seconds: started.elapsed().as_secs_f64(),
            revision,
            verdict,
            reason,
            odd_members,
            members,
        };
        tracing::debug!(cluster = %self.cluster, revision, verdict = ?check.verdict, "hashkv check");
        check
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
