//! Realising derivations in a scratch store through the store crate's API.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use nixvm_store::build::{BuildSettings, Builder, DerivedPath};
use nixvm_store::derivation::{Derivation, ModuloCache, Output};
use nixvm_store::{LocalStore, StoreConfig, StoreDir};

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nixvm-storebuild-{tag}-{}", std::process::id()));
    if d.exists() {
        nixvm_store::local::delete_path(&d).unwrap();
    }
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn open(root: &PathBuf) -> LocalStore {
    LocalStore::open(StoreConfig::new(root, StoreDir::default())).unwrap()
}

fn namespaces_ok() -> bool {
    match nixvm_store::sandbox::namespaces_available() {
        Ok(()) => true,
        Err(why) => {
            eprintln!("SKIPPED: a chroot store cannot build here ({why})");
            false
        }
    }
}

fn settings() -> BuildSettings {
    BuildSettings {
        jobs: 2,
        print_build_logs: false,
        ..Default::default()
    }
}

/// Instantiate a `/bin/sh -c script` derivation with the given input derivations (all
/// outputs used) and write it to the store.
fn instantiate(
    store: &LocalStore,
    name: &str,
    script: &str,
    outputs: &[&str],
    inputs: &[&str],
) -> (String, Derivation) {
    let sd = StoreDir::default();
    let mut drv = Derivation {
        name: name.into(),
        platform: BuildSettings::default().system,
        builder: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        ..Default::default()
    };
    for i in inputs {
        let idrv = store.read_derivation(i).unwrap();
        drv.input_drvs
            .insert(i.to_string(), idrv.outputs.keys().cloned().collect());
    }
    for o in outputs {
        drv.env.insert(o.to_string(), String::new());
        drv.outputs.insert(o.to_string(), Output::Deferred);
    }
    let mut cache = ModuloCache::new();
    drv.fill_in_output_paths(&sd, &mut cache, &mut |p: &str| store.read_derivation(p))
        .unwrap();
    let p = store.add_derivation(&drv).unwrap();
    (p, drv)
}

fn out_of(store: &LocalStore, drv: &str, o: &str) -> String {
    store.query_derivation_outputs(drv).unwrap()[o].clone()
}

fn target(d: &str) -> DerivedPath {
    DerivedPath {
        drv_path: d.to_string(),
        outputs: BTreeSet::new(),
    }
}

#[test]
fn references_are_scanned_and_rebuilds_are_skipped() {
    if !namespaces_ok() {
        return;
    }
    let root = scratch("refs");
    let store = open(&root);
    let (a, _) = instantiate(&store, "a", "echo a > $out", &["out"], &[]);
    let a_out = out_of(&store, &a, "out");
    // b refers to a's output and to its own 'dev' output and itself; c refers to nothing.
    let (b, _) = instantiate(
        &store,
        "b",
        &format!("echo {a_out} > $out; echo $out > $dev"),
        &["out", "dev"],
        &[&a],
    );
    let (c, _) = instantiate(&store, "c", "echo plain > $out", &["out"], &[&b]);
    let builder = Builder::new(&store, settings());
    let report = builder.realise(&[target(&c)]).unwrap();
    assert_eq!(report.built.len(), 3);
    let b_out = out_of(&store, &b, "out");
    let b_dev = out_of(&store, &b, "dev");
    let c_out = out_of(&store, &c, "out");
    assert_eq!(
        store.query_references(&b_out).unwrap(),
        BTreeSet::from([a_out.clone()])
    );
    assert_eq!(
        store.query_references(&b_dev).unwrap(),
        BTreeSet::from([b_out.clone()])
    );
    assert!(store.query_references(&c_out).unwrap().is_empty());
    let info = store.query_path_info(&b_out).unwrap().unwrap();
    assert_eq!(info.deriver.as_deref(), Some(b.as_str()));
    // Outputs are read-only with mtime 1.
    let meta = std::fs::metadata(store.to_real_path(&c_out)).unwrap();
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.permissions().mode() & 0o777, 0o444);
    assert_eq!(meta.mtime(), 1);
    // Nothing to do the second time.
    let again = builder.realise(&[target(&c)]).unwrap();
    assert!(again.built.is_empty());
    assert_eq!(again.outputs[&c]["out"], c_out);
}

#[test]
fn stale_outputs_of_an_interrupted_build_are_replaced() {
    if !namespaces_ok() {
        return;
    }
    let root = scratch("stale");
    let store = open(&root);
    let (a, _) = instantiate(&store, "a", "echo fresh > $out", &["out"], &[]);
    let a_out = out_of(&store, &a, "out");
    // What a build killed half-way leaves: files at the output path, never registered.
    std::fs::write(store.to_real_path(&a_out), "half-written").unwrap();
    assert!(!store.is_valid(&a_out).unwrap());
    Builder::new(&store, settings())
        .realise(&[target(&a)])
        .unwrap();
    assert!(store.is_valid(&a_out).unwrap());
    assert_eq!(
        std::fs::read_to_string(store.to_real_path(&a_out)).unwrap(),
        "fresh\n"
    );
}

#[test]
fn concurrent_builders_build_once() {
    if !namespaces_ok() {
        return;
    }
    let root = Arc::new(scratch("concurrent"));
    let (d, out) = {
        let store = open(&root);
        let (d, _) = instantiate(
            &store,
            "slow",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo done > $out",
            &["out"],
            &[],
        );
        let out = out_of(&store, &d, "out");
        (d, out)
    };
    // Two "processes" (separate store handles and database connections).
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let root = root.clone();
            let d = d.clone();
            std::thread::spawn(move || {
                let store = open(&root);
                Builder::new(&store, settings())
                    .realise(&[target(&d)])
                    .unwrap()
                    .built
                    .len()
            })
        })
        .collect();
    let built: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(built, 1, "the output was built more than once");
    let store = open(&root);
    assert!(store.is_valid(&out).unwrap());
}

