//! The embedding API's errors as data, its logger, its interrupt handle and
//! its checks at registration (issue 17, items 3, 4 and 6).

use nixvm::{Detail, ErrorKind, EvalError, Evaluator, LogLevel};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn fail(src: &str) -> Box<EvalError> {
    let mut ev = Evaluator::new();
    let r = ev
        .eval_str(src, Path::new("/"))
        .and_then(|v| ev.force_deep(v));
    match r {
        Ok(v) => panic!("{src} evaluated to {}", ev.print(&v)),
        Err(e) => e,
    }
}

#[test]
fn type_errors_say_what_was_expected_and_found() {
    let e = fail(r#"1 + "a""#);
    assert_eq!(e.kind, ErrorKind::Type);
    assert_eq!(
        e.detail.as_deref(),
        Some(&Detail::Type {
            expected: "an integer".into(),
            found: "a string".into()
        })
    );
    let e = fail("builtins.length 3");
    assert_eq!(
        e.detail.as_deref(),
        Some(&Detail::Type {
            expected: "a list".into(),
            found: "an integer".into()
        })
    );
}

#[test]
fn arithmetic_failures_have_their_own_kinds() {
    assert_eq!(fail("1 / 0").kind, ErrorKind::DivisionByZero);
    assert_eq!(fail("builtins.div 1 0").kind, ErrorKind::DivisionByZero);
    assert_eq!(fail("9223372036854775807 + 1").kind, ErrorKind::Overflow);
    assert_eq!(fail("9223372036854775807 * 2").kind, ErrorKind::Overflow);
    assert_eq!(
        fail(r#""${toString (9223372036854775807 + 1)}""#).kind,
        ErrorKind::Overflow
    );
}

#[test]
fn an_index_out_of_range_carries_index_and_length() {
    let e = fail("builtins.elemAt [ 1 2 3 ] 5");
    assert_eq!(e.kind, ErrorKind::IndexOutOfRange);
    assert_eq!(
        e.detail.as_deref(),
        Some(&Detail::IndexOutOfRange { index: 5, len: 3 })
    );
    let mut ev = Evaluator::new();
    let v = ev.eval_str("{ a = [ 1 ]; }", Path::new("/")).unwrap();
    let e = ev.get(&v, "a.4").unwrap_err();
    assert_eq!(
        e.detail.as_deref(),
        Some(&Detail::IndexOutOfRange { index: 4, len: 1 })
    );
}

#[test]
fn a_missing_attribute_names_itself_and_suggests() {
    let e = fail("{ foo = 1; fob = 2; }.fooo");
    assert_eq!(e.kind, ErrorKind::MissingAttr);
    assert_eq!(
        e.detail.as_deref(),
        Some(&Detail::MissingAttr {
            name: "fooo".into()
        })
    );
    assert_eq!(e.suggestions.first().map(String::as_str), Some("foo"));
    let e = fail(r#"builtins.getAttr "x" { }"#);
    assert_eq!(
        e.detail.as_deref(),
        Some(&Detail::MissingAttr { name: "x".into() })
    );
}

#[test]
fn the_logger_receives_traces_and_warnings() {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let log = seen.clone();
    let mut ev = Evaluator::builder()
        .logger(move |m| {
            log.borrow_mut()
                .push((m.level, m.message.clone(), m.rendered.clone()))
        })
        .build();
    let src = r#"builtins.trace { a = 1; } (builtins.warn "careful" 2)"#;
    let v = ev.eval_str(src, Path::new("/")).unwrap();
    assert_eq!(ev.force(v).unwrap().as_int(), Some(2));
    let seen = seen.borrow();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[0].0, LogLevel::Trace);
    assert_eq!(seen[0].1, "{ a = 1; }");
    assert_eq!(seen[0].2, "trace: { a = 1; }\n");
    assert_eq!(seen[1].0, LogLevel::EvalWarning);
    assert_eq!(seen[1].1, "careful");
    assert!(seen[1].2.contains("evaluation warning:"), "{:?}", seen[1].2);
}

#[test]
fn abort_on_warn_still_stops_with_a_logger() {
    let mut ev = Evaluator::builder()
        .settings(|s| s.abort_on_warn = true)
        .logger(|_| {})
        .build();
    let r = ev.eval_str(r#"builtins.warn "w" 1"#, Path::new("/"));
    assert_eq!(
        r.and_then(|v| ev.force(v)).unwrap_err().kind,
        ErrorKind::Abort
    );
}

/// Ten billion steps unless stopped.
const FOREVER: &str = "let l = builtins.genList (x: x) 100000; in \
    builtins.foldl' (a: _: builtins.foldl' (b: _: b + 1) a l) 0 l";

#[test]
fn an_interrupt_from_another_thread_stops_the_evaluation_soon() {
    let mut ev = Evaluator::new();
    let stop = ev.interrupt_handle();
    let asked = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        stop.interrupt();
        Instant::now()
    });
    let e = ev
        .eval_str(FOREVER, Path::new("/"))
        .and_then(|v| ev.force(v))
        .unwrap_err();
    let stopped = Instant::now();
    let at = t.join().unwrap();
    assert_eq!(e.kind, ErrorKind::Interrupted);
    assert_eq!(e.msg, "interrupted by the user");
    assert!(stopped.duration_since(at) < Duration::from_secs(1));
    assert!(at.duration_since(asked) >= Duration::from_millis(100));
}

#[test]
fn try_eval_does_not_catch_an_interrupt_and_reset_lets_work_go_on() {
    let mut ev = Evaluator::new();
    let stop = ev.interrupt_handle();
    stop.interrupt();
    let src = format!("(builtins.tryEval ({FOREVER})).success");
    let e = ev
        .eval_str(&src, Path::new("/"))
        .and_then(|v| ev.force(v))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted);
    assert!(stop.is_set());
    stop.reset();
    let v = ev.eval_str("builtins.map (x: x + 1) [ 1 ]", Path::new("/"));
    let v = v.and_then(|v| ev.force_deep(v)).unwrap();
    assert_eq!(ev.print(&v), "[ 2 ]");
}

