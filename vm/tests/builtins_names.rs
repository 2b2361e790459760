//! The names of `builtins` and the names in scope without `builtins.` must be
//! CppNix 2.34's. Its answers are recorded in `fixtures/` by
//! `fixtures/record-builtins.sh` (the reference with its default settings,
//! which enable the `flakes` experimental feature and so `fetchTree`).
//!
//! Names nixvm does not have yet are listed in `KNOWN_MISSING_*` below: the
//! test fails when a name is missing that is not listed, when nixvm has a
//! name CppNix does not, and when a listed name gets implemented (so the
//! lists only ever shrink).

use nixvm::{Evaluator, Value, View};
use std::collections::BTreeSet;
use std::path::Path;

/// `builtins.X` that nixvm lacks so far (none: the list matches CppNix 2.34).
const KNOWN_MISSING_BUILTINS: &[&str] = &[];

/// Global names (no `builtins.` needed) that nixvm lacks so far.
const KNOWN_MISSING_GLOBALS: &[&str] = &[];

fn fixture(name: &str) -> BTreeSet<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Compares and returns a description of every problem.
fn compare(
    what: &str,
    ours: &BTreeSet<String>,
    cppnix: &BTreeSet<String>,
    known: &[&str],
) -> Vec<String> {
    let known: BTreeSet<String> = known.iter().map(|s| s.to_string()).collect();
    let missing: BTreeSet<&String> = cppnix.difference(ours).collect();
    let extra: Vec<&String> = ours.difference(cppnix).collect();
    let unexpected: Vec<&&String> = missing.iter().filter(|n| !known.contains(**n)).collect();
    let implemented: Vec<&String> = known.iter().filter(|n| !missing.contains(n)).collect();
    eprintln!(
        "{what}: CppNix has {}, nixvm {}; missing {:?}; extra {:?}",
        cppnix.len(),
        ours.len(),
        missing,
        extra
    );
    let mut problems = Vec::new();
    if !unexpected.is_empty() {
        problems.push(format!("{what}: missing in nixvm: {unexpected:?}"));
    }
    if !extra.is_empty() {
        problems.push(format!(
            "{what}: nixvm has names CppNix does not: {extra:?}"
        ));
    }
    if !implemented.is_empty() {
        problems.push(format!(
            "{what}: now implemented, remove from the known-missing list: {implemented:?}"
        ));
    }
    problems
}

#[test]
fn builtins_and_global_names_match_cppnix() {
    let mut ev = Evaluator::builder().build();
    let v = ev
        .eval_str("builtins", Path::new("/"))
        .expect("builtins evaluates");
    let View::Attrs(attrs) = v.view() else {
        panic!("builtins is not a set")
    };
    let builtins: BTreeSet<String> = attrs.iter().map(|(k, _)| k.to_string()).collect();
    let globals: BTreeSet<String> = ev.vm.global_names.keys().map(|k| k.to_string()).collect();

    let mut problems = compare(
        "builtins",
        &builtins,
        &fixture("cppnix-builtins.txt"),
        KNOWN_MISSING_BUILTINS,
    );
    problems.extend(compare(
        "globals",
        &globals,
        &fixture("cppnix-globals.txt"),
        KNOWN_MISSING_GLOBALS,
    ));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn embedder_builtins_are_added_under_builtins() {
    // An extra builtin must not disturb the comparison above: it lives in
    // `builtins` (and as `__name`), like CppNix's plugin primops.
    let mut ev = Evaluator::builder()
        .constant("answer", Value::Int(42))
        .build();
    let v = ev
        .eval_str("builtins.answer + __answer", Path::new("/"))
        .expect("extra constant is visible");
    assert!(matches!(v.view(), View::Int(84)), "{v:?}");
}
