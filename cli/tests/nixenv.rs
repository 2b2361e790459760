//! `nix-env -q` against CppNix 2.34's answers: every case in
//! `fixtures/nixenv/cases.txt` is run through the `nix-env` link, in one
//! process and with two workers (`-j 2`), and must print what CppNix
//! printed (`NAME.out`: stdout, stderr and the exit status).

mod common;
use common::Env;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/nixenv");

fn cases() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(format!("{DIR}/cases.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace().map(str::to_string);
            (w.next().unwrap(), w.collect())
        })
        .collect()
}

/// The fixtures' `.nix` files and directories (a `~/.nix-defexpr`-like
/// directory of expressions among them).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    for f in std::fs::read_dir(from).unwrap() {
        let p = f.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
            copy_tree(&p, &dest);
        } else if p.extension().is_some_and(|e| e == "nix" || e == "txt") {
            std::fs::copy(&p, dest).unwrap();
        }
    }
}

fn check(jobs: Option<&str>) {
    let env = Env::new(&format!("nixenv-{}", jobs.unwrap_or("1")));
    copy_tree(std::path::Path::new(DIR), &env.dir);
    let mut failed = Vec::new();
    for (name, mut args) in cases() {
        if let Some(j) = jobs {
            args.extend(["-j".to_string(), j.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = env.run("nix-env", &args);
        let got = format!(
            "{}--- stderr\n{}--- exit {}\n",
            o.stdout,
            o.stderr,
            o.code.unwrap_or(-1)
        )
        .replace(env.dir.to_str().unwrap(), "@DIR@");
        let want = std::fs::read_to_string(format!("{DIR}/{name}.out")).unwrap();
        if got != want {
            failed.push(format!("== {name}\n-- want\n{want}-- got\n{got}"));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn queries_print_what_cppnix_prints() {
    check(None);
}

#[test]
fn queries_with_two_workers_print_the_same() {
    check(Some("2"));
}
