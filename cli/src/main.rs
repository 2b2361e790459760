//! The `nixvm` command: `parse`, `eval` and a `nix-instantiate`-compatible
//! `instantiate`. Everything here goes through the public `nixvm` API.

use clap::{Args, Parser, Subcommand};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use nixvm::value::{Attrs, Value, View};
use nixvm::{EvalError, Evaluator};
use nixvm_compiler::parser::LintLevel;
use nixvm_compiler::Symbol;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
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

#[derive(Args, Default)]
struct InstArgs {
    /// Errors rendered with source excerpts (`nixvm eval`) instead of CppNix's layout.
    #[arg(skip)]
    codespan: bool,
    /// Files (or expressions with -E); `-` reads stdin.
    files: Vec<String>,
    #[arg(long)]
    eval: bool,
    #[arg(long)]
    parse: bool,
    #[arg(long)]
    strict: bool,
    #[arg(long)]
    json: bool,
    #[arg(long)]
    xml: bool,
    #[arg(long)]
    raw: bool,
    #[arg(long = "no-location")]
    no_location: bool,
    /// Treat the arguments as expressions.
    #[arg(short = 'E', long = "expr")]
    expr: bool,
    #[arg(short = 'A', long = "attr")]
    attr: Vec<String>,
    #[arg(short = 'I', long = "include")]
    include: Vec<String>,
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"])]
    arg: Vec<String>,
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STRING"])]
    argstr: Vec<String>,
    #[arg(long = "show-trace")]
    show_trace: bool,
    #[arg(long = "no-show-trace")]
    no_show_trace: bool,
    #[arg(long = "max-call-depth")]
    max_call_depth: Option<usize>,
    #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"])]
    option: Vec<String>,
    #[arg(long = "extra-experimental-features")]
    features: Vec<String>,
    #[arg(long = "impure")]
    impure: bool,
    #[arg(long = "pure-eval")]
    pure_eval: bool,
    #[arg(long = "read-write-mode")]
    read_write: bool,
    #[arg(long = "lint-absolute-path-literals")]
    lint_abs: Option<String>,
    #[arg(long = "lint-short-path-literals")]
    lint_short: Option<String>,
    #[arg(long = "lint-url-literals")]
    lint_url: Option<String>,
    #[arg(long = "abort-on-warn")]
    abort_on_warn: bool,
    /// Print evaluation statistics as JSON to stderr.
    #[arg(long)]
    stats: bool,
    /// Count what the heap holds that is reachable, by kind (a walk over the whole
    /// heap), every N thunks created and at the end; print the largest and the last
    /// as tables on stderr.
    #[arg(long = "heap-census", value_name = "N", num_args = 0..=1, default_missing_value = "1000000")]
    heap_census: Option<u64>,
    /// Print the bytecode of the main expression instead of evaluating it.
    #[arg(long = "dump-bytecode")]
    dump_bytecode: bool,
    /// The store's root directory (a chroot store: /nix/store/X is kept at DIR/nix/store/X).
    /// Default: $NIXVM_STORE, else $XDG_DATA_HOME/nixvm/root or ~/.local/share/nixvm/root.
    #[arg(long = "store", value_name = "DIR")]
    store: Option<String>,
    #[arg(long = "no-allow-import-from-derivation")]
    no_ifd: bool,
    #[arg(long = "allow-import-from-derivation")]
    allow_ifd: bool,
    /// build: derivations built at the same time.
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    jobs: Option<String>,
    /// build: NIX_BUILD_CORES for builders (0: all cores).
    #[arg(long = "cores", value_name = "N")]
    cores: Option<usize>,
    /// build: the name of the output symlink (default ./result).
    #[arg(short = 'o', long = "out-link", value_name = "PATH")]
    out_link: Option<String>,
    /// build: do not create an output symlink.
    #[arg(long = "no-out-link")]
    no_out_link: bool,
    /// build: always sandbox builds (fail when namespaces are unavailable).
    #[arg(long = "sandbox")]
    sandbox: bool,
    /// build: never sandbox builds.
    #[arg(long = "no-sandbox")]
    no_sandbox: bool,
    /// build: keep the build directory of a failed build.
    #[arg(short = 'K', long = "keep-failed")]
    keep_failed: bool,
    /// build: do not copy builder output to stderr (it is still logged).
    #[arg(short = 'Q', long = "no-build-output")]
    quiet: bool,
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
            instantiate(args)
        }
        Cmd::Eval(mut a) => {
            a.eval = true;
            a.codespan = true;
            instantiate(a)
        }
        Cmd::Instantiate(a) => instantiate(a),
        Cmd::Build(a) => build(a),
    }
}

