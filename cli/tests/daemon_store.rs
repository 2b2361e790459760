//! nix-instantiate and nix-build on a nix-daemon's store (`--store
//! unix://SOCKET?root=DIR`), against a private daemon started by the test
//! (store/tests/common/daemon.rs), checked with CppNix's nix-store there.
//! The drvPaths are CppNix 2.34.8's for the same files.

mod common;

#[path = "../../store/tests/common/daemon.rs"]
mod daemon;

use daemon::PrivateDaemon;
use std::path::{Path, PathBuf};

/// CppNix 2.34.8's `nix-instantiate fixtures/daemon/top.nix`.
const TOP_DRV: &str = "/nix/store/3iflbvkaf4wqdwkfi2f7dywsj2vl0az6-top.drv";
/// ... and of fail.nix.
const FAIL_DRV: &str = "/nix/store/8md75q5g03v7rlv7phfsslxl1kf8qy3n-fails.drv";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn fixtures(d: &PrivateDaemon) -> PathBuf {
    let dir = d.dir.join("work");
    std::fs::create_dir_all(&dir).unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/daemon");
    for f in ["top.nix", "fail.nix", "ifd.nix", "src.txt", "bytes.nix"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    dir
}

fn nixvm(d: &PrivateDaemon, cwd: &Path, args: &[&str]) -> Run {
    let uri = format!("unix://{}?root={}", d.socket.display(), d.root.display());
    let out = common::nixvm_cmd()
        .args(args)
        .args(["--store", &uri])
        .current_dir(cwd)
        .env_remove("NIX_PATH")
        .env_remove("NIXVM_STORE")
        .env("NIX_CONF_DIR", &d.conf)
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn nix_store(d: &PrivateDaemon, args: &[&str]) -> String {
    let out = d.nix("nix-store").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn instantiate_writes_through_the_daemon() {
    let Some(d) = PrivateDaemon::start("cli-inst") else {
        return;
    };
    let work = fixtures(&d);
    let r = nixvm(
        &d,
        &work,
        &["instantiate", "top.nix", "--add-root", "drv-root"],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let link = work.join("drv-root");
    assert_eq!(r.stdout, format!("{}\n", link.display()));
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(TOP_DRV));
    // The closure is valid in the daemon's store: the .drv files, the
    // source and the toFile.
    let closure = nix_store(&d, &["-q", "--requisites", TOP_DRV]);
    let names: Vec<&str> = closure
        .lines()
        .map(|l| l.split_once('-').map_or(l, |(_, n)| n))
        .collect();
    for want in ["dep.drv", "note", "src.txt", "top.drv"] {
        assert!(names.contains(&want), "{want} in {closure}");
    }
    // The root is the daemon's.
    let roots = nix_store(&d, &["--gc", "--print-roots"]);
    assert!(
        roots.contains(&format!("{} -> {TOP_DRV}", link.display())),
        "{roots}"
    );
    // Again: everything is there already, and the answer is the same.
    let again = nixvm(&d, &work, &["instantiate", "top.nix"]);
    assert_eq!(
        (again.code, again.stdout.as_str()),
        (Some(0), &*format!("{TOP_DRV}\n"))
    );
}

#[test]
fn build_and_ifd_through_the_daemon() {
    let Some(d) = PrivateDaemon::start("cli-build") else {
        return;
    };
    let work = fixtures(&d);
    let r = nixvm(&d, &work, &["build", "top.nix"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains("these 2 derivations will be built:"),
        "{}",
        r.stderr
    );
    let out = r.stdout.trim();
    assert_eq!(
        std::fs::read_link(work.join("result")).unwrap(),
        Path::new(out)
    );
    assert_eq!(
        std::fs::read_to_string(d.real(out)).unwrap(),
        "dep source text\n"
    );
    let roots = nix_store(&d, &["--gc", "--print-roots"]);
    assert!(
        roots.contains(&work.join("result").display().to_string()),
        "{roots}"
    );

    // A failing builder: the daemon's message, nix-build's status with a
    // daemon (1).
    let r = nixvm(&d, &work, &["build", "fail.nix"]);
    assert_eq!(r.code, Some(1), "{}", r.stderr);
    assert!(r.stderr.contains("failing on purpose"), "{}", r.stderr);
    // The daemon's own words: 2.8 "builder for 'DRV' failed with exit code
    // 3", 2.34 "Cannot build 'DRV'. Reason: builder failed with exit code 3".
    let first = r
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or("");
    assert!(
        first.contains(FAIL_DRV) && r.stderr.contains("failed with exit code 3"),
        "{}",
        r.stderr
    );

    // A build log that is not UTF-8 is shown, not a broken connection.
    let r = nixvm(&d, &work, &["build", "bytes.nix", "--no-out-link"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stderr.contains("not utf-8: \u{fffd}"), "{}", r.stderr);

    // What evaluation adds and then reads is in the daemon's store by then
    // (the batch goes out first).
    let r = nixvm(
        &d,
        &work,
        &[
            "instantiate",
            "--eval",
            "--read-write-mode",
            "-E",
            "builtins.readFile (builtins.toFile \"x\" \"written, then read\")",
        ],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "\"written, then read\"\n"),
        "{}",
        r.stderr
    );

    // Import from derivation: built by the daemon, read where its files are
    // (read-only --eval writes no .drv, so there is nothing to build, as
    // CppNix says).
    let r = nixvm(
        &d,
        &work,
        &["instantiate", "--eval", "--read-write-mode", "ifd.nix"],
    );
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (Some(0), "42\n"),
        "{}",
        r.stderr
    );
    let r = nixvm(
        &d,
        &work,
        &["instantiate", "--eval", "-E", "import ./ifd.nix"],
    );
    assert_eq!(r.code, Some(0), "the outputs exist now: {}", r.stderr);
}

#[test]
fn store_uris_that_are_refused() {
    let out = common::nixvm_cmd()
        .args(["instantiate", "--eval", "-E", "1", "--store", "s3://bucket"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: don't know how to open Nix store with scheme 's3'\n"
    );
    let out = common::nixvm_cmd()
        .args([
            "instantiate",
            "-E",
            "derivation { name = \"x\"; system = \"s\"; builder = \"b\"; }",
        ])
        .args(["--store", "unix:///nonexistent/socket"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "cannot connect to socket at '/nonexistent/socket': No such file or directory"
        ),
        "{err}"
    );
}

/// `nixvm eval-jobs` on the daemon's store: CppNix's drvPath, written
/// there; `--check-cache-status` asks the daemon what is valid: before the
/// build both derivations are needed (the dependency first), after it none.
#[test]
fn eval_jobs_through_the_daemon() {
    let Some(d) = PrivateDaemon::start("cli-evaljobs") else {
        return;
    };
    let work = fixtures(&d);
    std::fs::write(work.join("jobs.nix"), "{ top = import ./top.nix; }\n").unwrap();
    let job = |d: &PrivateDaemon| {
        let r = nixvm(
            d,
            &work,
            &[
                "eval-jobs",
                "jobs.nix",
                "--workers",
                "2",
                "--check-cache-status",
            ],
        );
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
        v
    };
    let before = job(&d);
    assert_eq!(before["drvPath"], TOP_DRV, "{before}");
    assert_eq!(before["cacheStatus"], "notBuilt");
    let needed = before["neededBuilds"].as_array().unwrap();
    assert_eq!(needed.len(), 2, "{before}");
    assert!(
        needed[0].as_str().unwrap().ends_with("-dep.drv"),
        "{before}"
    );
    assert_eq!(needed[1], TOP_DRV);
    assert!(nix_store(&d, &["-q", "--requisites", TOP_DRV]).contains("-dep.drv"));
    let r = nixvm(&d, &work, &["build", "top.nix", "--no-out-link"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let after = job(&d);
    assert_eq!(after["cacheStatus"], "local", "{after}");
    assert_eq!(after["neededBuilds"], serde_json::json!([]));
}
