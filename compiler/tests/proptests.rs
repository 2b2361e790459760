//! Property tests of the front end: the lexer and the parser never panic
//! (nor loop) on any input, and the `--parse` printer's output parses back
//! to the same printed tree.

use nixvm_compiler::lexer::Lexer;
use nixvm_compiler::{parse, printer, ParseOptions};
use proptest::prelude::*;
use proptest::sample::select;

/// Text made of Nix's own punctuation, keywords and literal fragments, so
/// random inputs reach the lexer modes (strings, ind-strings, paths, `${`)
/// far more often than arbitrary Unicode does.
fn nixish() -> impl Strategy<Value = String> {
    let pieces = select(vec![
        "\"",
        "''",
        "'''",
        "''$",
        "''\\",
        "${",
        "}",
        "{",
        "$",
        "\\",
        "\n",
        " ",
        "\t",
        "\r",
        "#",
        "/*",
        "*/",
        "./",
        "/",
        "~/",
        "<",
        ">",
        "a",
        "x.y",
        "1",
        "0.5",
        "1e3",
        "(",
        ")",
        "[",
        "]",
        ";",
        ":",
        "=",
        "?",
        "@",
        "...",
        ",",
        ".",
        "|>",
        "<|",
        "+",
        "-",
        "*",
        "//",
        "++",
        "==",
        "!=",
        "->",
        "&&",
        "||",
        "!",
        "let",
        "in",
        "rec",
        "inherit",
        "with",
        "if",
        "then",
        "else",
        "assert",
        "or",
        "http://a.b/c",
        "é",
        "€",
        "😀",
        "\u{0}",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        nixish(),
    ]
}

fn lex_all(src: &str, pipes: bool) -> Result<(), TestCaseError> {
    let mut lx = Lexer::new(src);
    lx.pipe_operators = pipes;
    // Zero-width tokens exist (end of path), but not unboundedly many.
    let limit = 4 * src.len() + 16;
    let mut n = 0;
    for t in lx {
        n += 1;
        prop_assert!(n <= limit, "lexer produced more than {limit} tokens");
        match t {
            Ok((start, _, end)) => {
                prop_assert!(start <= end && end <= src.len(), "span {start}..{end}");
                prop_assert!(src.is_char_boundary(start) && src.is_char_boundary(end));
            }
            Err(e) => {
                prop_assert!(e.start <= e.end && e.end <= src.len());
                prop_assert!(!e.msg.is_empty());
            }
        }
    }
    Ok(())
}

fn printed(src: &str) -> Result<String, String> {
    let opts = ParseOptions {
        pipe_operators: true,
        ..Default::default()
    };
    parse(src, "«string»", "/base", opts)
        .map(|(e, _)| printer::show(&e))
        .map_err(|e| e.msg)
}

// ---- a generator of Nix expressions whose `--parse` form round-trips ------
//
// CppNix's `--parse` format is not re-parseable for a few shapes, and the
// generator avoids exactly those: `assert` printed bare inside an operand,
// string interpolations of other than two parts (`"${a}"` prints `(a)`,
// `"a${b}c"` a three-operand `+`), dynamic attribute names written `${e}`
// (printed `"${e}"`, which reads back as `"${(e)}"`), path interpolation (`./a/${b}` prints the
// path `/base/a/` with a trailing slash), indented strings with escapes (each
// `''$` is a part of its own) and floats printed in exponent form.

fn ident() -> impl Strategy<Value = String> {
    select(vec!["a", "b", "c", "f", "x", "y", "null", "true"]).prop_map(String::from)
}

/// A `"..."` literal of text with escapes and non-ASCII characters.
fn str_lit() -> impl Strategy<Value = String> {
    "[a-zé€😀 \n\t\"\\\\${}]{0,8}".prop_map(|s| {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '$' => out.push_str("\\$"),
                c => out.push(c),
            }
        }
        out.push('"');
        out
    })
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => ident(),
        2 => (0u64..10_000).prop_map(|n| n.to_string()),
        1 => Just("9223372036854775807".to_string()),
        1 => select(vec!["1.5", "0.25", ".5", "2.", "3.125", "100.0"]).prop_map(String::from),
        2 => str_lit(),
        1 => "[a-z \n]{0,10}".prop_map(|s| format!("''\n  {s}''")),
        1 => select(vec!["./p", "/abs/q", "<nixpkgs>", "<n/lib>", "a/b.nix", "http://e.org/u"])
            .prop_map(String::from),
        1 => Just("__curPos".to_string()),
    ]
}

fn attr_path() -> impl Strategy<Value = String> {
    let comp = prop_oneof![
        4 => select(vec!["a", "b", "or", "x-y", "\"c d\"", "\"if\""]).prop_map(String::from),
        1 => str_lit().prop_map(|s| format!("${{{s}}}")),
    ];
    prop::collection::vec(comp, 1..3).prop_map(|v| v.join("."))
}

fn bindings(inner: BoxedStrategy<String>, dynamic: bool) -> impl Strategy<Value = String> {
    let entry = (0u8..4, inner.clone());
    let names = select(vec!["a", "b", "c", "d", "e", "g"]);
    let dynamic_entry = if dynamic {
        proptest::option::of((inner.clone(), inner)).boxed()
    } else {
        Just(None).boxed()
    };
    (
        prop::collection::btree_map(names, entry, 0..4),
        dynamic_entry,
    )
        .prop_map(|(m, dynamic)| {
            let mut out = String::new();
            for (k, (kind, v)) in m {
                out.push_str(&match kind {
                    0 => format!("inherit {k}; "),
                    1 => format!("inherit ({v}) {k}; "),
                    2 => format!("{k}.z = {v}; "),
                    _ => format!("{k} = {v}; "),
                });
            }
            if let Some((n, v)) = dynamic {
                // `${n}` would print as `"${n}"`, which reads back as a
                // one-part interpolation and prints `"${(n)}"`; write that form.
                out.push_str(&format!("\"${{({n})}}\" = {v}; "));
            }
            out
        })
}

