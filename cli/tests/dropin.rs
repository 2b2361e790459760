//! nixvm as a drop-in for CppNix's commands: the binary run through a
//! `nix-instantiate` / `nix-build` link with CppNix-style command lines,
//! settings flags and configuration files. Expected texts are CppNix 2.34.8's
//! answers to the same command lines, recorded with
//! `../shared/tools/reference-nix.sh run nix-instantiate ...`.

mod common;

use common::{inst, run, Env};
use std::path::Path;
use std::process::Stdio;

#[test]
fn the_link_is_nix_instantiate() {
    let e = Env::new("link");
    let o = inst(&e, &["--eval", "-E", "1 + 1"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (Some(0), "2\n", "")
    );
    // --eval-only is nix-instantiate's old spelling of --eval.
    let o = inst(&e, &["--eval-only", "--strict", "-E", "[ (1 + 1) ]"]);
    assert_eq!(o.stdout, "[ 2 ]\n");
    let o = inst(&e, &["--version"]);
    assert!(
        o.stdout.starts_with("nix-instantiate ") && o.stdout.ends_with(" 2.34.8\n"),
        "{}",
        o.stdout
    );
}

#[test]
fn usage_errors_as_cppnix() {
    let e = Env::new("usage");
    let o = inst(&e, &["--frobnicate"]);
    assert_eq!(o.code, Some(1));
    assert_eq!(
        o.stderr,
        "error: unrecognised flag '--frobnicate'\nTry 'nix-instantiate --help' for more information.\n"
    );
    let o = inst(&e, &["--arg", "x"]);
    assert_eq!(o.code, Some(1));
    assert_eq!(
        o.stderr,
        "error: flag '--arg' requires 2 argument(s), but only 1 were given\nTry 'nix-instantiate --help' for more information.\n"
    );
    let o = e.run("nix-build", &["--frobnicate"]);
    assert_eq!(o.code, Some(1));
    assert!(o
        .stderr
        .ends_with("Try 'nix-build --help' for more information.\n"));
    // Each command refuses the other's flags, as CppNix.
    let o = e.run("nix-build", &["--eval", "-E", "1"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            Some(1),
            "error: unrecognised flag '--eval'\nTry 'nix-build --help' for more information.\n"
        )
    );
    let o = inst(&e, &["-o", "x", "-E", "1"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            Some(1),
            "error: unrecognised flag '-o'\nTry 'nix-instantiate --help' for more information.\n"
        )
    );
}

#[test]
fn settings_warnings_as_cppnix() {
    let e = Env::new("warn");
    let o = inst(&e, &["--option", "foo", "bar", "--eval", "-E", "1"]);
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "1\n"));
    assert_eq!(o.stderr, "warning: unknown setting 'foo'\n");
    let o = inst(&e, &["--option", "pure-eval", "maybe", "--eval", "-E", "1"]);
    assert_eq!((o.code, o.stdout.as_str()), (Some(0), "1\n"));
    assert_eq!(
        o.stderr,
        "warning: Boolean setting 'pure-eval' has invalid value 'maybe'\n"
    );
    // Every setting is known, including list settings' extra- forms.
    let o = inst(
        &e,
        &[
            "--option",
            "substituters",
            "",
            "--extra-substituters",
            "x",
            "--eval",
            "-E",
            "1",
        ],
    );
    assert_eq!((o.code, o.stderr.as_str()), (Some(0), ""));
}

const HOME: &str = "builtins.getEnv \"HOME\"";

#[test]
fn setting_flags_and_their_negations() {
    let e = Env::new("flags");
    assert_eq!(
        inst(&e, &["--eval", "-E", HOME]).stdout,
        "\"/home/someone\"\n"
    );
    assert_eq!(
        inst(&e, &["--eval", "--pure-eval", "-E", HOME]).stdout,
        "\"\"\n"
    );
    // The last flag wins, as with CppNix.
    let o = inst(&e, &["--eval", "--no-pure-eval", "--pure-eval", "-E", HOME]);
    assert_eq!(o.stdout, "\"\"\n");
    let o = inst(&e, &["--eval", "--pure-eval", "--no-pure-eval", "-E", HOME]);
    assert_eq!(o.stdout, "\"/home/someone\"\n");
}

