//! The fetchers on local content built here with fixed bytes, modes, mtimes
//! and Git dates. Every expected store path, narHash and message was printed
//! by CppNix 2.34 (`nix-instantiate --eval --strict`) for the same content.

use nixvm::Evaluator;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const T0: u64 = 1700000000;

/// A fresh scratch directory for one test.
fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nixvm-fetchers-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn set_mtime(p: &Path, t: u64) {
    let f = fs::File::open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(t))
        .unwrap();
}

fn write(p: &Path, data: &str, mode: u32) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

fn evaluator(pure: bool, features: &[&str]) -> Evaluator {
    let features: Vec<String> = features.iter().map(|s| s.to_string()).collect();
    Evaluator::builder()
        .pure(pure)
        .settings(|s| s.experimental_features = features)
        .build()
}

/// The printed value, or the error's message (these tests check messages;
/// the layout has its own tests).
fn eval_with(ev: &mut Evaluator, src: &str) -> Result<String, String> {
    let v = ev
        .eval_str(src, Path::new("/"))
        .map_err(|e| e.msg.clone())?;
    let v = ev.force_deep(v).map_err(|e| e.msg.clone())?;
    Ok(ev.print(&v))
}

#[track_caller]
fn check(src: &str, expected: &str) {
    let mut ev = evaluator(false, &[]);
    assert_eq!(
        eval_with(&mut ev, src).as_deref(),
        Ok(expected),
        "for {src}"
    );
}

/// The message of the error `src` fails with.
#[track_caller]
fn fails(pure: bool, features: &[&str], src: &str) -> String {
    let mut ev = evaluator(pure, features);
    match eval_with(&mut ev, src) {
        Ok(v) => panic!("{src} evaluated to {v}"),
        Err(e) => e,
    }
}

#[track_caller]
fn check_err(pure: bool, src: &str, expected: &str) {
    let e = fails(pure, &[], src);
    assert!(
        e.starts_with(expected),
        "for {src}:\n got {e}\nwant {expected}"
    );
}

// ---- fetchurl ----------------------------------------------------------------------

#[test]
fn fetchurl_flat_paths_and_hash_checks() {
    let d = scratch("url");
    write(&d.join("hello.txt"), "hello world\n", 0o644);
    let url = format!("file://{}/hello.txt", d.display());
    check(
        &format!("builtins.fetchurl \"{url}\""),
        "\"/nix/store/d5n8kjrd1ilw3mxdk83c446nyigj8pci-hello.txt\"",
    );
    check(
        &format!("builtins.fetchurl {{ url = \"{url}\"; name = \"foo\"; }}"),
        "\"/nix/store/znvcx14ij52w0jag0cg57ldlpgvvjbrz-foo\"",
    );
    // Every hash spelling of the right hash is accepted.
    for h in [
        "0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j59",
        "a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447",
        "sha256-qUiQTy8PR5uPgZdpSzAYSw0u0cHNKh7A+4XSmaGSpEc=",
    ] {
        check(
            &format!("builtins.fetchurl {{ url = \"{url}\"; sha256 = \"{h}\"; }}"),
            "\"/nix/store/d5n8kjrd1ilw3mxdk83c446nyigj8pci-hello.txt\"",
        );
    }
    check_err(
        false,
        &format!(
            "builtins.fetchurl {{ url = \"{url}\"; sha256 = \"0000000000000000000000000000000000000000000000000000\"; }}"
        ),
        &format!(
            "hash mismatch in file downloaded from '{url}':\n  specified: sha256:0000000000000000000000000000000000000000000000000000\n  got:       sha256:0ix4jahrkll5zg01wandq78jw3ab30q4nscph67rniqg5x7r0j59"
        ),
    );
    check(
        &format!("builtins.fetchTree {{ type = \"file\"; url = \"{url}\"; }}"),
        "{ narHash = \"sha256-NMo6xjCU0dV1H3QRAWkqePle7fEHRLCIEp/DJN/Q9gM=\"; outPath = \"/nix/store/dbh6awfn4dsxqm70js7y4rw4kvzj0s74-source\"; }",
    );
    // The content is readable under the store path.
    check(
        &format!("builtins.readFile (builtins.fetchurl \"{url}\")"),
        "\"hello world\\n\"",
    );
    check_err(
        false,
        &format!("builtins.fetchurl \"file://{}/nonexist\"", d.display()),
        &format!(
            "unable to download 'file://{0}/nonexist': Could not read a file:// file (37) Could not open file {0}/nonexist",
            d.display()
        ),
    );
    check_err(
        false,
        "builtins.fetchurl \"/tmp/hello.txt\"",
        "URL '/tmp/hello.txt' doesn't have a scheme",
    );
    // (HTTP is tested against a loopback server in http_fetchers.rs.)
    check_err(
        false,
        "builtins.fetchurl \"foo://example/x.txt\"",
        "unable to download 'foo://example/x.txt': Unsupported protocol (1) Protocol \"foo\" not supported or disabled in libcurl",
    );
    check_err(
        true,
        &format!("builtins.fetchurl \"{url}\""),
        "in pure evaluation mode, 'fetchurl' requires a 'sha256' argument",
    );
    let _ = fs::remove_dir_all(&d);
}

