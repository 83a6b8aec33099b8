//! Loopback ports for test servers, safe across processes.
//!
//! Asking the kernel for port 0 hands out a port from its ephemeral range, the very range it also uses
//! for the source port of every outgoing connection: between the moment a test learns the port and the
//! moment etcd (or Prometheus...) binds it, any connection on the machine may take it, and another test
//! process asking the kernel the same way may be given it too. Cargo-nextest runs many test processes
//! at once, which made this a real flake ("a SIGSTOPped member answered": another member had the port;
//! the same words have a second cause, a stop not yet complete, see `Cluster::pause`).
//!
//! So ports come from outside the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), where the
//! kernel never picks a source port, and each one handed out is claimed with a lock file (`flock`) held
//! for the rest of the process' life: two processes that use this module never get the same port, and
//! a process that dies, however it dies, releases its ports with its file descriptors.

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::TcpListener;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

/// Below this, ports belong to well-known services (and to etcd's 2379/2380, Prometheus' 9090...).
const LOWEST: u16 = 10_000;

struct Claims {
    /// The lock files, open (and so locked) until the process exits.
    held: Vec<File>,
    ports: HashSet<u16>,
    /// Where the next search starts, so that successive claims do not rescan the same ports.
    next: u32,
}

static CLAIMS: Mutex<Option<Claims>> = Mutex::new(None);

/// A loopback TCP port that no other user of this function, in this process or any other, has been
/// given while its claimant lives, that was free a moment ago, and that lies outside the kernel's
/// ephemeral range (so no outgoing connection takes it in the meantime).
pub fn free_port() -> Result<u16> {
    let mut guard = CLAIMS.lock().unwrap_or_else(|e| e.into_inner());
    let claims = guard.get_or_insert_with(|| Claims {
        held: Vec::new(),
        ports: HashSet::new(),
        // Processes start at different places, so they rarely contend for the same lock files.
        next: std::process::id().wrapping_mul(7919),
    });
    let range = candidate_range()?;
    let dir = lock_dir()?;
    let span = u32::from(range.end - range.start);
    for _ in 0..span {
        let port = range.start + (claims.next % span) as u16;
        claims.next = claims.next.wrapping_add(1);
        if claims.ports.contains(&port) {
            continue;
        }
        let path = dir.join(format!("{port}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => continue,
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()))
            }
        }
        // Claimed among test processes; now make sure nothing else on the machine listens there.
        if TcpListener::bind(("127.0.0.1", port)).is_err() {
            continue; // the lock drops with `file`: someone else's server, not ours to hand out
        }
        claims.held.push(file);
        claims.ports.insert(port);
        return Ok(port);
    }
    bail!(
        "no free loopback port in {}..{} (lock files in {})",
        range.start,
        range.end,
        dir.display()
    )
}

/// The largest stretch of ports at or above [`LOWEST`] outside the kernel's ephemeral range.
fn candidate_range() -> Result<Range<u16>> {
    let (lo, hi) = ephemeral_range();
    let below = LOWEST..lo.max(LOWEST);
    let above = hi.saturating_add(1).max(LOWEST)..u16::MAX;
    let best = if below.len() >= above.len() {
        below
    } else {
        above
    };
    if best.len() < 1000 {
        bail!("the kernel's ephemeral port range {lo}-{hi} leaves too few ports for tests");
    }
    Ok(best)
}

/// `/proc/sys/net/ipv4/ip_local_port_range`, or Linux's default when it cannot be read.
fn ephemeral_range() -> (u16, u16) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = text
        .split_whitespace()
        .filter_map(|s| s.parse::<u16>().ok());
    match (it.next(), it.next()) {
        (Some(lo), Some(hi)) if lo <= hi => (lo, hi),
        _ => (32768, 60999),
    }
}

/// One directory for every test process on the machine (per user, so that users do not lock each other
/// out of ports through permissions).
fn lock_dir() -> Result<PathBuf> {
    let user = std::env::var("USER").unwrap_or_else(|_| "user".into());
    let dir = std::env::temp_dir().join(format!("etcd-testkit-ports-{user}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_lie_outside_the_ephemeral_range_and_are_never_handed_out_twice() {
        let (lo, hi) = ephemeral_range();
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let p = free_port().unwrap();
            assert!(p >= LOWEST && !(lo..=hi).contains(&p), "{p} in {lo}-{hi}");
            assert!(seen.insert(p), "{p} handed out twice");
        }
    }

    #[test]
    fn another_process_cannot_claim_a_held_port() {
        let p = free_port().unwrap();
        // A second open file description stands for another process: flock locks belong to it.
        let other = File::options()
            .write(true)
            .open(lock_dir().unwrap().join(format!("{p}.lock")))
            .unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
    }
}
