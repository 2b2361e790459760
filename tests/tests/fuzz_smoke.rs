//! A short run of the fuzz targets on the stable toolchain (`fuzz/run.sh`,
//! see README "Fuzzing"): `parse` (lexer, parser, printer) and `data`
//! (fromJSON, fromTOML, toXML, regular expressions) for 15 seconds each, from
//! the committed seeds and CppNix's language suite. A crash fails the test
//! with libFuzzer's report; the targets build in `fuzz/target`, outside the
//! workspace's own. Skipped, saying so, where no C++ compiler can build
//! libFuzzer.

use std::process::Command;

mod common;
use common::workspace;

#[test]
fn fuzz_targets_survive_a_short_run() {
    let has_cxx = ["c++", "g++", "clang++"].iter().any(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !has_cxx {
        eprintln!("SKIPPED: no C++ compiler to build libFuzzer; the fuzz targets were not run");
        return;
    }
    for target in ["parse", "data"] {
        let out = Command::new("bash")
            .arg(workspace().join("fuzz/run.sh"))
            .args([target, "15"])
            .output()
            .expect("running fuzz/run.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
        assert!(
            out.status.success(),
            "fuzz target {target} failed:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
        eprintln!(
            "fuzz {target}: {}",
            stderr
                .lines()
                .rev()
                .find(|l| l.contains("Done"))
                .unwrap_or("done")
        );
    }
}
