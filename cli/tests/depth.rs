//! No depth of input crashes anything: every construct nested 100,000 deep
//! is run through the lexer, parser, compiler, evaluator and every printer
//! (`--parse`, `--eval`, `--strict`, `--json`, `--xml`, `nixvm eval`), and
//! each run must end with status 0 or 1 (never a signal, never a panic).
//! Where CppNix 2.34.8 gives a value the expected `--eval --strict` output is
//! its answer, recorded; where CppNix overflows its stack, we may give the
//! value or a clean error.

mod common;

const N: usize = 100_000;

/// A deep value built at run time rather than written out.
fn built(wrap: &str) -> String {
    format!("builtins.foldl' (acc: x: {wrap}) [] (builtins.genList (x: x) {N})")
}

/// (name, source, what `--eval --strict` prints: `Some(stdout)` to match
/// CppNix, `None` where CppNix fails and either outcome is fine).
fn cases() -> Vec<(&'static str, String, Option<&'static str>)> {
    let r = |s: &str, k: usize| s.repeat(k);
    vec![
        ("list", r("[", N) + &r("]", N), None),
        ("attrs", r("{a=", N) + "1" + &r(";}", N), None),
        ("rec-attrs", r("rec {a=", N) + "1" + &r(";}", N), None),
        (
            "let-binding",
            r("let a = ", N) + "1" + &r(" ; in a", N),
            None,
        ),
        ("let-body", r("let a = 1; in ", N) + "a", None),
        ("parens", r("(", N) + "1" + &r(")", N), Some("1\n")),
        (
            "lambda",
            "(".to_string() + &r("x: ", N) + "1)",
            Some("<LAMBDA>\n"),
        ),
        (
            "application",
            "let f = x: x; in ".to_string() + &r("f (", N) + "1" + &r(")", N),
            None,
        ),
        (
            "call-chain",
            "let f = x: f; in f".to_string() + &r(" 1", N),
            Some("<LAMBDA>\n"),
        ),
        (
            "if",
            r("if true then ", N) + "1" + &r(" else 2", N),
            Some("1\n"),
        ),
        ("assert", r("assert true; ", N) + "1", Some("1\n")),
        ("with", r("with {}; ", N) + "1", Some("1\n")),
        ("interpolation", r("\"${", N) + "\"x\"" + &r("}\"", N), None),
        (
            "indented-string",
            r("''${", N) + "\"x\"" + &r("}''", N),
            Some("\"x\"\n"),
        ),
        ("negation", r("- ", N) + "1", None),
        ("not", r("!", N) + "true", Some("true\n")),
        ("plus", "1".to_string() + &r(" + 1", N), None),
        (
            "concat",
            "[]".to_string() + &r(" ++ []", N) + " ++ [1]",
            Some("[ 1 ]\n"),
        ),
        ("update", "{}".to_string() + &r(" // {}", N), Some("{ }\n")),
        (
            "implication",
            "true".to_string() + &r(" -> true", N),
            Some("true\n"),
        ),
        (
            "and",
            "true".to_string() + &r(" && true", N),
            Some("true\n"),
        ),
        (
            "has-attr",
            "{}".to_string() + &r(" ? a", N),
            Some("false\n"),
        ),
        (
            "attr-path",
            "{".to_string() + &r("a.", N) + "a = 1; }",
            None,
        ),
        ("formals", r("({ a ? ", N) + "1" + &r("}: a) {}", N), None),
        ("deep-list-value", built("[acc]"), None),
        ("deep-set-value", built("{a = acc;}"), None),
        (
            "deep-value-dropped",
            format!("builtins.length ({})", built("[acc]")),
            Some("1\n"),
        ),
        (
            "toJSON",
            format!("builtins.toJSON ({})", built("[acc]")),
            None,
        ),
        (
            "toXML",
            format!("builtins.toXML ({})", built("[acc]")),
            None,
        ),
        (
            "toString",
            format!("builtins.toString ({})", built("[acc]")),
            None,
        ),
        (
            "equality",
            format!("({}) == ({})", built("[acc]"), built("[acc]")),
            None,
        ),
        (
            "less-than",
            format!("let d = {}; in d < d", built("[acc]")),
            Some("false\n"),
        ),
        (
            "deepSeq",
            format!("builtins.deepSeq ({}) 1", built("[acc]")),
            None,
        ),
        (
            "fromJSON-list",
            format!(
                "builtins.length (builtins.fromJSON \"{}{}\")",
                r("[", N),
                r("]", N)
            ),
            Some("1\n"),
        ),
        (
            "fromJSON-object",
            format!(
                "builtins.attrNames (builtins.fromJSON \"{}1{}\")",
                r("{\\\"a\\\":", N),
                r("}", N)
            ),
            Some("[ \"a\" ]\n"),
        ),
        (
            "fromTOML",
            format!("builtins.fromTOML \"a = {}{}\"", r("[", N), r("]", N)),
            None,
        ),
        (
            "fromTOML-inline",
            format!("builtins.fromTOML \"a = {}1{}\"", r("{a=", N), r("}", N)),
            None,
        ),
        (
            "recursion",
            format!("let f = n: if n == 0 then 0 else 1 + f (n - 1); in f {N}"),
            None,
        ),
    ]
}

fn check(name: &str, mode: &str, out: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0 | 1)),
        "{name} [{mode}]: status {:?}\n{}",
        out.status,
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("overflowed its stack"),
        "{name} [{mode}]: {}",
        &stderr[..stderr.len().min(2000)]
    );
    if code == Some(1) {
        assert!(
            stderr.contains("error:"),
            "{name} [{mode}]: no error message"
        );
    }
}

#[test]
fn every_construct_100000_deep_exits_0_or_1() {
    let env = common::Env::new("depth");
    for (name, src, expected) in cases() {
        let file = env.write(&format!("{name}.nix"), &src);
        let file = file.to_str().unwrap();
        for mode in [
            &["--parse"][..],
            &["--eval"],
            &["--eval", "--strict"],
            &["--eval", "--strict", "--json"],
            &["--eval", "--strict", "--xml"],
        ] {
            let mut args = mode.to_vec();
            args.push(file);
            let out = env.cmd("nix-instantiate", &args).output().unwrap();
            check(name, &mode.join(" "), &out);
            if mode == ["--eval", "--strict"] {
                if let Some(want) = expected {
                    let got = String::from_utf8_lossy(&out.stdout);
                    assert_eq!(
                        got,
                        want,
                        "{name}: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
        }
        // `nixvm eval` renders errors with codespan: the excerpt of a deep
        // line must not be a problem either.
        let out = common::nixvm_cmd()
            .args(["eval", "-f", file])
            .env("NIXVM_STORE", env.dir.join("store"))
            .output()
            .unwrap();
        check(name, "nixvm eval", &out);
    }
}
