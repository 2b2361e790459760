//! `nixvm build` end to end: a graph of derivations with `/bin/sh` builders (one fixed-output
//! fetched from a `file://` URL, one imported from a derivation) built into a scratch store;
//! a second run does no work.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::release_nixvm;

/// Builds into a chroot store need user+mount namespaces; without them (some CI machines)
/// these tests are skipped with a message rather than failing.
fn namespaces_ok() -> bool {
    let ok = Command::new("unshare")
        .args(["-Ur", "true"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        eprintln!(
            "SKIPPED: user namespaces are not available here, so a chroot store cannot build"
        );
    }
    ok
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nixvm-buildtest-{tag}-{}", std::process::id()));
    if d.exists() {
        // Store objects are read-only.
        let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&d).status();
        let _ = std::fs::remove_dir_all(&d);
    }
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(release_nixvm());
    cmd.current_dir(dir)
        .env("XDG_CACHE_HOME", common::CACHE_HOME)
        .env_remove("NIX_STORE_DIR")
        .env_remove("NIXVM_STORE")
        .args(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("running nixvm")
}

const PAYLOAD: &str = "fetched content\n";
const PAYLOAD_SHA256: &str = "328ef547b121be3aeb0c67180f3e179078de4be355f669473c82a7f13e095e12";

fn graph(dir: &Path) -> String {
    let payload = dir.join("payload.txt");
    std::fs::write(&payload, PAYLOAD).unwrap();
    format!(
        r#"
let
  sys = builtins.currentSystem;
  mk = attrs: derivation ({{ system = sys; builder = "/bin/sh"; }} // attrs);
  greeting = builtins.toFile "greeting" "hello";
  fetched = import <nix/fetchurl.nix> {{ url = "file://{payload}"; sha256 = "{PAYLOAD_SHA256}"; }};
  a = mk {{ name = "a"; args = [ "-c" "read g < ${{greeting}}; echo \"$g from a\" > $out" ]; }};
  b = mk {{ name = "b"; outputs = [ "out" "dev" ];
    args = [ "-c" "read x < ${{a}}; echo \"$x, via b\" > $out; echo ${{a}} > $dev" ]; }};
  c = mk {{ name = "c"; passAsFile = [ "text" ]; text = "passed as a file";
    args = [ "-c" "read t < $textPath; echo \"$t\" > $out" ]; }};
  gen = mk {{ name = "gen"; args = [ "-c" "echo '{{ word = \"imported\"; }}' > $out" ]; }};
  fromIfd = (import gen).word;
  top = mk {{ name = "top";
    args = [ "-c" "read x < ${{b}}; read d < ${{b.dev}}; read f < ${{fetched}}; read t < ${{c}}; echo \"$x|$d|$f|$t|${{fromIfd}}|$NIX_BUILD_TOP|$HOME|$PATH\" > $out" ]; }};
in top
"#,
        payload = payload.display()
    )
}

#[test]
fn builds_a_graph_then_does_nothing() {
    if !namespaces_ok() {
        return;
    }
    let dir = scratch("graph");
    std::fs::write(dir.join("default.nix"), graph(&dir)).unwrap();
    let store = dir.join("store");
    let store_s = store.to_string_lossy().into_owned();

    let first = run(&dir, &["build", "-j", "2", "--store", &store_s], &[]);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(first.status.success(), "first build failed:\n{stderr}");
    let out_path = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(
        out_path.starts_with("/nix/store/") && out_path.ends_with("-top"),
        "{out_path}"
    );
    // Every derivation of the graph was built: gen during evaluation (import from
    // derivation), the rest in the build.
    for name in ["gen", "payload.txt", "a", "b", "c", "top"] {
        assert!(
            stderr.contains(&format!("-{name}.drv'...")),
            "no build of {name}:\n{stderr}"
        );
    }
    let result = std::fs::read_to_string(dir.join("result")).expect("./result");
    let fields: Vec<&str> = result.trim_end().split('|').collect();
    assert_eq!(fields[0], "hello from a, via b");
    assert!(fields[1].starts_with("/nix/store/") && fields[1].ends_with("-a"));
    assert_eq!(fields[2], PAYLOAD.trim_end());
    assert_eq!(fields[3], "passed as a file");
    assert_eq!(fields[4], "imported");
    assert_eq!(fields[6], "/homeless-shelter");
    assert_eq!(fields[7], "/path-not-set");
    // The result symlink points at the physical file of the chroot store.
    let target = std::fs::read_link(dir.join("result")).unwrap();
    assert!(target.starts_with(&store), "{}", target.display());
    // Logs are kept.
    let logs = std::fs::read_dir(store.join("nix/var/nixvm/log"))
        .unwrap()
        .count();
    assert!(logs >= 6, "{logs} logs");

    // The same instantiation prints the same .drv path, and nothing is rebuilt.
    let again = run(&dir, &["build", "--store", &store_s], &[]);
    let stderr2 = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "second build failed:\n{stderr2}");
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), out_path);
    assert!(
        !stderr2.contains("building"),
        "second run did work:\n{stderr2}"
    );

    // Outputs that exist are usable even when import-from-derivation is off.
    let no_ifd = run(
        &dir,
        &[
            "build",
            "--store",
            &store_s,
            "--no-allow-import-from-derivation",
        ],
        &[],
    );
    assert!(no_ifd.status.success());

    // In a fresh store, the import needs a build, which is refused with CppNix's message.
    let store2 = dir.join("store2");
    let refused = run(
        &dir,
        &[
            "instantiate",
            "--store",
            &store2.to_string_lossy(),
            "--no-allow-import-from-derivation",
        ],
        &[],
    );
    assert_eq!(refused.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(
        msg.contains("-gen.drv^out' during evaluation because the option 'allow-import-from-derivation' is disabled"),
        "{msg}"
    );
}

