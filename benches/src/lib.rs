//! Micro workloads for `cargo bench -p nixvm-benches` (benches/micro.rs),
//! run through the embedding API: build an `Evaluator`, evaluate the
//! source, force the result deeply. Each workload is a function of its size,
//! and knows its answer, so the tests below check at small sizes that the
//! benchmark measures a correct evaluation.
//!
//! `benches/compare.sh` times the whole binary against CppNix on
//! `../shared/bench/workloads`; these benchmarks are for the evaluator alone
//! (no process start-up, no printing), to see one change's effect.

use nixvm::{Evaluator, Value};
use std::path::Path;

pub struct Workload {
    pub name: &'static str,
    pub src: String,
    /// What `nix-instantiate --eval --strict` prints for `src`.
    pub expected: String,
}

/// Naive doubly recursive Fibonacci: calls and integer arithmetic.
pub fn fib(n: u32) -> Workload {
    fn f(n: u64) -> u64 {
        let (mut a, mut b) = (0u64, 1u64);
        for _ in 0..n {
            (a, b) = (b, a + b);
        }
        a
    }
    Workload {
        name: "fib",
        src: format!("let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib {n}"),
        expected: f(n as u64).to_string(),
    }
}

/// `foldl'` summing `genList`: builtin re-entry into Nix code.
pub fn foldl_sum(n: u64) -> Workload {
    Workload {
        name: "foldl_sum",
        src: format!("builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) {n})"),
        expected: (n * n.saturating_sub(1) / 2).to_string(),
    }
}

/// `listToAttrs` of `n` generated names, then `attrNames`: attribute-set
/// construction, symbol interning and sorting by name.
pub fn list_to_attrs(n: u64) -> Workload {
    Workload {
        name: "list_to_attrs",
        src: format!(
            "let s = builtins.listToAttrs (builtins.genList (i: {{ name = \"k\" + toString i; value = i; }}) {n}); \
             in builtins.length (builtins.attrNames s) + s.k{}",
            n - 1
        ),
        expected: (n + n - 1).to_string(),
    }
}

/// `map` then `filter` over `n` ints: list builtins and small closures.
pub fn map_filter(n: u64) -> Workload {
    Workload {
        name: "map_filter",
        src: format!(
            "builtins.length (builtins.filter (x: x / 2 * 2 == x) (map (x: x * 3) (builtins.genList (x: x) {n})))"
        ),
        expected: n.div_ceil(2).to_string(),
    }
}

/// `sort` of `n` ints in reverse order with a Nix comparator.
pub fn sort_reversed(n: u64) -> Workload {
    Workload {
        name: "sort_reversed",
        src: format!(
            "let s = builtins.sort (a: b: a < b) (builtins.genList (i: {n} - i) {n}); \
             in [ (builtins.head s) (builtins.elemAt s {}) ]",
            n - 1
        ),
        expected: format!("[ 1 {n} ]"),
    }
}

/// Building a string with `+` in a fold: string allocation and copying
/// (quadratic in `n`, as in CppNix).
pub fn string_concat_fold(n: u64) -> Workload {
    let len: usize = (0..n).map(|i| i.to_string().len()).sum();
    Workload {
        name: "string_concat_fold",
        src: format!(
            "builtins.stringLength (builtins.foldl' (acc: i: acc + toString i) \"\" (builtins.genList (x: x) {n}))"
        ),
        expected: len.to_string(),
    }
}

/// `n` updates three levels deep (`acc // { a = acc.a // { b = ... } }`),
/// the innermost set cycling through 100 names: `//` merges and selects.
pub fn deep_update(n: u64) -> Workload {
    let keys = n.min(100);
    let last = n - 1;
    Workload {
        name: "deep_update",
        src: format!(
            "let r = builtins.foldl' \
               (acc: i: acc // {{ a = acc.a // {{ b = acc.a.b // {{ \"k${{toString (i - i / 100 * 100)}}\" = i; }}; }}; }}) \
               {{ a = {{ b = {{ }}; }}; }} (builtins.genList (x: x) {n}); \
             in [ (builtins.length (builtins.attrNames r.a.b)) r.a.b.k{} ]",
            last % 100
        ),
        expected: format!("[ {keys} {last} ]"),
    }
}

/// The workloads at the sizes the benchmarks use.
pub fn standard() -> Vec<Workload> {
    vec![
        fib(25),
        foldl_sum(1_000_000),
        list_to_attrs(100_000),
        map_filter(200_000),
        sort_reversed(3000),
        string_concat_fold(10_000),
        deep_update(20_000),
    ]
}

/// Evaluate and force a workload with a fresh evaluator, returning its
/// printed value (what the benchmark measures, plus the print).
pub fn run(src: &str) -> Result<String, String> {
    let mut ev = Evaluator::builder().build();
    let v: Value = ev
        .eval_str(src, Path::new("/"))
        .and_then(|v| ev.force_deep(v))
        .map_err(|e| ev.render_error(&e))?;
    Ok(ev.print(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_workloads_compute_the_right_answer() {
        for w in [
            fib(15),
            foldl_sum(1000),
            list_to_attrs(500),
            map_filter(1001),
            sort_reversed(50),
            string_concat_fold(300),
            deep_update(250),
        ] {
            assert_eq!(
                run(&w.src).as_deref(),
                Ok(w.expected.as_str()),
                "{}",
                w.name
            );
        }
    }

    #[test]
    fn standard_workloads_are_the_documented_ones() {
        let names: Vec<&str> = standard().iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "fib",
                "foldl_sum",
                "list_to_attrs",
                "map_filter",
                "sort_reversed",
                "string_concat_fold",
                "deep_update"
            ]
        );
        // The cheap ones at full size too (the rest are the benchmark's job).
        for w in [fib(25), sort_reversed(3000)] {
            assert_eq!(
                run(&w.src).as_deref(),
                Ok(w.expected.as_str()),
                "{}",
                w.name
            );
        }
    }
}
