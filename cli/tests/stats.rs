//! `--stats`: the collector's settings reach it from `--option` as from the
//! environment, and the report names what is live per kind.

mod common;

/// `nixvm instantiate --eval ARGS -E EXPR`, which must succeed.
fn eval(args: &[&str], expr: &str) -> std::process::Output {
    let out = common::nixvm_cmd()
        .args(["instantiate", "--eval"])
        .args(args)
        .args(["-E", expr])
        .current_dir(std::env::temp_dir())
        .env_remove("NIXVM_GC_STRESS")
        .env_remove("NIXVM_GC_INITIAL_HEAP")
        .output()
        .expect("running nixvm");
    assert!(out.status.success(), "{out:?}");
    out
}

/// The `--stats` line of evaluating `expr` with `args`, and its answer.
fn stats(args: &[&str], expr: &str) -> (String, String) {
    let out = eval(&[&["--stats"], args].concat(), expr);
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with("{\"cpuTime\""))
        .expect("a stats line")
        .to_owned();
    (String::from_utf8_lossy(&out.stdout).trim().to_owned(), line)
}

/// The number after `"key":` in a stats line.
fn number(line: &str, key: &str) -> u64 {
    let at = line.find(&format!("\"{key}\":")).expect(key) + key.len() + 3;
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a number")
}

const CHAIN: &str =
    "let f = n: if n == 0 then [] else [n] ++ f (n - 1); in builtins.length (f 100)";

#[test]
fn gc_settings_come_from_option() {
    let (v, off) = stats(&[], CHAIN);
    assert_eq!(v, "100");
    assert_eq!(number(&off, "collections"), 0);
    let (v, on) = stats(&["--option", "gc-stress", "true"], CHAIN);
    assert_eq!(v, "100");
    assert!(number(&on, "collections") > 100, "{on}");
    // A small initial heap makes the collector run as the heap grows.
    let big = "builtins.foldl' (a: i: a + (let s = { x = s; n = i; }; in s.n)) 0 (builtins.genList (i: 1) 20000)";
    let (v, grown) = stats(&["--option", "gc-initial-heap", "64K"], big);
    assert_eq!(v, "20000");
    assert!(number(&grown, "collections") > 0, "{grown}");
    assert_eq!(number(&stats(&[], big).1, "collections"), 0);
}

#[test]
fn stats_report_live_bytes_per_kind() {
    let (_, line) = stats(&[], "{ a = [ 1 ]; }");
    assert!(line.contains("\"liveByKind\":{"), "{line}");
    let at = line.find("\"liveByKind\"").expect("live by kind");
    assert!(number(&line[at..], "objects") > 0, "{line}");
    let (_, peak) = stats(&["--heap-census=1"], "{ a = [ 1 ]; }");
    assert!(peak.contains("\"liveByKindAtPeak\":{"), "{peak}");
}

#[test]
fn stats_count_ops_op_pairs_and_builtin_calls() {
    // `f` runs its body (Local Const Add Return) 10 times, from foldl'.
    let (v, line) = stats(
        &[],
        "let f = a: x: a + 1; in builtins.foldl' f 0 (builtins.genList (x: x) 10)",
    );
    assert_eq!(v, "10");
    let observed = &line[line.find("\"observed\":").expect("observed")..];
    assert_eq!(number(observed, "Add"), 10, "{observed}");
    assert!(observed.contains("[\"Const\",\"Add\",10]"), "{observed}");
    assert!(observed.contains("[\"Add\",\"Return\",10]"), "{observed}");
    assert_eq!(number(observed, "foldl'"), 1, "{observed}");
    assert_eq!(number(observed, "genList"), 1, "{observed}");
}

#[test]
fn trace_ops_shows_each_op_with_its_line_and_depth() {
    let out = eval(&["--trace-ops"], "let f = x:\n  x + 1;\nin f 2");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
    let err = String::from_utf8_lossy(&out.stderr);
    // The call's body runs one frame deeper, on line 2.
    assert!(
        err.contains("\n  «string»:2 0002 Add  [stack 2]\n"),
        "{err}"
    );
    assert!(
        err.contains("\n «string»:3 0005 Call  [stack 2]\n"),
        "{err}"
    );
}