#[test]
fn instantiate_writes_drvs_and_eval_writes_nothing() {
    let dir = scratch("inst");
    let expr = r#"derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; src = builtins.toFile "s" "t"; }"#;
    let store = dir.join("store");
    let store_s = store.to_string_lossy().into_owned();
    let ev = run(
        &dir,
        &[
            "instantiate",
            "--eval",
            "--store",
            &store_s,
            "-E",
            &format!("({expr}).drvPath"),
        ],
        &[],
    );
    assert!(ev.status.success());
    assert!(!store.exists(), "--eval must not create a store");
    let inst = run(&dir, &["instantiate", "--store", &store_s, "-E", expr], &[]);
    assert!(
        inst.status.success(),
        "{}",
        String::from_utf8_lossy(&inst.stderr)
    );
    let drv = String::from_utf8_lossy(&inst.stdout).trim().to_string();
    // CppNix 2.34's path for the same expression.
    assert_eq!(drv, "/nix/store/vi8z5aval927hq8vvcayi316ym2zr73l-x.drv");
    let real = store.join(drv.trim_start_matches('/'));
    let text = std::fs::read_to_string(&real).expect(".drv written");
    assert!(text.starts_with("Derive([(\"out\","));
    assert!(store.join("nix/store").read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with("-s")));
    // --read-write-mode makes --eval write too.
    let store3 = dir.join("store3");
    let rw = run(
        &dir,
        &[
            "instantiate",
            "--eval",
            "--read-write-mode",
            "--store",
            &store3.to_string_lossy(),
            "-E",
            &format!("({expr}).drvPath"),
        ],
        &[],
    );
    assert!(rw.status.success());
    assert!(store3.join(drv.trim_start_matches('/')).exists());
}

#[test]
// Exit statuses are CppNix's: 100 a build failed, 102 a fixed-output hash mismatched.
fn failures_are_clear_and_exit_as_cppnix() {
    if !namespaces_ok() {
        return;
    }
    let dir = scratch("fail");
    std::fs::write(
        dir.join("default.nix"),
        r#"
{
  fails = derivation { name = "fails"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo doomed; exit 3" ]; };
  mismatch = derivation { name = "mm"; system = builtins.currentSystem; builder = "/bin/sh";
    outputHashAlgo = "sha256"; outputHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
    args = [ "-c" "echo hi > $out" ]; };
  noOut = derivation { name = "no-out"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "true" ]; };
}
"#,
    )
    .unwrap();
    let store = dir.join("store").to_string_lossy().into_owned();
    let r = run(&dir, &["build", "--store", &store, "-A", "fails"], &[]);
    assert_eq!(r.status.code(), Some(100));
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(e.contains("doomed"), "{e}");
    assert!(
        e.contains("Reason: builder failed with exit code 3."),
        "{e}"
    );
    let r = run(&dir, &["build", "--store", &store, "-A", "mismatch"], &[]);
    assert_eq!(r.status.code(), Some(102));
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        e.contains("hash mismatch in fixed-output derivation"),
        "{e}"
    );
    assert!(
        e.contains("got:    sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q="),
        "{e}"
    );
    let r = run(&dir, &["build", "--store", &store, "-A", "noOut"], &[]);
    assert_eq!(r.status.code(), Some(100));
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        e.contains("failed to produce output path for output 'out'"),
        "{e}"
    );
}

