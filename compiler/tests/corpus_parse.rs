//! Runs CppNix's parse-okay / parse-fail corpus directly against the parser
//! (the CLI-level run through the official runner lives in tests/).

use std::fs;
use std::path::Path;

fn corpus() -> Option<std::path::PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/conformance/nix-lang/lang");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skipping: ../shared/conformance/nix-lang is absent");
        None
    }
}

fn parse_bytes(bytes: &[u8]) -> Result<String, String> {
    let src = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let cwd = std::env::current_dir()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    nixvm_compiler::parse(src, "«stdin»", &cwd, Default::default())
        .map(|(e, _)| nixvm_compiler::printer::show(&e))
        .map_err(|e| e.msg)
}

fn parse_and_resolve(bytes: &[u8]) -> Result<(), String> {
    let src = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let (ast, _) =
        nixvm_compiler::parse(src, "«stdin»", "/", Default::default()).map_err(|e| e.msg)?;
    let globals = ["builtins", "true", "false", "null"]
        .iter()
        .enumerate()
        .map(|(i, n)| (nixvm_compiler::Symbol::intern(n), i as u16))
        .collect();
    nixvm_compiler::compile_file(&ast, &globals, 0, src, "«stdin»")
        .map(|_| ())
        .map_err(|e| e.msg)
}

#[test]
fn parse_okay_cases_print_like_cppnix() {
    let Some(dir) = corpus() else { return };
    let mut failures = Vec::new();
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("parse-okay-") && name.ends_with(".nix")) {
            continue;
        }
        n += 1;
        let exp = fs::read_to_string(path.with_extension("exp")).unwrap();
        match parse_bytes(&fs::read(&path).unwrap()) {
            Ok(out) if format!("{out}\n") == exp => {}
            Ok(out) => failures.push(format!("{name}:\n  got {out}\n  exp {exp}")),
            Err(e) => failures.push(format!("{name}: error {e}")),
        }
    }
    assert_eq!(n, 13);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn parse_fail_cases_fail() {
    let Some(dir) = corpus() else { return };
    let mut unexpected = Vec::new();
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("parse-fail-") && name.ends_with(".nix")) {
            continue;
        }
        n += 1;
        // Like `nix-instantiate --parse`, resolution runs too, so undefined
        // variables fail here.
        if parse_and_resolve(&fs::read(&path).unwrap()).is_ok() {
            unexpected.push(name);
        }
    }
    assert_eq!(n, 41);
    assert!(
        unexpected.is_empty(),
        "parsed but should fail: {unexpected:?}"
    );
}