// ---- tarballs ------------------------------------------------------------------------

/// proj-1.0/{a.txt, sub/b.txt, run.sh (executable), link -> a.txt}, all at T0.
fn proj_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(T0);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        b.append_data(&mut h, path, data).unwrap();
    };
    add("proj-1.0/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "proj-1.0/a.txt",
        tar::EntryType::Regular,
        0o644,
        b"a\n",
        None,
    );
    add("proj-1.0/sub/", tar::EntryType::Directory, 0o755, b"", None);
    add(
        "proj-1.0/sub/b.txt",
        tar::EntryType::Regular,
        0o644,
        b"b\n",
        None,
    );
    add(
        "proj-1.0/run.sh",
        tar::EntryType::Regular,
        0o755,
        b"#!/bin/sh\n",
        None,
    );
    add(
        "proj-1.0/link",
        tar::EntryType::Symlink,
        0o777,
        b"",
        Some("a.txt"),
    );
    b.into_inner().unwrap()
}

const PROJ: &str = "/nix/store/9mn84v784n3kd2qg34shm2mfawj09a9l-source";

#[test]
fn fetch_tarball_formats_and_attrs() {
    let d = scratch("tar");
    let tar = proj_tar();
    fs::write(d.join("proj.tar"), &tar).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    fs::write(d.join("proj.tar.gz"), gz.finish().unwrap()).unwrap();
    let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    bz.write_all(&tar).unwrap();
    fs::write(d.join("proj.tar.bz2"), bz.finish().unwrap()).unwrap();
    let mut xz = Vec::new();
    lzma_rs::xz_compress(&mut &tar[..], &mut xz).unwrap();
    fs::write(d.join("proj.tar.xz"), xz).unwrap();
    for f in ["proj.tar", "proj.tar.gz", "proj.tar.bz2", "proj.tar.xz"] {
        check(
            &format!("builtins.fetchTarball \"file://{}/{f}\"", d.display()),
            &format!("\"{PROJ}\""),
        );
    }
    let url = format!("file://{}/proj.tar.gz", d.display());
    check(
        &format!("builtins.fetchTarball {{ url = \"{url}\"; name = \"foo\"; }}"),
        "\"/nix/store/1485zla03frskgz9dwirg4av7992p9s1-foo\"",
    );
    check(
        &format!("builtins.fetchTarball {{ url = \"{url}\"; sha256 = \"sha256-8adva5p4vaFGB/UFMUyoUC7aCqeqJi9mcqPgbgjNmfw=\"; }}"),
        &format!("\"{PROJ}\""),
    );
    check_err(
        false,
        &format!("builtins.fetchTarball {{ url = \"{url}\"; sha256 = \"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"; }}"),
        &format!("hash mismatch in file downloaded from '{url}':\n  specified: sha256:0000000000000000000000000000000000000000000000000000\n  got:       sha256:1z4rrl46xq53f9k2y9malw5dlbjhm16321gm0x3a3gbqk9mnz9zi"),
    );
    let info = format!("{{ lastModified = 1700000000; lastModifiedDate = \"20231114221320\"; narHash = \"sha256-8adva5p4vaFGB/UFMUyoUC7aCqeqJi9mcqPgbgjNmfw=\"; outPath = \"{PROJ}\"; }}");
    check(
        &format!("builtins.fetchTree {{ type = \"tarball\"; url = \"{url}\"; }}"),
        &info,
    );
    check(&format!("builtins.fetchTree \"{url}\""), &info);
    // Reading through the store path, with relative imports inside.
    check(
        &format!("let t = builtins.fetchTarball \"{url}\"; in [ (builtins.readFile \"${{t}}/sub/b.txt\") (builtins.readFileType \"${{t}}/link\") (builtins.attrNames (builtins.readDir t)) ]"),
        "[ \"b\\n\" \"symlink\" [ \"a.txt\" \"link\" \"run.sh\" \"sub\" ] ]",
    );
    check_err(
        true,
        &format!("builtins.fetchTarball \"{url}\""),
        "in pure evaluation mode, 'fetchTarball' requires a 'sha256' argument",
    );
    check_err(
        true,
        &format!("builtins.fetchTree {{ type = \"tarball\"; url = \"{url}\"; }}"),
        &format!("in pure evaluation mode, 'fetchTree' doesn't fetch unlocked input '{url}'"),
    );
    check_err(
        false,
        &format!("builtins.fetchTarball \"file://{}\"", d.display()),
        &format!("tarball \"{}\" is a directory, not a file.", d.display()),
    );
    check_err(
        false,
        &format!(
            "builtins.fetchTarball \"file://{}/nonexist.tar.gz\"",
            d.display()
        ),
        &format!(
            "tarball \"{}/nonexist.tar.gz\" does not exist.",
            d.display()
        ),
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn fetch_tarball_layouts_and_zip() {
    let d = scratch("layouts");
    let tar_of = |entries: &[(&str, Option<&[u8]>)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (p, data) in entries {
            let mut h = tar::Header::new_ustar();
            match data {
                Some(bytes) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o644);
                    h.set_size(bytes.len() as u64);
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_size(0);
                }
            }
            h.set_mtime(T0);
            b.append_data(&mut h, p, data.unwrap_or(b"")).unwrap();
        }
        b.into_inner().unwrap()
    };
    // Empty directories are kept; a single top-level directory is stripped.
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "empty.tar",
            tar_of(&[
                ("top/", None),
                ("top/emptydir/", None),
                ("top/d/", None),
                ("top/d/x", Some(b"x\n")),
            ]),
            "hqgz5adspk9vpxcpka8p4mm0664mfpja",
        ),
        (
            "multi.tar",
            tar_of(&[
                ("a/", None),
                ("a/1", Some(b"1\n")),
                ("b/", None),
                ("f", Some(b"f\n")),
            ]),
            "59plcypjs3vxl6mvxfq6h3xyxl2n1kw0",
        ),
        (
            "single.tar",
            tar_of(&[("only.txt", Some(b"single\n"))]),
            "rsnsxw865bkxg7vs4dsmbc7irdh5n8gl",
        ),
        (
            "onlyempty.tar",
            tar_of(&[("top/", None), ("top/emptydir/", None)]),
            "xqfc2xvgvhgrk8vic7f57y6xxaixv86q",
        ),
    ];
    for (name, bytes, hash) in cases {
        fs::write(d.join(name), bytes).unwrap();
        check(
            &format!("builtins.fetchTarball \"file://{}/{name}\"", d.display()),
            &format!("\"/nix/store/{hash}-source\""),
        );
    }
    // zip: what `zip -r` makes of proj-1.0 (the symlink followed into a file).
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = |mode: u32| {
        zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode)
    };
    z.add_directory("proj-1.0/", opts(0o755)).unwrap();
    for (p, data, mode) in [
        ("proj-1.0/a.txt", "a\n", 0o644),
        ("proj-1.0/link", "a\n", 0o644),
        ("proj-1.0/run.sh", "#!/bin/sh\n", 0o755),
        ("proj-1.0/sub/b.txt", "b\n", 0o644),
    ] {
        z.start_file(p, opts(mode)).unwrap();
        z.write_all(data.as_bytes()).unwrap();
    }
    fs::write(d.join("proj.zip"), z.finish().unwrap().into_inner()).unwrap();
    check(
        &format!("builtins.fetchTarball \"file://{}/proj.zip\"", d.display()),
        "\"/nix/store/94jln2vcjc1bpyvc8rjpy0y6a2q7689d-source\"",
    );
    fs::write(d.join("notatar.txt"), "hello world\n").unwrap();
    check_err(
        false,
        &format!("builtins.fetchTree \"file://{}/notatar.txt\"", d.display()),
        "Failed to open archive (Unrecognized archive format)",
    );
    let _ = fs::remove_dir_all(&d);
}