fn lint(level: &Option<String>) -> LintLevel {
    match level.as_deref() {
        Some("warn") => LintLevel::Warn,
        Some("fatal") => LintLevel::Fatal,
        _ => LintLevel::Ignore,
    }
}

fn features_of(a: &InstArgs) -> Vec<String> {
    let mut f: Vec<String> = a
        .features
        .iter()
        .flat_map(|x| x.split_whitespace().map(str::to_string))
        .collect();
    for pair in a.option.chunks(2) {
        if pair.len() == 2
            && (pair[0] == "extra-experimental-features" || pair[0] == "experimental-features")
        {
            f.extend(pair[1].split_whitespace().map(str::to_string));
        }
    }
    f
}

fn option_value<'a>(a: &'a InstArgs, name: &str) -> Option<&'a str> {
    a.option
        .chunks(2)
        .filter(|p| p.len() == 2 && p[0] == name)
        .map(|p| p[1].as_str())
        .next_back()
}

fn truthy(s: &str) -> bool {
    matches!(s, "true" | "1" | "yes")
}

/// Where the store is: `--store`, `$NIXVM_STORE`, or the per-user default.
fn store_config(a: &InstArgs) -> Result<nixvm_store::StoreConfig, String> {
    let root = a
        .store
        .clone()
        .or_else(|| std::env::var("NIXVM_STORE").ok().filter(|s| !s.is_empty()));
    match root {
        Some(r) => {
            let r = r.strip_prefix("local?root=").unwrap_or(&r).to_string();
            let p = PathBuf::from(&r);
            let p = if p.is_absolute() {
                p
            } else {
                std::env::current_dir().unwrap_or_default().join(p)
            };
            let p = std::fs::canonicalize(&p).unwrap_or(p);
            Ok(nixvm_store::StoreConfig::at_root(p))
        }
        None => nixvm_store::StoreConfig::default_for_user().map_err(|e| e.to_string()),
    }
}

fn build_settings(a: &InstArgs) -> Result<nixvm_store::build::BuildSettings, String> {
    let mut s = nixvm_store::build::BuildSettings::default();
    let jobs = a.jobs.as_deref().or_else(|| option_value(a, "max-jobs"));
    if let Some(j) = jobs {
        s.jobs = if j == "auto" {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            j.parse()
                .map_err(|_| format!("invalid value '{j}' for --max-jobs"))?
        };
    }
    if let Some(c) = a.cores {
        s.cores = c;
    } else if let Some(c) = option_value(a, "cores") {
        s.cores = c
            .parse()
            .map_err(|_| format!("invalid value '{c}' for the option 'cores'"))?;
    }
    s.sandbox = match option_value(a, "sandbox") {
        Some(v) if truthy(v) => nixvm_store::build::SandboxMode::On,
        Some("relaxed") => nixvm_store::build::SandboxMode::Auto,
        Some(_) => nixvm_store::build::SandboxMode::Off,
        None => nixvm_store::build::SandboxMode::Auto,
    };
    if a.sandbox {
        s.sandbox = nixvm_store::build::SandboxMode::On;
    }
    if a.no_sandbox {
        s.sandbox = nixvm_store::build::SandboxMode::Off;
    }
    s.keep_failed = a.keep_failed;
    s.print_build_logs = !a.quiet;
    Ok(s)
}

