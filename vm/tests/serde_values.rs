//! serde between Nix values and Rust data (issue 17, item 2): reading
//! forces only what the type asks for, errors say where, and data survives
//! Rust → Nix → Rust unchanged.

use nixvm::{ErrorKind, Evaluator};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Mode {
    Off,
    Fixed(i64),
    Range { lo: i64, hi: i64 },
    Pair(String, bool),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Config {
    name: String,
    port: u16,
    ratio: f64,
    enabled: bool,
    tags: Vec<String>,
    limits: BTreeMap<String, i64>,
    parent: Option<Box<Config>>,
    mode: Mode,
    #[serde(default)]
    extra: Option<u32>,
}

fn eval(ev: &mut Evaluator, src: &str) -> nixvm::Value {
    ev.eval_str(src, Path::new("/")).unwrap()
}

#[test]
fn a_nix_set_reads_into_a_struct() {
    let mut ev = Evaluator::new();
    let v = eval(
        &mut ev,
        r#"let base = { name = "base"; port = 1; ratio = 1; enabled = false; tags = [ ];
                         limits = { }; parent = null; mode = "Off"; };
           in base // {
             name = "svc-${toString 2}"; port = 8000 + 80; ratio = 0.5; enabled = true;
             tags = map (x: "t${x}") [ "1" "2" ]; limits = { cpu = 2; mem = 1024; };
             parent = base; mode = { Range = { lo = 1; hi = 9; }; };
             comment = throw "never read";
           }"#,
    );
    let c: Config = ev.deserialize(&v).unwrap();
    let base = Config {
        name: "base".into(),
        port: 1,
        ratio: 1.0,
        enabled: false,
        tags: vec![],
        limits: BTreeMap::new(),
        parent: None,
        mode: Mode::Off,
        extra: None,
    };
    assert_eq!(
        c,
        Config {
            name: "svc-2".into(),
            port: 8080,
            ratio: 0.5,
            enabled: true,
            tags: vec!["t1".into(), "t2".into()],
            limits: [("cpu".into(), 2), ("mem".into(), 1024)].into(),
            parent: Some(Box::new(base)),
            mode: Mode::Range { lo: 1, hi: 9 },
            extra: None,
        }
    );
}

#[test]
fn a_wrong_shape_is_an_error_that_says_where() {
    let mut ev = Evaluator::new();
    let v = eval(&mut ev, r#"{ a = { port = "eighty"; }; }"#);
    #[derive(Debug, Deserialize)]
    struct Inner {
        #[allow(dead_code)]
        port: u16,
    }
    #[derive(Debug, Deserialize)]
    struct Outer {
        #[allow(dead_code)]
        a: Inner,
    }
    let e = ev.deserialize::<Outer>(&v).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Type);
    assert!(
        e.msg.contains("invalid type: string \"eighty\""),
        "{}",
        e.msg
    );
    let frames: Vec<&str> = e.trace.iter().map(|t| t.msg.as_str()).collect();
    assert_eq!(
        frames,
        [
            "while reading attribute 'port'",
            "while reading attribute 'a'"
        ]
    );
    // Out of range for the Rust type.
    let v = eval(&mut ev, "{ port = 70000; }");
    assert!(ev.deserialize::<Inner>(&v).is_err());
    // An evaluation error inside passes through with its kind.
    let v = eval(&mut ev, "{ port = 1 / 0; }");
    assert_eq!(
        ev.deserialize::<Inner>(&v).unwrap_err().kind,
        ErrorKind::DivisionByZero
    );
    // A function has no Rust form.
    let v = eval(&mut ev, "[ (x: x) ]");
    let e = ev.deserialize::<Vec<i64>>(&v).unwrap_err();
    assert!(e.msg.starts_with("cannot read a function"), "{}", e.msg);
    assert_eq!(e.trace[0].msg, "while reading list element 0");
}

#[test]
fn rust_data_becomes_a_value_nix_code_can_use() {
    let mut ev = Evaluator::new();
    let c = Config {
        name: "x".into(),
        port: 22,
        ratio: 2.5,
        enabled: true,
        tags: vec!["a".into()],
        limits: [("n".into(), -3)].into(),
        parent: None,
        mode: Mode::Pair("p".into(), true),
        extra: Some(7),
    };
    let v = ev.serialize(&c).unwrap();
    let f = eval(
        &mut ev,
        "c: [ c.port c.name c.mode.Pair c.parent c.extra (builtins.attrNames c.limits) ]",
    );
    let r = ev.call(f, v).and_then(|r| ev.force_deep(r)).unwrap();
    assert_eq!(ev.print(&r), "[ 22 \"x\" [ \"p\" true ] null 7 [ \"n\" ] ]");
    let too_big = ev.serialize(&u64::MAX).unwrap_err();
    assert_eq!(too_big.kind, ErrorKind::Overflow);
    // A map whose serializer gives one key twice.
    struct Twice;
    impl Serialize for Twice {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_map([("a", 1), ("b", 2), ("a", 3)])
        }
    }
    let e = ev.serialize(&Twice).unwrap_err();
    assert_eq!(e.msg, "attribute 'a' given twice");
    let mut bad_keys = BTreeMap::new();
    bad_keys.insert(1, 2);
    assert!(ev.serialize(&bad_keys).is_err());
}

fn config() -> impl Strategy<Value = Config> {
    let leaf = (
        "[a-z]{0,8}",
        any::<u16>(),
        -1e9f64..1e9,
        any::<bool>(),
        prop::collection::vec("[ -~]{0,6}", 0..4),
        prop::collection::btree_map("[a-z]{1,5}", any::<i64>(), 0..4),
        prop_oneof![
            Just(Mode::Off),
            any::<i64>().prop_map(Mode::Fixed),
            (any::<i64>(), any::<i64>()).prop_map(|(lo, hi)| Mode::Range { lo, hi }),
            ("[a-z]{0,4}", any::<bool>()).prop_map(|(s, b)| Mode::Pair(s, b)),
        ],
        prop::option::of(any::<u32>()),
    )
        .prop_map(
            |(name, port, ratio, enabled, tags, limits, mode, extra)| Config {
                name,
                port,
                ratio,
                enabled,
                tags,
                limits,
                parent: None,
                mode,
                extra,
            },
        );
    leaf.prop_recursive(3, 8, 1, |inner| {
        (inner.clone(), inner).prop_map(|(mut a, b)| {
            a.parent = Some(Box::new(b));
            a
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn data_survives_a_round_trip_through_nix(c in config()) {
        let mut ev = Evaluator::new();
        let v = ev.serialize(&c).unwrap();
        // Through Nix code too: a copy made by `//` and `builtins.fromJSON (toJSON …)`.
        let f = eval(&mut ev, "c: (builtins.fromJSON (builtins.toJSON c)) // { }");
        let copied = ev.call(f, v.clone()).unwrap();
        let back: Config = ev.deserialize(&v).unwrap();
        prop_assert_eq!(&back, &c);
        let again: Config = ev.deserialize(&copied).unwrap();
        prop_assert_eq!(&again.name, &c.name);
        prop_assert_eq!(&again.mode, &c.mode);
        prop_assert_eq!(&again.limits, &c.limits);
    }
}