#[test]
fn settings_from_files_and_environment() {
    let e = Env::new("conf");
    e.write("etc/nix.conf", "# system\ninclude more.conf\n");
    e.write("etc/more.conf", "pure-eval = true\n");
    assert_eq!(inst(&e, &["--eval", "-E", HOME]).stdout, "\"\"\n");
    // The user's file comes after the system's; NIX_CONFIG after both; the
    // command line last.
    e.write("config/nix/nix.conf", "pure-eval = false\n");
    assert_eq!(
        inst(&e, &["--eval", "-E", HOME]).stdout,
        "\"/home/someone\"\n"
    );
    let mut c = e.cmd("nix-instantiate", &["--eval", "-E", HOME]);
    c.env("NIX_CONFIG", "pure-eval = true");
    assert_eq!(run(c).stdout, "\"\"\n");
    let mut c = e.cmd(
        "nix-instantiate",
        &["--eval", "--option", "pure-eval", "false", "-E", HOME],
    );
    c.env("NIX_CONFIG", "pure-eval = true");
    assert_eq!(run(c).stdout, "\"/home/someone\"\n");
    // NIX_USER_CONF_FILES replaces the XDG locations.
    let f = e.write("other.conf", "pure-eval = true\n");
    let mut c = e.cmd("nix-instantiate", &["--eval", "-E", HOME]);
    c.env("NIX_USER_CONF_FILES", &f);
    assert_eq!(run(c).stdout, "\"\"\n");
}

#[test]
fn search_path_file_arguments() {
    let e = Env::new("sp");
    e.write(
        "pkgs/default.nix",
        "{ hello = \"hi\"; lib = import ./lib; }\n",
    );
    e.write("pkgs/lib/default.nix", "{ version = \"1.0\"; }\n");
    let pkgs = format!("nixpkgs={}", e.dir.join("pkgs").display());
    let o = inst(&e, &["--eval", "-I", &pkgs, "<nixpkgs>", "-A", "hello"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (Some(0), "\"hi\"\n"),
        "{}",
        o.stderr
    );
    let o = inst(
        &e,
        &["--eval", "-I", &pkgs, "<nixpkgs/lib>", "-A", "version"],
    );
    assert_eq!(o.stdout, "\"1.0\"\n", "{}", o.stderr);
    let o = inst(&e, &["--find-file", "-I", &pkgs, "nixpkgs/lib"]);
    assert_eq!(o.stdout, format!("{}\n", e.dir.join("pkgs/lib").display()));
    let o = inst(&e, &["--eval", "<nope>"]);
    assert_eq!(o.code, Some(1));
    assert_eq!(
        o.stderr,
        "error: file 'nope' was not found in the Nix search path (add it using $NIX_PATH or -I)\n"
    );
    // An entry whose path does not exist is ignored, with a warning, once.
    let o = inst(
        &e,
        &[
            "--eval",
            "-I",
            "nope=/nonexistent",
            "-E",
            "[ <nixpkgs> ]",
            "-I",
            &pkgs,
        ],
    );
    assert_eq!(o.stderr, "", "an entry that does not match is not read");
    let o = inst(
        &e,
        &[
            "--eval",
            "--strict",
            "-I",
            "nope=/nonexistent",
            "-E",
            "builtins.tryEval <nope>",
        ],
    );
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (
            Some(0),
            "{ success = false; value = false; }\n",
            "warning: Nix search path entry '/nonexistent' does not exist, ignoring\n"
        )
    );
}