/// The evaluator's store. Writable for instantiation, builds and `--read-write-mode`;
/// read-only for `--eval` (as CppNix), where it is opened only if it already exists.
fn make_store(
    a: &InstArgs,
    writable: bool,
) -> Result<Option<std::rc::Rc<nixvm::LocalBackend>>, String> {
    let config = match store_config(a) {
        Ok(c) => c,
        Err(_) if !writable => return Ok(None),
        Err(e) => return Err(e),
    };
    let settings = build_settings(a)?;
    Ok(Some(std::rc::Rc::new(nixvm::LocalBackend::new(
        config, writable, settings,
    ))))
}

fn build_evaluator_with(
    a: &InstArgs,
    store: Option<std::rc::Rc<nixvm::LocalBackend>>,
) -> Evaluator {
    let features = features_of(a);
    let mut b = Evaluator::builder();
    for i in &a.include {
        b = b.search_path(i);
    }
    if let Ok(np) = std::env::var("NIX_PATH") {
        b = b.nix_path(&np);
    }
    if let Ok(sd) = std::env::var("NIX_STORE_DIR") {
        b = b.store_dir(&sd);
    }
    let abort_env = std::env::var("NIX_ABORT_ON_WARN")
        .map(|v| v == "1" || v == "true")
        .unwrap_or(false);
    b = b.pure(a.pure_eval).settings(|s| {
        if let Some(d) = a.max_call_depth {
            s.max_call_depth = d;
        }
        for pair in a.option.chunks(2) {
            if pair.len() == 2 && pair[0] == "max-call-depth" {
                if let Ok(d) = pair[1].parse() {
                    s.max_call_depth = d;
                }
            }
        }
        // The cycle collector's policy (see ARCHITECTURE.md, "Memory manager").
        if let Some(n) = std::env::var("NIXVM_GC_INITIAL_HEAP")
            .ok()
            .and_then(|v| parse_bytes(&v))
        {
            s.gc_initial_heap = n;
        }
        if let Some(g) = std::env::var("NIXVM_GC_GROWTH")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            s.gc_growth = g;
        }
        s.gc_stress = std::env::var("NIXVM_GC_STRESS").is_ok_and(|v| v == "1" || v == "true");
        // The same three as settings (`--option NAME VALUE`), which win over
        // the environment as CppNix's options do.
        if let Some(n) = option_value(a, "gc-initial-heap").and_then(parse_bytes) {
            s.gc_initial_heap = n;
        }
        if let Some(g) = option_value(a, "gc-growth").and_then(|v| v.parse().ok()) {
            s.gc_growth = g;
        }
        if let Some(v) = option_value(a, "gc-stress") {
            s.gc_stress = truthy(v);
        }
        s.show_trace = show_trace_of(a);
        s.pipe_operators = features.iter().any(|f| f == "pipe-operators");
        s.parse_toml_timestamps = features.iter().any(|f| f == "parse-toml-timestamps");
        s.lint_absolute_path = lint(&a.lint_abs);
        s.lint_short_path = lint(&a.lint_short);
        s.lint_url = lint(&a.lint_url);
        s.abort_on_warn = a.abort_on_warn || abort_env;
        s.experimental_features = features.clone();
        if let Some(v) = option_value(a, "allow-import-from-derivation") {
            s.allow_ifd = truthy(v);
        }
        if a.no_ifd {
            s.allow_ifd = false;
        }
        if a.allow_ifd {
            s.allow_ifd = true;
        }
    });
    if let Some(st) = store {
        b = b.store_dir(st.config().store_dir.as_str()).store(st);
    }
    let mut ev = b.build();
    if let Some(n) = a.heap_census.filter(|&n| n > 0) {
        ev.vm.census = nixvm::census::Schedule::every(n);
    }
    ev
}

