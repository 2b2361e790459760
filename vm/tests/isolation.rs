//! Evaluators are independent: many in a row leave nothing behind, two in
//! one thread take turns without seeing each other's state, and evaluators
//! on several threads run at once. Symbols (attribute names) are the one
//! thing they share, and a symbol names the same string on every thread.

use nixvm::{Evaluator, Symbol, Value};
use std::path::Path;

fn eval(ev: &mut Evaluator, src: &str) -> Value {
    let v = ev.eval_str(src, Path::new("/")).expect("evaluates");
    ev.force_deep(v).expect("forces")
}

fn eval_string(ev: &mut Evaluator, src: &str) -> String {
    let v = eval(ev, src);
    ev.print(&v)
}

/// Resident memory in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4
}

/// What a package set asks of an evaluator, small enough for a test: a
/// fixed point of a few hundred packages made with `//` and `mapAttrs`,
/// derivations depending on each other, strings with context.
const PACKAGE_SET: &str = r#"
  let
    fix = f: let x = f x; in x;
    mk = self: name: deps: derivation {
      inherit name;
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "echo ${name} > $out" ];
      deps = map (d: self.${d}) deps;
    } // { meta = { description = "package ${name}"; }; };
    names = builtins.genList (i: "p${toString i}") 3000;
    pkgs = fix (self: builtins.listToAttrs (builtins.genList (i: {
      name = "p${toString i}";
      value = mk self "p${toString i}" (if i == 0 then [ ] else [ "p${toString (i / 2)}" ]);
    }) 3000) // { extra = builtins.mapAttrs (n: v: v.name) { a = self.p1; }; });
  in map (n: pkgs.${n}.drvPath) names
"#;

#[test]
fn fresh_evaluators_one_after_another_keep_memory_flat() {
    // hello from nixpkgs when there is a tree (NIXPKGS), a package set of
    // our own otherwise.
    let src = match std::env::var("NIXPKGS") {
        Ok(np) if Path::new(&np).join("default.nix").exists() => {
            format!("(import {np} {{}}).hello.drvPath")
        }
        _ => PACKAGE_SET.to_string(),
    };
    let mut first_out = None;
    let mut after = Vec::new();
    for _ in 0..20 {
        let mut ev = Evaluator::builder().build();
        let out = eval_string(&mut ev, &src);
        drop(ev);
        match &first_out {
            None => first_out = Some(out),
            Some(f) => assert_eq!(&out, f, "the same answer every time"),
        }
        after.push(rss_kib());
    }
    // The first evaluation sizes the allocator's pools; after it, memory
    // must not grow with the number of evaluators.
    let base = after[1];
    let last = *after.last().expect("20 runs");
    assert!(
        last * 10 <= base * 11,
        "RSS grew from {base} KiB after the second evaluator to {last} KiB after the 20th: {after:?}"
    );
}

#[test]
fn two_evaluators_in_one_thread_take_turns() {
    let mut a = Evaluator::builder()
        .constant("who", Value::string("a".to_string()))
        .build();
    let mut b = Evaluator::builder().build();
    // A makes a derivation and files of its own; B then reports an error
    // with a position in its own source (B used to index A's tables).
    let drv = eval_string(
        &mut a,
        r#"(derivation { name = "x"; builder = "/b"; system = "s"; }).drvPath"#,
    );
    assert!(drv.ends_with("-x.drv\""), "{drv}");
    let e = b
        .eval_str("let\n  x = 1;\nin x + \"a\"", Path::new("/"))
        .expect_err("a type error");
    let shown = b.render_error(&e);
    assert!(
        shown.contains("cannot add a string to an integer"),
        "{shown}"
    );
    assert!(shown.contains("at «string»:3:"), "{shown}");
    // Each keeps its own builtins and its own values.
    assert_eq!(eval_string(&mut a, "builtins.who"), "\"a\"");
    let missing = b.eval_str("builtins.who", Path::new("/"));
    assert!(missing.is_err(), "B has no builtins.who");
    let va = eval(&mut a, "{ shared = 1; onlyA = 2; }");
    let vb = eval(&mut b, "{ shared = 3; onlyB = 4; }");
    assert_eq!(eval_string(&mut a, "builtins.who + \"!\""), "\"a!\"");
    assert_eq!(a.print(&va), "{ onlyA = 2; shared = 1; }");
    assert_eq!(b.print(&vb), "{ onlyB = 4; shared = 3; }");
    drop(a);
    // B goes on after A is gone.
    assert_eq!(
        eval_string(&mut b, "builtins.attrNames { z = 1; y = 2; }"),
        "[ \"y\" \"z\" ]"
    );
}

#[test]
fn evaluators_on_several_threads_at_once() {
    let results: Vec<(String, Symbol)> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..4)
            .map(|t| {
                sc.spawn(move || {
                    let mut ev = Evaluator::builder().build();
                    // Names of this thread's own, interned while the others
                    // intern theirs, and names they all share.
                    let src = format!(
                        "let s = builtins.listToAttrs (builtins.genList (i: {{ \
                           name = \"t{t}_${{toString i}}\"; value = i; }}) 2000); \
                         in {{ n = builtins.length (builtins.attrNames s); \
                              last = s.t{t}_1999; common = {{ inherit (s) t{t}_7; }}; }}"
                    );
                    let out = eval_string(&mut ev, &src);
                    (out, Symbol::intern(&format!("t{t}_1999")))
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for (t, (out, sym)) in results.iter().enumerate() {
        assert_eq!(
            out,
            &format!("{{ common = {{ t{t}_7 = 7; }}; last = 1999; n = 2000; }}")
        );
        // A symbol made on another thread names its string here too.
        assert_eq!(sym.as_str(), format!("t{t}_1999"));
        assert_eq!(Symbol::intern(&format!("t{t}_1999")), *sym);
    }
}
