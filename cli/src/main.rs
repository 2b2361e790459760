//! The `nixvm` command: `parse`, `eval` and a `nix-instantiate`-compatible
//! `instantiate`. Everything here goes through the public `nixvm` API.

mod args;
mod build;
mod config;
mod diag;
mod instantiate;

use args::InstArgs;
use clap::{Parser, Subcommand};
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

#[derive(Parser)]
#[command(
    name = "nixvm",
    version,
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
        #[arg(long = "extra-experimental-features", value_name = "FEATURES")]
        features: Vec<String>,
    },
    /// Evaluate an expression (`-E`) or a file and print its value.
    Eval(InstArgs),
    /// nix-instantiate-compatible evaluation and instantiation.
    Instantiate(InstArgs),
    /// Instantiate and build derivations (like nix-build), linking ./result to the output.
    Build(InstArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Evaluation recursion is on the heap, but builtins re-enter the VM;
    // run on a big stack so stacker rarely needs to switch.
    let child = std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || run(cli));
    match child.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        _ => {
            eprintln!("error: internal error (evaluator thread panicked)");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> ExitCode {
    match cli.cmd {
        Cmd::Parse { file, features } => {
            let args = InstArgs {
                files: vec![file],
                parse: true,
                features,
                ..Default::default()
            };
            instantiate::instantiate(args)
        }
        Cmd::Eval(mut a) => {
            a.eval = true;
            a.codespan = true;
            instantiate::instantiate(a)
        }
        Cmd::Instantiate(a) => instantiate::instantiate(a),
        Cmd::Build(a) => build::build(a),
    }
}
