//! `nixvm env` (also run as `nix-env`): CppNix's nix-env, of which the
//! query of available derivations (`-qa`) is here so far.
//!
//! The command line is nix-env's, parsed as CppNix's legacy commands parse
//! theirs: compound short flags are split (`-qaP` is `-q -a -P`, `-j2` is
//! `-j 2`); one operation (`--query`/`-q`); the operation's flags and
//! arguments (selectors) follow in any order. The query's rows are sorted
//! by name as CppNix's `std::sort` sorts them (see `stdsort`) and printed
//! as its table: columns padded to their widest cell plus two spaces.

pub(crate) mod drvs;
mod stdsort;
mod workers;

use crate::args::InstArgs;
use crate::config::{build_evaluator_with, make_store};
use crate::diag::report;
use drvs::{PackageInfo, Query, Walk};
use nixvm::{ErrorKind, EvalError, Evaluator};
use std::io::Write;
use std::process::ExitCode;

type Res<T> = Result<T, Box<EvalError>>;

/// What the command line asks.
#[derive(Default)]
struct EnvArgs {
    /// The evaluation's settings, search path and `--arg`s, as the other
    /// commands take them.
    inst: InstArgs,
    file: Option<String>,
    system_filter: Option<String>,
    op: Option<String>,
    op_flags: Vec<String>,
    op_args: Vec<String>,
    worker: bool,
}

fn usage(msg: impl Into<String>) -> Box<EvalError> {
    EvalError::new(ErrorKind::Usage, msg)
}

/// Split compound short flags as CppNix does: `-qaP` → `-q -a -P`, `-j2` →
/// `-j 2` (a non-letter ends the split and is the rest's value).
fn expand(args: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut dashdash = false;
    for a in args {
        let b = a.as_bytes();
        if a == "--" {
            dashdash = true;
        }
        if !dashdash && b.len() > 2 && b[0] == b'-' && b[1] != b'-' && b[1].is_ascii_alphabetic() {
            out.push(format!("-{}", b[1] as char));
            for (j, c) in a.char_indices().skip(2) {
                if c.is_ascii_alphabetic() {
                    out.push(format!("-{c}"));
                } else {
                    out.push(a[j..].to_string());
                    break;
                }
            }
        } else {
            out.push(a);
        }
    }
    out
}

fn parse(args: Vec<String>) -> Res<EnvArgs> {
    let mut e = EnvArgs::default();
    let mut it = expand(args).into_iter();
    let need = |it: &mut std::vec::IntoIter<String>, flag: &str| {
        it.next()
            .ok_or_else(|| usage(format!("flag '{flag}' requires an argument")))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--query"
            | "-q"
            | "--install"
            | "-i"
            | "--upgrade"
            | "-u"
            | "--uninstall"
            | "-e"
            | "--set"
            | "--set-flag"
            | "--switch-profile"
            | "-S"
            | "--switch-generation"
            | "-G"
            | "--rollback"
            | "--list-generations"
            | "--delete-generations" => {
                if e.op.is_some() {
                    return Err(usage("only one operation may be specified"));
                }
                e.op = Some(a);
            }
            "--file" | "-f" => e.file = Some(need(&mut it, &a)?),
            "--worker-protocol" => e.worker = true,
            "--system-filter" => e.system_filter = Some(need(&mut it, &a)?),
            "--attr" | "-A" => {
                e.op_flags.push(a.clone());
                e.op_flags.push(need(&mut it, &a)?);
            }
            "-I" | "--include" => e.inst.include.push(need(&mut it, &a)?),
            "--arg" | "--argstr" | "--option" => {
                let name = need(&mut it, &a)?;
                let value = need(&mut it, &a)?;
                let to = match a.as_str() {
                    "--arg" => &mut e.inst.arg,
                    "--argstr" => &mut e.inst.argstr,
                    _ => &mut e.inst.option,
                };
                to.extend([name, value]);
            }
            "-j" | "--max-jobs" => e.inst.jobs = Some(need(&mut it, &a)?),
            "--show-trace" => e.inst.option.extend(["show-trace".into(), "true".into()]),
            "--verbose" | "-v" => e.inst.verbose += 1,
            "--quiet" => e.inst.quiet_level += 1,
            "--profile" | "-p" | "--from-profile" => {
                need(&mut it, &a)?;
            }
            "--dry-run" | "--prebuilt-only" | "-b" | "--preserve-installed" | "-P"
                if e.op.as_deref().is_some_and(|o| o != "--query" && o != "-q") =>
            {
                e.op_flags.push(a)
            }
            _ if a.starts_with('-') && a.len() > 1 => e.op_flags.push(a),
            _ => e.op_args.push(a),
        }
    }
    Ok(e)
}

