//! `nixvm eval` is `nix eval`: installables in `--file`/`--expr`, `nix eval`'s
//! printing, `--json`, `--raw`, `--apply`, pure `--expr`. Every expected output
//! was recorded from CppNix 2.34.8's `nix eval` on the same command line (`DIR`
//! stands for the scratch directory, CppNix's working directory then).

mod common;

use common::{run, Env, Out};

fn nixvm(e: &Env, args: &[&str]) -> Out {
    let mut c = common::nixvm_cmd();
    c.arg("eval").args(args);
    // The links' environment: no configuration, a scratch store, HOME known.
    let links = e.cmd("nix-instantiate", &[]);
    for (k, v) in links.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    c.current_dir(&e.dir);
    run(c)
}

fn ok(e: &Env, args: &[&str], want: &str) {
    let o = nixvm(e, args);
    let want = want.replace("DIR", &e.dir.display().to_string());
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (Some(0), want.as_str()),
        "{args:?}: {}",
        o.stderr
    );
}

fn fails(e: &Env, args: &[&str], msg: &str) {
    let o = nixvm(e, args);
    assert_eq!(o.code, Some(1), "{args:?}: {}", o.stdout);
    assert!(o.stdout.is_empty(), "{args:?}: {}", o.stdout);
    assert!(o.stderr.contains(msg), "{args:?}: {}", o.stderr);
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
}

#[test]
fn values_print_as_nix_eval_prints_them() {
    let e = Env::new("nix-eval-print");
    ok(
        &e,
        &[
            "--expr",
            r#"{ a = 1; b = [ 1 "x" ]; c = { d = null; }; f = x: x; g = builtins.map; p = ./foo; r = let x = { y = 1; }; in [ x x ]; s = "a\nb\"c"; fl = 1.5; t = true; }"#,
        ],
        "{ a = 1; b = [ 1 \"x\" ]; c = { d = null; }; f = «lambda f @ «string»:1:48»; fl = 1.5; g = «primop map»; p = DIR/foo; r = [ { y = 1; } «repeated» ]; s = \"a\\nb\\\"c\"; t = true; }\n",
    );
    // Every empty set is the same set in CppNix: the second one is repeated.
    ok(
        &e,
        &[
            "--expr",
            "{ a = {}; b = {}; c = [ [] [] ]; l = let x = [1]; in [x x]; }",
        ],
        "{ a = { }; b = «repeated»; c = [ [ ] [ ] ]; l = [ [ 1 ] «repeated» ]; }\n",
    );
    let drv = r#"derivation { name = "x"; system = "x86_64-linux"; builder = "/bin/sh"; }"#;
    ok(
        &e,
        &["--expr", drv],
        "«derivation /nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv»\n",
    );
    ok(
        &e,
        &["--expr", &format!("{{ d = {drv}; }}")],
        "{ d = «derivation /nix/store/97qlv6h78lxlm9zc8849ahsbcklhsi2y-x.drv»; }\n",
    );
}

#[test]
fn errors_inside_the_value_print_in_place() {
    let e = Env::new("nix-eval-errors");
    ok(
        &e,
        &["--expr", r#"[ (throw "x") (1) ({ a = abort "y"; }) ]"#],
        "[ «error: x» 1 { a = «error: evaluation aborted with the following error message: 'y'»; } ]\n",
    );
    ok(
        &e,
        &[
            "--expr",
            r#"{ a = { b = throw "deep"; }; c = derivation { name = "x"; system = "s"; builder = throw "nob"; }; }"#,
        ],
        "{ a = { b = «error: deep»; }; c = «error: nob»; }\n",
    );
    ok(
        &e,
        &["--expr", "{ a = builtins.abort \"q\"; b = assert false; 1; }"],
        "{ a = «error: evaluation aborted with the following error message: 'q'»; b = «error: assertion 'false' failed»; }\n",
    );
    ok(
        &e,
        &["--expr", "let x = { y = x; }; in x"],
        "{ y = «repeated»; }\n",
    );
    // At the top, an error is the command's.
    fails(&e, &["--expr", "throw \"top\""], "top");
}

#[test]
fn json_raw_and_apply() {
    let e = Env::new("nix-eval-modes");
    ok(&e, &["--raw", "--expr", r#""a\nb""#], "a\nb");
    ok(
        &e,
        &["--json", "--expr", r#"{a = [1 2]; b = "x";}"#],
        "{\"a\":[1,2],\"b\":\"x\"}\n",
    );
    ok(&e, &["--expr", "{a = 1;}", "--apply", "x: x.a + 1"], "2\n");
    ok(&e, &["--expr", "x: x", "--apply", "f: f 1"], "1\n");
    fails(
        &e,
        &["--raw", "--expr", "1"],
        "cannot coerce an integer to a string: 1",
    );
    fails(
        &e,
        &["--raw", "--expr", "1"],
        "while generating the eval command output",
    );
}

#[test]
fn installables_are_attribute_paths_in_a_file_or_expression() {
    let e = Env::new("nix-eval-installables");
    e.write("f.nix", "{ hello = { name = \"hi\"; }; }\n");
    e.write("h.nix", "{x ? 1}: { y = x; }\n");
    ok(&e, &["-f", "f.nix", "hello.name"], "\"hi\"\n");
    ok(
        &e,
        &["--file", "f.nix"],
        "{ hello = { name = \"hi\"; }; }\n",
    );
    ok(&e, &["--expr", "{a.b = 1;}", "a.b"], "1\n");
    // A function is called with --arg only to select in what it returns.
    ok(&e, &["-f", "h.nix", "--arg", "x", "5", "y"], "5\n");
    ok(&e, &["-f", "h.nix"], "«lambda @ DIR/h.nix:1:1»\n");
    // Without --file or --expr the installable is a flake reference.
    fails(&e, &["hello"], "flake");
}

#[test]
fn expressions_are_pure_unless_impure_files_are_not() {
    let e = Env::new("nix-eval-pure");
    e.write("g.nix", "builtins.getEnv \"HOME\"\n");
    fails(
        &e,
        &["--expr", "builtins.currentSystem"],
        "attribute 'currentSystem' missing",
    );
    ok(&e, &["--expr", "builtins.getEnv \"HOME\""], "\"\"\n");
    ok(
        &e,
        &["--impure", "--expr", "builtins.getEnv \"HOME\""],
        "\"/home/someone\"\n",
    );
    ok(&e, &["-f", "g.nix"], "\"/home/someone\"\n");
}

/// A string that is not valid UTF-8 prints as its bytes (CppNix 2.34.8:
/// `"\xc3"` for `substring 0 1 "é"`).
#[test]
fn strings_print_their_bytes() {
    let e = Env::new("nix-eval-bytes");
    let o = common::run({
        let mut c = e.cmd(
            "nix-instantiate",
            &["--eval", "--strict", "-E", "builtins.substring 0 1 \"é\""],
        );
        c.stdout(std::process::Stdio::piped());
        c
    });
    assert_eq!(o.code, Some(0));
    let raw = e
        .cmd(
            "nix-instantiate",
            &["--eval", "--strict", "-E", "builtins.substring 0 1 \"é\""],
        )
        .output()
        .unwrap()
        .stdout;
    assert_eq!(raw, b"\"\xc3\"\n");
}
