use std::hash::{Hash, Hasher};
use std::path::Path;

fn main() {
    lalrpop::Configuration::new()
        .emit_rerun_directives(true)
        .process_current_dir()
        .expect("lalrpop grammar failed to compile");
    // The compiler's fingerprint: a hash of its sources and of the lock file
    // (the lexer and parser generators' versions shape what it makes). The
    // bytecode cache keys entries on it, so that an entry written by any
    // other compiler (an older commit, a local change) is never read.
    let mut files = Vec::new();
    collect(Path::new("src"), &mut files);
    files.push("build.rs".into());
    files.push("../Cargo.lock".into());
    files.sort();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in &files {
        f.hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    println!(
        "cargo:rustc-env=NIXVM_COMPILER_FINGERPRINT={:016x}",
        h.finish()
    );
    println!("cargo:rerun-if-changed=src");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../Cargo.lock");
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}
