//! `etcd-monitor snapshot save FILE`: the member's database streamed to `FILE.part`, checked, then
//! renamed, as etcdctl does, but with the checksum actually verified.
//!
//! The layout (etcd's `Maintenance.Snapshot`, server side): the bbolt file in chunks, whose size is a
//! multiple of 512 bytes, then one last message holding the 32-byte sha256 of everything before it.
//! etcdctl keeps that trailer in the file and only checks that `size % 512 == 32`; `etcdutl snapshot
//! restore` later checks the digest. We check the digest at save time, so a snapshot we report as saved
//! is one restore will accept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::anyhow;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cluster::{one_line, Inspector};
use crate::{Error, Result};

const TRAILER: usize = 32;
/// bbolt's snapshot size is a whole number of these (etcd's `hasChecksum`: `size % 512 == 32`).
const BLOCK: u64 = 512;

/// Streaming verifier: hashes everything but the last 32 bytes seen, which it keeps as the trailer.
#[derive(Default)]
pub struct ChecksumTail {
    hasher: Sha256,
    tail: Vec<u8>,
    total: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verified {
    /// Bytes of the database, without the trailer.
    pub db_bytes: u64,
    /// The sha256 of the database, hex.
    pub sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl ChecksumTail {
    pub fn new() -> ChecksumTail {
        ChecksumTail::default()
    }

    pub fn update(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        self.tail.extend_from_slice(chunk);
        if self.tail.len() > TRAILER {
            let cut = self.tail.len() - TRAILER;
            self.hasher.update(&self.tail[..cut]);
            self.tail.drain(..cut);
        }
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// Checks the trailer against the digest of what came before it.
    pub fn finish(self) -> Result<Verified, String> {
        if self.total < TRAILER as u64 {
            return Err(format!(
                "{} bytes: too short to hold etcd's sha256 trailer",
                self.total
            ));
        }
        let db_bytes = self.total - TRAILER as u64;
        if !db_bytes.is_multiple_of(BLOCK) {
            return Err(format!(
                "{} bytes: not a database of whole {BLOCK}-byte blocks followed by a 32-byte sha256 \
                 (truncated, or not an etcd snapshot)",
                self.total
            ));
        }
        let digest = self.hasher.finalize();
        if digest.as_slice() != self.tail.as_slice() {
            return Err(format!(
                "sha256 mismatch: the trailer says {} but the {db_bytes} bytes of data hash to {}",
                hex(&self.tail),
                hex(&digest)
            ));
        }
        Ok(Verified {
            db_bytes,
            sha256: hex(&digest),
        })
    }
}

/// Verifies a snapshot file saved by etcdctl or by `snapshot save`.
pub async fn verify_file(path: &Path) -> Result<Verified> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::Usage(format!("cannot open {}: {e}", path.display())))?;
    let mut v = ChecksumTail::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| Error::Failed(anyhow!("reading {}: {e}", path.display())))?;
        if n == 0 {
            break;
        }
        v.update(&buf[..n]);
    }
    v.finish().map_err(|e| {
        Error::Failed(anyhow!(
            "{} is not a valid etcd snapshot: {e}",
            path.display()
        ))
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct SaveReport {
    pub file: PathBuf,
    pub member: String,
    pub endpoint: String,
    /// The member's revision just before the stream started (the snapshot holds at least this).
    pub revision: i64,
    pub db_bytes: u64,
    pub sha256: String,
    pub seconds: f64,
}

/// Where a snapshot is streamed before it is verified: `FILE.part`.
pub fn part_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

/// The member a snapshot is taken from.
#[derive(Debug, Clone)]
pub struct Source {
    pub member: String,
    pub endpoint: String,
    /// The member's revision when it was chosen (the snapshot holds at least this).
    pub revision: i64,
}

/// Chooses `member` (by name or hex ID), or the agreed leader, among the members that answer.
pub async fn choose_source(inspector: &mut Inspector, member: Option<&str>) -> Result<Source> {
    let snap = inspector.snapshot().await;
    let chosen = match member {
        Some(name) => snap
            .members
            .iter()
            .find(|m| m.name == name || m.id == name)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--member {name:?}: no such member (members: {})",
                    snap.members
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?,
        None => {
            let leader = snap.verdict.leader_name.as_ref().ok_or_else(|| {
                Error::Refused(
                    "the cluster has no agreed leader to take the snapshot from; name a member with \
                     --member"
                        .into(),
                )
            })?;
            snap.members
                .iter()
                .find(|m| &m.name == leader)
                .ok_or_else(|| Error::Failed(anyhow!("leader {leader} not in the member list")))?
        }
    };
    let (Some(status), Some(endpoint)) = (&chosen.status, &chosen.endpoint) else {
        return Err(Error::Refused(format!(
            "member {} does not answer{}",
            chosen.name,
            chosen
                .error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        )));
    };
    Ok(Source {
        member: chosen.name.clone(),
        endpoint: endpoint.clone(),
        revision: status.revision,
    })
}

/// Streams a snapshot from `member` (by name), or from the leader, into `file`.
pub async fn save(
    inspector: &mut Inspector,
    file: &Path,
    member: Option<&str>,
    timeout: Duration,
) -> Result<SaveReport> {
    let source = choose_source(inspector, member).await?;
    save_from(inspector, &source, file, timeout).await
}

/// Streams a snapshot from `source` into `FILE.part`, verifies it, then renames it to `file`. On an
/// error the `.part` file is removed; a caller that drops this future midway removes it itself
/// ([`part_path`]).
pub async fn save_from(
    inspector: &Inspector,
    source: &Source,
    file: &Path,
    timeout: Duration,
) -> Result<SaveReport> {
    let Source {
        member: name,
        endpoint,
        revision,
    } = source.clone();
    let started = std::time::Instant::now();
    // No per-request timeout on the connection: it would cut a long stream; the whole save is bounded.
    let client = inspector.member_client(&endpoint, None).await?;
    let part = part_path(file);
    let result = tokio::time::timeout(timeout, stream_to(client, &part)).await;
    let verified = match result {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(Error::Failed(e.context(format!(
                "snapshot of {name} at {endpoint} into {}",
                part.display()
            ))));
        }
        Err(_) => {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(Error::Failed(anyhow!(
                "snapshot of {name} at {endpoint}: not finished within {} (raise --timeout)",
                humantime::format_duration(timeout)
            )));
        }
    };
    tokio::fs::rename(&part, file).await.map_err(|e| {
        Error::Failed(anyhow!(
            "renaming {} to {}: {e}",
            part.display(),
            file.display()
        ))
    })?;
    Ok(SaveReport {
        file: file.to_path_buf(),
        member: name,
        endpoint,
        revision,
        db_bytes: verified.db_bytes,
        sha256: verified.sha256,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn stream_to(mut client: etcd_client::Client, part: &Path) -> anyhow::Result<Verified> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut f = options
        .open(part)
        .await
        .map_err(|e| anyhow!("cannot create {}: {e}", part.display()))?;
    let mut stream = client
        .snapshot()
        .await
        .map_err(|e| anyhow!("Snapshot: {}", one_line(&e.to_string())))?;
    let mut check = ChecksumTail::new();
    // The first message tells how many database bytes to expect (what it carries + what remains).
    let mut expected: Option<u64> = None;
    while let Some(msg) = stream
        .message()
        .await
        .map_err(|e| anyhow!("Snapshot stream: {}", one_line(&e.to_string())))?
    {
        let blob = msg.blob();
        if expected.is_none() {
            expected = Some(blob.len() as u64 + msg.remaining_bytes());
        }
        check.update(blob);
        f.write_all(blob)
            .await
            .map_err(|e| anyhow!("writing {}: {e}", part.display()))?;
    }
    f.sync_all()
        .await
        .map_err(|e| anyhow!("syncing {}: {e}", part.display()))?;
    let total = check.total();
    let verified = check
        .finish()
        .map_err(|e| anyhow!("the stream is not a valid snapshot: {e}"))?;
    if let Some(exp) = expected {
        if verified.db_bytes != exp {
            return Err(anyhow!(
                "the member announced {exp} bytes of database but sent {} ({total} with the trailer)",
                verified.db_bytes
            ));
        }
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_trailer(data: &[u8]) -> Vec<u8> {
        let mut v = data.to_vec();
        v.extend_from_slice(&Sha256::digest(data));
        v
    }

    #[test]
    fn accepts_any_chunking_and_rejects_a_flipped_bit() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = with_trailer(&data);
        for chunk in [1, 31, 32, 33, 512, 5000] {
            let mut c = ChecksumTail::new();
            for part in whole.chunks(chunk) {
                c.update(part);
            }
            let v = c.finish().unwrap();
            assert_eq!(v.db_bytes, 4096);
            assert_eq!(v.sha256, hex(&Sha256::digest(&data)));
        }
        let mut bad = whole.clone();
        bad[100] ^= 1;
        let mut c = ChecksumTail::new();
        c.update(&bad);
        assert!(c.finish().unwrap_err().contains("sha256 mismatch"));
    }

    #[test]
    fn rejects_truncation() {
        let data = vec![0u8; 1024];
        let whole = with_trailer(&data);
        let mut c = ChecksumTail::new();
        c.update(&whole[..whole.len() - 1]);
        assert!(c.finish().is_err());
        let mut c = ChecksumTail::new();
        c.update(&whole[..10]);
        assert!(c.finish().unwrap_err().contains("too short"));
    }
}
