//! The `nixvm` command: `parse`, `eval` and a `nix-instantiate`-compatible
//! `instantiate`. Everything here goes through the public `nixvm` API.

mod args;
mod argv;
mod attrpath;
mod build;
mod conf;
mod config;
mod daemonbuild;
mod diag;
mod evaljobs;
mod instantiate;
mod nixenv;
mod nixeval;
mod settings;
mod storeuri;

use args::InstArgs;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

// Evaluation allocates millions of small, short-lived objects (thunks, envs, attribute
// sets); mimalloc's size-class pages serve them faster and with less per-object overhead
// than glibc malloc. Embedders pick their own allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its first arena (1 GiB reserved) eagerly on Linux, which left hello.drvPath
/// at 102 MB RSS against 70 MB without (NixOS minimal 656 against 621 MB, no slower). Set
/// before the first allocation that reserves an arena, from an ELF constructor, which runs
/// before Rust's runtime allocates anything; `MIMALLOC_ARENA_EAGER_COMMIT` in the
/// environment still wins.
#[cfg(all(feature = "mimalloc", target_os = "linux"))]
#[used]
#[link_section = ".init_array"]
static MIMALLOC_OPTIONS: extern "C" fn() = {
    extern "C" fn lazy_arena_commit() {
        extern "C" {
            fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
            fn getenv(name: *const std::ffi::c_char) -> *const std::ffi::c_char;
        }
        /// `mi_option_arena_eager_commit` in mimalloc's `mi_option_t` (v2 and v3).
        const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
        // SAFETY: reads the environment and sets an option; allocates nothing.
        unsafe {
            if getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
                mi_option_set(ARENA_EAGER_COMMIT, 0);
            }
        }
    }
    lazy_arena_commit
};

/// The CppNix version whose commands, flags and answers nixvm follows.
pub const COMPATIBLE_NIX: &str = "2.34.8";

#[derive(Parser)]
#[command(
    name = "nixvm",
    disable_version_flag = true,
    about = "A fast evaluator for the Nix language"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print the syntax tree of a file (or `-` for stdin) as nix-instantiate --parse does.
    Parse {
        file: String,
        #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"])]
        option: Vec<String>,
    },
    /// `nix eval`: print the value of an attribute path in --file or --expr
    /// (as `nix eval` prints it; --json, --raw, --apply).
    Eval(nixeval::EvalArgs),
    /// nix-instantiate: evaluate, instantiate derivations (also run as `nix-instantiate`).
    Instantiate(InstArgs),
    /// nix-build: instantiate and build, linking ./result (also run as `nix-build`).
    Build(InstArgs),
    /// nix-eval-jobs: evaluate the derivations under an expression in worker processes,
    /// one JSON line per job.
    EvalJobs(evaljobs::JobArgs),
    /// nix-env (also run as `nix-env`): `-qa` queries what an expression offers.
    Env {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Make `nix-instantiate`, `nix-build` and `nix-env` links to this binary in DIR: put DIR
    /// first on PATH to run scripts written for CppNix with nixvm.
    Links { dir: PathBuf },
}

fn main() -> ExitCode {
    let args = match argv::utf8_args(std::env::args_os()) {
        Ok(a) => a,
        Err(e) => {
            nixvm::report::stderr_line(&format!("error: {e}"));
            return ExitCode::from(1);
        }
    };
    let personality = argv::Personality::of(args.first().map(String::as_str).unwrap_or(""));
    // nix-env's command line is its own (operations, compound short flags):
    // it is parsed by its module, not by clap.
    let env_args = match personality {
        argv::Personality::NixEnv => Some(args[1..].to_vec()),
        _ if args.get(1).map(String::as_str) == Some("env") => Some(args[2..].to_vec()),
        _ => None,
    };
    if let Some(rest) = env_args {
        if rest.iter().any(|a| a == "--version") {
            let _ = writeln!(
                std::io::stdout(),
                "nix-env (nixvm {}, like Nix) {COMPATIBLE_NIX}",
                env!("CARGO_PKG_VERSION")
            );
            return ExitCode::SUCCESS;
        }
        return on_big_stack(move || nixenv::main(rest));
    }
    let sub0 = args.get(1).cloned();
    let mut args = match argv::rewrite(args) {
        Ok(a) => a,
        Err(msg) => {
            let sub = personality.subcommand().map(str::to_string).or(sub0);
            let program = personality.program(sub.as_deref());
            nixvm::report::stderr_line(&format!(
                "error: {msg}\nTry '{program} --help' for more information."
            ));
            return ExitCode::from(1);
        }
    };
    if let Some(sub) = personality.subcommand() {
        args.insert(1, sub.to_string());
    }
    let sub = args.get(1).cloned();
    let program = personality.program(sub.as_deref());
    if let Some(flag) = sub.as_deref().and_then(|s| argv::foreign_flag(s, &args)) {
        nixvm::report::stderr_line(&format!(
            "error: unrecognised flag '{flag}'\nTry '{program} --help' for more information."
        ));
        return ExitCode::from(1);
    }
    let before_dashes = args.iter().take_while(|a| *a != "--");
    if before_dashes.skip(1).any(|a| a == "--version") {
        let _ = match personality {
            argv::Personality::Nixvm => writeln!(
                std::io::stdout(),
                "nixvm {} (like Nix {COMPATIBLE_NIX})",
                env!("CARGO_PKG_VERSION")
            ),
            _ => writeln!(
                std::io::stdout(),
                "{program} (nixvm {}, like Nix) {COMPATIBLE_NIX}",
                env!("CARGO_PKG_VERSION")
            ),
        };
        return ExitCode::SUCCESS;
    }
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return ExitCode::from(1);
            }
            let _ = std::io::stderr().write_all(argv::usage_error(&e, &program).as_bytes());
            return ExitCode::from(1);
        }
    };
    on_big_stack(move || run(cli))
}