/// The entry point: `args` are what follows `nix-env` (or `nixvm env`).
pub fn main(args: Vec<String>) -> ExitCode {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        let _ = std::io::stdout().write_all(HELP.as_bytes());
        return ExitCode::SUCCESS;
    }
    let argv: Vec<String> = args
        .iter()
        .filter(|a| *a != "--worker-protocol")
        .cloned()
        .collect();
    let e = match parse(args) {
        Ok(e) => e,
        Err(err) => return usage_exit(&err.msg),
    };
    match e.op.as_deref() {
        Some("--query" | "-q") => {}
        None => return usage_exit("no operation specified"),
        Some(op) => {
            nixvm::report::stderr_line(&format!(
                "error: nixvm env does not support '{op}' yet (only --query)"
            ));
            return ExitCode::from(1);
        }
    }
    let mut inst = e.inst;
    inst.files = e.file.iter().cloned().collect();
    let inst = match crate::with_config(inst) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let store = match make_store(&inst, false) {
        Ok(s) => s,
        Err(msg) => {
            nixvm::report::stderr_line(&format!("error: {msg}"));
            return ExitCode::from(1);
        }
    };
    let mut ev = build_evaluator_with(&inst, store);
    let workers = inst
        .jobs
        .as_deref()
        .and_then(|j| j.parse().ok())
        .unwrap_or(1);
    let q = QueryArgs {
        argv,
        workers,
        worker: e.worker,
        file: e.file,
        system_filter: e.system_filter.unwrap_or_else(|| "*".into()),
        flags: e.op_flags,
        selectors: e.op_args,
    };
    let code = match query(&mut ev, &inst, q) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal::Err(err)) => {
            report(&ev, &inst, &err);
            ExitCode::from(1)
        }
        Err(Fatal::Text(text)) => {
            nixvm::report::stderr_text(&text);
            ExitCode::from(1)
        }
    };
    // As for nix-instantiate: the process ends; freeing the heap would only cost time.
    std::mem::forget(ev);
    code
}

const HELP: &str = "\
Usage: nix-env -q -a [OPTIONS...] [SELECTORS...]   (nixvm env; also run as nix-env)

Query what an expression offers, as CppNix's nix-env --query --available.
Other nix-env operations are not supported yet.

  -f, --file FILE          the expression (default ~/.nix-defexpr)
  -A, --attr PATH          query under this attribute path
  -P, --attr-path          print attribute paths
      --no-name            do not print names
      --system             print the system
      --drv-path           print the derivation's path
      --out-path           print the outputs' paths
      --description        print meta.description
      --json [--meta]      print JSON (with meta data)
      --system-filter SYS  only packages for SYS
      --arg NAME EXPR, --argstr NAME STRING, -I PATH, --option NAME VALUE
  -j N                     walk with N worker processes
";

fn usage_exit(msg: &str) -> ExitCode {
    nixvm::report::stderr_line(&format!(
        "error: {msg}\nTry 'nix-env --help' for more information."
    ));
    ExitCode::from(1)
}

pub struct QueryArgs {
    /// The command line as given (workers are started with it).
    pub argv: Vec<String>,
    pub workers: usize,
    /// This process is a worker (`--worker-protocol`, see `workers`).
    pub worker: bool,
    file: Option<String>,
    system_filter: String,
    flags: Vec<String>,
    selectors: Vec<String>,
}

#[derive(Default)]
pub struct Columns {
    status: bool,
    no_name: bool,
    attr_path: bool,
    system: bool,
    drv_path: bool,
    out_path: bool,
    description: bool,
    meta: bool,
    json: bool,
    available: bool,
    pub attr: String,
}