fn expr() -> impl Strategy<Value = String> {
    leaf().prop_recursive(5, 64, 4, |inner| {
        let inner = inner.boxed();
        let p = inner.clone().prop_map(|e| format!("({e})")).boxed();
        let body = prop_oneof![
            3 => inner.clone(),
            1 => (p.clone(), inner.clone()).prop_map(|(c, b)| format!("assert {c}; {b}")),
        ]
        .boxed();
        let binop = select(vec![
            "+", "-", "*", "/", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "->", "//", "++",
            "|>", "<|",
        ]);
        prop::strategy::Union::new_weighted(vec![
            (
                4,
                (p.clone(), binop, p.clone())
                    .prop_map(|(l, o, r)| format!("{l} {o} {r}"))
                    .boxed(),
            ),
            (
                2,
                (p.clone(), prop::collection::vec(p.clone(), 1..3))
                    .prop_map(|(f, args)| format!("{f} {}", args.join(" ")))
                    .boxed(),
            ),
            (
                1,
                (p.clone(), attr_path())
                    .prop_map(|(e, a)| format!("{e}.{a}"))
                    .boxed(),
            ),
            (
                1,
                (p.clone(), attr_path(), p.clone())
                    .prop_map(|(e, a, d)| format!("{e}.{a} or {d}"))
                    .boxed(),
            ),
            (
                1,
                (p.clone(), attr_path())
                    .prop_map(|(e, a)| format!("{e} ? {a}"))
                    .boxed(),
            ),
            (1, p.clone().prop_map(|e| format!("!{e}")).boxed()),
            (1, p.clone().prop_map(|e| format!("-{e}")).boxed()),
            (
                1,
                (inner.clone(), inner.clone(), inner.clone())
                    .prop_map(|(c, t, e)| format!("if {c} then {t} else {e}"))
                    .boxed(),
            ),
            (
                1,
                (select(vec!["x", "a"]), body.clone())
                    .prop_map(|(x, b)| format!("{x}: {b}"))
                    .boxed(),
            ),
            (
                1,
                (
                    select(vec!["{ a, b ? ", "{ c ? ", "args@{ a, c ? ", "{ b ? "]),
                    p.clone(),
                    select(vec![" }", ", ... }", " } @ x"]),
                    body.clone(),
                )
                    .prop_map(|(open, d, close, b)| {
                        // One `@` pattern at most.
                        let close = if open.contains('@') { " }" } else { close };
                        format!("{open}{d}{close}: {b}")
                    })
                    .boxed(),
            ),
            (
                1,
                (bindings(inner.clone(), false), body.clone())
                    .prop_map(|(bs, b)| format!("let {bs}in {b}"))
                    .boxed(),
            ),
            (
                1,
                (p.clone(), body)
                    .prop_map(|(e, b)| format!("with {e}; {b}"))
                    .boxed(),
            ),
            (
                1,
                prop::collection::vec(p.clone(), 0..4)
                    .prop_map(|v| format!("[ {} ]", v.join(" ")))
                    .boxed(),
            ),
            (
                1,
                (any::<bool>(), bindings(inner.clone(), true))
                    .prop_map(|(rec, bs)| format!("{}{{ {bs}}}", if rec { "rec " } else { "" }))
                    .boxed(),
            ),
            (
                1,
                ("[a-z]{1,3}", inner.clone(), any::<bool>())
                    .prop_map(|(s, e, before)| {
                        if before {
                            format!("\"{s}${{{e}}}\"")
                        } else {
                            format!("\"${{{e}}}{s}\"")
                        }
                    })
                    .boxed(),
            ),
        ])
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn lexer_never_panics(src in any_text(), pipes in any::<bool>()) {
        lex_all(&src, pipes)?;
    }

    #[test]
    fn parser_never_panics(src in any_text(), pipes in any::<bool>()) {
        let opts = ParseOptions { pipe_operators: pipes, ..Default::default() };
        if let Err(e) = parse(&src, "«string»", "/base", opts) {
            prop_assert!(!e.msg.is_empty());
            prop_assert!(e.span.start <= e.span.end && e.span.end as usize <= src.len());
        }
    }

    #[test]
    fn generated_expressions_parse(src in expr()) {
        // The generator makes valid Nix apart from rare duplicate attributes
        // (a dynamic name that is a constant string); anything else is a bug
        // in the parser or the generator.
        if let Err(e) = printed(&src) {
            prop_assume!(!e.contains("already defined"));
            prop_assert!(false, "{src}\n  fails: {e}");
        }
    }

    #[test]
    fn printed_ast_parses_back_to_itself(src in expr()) {
        let Ok(first) = printed(&src) else { return Ok(()) };
        let second = printed(&first).map_err(|e| {
            TestCaseError::fail(format!("printed form does not parse: {e}\n  source:  {src}\n  printed: {first}"))
        })?;
        prop_assert_eq!(&first, &second, "source: {}", src);
    }
}
