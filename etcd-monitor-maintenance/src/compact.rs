//! `etcd-monitor compact`: compaction to the current revision minus `--keep`, as an operator does before
//! a defragmentation (etcd's space-quota recovery: compact, defragment, disarm).

use std::time::Duration;

use anyhow::anyhow;
use etcd_client::{CompactionOptions, GetOptions};
use serde::Serialize;

use crate::cluster::{one_line, Inspector};
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Revisions of history to keep below the current one.
    pub keep: i64,
    /// Wait until the compaction is applied to the backend on every member (etcd's `--physical`).
    pub physical: bool,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Serialize)]
pub struct CompactReport {
    pub current_revision: i64,
    pub compacted_to: i64,
    pub physical: bool,
}

/// The revision to compact to, or why there is nothing to do. Pure.
pub fn target_revision(current: i64, keep: i64) -> Result<i64, String> {
    if keep < 0 {
        return Err(format!("--keep must be 0 or more, not {keep}"));
    }
    let target = current - keep;
    if target < 1 {
        return Err(format!(
            "nothing to compact: the current revision is {current} and --keep is {keep}"
        ));
    }
    Ok(target)
}

pub async fn run(inspector: &Inspector, options: &CompactOptions) -> Result<CompactReport> {
    let mut client = inspector.client();
    let bound = |what: &str| {
        let what = what.to_string();
        move |e: String| Error::Failed(anyhow!("{what}: {e}"))
    };
    // A linearizable read gives the cluster's current revision in its header.
    let current = match tokio::time::timeout(
        options.timeout,
        client.get("\0", Some(GetOptions::new().with_count_only())),
    )
    .await
    {
        Ok(Ok(r)) => r
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Failed(anyhow!("etcd sent no header with the revision")))?,
        Ok(Err(e)) => {
            return Err(bound("reading the current revision")(one_line(
                &e.to_string(),
            )))
        }
        Err(_) => return Err(bound("reading the current revision")("timed out".into())),
    };
    let target = target_revision(current, options.keep).map_err(Error::Refused)?;
    let mut opts = CompactionOptions::new();
    if options.physical {
        opts = opts.with_physical();
    }
    match tokio::time::timeout(options.timeout, client.compact(target, Some(opts))).await {
        Ok(Ok(_)) => Ok(CompactReport {
            current_revision: current,
            compacted_to: target,
            physical: options.physical,
        }),
        Ok(Err(e)) => {
            let text = one_line(&e.to_string());
            if text.contains("required revision has been compacted") {
                Err(Error::Refused(format!(
                    "revision {target} is already compacted (current revision {current}): nothing to do"
                )))
            } else {
                Err(bound(&format!("compacting to revision {target}"))(text))
            }
        }
        Err(_) => Err(bound(&format!("compacting to revision {target}"))(format!(
            "no answer within {}",
            humantime::format_duration(options.timeout)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_is_current_minus_keep() {
        assert_eq!(target_revision(100, 0), Ok(100));
        assert_eq!(target_revision(100, 10), Ok(90));
        assert!(target_revision(100, 100).is_err());
        assert!(target_revision(5, -1).is_err());
    }
}
