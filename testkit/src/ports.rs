use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback TCP port that was free a moment ago and that this process has not handed out before.
///
/// Ports come from the kernel's ephemeral range; remembering them avoids giving the same port to two
/// members of one test process. (Another process can still take it in between; tests live with that.)
pub fn free_port() -> anyhow::Result<u16> {
    let mut guard = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let seen = guard.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let port = listener.local_addr()?.port();
        if seen.insert(port) {
            return Ok(port);
        }
    }
    anyhow::bail!("no free loopback port after 100 tries")
}
