//! What an embedder holds stays valid: values outlive the evaluator that
//! made them (its heap keeps the pages they live in), and dropping an
//! evaluator frees the cycles it made without touching what is still held.

use nixvm::{Evaluator, Value, View};
use std::path::Path;

fn eval(ev: &mut Evaluator, src: &str) -> Value {
    let v = ev.eval_str(src, Path::new("/")).expect("evaluates");
    ev.force_deep(v).expect("forces")
}

#[test]
fn a_value_outlives_its_evaluator() {
    let mut ev = Evaluator::builder().build();
    // A recursive set: its attributes' thunks and the env they close over form cycles.
    let v = eval(
        &mut ev,
        "rec { n = 41; m = n + 1; l = [ n m ]; s = \"x${toString m}\"; }",
    );
    drop(ev);
    assert_eq!(v.attr("m").and_then(|m| force_done(m).as_int()), Some(42));
    let l = force_done(v.attr("l").expect("l"));
    let items = l.as_list().expect("a list");
    assert_eq!(items.len(), 2);
    assert_eq!(force_done(&items[1]).as_int(), Some(42));
    assert_eq!(force_done(v.attr("s").expect("s")).as_str(), Some("x42"));
    drop(v);
}

#[test]
fn evaluators_come_and_go_and_their_cycles_with_them() {
    let mut kept = Vec::new();
    for i in 0..50 {
        let mut ev = Evaluator::builder().build();
        let v = eval(
            &mut ev,
            &format!(
                "let fix = f: let x = f x; in x; in (fix (self: {{ a = {i}; b = self.a; }})).b"
            ),
        );
        assert_eq!(v.as_int(), Some(i));
        if i % 10 == 0 {
            kept.push(v);
        }
    }
    assert_eq!(kept.len(), 5);
}

/// The value of a forced thunk (or the value itself).
fn force_done(v: &Value) -> Value {
    match &v.view() {
        View::Thunk(t) => t.done().expect("forced by force_deep"),
        other => other.to_value(),
    }
}
