//! The on-disk bytecode cache, from the command line: a second run reads
//! what the first compiled and answers the same (warnings included); a
//! changed file, a damaged entry or the setting turned off never yields a
//! stale or wrong answer.

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    stdout: String,
    stderr: String,
    /// `frontEnd.cacheHits` and `frontEnd.files` of `--stats`.
    hits: u64,
    files: u64,
}

/// `nixvm instantiate --eval --strict --stats FILE ARGS` with the cache in
/// `cache` (or turned off by `env`).
fn run(cache: &Path, file: &Path, args: &[&str], env: Option<&str>) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_nixvm"))
        .args(["instantiate", "--eval", "--strict", "--stats"])
        .args(args)
        .arg(file)
        .env(
            "NIXVM_BYTECODE_CACHE",
            env.map_or(cache.as_os_str(), |e| e.as_ref()),
        )
        .output()
        .expect("running nixvm");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stats = (stderr.lines())
        .find(|l| l.starts_with("{\"cpuTime\""))
        .expect("a stats line")
        .to_owned();
    let number = |key: &str| -> u64 {
        let at = stats.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
        stats[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("a number")
    };
    Run {
        stdout: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        stderr: (stderr.lines())
            .filter(|l| !l.starts_with("{\"cpuTime\""))
            .collect::<Vec<_>>()
            .join("\n"),
        hits: number("cacheHits"),
        files: number("files"),
    }
}

/// A directory of three files (one with a parser warning), and an empty
/// cache directory beside it.
fn setup(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("nixvm-bc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(
        src.join("main.nix"),
        "let lib = import ./lib.nix; w = import ./warn.nix; in \
         { a = lib.double 21; b = lib.names { z = 1; y = 2; x = 3; }; \
           c = { z = 1; y = 2; x = 3; }.y; inherit w; p = ./lib.nix; }",
    )
    .unwrap();
    std::fs::write(
        src.join("lib.nix"),
        "rec { double = x: x * 2; names = s: builtins.attrNames s ++ [ (builtins.toString (double 2)) ]; }",
    )
    .unwrap();
    std::fs::write(
        src.join("warn.nix"),
        "builtins.length (let or = 1; in [ (x: x) or ])",
    )
    .unwrap();
    (src.join("main.nix"), root.join("cache"))
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    v.sort();
    v
}

#[test]
fn a_second_run_reads_every_file_from_the_cache_and_answers_the_same() {
    let (main, cache) = setup("hit");
    let first = run(&cache, &main, &[], None);
    assert_eq!((first.hits, first.files), (0, 3));
    assert_eq!(entries(&cache).len(), 3);
    let second = run(&cache, &main, &[], None);
    assert_eq!((second.hits, second.files), (3, 3));
    assert_eq!(second.stdout, first.stdout);
    assert!(first.stdout.contains("a = 42;"), "{}", first.stdout);
    assert!(
        first.stdout.contains("[ \"x\" \"y\" \"z\" \"4\" ]"),
        "{}",
        first.stdout
    );
    // The parser's warning is the cached file's too.
    assert!(
        first.stderr.contains("uses `or` as an identifier"),
        "{}",
        first.stderr
    );
    assert_eq!(second.stderr, first.stderr);
}

#[test]
fn sets_are_right_when_this_process_numbers_their_names_otherwise() {
    // The set literal's names were ordered by the ids of the process that
    // compiled it (z, y, x, as first seen). Here `x` is interned before the
    // file is read, so its id comes first: the cached set is not in this
    // process's order, and is sorted when made.
    let (main, cache) = setup("order");
    let called = main.with_file_name("called.nix");
    std::fs::write(&called, "{ ... }: import ./main.nix").unwrap();
    let first = run(&cache, &called, &["--arg", "unused", "{ q = 0; }"], None);
    let r = run(&cache, &called, &["--arg", "unused", "{ x = 0; }"], None);
    assert_eq!(r.hits, 4);
    assert_eq!(r.stdout, first.stdout);
    assert!(r.stdout.contains("c = 2;"), "{}", r.stdout);
}

#[test]
fn a_changed_file_is_compiled_again_and_the_others_are_not() {
    let (main, cache) = setup("changed");
    run(&cache, &main, &[], None);
    let lib = main.with_file_name("lib.nix");
    std::fs::write(&lib, "rec { double = x: x * 3; names = s: [ ]; }").unwrap();
    let r = run(&cache, &main, &[], None);
    assert_eq!((r.hits, r.files), (2, 3));
    assert!(
        r.stdout.contains("a = 63;") && r.stdout.contains("b = [ ];"),
        "{}",
        r.stdout
    );
    assert_eq!(
        entries(&cache).len(),
        4,
        "the old entry stays, the new one is added"
    );
}

