//! Reading values as an embedder does: accessors see through forced thunks,
//! forcing writes back into the sets and lists that hold the thunks, paths
//! select through sets and lists, functions take several arguments, errors
//! render with their trace, and JSON is strict only when asked.

use nixvm::{ErrorKind, Evaluator, Value};
use std::path::Path;

fn ev_and(src: &str) -> (Evaluator, Value) {
    let mut ev = Evaluator::builder().build();
    let v = ev.eval_str(src, Path::new("/")).expect("evaluates");
    (ev, v)
}

#[test]
fn a_forced_attribute_reads_back_without_forcing_again() {
    let (mut ev, v) = ev_and("let f = x: x; in { name = f \"hello\"; n = f 3; }");
    let name = v.attr("name").expect("name").clone();
    assert_eq!(name.as_str(), None, "not evaluated yet");
    ev.force(name).expect("forces");
    // The thunk inside the set now holds its value.
    assert_eq!(v.attr("name").and_then(Value::as_str), Some("hello"));
    assert_eq!(v.attr("n").and_then(Value::as_int), None);
    assert!(v.attr("n").expect("n").is_thunk());
}

#[test]
fn get_forces_along_a_path_and_leaves_the_values_forced() {
    let (mut ev, v) =
        ev_and(r#"let f = x: x; in { a = { "b.c" = f [ (f 1) { d = f true; } ]; }; }"#);
    assert_eq!(ev.get(&v, r#"a."b.c".0"#).expect("path").as_int(), Some(1));
    assert_eq!(
        ev.get(&v, r#"a."b.c".1.d"#).expect("path").as_bool(),
        Some(true)
    );
    let list = v.attr("a").and_then(|a| a.attr("b.c")).expect("a.\"b.c\"");
    let items = list.as_list().expect("forced on the way");
    assert_eq!(items[0].as_int(), Some(1));
    assert_eq!(items[1].attr("d").and_then(Value::as_bool), Some(true));
}

#[test]
fn get_says_what_is_missing() {
    let (mut ev, v) = ev_and("{ alpha = { beta = 1; }; l = [ 1 ]; }");
    let e = ev.get(&v, "alpha.betx").expect_err("no betx");
    assert_eq!(e.kind, ErrorKind::MissingAttr);
    assert!(e.msg.contains("'betx'"), "{}", e.msg);
    assert_eq!(e.suggestions, ["beta"]);
    let e = ev.get(&v, "l.3").expect_err("out of range");
    assert!(e.msg.contains("out of bounds"), "{}", e.msg);
    let e = ev
        .get(&v, "alpha.beta.gamma")
        .expect_err("an int has no attributes");
    assert_eq!(e.kind, ErrorKind::Type);
    assert!(ev.get(&v, "alpha.\"beta").is_err(), "unterminated quote");
}

#[test]
fn a_function_takes_several_arguments() {
    let (mut ev, f) = ev_and("a: b: c: a * 100 + b * 10 + c");
    let r = ev
        .call_with(f, [Value::Int(1), Value::Int(2), Value::Int(3)])
        .expect("calls");
    assert_eq!(r.as_int(), Some(123));
    let (mut ev, sub) = ev_and("builtins.sub");
    let r = ev
        .call_with(sub, [Value::Int(5), Value::Int(7)])
        .expect("calls");
    assert_eq!(r.as_int(), Some(-2));
}

#[test]
fn errors_render_with_their_trace() {
    // Call frames are recorded when asked for, as with --show-trace.
    let mut ev = Evaluator::builder()
        .settings(|s| s.show_trace = true)
        .build();
    let e = ev
        .eval_str("let\n  f = x: x + \"a\";\nin\n  f 1", Path::new("/"))
        .expect_err("a type error");
    let shown = ev.render_error(&e);
    assert!(shown.starts_with("error:"), "{shown}");
    assert!(shown.contains("… while calling"), "{shown}");
    assert!(
        shown.contains("cannot add a string to an integer"),
        "{shown}"
    );
    assert!(shown.contains("«string»:2:"), "{shown}");
}

#[test]
fn json_is_strict_only_when_asked() {
    let (mut ev, v) = ev_and("let f = x: x; in { a = f 1; b = [ (f 2) ]; }");
    let e = ev.to_json(v.clone(), false).expect_err("a thunk");
    assert!(
        e.msg.contains("cannot convert a thunk to JSON"),
        "{}",
        e.msg
    );
    assert_eq!(
        ev.to_json(v.clone(), true).expect("strict"),
        r#"{"a":1,"b":[2]}"#
    );
    // Once forced, the same value converts without `strict`.
    assert_eq!(
        ev.to_json(v, false).expect("forced now"),
        r#"{"a":1,"b":[2]}"#
    );
}
