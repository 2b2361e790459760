use super::*;
use std::sync::Arc;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nixvm-local-{tag}-{}", std::process::id()));
    let _ = delete_path(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn open(root: &Path) -> LocalStore {
    LocalStore::open(StoreConfig::new(root, StoreDir::default())).unwrap()
}

#[test]
fn add_text_is_registered_with_cppnix_path() {
    let root = scratch("text");
    let s = open(&root);
    let p = s.add_text("foo", b"bar", &BTreeSet::new()).unwrap();
    // CppNix 2.34: builtins.toFile "foo" "bar".
    assert_eq!(p, "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo");
    assert!(s.is_valid(&p).unwrap());
    let real = s.to_real_path(&p);
    assert_eq!(
        real,
        root.join("nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")
    );
    assert_eq!(fs::read(&real).unwrap(), b"bar");
    let meta = fs::metadata(&real).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    let info = s.query_path_info(&p).unwrap().unwrap();
    assert_eq!(info.nar_hash, nar::nar_hash_bytes(b"bar").0);
    assert!(info.ca.unwrap().starts_with("text:sha256:"));
    // References must be valid, and are recorded.
    let q = s
        .add_text("c", p.as_bytes(), &BTreeSet::from([p.clone()]))
        .unwrap();
    assert_eq!(s.query_references(&q).unwrap(), BTreeSet::from([p.clone()]));
    let bad = s.add_text(
        "d",
        b"x",
        &BTreeSet::from(["/nix/store/12wigjpizrn8axaqxj288q1b751qmwya-a".to_string()]),
    );
    assert!(bad.unwrap_err().to_string().contains("is not valid"));
    // Nothing is left in the work area.
    assert_eq!(
        fs::read_dir(root.join("nix/store/.nixvm-tmp"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn re_adding_is_a_no_op() {
    let root = scratch("readd");
    let s = open(&root);
    let p1 = s.add_text("foo", b"bar", &BTreeSet::new()).unwrap();
    let t1 = s.query_path_info(&p1).unwrap().unwrap().registration_time;
    let p2 = s.add_text("foo", b"bar", &BTreeSet::new()).unwrap();
    assert_eq!(p1, p2);
    assert_eq!(s.count_valid().unwrap(), 1);
    assert_eq!(
        s.query_path_info(&p1).unwrap().unwrap().registration_time,
        t1
    );
    // A second process (connection) sees it too.
    drop(s);
    let s2 = open(&root);
    assert!(s2.is_valid(&p1).unwrap());
}

#[test]
fn stale_unregistered_files_are_replaced() {
    let root = scratch("stale");
    let s = open(&root);
    // What a process killed between rename and registration leaves behind.
    let real = root.join("nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo");
    fs::create_dir_all(real.join("junk")).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o555)).unwrap();
    let p = s.add_text("foo", b"bar", &BTreeSet::new()).unwrap();
    assert_eq!(fs::read(s.to_real_path(&p)).unwrap(), b"bar");
    // A killed process's work files are removed when the store is next opened.
    let leftover = root.join("nix/store/.nixvm-tmp/999999999-0-x");
    fs::create_dir_all(leftover.join("d")).unwrap();
    let live = root.join(format!("nix/store/.nixvm-tmp/{}-999-y", std::process::id()));
    fs::write(&live, b"in use").unwrap();
    drop(s);
    let _s = open(&root);
    assert!(!leftover.exists());
    assert!(live.exists());
}

#[test]
fn concurrent_adds_from_many_connections() {
    let root = Arc::new(scratch("concurrent"));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                let s = open(&root);
                let mut out = Vec::new();
                for j in 0..10 {
                    // Every thread adds the shared texts and some of its own.
                    out.push(
                        s.add_text("shared", format!("{j}").as_bytes(), &BTreeSet::new())
                            .unwrap(),
                    );
                    out.push(
                        s.add_text("own", format!("{i}-{j}").as_bytes(), &BTreeSet::new())
                            .unwrap(),
                    );
                }
                out
            })
        })
        .collect();
    let mut all = BTreeSet::new();
    for h in handles {
        all.extend(h.join().unwrap());
    }
    let s = open(&root);
    assert_eq!(all.len(), 10 + 60);
    assert_eq!(s.count_valid().unwrap(), 70);
    for p in &all {
        assert!(s.is_valid(p).unwrap());
        assert!(s.to_real_path(p).exists());
    }
    // No lock files are left behind.
    let locks = fs::read_dir(root.join("nix/store"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".lock")
        })
        .count();
    assert_eq!(locks, 0);
}