#[test]
fn damaged_entries_are_ignored_and_written_again() {
    let (main, cache) = setup("damaged");
    let good = run(&cache, &main, &[], None);
    let all = entries(&cache);
    // One truncated, one with a flipped byte, one emptied.
    let b = std::fs::read(&all[0]).unwrap();
    std::fs::write(&all[0], &b[..b.len() / 2]).unwrap();
    let mut b = std::fs::read(&all[1]).unwrap();
    let mid = b.len() / 2;
    b[mid] ^= 0x10;
    std::fs::write(&all[1], &b).unwrap();
    std::fs::write(&all[2], b"").unwrap();
    let r = run(&cache, &main, &[], None);
    assert_eq!(r.hits, 0);
    assert_eq!(r.stdout, good.stdout);
    let again = run(&cache, &main, &[], None);
    assert_eq!((again.hits, again.stdout), (3, good.stdout));
}

#[test]
fn the_setting_or_the_environment_turns_it_off() {
    let (main, cache) = setup("off");
    let r = run(
        &cache,
        &main,
        &["--option", "bytecode-cache", "false"],
        None,
    );
    assert_eq!(r.hits, 0);
    assert!(entries(&cache).is_empty());
    let r = run(&cache, &main, &[], Some("0"));
    assert_eq!(r.hits, 0);
    assert!(entries(&cache).is_empty());
    run(&cache, &main, &[], None);
    let r = run(
        &cache,
        &main,
        &["--option", "bytecode-cache", "false"],
        None,
    );
    assert_eq!(r.hits, 0, "entries there are not read either");
}

/// `nixvm instantiate --eval FILE` (no `--stats`): exit status and output.
fn eval_plain(cache: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nixvm"))
        .args(["instantiate", "--eval"])
        .arg(file)
        .env("NIXVM_BYTECODE_CACHE", cache)
        .output()
        .expect("running nixvm");
    let text = String::from_utf8_lossy(if out.status.success() {
        &out.stdout
    } else {
        &out.stderr
    });
    (
        out.status.success(),
        text.trim()
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned(),
    )
}

#[test]
fn names_get_their_ids_in_the_order_a_parse_would_give_them() {
    // Sets are ordered by symbol id, and `==` compares in that order: which
    // attribute throws first depends on which name was interned first. Here
    // `zz` (a let-bound name of lib.nix) comes before `a` in a fresh run, as
    // in CppNix 2.34 ("error: Z"); a cached lib.nix must intern it too.
    let (main, cache) = setup("interning");
    let dir = main.parent().unwrap();
    std::fs::write(dir.join("lib.nix"), "let zz = 1; in zz").unwrap();
    std::fs::write(
        dir.join("t.nix"),
        "{ a = 1; zz = throw \"Z\"; } == { a = 2; zz = throw \"Z\"; }",
    )
    .unwrap();
    std::fs::write(&main, "builtins.seq (import ./lib.nix) (import ./t.nix)").unwrap();
    assert_eq!(eval_plain(&cache, &dir.join("lib.nix")), (true, "1".into()));
    let want = (false, "error: Z".to_owned());
    assert_eq!(eval_plain(&cache, &main), want, "lib.nix from the cache");
    assert_eq!(eval_plain(&cache, &main), want, "both from the cache");
}

#[test]
fn an_entry_under_another_keys_name_is_not_read() {
    let (main, cache) = setup("renamed");
    let good = run(&cache, &main, &[], None);
    let all = entries(&cache);
    // Every entry swapped for another one's bytes (each passes its CRC).
    let bytes: Vec<Vec<u8>> = all.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for (i, p) in all.iter().enumerate() {
        std::fs::write(p, &bytes[(i + 1) % bytes.len()]).unwrap();
    }
    let r = run(&cache, &main, &[], None);
    assert_eq!((r.hits, r.stdout), (0, good.stdout));
}

/// CRC-32 (IEEE), as the cache's entries carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xedb8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[test]
fn a_nested_chunk_that_does_not_decode_is_an_error_not_a_guess() {
    // An entry with a valid digest whose nested chunk does not decode can
    // only be made by hand: the evaluation stops with an error naming the
    // file, where decoding it at load would have cost every evaluation.
    let root = std::env::temp_dir().join(format!("nixvm-bc-crafted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let main = root.join("main.nix");
    std::fs::write(&main, r#"{ a = "needle-in-a-thunk" + "!"; }.a"#).unwrap();
    let cache = root.join("cache");
    let good = run(&cache, &main, &[], None);
    assert_eq!(good.stdout, r#""needle-in-a-thunk!""#);
    let entry = entries(&cache).pop().unwrap();
    let mut b = std::fs::read(&entry).unwrap();
    let at = (b.windows(6).position(|w| w == b"needle")).expect("the string constant");
    b[at] = 0xff; // no longer UTF-8
    let body = 64 + 8 + 4;
    let crc = crc32(&b[body..]).to_le_bytes();
    b[body - 4..body].copy_from_slice(&crc);
    std::fs::write(&entry, &b).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nixvm"))
        .args(["instantiate", "--eval", "--strict"])
        .arg(&main)
        .env("NIXVM_BYTECODE_CACHE", &cache)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("bytecode cache") && stderr.contains("main.nix"),
        "{stderr}"
    );
}
