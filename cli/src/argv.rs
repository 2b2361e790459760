//! The command line before clap sees it: which command the binary is being
//! (`nix-instantiate`, `nix-build` or `nixvm`), CppNix's setting flags turned
//! into `--option NAME VALUE`, and clap's errors turned into CppNix's.
//!
//! CppNix derives a flag from every setting: `--NAME` and `--no-NAME` for a
//! Boolean, `--NAME VALUE` for the others, `--extra-NAME VALUE` for lists. One
//! rewrite here gives nixvm all of them with one meaning: every setting is read
//! from `--option` (see `config::option_value`), wherever it came from.

use crate::settings::{self, Kind};
use std::ffi::OsString;

/// What the binary was invoked as.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Personality {
    Nixvm,
    NixInstantiate,
    NixBuild,
    /// nix-env, whose command line `nixenv` parses itself.
    NixEnv,
}

impl Personality {
    pub fn of(argv0: &str) -> Personality {
        let base = argv0.rsplit('/').next().unwrap_or(argv0);
        match base {
            "nix-instantiate" => Personality::NixInstantiate,
            "nix-build" => Personality::NixBuild,
            "nix-env" => Personality::NixEnv,
            _ => Personality::Nixvm,
        }
    }
    /// The name CppNix's messages use ("Try 'nix-instantiate --help'").
    pub fn program(self, sub: Option<&str>) -> String {
        match self {
            Personality::NixInstantiate => "nix-instantiate".into(),
            Personality::NixBuild => "nix-build".into(),
            Personality::NixEnv => "nix-env".into(),
            Personality::Nixvm => match sub {
                Some(s) => format!("nixvm {s}"),
                None => "nixvm".into(),
            },
        }
    }
    /// The subcommand this personality runs.
    pub fn subcommand(self) -> Option<&'static str> {
        match self {
            Personality::NixInstantiate => Some("instantiate"),
            Personality::NixBuild => Some("build"),
            Personality::NixEnv | Personality::Nixvm => None,
        }
    }
}

/// Flags of ours that take values, so that a value is never mistaken for a
/// flag (`-A --foo` selects the attribute "--foo").
/// `nix_eval`: the command is `nixvm eval`, where `--expr`, `--file` and
/// `--apply` take values (for nix-instantiate `--expr` is a switch).
fn values_taken(flag: &str, nix_eval: bool) -> usize {
    match flag {
        "--arg" | "--argstr" | "--arg-from-file" | "--option" => 2,
        "--arg-from-stdin" | "-A" | "--attr" | "-I" | "--include" | "-o" | "--out-link"
        | "--add-root" | "--store" | "--eval-store" | "-j" | "--heap-census" | "--drv-link"
        | "--log-format" => 1,
        "-f" | "--file" | "--apply" | "--expr" if nix_eval => 1,
        _ => 0,
    }
}

/// A flag the other command has but `sub` (`instantiate` or `build`) does not,
/// which CppNix rejects as unrecognised (both share one set of flags here).
pub fn foreign_flag(sub: &str, args: &[String]) -> Option<String> {
    let foreign: &[&str] = match sub {
        "build" => &[
            "--eval",
            "--eval-only",
            "--parse",
            "--strict",
            "--json",
            "--xml",
            "--raw",
            "--find-file",
            "--read-write-mode",
            "--no-location",
        ],
        "instantiate" => &[
            "-o",
            "--out-link",
            "--no-out-link",
            "--check",
            "-L",
            "--print-build-logs",
            "--drv-link",
        ],
        _ => return None,
    };
    let mut it = args.iter().skip(2);
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if foreign.contains(&a.as_str()) {
            return Some(a.clone());
        }
        for _ in 0..values_taken(a, false) {
            it.next();
        }
    }
    None
}

/// The arguments with setting flags rewritten to `--option NAME VALUE`.
/// An unknown flag is left for clap to reject; a setting flag's value that
/// the setting cannot take is CppNix's usage error (with `--option` it is
/// only a warning, see `config::check_options`).
pub fn rewrite(args: Vec<String>) -> Result<Vec<String>, String> {
    let nix_eval = args.get(1).map(String::as_str) == Some("eval");
    let mut out = Vec::with_capacity(args.len());
    let mut it = args.into_iter();
    // The program name and (for nixvm) the subcommand pass unchanged.
    if let Some(a) = it.next() {
        out.push(a);
    }
    while let Some(a) = it.next() {
        if a == "--" {
            out.push(a);
            out.extend(it);
            break;
        }
        let n = values_taken(&a, nix_eval);
        if n > 0 {
            out.push(a);
            for _ in 0..n {
                if let Some(v) = it.next() {
                    out.push(v);
                }
            }
            continue;
        }
        let Some(name) = a.strip_prefix("--") else {
            out.push(a);
            continue;
        };
        // Flags of the commands themselves win over a setting of the same name.
        if crate::args::is_command_flag(name) {
            out.push(a);
            continue;
        }
        match setting_flag(name) {
            Some((setting, Some(value))) => {
                out.extend(["--option".into(), setting, value.into()]);
            }
            Some((setting, None)) => match it.next() {
                Some(v) => {
                    if let Some(msg) = settings::invalid_value(&setting, &v) {
                        return Err(msg);
                    }
                    out.extend(["--option".into(), setting, v])
                }
                None => out.push(a),
            },
            None => out.push(a),
        }
    }
    Ok(out)
}

