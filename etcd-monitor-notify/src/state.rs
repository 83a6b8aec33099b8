//! The state file: what was notified to whom, pending alerts and silences, written atomically
//! (temporary file in the same directory, fsync, rename) so a crash leaves the old or the new file.

use std::io::Write;
use std::path::Path;

use anyhow::Context;

use crate::core::PersistedState;

#[derive(serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    #[serde(flatten)]
    state: PersistedState,
}

const VERSION: u32 = 1;

/// Reads the state file; a missing file is an empty state.
pub fn load(path: &Path) -> anyhow::Result<PersistedState> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PersistedState::default()),
        Err(e) => {
            return Err(e).with_context(|| format!("reading notification state {}", path.display()))
        }
    };
    let f: StateFile = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a notification state file", path.display()))?;
    if f.version != VERSION {
        anyhow::bail!(
            "{}: unsupported notification state version {}",
            path.display(),
            f.version
        );
    }
    Ok(f.state)
}

pub fn save(path: &Path, state: &PersistedState) -> anyhow::Result<()> {
    let body = serde_json::to_vec(&StateFile {
        version: VERSION,
        state: state.clone(),
    })?;
    write_atomic(path, &body).with_context(|| format!("writing {}", path.display()))
}

/// Replaces `path` with `bytes` so that a crash leaves the old file or the new one: a temporary file
/// in the same directory, fsync, rename, fsync of the directory (without it the rename itself may be
/// lost). The temporary file never stays behind, whatever fails.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = parent_dir(path);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    // Unique per process and write: two writers never share a temporary file.
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{seq}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written?;
    sync_dir(dir)
}

/// Moves a state file that cannot be used out of the way (`FILE.corrupt-<UTC time>`), so that the
/// daemon starts empty without losing it. Returns the new name.
pub fn set_aside(path: &Path) -> std::io::Result<std::path::PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let mut to = path.as_os_str().to_owned();
    to.push(format!(".corrupt-{stamp}"));
    let to = std::path::PathBuf::from(to);
    std::fs::rename(path, &to)?;
    sync_dir(parent_dir(path))?;
    Ok(to)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
