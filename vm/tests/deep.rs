//! Property tests of depth and width: an expression made of a random
//! sequence of nesting constructs (lists, sets, `let`, lambdas, `if`,
//! `with`, parentheses, interpolation), thousands deep, evaluates on a test
//! thread's ordinary 2 MiB stack to what peeling the same constructs off
//! again says it must, and so do its strict forms, `toJSON`, `==` and a
//! copy of it `deepSeq`ed. Wide values (long lists, big sets) alongside
//! check that nothing is quadratic in width or recursive in it.

use nixvm::Evaluator;
use proptest::prelude::*;
use std::path::Path;

#[derive(Clone, Copy, Debug)]
enum Wrap {
    List,
    Set,
    RecSet,
    Let,
    Lambda,
    If,
    With,
    Paren,
    Interp,
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        Just(Wrap::List),
        Just(Wrap::Set),
        Just(Wrap::RecSet),
        Just(Wrap::Let),
        Just(Wrap::Lambda),
        Just(Wrap::If),
        Just(Wrap::With),
        Just(Wrap::Paren),
        Just(Wrap::Interp),
    ]
}

/// The source of `leaf` inside `wraps` (outermost first), and the source of
/// an expression that takes the result apart again down to the leaf. Inside
/// an interpolation the value must stay a string, so a list or set there is
/// taken apart where it is made (`builtins.head [ (…) ]`, `{ a = …; }.a`).
fn nest(wraps: &[Wrap], leaf: &str) -> (String, String) {
    let (mut open, mut close, mut peel) = (String::new(), Vec::new(), String::from("(e: e)"));
    let mut in_interp = false;
    for w in wraps {
        let (o, c, step) = match (w, in_interp) {
            (Wrap::List, false) => ("[ (", ") ]", "builtins.head"),
            (Wrap::List, true) => ("builtins.head [ (", ") ]", "(e: e)"),
            (Wrap::Set, false) => ("{ a = ", "; }", "(s: s.a)"),
            (Wrap::RecSet, false) => ("rec { b = 1; a = ", "; }", "(s: s.a)"),
            (Wrap::Set | Wrap::RecSet, true) => ("{ a = ", "; }.a", "(e: e)"),
            (Wrap::Let, _) => ("let v = ", "; in v", "(e: e)"),
            (Wrap::Lambda, _) => ("(x: x) (", ")", "(e: e)"),
            (Wrap::If, _) => ("if true then ", " else null", "(e: e)"),
            (Wrap::With, _) => ("with { w = 1; }; ", "", "(e: e)"),
            (Wrap::Paren, _) => ("(", ")", "(e: e)"),
            (Wrap::Interp, _) => ("\"${", "}\"", "(e: e)"),
        };
        in_interp |= matches!(w, Wrap::Interp);
        open.push_str(o);
        close.push(c);
        // Peel from the outside in: the outermost construct is undone first.
        peel = format!("(e: {step} ({peel} e))");
    }
    open.push_str(leaf);
    for c in close.iter().rev() {
        open.push_str(c);
    }
    (open, peel)
}

/// `max_call_depth` is CppNix's guard, not ours: the peeling functions
/// nest calls as deep as the data, so it is raised and the native stack
/// (grown on demand) is what is tested.
fn eval(src: &str, max_call_depth: usize) -> Result<String, String> {
    let mut ev = Evaluator::builder()
        .settings(|s| s.max_call_depth = max_call_depth)
        .build();
    let v = ev
        .eval_str(src, Path::new("/"))
        .map_err(|e| ev.render_error(&e))?;
    let v = ev.force_deep(v).map_err(|e| ev.render_error(&e))?;
    Ok(ev.print(&v))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn deep_nesting_evaluates_to_what_peeling_says(
        wraps in prop::collection::vec(wrap(), 1..6000),
        width in 0usize..2000,
    ) {
        // Interpolation needs a string inside; the wide list rides beside
        // the leaf so every level also carries something wide.
        let (src, peel) = nest(&wraps, "\"leaf\"");
        let wide = format!("builtins.genList (i: {{ x = i; }}) {width}");
        let prog = format!(
            "let e = {src}; wide = {wide}; in \
             [ ({peel} e) (builtins.length wide) \
               (builtins.stringLength (builtins.toJSON e) > 0) \
               (e == ({src})) (builtins.deepSeq e true) \
               (builtins.length (builtins.attrNames (builtins.listToAttrs \
                 (builtins.genList (i: {{ name = toString i; value = i; }}) {width})))) ]"
        );
        let got = eval(&prog, 1_000_000);
        prop_assert_eq!(
            got,
            Ok(format!("[ \"leaf\" {width} true true true {width} ]")),
            "program of {} bytes", prog.len()
        );
    }

    #[test]
    fn deep_values_built_at_run_time_survive_every_consumer(depth in 1usize..9_000) {
        // Built by the evaluator, not written out, and dropped when it ends.
        // `toJSON` counts its depth against max-call-depth (10,000) as
        // CppNix's does, so this stays below it; tests/depth.rs in the CLI
        // goes to 100,000 and accepts that clean error.
        let deep = format!("builtins.foldl' (acc: x: [acc]) [] (builtins.genList (x: x) {depth})");
        let prog = format!(
            "let d = {deep}; in [ (builtins.length d) (d == {deep}) \
             (builtins.stringLength (builtins.toJSON d)) (builtins.toString d) ]"
        );
        let got = eval(&prog, 10_000);
        prop_assert_eq!(got, Ok(format!("[ 1 true {} \"\" ]", 2 * depth + 2)));
    }
}
