//! Snapshots of the `nix-instantiate --parse` printer over a representative
//! set of expressions. Every line of the snapshots was checked against
//! CppNix 2.34 (`nix-instantiate --parse -E 'with {}; EXPR'`, the `with`
//! stripped again, cwd `/base`), so a changed snapshot is a behaviour change
//! to justify, not noise to accept.
//!
//! Free variables are fine here: this is the parser alone (the CLI also
//! resolves names, as CppNix does).

use nixvm_compiler::{parse, printer, ParseOptions};

fn show(src: &str, opts: ParseOptions) -> String {
    match parse(src, "«string»", "/base", opts) {
        Ok((e, _)) => printer::show(&e),
        Err(e) => format!("error: {}", e.msg),
    }
}

/// One `source` / `=> printed` pair per case, so the snapshot reads as a table.
fn table(cases: &[&str], opts: impl Fn() -> ParseOptions) -> String {
    let mut out = String::new();
    for src in cases {
        out.push_str(src);
        out.push_str("\n  => ");
        out.push_str(&show(src, opts()));
        out.push('\n');
    }
    out
}

#[test]
fn operators_and_precedence() {
    let printed = table(
        &[
            "1 + 2 * 3 - 4 / 5",
            "a - b - c",
            "-a - -b",
            "- 1",
            "a < b",
            "a <= b",
            "a > b",
            "a >= b",
            "!a || b && c -> d",
            "a -> b -> c",
            "a == b && c != d",
            "a ++ b ++ c",
            "a // b // c",
            "a ++ b // c",
            "a + b ++ c",
            "!a.b ? c",
            "a ? b.c && d",
            "f x y ++ g z",
            "f (g x) -x",
            "(f a) b",
            "(a - b) c",
            "(-a) b",
            "(a / b) c d",
            "(a > b) c",
            "(a <= b) c",
            "(<n>) x",
            "(a + b) c",
            "a.b.c or d e",
            "a.${b}.\"c d\" or (x: x)",
            "{ or = 1; }.or",
            "1.5 + .25 + 2.",
            "__curPos",
        ],
        ParseOptions::default,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn bindings_and_functions() {
    let printed = table(
        &[
            "{ b = 1; a = 2; }",
            "rec { a.b = 1; a.c = 2; \"d\" = 3; ${e} = 4; }",
            "{ a = { b = 1; }; a.c = 2; }",
            "{ \"a b\" = 1; \"if\" = 2; x-y' = 3; }",
            "let a = 1; inherit b; inherit (c) d e; in a",
            "{ inherit (a) b; inherit c; d = 1; }",
            "let { body = 1; x = 2; }",
            "x: y: x + y",
            "{ a, b ? 1, ... }@args: a",
            "args@{ a }: a",
            "{ }: 1",
            "{ ... }: 1",
            "with a; b",
            "assert a; b",
            "if a then b else c",
            "[ 1 (f x) a.b \"s\" ./p ]",
        ],
        ParseOptions::default,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn strings_and_paths() {
    let printed = table(
        &[
            r#""a${b}c""#,
            r#""${a}""#,
            r#""x${a}${b}y""#,
            r#""\n\t\\\"\${ $$ $x""#,
            "''\n  a\n    b ${c}\n  ''",
            "''a'''b''$c''\\nd''${x}''",
            "''  \n  x''",
            "\"\"",
            "./a/b",
            "../a",
            "/abs/path",
            "a/b.nix",
            "./a/${b}.nix",
            "/x/${y}",
            "<nixpkgs>",
            "<nixpkgs/lib>",
            "http://example.org/x?y=1",
        ],
        ParseOptions::default,
    );
    insta::assert_snapshot!(printed);
}

#[test]
fn pipe_operators() {
    let pipes = || ParseOptions {
        pipe_operators: true,
        ..Default::default()
    };
    let printed = table(
        &[
            "a |> f |> g",
            "f <| g <| a",
            "a |> f x",
            "a + b |> f",
            "c |> (a < b)",
            "x |> <n>",
        ],
        pipes,
    );
    insta::assert_snapshot!(printed);
    // Without the experimental feature they are a parse error.
    assert!(show("a |> f", ParseOptions::default()).starts_with("error:"));
}
