//! The command line of every subcommand: one set of nix-instantiate/nix-build
//! flags, parsed by clap.

use clap::Args;

#[derive(Args, Default)]
pub struct InstArgs {
    /// Errors rendered with source excerpts (`nixvm eval`) instead of CppNix's layout.
    #[arg(skip)]
    pub codespan: bool,
    /// Files (or expressions with -E); `-` reads stdin.
    pub files: Vec<String>,
    /// Evaluate and print the value instead of instantiating.
    #[arg(long, visible_alias = "eval-only")]
    pub eval: bool,
    /// Print the syntax tree of the files as CppNix does, evaluating nothing.
    #[arg(long)]
    pub parse: bool,
    /// With --eval: evaluate the whole value (nested sets and lists), not only its top.
    #[arg(long)]
    pub strict: bool,
    /// With --eval: print the value as JSON.
    #[arg(long)]
    pub json: bool,
    /// With --eval: print the value as XML (builtins.toXML's form).
    #[arg(long)]
    pub xml: bool,
    /// With --eval: print the value, a string, without quotes or escapes.
    #[arg(long)]
    pub raw: bool,
    /// With --xml: leave out the source positions of functions and attributes.
    #[arg(long = "no-location")]
    pub no_location: bool,
    /// Treat the arguments as expressions.
    #[arg(short = 'E', long = "expr")]
    pub expr: bool,
    /// Select the attribute path ATTR of the value (`pkgs.hello`, `"a.b".c`, list indices); repeatable.
    #[arg(short = 'A', long = "attr")]
    pub attr: Vec<String>,
    /// Add a search path entry (`nixpkgs=/path`, `/path`), before $NIX_PATH's.
    #[arg(short = 'I', long = "include")]
    pub include: Vec<String>,
    /// Pass NAME = EXPR to the function the value is (auto-calling).
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"], allow_hyphen_values = true)]
    pub arg: Vec<String>,
    /// Pass NAME = STRING to the function the value is.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"], allow_hyphen_values = true)]
    pub argstr: Vec<String>,
    /// Set the setting NAME (every CppNix setting; also `--NAME VALUE`, `--NAME`/`--no-NAME` for Booleans, `--extra-NAME VALUE` for lists).
    #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"], allow_hyphen_values = true)]
    pub option: Vec<String>,
    /// Accepted for CppNix's command lines: nix-instantiate evaluates impurely already.
    #[arg(long = "impure")]
    pub impure: bool,
    /// With --eval: write derivations and sources to the store as instantiation does.
    #[arg(long = "read-write-mode")]
    pub read_write: bool,
    /// `--arg-from-file NAME PATH`: the argument NAME is the contents of PATH, as a string.
    #[arg(long = "arg-from-file", num_args = 2, value_names = ["NAME", "PATH"])]
    pub arg_from_file: Vec<String>,
    /// `--arg-from-stdin NAME`: the argument NAME is standard input, as a string.
    #[arg(long = "arg-from-stdin", value_name = "NAME")]
    pub arg_from_stdin: Vec<String>,
    /// Print the paths the arguments name in the search path (`nixpkgs`, `nixpkgs/lib`).
    #[arg(long = "find-file")]
    pub find_file: bool,
    /// Make PATH (PATH-2, … for more) a symlink to each derivation, printed instead of it.
    #[arg(long = "add-root", value_name = "PATH")]
    pub add_root: Option<String>,
    /// Accepted for CppNix's command lines (roots are always indirect).
    #[arg(long = "indirect")]
    pub indirect: bool,
    /// build: show what would be built, build nothing.
    #[arg(long = "dry-run")]
    pub dry_run: bool,
    /// build: rebuild and compare with the existing outputs (refused: not yet supported).
    #[arg(long = "check")]
    pub check: bool,
    /// build: copy builders' output to stderr (the default here).
    #[arg(short = 'L', long = "print-build-logs")]
    pub print_build_logs: bool,
    /// More output (repeatable).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less output (repeatable).
    #[arg(long = "quiet", action = clap::ArgAction::Count)]
    pub quiet_level: u8,
    /// CppNix's log formats: accepted; nixvm writes plain lines.
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// CppNix's debugger (refused: nixvm has none).
    #[arg(long = "debugger")]
    pub debugger: bool,
    /// New-style commands' `--refresh`: cached downloads are checked again
    /// (no such flag for nix-instantiate and nix-build).
    #[arg(skip)]
    pub refresh: bool,
    /// The store to evaluate against (accepted; the same as --store here).
    #[arg(long = "eval-store", value_name = "URL")]
    pub eval_store: Option<String>,
    /// build: keep going when a build fails (`--keep-going`).
    #[arg(short = 'k')]
    pub keep_going_short: bool,
    /// build: keep the build directory of a failed build (`--keep-failed`).
    #[arg(short = 'K')]
    pub keep_failed_short: bool,
    /// build: derivations built at the same time (`--max-jobs`).
    #[arg(short = 'j', value_name = "N")]
    pub jobs: Option<String>,
    /// Print evaluation statistics as JSON to stderr.
    #[arg(long)]
    pub stats: bool,
    /// Count what the heap holds that is reachable, by kind (a walk over the whole
    /// heap), every N thunks created and at the end; print the largest and the last
    /// as tables on stderr.
    #[arg(long = "heap-census", value_name = "N", num_args = 0..=1, default_missing_value = "1000000")]
    pub heap_census: Option<u64>,
    /// Print every bytecode op as it runs (with its file and line) to stderr.
    #[arg(long = "trace-ops")]
    pub trace_ops: bool,
    /// Print the bytecode of the main expression instead of evaluating it.
    #[arg(long = "dump-bytecode")]
    pub dump_bytecode: bool,
    /// The store's root directory (a chroot store: /nix/store/X is kept at DIR/nix/store/X).
    /// Default: $NIXVM_STORE, else $XDG_DATA_HOME/nixvm/root or ~/.local/share/nixvm/root.
    #[arg(long = "store", value_name = "DIR")]
    pub store: Option<String>,
    /// build: the name of the output symlink (default ./result).
    #[arg(short = 'o', long = "out-link", value_name = "PATH")]
    pub out_link: Option<String>,
    /// build: do not create an output symlink.
    #[arg(long = "no-out-link")]
    pub no_out_link: bool,
    /// build: do not copy builder output to stderr (it is still logged).
    #[arg(short = 'Q', long = "no-build-output")]
    pub quiet: bool,
}

/// Long flags of the commands themselves that share a name with a setting:
/// they keep their meaning as flags.
pub fn is_command_flag(name: &str) -> bool {
    matches!(name, "store" | "eval-store")
}
