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
    #[arg(long)]
    pub eval: bool,
    #[arg(long)]
    pub parse: bool,
    #[arg(long)]
    pub strict: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub xml: bool,
    #[arg(long)]
    pub raw: bool,
    #[arg(long = "no-location")]
    pub no_location: bool,
    /// Treat the arguments as expressions.
    #[arg(short = 'E', long = "expr")]
    pub expr: bool,
    #[arg(short = 'A', long = "attr")]
    pub attr: Vec<String>,
    #[arg(short = 'I', long = "include")]
    pub include: Vec<String>,
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"])]
    pub arg: Vec<String>,
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"])]
    pub argstr: Vec<String>,
    #[arg(long = "show-trace")]
    pub show_trace: bool,
    #[arg(long = "no-show-trace")]
    pub no_show_trace: bool,
    #[arg(long = "max-call-depth")]
    pub max_call_depth: Option<usize>,
    #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"])]
    pub option: Vec<String>,
    #[arg(long = "extra-experimental-features")]
    pub features: Vec<String>,
    #[arg(long = "impure")]
    pub impure: bool,
    #[arg(long = "pure-eval")]
    pub pure_eval: bool,
    #[arg(long = "read-write-mode")]
    pub read_write: bool,
    #[arg(long = "lint-absolute-path-literals")]
    pub lint_abs: Option<String>,
    #[arg(long = "lint-short-path-literals")]
    pub lint_short: Option<String>,
    #[arg(long = "lint-url-literals")]
    pub lint_url: Option<String>,
    #[arg(long = "abort-on-warn")]
    pub abort_on_warn: bool,
    /// Print evaluation statistics as JSON to stderr.
    #[arg(long)]
    pub stats: bool,
    /// Count what the heap holds that is reachable, by kind (a walk over the whole
    /// heap), every N thunks created and at the end; print the largest and the last
    /// as tables on stderr.
    #[arg(long = "heap-census", value_name = "N", num_args = 0..=1, default_missing_value = "1000000")]
    pub heap_census: Option<u64>,
    /// Print the bytecode of the main expression instead of evaluating it.
    #[arg(long = "dump-bytecode")]
    pub dump_bytecode: bool,
    /// The store's root directory (a chroot store: /nix/store/X is kept at DIR/nix/store/X).
    /// Default: $NIXVM_STORE, else $XDG_DATA_HOME/nixvm/root or ~/.local/share/nixvm/root.
    #[arg(long = "store", value_name = "DIR")]
    pub store: Option<String>,
    #[arg(long = "no-allow-import-from-derivation")]
    pub no_ifd: bool,
    #[arg(long = "allow-import-from-derivation")]
    pub allow_ifd: bool,
    /// build: derivations built at the same time.
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    pub jobs: Option<String>,
    /// build: NIX_BUILD_CORES for builders (0: all cores).
    #[arg(long = "cores", value_name = "N")]
    pub cores: Option<usize>,
    /// build: the name of the output symlink (default ./result).
    #[arg(short = 'o', long = "out-link", value_name = "PATH")]
    pub out_link: Option<String>,
    /// build: do not create an output symlink.
    #[arg(long = "no-out-link")]
    pub no_out_link: bool,
    /// build: always sandbox builds (fail when namespaces are unavailable).
    #[arg(long = "sandbox")]
    pub sandbox: bool,
    /// build: never sandbox builds.
    #[arg(long = "no-sandbox")]
    pub no_sandbox: bool,
    /// build: keep the build directory of a failed build.
    #[arg(short = 'K', long = "keep-failed")]
    pub keep_failed: bool,
    /// build: do not copy builder output to stderr (it is still logged).
    #[arg(short = 'Q', long = "no-build-output")]
    pub quiet: bool,
}