// ---- path inputs -----------------------------------------------------------------------

#[test]
fn fetch_tree_path() {
    let d = scratch("path");
    let e3 = d.join("e3");
    write(&e3.join("only.txt"), "single\n", 0o644);
    set_mtime(&e3.join("only.txt"), T0);
    set_mtime(&e3, T0);
    let p = e3.display();
    let info = "{ lastModified = 1700000000; lastModifiedDate = \"20231114221320\"; narHash = \"sha256-QwcIlQomnvOpWuE8dJThOt1xC13VlmL92kOPnFwFSMc=\"; outPath = \"/nix/store/rsnsxw865bkxg7vs4dsmbc7irdh5n8gl-source\"; }";
    check(
        &format!("builtins.fetchTree {{ type = \"path\"; path = \"{p}\"; }}"),
        info,
    );
    check(&format!("builtins.fetchTree \"path:{p}\""), info);
    check_err(
        false,
        &format!("builtins.fetchTree {{ type = \"path\"; path = \"{p}\"; narHash = \"sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"; }}"),
        &format!("NAR hash mismatch in input 'path:{p}?narHash=sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA%3D', expected 'sha256-QwcIlQomnvOpWuE8dJThOt1xC13VlmL92kOPnFwFSMc=' but got 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='"),
    );
    check_err(
        true,
        &format!("builtins.fetchTree {{ type = \"path\"; path = \"{p}\"; }}"),
        &format!("in pure evaluation mode, 'fetchTree' doesn't fetch unlocked input 'path:{p}'"),
    );
    check_err(
        false,
        &format!("builtins.fetchTree {p}"),
        &format!("'{p}' doesn't have a scheme"),
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn fetch_tree_argument_errors() {
    check_err(
        false,
        "builtins.fetchTree { type = \"foo\"; url = \"x\"; }",
        "cannot show unsupported input '{\"type\":\"foo\",\"url\":\"x\"}'",
    );
    check_err(
        false,
        "builtins.fetchTree { url = \"x\"; }",
        "argument 'type' is missing in call to 'fetchTree'",
    );
    check_err(
        false,
        "builtins.fetchTree { type = \"git\"; url = \"/tmp/x\"; foo = 1; }",
        "input attribute 'foo' not supported by scheme 'git'",
    );
    check_err(
        false,
        "builtins.fetchTree { type = \"git\"; url = \"/tmp/x\"; foo = []; }",
        "argument 'foo' to 'fetchTree' is a list while a string, Boolean or integer is expected",
    );
    check_err(
        false,
        "builtins.fetchTree { type = \"tarball\"; url = \"file:///x.tar.gz\"; name = \"x\"; }",
        "argument 'name' isn\u{2019}t supported in call to 'fetchTree'",
    );
}

// ---- git -----------------------------------------------------------------------------------

fn have_git() -> bool {
    Command::new("git").arg("--version").output().is_ok()
}

fn git(dir: &Path, args: &[&str], date: u64) {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_DATE", format!("@{date} +0000"))
        .env("GIT_COMMITTER_DATE", format!("@{date} +0000"))
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@e")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@e")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// main: first (a.txt, d/b.txt) at T0, second (c.txt) at T0+100; branch
/// `other` at first.
fn make_repo(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"], T0);
    git(dir, &["config", "commit.gpgsign", "false"], T0);
    write(&dir.join("a.txt"), "one\n", 0o644);
    write(&dir.join("d/b.txt"), "two\n", 0o644);
    git(dir, &["add", "."], T0);
    git(dir, &["commit", "-qm", "first"], T0);
    write(&dir.join("c.txt"), "three\n", 0o644);
    git(dir, &["add", "c.txt"], T0 + 100);
    git(dir, &["commit", "-qm", "second"], T0 + 100);
    git(dir, &["branch", "other", "HEAD~1"], T0 + 100);
}

const HEAD_INFO: &str = "{ lastModified = 1700000100; lastModifiedDate = \"20231114221500\"; narHash = \"sha256-RaDN445skh1KcZAqW1erBbZFFJBooBm08nXKmygMq9k=\"; outPath = \"/nix/store/bhk003flpx1lryn4xwh8r3qai6msqgdx-source\"; rev = \"2ab5f1f46634d3055df9af6da3c029e0392da386\"; revCount = 2; shortRev = \"2ab5f1f\"; submodules = false; }";
const FIRST_INFO: &str = "{ lastModified = 1700000000; lastModifiedDate = \"20231114221320\"; narHash = \"sha256-1v21eiaxj7J8Pl2Qd6BsBHw/EE1bePA5MEpm7Yda92o=\"; outPath = \"/nix/store/n4lpfqs29wc4zv7x1yj3m5lwk6ivkcwm-source\"; rev = \"9730e1dc725f0cafb394229f68a601133c4b58e6\"; revCount = 1; shortRev = \"9730e1d\"; submodules = false; }";

#[test]
fn fetch_git_clean_and_by_ref_or_rev() {
    if !have_git() {
        eprintln!("skipped: no git");
        return;
    }
    let d = scratch("git");
    let repo = d.join("repo");
    make_repo(&repo);
    let r = repo.display();
    check(&format!("builtins.fetchGit {r}"), HEAD_INFO);
    check(
        &format!("builtins.fetchGit {{ url = \"{r}\"; ref = \"other\"; }}"),
        FIRST_INFO,
    );
    check(
        &format!("builtins.fetchGit {{ url = \"file://{r}\"; rev = \"9730e1dc725f0cafb394229f68a601133c4b58e6\"; }}"),
        FIRST_INFO,
    );
    // A rev is locked, so pure mode accepts it.
    let mut ev = evaluator(true, &[]);
    assert_eq!(
        eval_with(
            &mut ev,
            &format!("builtins.fetchGit {{ url = \"{r}\"; rev = \"9730e1dc725f0cafb394229f68a601133c4b58e6\"; }}")
        )
        .as_deref(),
        Ok(FIRST_INFO)
    );
    check_err(
        true,
        &format!("builtins.fetchGit {r}"),
        &format!("in pure evaluation mode, 'fetchGit' doesn't fetch unlocked input 'git+file://{r}?exportIgnore=1'"),
    );
    check_err(
        true,
        &format!("builtins.fetchGit {{ url = \"{r}\"; ref = \"main\"; }}"),
        &format!("in pure evaluation mode, 'fetchGit' doesn't fetch unlocked input 'git+file://{r}?exportIgnore=1&ref=main'"),
    );
    check_err(
        true,
        &format!("builtins.fetchTree {{ type = \"git\"; url = \"{r}\"; }}"),
        &format!("in pure evaluation mode, 'fetchTree' doesn't fetch unlocked input 'git+file://{r}?shallow=1'"),
    );
    check_err(
        false,
        &format!("builtins.fetchGit {{ url = \"{r}\"; rev = \"1111111111111111111111111111111111111111\"; }}"),
        "getting Git object '1111111111111111111111111111111111111111': object not found",
    );
    check_err(
        false,
        &format!("builtins.fetchGit {}/nonexist", d.display()),
        &format!(
            "Git repository \"{}/nonexist\" does not exist.",
            d.display()
        ),
    );
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn fetch_git_dirty_work_tree() {
    if !have_git() {
        eprintln!("skipped: no git");
        return;
    }
    let d = scratch("dirty");
    let repo = d.join("repo");
    make_repo(&repo);
    // Modified, staged-new, untracked and deleted files.
    write(&repo.join("a.txt"), "modified\n", 0o644);
    write(&repo.join("u.txt"), "untracked\n", 0o644);
    write(&repo.join("s.txt"), "staged\n", 0o644);
    git(&repo, &["add", "s.txt"], T0 + 200);
    fs::remove_file(repo.join("c.txt")).unwrap();
    let r = repo.display();
    check(
        &format!("builtins.fetchGit {r}"),
        "{ dirtyRev = \"2ab5f1f46634d3055df9af6da3c029e0392da386-dirty\"; dirtyShortRev = \"2ab5f1f-dirty\"; lastModified = 1700000100; lastModifiedDate = \"20231114221500\"; narHash = \"sha256-8zBiMc7GbHzanKuKEMPF23pzrVGYviNPB07Ma2a4cRk=\"; outPath = \"/nix/store/rx5pk5ijb8lvy9qsx58g53aisya5hcmc-source\"; rev = \"0000000000000000000000000000000000000000\"; revCount = 0; shortRev = \"0000000\"; submodules = false; }",
    );
    let tree = "{ dirtyRev = \"2ab5f1f46634d3055df9af6da3c029e0392da386-dirty\"; dirtyShortRev = \"2ab5f1f-dirty\"; lastModified = 1700000100; lastModifiedDate = \"20231114221500\"; narHash = \"sha256-8zBiMc7GbHzanKuKEMPF23pzrVGYviNPB07Ma2a4cRk=\"; outPath = \"/nix/store/rx5pk5ijb8lvy9qsx58g53aisya5hcmc-source\"; submodules = false; }";
    check(
        &format!("builtins.fetchTree {{ type = \"git\"; url = \"file://{r}\"; }}"),
        tree,
    );
    check(&format!("builtins.fetchTree \"git+file://{r}\""), tree);
    // With a ref, the commit is used, not the work tree.
    check(
        &format!("builtins.fetchGit {{ url = {r}; ref = \"main\"; }}"),
        HEAD_INFO,
    );
    let _ = fs::remove_dir_all(&d);
}

// ---- getFlake ---------------------------------------------------------------------------------

const FLAKE_NIX: &str = r#"{
  inputs.dep.url = "path:./dep";
  outputs = { self, dep }: {
    answer = dep.val;
    local = import ./local.nix;
    depIsSub = dep.outPath == self.outPath + "/dep";
  };
}
"#;

const FLAKE_LOCK: &str = r#"{
  "nodes": {
    "dep": {
      "locked": {
        "path": "./dep",
        "type": "path"
      },
      "original": {
        "path": "./dep",
        "type": "path"
      },
      "parent": []
    },
    "root": {
      "inputs": {
        "dep": "dep"
      }
    }
  },
  "root": "root",
  "version": 7
}
"#;

