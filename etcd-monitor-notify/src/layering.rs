//! The modules of this crate import one another without a circle: each can be read, and changed,
//! knowing only those below it. Read from the sources, as rust-analyzer's tidy tests read theirs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the top-level modules it names as `crate::...`, test code and comments left
/// out.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap();
        let name = rel.file_stem().unwrap().to_str().unwrap();
        if name == "tests" || name == "layering" || rel == Path::new("lib.rs") {
            continue;
        }
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps = graph.entry(top.clone()).or_default();
        for line in code.lines() {
            let line = line.split("//").next().unwrap();
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let module: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !module.is_empty() && module != top {
                    deps.insert(module);
                }
            }
        }
    }
    graph
}

/// A circle through `from`, if there is one.
fn circle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    if let Some(i) = path.iter().position(|m| m == from) {
        let mut c = path[i..].to_vec();
        c.push(from.to_string());
        return Some(c);
    }
    path.push(from.to_string());
    for next in graph.get(from).into_iter().flatten() {
        if let Some(c) = circle(graph, next, path) {
            return Some(c);
        }
    }
    path.pop();
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(
        graph.contains_key("config") && graph.contains_key("core"),
        "{graph:?}"
    );
    assert!(
        graph["core"].contains("config"),
        "the reader sees imports: {graph:?}"
    );
    for module in graph.keys() {
        if let Some(c) = circle(&graph, module, &mut Vec::new()) {
            panic!("import circle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn the_data_and_the_configuration_know_nothing_of_delivery() {
    let graph = imports();
    for low in [
        "alert",
        "notification",
        "matcher",
        "timeinterval",
        "config",
        "template",
    ] {
        for high in ["core", "message", "deliver", "dispatcher", "api", "state"] {
            assert!(
                !graph[low].contains(high),
                "{low} imports {high}: {:?}",
                graph[low]
            );
        }
    }
}
