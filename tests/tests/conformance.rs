//! Runs CppNix's language test suite (`../shared/conformance`) against the
//! release `nixvm` binary through the official runner, and checks that no
//! kind's pass count falls below the recorded baseline. The baseline is
//! raised whenever the counts go up (see README "Conformance").

use std::path::{Path, PathBuf};
use std::process::Command;

/// (kind, passes at least) at the `output` level.
const BASELINE: &[(&str, u32)] = &[
    ("parse-okay", 13),
    ("parse-fail", 41),
    ("eval-okay", 143),
    ("eval-fail", 283),
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn nix_lang_conformance_does_not_regress() {
    let root = workspace();
    let runner = root.join("../shared/conformance/run-nix-lang.sh");
    if !runner.exists() {
        eprintln!("SKIPPED: ../shared/conformance is absent; the conformance suite was not run");
        return;
    }
    let bin = root.join("target/release/nixvm");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --release -p nixvm-cli` (the suite needs a release build)",
        bin.display()
    );
    let log = std::env::temp_dir().join(format!("nixvm-conformance-{}.log", std::process::id()));
    // Cases run without --eval instantiate, which may write to a store: keep it out of $HOME.
    let store =
        std::env::temp_dir().join(format!("nixvm-conformance-store-{}", std::process::id()));
    let out = Command::new("bash")
        .env("NIXVM_STORE", &store)
        .arg(&runner)
        .args(["-j", "2", "-o"])
        .arg(&log)
        .arg("--")
        .arg(&bin)
        .arg("instantiate")
        .output()
        .expect("running the conformance runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut failures = Vec::new();
    for (kind, min) in BASELINE {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{kind}: ")))
            .unwrap_or_else(|| panic!("no summary line for {kind} in runner output:\n{stdout}"));
        let passed: u32 = line
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("cannot read the pass count from {line:?}"));
        eprintln!("{line}");
        if passed < *min {
            failures.push(format!("{kind}: {passed} passed, baseline {min}"));
        }
    }
    // Every case must end with exit 0 or 1: no panic (101), signal or timeout.
    let crashes: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            l.starts_with("TIMEOUT")
                || l.split("(exit ")
                    .nth(1)
                    .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                    .is_some_and(|c| c != "0" && c != "1")
        })
        .collect();
    assert!(
        crashes.is_empty(),
        "cases that timed out or crashed:\n{}",
        crashes.join("\n")
    );
    assert!(
        failures.is_empty(),
        "conformance regressed:\n{}\n\nfull output:\n{stdout}",
        failures.join("\n")
    );
}
