//! The worker-protocol client against a real nix-daemon (a private one on a
//! throw-away store, see common/daemon.rs), every operation an evaluator
//! uses, checked with CppNix's own nix-store where the daemon's answer alone
//! would prove nothing.

mod common;

use common::daemon::PrivateDaemon;
use nixvm_store::daemon::{stderr_logger, BuildMode, Connection, DerivedPath, LVL_INFO};
use nixvm_store::db::PathInfo;
use nixvm_store::derivation::{Derivation, Output};
use nixvm_store::{
    nar, ContentAddress, ContentAddressMethod, Hash, HashAlgo, HashFormat, StoreDir,
};
use std::collections::{BTreeMap, BTreeSet};

fn io_err(e: std::io::Error) -> nixvm_store::Error {
    nixvm_store::Error::Msg(e.to_string())
}

fn connect(d: &PrivateDaemon) -> Connection {
    Connection::open(&d.socket, stderr_logger(LVL_INFO, true)).expect("connected")
}

fn text_path(name: &str, contents: &str, refs: &BTreeSet<String>) -> String {
    let sd = StoreDir::new("/nix/store");
    let h = Hash::of(HashAlgo::Sha256, contents.as_bytes());
    sd.print(&sd.make_text_path(name, &h, refs).unwrap())
}

