//! Snapshots of the value printers as the CLI uses them: `--eval` (lazy),
//! `--eval --strict`, `--json --strict` and `--xml`. Every output below was
//! compared with CppNix 2.34 (`nix-instantiate --eval [--strict|--json|--xml]
//! -E EXPR` in `/base`); cases where nixvm still differs are kept out of the
//! snapshots and listed in `known_lazy_printing_differences` instead.

use nixvm::{Evaluator, Value};
use std::path::Path;

fn eval(src: &str) -> (Evaluator, Value) {
    let mut ev = Evaluator::builder().build();
    let v = ev
        .eval_str(src, Path::new("/base"))
        .unwrap_or_else(|e| panic!("{src}: {}", e.msg));
    (ev, v)
}

fn lazy(src: &str) -> String {
    let (ev, v) = eval(src);
    ev.print(&v)
}

fn strict(src: &str) -> String {
    let (mut ev, v) = eval(src);
    let v = ev
        .force_deep(v)
        .unwrap_or_else(|e| panic!("{src}: {}", e.msg));
    ev.print(&v)
}

fn json(src: &str) -> String {
    let (mut ev, v) = eval(src);
    ev.to_json(v, true)
        .unwrap_or_else(|e| panic!("{src}: {}", e.msg))
}

fn xml(src: &str, strict: bool) -> String {
    let (mut ev, v) = eval(src);
    ev.to_xml(v, strict, true)
        .unwrap_or_else(|e| panic!("{src}: {}", e.msg))
}

fn table(cases: &[&str], f: impl Fn(&str) -> String) -> String {
    cases
        .iter()
        .map(|src| format!("{src}\n  => {}\n", f(src)))
        .collect()
}