fn columns(flags: &[String]) -> Res<Columns> {
    let mut c = Columns::default();
    let mut it = flags.iter();
    while let Some(f) = it.next() {
        match f.as_str() {
            "--status" | "-s" => c.status = true,
            "--no-name" => c.no_name = true,
            "--system" => c.system = true,
            "--description" => c.description = true,
            "--drv-path" => c.drv_path = true,
            "--out-path" => c.out_path = true,
            "--meta" => c.meta = true,
            "--installed" => c.available = false,
            "--available" | "-a" => c.available = true,
            "--json" => c.json = true,
            "--attr-path" | "-P" => c.attr_path = true,
            "--attr" | "-A" => c.attr = it.next().cloned().unwrap_or_default(),
            "--xml" | "--compare-versions" | "-c" => {
                return Err(EvalError::new(
                    ErrorKind::Other,
                    format!("nixvm env -q does not support '{f}' yet"),
                ))
            }
            _ => return Err(usage(format!("unknown flag '{f}'"))),
        }
    }
    if c.attr_path && !c.available {
        return Err(usage("--attr-path(-P) only works with --available"));
    }
    if !c.available {
        return Err(EvalError::new(
            ErrorKind::Other,
            "nixvm env -q does not read profiles yet: query what is available with -a",
        ));
    }
    if c.status {
        return Err(EvalError::new(
            ErrorKind::Other,
            "nixvm env -q does not support '--status' yet",
        ));
    }
    Ok(c)
}

/// One package as the output stage sees it: found in this process or in a
/// worker, its cells computed where its value lives.
pub struct Found {
    pub attr_path: String,
    pub name: String,
    /// `--system-filter`'s reading of `system` (when there is a filter).
    pub system: Option<Result<String, Fatal>>,
    pub row: Row,
}

/// An error that ends the query: still an error here, or already rendered
/// (by a worker, which has the sources).
pub enum Fatal {
    Err(Box<EvalError>),
    Text(String),
}

/// A package's cells, its JSON object, or why it has neither.
pub enum Row {
    Cells(Vec<String>),
    Json(serde_json::Map<String, serde_json::Value>),
    /// A `throw` or failed `assert` while querying: the row is left out.
    Skip,
    /// Set while it is still a Rust error (see `Fatal`).
    Fatal(Box<EvalError>),
    /// An error rendered by a worker.
    FatalText(String),
}

impl From<Box<EvalError>> for Fatal {
    fn from(e: Box<EvalError>) -> Fatal {
        Fatal::Err(e)
    }
}

fn query(ev: &mut Evaluator, inst: &InstArgs, q: QueryArgs) -> Result<(), Fatal> {
    let c = columns(&q.flags)?;
    if q.worker {
        return workers::serve(ev, inst, &q, &c, &file_of(&q)?).map_err(Fatal::Err);
    }
    let file = file_of(&q)?;
    let found = if q.workers > 1 {
        workers::run(&q, q.workers)?
    } else {
        let root = load_source(ev, &file)?;
        let auto_args = crate::instantiate::auto_args(inst, ev)?;
        let v = crate::attrpath::select(ev, root, &c.attr, &auto_args)?;
        let mut walk = Walk::new(ev, &auto_args);
        walk.walk(&v, &c.attr)?;
        let pkgs = std::mem::take(&mut walk.out);
        let filter = q.system_filter != "*";
        pkgs.into_iter()
            .map(|p| Found {
                system: filter.then(|| Query { ev: &mut *ev }.system(&p.attrs).map_err(Fatal::Err)),
                row: compute_row(ev, &p, &c),
                attr_path: p.attr_path,
                name: p.name,
            })
            .collect()
    };
    output(found, &q, &c)
}

