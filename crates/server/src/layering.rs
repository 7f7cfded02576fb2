//! The lower layers import nothing above them: a test reads their sources and fails on any
//! `crate::` path that leaves the allowed set (see "Layers" in `docs/ARCHITECTURE.md`). Inside
//! `realtime`, what the hub is built from never imports the hub.

use std::path::{Path, PathBuf};

/// Each lower layer and the modules it may import (itself included).
const LOWER_LAYERS: &[(&str, &[&str])] = &[
    ("allocator", &["allocator"]),
    ("config", &["config"]),
    ("telemetry", &["telemetry", "config", "install_crypto_provider"]),
    ("error", &["error", "config", "telemetry"]),
    ("redis_pool", &["redis_pool", "config", "telemetry"]),
];

fn sources(module: &str) -> Vec<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![src.join(format!("{module}.rs"))];
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The first segment of every `crate::…` path in `text`, including each name of
/// `crate::{a, b::c}`.
fn imported_modules(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|item| first_segment(item.trim())));
        } else {
            names.push(first_segment(rest));
        }
    }
    names.retain(|name| !name.is_empty() && name != "self");
    names
}

fn first_segment(path: &str) -> String {
    path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

#[test]
fn lower_layers_import_nothing_above_them() {
    let mut upward = Vec::new();
    for (layer, allowed) in LOWER_LAYERS {
        for file in sources(layer) {
            let text = std::fs::read_to_string(&file).unwrap();
            for name in imported_modules(&text) {
                if !allowed.contains(&name.as_str()) {
                    upward.push(format!("{} imports crate::{name}", file.display()));
                }
            }
        }
    }
    assert!(upward.is_empty(), "upward imports from a lower layer:\n{}", upward.join("\n"));
}

/// The realtime modules the hub is built from.
const BELOW_THE_HUB: &[&str] = &[
    "bridge",
    "channel",
    "engine",
    "event",
    "heartbeat",
    "history",
    "protocol",
    "registry",
    "revocation",
    "shared",
    "stats",
    "tickets",
];

#[test]
fn what_the_realtime_hub_is_built_from_never_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/realtime");
    for module in BELOW_THE_HUB {
        let text = std::fs::read_to_string(src.join(format!("{module}.rs"))).unwrap();
        assert!(!text.contains("hub::"), "realtime/{module}.rs imports the hub");
    }
}

#[test]
fn grouped_and_nested_paths_are_read() {
    let text = "use crate::{api, http::x};\nlet y = crate::state::AppState;\n";
    assert_eq!(imported_modules(text), ["api", "http", "state"]);
}
