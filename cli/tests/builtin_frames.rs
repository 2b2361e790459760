//! The context frames builtins add to their errors (CppNix's `errorCtx`:
//! "while evaluating the second argument passed to builtins.X" and the
//! like), for inputs outside the conformance corpus. Each expected stderr
//! is what CppNix 2.34.8 prints for `nix-instantiate --eval --strict
//! --show-trace -E EXPR` (the frames these cases exercise are the same in
//! the corpus's 2.36).

mod common;

use std::process::Stdio;

fn check(expr: &str, want: &str) {
    let out = common::nixvm_cmd()
        .args([
            "instantiate",
            "--eval",
            "--strict",
            "--show-trace",
            "-E",
            expr,
        ])
        .current_dir(std::env::temp_dir())
        .env_remove("NIX_PATH")
        .env_remove("NIX_ABORT_ON_WARN")
        .stdin(Stdio::null())
        .output()
        .expect("running nixvm");
    assert_eq!(out.status.code(), Some(1), "exit status for {expr:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        want,
        "stderr for {expr:?}"
    );
}

#[test]
fn nested_list_comparison() {
    check(
        r#"builtins.lessThan [ [ 1 ] ] [ [ "a" ] ]"#,
        r#"error:
       … while calling the 'lessThan' builtin
         at «string»:1:1:
            1| builtins.lessThan [ [ 1 ] ] [ [ "a" ] ]
             | ^

       … while comparing two list elements

       … while comparing two list elements

       error: cannot compare an integer with a string; values are 1 and "a"
"#,
    );
}

#[test]
fn sort_by_less_than() {
    check(
        r#"builtins.sort builtins.lessThan [ 1 "a" ]"#,
        r#"error:
       … while calling the 'sort' builtin
         at «string»:1:1:
            1| builtins.sort builtins.lessThan [ 1 "a" ]
             | ^

       … while evaluating the ordering function passed to builtins.sort

       error: cannot compare a string with an integer; values are "a" and 1
"#,
    );
}

#[test]
fn mul_float_first_operand() {
    check(
        r#"builtins.mul "x" 1.0"#,
        r#"error:
       … while calling the 'mul' builtin
         at «string»:1:1:
            1| builtins.mul "x" 1.0
             | ^

       … while evaluating the first of the multiplication

       error: expected a float but found a string: "x"
"#,
    );
}

#[test]
fn list_to_attrs_missing_value() {
    check(
        r#"builtins.listToAttrs [ { name = "a"; value = 1; } { name = "b"; } ]"#,
        r#"error:
       … while calling the 'listToAttrs' builtin
         at «string»:1:1:
            1| builtins.listToAttrs [ { name = "a"; value = 1; } { name = "b"; } ]
             | ^

       … in a {name=...; value=...;} pair

       error: attribute 'value' missing
"#,
    );
}

#[test]
fn substring_negative_start_first() {
    check(
        r#"builtins.substring (-1) "x" "abc""#,
        r#"error:
       … while calling the 'substring' builtin
         at «string»:1:1:
            1| builtins.substring (-1) "x" "abc"
             | ^

       error: negative start position in 'substring'
"#,
    );
}

#[test]
fn foldl_third_argument() {
    check(
        r#"builtins.foldl' (x: y: x) 0 1"#,
        r#"error:
       … while calling the 'foldl'' builtin
         at «string»:1:1:
            1| builtins.foldl' (x: y: x) 0 1
             | ^

       … while evaluating the third argument passed to builtins.foldlStrict

       error: expected a list but found an integer: 1
"#,
    );
}

#[test]
fn elem_at_index_first() {
    check(
        r#"builtins.elemAt "not a list" "not an index""#,
        r#"error:
       … while calling the 'elemAt' builtin
         at «string»:1:1:
            1| builtins.elemAt "not a list" "not an index"
             | ^

       … while evaluating the second argument passed to 'builtins.elemAt'

       error: expected an integer but found a string: "not an index"
"#,
    );
}

#[test]
fn concat_lists_element() {
    check(
        r#"builtins.concatLists [ [ 1 ] 2 ]"#,
        r#"error:
       … while calling the 'concatLists' builtin
         at «string»:1:1:
            1| builtins.concatLists [ [ 1 ] 2 ]
             | ^

       … while evaluating a value of the list passed to builtins.concatLists

       error: expected a list but found an integer: 2
"#,
    );
}

#[test]
fn get_attr_missing() {
    check(
        r#"builtins.getAttr "b" { a = 1; }"#,
        r#"error:
       … while calling the 'getAttr' builtin
         at «string»:1:1:
            1| builtins.getAttr "b" { a = 1; }
             | ^

       … in the attribute set under consideration

       error: attribute 'b' missing
"#,
    );
}

#[test]
fn remove_attrs_names() {
    check(
        r#"builtins.removeAttrs { } [ 1 ]"#,
        r#"error:
       … while calling the 'removeAttrs' builtin
         at «string»:1:1:
            1| builtins.removeAttrs { } [ 1 ]
             | ^

       … while evaluating the values of the second argument passed to builtins.removeAttrs

       error: expected a string but found an integer: 1
"#,
    );
}

#[test]
fn gen_list_function_thunk() {
    check(
        r#"builtins.genList (throw "f") 1"#,
        r#"error:
       … while calling the 'genList' builtin
         at «string»:1:1:
            1| builtins.genList (throw "f") 1
             | ^

       … while evaluating the first argument passed to builtins.genList

       … while calling the 'throw' builtin
         at «string»:1:19:
            1| builtins.genList (throw "f") 1
             |                   ^

       error: f
"#,
    );
}

#[test]
fn filter_return_value() {
    check(
        r#"builtins.filter (x: 1) [ 1 ]"#,
        r#"error:
       … while calling the 'filter' builtin
         at «string»:1:1:
            1| builtins.filter (x: 1) [ 1 ]
             | ^

       … while evaluating the return value of the filtering function passed to builtins.filter

       error: expected a Boolean but found an integer: 1
"#,
    );
}

#[test]
fn div_zero_before_dividend() {
    check(
        r#"builtins.div "x" 0"#,
        r#"error:
       … while calling the 'div' builtin
         at «string»:1:1:
            1| builtins.div "x" 0
             | ^

       error: division by zero
"#,
    );
}

#[test]
fn to_string_list_element() {
    check(
        r#"builtins.toString [ 1 { } ]"#,
        r#"error:
       … while calling the 'toString' builtin
         at «string»:1:1:
            1| builtins.toString [ 1 { } ]
             | ^

       … while evaluating the first argument passed to builtins.toString

       … while evaluating one element of the list

       error: cannot coerce a set to a string: { }
"#,
    );
}

#[test]
fn find_file_prefix() {
    check(
        r#"builtins.findFile [ { prefix = 1; path = "/"; } ] "x""#,
        r#"error:
       … while calling the 'findFile' builtin
         at «string»:1:1:
            1| builtins.findFile [ { prefix = 1; path = "/"; } ] "x"
             | ^

       … while evaluating the `prefix` attribute of an element of the list passed to builtins.findFile

       error: expected a string but found an integer: 1
"#,
    );
}