/// Filter, sort and print, as CppNix's `opQuery` after `loadDerivations`.
fn output(found: Vec<Found>, q: &QueryArgs, c: &Columns) -> Result<(), Fatal> {
    let mut kept = Vec::with_capacity(found.len());
    for f in found {
        match &f.system {
            None => kept.push(f),
            Some(Ok(s)) => {
                if *s == q.system_filter {
                    kept.push(f)
                }
            }
            Some(Err(_)) => {
                let Some(Err(e)) = f.system else {
                    unreachable!()
                };
                return Err(e);
            }
        }
    }
    let mut elems = filter_by_selector(kept, &q.selectors)?;
    let mut order: Vec<u32> = (0..elems.len() as u32).collect();
    stdsort::sort(&mut order, &mut |a, b| {
        name_less(&elems[*a as usize].name, &elems[*b as usize].name)
    });
    let mut slots: Vec<Option<Found>> = elems.drain(..).map(Some).collect();
    let sorted: Vec<Found> = order
        .iter()
        .filter_map(|i| slots[*i as usize].take())
        .collect();
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut json = serde_json::Map::new();
    for f in sorted {
        match f.row {
            Row::Cells(cells) => table.push(cells),
            Row::Json(o) => {
                json.insert(f.attr_path, serde_json::Value::Object(o));
            }
            Row::Skip => {}
            Row::Fatal(e) => return Err(Fatal::Err(e)),
            Row::FatalText(t) => return Err(Fatal::Text(t)),
        }
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    if c.json {
        // nlohmann's objects are std::maps: keys in byte order.
        let mut keys: Vec<(String, serde_json::Value)> = json.into_iter().collect();
        keys.sort_by(|a, b| a.0.cmp(&b.0));
        let top: serde_json::Map<String, serde_json::Value> = keys.into_iter().collect();
        let text =
            serde_json::to_string_pretty(&serde_json::Value::Object(top)).unwrap_or_default();
        let _ = writeln!(out, "{text}");
    } else {
        let _ = out.write_all(print_table(&table).as_bytes());
    }
    let _ = out.flush();
    Ok(())
}

/// What `-q` prints of one package (CppNix's loop body in `opQuery`, or
/// `queryJSON`'s).
pub fn compute_row(ev: &mut Evaluator, p: &PackageInfo, c: &Columns) -> Row {
    let r = if c.json {
        json_object(ev, p, c).map(Row::Json)
    } else {
        row(ev, p, c).map(Row::Cells)
    };
    match r {
        Ok(r) => r,
        Err(e) if e.catchable() => Row::Skip,
        Err(mut e) => {
            e.add_trace(
                format!("while querying the derivation named '{}'", p.name),
                None,
            );
            Row::Fatal(e)
        }
    }
}

fn file_of(q: &QueryArgs) -> Res<String> {
    match q.file.clone() {
        Some(f) => Ok(f),
        None => default_expr(),
    }
}

/// nix-env's `loadSourceExpr`: a file, or a directory with a
/// `default.nix`, is evaluated; any other directory (`~/.nix-defexpr`, a
/// directory of channels) is a set of its expressions, each imported when
/// first used: `NAME.nix` files and directories with a `default.nix` as
/// NAME, the other directories' expressions merged in (the first of a name
/// wins), `manifest.nix` left out, marked `_combineChannels` so that the
/// walk goes into each.
pub fn load_source(ev: &mut Evaluator, file: &str) -> Res<nixvm::Value> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let p = cwd.join(file);
    let is_channels = !file.starts_with('<')
        && file != "-"
        && std::fs::metadata(&p).is_ok_and(|m| m.is_dir())
        && !p.join("default.nix").exists();
    if !is_channels {
        return crate::instantiate::eval_input(ev, file);
    }
    let mut entries = vec![(
        nixvm::Symbol::intern("_combineChannels"),
        ev.lazy_str("[ ]", &cwd)?,
    )];
    let mut seen = std::collections::BTreeSet::new();
    all_exprs(ev, &p, &mut seen, &mut entries)?;
    Ok(nixvm::Value::attrs(nixvm::value::Attrs::from_unsorted(
        entries,
    )))
}

