//! The cases of CppNix's language suite that need symlinks: eval-okay `readDir`,
//! `readDir-symlinked-directory`, `readFileType`, `symlink-resolution`, `pathexists`, and
//! eval-fail `readDir-not-a-directory-2`.
//! A corpus copy may store those symlinks as plain files holding the target (as the one
//! in `../shared/conformance` does), so this test copies the cases and the folders they
//! read into a temporary `lang/`, recreates the symlinks the corpus README lists, and runs
//! the release `nixvm` on each exactly as `run-nix-lang.sh` runs an eval-okay case.

use std::fs;
use std::path::Path;
use std::process::Command;

const CASES: &[&str] = &[
    "readDir",
    "readDir-symlinked-directory",
    "readFileType",
    "symlink-resolution",
    "pathexists",
];

/// eval-fail cases: they must exit 1 with the final error message of their `.err.exp`.
const FAIL_CASES: &[&str] = &["readDir-not-a-directory-2"];

/// Files and folders (relative to `lang/`) the cases read, besides their own `.nix`/`.exp`.
const AUX: &[&str] = &["readDir", "symlink-resolution", "lib.nix"];

/// (link, target), relative to `lang/`: upstream's symlinks, from the corpus README.
const SYMLINKS: &[(&str, &str)] = &[
    ("readDir/ldir", "foo"),
    ("readDir/linked", "foo/git-hates-directories"),
    ("symlink-resolution/broken", "nonexistent"),
    ("symlink-resolution/foo/overlays", "../overlays"),
];

mod common;
use common::{release_nixvm, workspace};

/// Copy `from` (file or folder) to `to`, skipping the paths that become symlinks. Copies
/// are writable so that the temporary folder can be removed.
fn copy(from: &Path, to: &Path, lang_out: &Path) {
    if SYMLINKS.iter().any(|(l, _)| lang_out.join(l) == to) {
        return;
    }
    let meta = fs::symlink_metadata(from).unwrap();
    if meta.is_dir() {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            copy(&e.path(), &to.join(e.file_name()), lang_out);
        }
    } else if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from).unwrap(), to).unwrap();
    } else {
        fs::write(to, fs::read(from).unwrap()).unwrap();
    }
}

#[test]
fn symlink_cases() {
    let root = workspace();
    let lang = root.join("../shared/conformance/nix-lang/lang");
    if !lang.is_dir() {
        eprintln!("SKIPPED: ../shared/conformance is absent; the symlink cases were not run");
        return;
    }
    let bin = release_nixvm();
    let corpus = std::env::temp_dir().join(format!("nixvm-symlink-cases-{}", std::process::id()));
    let _ = fs::remove_dir_all(&corpus);
    let out_lang = corpus.join("lang");
    fs::create_dir_all(&out_lang).unwrap();
    for aux in AUX {
        copy(&lang.join(aux), &out_lang.join(aux), &out_lang);
    }
    for (link, target) in SYMLINKS {
        let at = out_lang.join(link);
        let _ = fs::remove_file(&at);
        std::os::unix::fs::symlink(target, &at).unwrap();
    }
    let mut failures = Vec::new();
    for case in CASES {
        let name = format!("eval-okay-{case}");
        for ext in ["nix", "exp"] {
            let f = format!("{name}.{ext}");
            fs::copy(lang.join(&f), out_lang.join(&f)).unwrap();
        }
        assert!(
            !lang.join(format!("{name}.flags")).exists()
                && !lang.join(format!("{name}.err.exp")).exists(),
            "{name}: .flags/.err.exp are not handled here"
        );
        let out = run_case(&bin, &corpus, &name);
        let stdout = normalise(&out.stdout, &corpus);
        let expected = fs::read_to_string(lang.join(format!("{name}.exp"))).unwrap();
        if !out.status.success() || stdout != expected {
            failures.push(format!(
                "{name}: exit {:?}\n--- expected\n{expected}--- got\n{stdout}--- stderr\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        } else {
            eprintln!("PASS {name}");
        }
    }
    for case in FAIL_CASES {
        let name = format!("eval-fail-{case}");
        for ext in ["nix", "err.exp"] {
            let f = format!("{name}.{ext}");
            fs::copy(lang.join(&f), out_lang.join(&f)).unwrap();
        }
        let out = run_case(&bin, &corpus, &name);
        let stderr = normalise(&out.stderr, &corpus);
        let expected = fs::read_to_string(lang.join(format!("{name}.err.exp"))).unwrap();
        let reason = expected
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix("error: "))
            .next_back()
            .expect("an error line in .err.exp");
        if out.status.code() != Some(1) || !stderr.contains(reason) {
            failures.push(format!(
                "{name}: exit {:?}, expected the reason {reason:?}\n--- stderr\n{stderr}",
                out.status.code()
            ));
        } else {
            eprintln!("PASS {name}");
        }
    }
    let _ = fs::remove_dir_all(&corpus);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Run a case as run-nix-lang.sh runs an eval case: cwd = corpus root, its environment.
fn run_case(bin: &Path, corpus: &Path, name: &str) -> std::process::Output {
    Command::new(bin)
        .current_dir(corpus)
        .env_remove("NIX_PATH")
        .env("NIX_PATH", "lang/dir3:lang/dir4")
        .env("HOME", "/fake-home")
        // The bytecode cache in the corpus copy, removed with it.
        .env("XDG_CACHE_HOME", corpus.join("home/cache"))
        .env("TEST_VAR", "foo")
        .env("NIX_REMOTE", "dummy://")
        .env("NIX_STORE_DIR", "/nix/store")
        .env("NIXVM_STORE", corpus.join("home/store"))
        .args(["instantiate", "--eval", "--strict"])
        .arg(format!("lang/{name}.nix"))
        .output()
        .expect("running nixvm")
}

fn normalise(out: &[u8], corpus: &Path) -> String {
    let pwd = fs::canonicalize(corpus).unwrap();
    String::from_utf8_lossy(out).replace(&*pwd.to_string_lossy(), "/pwd")
}