#[test]
fn a_killed_build_leaves_nothing_valid_and_is_redone() {
    if !namespaces_ok() {
        return;
    }
    let dir = scratch("killed");
    // A fixed-output derivation may see chosen variables of our environment: the first run
    // hangs after writing its output, and is killed.
    std::fs::write(
        dir.join("default.nix"),
        r#"derivation {
  name = "interrupted"; system = builtins.currentSystem; builder = "/bin/sh";
  outputHashAlgo = "sha256"; outputHash = "sha256-mOpuTyFvL7S2n/+bOkSELDhobKaF8/VdxIxdP7EQe+Q=";
  impureEnvVars = [ "NIXVM_TEST_HANG" ];
  args = [ "-c" "echo hi > $out; if [ -n \"$NIXVM_TEST_HANG\" ]; then while :; do :; done; fi" ];
}"#,
    )
    .unwrap();
    let store = dir.join("store");
    let store_s = store.to_string_lossy().into_owned();
    let mut child = Command::new(release_nixvm())
        .env("XDG_CACHE_HOME", common::CACHE_HOME)
        .current_dir(&dir)
        .env_remove("NIX_STORE_DIR")
        .env("NIXVM_TEST_HANG", "1")
        .args(["build", "-Q", "--store", &store_s])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the builder runs (its log exists), then kill nixvm outright.
    let logs = store.join("nix/var/nixvm/log");
    for _ in 0..100 {
        if logs
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();
    let out = "/nix/store/02c7hzb6hav40p1wybx0jjy98rbirqrl-interrupted";
    // Not valid: a read-only query finds no such output (eval cannot build).
    let q = run(
        &dir,
        &[
            "instantiate",
            "--eval",
            "--store",
            &store_s,
            "-E",
            &format!("builtins.readFile {out}"),
        ],
        &[],
    );
    assert_eq!(q.status.code(), Some(1));
    // The next run builds it properly.
    let again = run(&dir, &["build", "--store", &store_s], &[]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), out);
    assert_eq!(std::fs::read_to_string(dir.join("result")).unwrap(), "hi\n");
    // The killed run's work files are gone.
    let tmp = store.join("nix/store/.nixvm-tmp");
    assert_eq!(tmp.read_dir().unwrap().count(), 0);
}

