//! The differential tester: generate programs, check nixvm against recorded
//! CppNix answers, and shrink a mismatch (against the live reference).
//!
//!   difftest gen SEED COUNT                 programs, one JSON string per line
//!   difftest check CORPUS.jsonl...          run nixvm on each recorded case;
//!                                           print mismatches and a summary
//!   difftest reduce SRC                     shrink a program on which nixvm and
//!                                           the reference disagree
//!
//! nixvm is `$NIXVM` (default target/release/nixvm); the reference is
//! `../shared/tools/reference-nix.sh run` (for `reduce`; `record.sh` records).
//! A case runs as `nix-instantiate --eval --strict -E SRC`; its answer is
//! stdout on success, else the text of the last `error:` line.

use nixvm_tests::difftest::{load, run_case as run, Gen};
use std::process::ExitCode;

fn nixvm() -> String {
    let p = std::env::var("NIXVM").unwrap_or_else(|_| "target/release/nixvm".into());
    // Cases run in `/`: the program's path must not be relative.
    std::fs::canonicalize(&p).map_or(p, |a| a.display().to_string())
}

fn ours() -> Vec<String> {
    vec![nixvm(), "instantiate".into()]
}

fn reference() -> Vec<String> {
    let here = std::env::current_dir().unwrap_or_default();
    let r = here.join("../shared/tools/reference-nix.sh");
    vec![
        r.display().to_string(),
        "run".into(),
        "nix-instantiate".into(),
    ]
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("gen") if args.len() == 3 => {
            let seed: u64 = args[1].parse().expect("SEED");
            let count: usize = args[2].parse().expect("COUNT");
            let mut g = Gen::new(seed);
            for _ in 0..count {
                println!("{}", serde_json::Value::String(g.program().render()));
            }
            ExitCode::SUCCESS
        }
        Some("check") if args.len() > 1 => {
            let (mut total, mut bad) = (0, 0);
            for file in &args[1..] {
                let text = std::fs::read_to_string(file).expect("reading the corpus");
                for (src, want) in load(&text) {
                    total += 1;
                    let got = run(&ours(), &src);
                    if got != want {
                        bad += 1;
                        println!("MISMATCH {src}\n  CppNix: {want:?}\n  nixvm:  {got:?}");
                    }
                }
            }
            println!("{} of {total} cases agree", total - bad);
            if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Some("reduce") if args.len() == 2 => reduce(&args[1]),
        _ => {
            eprintln!("usage: difftest gen SEED COUNT | check CORPUS.jsonl... | reduce SRC");
            ExitCode::from(2)
        }
    }
}

/// Shrink by re-parsing nothing: the program is regenerated as a tree only
/// for generated cases, so here the reducer works on text, replacing each
/// parenthesised group by simpler text while the two still disagree.
fn reduce(src: &str) -> ExitCode {
    let disagree = |s: &str| run(&ours(), s) != run(&reference(), s);
    if !disagree(src) {
        eprintln!("they agree on this program");
        return ExitCode::FAILURE;
    }
    let mut cur = src.to_string();
    loop {
        let mut better = None;
        for (start, end) in groups(&cur) {
            for with in ["0", "\"\"", "[ ]", "{ }", "true", "null"] {
                let cand = format!("{}{}{}", &cur[..start], with, &cur[end..]);
                if cand.len() < cur.len() && disagree(&cand) {
                    better = Some(cand);
                    break;
                }
            }
            if better.is_some() {
                break;
            }
        }
        match better {
            Some(b) => cur = b,
            None => break,
        }
    }
    println!("{cur}");
    println!(
        "  CppNix: {:?}\n  nixvm:  {:?}",
        run(&reference(), &cur),
        run(&ours(), &cur)
    );
    ExitCode::SUCCESS
}

/// The parenthesised groups of `s`, largest first.
fn groups(s: &str) -> Vec<(usize, usize)> {
    let mut stack = Vec::new();
    let mut out = Vec::new();
    for (i, c) in s.char_indices() {
        match c {
            '(' => stack.push(i),
            ')' => {
                if let Some(st) = stack.pop() {
                    out.push((st, i + 1));
                }
            }
            _ => {}
        }
    }
    out.sort_by_key(|(a, b)| std::cmp::Reverse(b - a));
    out
}