#[test]
fn eval_lazy() {
    // Unevaluated thunks print as <CODE>; literals are not thunks.
    let printed = table(
        &[
            "{ a = 1; b = 1 + 1; c = [ 1 (2 + 3) ]; e = builtins.map; g = \"s\"; i = ./p; j = { k = 1; }; }",
            "[ 1 (1 + 1) \"a\" [ ] ]",
            "let x = { a = 1; }; in [ x x ]",
            "let y = 1 + 1; in { a = y; }",
            "with { z = 1; }; { a = z; }",
            "x: x",
            "builtins.map",
            "builtins.map (x: x)",
            // What forcing reached prints as a value.
            "let x = { a = 1 + 1; b = x.a; }; in builtins.seq x.b x",
            "let l = [ (1 + 1) 3 ]; in builtins.seq (builtins.elemAt l 0) l",
            "let x = { a = 1; }; in builtins.seq x.a [ x x ]",
        ],
        lazy,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn eval_strict_scalars() {
    let printed = table(
        &[
            r#""a\"b\\c\n${"$"}{x} é 😀\t\r""#,
            "[ 1.0 0.1 1.0e20 123456789.0 (1.0 / 3) (-0.0) 1.0e-5 100.0 1.5e300 1.0e-7 ]",
            "[ (-9223372036854775807 - 1) 9223372036854775807 ]",
            "[ true false null /a/b/.. ./x ]",
            "{ \"a b\" = 1; \"if\" = 2; \"\" = 3; \"é\" = 4; a-b = 5; }",
        ],
        strict,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn eval_strict_sets_functions_and_repeats() {
    // A set or list met a second time prints «repeated» (CppNix tracks what
    // it has printed, so cycles terminate too). Empty ones never repeat.
    let printed = table(
        &[
            "{ a = 1; b = 1 + 1; c = [ 1 (2 + 3) ]; d = x: x; e = builtins.map; f = builtins.map (x: x); g = \"s\"; h = null; i = ./p; j = { k = 1; }; }",
            "let x = { a = 1; }; in [ x x ]",
            "let x = { a = 1; }; in { y = x; z = x; }",
            "let l = [ 1 ]; in [ l l ]",
            "let l = [ 1 ]; in { a = l; b = l; }",
            "let e = { }; in [ e e ]",
            "let e = [ ]; in [ e e ]",
            "let x = { inherit x; }; in x",
            "rec { a = { inherit b; }; b = a; }",
            "let x = [ x ]; in x",
            "let f = { a, b ? 2 }: a; in [ f builtins.add (builtins.add 1) ]",
        ],
        strict,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn json_strict() {
    let printed = table(
        &[
            r#"{ a = [ 1 2.5 "s" null true false ]; b = "é\n\t\"\\/ 😀 ${builtins.fromJSON "\"\\u0001\\u001f\""}"; "a b" = { "é" = 1; }; }"#,
            "[ 1.0e20 0.1 (1.0 / 3) (-0.0) 100.0 1.0e-7 123456789012.0 1.0e16 12345678901234567.0 ]",
            "[ { } [ ] (-9223372036854775807 - 1) ]",
            "let x = { a = 1; }; in [ x x ]",
            "{ __toString = self: \"x\"; }",
            "{ outPath = \"/nix/store/x\"; a = 1; }",
        ],
        json,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn xml_strict() {
    insta::assert_snapshot!(xml(
        r#"{ a = [ 1 2.5 "s<&>\"" null true ]; b = ./p; c = { }; d = { x ? 1, y }: x; e = z: z; f = builtins.map; }"#,
        true
    ));
}

#[test]
fn xml_lazy() {
    insta::assert_snapshot!(xml("{ a = 1 + 1; b = [ (2 + 2) ]; }", false));
}

/// Lazy (`--eval` without `--strict`) printing where nixvm differs from
/// CppNix 2.34, with CppNix's output. CppNix hands a variable's or a
/// constant's `Value` on without a thunk (so `{ a = y; }` prints `y`'s value
/// once it is known, and `h = null` prints `null`) but wraps every lambda and
/// set literal in a thunk; nixvm does the opposite in these places. nixvm
/// also computes small thunks at once when their operands are already
/// values (`speculate.rs`), so they print as values, not `<CODE>`. Strict
/// output is the same. Run with `--ignored` to see which still differ.
#[test]
#[ignore = "differs from CppNix: which values are still thunks in lazy --eval output"]
fn known_lazy_printing_differences() {
    let cases = [
        ("{ d = x: x; }", "{ d = <CODE>; }"),
        ("{ h = null; }", "{ h = null; }"),
        ("[ { } ]", "[ <CODE> ]"),
        ("rec { a = 1; b = a; }", "{ a = 1; b = 1; }"),
        ("let y = 1; in { a = y; }", "{ a = 1; }"),
        ("let f = x: x; in [ f ]", "[ <CODE> ]"),
        ("[ 1 (1 + 1) ]", "[ 1 <CODE> ]"),
        ("let y = 1 + 1; in { a = y; }", "{ a = <CODE>; }"),
        ("{ e = builtins.map; }", "{ e = <CODE>; }"),
        (
            "let x = { a = 1; }; in builtins.deepSeq x { y = x; z = x; }",
            "{ y = { a = 1; }; z = «repeated»; }",
        ),
    ];
    let mut diffs = Vec::new();
    for (src, cppnix) in cases {
        let ours = lazy(src);
        if ours != cppnix {
            diffs.push(format!("{src}\n  nixvm:  {ours}\n  CppNix: {cppnix}"));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

/// `nix-instantiate --eval --json` without `--strict`: CppNix 2.34 does not
/// force attribute values or list elements and fails on the first thunk.
/// (Which attribute fails first can differ: nixvm computes some cheap
/// thunks when it makes them, `1 + 1` among them, so `f 1` is used here.)
#[test]
fn json_without_strict_fails_on_a_thunk() {
    let (mut ev, v) = eval("let f = x: x; in { a = f 1; }");
    let err = ev.to_json(v, false).expect_err("CppNix fails here");
    assert!(
        err.msg.contains("cannot convert a thunk to JSON"),
        "{}",
        err.msg
    );
}