fn instantiate(a: InstArgs) -> ExitCode {
    let writable = !a.parse && !a.dump_bytecode && (!a.eval || a.read_write);
    let store = if a.parse || a.dump_bytecode {
        None
    } else {
        match make_store(&a, writable) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let mut ev = build_evaluator_with(&a, store);
    let start = std::time::Instant::now();
    let result = instantiate_inner(&a, &mut ev, None).and_then(|()| ev.flush_store());
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&ev, &a, &e);
            ExitCode::from(1)
        }
    };
    // A measurement knob: how much of what the heap holds at the end is
    // garbage (cycles), reported by --stats (see ARCHITECTURE.md, "Memory manager").
    if std::env::var("NIXVM_GC_AT_END").is_ok() {
        nixvm::cycles::collect(&mut ev.vm);
    }
    // What is reachable now, per kind (a walk, taken once for both reports:
    // CppNix's counters say what was allocated; ours what is still held).
    let at_end = (a.stats || a.heap_census.is_some()).then(|| nixvm::census::census(&ev.vm, &[]));
    if let (true, Some(end)) = (a.stats, &at_end) {
        let s = &ev.vm.stats;
        eprintln!(
            "{{\"cpuTime\":{:.3},\"thunksCreated\":{},\"thunksElided\":{},\"thunksForced\":{},\"calls\":{},\"primOpCalls\":{},\"envs\":{},\"sets\":{},\"lists\":{},\"maxRssKiB\":{},\"gc\":{{\"collections\":{},\"time\":{:.3},\"freedBytes\":{},\"releasedBytes\":{},\"liveBytesAfterLast\":{},\"liveBytes\":{},\"heapBytes\":{},\"totalBytes\":{},\"liveByKind\":{}{}}}}}",
            start.elapsed().as_secs_f64(),
            s.thunks_created,
            s.thunks_elided,
            s.thunks_forced,
            s.calls,
            s.primop_calls,
            s.envs,
            s.attrsets,
            s.lists,
            max_rss_kib(),
            ev.vm.gc.collections,
            ev.vm.gc.time.as_secs_f64(),
            ev.vm.gc.freed_bytes,
            ev.vm.gc.released_bytes,
            ev.vm.gc.live_after,
            ev.vm.heap.live_bytes(),
            ev.vm.heap.heap_bytes(),
            ev.vm.heap.allocated_bytes(),
            end.json(),
            match &ev.vm.census.peak {
                Some(p) => format!(",\"liveByKindAtPeak\":{}", p.json()),
                None => String::new(),
            }
        );
    }
    if let (Some(_), Some(c)) = (a.heap_census, &at_end) {
        if let Some(p) = &ev.vm.census.peak {
            eprintln!(
                "largest of {} censuses during evaluation:\n{}",
                ev.vm.census.samples,
                p.table()
            );
        }
        eprintln!("at the end:");
        eprint!("{}", c.table());
        eprintln!(
            "reachable {:.1} MiB; resident now {:.1} MiB, at most {:.1} MiB",
            c.total_bytes() as f64 / 1048576.0,
            proc_status_kib("VmRSS:") as f64 / 1024.0,
            max_rss_kib() as f64 / 1024.0
        );
    }
    // The process ends right after this: freeing millions of values one by one
    // would only cost time (0.2 s of a 0.47 s run for a 1e6-element foldl').
    // The store's pending registrations are written first, as its drop would.
    if let Err(e) = ev.flush_store() {
        eprintln!("error: {e}");
    }
    std::mem::forget(ev);
    code
}

/// `123`, `64K`, `64M` or `1G` as bytes.
fn parse_bytes(v: &str) -> Option<usize> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 'K' | 'k') => (&v[..i], 1 << 10),
        (i, 'M' | 'm') => (&v[..i], 1 << 20),
        (i, 'G' | 'g') => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mult)
}

