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
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let body = serde_json::to_vec(&StateFile {
        version: VERSION,
        state: state.clone(),
    })?;
    let mut tmp = tempfile_in(dir, path)?;
    tmp.1
        .write_all(&body)
        .with_context(|| format!("writing {}", tmp.0.display()))?;
    tmp.1
        .sync_all()
        .with_context(|| format!("syncing {}", tmp.0.display()))?;
    drop(tmp.1);
    std::fs::rename(&tmp.0, path)
        .with_context(|| format!("renaming {} to {}", tmp.0.display(), path.display()))?;
    Ok(())
}

fn tempfile_in(dir: &Path, target: &Path) -> anyhow::Result<(std::path::PathBuf, std::fs::File)> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("notify-state");
    let p = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let f = std::fs::File::create(&p).with_context(|| format!("creating {}", p.display()))?;
    Ok((p, f))
}
