//! Bytecode listings of small programs (`nixvm eval --dump-bytecode`). They
//! pin the code generator's output: scope resolution (env slots, `with`
//! lookups), where thunks are and are not created, and constant pools. A
//! changed listing is a compiler change to review, e.g. for a lost
//! optimisation.

use nixvm::Evaluator;
use std::path::Path;

/// Programs avoid builtins other than `true`/`false`/`null`: the global slot
/// of any other builtin moves whenever one is added.
fn listing(src: &str) -> String {
    let mut ev = Evaluator::builder().build();
    let code = ev
        .disassemble(src, "«string»", Path::new("/base"))
        .unwrap_or_else(|e| panic!("{src}: {}", e.msg));
    format!("{src}\n---\n{code}")
}

#[test]
fn let_bindings() {
    // `a` is a literal (stored directly), `b` needs a thunk.
    insta::assert_snapshot!(listing("let a = 1; b = a + 2; in b * a"));
}

#[test]
fn rec_set_with_nested_set() {
    insta::assert_snapshot!(listing("rec { a = 1; b = a; c = { d = b; }; }"));
}

#[test]
fn with_scopes() {
    // `y` is only known at run time (`Dyn` over the enclosing `with`s);
    // `x` stays a static slot even inside the `with`.
    insta::assert_snapshot!(listing("x: with x; with { z = 1; }; [ x y z ]"));
}

#[test]
fn lambda_with_formals() {
    insta::assert_snapshot!(listing(
        "{ a, b ? a + 1, ... }@args: if args ? c then a else b"
    ));
}

#[test]
fn string_interpolation() {
    insta::assert_snapshot!(listing(
        r#"let name = "x"; f = n: n; in "${name}-1" + ''${f 2}'' "#
    ));
}

#[test]
fn inherit_select_and_assert() {
    insta::assert_snapshot!(listing(
        "s: let inherit (s) a; inherit s; in assert a.b or true; s.c.d or a"
    ));
}

#[test]
fn source_lines_and_nested_chunk_numbers() {
    // Each op's line (`|` while it stays the same); `#1.0` is the chunk
    // that `Thunk(0)` in chunk `#1` (the file's `Thunk(1)`) makes.
    insta::assert_snapshot!(listing(
        "let\n  f = x:\n    x.y;\n  g = f { y = 1; };\nin\n  g"
    ));
}