#[test]
fn get_flake_local_path() {
    let d = scratch("flake");
    let f = d.join("flk");
    write(
        &f.join("dep/flake.nix"),
        "{ outputs = { self }: { val = 42; }; }\n",
        0o644,
    );
    write(&f.join("flake.nix"), FLAKE_NIX, 0o644);
    write(&f.join("local.nix"), "\"local\"\n", 0o644);
    let expr = format!("let f = builtins.getFlake \"path:{}\"; in {{ inherit (f) answer local depIsSub narHash outPath; k = builtins.attrNames f.inputs.dep; }}", f.display());
    // Without a lock file, the relative input is locked in memory.
    check(
        &expr,
        "{ answer = 42; depIsSub = true; k = [ \"_type\" \"inputs\" \"outPath\" \"outputs\" \"sourceInfo\" \"val\" ]; local = \"local\"; narHash = \"sha256-Ndzg+Qtom4pLc3EbQsTgGnqtF/joAyNnvXfl49TH+wA=\"; outPath = \"/nix/store/jcla54cdhmk7dizxhwv0a3ccakmwczkn-source\"; }",
    );
    write(&f.join("flake.lock"), FLAKE_LOCK, 0o644);
    check(
        &expr,
        "{ answer = 42; depIsSub = false; k = [ \"_type\" \"inputs\" \"lastModified\" \"lastModifiedDate\" \"narHash\" \"outPath\" \"outputs\" \"sourceInfo\" \"val\" ]; local = \"local\"; narHash = \"sha256-TrP1p0Taq12kSpvDsmR4SxkiBguBfnmf7QJaXeYZQMA=\"; outPath = \"/nix/store/2z6y4nnl3zbbk38pqa63nf3lnz7k2zwx-source\"; }",
    );
    check_err(
        true,
        &format!("(builtins.getFlake \"{}\").answer", f.display()),
        &format!(
            "cannot call 'getFlake' on unlocked flake reference '{}'",
            f.display()
        ),
    );
    let _ = fs::remove_dir_all(&d);
}