/// Evaluation recursion is on the heap, but builtins re-enter the VM; run
/// on a big stack so stacker rarely needs to switch.
fn on_big_stack(f: impl FnOnce() -> ExitCode + Send + 'static) -> ExitCode {
    let child = std::thread::Builder::new().stack_size(64 << 20).spawn(f);
    match child.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            nixvm::report::stderr_line("error: internal error (evaluator thread panicked)");
            ExitCode::from(1)
        }
    }
}

/// Settings from the configuration files and $NIX_CONFIG go before the command
/// line's, which win; bad values end the run, unknown names are warned about.
pub(crate) fn with_config(mut a: InstArgs) -> Result<InstArgs, ExitCode> {
    let loaded = conf::load();
    for e in &loaded.errors {
        nixvm::report::stderr_line(&format!("error: {e}"));
    }
    if !loaded.errors.is_empty() {
        return Err(ExitCode::from(1));
    }
    // $NIX_PATH beats the configuration files' `nix-path` (and loses to the
    // command line's), as in CppNix.
    let nix_path_env = std::env::var_os("NIX_PATH").is_some();
    let mut all: Vec<String> = loaded
        .pairs
        .into_iter()
        .filter(|(k, _)| !(nix_path_env && k == "nix-path"))
        .flat_map(|(k, v)| [k, v])
        .collect();
    all.append(&mut a.option);
    a.option = all;
    match config::check_options(&a) {
        Ok(warnings) => {
            for w in warnings {
                nixvm::report::stderr_line(&format!("warning: {w}"));
            }
        }
        Err(e) => {
            nixvm::report::stderr_line(&format!("error: {e}"));
            return Err(ExitCode::from(1));
        }
    }
    if a.debugger {
        nixvm::report::stderr_line(
            "error: '--debugger' is not supported: nixvm has no interactive debugger",
        );
        return Err(ExitCode::from(1));
    }
    Ok(a)
}

fn run(cli: Cli) -> ExitCode {
    let (cmd, a) = match cli.cmd {
        Cmd::Links { dir } => return links(&dir),
        Cmd::Env { args } => return nixenv::main(args),
        Cmd::EvalJobs(j) => {
            let argv: Vec<String> = std::env::args()
                .skip_while(|a| a != "eval-jobs")
                .skip(1)
                .filter(|a| a != "--worker-protocol")
                .collect();
            return evaljobs::main(j, argv);
        }
        Cmd::Parse { file, option } => {
            let args = InstArgs {
                files: vec![file],
                parse: true,
                codespan: true,
                option,
                ..Default::default()
            };
            ("instantiate", args)
        }
        Cmd::Eval(e) => {
            return match with_config(e.inst_args()) {
                Ok(a) => nixeval::eval(e, a),
                Err(code) => code,
            };
        }
        Cmd::Instantiate(a) => ("instantiate", a),
        Cmd::Build(a) => ("build", a),
    };
    let a = match with_config(a) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match cmd {
        "build" => build::build(a),
        _ => instantiate::instantiate(a),
    }
}

/// `nixvm links DIR`: the multi-call links.
fn links(dir: &std::path::Path) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            nixvm::report::stderr_line(&format!("error: cannot find this program's path: {e}"));
            return ExitCode::from(1);
        }
    };
    if let Err(e) = std::fs::create_dir_all(dir) {
        nixvm::report::stderr_line(&format!("error: creating '{}': {e}", dir.display()));
        return ExitCode::from(1);
    }
    for name in ["nix-instantiate", "nix-build", "nix-env"] {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_ok() {
            let _ = std::fs::remove_file(&link);
        }
        if let Err(e) = std::os::unix::fs::symlink(&exe, &link) {
            nixvm::report::stderr_line(&format!("error: creating '{}': {e}", link.display()));
            return ExitCode::from(1);
        }
        let _ = writeln!(std::io::stdout(), "{}", link.display());
    }
    ExitCode::SUCCESS
}