#[test]
fn registrations_are_checked() {
    let f: nixvm::ExtraBuiltin = Rc::new(|_, _| Ok(nixvm::Value::Null));
    let bad = |b: nixvm::EvaluatorBuilder| b.try_build().err().map(|e| e.msg);
    let msg = bad(Evaluator::builder().builtin("map", 2, f.clone())).unwrap();
    assert_eq!(
        msg,
        "cannot define builtin 'map': the name is already a builtin"
    );
    let msg = bad(Evaluator::builder().builtin("__map", 2, f.clone())).unwrap();
    assert!(msg.contains("already a builtin"), "{msg}");
    let msg = bad(Evaluator::builder().constant("null", nixvm::Value::Int(1))).unwrap();
    assert!(msg.contains("already a builtin"), "{msg}");
    let msg = bad(Evaluator::builder().builtin("a b", 1, f.clone())).unwrap();
    assert!(msg.contains("not an identifier"), "{msg}");
    let msg = bad(Evaluator::builder().builtin("let", 1, f.clone())).unwrap();
    assert!(msg.contains("not an identifier"), "{msg}");
    let msg = bad(Evaluator::builder().builtin("zero", 0, f.clone())).unwrap();
    assert!(msg.contains("arity 0"), "{msg}");
    let twice = Evaluator::builder()
        .builtin("mine", 1, f.clone())
        .builtin("mine", 2, f.clone());
    assert!(bad(twice).unwrap().contains("already a builtin"));
    let ok = Evaluator::builder().builtin("my-fn'", 3, f).try_build();
    assert!(ok.is_ok());
}

#[test]
#[should_panic(expected = "cannot define builtin 'map'")]
fn build_panics_on_a_taken_name() {
    let f: nixvm::ExtraBuiltin = Rc::new(|_, _| Ok(nixvm::Value::Null));
    Evaluator::builder().builtin("map", 2, f).build();
}

/// Both layouts of one error with a trace: CppNix's and codespan's, rendered
/// by the library.
#[test]
fn errors_render_in_both_layouts() {
    // Lambda-call frames are recorded only when asked, as with --show-trace.
    let mut ev = Evaluator::builder()
        .settings(|s| s.show_trace = true)
        .build();
    let src = "let f = x: x + \"a\"; in\nbuiltins.map f [ 1 ]";
    let e = ev
        .eval_str(src, Path::new("/"))
        .and_then(|v| ev.force_deep(v))
        .unwrap_err();
    let cpp = ev.render_error_as(&e, nixvm::Layout::CppNix, true);
    let codespan = ev.render_error_as(&e, nixvm::Layout::Codespan, true);
    insta::assert_snapshot!("errors_layout_cppnix", cpp);
    insta::assert_snapshot!("errors_layout_codespan", codespan);
}