// ---- gated and unsupported fetchers ----------------------------------------------------------------

#[test]
fn fetch_closure_needs_its_feature() {
    check("builtins ? fetchClosure", "false");
    assert!(fails(false, &[], "builtins.fetchClosure {}")
        .starts_with("attribute 'fetchClosure' missing"));
    let mut ev = evaluator(false, &["fetch-closure"]);
    assert_eq!(
        eval_with(&mut ev, "builtins ? fetchClosure").as_deref(),
        Ok("true")
    );
    assert!(fails(false, &["fetch-closure"], "builtins.fetchClosure {}")
        .starts_with("attribute 'fromPath' is missing in call to 'fetchClosure'"));
    assert!(fails(
        false,
        &["fetch-closure"],
        "builtins.fetchClosure { fromStore = \"https://cache.nixos.org\"; fromPath = /nix/store/ldbhlwhh39wha58rm61bkiiwm6j7211j-git-2.33.1; }"
    )
    .starts_with("unable to download 'https://cache.nixos.org/nix-cache-info'"));
}

#[test]
fn fetch_mercurial_without_hg() {
    let e = fails(
        false,
        &[],
        "builtins.fetchMercurial /tmp/nixvm-no-such-hg-repo",
    );
    assert!(
        e.starts_with("hg failed with exit code 1")
            || e.starts_with("fetching Mercurial repositories is not supported"),
        "{e}"
    );
}