fn all_exprs(
    ev: &mut Evaluator,
    dir: &std::path::Path,
    seen: &mut std::collections::BTreeSet<String>,
    out: &mut Vec<(nixvm::Symbol, nixvm::Value)>,
) -> Res<()> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) => {
            return Err(EvalError::new(
                ErrorKind::Io,
                format!("reading directory '{}': {e}", dir.display()),
            ))
        }
    };
    names.sort();
    for name in names {
        if name == "manifest.nix" {
            continue;
        }
        // Dangling symlinks in ~/.nix-defexpr are passed over.
        let Ok(path) = std::fs::canonicalize(dir.join(&name)) else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let expr = if meta.is_dir() {
            path.join("default.nix").exists()
        } else {
            meta.is_file() && path.to_string_lossy().ends_with(".nix")
        };
        if expr {
            let attr = name.strip_suffix(".nix").unwrap_or(&name).to_string();
            if !seen.insert(attr.clone()) {
                nixvm::report::stderr_line(&format!(
                    "warning: name collision in input Nix expressions, skipping '{}'",
                    path.display()
                ));
                continue;
            }
            let text = path.to_string_lossy();
            let lit = text
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace("${", "\\${");
            let v = ev.lazy_str(&format!("import \"{lit}\""), &dir)?;
            out.push((nixvm::Symbol::intern(&attr), v));
        } else if meta.is_dir() {
            all_exprs(ev, &path, seen, out)?;
        }
    }
    Ok(())
}

/// `~/.nix-defexpr`, nix-env's default expression.
fn default_expr() -> Res<String> {
    match std::env::var("HOME") {
        Ok(h) if !h.is_empty() => Ok(format!("{h}/.nix-defexpr")),
        _ => Err(EvalError::new(
            ErrorKind::Other,
            "no expression given (-f) and $HOME is not set",
        )),
    }
}

/// CppNix's `cmpElemByName`: byte by byte, ASCII letters upper-cased,
/// bytes compared as C's signed `char` (so non-ASCII sorts first).
fn name_less(a: &str, b: &str) -> bool {
    let key = |c: u8| (c.to_ascii_uppercase() as i8) as i32;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (key(*x), key(*y));
        if x != y {
            return x < y;
        }
    }
    a.len() < b.len()
}

/// CppNix's `DrvName`: the name splits at the first `-` not followed by a
/// letter into name and version.
pub fn drv_name(s: &str) -> (&str, &str) {
    let b = s.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'-' && i + 1 < b.len() && !b[i + 1].is_ascii_alphabetic() {
            return (&s[..i], &s[i + 1..]);
        }
    }
    (s, "")
}

/// Selectors as nix-env takes them: `NAME` or `NAME-VERSION`, the name a
/// POSIX extended regular expression (`*` is every name); no selector is
/// `*`. Each selector's matches in order, each package once.
fn filter_by_selector(all: Vec<Found>, args: &[String]) -> Res<Vec<Found>> {
    let selectors: Vec<String> = if args.is_empty() {
        vec!["*".into()]
    } else {
        args.to_vec()
    };
    let mut taken = vec![false; all.len()];
    let mut order = Vec::new();
    for sel in &selectors {
        let (name, version) = drv_name(sel);
        let re = if name == "*" {
            None
        } else {
            Some(
                nixvm::builtins::regex::Regex::new(name.as_bytes()).map_err(|e| {
                    EvalError::new(ErrorKind::Other, format!("invalid selector '{sel}': {e:?}"))
                })?,
            )
        };
        let mut hits = 0;
        for (i, p) in all.iter().enumerate() {
            let (n, v) = drv_name(&p.name);
            let name_ok = re
                .as_ref()
                .is_none_or(|re| re.match_groups(n.as_bytes(), Default::default()).is_some());
            if name_ok && (version.is_empty() || version == v) {
                hits += 1;
                if !taken[i] {
                    taken[i] = true;
                    order.push(i);
                }
            }
        }
        if hits == 0 && sel != "*" {
            return Err(EvalError::new(
                ErrorKind::Other,
                format!("selector '{sel}' matches no derivations"),
            ));
        }
    }
    let mut slots: Vec<Option<Found>> = all.into_iter().map(Some).collect();
    Ok(order.into_iter().filter_map(|i| slots[i].take()).collect())
}

