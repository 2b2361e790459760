//! Property tests of the value printers and of JSON conversion:
//! - printing any value (`--eval` form, error-message form, `--xml`) never
//!   panics;
//! - integers and strings print as CppNix's `printValue` does, and a printed
//!   string is a Nix literal that evaluates back to the same string;
//! - `builtins.fromJSON (builtins.toJSON v)` gives back `v` for JSON-able
//!   values, with the same types (an int stays an int, a float a float).

use nixvm::print::{print_ambiguous, show_short};
use nixvm::value::{Attrs, Value, View};
use nixvm::Evaluator;
use nixvm_compiler::Symbol;
use proptest::prelude::*;
use std::path::Path;

/// A value description; `build` turns it into a `Value` (values hold `Rc`s,
/// so the strategies generate these instead).
#[derive(Clone, Debug)]
enum Gen {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Path(String),
    List(Vec<Gen>),
    Attrs(Vec<(String, Gen)>),
    /// A value only evaluation makes: a lambda, a primop, a partial
    /// application or an unevaluated thunk.
    Evaluated(&'static str),
    /// The same set or list twice, sharing one allocation.
    Twice(Box<Gen>),
}

fn build(ev: &mut Evaluator, g: &Gen) -> Value {
    match g {
        Gen::Null => Value::Null,
        Gen::Bool(b) => Value::Bool(*b),
        Gen::Int(n) => Value::Int(*n),
        Gen::Float(f) => Value::Float(*f),
        Gen::Str(s) => Value::str(s),
        Gen::Path(p) => Value::path(p),
        Gen::List(items) => Value::list(items.iter().map(|i| build(ev, i)).collect()),
        Gen::Attrs(entries) => Value::attrs(Attrs::from_unsorted(
            entries
                .iter()
                .map(|(k, v)| (Symbol::intern(k), build(ev, v)))
                .collect(),
        )),
        Gen::Evaluated(src) => ev.lazy_str(src, Path::new("/")).expect("fixed source"),
        Gen::Twice(inner) => {
            let v = build(ev, inner);
            Value::list(vec![v.clone(), v])
        }
    }
}

/// Text with everything string printing must escape, and non-ASCII.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z\"\\\\$\\{\\}\n\r\té€😀 ]{0,12}",
        any::<String>().prop_map(|s| s.replace('\0', "")),
    ]
}

fn leaf() -> impl Strategy<Value = Gen> {
    prop_oneof![
        Just(Gen::Null),
        any::<bool>().prop_map(Gen::Bool),
        any::<i64>().prop_map(Gen::Int),
        any::<f64>().prop_map(Gen::Float),
        text().prop_map(Gen::Str),
        "(/[a-z.]{1,4}){1,3}".prop_map(Gen::Path),
        prop::sample::select(vec![
            "x: x",
            "{ a, b ? 1 }: a",
            "builtins.map",
            "builtins.add 1",
            "1 + 1",
        ])
        .prop_map(Gen::Evaluated),
    ]
}

fn any_value() -> impl Strategy<Value = Gen> {
    leaf().prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Gen::List),
            prop::collection::vec((text(), inner.clone()), 0..5).prop_map(Gen::Attrs),
            inner.prop_map(|g| Gen::Twice(Box::new(Gen::List(vec![g])))),
        ]
    })
}

/// Values JSON can carry: finite floats, no paths or functions (toJSON
/// copies paths to the store), no NUL in strings.
fn json_value() -> impl Strategy<Value = Gen> {
    let leaf = prop_oneof![
        Just(Gen::Null),
        any::<bool>().prop_map(Gen::Bool),
        any::<i64>().prop_map(Gen::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Gen::Float),
        prop::sample::select(vec![0.1, 1.0, -0.0, 1e-7, 1e300, 123456789012.0, 1.0 / 3.0])
            .prop_map(Gen::Float),
        text().prop_map(Gen::Str),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Gen::List),
            prop::collection::vec((text(), inner), 0..5).prop_map(Gen::Attrs),
        ]
    })
}

/// CppNix's `printLiteralString`, written out independently.
fn cppnix_string_literal(s: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn forced(v: &Value) -> Value {
    match &v.view() {
        View::Thunk(t) => t.done().expect("forced deeply"),
        _ => v.clone(),
    }
}

/// Structural equality that also compares types and float bits.
fn same(a: &Value, b: &Value) -> Result<(), String> {
    let (a, b) = (forced(a), forced(b));
    match (&a.view(), &b.view()) {
        (View::Null, View::Null) => Ok(()),
        (View::Bool(x), View::Bool(y)) if x == y => Ok(()),
        (View::Int(x), View::Int(y)) if x == y => Ok(()),
        (View::Float(x), View::Float(y)) if x.to_bits() == y.to_bits() => Ok(()),
        (View::String(x), View::String(y)) if x.as_bytes() == y.as_bytes() => Ok(()),
        (View::List(x), View::List(y)) if x.len() == y.len() => {
            x.iter().zip(y.iter()).try_for_each(|(p, q)| same(p, q))
        }
        (View::Attrs(x), View::Attrs(y)) if x.len() == y.len() => {
            for (k, v) in x.iter() {
                let w = y.get(k).ok_or_else(|| format!("attribute {k:?} lost"))?;
                same(v, w)?;
            }
            Ok(())
        }
        (x, y) => Err(format!(
            "{a:?} ({}) became {b:?} ({})",
            x.type_of(),
            y.type_of()
        )),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn printing_never_panics(g in any_value()) {
        let mut ev = Evaluator::builder().build();
        let v = build(&mut ev, &g);
        let printed = print_ambiguous(&v);
        prop_assert!(!printed.is_empty());
        let _ = show_short(&v);
        // --xml may fail (e.g. on a path that does not exist), but not panic.
        let _ = ev.to_xml(v.clone(), false, true);
        let _ = ev.to_xml(v, true, false);
    }

    #[test]
    fn ints_print_as_cppnix(n in any::<i64>()) {
        prop_assert_eq!(print_ambiguous(&Value::Int(n)), n.to_string());
    }

    #[test]
    fn strings_print_as_cppnix(s in text()) {
        let printed = print_ambiguous(&Value::str(&s));
        prop_assert_eq!(&printed, &cppnix_string_literal(&s));
        // And the printed form is a Nix literal for the same string.
        let mut ev = Evaluator::builder().build();
        let back = ev.eval_str(&printed, Path::new("/")).map_err(|e| {
            TestCaseError::fail(format!("{printed} does not evaluate: {}", e.msg))
        })?;
        same(&Value::str(&s), &back).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn from_json_inverts_to_json(g in json_value()) {
        let mut ev = Evaluator::builder().build();
        let v = build(&mut ev, &g);
        let json = ev.to_json(v.clone(), true).map_err(|e| TestCaseError::fail(e.msg.clone()))?;
        let builtins = ev.vm.builtins.clone();
        let View::Attrs(b) = builtins.view() else { panic!("builtins is a set") };
        let from_json = b.get(Symbol::intern("fromJSON")).expect("fromJSON").clone();
        let back = ev
            .vm
            .call(from_json, Value::string(json.clone()))
            .and_then(|r| ev.force_deep(r))
            .map_err(|e| TestCaseError::fail(format!("fromJSON {json}: {}", e.msg)))?;
        same(&v, &back).map_err(|e| TestCaseError::fail(format!("{e}\n  json: {json}")))?;
    }
}