fn make_tree(root: &Path) -> PathBuf {
    let t = root.join("src");
    fs::create_dir_all(t.join("sub")).unwrap();
    fs::write(t.join("a.txt"), b"hello\n").unwrap();
    fs::write(t.join("skip.o"), b"object").unwrap();
    fs::write(t.join("sub/run.sh"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(t.join("sub/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("a.txt", t.join("link")).unwrap();
    t
}

#[test]
fn add_path_matches_hash_only_computation() {
    let root = scratch("addpath");
    let t = make_tree(&root);
    let s = open(&root.join("store"));
    let sd = StoreDir::default();
    // Unfiltered recursive.
    let (p, h) = s
        .add_path::<Error, fn(&Path, FileType) -> Result<bool, Error>>(
            "src",
            &t,
            ContentAddressMethod::Recursive,
            None,
        )
        .unwrap();
    let (expect, _) = nar::nar_hash_path(&t).unwrap();
    assert_eq!(h, expect);
    let ca = ContentAddress {
        method: ContentAddressMethod::Recursive,
        hash: expect,
    };
    assert_eq!(
        p,
        sd.print(
            &sd.make_fixed_output_path("src", &ca, [""; 0], false)
                .unwrap()
        )
    );
    let real = s.to_real_path(&p);
    assert_eq!(nar::nar_hash_path(&real).unwrap().0, expect);
    assert_eq!(
        fs::read_link(real.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert_ne!(
        fs::metadata(real.join("sub/run.sh"))
            .unwrap()
            .permissions()
            .mode()
            & 0o100,
        0
    );
    // Filtered: the filter is called once per entry and the result agrees with hashing the
    // filtered tree in place.
    let mut calls = Vec::new();
    let mut f = |p: &Path, _t: FileType| -> Result<bool, Error> {
        calls.push(p.to_path_buf());
        Ok(!p.to_string_lossy().ends_with(".o"))
    };
    let (pf, hf) = s
        .add_path("src", &t, ContentAddressMethod::Recursive, Some(&mut f))
        .unwrap();
    assert_eq!(calls.len(), 5);
    let (expect_f, _) = nar::nar_hash_path_filtered(&t, &mut |p: &Path, _| {
        Ok::<bool, Error>(!p.to_string_lossy().ends_with(".o"))
    })
    .unwrap();
    assert_eq!(hf, expect_f);
    assert!(!s.to_real_path(&pf).join("skip.o").exists());
    // Flat.
    let (pflat, _) = s
        .add_path::<Error, fn(&Path, FileType) -> Result<bool, Error>>(
            "a.txt",
            &t.join("a.txt"),
            ContentAddressMethod::Flat,
            None,
        )
        .unwrap();
    // CppNix 2.34: builtins.path { path = ./a.txt; recursive = false; }.
    assert_eq!(pflat, "/nix/store/fdwm55r4skpypx1gwzb7x69ckav1rv09-a.txt");
    assert_eq!(fs::read(s.to_real_path(&pflat)).unwrap(), b"hello\n");
}

#[test]
fn derivations_record_outputs() {
    let root = scratch("drv");
    let s = open(&root);
    let src = s
        .add_text("builder.sh", b"echo hi > $out", &BTreeSet::new())
        .unwrap();
    let mut drv = Derivation {
        name: "hello".into(),
        platform: "x86_64-linux".into(),
        builder: "/bin/sh".into(),
        args: vec![src.clone()],
        ..Default::default()
    };
    drv.input_srcs.insert(src.clone());
    drv.env.insert("out".into(), String::new());
    drv.outputs
        .insert("out".into(), crate::derivation::Output::Deferred);
    let mut cache = crate::derivation::ModuloCache::new();
    drv.fill_in_output_paths(&StoreDir::default(), &mut cache, &mut |p: &str| {
        Err(crate::DerivationError::InputNotFound(p.to_string()).into())
    })
    .unwrap();
    let p = s.add_derivation(&drv).unwrap();
    let (expect, _) = drv.compute_drv_path(&StoreDir::default()).unwrap();
    assert_eq!(p, expect);
    assert_eq!(s.query_references(&p).unwrap(), BTreeSet::from([src]));
    let outs = s.query_derivation_outputs(&p).unwrap();
    let out = outs.get("out").unwrap().clone();
    assert_eq!(
        s.query_valid_derivers(&out).unwrap(),
        vec![(p.clone(), "out".to_string())]
    );
    assert_eq!(s.read_derivation(&p).unwrap(), drv);
}

#[test]
fn batched_texts_are_registered_on_flush() {
    let root = scratch("batch");
    let s = open(&root);
    s.set_batch_writes(true).unwrap();
    let a = s.add_text("a", b"x", &BTreeSet::new()).unwrap();
    // A reference to a pending path is fine: both are registered in one transaction.
    let b = s
        .add_text("b", a.as_bytes(), &BTreeSet::from([a.clone()]))
        .unwrap();
    assert!(s.is_valid(&b).unwrap());
    assert_eq!(s.query_references(&b).unwrap(), BTreeSet::from([a.clone()]));
    // Another process does not see them yet, and its own add of `a` waits for our lock.
    let other = open(&root);
    assert!(!other.is_valid(&a).unwrap());
    assert!(
        crate::lock::PathLock::try_lock(&root.join(format!("nix/store/{}.lock", &a[11..])))
            .unwrap()
            .is_none()
    );
    s.flush().unwrap();
    assert!(other.is_valid(&a).unwrap());
    assert_eq!(
        other.query_references(&b).unwrap(),
        BTreeSet::from([a.clone()])
    );
    // Dropping the store flushes too.
    let c = s.add_text("c", b"y", &BTreeSet::new()).unwrap();
    drop(s);
    assert!(other.is_valid(&c).unwrap());
    // More than a batch's worth at once.
    let s = open(&root);
    s.set_batch_writes(true).unwrap();
    for i in 0..(BATCH_LIMIT + 10) {
        s.add_text("n", i.to_string().as_bytes(), &BTreeSet::new())
            .unwrap();
    }
    assert!(other.count_valid().unwrap() >= (BATCH_LIMIT + 3) as u64);
}