#[test]
fn structured_attrs_and_pass_as_file_environment() {
    let root = scratch("env");
    let store = open(&root);
    let builder = Builder::new(&store, settings());
    let build_dir = root.join("b");
    std::fs::create_dir_all(&build_dir).unwrap();
    let mut drv = Derivation {
        name: "s".into(),
        ..Default::default()
    };
    drv.env.insert(
        "__json".into(),
        r#"{"name":"s","list":["a","b c"],"n":3,"flag":true,"set":{"k":"v"}}"#.into(),
    );
    drv.outputs.insert(
        "out".into(),
        Output::InputAddressed {
            path: "/nix/store/00000000000000000000000000000000-s".into(),
        },
    );
    let outputs = [(
        "out".to_string(),
        "/nix/store/00000000000000000000000000000000-s".to_string(),
    )]
    .into_iter()
    .collect();
    let env = builder
        .environment(&drv, &outputs, &build_dir, "/build")
        .unwrap();
    assert_eq!(env["NIX_ATTRS_JSON_FILE"], "/build/.attrs.json");
    assert_eq!(env["NIX_ATTRS_SH_FILE"], "/build/.attrs.sh");
    assert!(!env.contains_key("out"));
    assert!(!env.contains_key("__json"));
    for k in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP"] {
        assert_eq!(env[k], "/build");
    }
    assert_eq!(env["HOME"], "/homeless-shelter");
    assert_eq!(env["PATH"], "/path-not-set");
    assert_eq!(env["NIX_STORE"], "/nix/store");
    assert_eq!(env["NIX_LOG_FD"], "2");
    assert_eq!(env["TERM"], "xterm-256color");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(build_dir.join(".attrs.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["outputs"]["out"],
        "/nix/store/00000000000000000000000000000000-s"
    );
    assert_eq!(json["n"], 3);
    let sh = std::fs::read_to_string(build_dir.join(".attrs.sh")).unwrap();
    assert!(sh.contains("declare -a list=('a' 'b c' )"), "{sh}");
    assert!(sh.contains("declare -i n=3"), "{sh}");
    assert!(sh.contains("declare flag=1"), "{sh}");
    assert!(sh.contains("declare -A set=(['k']='v' )"), "{sh}");
    assert!(
        sh.contains(
            "declare -A outputs=(['out']='/nix/store/00000000000000000000000000000000-s' )"
        ),
        "{sh}"
    );

    // passAsFile: the value goes to .attr-<nix32 sha256 of the name>.
    let mut drv2 = drv.clone();
    drv2.env.clear();
    drv2.env.insert("passAsFile".into(), "big other".into());
    drv2.env.insert("big".into(), "contents".into());
    drv2.env.insert(
        "out".into(),
        "/nix/store/00000000000000000000000000000000-s".into(),
    );
    let env = builder
        .environment(&drv2, &outputs, &build_dir, "/build")
        .unwrap();
    assert!(!env.contains_key("big"));
    let p = &env["bigPath"];
    assert!(p.starts_with("/build/.attr-"), "{p}");
    let file = build_dir.join(p.trim_start_matches("/build/"));
    assert_eq!(std::fs::read_to_string(file).unwrap(), "contents");
    assert_eq!(env["out"], "/nix/store/00000000000000000000000000000000-s");
}

#[test]
fn direct_store_builds_without_namespaces() {
    // A store whose files are where their paths say: no namespace is needed at all.
    let root = scratch("direct");
    let store_dir = root.join("store");
    let config = StoreConfig {
        root: PathBuf::from("/"),
        store_dir: StoreDir::new(store_dir.to_string_lossy().into_owned()),
        state_dir: root.join("state"),
    };
    assert!(config.is_direct());
    let store = LocalStore::open(config).unwrap();
    let sd = store.store_dir().clone();
    let mk = |name: &str, script: &str, inputs: &[&str]| {
        let mut drv = Derivation {
            name: name.into(),
            platform: BuildSettings::default().system,
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            ..Default::default()
        };
        for i in inputs {
            drv.input_drvs
                .insert(i.to_string(), BTreeSet::from(["out".to_string()]));
        }
        drv.env.insert("out".into(), String::new());
        drv.outputs.insert("out".into(), Output::Deferred);
        drv.fill_in_output_paths(&sd, &mut ModuloCache::new(), &mut |p: &str| {
            store.read_derivation(p)
        })
        .unwrap();
        store.add_derivation(&drv).unwrap()
    };
    let a = mk("a", "echo a > $out", &[]);
    let a_out = out_of(&store, &a, "out");
    let b = mk(
        "b",
        &format!("read x < {a_out}; echo \"$x $PWD\" > $out"),
        &[&a],
    );
    let settings = BuildSettings {
        sandbox: nixvm_store::build::SandboxMode::Off,
        print_build_logs: false,
        ..Default::default()
    };
    let report = Builder::new(&store, settings)
        .realise(&[target(&b)])
        .unwrap();
    assert_eq!(report.built.len(), 2);
    let b_out = &report.outputs[&b]["out"];
    assert!(b_out.starts_with(store_dir.to_str().unwrap()));
    let text = std::fs::read_to_string(b_out).unwrap();
    assert!(text.starts_with("a /"), "{text}");
    assert_eq!(store.query_references(b_out).unwrap(), BTreeSet::new());
}