#[test]
fn reference_checks() {
    if !namespaces_ok() {
        return;
    }
    let dir = scratch("refcheck");
    std::fs::write(
        dir.join("default.nix"),
        r#"
let
  mk = attrs: derivation ({ system = builtins.currentSystem; builder = "/bin/sh"; } // attrs);
  dep = mk { name = "dep"; args = [ "-c" "echo dep > $out" ]; };
in {
  allowed = mk { name = "allowed"; allowedReferences = [ dep ]; args = [ "-c" "echo ${dep} > $out" ]; };
  forbidden = mk { name = "forbidden"; allowedReferences = [ ]; args = [ "-c" "echo ${dep} > $out" ]; };
  disallowed = mk { name = "disallowed"; disallowedRequisites = [ dep ]; args = [ "-c" "echo ${dep} > $out" ]; };
  badName = mk { name = "bad-name"; allowedReferences = [ "nope" ]; args = [ "-c" "echo > $out" ]; };
}
"#,
    )
    .unwrap();
    let store = dir.join("store").to_string_lossy().into_owned();
    let ok = run(&dir, &["build", "--store", &store, "-A", "allowed"], &[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for attr in ["forbidden", "disallowed"] {
        let r = run(&dir, &["build", "--store", &store, "-A", attr], &[]);
        assert_eq!(r.status.code(), Some(1));
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(
            e.contains("is not allowed to refer to the following paths:"),
            "{e}"
        );
        assert!(e.contains("-dep"), "{e}");
    }
    let r = run(&dir, &["build", "--store", &store, "-A", "badName"], &[]);
    assert_eq!(r.status.code(), Some(1));
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(e.contains("contains output name 'nope'"), "{e}");
}

/// A plain tar of `pkg/msg.txt` (fetchTarball strips the single top-level directory).
fn msg_tar(msg: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "pkg/", &b""[..]).unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_size(msg.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "pkg/msg.txt", msg.as_bytes())
        .unwrap();
    b.into_inner().unwrap()
}

/// `builtins.fetchurl` and `builtins.fetchTarball` results used by a derivation are input
/// sources of its `.drv`, valid in the store, and visible to the sandboxed builder. Read-only
/// evaluation still fetches (into a scratch area) without creating a store, and finds a path
/// an existing store already has without fetching it again.
#[test]
fn fetched_paths_are_store_inputs_of_builds() {
    let dir = scratch("fetched");
    let payload = dir.join("payload.txt");
    std::fs::write(&payload, PAYLOAD).unwrap();
    std::fs::write(dir.join("tree.tar"), msg_tar("from the tarball\n")).unwrap();
    let url = format!("file://{}", payload.display());
    let tar_url = format!("file://{}", dir.join("tree.tar").display());
    std::fs::write(
        dir.join("default.nix"),
        format!(
            r#"
let
  f = builtins.fetchurl {{ url = "{url}"; sha256 = "{PAYLOAD_SHA256}"; }};
  t = builtins.fetchTarball {{ url = "{tar_url}"; }};
in derivation {{
  name = "uses-fetched"; system = builtins.currentSystem; builder = "/bin/sh";
  inherit f;
  args = [ "-c" "read a < $f; read b < ${{t}}/msg.txt; echo \"$a|$b\" > $out" ];
}}
"#
        ),
    )
    .unwrap();
    let store = dir.join("store");
    let store_s = store.to_string_lossy().into_owned();

    // Read-only evaluation fetches but writes no store.
    let ev = run(
        &dir,
        &[
            "instantiate",
            "--eval",
            "--store",
            &store_s,
            "-E",
            "(import ./.).f",
        ],
        &[],
    );
    assert!(
        ev.status.success(),
        "{}",
        String::from_utf8_lossy(&ev.stderr)
    );
    let fetched = String::from_utf8_lossy(&ev.stdout)
        .trim()
        .trim_matches('"')
        .to_string();
    assert!(fetched.ends_with("-payload.txt"), "{fetched}");
    assert!(
        !store.exists(),
        "read-only evaluation must not create a store"
    );

    // Instantiation adds the fetched paths to the store as input sources of the .drv.
    let inst = run(&dir, &["instantiate", "--store", &store_s], &[]);
    assert!(
        inst.status.success(),
        "{}",
        String::from_utf8_lossy(&inst.stderr)
    );
    let drv = String::from_utf8_lossy(&inst.stdout).trim().to_string();
    let text = std::fs::read_to_string(store.join(drv.trim_start_matches('/'))).unwrap();
    // Derive([outputs],[input drvs],[input sources],...
    let srcs = text
        .split("],[")
        .nth(2)
        .and_then(|s| s.split(']').next())
        .unwrap_or_default();
    assert!(srcs.contains(&format!("\"{fetched}\"")), "{text}");
    let real = store.join(fetched.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(&real).unwrap(), PAYLOAD);
    let names: Vec<String> = store
        .join("nix/store")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let source = names
        .iter()
        .find(|n| n.ends_with("-source"))
        .unwrap_or_else(|| panic!("no fetched tree in {names:?}"));
    assert!(srcs.contains(&format!("\"/nix/store/{source}\"")), "{text}");
    assert_eq!(
        std::fs::read_to_string(store.join("nix/store").join(source).join("msg.txt")).unwrap(),
        "from the tarball\n"
    );

    // A read-only evaluation finds the stored path without fetching (the URL is gone).
    let again = run(
        &dir,
        &[
            "instantiate",
            "--eval",
            "--store",
            &store_s,
            "-E",
            &format!(
                r#"builtins.readFile (builtins.fetchurl {{ url = "file://{}/gone"; name = "payload.txt"; sha256 = "{PAYLOAD_SHA256}"; }})"#,
                dir.display()
            ),
        ],
        &[],
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        "\"fetched content\\n\""
    );

    if !namespaces_ok() {
        return;
    }
    let b = run(&dir, &["build", "--store", &store_s], &[]);
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let result = std::fs::read_to_string(dir.join("result")).expect("./result");
    assert_eq!(result, "fetched content|from the tarball\n");
}
