//! `file_sd_configs`: target groups read from JSON or YAML files, as Prometheus' file discovery reads
//! them (`[{targets: [...], labels: {...}}]`, a glob in the file name, files sorted by name).

use std::path::{Path, PathBuf};

use prom_relabel::{is_valid_label_name, LabelSet};
use serde::Deserialize;

/// A target group: (targets, labels).
pub type Group = (Vec<String>, LabelSet);

#[derive(Deserialize)]
struct JsonGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: LabelSet,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: LabelSet,
}

/// Prometheus' rule for a `files` entry: a `*` only in the last path segment, and a JSON or YAML
/// extension.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let (dir, name) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let ext_ok = [".json", ".yml", ".yaml", ".JSON", ".YML", ".YAML"]
        .iter()
        .any(|e| name.ends_with(e));
    if dir.contains('*') || name.matches('*').count() > 1 || !ext_ok {
        return Err(format!(
            "path name {pattern:?} is not valid for file discovery"
        ));
    }
    Ok(())
}

/// Every file the patterns match, in name order, with its groups. A file that cannot be read or
/// parsed is an error naming it.
pub fn read_all(patterns: &[PathBuf]) -> Result<Vec<(String, Vec<Group>)>, String> {
    let mut out = Vec::new();
    for pattern in patterns {
        let text = pattern.to_string_lossy();
        let mut files: Vec<PathBuf> = glob::glob(&text)
            .map_err(|e| format!("file_sd_configs: {text}: {e}"))?
            .filter_map(Result::ok)
            .collect();
        files.sort();
        for f in files {
            let groups = read_file(&f)?;
            out.push((f.display().to_string(), groups));
        }
    }
    Ok(out)
}

fn read_file(path: &Path) -> Result<Vec<Group>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let groups: Vec<Group> = if json {
        serde_json::from_str::<Vec<JsonGroup>>(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .into_iter()
            .map(|g| (g.targets, g.labels))
            .collect()
    } else {
        serde_yaml::from_str::<Option<Vec<YamlGroup>>>(&text)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .unwrap_or_default()
            .into_iter()
            .map(|g| (g.targets, g.labels))
            .collect()
    };
    for (_, labels) in &groups {
        if let Some(bad) = labels.keys().find(|k| !is_valid_label_name(k)) {
            return Err(format!("{}: invalid label name {bad:?}", path.display()));
        }
    }
    Ok(groups)
}

/// Whether `built` is what `view` already runs (same targets and dropped targets).
pub(crate) fn same_targets(
    built: &super::targets::PoolTargets,
    view: &super::published::View,
) -> bool {
    let mut new: Vec<String> = built.active.iter().map(|t| t.key()).collect();
    let mut old: Vec<String> = view.targets.iter().map(|s| s.target.key()).collect();
    new.sort();
    old.sort();
    new == old && format!("{:?}", built.dropped) == format!("{:?}", view.config.dropped_targets)
}

/// The files are read again every second (Prometheus watches them; for files this small, reading is
/// as prompt and needs no watcher), and a change of targets goes to the runtime, which installs it as
/// a reload installs targets. A file that cannot be read keeps the running targets, logged once per
/// error.
pub(crate) async fn watch(
    ctx: std::sync::Arc<super::Ctx>,
    commands: tokio::sync::mpsc::Sender<super::runtime::Command>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_error: Option<String> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let view = ctx.published.view.load_full();
        if !view
            .config
            .pools
            .iter()
            .any(super::targets::ScrapePool::has_file_sd)
        {
            continue;
        }
        let pools = view.config.pools.clone();
        let built = tokio::task::spawn_blocking(move || {
            let mut all = super::targets::PoolTargets::default();
            for p in &pools {
                let t = p.targets()?;
                all.active.extend(t.active);
                all.dropped.extend(t.dropped);
            }
            Ok::<_, String>(all)
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r);
        match built {
            Err(e) => {
                if last_error.as_ref() != Some(&e) {
                    tracing::warn!(error = %e, "file_sd_configs: keeping the running targets");
                    last_error = Some(e);
                }
            }
            Ok(built) => {
                last_error = None;
                if !same_targets(&built, &view)
                    && commands
                        .send(super::runtime::Command::Targets(built))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_files() {
        for ok in ["targets.json", "dir/*.yml", "/abs/tg_*.yaml"] {
            check_pattern(ok).unwrap();
        }
        for bad in ["targets", "*/x.json", "a*b*.json", "x.txt"] {
            assert!(check_pattern(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("b.json"),
            r#"[{"targets": ["h:1", "h:2"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("a.yml"), "- targets: ['g:1']\n").unwrap();
        std::fs::write(dir.path().join("c.yml"), "").unwrap();
        let all = read_all(&[dir.path().join("*.json"), dir.path().join("*.yml")]).unwrap();
        let names: Vec<&str> = all
            .iter()
            .map(|(f, _)| f.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(names, ["b.json", "a.yml", "c.yml"]);
        assert_eq!(all[0].1[0].0, ["h:1", "h:2"]);
        assert_eq!(all[0].1[0].1["env"], "prod");
        std::fs::write(
            dir.path().join("d.yml"),
            "- targets: ['g:1']\n  lables: {}\n",
        )
        .unwrap();
        let e = read_all(&[dir.path().join("d.yml")]).unwrap_err();
        assert!(e.contains("d.yml") && e.contains("lables"), "{e}");
        std::fs::write(dir.path().join("e.json"), r#"[{"labels": {"a-b": "x"}}]"#).unwrap();
        let e = read_all(&[dir.path().join("e.json")]).unwrap_err();
        assert!(e.contains("invalid label name \"a-b\""), "{e}");
    }
}
