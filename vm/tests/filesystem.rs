//! Evaluation reads files through the evaluator's `FileSystem` (issue 17,
//! item 4): unsaved buffers in an `Overlay` are imported, read and listed
//! instead of what is on disk, and a file system of the test's own sees
//! every read.

use nixvm::io::{FileKind, FileSystem, Overlay, RealFs};
use nixvm::Evaluator;
use std::cell::RefCell;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nixvm-fs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn eval(ev: &mut Evaluator, src: &str) -> String {
    let v = ev
        .eval_str(src, Path::new("/"))
        .and_then(|v| ev.force_deep(v));
    match v {
        Ok(v) => ev.print(&v),
        Err(e) => format!("error: {}", e.msg),
    }
}

#[test]
fn an_unsaved_buffer_is_evaluated_instead_of_the_file_on_disk() {
    let d = tempdir("buffer");
    std::fs::write(d.join("default.nix"), "{ a = import ./a.nix; b = 1; }").unwrap();
    std::fs::write(d.join("a.nix"), "\"saved\"").unwrap();
    let fs = Rc::new(Overlay::new(Rc::new(RealFs)));
    fs.set(d.join("a.nix"), "\"unsaved\"");
    let mut ev = Evaluator::builder().filesystem(fs.clone()).build();
    let v = ev.eval_file(&d).unwrap();
    let a = ev.get(&v, "a").unwrap();
    assert_eq!(a.as_str(), Some("unsaved"));
    assert_eq!(ev.get(&v, "b").unwrap().as_int(), Some(1));
    // Without the overlay, the disk's text.
    let mut plain = Evaluator::new();
    let v = plain.eval_file(&d).unwrap();
    assert_eq!(plain.get(&v, "a").unwrap().as_str(), Some("saved"));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn builtins_that_read_see_the_overlay() {
    let d = tempdir("builtins");
    std::fs::write(d.join("on-disk"), "disk").unwrap();
    let fs = Rc::new(Overlay::new(Rc::new(RealFs)));
    fs.set(d.join("new/inner.txt"), "hello");
    fs.set(d.join("top.nix"), "1");
    let mut ev = Evaluator::builder().filesystem(fs.clone()).build();
    let p = d.display();
    assert_eq!(
        eval(&mut ev, &format!("builtins.readFile {p}/new/inner.txt")),
        "\"hello\""
    );
    assert_eq!(
        eval(&mut ev, &format!("builtins.pathExists {p}/new")),
        "true"
    );
    assert_eq!(
        eval(&mut ev, &format!("builtins.pathExists \"{p}/new/\"")),
        "true"
    );
    assert_eq!(
        eval(&mut ev, &format!("builtins.pathExists {p}/nope")),
        "false"
    );
    assert_eq!(
        eval(&mut ev, &format!("builtins.readFileType {p}/new")),
        "\"directory\""
    );
    assert_eq!(
        eval(&mut ev, &format!("builtins.readDir {p}")),
        "{ new = \"directory\"; on-disk = \"regular\"; \"top.nix\" = \"regular\"; }"
    );
    assert_eq!(
        eval(&mut ev, &format!("builtins.readDir {p}/new")),
        "{ \"inner.txt\" = \"regular\"; }"
    );
    assert_eq!(
        eval(
            &mut ev,
            &format!("builtins.hashFile \"sha256\" {p}/new/inner.txt")
        ),
        "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\""
    );
    // Removing the buffer shows the disk again: there is nothing there.
    fs.remove(&d.join("top.nix"));
    assert_eq!(
        eval(&mut ev, &format!("builtins.pathExists {p}/top.nix")),
        "false"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn an_error_in_an_unsaved_buffer_shows_the_buffer_s_line() {
    let fs = Rc::new(Overlay::new(Rc::new(RealFs)));
    fs.set("/nixvm-unsaved/bad.nix", "{\n  x = 1 + \"a\";\n}");
    let mut ev = Evaluator::builder().filesystem(fs).build();
    let v = ev.eval_file(Path::new("/nixvm-unsaved/bad.nix")).unwrap();
    let e = ev.get(&v, "x").unwrap_err();
    let text = ev.render_error(&e);
    assert!(text.contains("x = 1 + \"a\";"), "{text}");
    assert!(text.contains("/nixvm-unsaved/bad.nix:2:"), "{text}");
}

/// A file system that serves one file from memory and records each read.
struct Recording {
    reads: RefCell<Vec<String>>,
}

impl FileSystem for Recording {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.reads
            .borrow_mut()
            .push(format!("read {}", path.display()));
        match path.to_str() {
            Some("/virtual/main.nix") => Ok(b"{ n = 6 * 7; }".to_vec()),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
    fn kind(&self, path: &Path, _follow: bool) -> io::Result<FileKind> {
        self.reads
            .borrow_mut()
            .push(format!("kind {}", path.display()));
        match path.to_str() {
            Some("/virtual") => Ok(FileKind::Directory),
            Some("/virtual/main.nix") => Ok(FileKind::Regular),
            _ => Err(io::ErrorKind::NotFound.into()),
        }
    }
    fn read_dir(&self, _path: &Path) -> io::Result<Vec<(String, FileKind)>> {
        Err(io::ErrorKind::NotFound.into())
    }
}

#[test]
fn an_embedder_s_file_system_sees_every_read() {
    let fs = Rc::new(Recording {
        reads: RefCell::new(Vec::new()),
    });
    let mut ev = Evaluator::builder().filesystem(fs.clone()).build();
    assert_eq!(eval(&mut ev, "(import /virtual/main.nix).n"), "42");
    assert_eq!(
        *fs.reads.borrow(),
        ["kind /virtual/main.nix", "read /virtual/main.nix"]
    );
    assert_eq!(
        eval(&mut ev, "builtins.readFile /virtual/missing"),
        "error: path '/virtual/missing' does not exist"
    );
}