fn max_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// A `KiB` figure of /proc/self/status (0 if unreadable).
fn proc_status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn read_source(file: &str) -> Result<(String, String, PathBuf), Box<EvalError>> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    if file == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| EvalError::new(nixvm::ErrorKind::Io, format!("reading stdin: {}", e)))?;
        let (src, _) = nixvm_compiler::rawsrc::decode_source(buf);
        return Ok((src, "«stdin»".into(), cwd));
    }
    let p = cwd.join(file);
    let p = if p.is_dir() { p.join("default.nix") } else { p };
    let bytes = std::fs::read(&p).map_err(|e| {
        EvalError::new(
            nixvm::ErrorKind::Io,
            format!("opening file '{}': {}", p.display(), nixvm::vm::io_msg(&e)),
        )
    })?;
    // Lossless: invalid bytes become reserved code points (nixvm_compiler::rawsrc).
    let (src, _) = nixvm_compiler::rawsrc::decode_source(bytes);
    let dir = p.parent().map(Path::to_path_buf).unwrap_or(cwd);
    Ok((src, p.to_string_lossy().into_owned(), dir))
}

/// The text, display name and base directory of one input: an `-E`
/// expression or a file (`-` for stdin).
fn source_of(a: &InstArgs, input: &str) -> Result<(String, String, PathBuf), Box<EvalError>> {
    if a.expr {
        let cwd = std::env::current_dir().unwrap_or_default();
        Ok((input.to_string(), "«string»".to_string(), cwd))
    } else {
        read_source(input)
    }
}

/// `nixvm build`: instantiate like nix-instantiate, realise the derivations, print their
/// output paths and link `./result` (and `result-<output>`, `result-2`, ...) to them. In a
/// chroot store the links point where the files physically are.
fn build(a: InstArgs) -> ExitCode {
    let backend = match make_store(&a, true) {
        Ok(Some(b)) => b,
        Ok(None) => return ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut ev = build_evaluator_with(&a, Some(backend.clone()));
    let mut drvs = Vec::new();
    let result = instantiate_inner(&a, &mut ev, Some(&mut drvs))
        .and_then(|()| realise_and_link(&a, &backend, &drvs));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&ev, &a, &e);
            ExitCode::from(1)
        }
    }
}

fn realise_and_link(
    a: &InstArgs,
    backend: &nixvm::LocalBackend,
    drvs: &[String],
) -> Result<(), Box<EvalError>> {
    use nixvm_store::build::{Builder, DerivedPath};
    let store_err = |e: nixvm_store::Error| EvalError::new(nixvm::ErrorKind::Other, e.to_string());
    let store = backend
        .store()
        .map_err(store_err)?
        .ok_or_else(|| EvalError::new(nixvm::ErrorKind::Other, "the store could not be opened"))?;
    let targets: Vec<DerivedPath> = drvs
        .iter()
        .map(|l| match l.split_once('!') {
            Some((d, o)) => DerivedPath {
                drv_path: d.to_string(),
                outputs: o.split(',').map(str::to_string).collect(),
            },
            None => DerivedPath {
                drv_path: l.clone(),
                outputs: Default::default(),
            },
        })
        .collect();
    let builder = Builder::new(store, backend.build_settings().clone());
    let report = builder.realise(&targets).map_err(store_err)?;
    let mut out = std::io::stdout().lock();
    let base = a.out_link.clone().unwrap_or_else(|| "result".to_string());
    for (i, t) in targets.iter().enumerate() {
        let Some(outs) = report.outputs.get(&t.drv_path) else {
            continue;
        };
        for (name, path) in outs {
            let _ = writeln!(out, "{path}");
            if a.no_out_link {
                continue;
            }
            let mut link = base.clone();
            if i > 0 {
                link.push_str(&format!("-{}", i + 1));
            }
            if name != "out" {
                link.push_str(&format!("-{name}"));
            }
            let target = store.to_real_path(path);
            let link = Path::new(&link);
            if let Ok(m) = std::fs::symlink_metadata(link) {
                if !m.file_type().is_symlink() {
                    return Err(EvalError::new(
                        nixvm::ErrorKind::Io,
                        format!(
                            "cannot create symlink '{}': a file that is not a symlink is in the way",
                            link.display()
                        ),
                    ));
                }
                let _ = std::fs::remove_file(link);
            }
            std::os::unix::fs::symlink(&target, link).map_err(|e| {
                EvalError::new(
                    nixvm::ErrorKind::Io,
                    format!(
                        "creating symlink '{}': {}",
                        link.display(),
                        nixvm::vm::io_msg(&e)
                    ),
                )
            })?;
        }
    }
    Ok(())
}