fn requisites(d: &PrivateDaemon, path: &str) -> BTreeSet<String> {
    let out = d
        .nix("nix-store")
        .args(["-q", "--requisites", path])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn handshake_and_validity() {
    let Some(d) = PrivateDaemon::start("handshake") else {
        return;
    };
    let mut c = connect(&d);
    assert!(c.version >= (1 << 8 | 21));
    if c.version & 0xff >= 33 {
        assert!(c
            .daemon_nix_version
            .as_deref()
            .is_some_and(|v| !v.is_empty()));
    }
    let missing = "/nix/store/00000000000000000000000000000000-nothing";
    assert!(!c.is_valid_path(missing).unwrap());
    assert_eq!(c.query_path_info(missing).unwrap(), None);
    // An error from the daemon ends the operation, not the connection.
    let e = c.ensure_path(missing).unwrap_err().to_string();
    assert!(e.contains("nothing"), "{e}");
    assert!(!c.is_valid_path(missing).unwrap());
}

#[test]
fn adds_text_nar_and_batches() {
    let Some(d) = PrivateDaemon::start("adds") else {
        return;
    };
    let mut c = connect(&d);
    // A text file, as toFile and .drv files are added.
    let none = BTreeSet::new();
    let info = c
        .add_ca("greeting", "text", &none, &mut |w| {
            w.write_all(b"hello").map_err(io_err)
        })
        .unwrap();
    assert_eq!(info.path, text_path("greeting", "hello", &none));
    assert_eq!(std::fs::read(d.real(&info.path)).unwrap(), b"hello");
    assert_eq!(
        (info.nar_hash, info.nar_size),
        nar::nar_hash_bytes(b"hello")
    );
    assert!(info
        .ca
        .as_deref()
        .is_some_and(|ca| ca.starts_with("text:sha256:")));
    c.add_temp_root(&info.path).unwrap();

    // A directory as a NAR, as sources are added.
    let src = d.dir.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/a.txt"), "A").unwrap();
    std::os::unix::fs::symlink("sub/a.txt", src.join("link")).unwrap();
    let mut bytes = Vec::new();
    nar::dump_path(&src, &mut bytes).unwrap();
    let tree = c
        .add_ca("src", "fixed:r", &none, &mut |w| {
            w.write_all(&bytes).map_err(io_err)
        })
        .unwrap();
    let sd = StoreDir::new("/nix/store");
    let (h, _) = nar::nar_hash_path(&src).unwrap();
    let ca = ContentAddress {
        method: ContentAddressMethod::Recursive,
        hash: h,
    };
    let want = sd.print(
        &sd.make_fixed_output_path("src", &ca, [""; 0], false)
            .unwrap(),
    );
    assert_eq!(tree.path, want);
    assert_eq!(
        std::fs::read(d.real(&tree.path).join("sub/a.txt")).unwrap(),
        b"A"
    );

    // A batch, referrer after reference, as an evaluation's .drv files go.
    let base = text_path("base", "base", &none);
    let refs: BTreeSet<String> = [base.clone(), tree.path.clone()].into();
    let top_text = format!("uses {base}");
    let top = text_path("top", &top_text, &refs);
    let item = |path: &str, text: &str, refs: &BTreeSet<String>| {
        let mut n = Vec::new();
        nar::dump_bytes(text.as_bytes(), &mut n).unwrap();
        let (nar_hash, nar_size) = nar::nar_hash_bytes(text.as_bytes());
        let h = Hash::of(HashAlgo::Sha256, text.as_bytes());
        (
            PathInfo {
                path: path.to_string(),
                nar_hash,
                nar_size,
                references: refs.clone(),
                deriver: None,
                ca: Some(format!("text:{}", h.to_string(HashFormat::Nix32, true))),
                registration_time: 0,
            },
            n,
        )
    };
    c.add_multiple(&[item(&base, "base", &none), item(&top, &top_text, &refs)])
        .unwrap();
    let valid = c
        .query_valid_paths(
            &[
                base.clone(),
                top.clone(),
                "/nix/store/00000000000000000000000000000000-x".into(),
            ]
            .into(),
        )
        .unwrap();
    assert_eq!(valid, [base.clone(), top.clone()].into());
    let info = c.query_path_info(&top).unwrap().expect("valid");
    assert_eq!(info.references, refs);
    let want: BTreeSet<String> = [base, tree.path, top.clone()].into();
    assert_eq!(requisites(&d, &top), want, "CppNix sees the closure");
}

/// A fixed-output derivation built by the daemon with /bin/sh.
fn fod(c: &mut Connection, contents: &str) -> (String, String) {
    let sd = StoreDir::new("/nix/store");
    let ca = ContentAddress {
        method: ContentAddressMethod::Flat,
        hash: Hash::of(HashAlgo::Sha256, contents.as_bytes()),
    };
    let out = sd.print(
        &sd.make_fixed_output_path("fod", &ca, [""; 0], false)
            .unwrap(),
    );
    let env: BTreeMap<String, String> = [
        ("builder", "/bin/sh"),
        ("name", "fod"),
        ("out", out.as_str()),
        ("outputHash", &ca.hash.to_string(HashFormat::Nix32, false)),
        ("outputHashAlgo", "sha256"),
        ("outputHashMode", "flat"),
        ("system", "x86_64-linux"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let drv = Derivation {
        name: "fod".into(),
        outputs: [("out".to_string(), Output::CAFixed(ca))].into(),
        input_srcs: BTreeSet::new(),
        input_drvs: BTreeMap::new(),
        platform: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        args: vec!["-c".into(), format!("printf '{contents}' > $out")],
        env,
    };
    let text = drv.unparse(&sd).unwrap();
    let info = c
        .add_ca("fod.drv", "text", &BTreeSet::new(), &mut |w| {
            w.write_all(text.as_bytes()).map_err(io_err)
        })
        .unwrap();
    (info.path, out)
}

#[test]
fn builds_and_roots() {
    let Some(d) = PrivateDaemon::start("builds") else {
        return;
    };
    let mut c = connect(&d);
    let (drv, out) = fod(&mut c, "built");
    let target = DerivedPath::Built {
        drv: drv.clone(),
        outputs: vec!["out".into()],
    };
    let missing = c.query_missing(std::slice::from_ref(&target)).unwrap();
    assert_eq!(missing.will_build, [drv.clone()].into());
    let map = c.query_derivation_output_map(&drv).unwrap();
    assert_eq!(map.get("out"), Some(&Some(out.clone())));
    c.build_paths(&[target], BuildMode::Normal).unwrap();
    assert_eq!(std::fs::read(d.real(&out)).unwrap(), b"built");
    assert!(c.is_valid_path(&out).unwrap());
    assert_eq!(c.query_valid_derivers(&out).unwrap(), [drv.clone()].into());

    // An indirect root: a symlink the collector follows.
    let link = d.dir.join("result");
    std::os::unix::fs::symlink(&out, &link).unwrap();
    c.add_indirect_root(link.to_str().unwrap()).unwrap();
    let roots = d
        .nix("nix-store")
        .args(["--gc", "--print-roots"])
        .output()
        .unwrap();
    let roots = String::from_utf8_lossy(&roots.stdout);
    assert!(roots.contains(link.to_str().unwrap()), "{roots}");

    // A path that is not there and cannot be built is the daemon's error.
    let e = c
        .build_paths(
            &[DerivedPath::Opaque(
                "/nix/store/00000000000000000000000000000000-y".into(),
            )],
            BuildMode::Normal,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("00000000000000000000000000000000-y"),
        "{e}"
    );
    // All outputs ("drv!*").
    let (all, out2) = fod(&mut c, "x");
    c.build_paths(
        &[DerivedPath::Built {
            drv: all,
            outputs: vec![],
        }],
        BuildMode::Normal,
    )
    .unwrap();
    assert!(c.is_valid_path(&out2).unwrap());
}
