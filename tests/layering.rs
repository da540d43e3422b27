//! The layers of `src/` stay in order: a lower module never reaches into a higher one.
//! From the bottom: `model`, `crypto`, `verify`, `secrets` (plain data and primitives);
//! `store` (all SQL) and `sources` (the senders) beside each other; `ingest`, `forward`,
//! the monitor and the background jobs; `http` (the only module that knows HTTP routes
//! and answers); `cli`, `server`, `startup` and `lib.rs`, which assemble everything.
//!
//! Each rule is a set of files and the `crate::` paths they may not name; doc comments
//! and comments count too (a doc link to a higher layer is a sign of a wrong
//! dependency), so the rule is easy to read: grep for the path and it is not there.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The `file:line` places under `src/` where a file matching `in_scope` names one of
/// `forbidden` (a path such as `crate::http`, matched as a whole segment).
fn violations(in_scope: impl Fn(&str) -> bool, forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for file in rust_files(&src) {
        let relative = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().to_string_lossy().replace('\\', "/");
        if !in_scope(&relative) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            for path in forbidden {
                let mut rest = line;
                while let Some(at) = rest.find(path) {
                    let after = rest[at + path.len()..].chars().next();
                    // `crate::http` must not match `crate::http_client`.
                    if !after.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        found.push(format!("{relative}:{}: names {path}: {}", n + 1, line.trim()));
                        break;
                    }
                    rest = &rest[at + path.len()..];
                }
            }
        }
    }
    found
}

fn under(prefixes: &'static [&'static str]) -> impl Fn(&str) -> bool {
    move |file| prefixes.iter().any(|p| file == format!("{p}.rs") || file.starts_with(&format!("{p}/")))
}

#[test]
fn only_the_http_layer_and_the_server_assembly_name_the_http_module() {
    // The crate map and the two modules that assemble a server build on every layer.
    let assembling = ["src/lib.rs", "src/server.rs", "src/startup.rs"];
    let found = violations(|f| !f.starts_with("src/http/") && !assembling.contains(&f), &["crate::http"]);
    assert!(found.is_empty(), "modules below `http` import it:\n{}", found.join("\n"));
}

#[test]
fn senders_never_touch_the_store_ingest_forwarding_or_http() {
    let found = violations(
        under(&["src/sources", "src/verify"]),
        &["crate::store", "crate::ingest", "crate::forward", "crate::http", "crate::cli", "axum"],
    );
    assert!(found.is_empty(), "a sender reaches above its layer:\n{}", found.join("\n"));
}

#[test]
fn verification_machinery_knows_no_particular_sender() {
    // Its unit tests may use a real publisher (Google's keys) as the example.
    let found = violations(|f| under(&["src/verify"])(f) && !f.ends_with("/tests.rs"), &["crate::sources"]);
    assert!(found.is_empty(), "`verify` names a sender:\n{}", found.join("\n"));
}

#[test]
fn the_store_knows_nothing_of_senders_ingest_forwarding_or_http() {
    let found = violations(
        under(&["src/store"]),
        &["crate::sources", "crate::ingest", "crate::forward", "crate::jobs", "crate::alerts", "crate::http", "crate::cli", "axum"],
    );
    assert!(found.is_empty(), "the store reaches above its layer:\n{}", found.join("\n"));
}

#[test]
fn the_model_and_the_primitives_depend_on_nothing_above_them() {
    let found = violations(
        under(&["src/model", "src/crypto", "src/health", "src/passes"]),
        &[
            "crate::store",
            "crate::sources",
            "crate::ingest",
            "crate::forward",
            "crate::jobs",
            "crate::alerts",
            "crate::http",
            "crate::cli",
            "axum",
            "sqlx",
        ],
    );
    assert!(found.is_empty(), "a bottom module reaches up:\n{}", found.join("\n"));
}

#[test]
fn only_test_code_names_the_testing_helpers() {
    // Test signers, test modules and the store's conformance suite (built for tests only).
    let test_code = |f: &str| {
        f.ends_with("/tests.rs")
            || f.rsplit('/').next().is_some_and(|name| name.starts_with("test_"))
            || under(&["src/testing", "src/store/conformance"])(f)
    };
    let found = violations(|f| !test_code(f), &["crate::testing"]);
    assert!(found.is_empty(), "production code names the test helpers:\n{}", found.join("\n"));
}

#[test]
fn the_rules_above_do_find_what_they_forbid() {
    // The scan itself, on a file known to name `crate::http`: the server it assembles.
    let found = violations(|f| f == "src/server.rs", &["crate::http"]);
    assert!(!found.is_empty(), "src/server.rs builds the crate::http app, and the scan must see it");
}

#[test]
fn the_sources_folder_holds_one_folder_per_registered_sender_and_the_registry() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sources");
    let registry = ["mod.rs", "tests.rs", "catalog.rs", "catalog", "config_check.rs", "config_check"];
    let senders: Vec<&str> = pushgate::sources::SOURCES.iter().map(|s| s.kind.as_str()).collect();
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if registry.contains(&name.as_str()) {
            continue;
        }
        assert!(entry.path().is_dir(), "src/sources/{name}: a sender is a folder, and shared machinery belongs in src/verify");
        assert!(senders.contains(&name.as_str()), "src/sources/{name}/ is not a sender in SOURCES (registered: {senders:?})");
        folders.push(name);
    }
    folders.sort();
    let mut expected: Vec<String> = senders.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(folders, expected, "every registered sender has its folder");
}