/// `--NAME`, `--no-NAME` or `--extra-NAME`: the setting and, for a Boolean,
/// its value (None: the value is the next argument).
fn setting_flag(name: &str) -> Option<(String, Option<&'static str>)> {
    // The sandbox mode's flags are CppNix's own: no value, three modes.
    match name {
        "sandbox" => return Some(("sandbox".into(), Some("true"))),
        "no-sandbox" => return Some(("sandbox".into(), Some("false"))),
        "relaxed-sandbox" => return Some(("sandbox".into(), Some("relaxed"))),
        _ => {}
    }
    if let Some(kind) = settings::kind(name) {
        return Some(match kind {
            Kind::Bool => (name.into(), Some("true")),
            _ => (name.into(), None),
        });
    }
    if let Some(base) = name.strip_prefix("no-") {
        if settings::kind(base) == Some(Kind::Bool) {
            return Some((base.into(), Some("false")));
        }
    }
    if let Some(base) = name.strip_prefix("extra-") {
        if settings::kind(base) == Some(Kind::List) {
            return Some((name.into(), None));
        }
    }
    None
}

/// A clap error as CppNix reports a bad command line: one `error:` line, then
/// "Try '... --help' for more information.", exit status 1.
pub fn usage_error(e: &clap::Error, program: &str) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let arg = || match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(" "),
        _ => String::new(),
    };
    let msg = match e.kind() {
        ErrorKind::UnknownArgument => {
            let a = arg();
            let flag = a.split('=').next().unwrap_or(&a).to_string();
            format!("unrecognised flag '{flag}'")
        }
        ErrorKind::WrongNumberOfValues | ErrorKind::InvalidValue
            if e.get(ContextKind::InvalidArg).is_some() =>
        {
            let flag = arg();
            let flag = flag.split(' ').next().unwrap_or(&flag).to_string();
            let want = match e.get(ContextKind::ExpectedNumValues) {
                Some(ContextValue::Number(n)) => *n as usize,
                _ => 1,
            };
            let got = match e.get(ContextKind::ActualNumValues) {
                Some(ContextValue::Number(n)) => *n as usize,
                _ => 0,
            };
            format!("flag '{flag}' requires {want} argument(s), but only {got} were given")
        }
        _ => e.kind().as_str().map(str::to_string).unwrap_or_else(|| {
            let s = e.to_string();
            let first = s.lines().next().unwrap_or("");
            first.trim_start_matches("error: ").to_string()
        }),
    };
    format!("error: {msg}\nTry '{program} --help' for more information.\n")
}

/// `argv` as UTF-8 strings (CppNix's arguments are bytes; ours are lossless
/// for every UTF-8 command line, and a non-UTF-8 one is refused clearly).
pub fn utf8_args(args: impl Iterator<Item = OsString>) -> Result<Vec<String>, String> {
    args.map(|a| {
        a.into_string()
            .map_err(|a| format!("argument '{}' is not valid UTF-8", a.to_string_lossy()))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(s: &str) -> String {
        rewrite(s.split(' ').map(str::to_string).collect())
            .expect("valid")
            .join(" ")
    }

    #[test]
    fn a_setting_flag_with_a_value_its_setting_cannot_take_is_refused() {
        let r = |s: &str| rewrite(s.split(' ').map(str::to_string).collect());
        assert_eq!(
            r("x --max-call-depth foo"),
            Err("setting 'max-call-depth' has invalid value 'foo'".into())
        );
        assert!(r("x --timeout -1").is_ok());
        // nix-instantiate's --expr is a switch; nixvm eval's takes a value.
        assert_eq!(
            rw("x --expr --show-trace 1"),
            "x --expr --option show-trace true 1"
        );
        assert_eq!(
            rw("x eval --expr --show-trace"),
            "x eval --expr --show-trace"
        );
    }

    #[test]
    fn setting_flags_become_options() {
        assert_eq!(
            rw("x --pure-eval --no-sandbox --max-jobs 4 -A y"),
            "x --option pure-eval true --option sandbox false --option max-jobs 4 -A y"
        );
        assert_eq!(
            rw("x --extra-allowed-uris http://a --system aarch64-linux"),
            "x --option extra-allowed-uris http://a --option system aarch64-linux"
        );
        // A flag's value is never a flag, and command flags stay.
        assert_eq!(rw("x -A --pure-eval --eval"), "x -A --pure-eval --eval");
        assert_eq!(rw("x --frobnicate"), "x --frobnicate");
        assert_eq!(rw("x -- --pure-eval"), "x -- --pure-eval");
    }

    #[test]
    fn personality_from_argv0() {
        assert_eq!(Personality::of("/a/b/nix-build"), Personality::NixBuild);
        assert_eq!(
            Personality::of("nix-instantiate"),
            Personality::NixInstantiate
        );
        assert_eq!(Personality::of("nixvm"), Personality::Nixvm);
    }
}
