//! `nixvm eval-jobs`: the jobs under an expression, their drvPaths and
//! outputs as CppNix 2.34 computes them (`fixtures/evaljobs/cppnix-2.34.json`),
//! the walk through `recurseForDerivations`, a failing job as an error line
//! in a run that exits 0, and the workers' memory limits: a worker past
//! `--max-memory-size` is replaced after each job, and one killed mid-job
//! (the total budget) costs that job an error line, not the run.

mod common;
use serde_json::Value as J;
use std::collections::BTreeMap;
use std::process::Command;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/evaljobs");

struct Run {
    code: Option<i32>,
    jobs: BTreeMap<String, J>,
    stderr: String,
}

fn scratch(name: &str) -> std::path::PathBuf {
    let scratch =
        std::env::temp_dir().join(format!("nixvm-evaljobs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(scratch.join("etc")).unwrap();
    scratch
}

fn eval_jobs(name: &str, args: &[&str]) -> Run {
    let scratch = scratch(name);
    let r = run_in(&scratch, "eval-jobs", args);
    let _ = std::fs::remove_dir_all(&scratch);
    r
}

/// `nixvm SUB ARGS` with its store and configuration in `scratch`; the
/// JSON lines it prints, by `attr`.
fn run_in(scratch: &std::path::Path, sub: &str, args: &[&str]) -> Run {
    let mut c: Command = common::nixvm_cmd();
    c.arg(sub)
        .args(args)
        .current_dir(DIR)
        .env_remove("NIX_PATH")
        .env_remove("NIX_CONFIG")
        .env("NIX_CONF_DIR", scratch.join("etc"))
        .env("XDG_CONFIG_HOME", scratch.join("config"))
        .env("HOME", "/home/someone")
        .env("NIXVM_STORE", scratch.join("store"))
        .env("NIX_SHOW_STATS", "1");
    let o = c.output().unwrap();
    let mut jobs = BTreeMap::new();
    for line in String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
    {
        let v: J = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let attr = v["attr"].as_str().unwrap().to_string();
        assert!(
            jobs.insert(attr.clone(), v).is_none(),
            "{attr} printed twice"
        );
    }
    Run {
        code: o.status.code(),
        jobs,
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn check_jobs(r: &Run) {
    assert_eq!(r.code, Some(0));
    let want: BTreeMap<String, J> =
        serde_json::from_str(&std::fs::read_to_string(format!("{DIR}/cppnix-2.34.json")).unwrap())
            .unwrap();
    let mut names: Vec<&str> = r.jobs.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(names, ["a", "b", "broken", "multi", "nested.c", "withmeta"]);
    for (attr, w) in &want {
        let got = &r.jobs[attr];
        assert_eq!(got["drvPath"], w["drvPath"], "{attr}");
        assert_eq!(got["outputs"], w["outputs"], "{attr}");
        assert_eq!(got["system"], "x86_64-linux");
    }
    assert_eq!(
        r.jobs["nested.c"]["attrPath"],
        serde_json::json!(["nested", "c"])
    );
    let err = r.jobs["broken"]["error"].as_str().unwrap();
    assert!(err.contains("this job is broken"), "{err}");
}

#[test]
fn jobs_have_cppnix_drv_paths_and_a_failing_job_is_a_line() {
    let r = eval_jobs("plain", &["jobs.nix", "--meta"]);
    check_jobs(&r);
    assert_eq!(
        r.jobs["withmeta"]["meta"]["license"]["spdxId"], "MIT",
        "{:?}",
        r.jobs["withmeta"]
    );
}

#[test]
fn two_workers_find_the_same_jobs() {
    check_jobs(&eval_jobs("two", &["jobs.nix", "--workers", "2"]));
}

#[test]
fn a_worker_past_its_memory_limit_is_replaced_after_each_job() {
    // 1 MiB: every worker passes it on its first job; the walk asks 12
    // paths (the top, its 8 attributes, `nested`'s 3), each of a new worker.
    let r = eval_jobs(
        "limit",
        &["jobs.nix", "--workers", "2", "--max-memory-size", "1"],
    );
    check_jobs(&r);
    assert!(
        r.stderr
            .contains("workers replaced past --max-memory-size: 12;"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_worker_killed_mid_job_costs_that_job_only() {
    let r = eval_jobs(
        "budget",
        &["big.nix", "--workers", "2", "--max-total-memory", "300"],
    );
    assert_eq!(r.code, Some(0));
    let err = r.jobs["huge"]["error"].as_str().unwrap();
    assert!(err.contains("--max-total-memory"), "{err}");
    assert!(r.jobs["small"]["drvPath"].is_string());
    assert!(r.jobs["after"]["drvPath"].is_string());
}

/// Two workers instantiating the same derivations into one store neither
/// wait for each other for ever nor lose a job.
#[test]
fn workers_share_one_store() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(eval_jobs("shared", &["shared.nix", "--workers", "2"]));
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("eval-jobs did not finish");
    assert_eq!(r.code, Some(0));
    assert_eq!(r.jobs.len(), 24);
    for (attr, j) in &r.jobs {
        assert!(j["drvPath"].is_string(), "{attr}: {j}");
    }
}

/// `--check-cache-status`: a job whose outputs were built is `local`; the
/// others are `notBuilt`, with what would be built, dependencies first and
/// the job's own derivation last.
#[test]
fn cache_status_says_what_would_be_built() {
    let dir = scratch("cache");
    let b = run_in(
        &dir,
        "build",
        &["shared.nix", "-A", "job0", "--no-sandbox", "--no-out-link"],
    );
    assert_eq!(b.code, Some(0), "{}", b.stderr);
    let r = run_in(
        &dir,
        "eval-jobs",
        &["shared.nix", "--check-cache-status", "--show-input-drvs"],
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let built = &r.jobs["job0"];
    assert_eq!(built["cacheStatus"], "local", "{built}");
    assert_eq!(built["isCached"], true);
    assert_eq!(built["neededBuilds"], serde_json::json!([]));
    // job5 needs side1 (not built) and itself; base and mid are built.
    let other = &r.jobs["job5"];
    assert_eq!(other["cacheStatus"], "notBuilt", "{other}");
    assert_eq!(other["isCached"], false);
    let needed: Vec<&str> = other["neededBuilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(needed.len(), 2, "{needed:?}");
    assert!(needed[0].ends_with("-side1.drv"), "{needed:?}");
    assert_eq!(needed[1], other["drvPath"].as_str().unwrap());
    assert_eq!(other["neededSubstitutes"], serde_json::json!([]));
    // `--show-input-drvs`: job5's inputs are mid and side1, each for `out`.
    let inputs = other["inputDrvs"].as_object().unwrap();
    assert_eq!(inputs.len(), 2, "{inputs:?}");
    assert_eq!(inputs[needed[0]], serde_json::json!(["out"]));
    assert!(inputs.keys().any(|k| k.ends_with("-mid.drv")), "{inputs:?}");
}
