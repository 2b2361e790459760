//! drvPath/outPath of our own derivations (flat and recursive fixed outputs, several outputs,
//! structured attributes, passAsFile, sources with references, placeholders) must be what
//! CppNix 2.34 computed; its answers are recorded in `tests/fixtures/drvpaths.json`
//! (`tests/check-drvpaths.sh` re-checks them against the reference binary).

use std::process::Command;

mod common;
use common::{release_nixvm, workspace};

#[test]
fn drv_paths_match_cppnix() {
    let root = workspace();
    let bin = release_nixvm();
    let fixtures = root.join("tests/fixtures");
    // Read-only evaluation writes nothing; point the store at a scratch dir all the same.
    let scratch = std::env::temp_dir().join(format!("nixvm-drvpaths-{}", std::process::id()));
    let out = Command::new(&bin)
        .env("XDG_CACHE_HOME", common::CACHE_HOME)
        .current_dir(&fixtures)
        .env("NIXVM_STORE", &scratch)
        .env_remove("NIX_STORE_DIR")
        .args([
            "instantiate",
            "--eval",
            "--strict",
            "--json",
            "drvpaths.nix",
        ])
        .output()
        .expect("running nixvm");
    assert!(
        out.status.success(),
        "nixvm failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!scratch.exists(), "read-only evaluation created a store");
    let ours: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nixvm's JSON");
    let expected: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("drvpaths.json")).expect("fixture"),
    )
    .expect("fixture JSON");
    let (ours, expected) = (ours.as_object().unwrap(), expected.as_object().unwrap());
    assert!(expected.len() >= 14);
    let mut diffs = Vec::new();
    for (name, want) in expected {
        if ours.get(name) != Some(want) {
            diffs.push(format!(
                "{name}:\n  CppNix: {want}\n  nixvm:  {}",
                ours.get(name).map(|v| v.to_string()).unwrap_or_default()
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "paths differ from CppNix's:\n{}",
        diffs.join("\n")
    );
}
