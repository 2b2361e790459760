//! Evaluation regressions found on real code (nixpkgs, NixOS). Each case is an expression and
//! the value CppNix 2.34 prints for it with `nix-instantiate --eval --strict`.

use nixvm::Evaluator;
use std::path::Path;

fn eval(src: &str) -> String {
    let mut ev = Evaluator::builder().build();
    let v = ev
        .eval_str(src, Path::new("/"))
        .unwrap_or_else(|e| panic!("{src}: {}", ev.render_error(&e)));
    let v = ev
        .force_deep(v)
        .unwrap_or_else(|e| panic!("{src}: {}", ev.render_error(&e)));
    ev.print(&v)
}

#[track_caller]
fn check(src: &str, expected: &str) {
    assert_eq!(eval(src), expected, "for {src}");
}

/// `check` for code in a file (`tag` names it): positions in `-E` code are `null`.
#[track_caller]
fn check_file(tag: &str, src: &str, expected: &str) {
    let dir = std::env::temp_dir().join(format!("nixvm-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{tag}.nix"));
    std::fs::write(&file, src).unwrap();
    let mut ev = Evaluator::builder().build();
    let v = ev
        .eval_file(&file)
        .unwrap_or_else(|e| panic!("{src}: {}", ev.render_error(&e)));
    let v = ev
        .force_deep(v)
        .unwrap_or_else(|e| panic!("{src}: {}", ev.render_error(&e)));
    let got = ev.print(&v);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(got, expected, "for {src}");
}

/// A body whose last op yields a value in normal form (here the `else` arm's lambda) must
/// still force what the other arm jumps in with (pkgs/top-level/default.nix's `lib`).
#[test]
fn branch_results_are_forced_before_return() {
    check(
        "let p = { t = 5; }; f = { a ? true }: let lib = if a then p else (_: 1); inherit (lib) t; in t; in f {}",
        "5",
    );
    check("let p = { t = 5; }; in (if true then p else {}).t", "5");
    check(
        "let p = [ 1 ]; x = if true then p else []; in builtins.length x",
        "1",
    );
    check("let p = 3; x = a: a.b or p; in x {} + 1", "4");
}

/// CppNix puts the language constants in `builtins` too (but not as `__true`).
#[test]
fn builtins_hold_the_constants() {
    check(
        "[ builtins.true builtins.false builtins.null ]",
        "[ true false null ]",
    );
}

/// `mapAttrs` builds one two-argument application thunk per attribute; a failing one must be
/// retryable (not left blackholed), and like CppNix the results carry no positions.
#[test]
fn map_attrs_thunks() {
    check(
        r#"let m = builtins.mapAttrs (n: v: if v == 2 then throw "no" else n + toString v) { a = 1; b = 2; };
           in [ (builtins.unsafeGetAttrPos "a" m) (builtins.tryEval m.b) (builtins.tryEval m.b) m.a
                (builtins.attrNames m) (builtins.zipAttrsWith (n: vs: [n] ++ vs) [{x=1;} {x=2; y=3;}]) ]"#,
        r#"[ null { success = false; value = false; } { success = false; value = false; } "a1" [ "a" "b" ] { x = [ "x" 1 2 ]; y = [ "y" 3 ]; } ]"#,
    );
}

/// CppNix tracks printed lists by the Value holding them: a list reached through a thunk is
/// "seen" as that thunk (eval-okay-print: `let x = [ x ]; in x` inside a list).
#[test]
fn repeated_lists_are_tracked_by_holder() {
    check("[ (let x = [ x ]; in x) ]", "[ [ [ «repeated» ] ] ]");
}

/// Derivations compare by outPath even against themselves (nixpkgs' cc-wrapper asserts
/// `libc_bin == bintools.libc_bin`, which must trip the unfree-license check as in CppNix);
/// identical nested values are equal without being forced.
#[test]
fn derivation_equality_forces_out_path() {
    check(
        r#"let d = { type = "derivation"; outPath = throw "no"; }; in [ (builtins.tryEval (d == d)) (builtins.tryEval ([ d ] == [ d ])) ]"#,
        "[ { success = false; value = false; } { success = true; value = true; } ]",
    );
}