/// The cells of one row of the table.
fn row(ev: &mut Evaluator, p: &PackageInfo, c: &Columns) -> Res<Vec<String>> {
    let mut q = Query { ev };
    let mut cols = Vec::new();
    if c.attr_path {
        cols.push(p.attr_path.clone());
    }
    if !c.no_name {
        cols.push(p.name.clone());
    }
    if c.system {
        cols.push(q.system(&p.attrs)?);
    }
    if c.drv_path {
        cols.push(q.drv_path(&p.attrs)?.unwrap_or_else(|| "-".into()));
    }
    if c.out_path {
        let mut s = String::new();
        for (name, path) in q.outputs(&p.attrs, true)? {
            if !s.is_empty() {
                s.push(';');
            }
            if name != "out" {
                s.push_str(&name);
                s.push('=');
            }
            s.push_str(&path.unwrap_or_default());
        }
        cols.push(s);
    }
    if c.description {
        cols.push(q.meta_string(&p.attrs, "description")?);
    }
    Ok(cols)
}

/// CppNix's `printTable`: every column but the last padded to its widest
/// cell (in bytes) plus two spaces; newlines in cells become spaces.
fn print_table(table: &[Vec<String>]) -> String {
    let n = table.first().map_or(0, Vec::len);
    let mut widths = vec![0; n];
    for r in table {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for r in table {
        for (i, cell) in r.iter().enumerate() {
            out.push_str(&cell.replace('\n', " "));
            if i + 1 < n {
                out.extend(std::iter::repeat_n(' ', widths[i] - cell.len() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// `--json`'s object for one package: name, pname, version, system,
/// outputName, outputs (paths with `--out-path`), drvPath with
/// `--drv-path`, meta with `--meta`.
fn json_object(
    ev: &mut Evaluator,
    p: &PackageInfo,
    c: &Columns,
) -> Res<serde_json::Map<String, serde_json::Value>> {
    use serde_json::{Map, Value as J};
    let mut q = Query { ev };
    let mut o = Map::new();
    let (pname, version) = drv_name(&p.name);
    o.insert("name".into(), J::from(p.name.clone()));
    o.insert("pname".into(), J::from(pname));
    o.insert("version".into(), J::from(version));
    o.insert("system".into(), J::from(q.system(&p.attrs)?));
    o.insert("outputName".into(), J::from(q.output_name(&p.attrs)?));
    let mut outs = Map::new();
    for (name, path) in q.outputs(&p.attrs, c.out_path)? {
        outs.insert(name, path.map_or(J::Null, J::from));
    }
    o.insert("outputs".into(), J::Object(outs));
    if c.drv_path {
        if let Some(d) = q.drv_path(&p.attrs)? {
            o.insert("drvPath".into(), J::from(d));
        }
    }
    if c.meta {
        let mut m = Map::new();
        for name in q.meta_names(&p.attrs)? {
            let v = match q.meta_value(&p.attrs, &name)? {
                Some(v) => {
                    let text = q.ev.to_json(v, true)?;
                    serde_json::from_str(&text).unwrap_or(J::Null)
                }
                None => {
                    nixvm::report::stderr_line(&format!(
                        "error: derivation '{}' has invalid meta attribute '{name}'",
                        p.name
                    ));
                    J::Null
                }
            };
            m.insert(name, v);
        }
        o.insert("meta".into(), J::Object(m));
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compound_flags_split_as_cppnix_splits_them() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            expand(v(&["-qaP", "-j2", "--json", "x"])),
            v(&["-q", "-a", "-P", "-j", "2", "--json", "x"])
        );
    }

    #[test]
    fn names_sort_case_blind_with_high_bytes_first() {
        assert!(name_less("alpha", "Beta"));
        assert!(name_less("Beta", "gamma"));
        assert!(name_less("é", "a"));
        assert!(!name_less("abc", "ABC") && !name_less("ABC", "abc"));
        assert!(name_less("ab", "abc"));
    }

    #[test]
    fn versions_split_at_the_first_dash_before_a_non_letter() {
        assert_eq!(drv_name("hello-2.12.1"), ("hello", "2.12.1"));
        assert_eq!(
            drv_name("python3.13-foo-bar-1.0"),
            ("python3.13-foo-bar", "1.0")
        );
        assert_eq!(drv_name("nosys"), ("nosys", ""));
        assert_eq!(drv_name("a-"), ("a-", ""));
    }
}
