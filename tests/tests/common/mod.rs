#![allow(dead_code)]
//! What the workspace-level tests share: where the workspace is, and the
//! release binary they drive (they need a release build: an interpreter in
//! debug mode is too slow for the conformance timeouts).

use std::path::{Path, PathBuf};

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// `target/release/nixvm`; fails the test with the command to build it if absent.
pub fn release_nixvm() -> PathBuf {
    let bin = workspace().join("target/release/nixvm");
    assert!(
        bin.exists(),
        "{} is missing: build it first with `cargo build --release -p nixvm-cli` (the tests need a release build)",
        bin.display()
    );
    bin
}

/// The `XDG_CACHE_HOME` of every nixvm the tests run: under the target
/// directory, so that runs never fill the user's `~/.cache` with bytecode.
pub const CACHE_HOME: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/cache");