/// CppNix reads sources as bytes: a string literal in a non-UTF-8 file keeps the file's raw
/// bytes (lang/eval-fail-toJSON-non-utf-8), so `stringLength` counts bytes and `toJSON`
/// rejects the string. Expected values are CppNix 2.34's.
#[test]
fn non_utf8_source_literals_keep_raw_bytes() {
    let dir = std::env::temp_dir().join(format!("nixvm-raw-src-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("raw.nix");
    std::fs::write(
        &file,
        b"{ a = builtins.stringLength \"\xff\"; b = builtins.stringLength \"${\"x\"}\xfe\xfd\";\n  \
          c = builtins.stringLength ''\n  \xff\n''; d = builtins.stringLength \"\xc3\xa9\xc3\"; }\n",
    )
    .unwrap();
    let mut ev = Evaluator::builder().build();
    let v = ev.eval_file(&file).and_then(|v| ev.force_deep(v));
    let v = v.unwrap_or_else(|e| panic!("{}", ev.render_error(&e)));
    assert_eq!(ev.print(&v), "{ a = 1; b = 3; c = 2; d = 3; }");

    std::fs::write(&file, b"builtins.toJSON \"_invalid UTF-8: \xff_\"\n").unwrap();
    let mut ev = Evaluator::builder().build();
    let e = ev
        .eval_file(&file)
        .and_then(|v| ev.force_deep(v))
        .expect_err("toJSON of a raw byte must fail");
    assert_eq!(
        e.msg,
        "JSON serialization error: [json.exception.type_error.316] invalid UTF-8 byte at index 16: 0xFF"
    );
    std::fs::remove_dir_all(&dir).ok();

    // Source given as bytes (stdin) behaves the same.
    let mut ev = Evaluator::builder().build();
    let v = ev
        .eval_bytes(
            b"builtins.stringLength \"a\xffb\"".to_vec(),
            "\u{ab}stdin\u{bb}",
            Path::new("/"),
        )
        .unwrap_or_else(|e| panic!("{}", ev.render_error(&e)));
    assert_eq!(ev.print(&v), "3");
}

/// Builtins check their arguments in CppNix's order and word their errors as CppNix 2.34 does
/// (tests/functional/lang/eval-fail-*).
#[test]
fn error_reasons_match_cppnix() {
    let cases = [
        ("builtins.div \"foo\" 0", "division by zero"),
        ("builtins.div 1 \"foo\"", "expected a float but found a string: \"foo\""),
        ("builtins.foldl' 1 \"foo\" true", "expected a function but found an integer: 1"),
        ("builtins.sort 1 \"foo\"", "expected a list but found a string: \"foo\""),
        ("builtins.zipAttrsWith [ ] [ 1 ]", "expected a function but found a list: [ ]"),
        ("builtins.map 1 [ 1 ]", "expected a function but found an integer: 1"),
        ("builtins.concatStringsSep 1 { }", "expected a string but found an integer: 1"),
        ("builtins.functionArgs { }", "'functionArgs' requires a function"),
        (
            "{ } < { }",
            "cannot compare a set with a set; values of that type are incomparable (values are { } and { })",
        ),
        (
            "builtins.genericClosure { startSet = [ { key = 1; } { key = \"string\"; } ]; operator = x: [ ]; }",
            "cannot compare a string with an integer; values are \"string\" and 1",
        ),
        (
            "\"\" + (let v = [ [ 1 2 3 4 5 6 7 8 ] [ 1 2 3 4 ] ]; in builtins.deepSeq v v)",
            "cannot coerce a list to a string: [ [ 1 2 3 4 5 6 7 8 ] [ 1 «3 items elided» ] ]",
        ),
    ];
    for (src, want) in cases {
        let mut ev = Evaluator::builder().build();
        let e = ev
            .eval_str(src, Path::new("/"))
            .and_then(|v| ev.force_deep(v))
            .expect_err(src);
        assert_eq!(e.msg, want, "for {src}");
    }
}

/// A failed `assert a == b` says which part differs, in CppNix 2.34's words (its
/// `assertEqValues`); other failed assertions keep the plain message.
#[test]
fn failed_equality_assertions_explain_the_difference() {
    let cases = [
        (
            "assert [1 2] == [1 3]; 1",
            "an integer with value '2' is not equal to an integer with value '3'",
        ),
        (
            "assert { a = 1; b = 2; } == { a = 1; c = 2; }; 1",
            "attribute name 'b' is contained in '{ a = 1; b = 2; }', but not in '{ a = 1; c = 2; }'",
        ),
        (
            "assert { a = 1; } == { a = 1; c = 2; }; 1",
            "attribute names of attribute set '{ a = 1; }' differs from attribute set '{ a = 1; c = 2; }'",
        ),
        (
            "assert \"a\" == 1; 1",
            "a string of value '\"a\"' is not equal to an integer of value '1'",
        ),
        ("assert 1.5 == 2.5; 1", "a float with value '1.5' is not equal to a float with value '2.5'"),
        (
            "assert [ 1 ] == [ ]; 1",
            "list of size '1' is not equal to list of size '0', left hand side is '[ 1 ]', right hand side is '[ ]'",
        ),
        (
            "assert builtins.map == builtins.map; 1",
            "distinct functions and immediate comparisons of identical functions compare as unequal",
        ),
        (
            "assert { type = \"derivation\"; outPath = \"a\"; x = 1; } == { type = \"derivation\"; outPath = \"b\"; }; 1",
            "string '\"a\"' is not equal to string '\"b\"'",
        ),
        ("assert true == false; 1", "boolean 'true' is not equal to boolean 'false'"),
        ("assert 1 < 0; 1", "assertion '(__lessThan 1 0)' failed"),
    ];
    for (src, want) in cases {
        let mut ev = Evaluator::builder().build();
        let e = ev.eval_str(src, Path::new("/")).expect_err(src);
        assert_eq!(e.msg, want, "for {src}");
    }
    // The explanation is still an assertion failure: tryEval catches it.
    check(
        "(builtins.tryEval (assert [ 1 ] == [ 2 ]; 1)).success",
        "false",
    );
    // Nested traces name the attribute path that differs.
    let mut ev = Evaluator::builder().build();
    let e = ev
        .eval_str("assert { a.b = 1; } == { a.b = 2; }; 1", Path::new("/"))
        .expect_err("unequal");
    let trace: Vec<&str> = e.trace.iter().map(|t| t.msg.as_str()).collect();
    assert!(
        trace.contains(&"while comparing attribute 'b'"),
        "{trace:?}"
    );
    assert!(
        trace.contains(&"while comparing attribute 'a'"),
        "{trace:?}"
    );
}

/// Thunks computed at once when their operands are already values (speculate.rs) must
/// keep laziness: failures stay inside the unforced thunk, and bindings not built yet
/// (forward references in `let`/`rec`, whose slots still hold null) are not read.
#[test]
fn speculated_thunks_keep_laziness() {
    check("let a = { }; x = a.b; in 1", "1");
    check("let n = 9223372036854775807; x = n + 1; in 1", "1");
    check("let s = \"a\"; x = s - 1; in 1", "1");
    check("let x = y.a; y = { a = 1; }; in x", "1");
    check("rec { x = y.a; y = { a = 2; }; }.x", "2");
    check(
        "let lib = { t = 3; }; f = { inherit (lib) t; }; in f.t",
        "3",
    );
    check("let x = null; y = x; in y", "null");
    check(
        "let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in fib 20",
        "6765",
    );
    let mut ev = Evaluator::builder().build();
    let e = ev
        .eval_str(
            "let n = 9223372036854775807; x = n + 1; in x",
            Path::new("/"),
        )
        .and_then(|v| ev.force_deep(v))
        .expect_err("overflow");
    assert_eq!(e.msg, "integer overflow in adding 9223372036854775807 + 1");
}

/// CppNix 2.34 gives a position in an `-E` expression or on stdin no value.
#[test]
fn positions_in_strings_are_null() {
    check(
        r#"[ __curPos (builtins.unsafeGetAttrPos "a" { a = 1; }) ]"#,
        "[ null null ]",
    );
}

/// `intersectAttrs` keeps the right side's attributes with their positions, whichever side
/// it walks (it walks the smaller: `callPackage` intersects a few names with all of pkgs).
#[test]
fn intersect_attrs_keeps_positions() {
    check_file(
        "ia",
        "let y = { a = 2;\n  b = 3; }; p = n: s: (builtins.unsafeGetAttrPos n s).line; in\n\
         [ (p \"b\" (builtins.intersectAttrs { b = 1; } y))\n\
           (p \"b\" (builtins.intersectAttrs { a = 1; b = 1; c = 1; } y))\n\
           (builtins.intersectAttrs { a = 1; c = 1; z = 1; } ({ a = 2; b = 3; } // { c = 4; })) ]\n",
        "[ 2 2 { a = 2; c = 4; } ]",
    );
}

/// `removeAttrs` keeps the attributes it does not remove with their positions (CppNix 2.34).
#[test]
fn remove_attrs_keeps_positions() {
    check_file(
        "ra",
        "let s = { a = 1;\n b = 2; c = 3; }; r = builtins.removeAttrs s [ \"c\" \"zz\" \"a\" ]; in\n\
         [ (builtins.unsafeGetAttrPos \"b\" r).line (builtins.attrNames r) ]\n",
        "[ 2 [ \"b\" ] ]",
    );
}

/// `listToAttrs` defines each name where its item's `value` is (CppNix 2.34).
#[test]
fn list_to_attrs_positions_are_the_values() {
    check_file(
        "lta",
        "let l = builtins.listToAttrs [ { name = \"a\";\n  value = 1; } { name = \"a\"; value = 2; } ];\n\
         x = builtins.unsafeGetAttrPos \"a\" l; in [ x.line x.column l.a ]\n",
        "[ 2 3 1 ]",
    );
}

/// The final error message of `src` (CppNix 2.34's, recorded with
/// `nix-instantiate --eval --strict`).
fn error_message(src: &str) -> String {
    let mut ev = Evaluator::builder().build();
    let r = ev
        .eval_str(src, Path::new("/"))
        .and_then(|v| ev.force_deep(v));
    match r {
        Ok(v) => panic!("{src}: a value, {}", ev.print(&v)),
        Err(e) => e.msg.clone(),
    }
}

/// Differences found by the differential tester (issue 16), each with
/// CppNix 2.34.8's answer.
#[test]
fn differential_findings() {
    // `//` evaluates its right operand first: the catchable throw wins.
    check(
        r#"builtins.tryEval ((abort "a") // (throw "b"))"#,
        "{ success = false; value = false; }",
    );
    assert_eq!(
        error_message(r#"(throw "l") // (throw "r")"#),
        "r",
        "the right operand first"
    );
    // `derivation` is a Nix function.
    check("builtins.functionArgs derivation", "{ outputs = true; }");
    check("builtins.isFunction derivation", "true");
    // Out-of-range float literals are invalid, as strtod says.
    for lit in ["1.0e400", "5.0e-324", "1.0e-310"] {
        let mut ev = Evaluator::builder().build();
        let e = ev.eval_str(lit, Path::new("/")).expect_err("invalid");
        assert_eq!(e.msg, format!("invalid float '{lit}'"));
    }
    check("2.2250738585072014e-308", "2.22507e-308");
    // A missing file is CppNix's "does not exist".
    assert_eq!(
        error_message("builtins.readFile /nonexistent"),
        "path '/nonexistent' does not exist"
    );
    assert_eq!(
        error_message("import /nonexistent"),
        "path '/nonexistent' does not exist"
    );
    // Type errors name the builtin.
    assert_eq!(
        error_message("builtins.length builtins.length"),
        "expected a list but found the built-in function 'length': «primop length»"
    );
    assert_eq!(
        error_message("builtins.length (builtins.add 1)"),
        "expected a list but found the partially applied built-in function 'add': «partially applied primop add»"
    );
    assert_eq!(
        error_message("\"${builtins.map}\""),
        "cannot coerce the built-in function 'map' to a string: «primop map»"
    );
    // ceil/floor out of range, the float printed as CppNix prints one.
    assert_eq!(
        error_message("builtins.ceil 1.0e300"),
        "NixFloat argument 1e+300 is not in the range of NixInt"
    );
    assert_eq!(
        error_message("builtins.floor (9223372036854775807 - 0.1)"),
        "NixFloat argument 9.22337e+18 is not in the range of NixInt"
    );
}

/// fromJSON reads as nlohmann does and fails with its messages (issue 16):
/// the cases and CppNix 2.34.8's answers are in fixtures/fromjson-cppnix.tsv.
#[test]
fn from_json_as_cppnix() {
    let table = include_str!("fixtures/fromjson-cppnix.tsv");
    let mut n = 0;
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let (expr, want) = line.split_once('\t').expect("EXPR<TAB>ANSWER");
        match want.strip_prefix("= ") {
            Some(value) => check(expr, value),
            None => assert_eq!(error_message(expr), want, "for {expr}"),
        }
        n += 1;
    }
    assert!(n >= 40, "the table was read");
}

/// The fast paths of `toString` (integers, strings), `concatStringsSep` (a
/// list of strings, measured then copied once) and interpolation (written
/// into the result) give what the general coercion gave; a list that is not
/// all strings goes the general way from its first element. Answers of
/// CppNix 2.34.
#[test]
fn string_joining_fast_paths() {
    check(
        r#"builtins.concatStringsSep "-" [ "a" (builtins.toString 12) "" "bc" ]"#,
        r#""a-12--bc""#,
    );
    check(
        r#"builtins.concatStringsSep "," [ "a" { outPath = "o"; } "b" (toString (-5)) ]"#,
        r#""a,o,b,-5""#,
    );
    check(
        r#"[ "a${"b"}${toString 3}" (builtins.concatStringsSep "," []) (builtins.concatStringsSep "," ["only"]) (toString "s") (toString 9223372036854775807) ]"#,
        r#"[ "ab3" "" "only" "s" "9223372036854775807" ]"#,
    );
}

/// A `genList` whose list cannot be allocated is an error, not a block of
/// the wrapped size written past its end (`List::try_from_fn`). CppNix 2.34
/// says "out of memory" where its allocation fails (a length of 1e11); at
/// 2^61 its own size arithmetic wraps and it answers the length.
#[test]
fn gen_list_beyond_memory_is_an_error() {
    for n in ["2305843009213693952", "9223372036854775807"] {
        let src = format!("builtins.length (builtins.genList (x: x) {n})");
        assert_eq!(error_message(&src), "out of memory", "for {src}");
    }
}
