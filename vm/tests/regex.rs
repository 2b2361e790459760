//! `builtins.match` and `builtins.split` against CppNix 2.34:
//! - every case of fixtures/regex-cppnix.txt (recorded by
//!   fixtures/record-regex.sh) gives CppNix's answer, through the builtins
//!   as they run (`Auto`) and through the backtracker alone;
//! - the engine never panics or hangs on small random patterns and inputs;
//! - the shortcuts through the `regex` crate (the fast class, and finding
//!   where a match starts) agree with the backtracker alone.

use nixvm::builtins::regex::{set_builtin_engine, Engine, Regex};
use nixvm::Evaluator;
use proptest::prelude::*;
use std::path::Path;

/// `builtins.toJSON (expr)`, or the error line.
fn eval_json(expr: &str, engine: Engine) -> String {
    let mut ev = Evaluator::builder().build();
    set_builtin_engine(&mut ev.vm, engine);
    let src = format!("builtins.toJSON ({})", expr);
    let r = ev
        .eval_str(&src, Path::new("/"))
        .and_then(|v| ev.force_deep(v));
    match r {
        Ok(v) => {
            let p = ev.print(&v);
            // A printed Nix string: strip the quotes and unescape.
            let inner = &p[1..p.len() - 1];
            inner
                .replace("\\\"", "\"")
                .replace("\\$", "$")
                .replace("\\n", "\n")
                .replace("\\\\", "\\")
        }
        Err(e) => {
            let r = ev.render_error(&e);
            r.lines()
                .map(str::trim)
                .rfind(|l| l.starts_with("error:"))
                .unwrap_or("error: ?")
                .to_string()
        }
    }
}

fn fixtures() -> Vec<(String, String)> {
    let text = include_str!("fixtures/regex-cppnix.txt");
    text.lines()
        .map(|l| {
            let (e, a) = l.split_once('\t').expect("EXPR<TAB>ANSWER");
            (e.to_string(), a.to_string())
        })
        .collect()
}

fn check_fixtures(engine: Engine) {
    let mut bad = Vec::new();
    let cases = fixtures();
    assert!(cases.len() >= 150);
    for (expr, want) in &cases {
        let got = eval_json(expr, engine);
        if &got != want {
            bad.push(format!("{expr}\n   CppNix: {want}\n   nixvm:  {got}"));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} differ:\n{}",
        bad.len(),
        cases.len(),
        bad.join("\n")
    );
}

#[test]
fn fixtures_auto() {
    check_fixtures(Engine::Auto);
}

#[test]
fn fixtures_backtrack() {
    check_fixtures(Engine::Backtrack);
}

/// The executor keeps its stack on the heap: a long input through patterns
/// that loop once per byte must not overflow.
#[test]
fn long_inputs() {
    let long = vec![b'a'; 1 << 20];
    for pat in [".*", "(.*)", "(a|b)*", "((a)|x)*"] {
        let re = Regex::new(pat.as_bytes()).unwrap();
        for engine in [Engine::Auto, Engine::Backtrack] {
            let g = re.match_groups(&long, engine).expect(pat);
            assert_eq!(g.len(), re.groups());
        }
    }
    let re = Regex::new(b"(a|b)").unwrap();
    let m = re.split_matches(&long[..100_000], Engine::Backtrack);
    assert_eq!(m.len(), 100_000);
}

/// Bytes that are not UTF-8, in patterns and inputs.
#[test]
fn bytes_not_utf8() {
    let re = Regex::new(b"(.)\xc3(.*)").unwrap();
    for engine in [Engine::Auto, Engine::Backtrack] {
        assert_eq!(
            re.match_groups(b"\xff\xc3\x80\x01", engine),
            Some(vec![Some(0..1), Some(2..4)])
        );
    }
    // `.` does not match NUL, in either engine.
    let re = Regex::new(b"a.b").unwrap();
    for engine in [Engine::Auto, Engine::Backtrack] {
        assert_eq!(re.match_groups(b"a\x00b", engine), None);
        assert_eq!(re.match_groups(b"a\nb", engine), Some(vec![]));
    }
    // Ranges compare signed chars.
    assert!(Regex::new(b"[a-\xc3]").is_err());
    let re = Regex::new(b"[\xa9-a]+").unwrap();
    assert!(re
        .match_groups(b"\xff\xa9\x00a", Engine::Backtrack)
        .is_some());
    assert!(re.match_groups(b"b", Engine::Backtrack).is_none());
}