fn instantiate_inner(
    a: &InstArgs,
    ev: &mut Evaluator,
    mut collect: Option<&mut Vec<String>>,
) -> Result<(), Box<EvalError>> {
    let mut out = std::io::stdout().lock();
    let inputs: Vec<String> = if a.files.is_empty() {
        if a.expr {
            return Err(EvalError::new(
                nixvm::ErrorKind::Other,
                "no expression given",
            ));
        }
        vec!["./default.nix".into()]
    } else {
        a.files.clone()
    };
    for input in &inputs {
        if a.parse {
            let (src, name, dir) = source_of(a, input)?;
            let text = ev.parse_to_string(&src, &name, &dir)?;
            let _ = writeln!(out, "{}", text);
            continue;
        }
        if a.dump_bytecode {
            let (src, name, dir) = source_of(a, input)?;
            let _ = write!(out, "{}", ev.disassemble(&src, &name, &dir)?);
            continue;
        }
        let root = if a.expr {
            let cwd = std::env::current_dir().unwrap_or_default();
            ev.eval_str(input, &cwd)?
        } else if input == "-" {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf).map_err(|e| {
                EvalError::new(nixvm::ErrorKind::Io, format!("reading stdin: {}", e))
            })?;
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
            ev.eval_bytes(buf, "«stdin»", &cwd)?
        } else {
            ev.eval_file(Path::new(input))?
        };
        let auto_args = auto_args(a, ev)?;
        let paths = if a.attr.is_empty() {
            vec![String::new()]
        } else {
            a.attr.clone()
        };
        for attr in paths {
            let v = select_attr_path(ev, root.clone(), &attr, &auto_args)?;
            if a.eval && collect.is_none() {
                let v = if auto_args.is_empty() {
                    v
                } else {
                    auto_call(ev, v, &auto_args)?
                };
                if a.raw {
                    let s = ev.coerce_to_string(&v)?;
                    let _ = out.write_all(&s);
                } else if a.json {
                    let s = ev.to_json(v, a.strict)?;
                    let _ = writeln!(out, "{}", s);
                } else if a.xml {
                    let s = ev.to_xml(v, a.strict, !a.no_location)?;
                    let _ = write!(out, "{}", s);
                } else {
                    let v = if a.strict { ev.force_deep(v)? } else { v };
                    let _ = writeln!(out, "{}", ev.print(&v));
                }
            } else {
                for line in ev.instantiate(v, &auto_args)? {
                    match collect.as_deref_mut() {
                        Some(c) => c.push(line),
                        None => {
                            let _ = writeln!(out, "{}", line);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

fn auto_args(a: &InstArgs, ev: &mut Evaluator) -> Result<Vec<(Symbol, Value)>, Box<EvalError>> {
    let mut out = Vec::new();
    let cwd = std::env::current_dir().unwrap_or_default();
    for pair in a.arg.chunks(2) {
        let v = ev.lazy_str(&pair[1], &cwd)?;
        out.push((Symbol::intern(&pair[0]), v));
    }
    for pair in a.argstr.chunks(2) {
        out.push((Symbol::intern(&pair[0]), Value::str(&pair[1])));
    }
    Ok(out)
}

fn auto_call(
    ev: &mut Evaluator,
    v: Value,
    args: &[(Symbol, Value)],
) -> Result<Value, Box<EvalError>> {
    let v = ev.vm.force(v)?;
    let View::Lambda(cl) = &v.view() else {
        return Ok(v);
    };
    let Some(formals) = cl.proto.formals() else {
        return Ok(v);
    };
    let mut entries = Vec::new();
    if formals.ellipsis {
        entries.extend(args.iter().cloned());
    } else {
        for f in &formals.formals {
            if let Some((_, x)) = args.iter().find(|(k, _)| *k == f.name) {
                entries.push((f.name, x.clone()));
            } else if f.default.is_none() {
                return Err(EvalError::new(
                    nixvm::ErrorKind::Other,
                    format!(
                        "cannot evaluate a function that has an argument without a value ('{}')\nNix attempted to evaluate a function as a top level expression; in this case it must have its arguments supplied either by default values, or passed explicitly with '--arg' or '--argstr'. See https://nix.dev/manual/nix/stable/language/syntax.html#functions.",
                        f.name
                    ),
                ));
            }
        }
    }
    let arg = Value::attrs(Attrs::from_unsorted(entries));
    ev.vm.call(v, arg)
}

fn select_attr_path(
    ev: &mut Evaluator,
    mut v: Value,
    path: &str,
    args: &[(Symbol, Value)],
) -> Result<Value, Box<EvalError>> {
    if path.is_empty() {
        return ev.vm.force(v);
    }
    for comp in path.split('.') {
        v = auto_call(ev, v, args)?;
        v = ev.vm.force(v)?;
        if let Ok(i) = comp.parse::<usize>() {
            if let View::List(l) = &v.view() {
                let Some(x) = l.get(i) else {
                    return Err(EvalError::new(
                        nixvm::ErrorKind::Other,
                        format!(
                            "list index {} in selection path '{}' is out of range",
                            i, path
                        ),
                    ));
                };
                v = x.clone();
                continue;
            }
        }
        match &v.view() {
            View::Attrs(s) => match s.get(Symbol::intern(comp)) {
                Some(x) => v = x.clone(),
                None => {
                    return Err(EvalError::new(
                        nixvm::ErrorKind::MissingAttr,
                        format!(
                            "attribute '{}' in selection path '{}' not found",
                            comp, path
                        ),
                    ))
                }
            },
            other => {
                return Err(EvalError::new(
                    nixvm::ErrorKind::Type,
                    format!(
                    "the expression selected by the selection path '{}' should be a set but is {}",
                    path,
                    other.type_of()
                ),
                ))
            }
        }
    }
    ev.vm.force(v)
}

fn show_trace_of(a: &InstArgs) -> bool {
    let opt = option_value(a, "show-trace").map(truthy).unwrap_or(false);
    (a.show_trace || opt) && !a.no_show_trace
}

fn report(ev: &Evaluator, a: &InstArgs, e: &EvalError) {
    let show_trace = show_trace_of(a);
    if !a.codespan {
        let _ =
            std::io::stderr().write_all(nixvm::report::render(&ev.vm, e, show_trace).as_bytes());
        return;
    }
    let writer = termcolor::StandardStream::stderr(termcolor::ColorChoice::Never);
    let config = term::Config::default();
    let mut files = SimpleFiles::new();
    // Only the file the error points into is shown (its text read again if
    // it was not kept).
    let mut diag = Diagnostic::error().with_message(e.msg.clone());
    if let Some(p) = e.pos {
        if let Some(f) = ev.vm.files.get(p.file as usize) {
            let id = files.add(f.name.clone(), f.text().to_string());
            let src_len = f.len();
            let start = (p.span.start as usize).min(src_len);
            let end = (p.span.end as usize).clamp(start, src_len);
            diag = diag.with_labels(vec![Label::primary(id, start..end)]);
        }
    }
    let mut notes = Vec::new();
    let limit = if show_trace {
        e.trace.len()
    } else {
        e.trace.len().min(4)
    };
    for t in e.trace.iter().take(limit) {
        match t.pos {
            Some(p) => notes.push(format!("… {}\n  at {}", t.msg, ev.vm.show_pos(p))),
            None => notes.push(format!("… {}", t.msg)),
        }
    }
    diag = diag.with_notes(notes);
    if term::emit(&mut writer.lock(), &config, &files, &diag).is_err() {
        eprintln!("error: {}", e.msg);
    }
}
