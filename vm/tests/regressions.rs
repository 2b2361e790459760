//! Evaluation regressions found on real code (nixpkgs, NixOS). Each case is an expression and
//! the value CppNix 2.34 prints for it with `nix-instantiate --eval --strict`.

use nixvm::Evaluator;
use std::path::Path;

fn eval(src: &str) -> String {
    let mut ev = Evaluator::builder().build();
    let v = ev
        .eval_str(src, Path::new("/"))
        .unwrap_or_else(|e| panic!("{src}: {}", ev.render_error(&e)));
    let v = ev
        .force_deep(v)
        .unwrap_or_else(|e| panic!("{src}: {}", ev.render_error(&e)));
    ev.print(&v)
}

#[track_caller]
fn check(src: &str, expected: &str) {
    assert_eq!(eval(src), expected, "for {src}");
}

/// A body whose last op yields a value in normal form (here the `else` arm's lambda) must
/// still force what the other arm jumps in with (pkgs/top-level/default.nix's `lib`).
#[test]
fn branch_results_are_forced_before_return() {
    check(
        "let p = { t = 5; }; f = { a ? true }: let lib = if a then p else (_: 1); inherit (lib) t; in t; in f {}",
        "5",
    );
    check("let p = { t = 5; }; in (if true then p else {}).t", "5");
    check(
        "let p = [ 1 ]; x = if true then p else []; in builtins.length x",
        "1",
    );
    check("let p = 3; x = a: a.b or p; in x {} + 1", "4");
}

/// CppNix puts the language constants in `builtins` too (but not as `__true`).
#[test]
fn builtins_hold_the_constants() {
    check(
        "[ builtins.true builtins.false builtins.null ]",
        "[ true false null ]",
    );
}