// ---- properties ------------------------------------------------------------

/// Small valid patterns over a small alphabet.
fn pattern() -> impl Strategy<Value = String> {
    let atom = || {
        prop::sample::select(vec!["a", "b", ".", "[ab]", "[^a]", "()", "(a|ab)"])
            .prop_map(str::to_string)
    };
    let quant = prop::sample::select(vec!["*", "+", "?", "{2}", "{0,2}", "{1,}", "{0}"]);
    atom().prop_recursive(4, 24, 4, move |inner| {
        let quantifiable = prop_oneof![atom(), inner.prop_map(|r| format!("({r})"))];
        let piece = prop_oneof![
            4 => (quantifiable, prop::collection::vec(quant.clone(), 0..3))
                .prop_map(|(a, q)| format!("{a}{}", q.concat())),
            1 => prop::sample::select(vec!["^", "$"]).prop_map(str::to_string),
        ];
        let seq = prop::collection::vec(piece, 1..4).prop_map(|v| v.concat());
        prop_oneof![
            3 => seq.clone(),
            1 => (seq.clone(), seq).prop_map(|(a, b)| format!("{a}|{b}")),
        ]
    })
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..7)
}

fn raw_pattern() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(b"ab.[]^$()*+?{}|\\-:=,0123".to_vec()),
        0..12,
    )
}

/// Enough for any case but the exponential ones (which hang CppNix too).
const STEPS: u64 = 2_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any byte soup either fails to compile or runs to an answer.
    #[test]
    fn never_panics(re in raw_pattern(), s in input()) {
        if let Ok(r) = Regex::new(&re) {
            r.set_step_budget(Some(STEPS));
            for engine in [Engine::Auto, Engine::Backtrack] {
                let _ = r.match_groups(&s, engine);
                let _ = r.split_matches(&s, engine);
            }
        }
    }

    /// The builtins' answers (fast class through the crate, the rest
    /// through the backtracker helped by the crate) are the backtracker's.
    #[test]
    fn auto_is_backtrack(re in pattern(), s in input()) {
        let r = Regex::new(re.as_bytes());
        prop_assume!(r.is_ok());
        let r = r.unwrap();
        r.set_step_budget(Some(STEPS));
        let (m1, m2) = (r.match_groups(&s, Engine::Auto), r.match_groups(&s, Engine::Backtrack));
        let (s1, s2) = (r.split_matches(&s, Engine::Auto), r.split_matches(&s, Engine::Backtrack));
        prop_assume!(!r.take_exhausted());
        prop_assert_eq!(m1, m2);
        prop_assert_eq!(s1, s2);
    }

    /// In the fast class, the crate alone gives the backtracker's answer.
    #[test]
    fn fast_class_is_exact(re in pattern(), s in input()) {
        let r = Regex::new(re.as_bytes());
        prop_assume!(r.is_ok());
        let r = r.unwrap();
        let (fast_match, fast_split) = r.fast_class();
        r.set_step_budget(Some(STEPS));
        if fast_match {
            let (a, b) = (r.match_groups(&s, Engine::Crate), r.match_groups(&s, Engine::Backtrack));
            prop_assume!(!r.take_exhausted());
            prop_assert_eq!(a, b);
        }
        if fast_split {
            let (a, b) = (r.split_matches(&s, Engine::Crate), r.split_matches(&s, Engine::Backtrack));
            prop_assume!(!r.take_exhausted());
            prop_assert_eq!(a, b);
        }
    }
}
