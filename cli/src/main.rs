//! The `nixvm` command: `parse`, `eval` and a `nix-instantiate`-compatible
//! `instantiate`. Everything here goes through the public `nixvm` API.

use clap::{Args, Parser, Subcommand};
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use nixvm::value::{Attrs, Value};
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
}

#[derive(Args, Default)]
struct InstArgs {
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
    /// Print the bytecode of the main expression instead of evaluating it.
    #[arg(long = "dump-bytecode")]
    dump_bytecode: bool,
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
            instantiate(a)
        }
        Cmd::Instantiate(a) => instantiate(a),
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

fn build_evaluator(a: &InstArgs) -> Evaluator {
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
        s.pipe_operators = features.iter().any(|f| f == "pipe-operators");
        s.parse_toml_timestamps = features.iter().any(|f| f == "parse-toml-timestamps");
        s.lint_absolute_path = lint(&a.lint_abs);
        s.lint_short_path = lint(&a.lint_short);
        s.lint_url = lint(&a.lint_url);
        s.abort_on_warn = a.abort_on_warn || abort_env;
        s.experimental_features = features.clone();
    });
    b.build()
}

fn instantiate(a: InstArgs) -> ExitCode {
    let mut ev = build_evaluator(&a);
    let start = std::time::Instant::now();
    let result = instantiate_inner(&a, &mut ev);
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&ev, &e, a.show_trace && !a.no_show_trace);
            ExitCode::from(1)
        }
    };
    if a.stats {
        let s = &ev.vm.stats;
        eprintln!(
            "{{\"cpuTime\":{:.3},\"thunksCreated\":{},\"thunksForced\":{},\"calls\":{},\"primOpCalls\":{},\"envs\":{},\"sets\":{},\"lists\":{},\"maxRssKiB\":{}}}",
            start.elapsed().as_secs_f64(),
            s.thunks_created,
            s.thunks_forced,
            s.calls,
            s.primop_calls,
            s.envs,
            s.attrsets,
            s.lists,
            max_rss_kib()
        );
    }
    code
}

fn max_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
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
        let src = String::from_utf8(buf)
            .map_err(|_| EvalError::new(nixvm::ErrorKind::Parse, "input is not valid UTF-8"))?;
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
    let src = String::from_utf8(bytes).map_err(|_| {
        EvalError::new(
            nixvm::ErrorKind::Parse,
            format!("file '{}' is not valid UTF-8", p.display()),
        )
    })?;
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

fn instantiate_inner(a: &InstArgs, ev: &mut Evaluator) -> Result<(), Box<EvalError>> {
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
            let (src, _, dir) = read_source(input)?;
            ev.eval_str(&src, &dir)?
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
            if a.eval {
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
                    let _ = writeln!(out, "{}", line);
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
    let Value::Lambda(cl) = &v else { return Ok(v) };
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
            if let Value::List(l) = &v {
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
        match &v {
            Value::Attrs(s) => match s.get(Symbol::intern(comp)) {
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

fn report(ev: &Evaluator, e: &EvalError, show_trace: bool) {
    let writer = termcolor::StandardStream::stderr(termcolor::ColorChoice::Never);
    let config = term::Config::default();
    let mut files = SimpleFiles::new();
    let mut ids = Vec::new();
    for f in &ev.vm.files {
        ids.push(files.add(f.name.clone(), f.src.to_string()));
    }
    let mut diag = Diagnostic::error().with_message(e.msg.clone());
    if let Some(p) = e.pos {
        if let Some(&id) = ids.get(p.file as usize) {
            let src_len = ev.vm.files[p.file as usize].src.len();
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