#[test]
fn nix_path_beats_the_configuration_and_loses_to_the_command_line() {
    let e = Env::new("nixpath");
    let (one, two) = (e.dir.join("one"), e.dir.join("two"));
    std::fs::create_dir_all(&one).unwrap();
    std::fs::create_dir_all(&two).unwrap();
    let conf = format!("nix-path = a={}", one.display());
    let env_path = format!("a={}", two.display());
    let mut c = e.cmd("nix-instantiate", &["--eval", "-E", "<a>"]);
    c.env("NIX_CONFIG", &conf).env("NIX_PATH", &env_path);
    assert_eq!(run(c).stdout, format!("{}\n", two.display()));
    let cli = format!("a={}", e.dir.display());
    let mut c = e.cmd(
        "nix-instantiate",
        &["--eval", "-E", "<a>", "--option", "nix-path", &cli],
    );
    c.env("NIX_CONFIG", &conf).env("NIX_PATH", &env_path);
    assert_eq!(run(c).stdout, format!("{}\n", e.dir.display()));
    let mut c = e.cmd("nix-instantiate", &["--eval", "-E", "<a>"]);
    c.env("NIX_CONFIG", &conf);
    assert_eq!(run(c).stdout, format!("{}\n", one.display()));
}

/// Tabs in messages become spaces to tab stops counted from the start of the
/// whole message (CppNix's log filter), as 2.34.8 prints them.
#[test]
fn tabs_in_messages_as_cppnix() {
    let e = Env::new("tabs");
    let o = inst(&e, &["--eval", "-E", r#"throw "a\tb\tc""#]);
    assert_eq!(
        o.stderr,
        "error:\n       … while calling the 'throw' builtin\n         at «string»:1:1:\n            1| throw \"a\\tb\\tc\"\n             | ^\n\n       error: a  b       c\n"
    );
    let o = inst(
        &e,
        &["--eval", "-E", r#"builtins.trace "abcdefghijk\tyz\tq" 1"#],
    );
    assert_eq!(
        (o.stdout.as_str(), o.stderr.as_str()),
        ("1\n", "trace: abcdefghijk      yz      q\n")
    );
}

#[test]
fn attribute_paths_as_cppnix() {
    let e = Env::new("attrs");
    let expr = "{ a.\"b.c\" = [ 1 2 ]; l = [ 1 ]; n = 1; s = { hello = 1; halo = 2; }; }";
    let sel = |path: &str| inst(&e, &["--eval", "-E", expr, "-A", path]);
    assert_eq!(sel("a.\"b.c\".1").stdout, "2\n");
    let cases = [
        ("l.x", "error: the expression selected by the selection path 'l.x' should be a set but is a list\n"),
        ("l.3", "error: list index 3 in selection path 'l.3' is out of range\n"),
        ("a.\"b", "error: missing closing quote in selection path 'a.\"b'\n"),
        ("n.b", "error: the expression selected by the selection path 'n.b' should be a set but is an integer\n"),
        (
            "s.helo",
            "error: attribute 'helo' in selection path 's.helo' not found\n       Did you mean one of halo or hello?\n",
        ),
    ];
    for (path, want) in cases {
        let o = sel(path);
        assert_eq!((o.code, o.stderr.as_str()), (Some(1), want), "-A {path}");
    }
}

#[test]
fn args_from_files_and_stdin() {
    let e = Env::new("args");
    let f = e.write("arg.txt", "from a file");
    let o = inst(
        &e,
        &[
            "--eval",
            "-E",
            "{ x }: x",
            "--arg-from-file",
            "x",
            f.to_str().unwrap(),
        ],
    );
    assert_eq!(o.stdout, "\"from a file\"\n", "{}", o.stderr);
    let mut c = e.cmd(
        "nix-instantiate",
        &["--eval", "-E", "{ x }: x", "--arg-from-stdin", "x"],
    );
    c.stdin(Stdio::piped()).stdout(Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"from stdin")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout), "\"from stdin\"\n");
}

#[test]
fn closed_streams_end_cleanly() {
    let e = Env::new("pipes");
    // Many trace lines into a closed stderr, a long value into a closed stdout:
    // the run ends (no hang) with no panic (101) and no signal.
    let expr = "builtins.foldl' (a: x: builtins.trace x a) 0 (builtins.genList (x: x) 20000)";
    let mut c = e.cmd("nix-instantiate", &["--eval", "-E", expr]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let mut c = e.cmd(
        "nix-instantiate",
        &["--eval", "--strict", "-E", "builtins.genList (x: x) 200000"],
    );
    c.stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(
        status.code().is_some_and(|c| c == 0 || c == 1),
        "{status:?}"
    );
}

fn sh() -> Option<&'static Path> {
    Path::new("/bin/sh").exists().then(|| Path::new("/bin/sh"))
}

#[test]
fn nix_build_statuses() {
    let Some(_) = sh() else { return };
    let e = Env::new("build");
    let f = e.write(
        "fail.nix",
        "derivation { name = \"fail\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"exit 3\" ]; }\n",
    );
    let f = f.to_str().unwrap();
    let o = e.run("nix-build", &[f, "--dry-run", "--no-sandbox"]);
    assert_eq!(o.code, Some(0), "{}", o.stderr);
    assert!(
        o.stderr
            .starts_with("this derivation will be built:\n  /nix/store/"),
        "{}",
        o.stderr
    );
    assert_eq!(o.stdout, "");
    let o = e.run("nix-build", &[f, "--no-out-link", "--no-sandbox"]);
    assert_eq!(o.code, Some(100), "{}", o.stderr);
    assert!(
        o.stderr.contains("builder failed with exit code 3"),
        "{}",
        o.stderr
    );
    // A closed stderr while building neither hangs nor panics.
    let mut c = e.cmd("nix-build", &[f, "--no-out-link", "--no-sandbox"]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(100));
}

#[test]
fn gc_roots_as_nix_instantiate_makes_them() {
    let e = Env::new("roots");
    let two = r#"[ (derivation { name = "x"; system = "x"; builder = "/bin/sh"; }) (derivation { name = "y"; system = "x"; builder = "/bin/sh"; outputs = [ "dev" ]; }) ]"#;
    let o = inst(&e, &["--add-root", "r", "-E", two]);
    let root = e.dir.join("r").display().to_string();
    assert_eq!(
        (o.code, o.stdout.clone(), o.stderr.as_str()),
        (Some(0), format!("{root}\n{root}-2!dev\n"), ""),
    );
    // CppNix 2.34.8's paths for these two derivations.
    let target = |p: &str| std::fs::read_link(e.dir.join(p)).unwrap();
    assert_eq!(
        target("r").to_string_lossy(),
        "/nix/store/safnr1ywsblyl5qfbca0178m104hzxaw-x.drv"
    );
    assert_eq!(
        target("r-2").to_string_lossy(),
        "/nix/store/7345355n7hajjwgwfad9pxr8gz39wn3q-y.drv"
    );
    let o = inst(&e, &["-E", two]);
    assert_eq!(
        o.stderr,
        "warning: you did not specify '--add-root'; the result might be removed by the garbage collector\n"
    );
    assert_eq!(o.stdout.lines().count(), 2);
}

#[test]
fn setting_values_are_checked_as_cppnix_checks_them() {
    let e = Env::new("values");
    let o = inst(&e, &["--eval", "--option", "cores", "x", "-E", "1"]);
    assert_eq!(
        (o.code, o.stdout.as_str(), o.stderr.as_str()),
        (
            Some(0),
            "1\n",
            "warning: setting 'cores' has invalid value 'x'\n"
        )
    );
    let o = inst(
        &e,
        &["--eval", "--option", "max-call-depth", "-1", "-E", "1"],
    );
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            Some(0),
            "warning: setting 'max-call-depth' has invalid value '-1'\n"
        )
    );
    // The flag CppNix derives from the setting refuses the value outright.
    let o = inst(&e, &["--eval", "--max-call-depth", "foo", "-E", "1"]);
    assert_eq!(
        (o.code, o.stderr.as_str()),
        (
            Some(1),
            "error: setting 'max-call-depth' has invalid value 'foo'\nTry 'nix-instantiate --help' for more information.\n"
        )
    );
    // nix-instantiate's --expr takes no value: what follows is a flag.
    let o = inst(&e, &["--eval", "--expr", "--show-trace", "1"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (Some(0), "1\n"),
        "{}",
        o.stderr
    );
    let o = inst(&e, &["--eval", "--argstr", "x", "-y", "-E", "{x}: x"]);
    assert_eq!(o.stdout, "\"-y\"\n", "{}", o.stderr);
}
