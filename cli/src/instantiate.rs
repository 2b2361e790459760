//! `nixvm instantiate` (nix-instantiate) and `nixvm eval`: evaluate the inputs,
//! select attribute paths, then print values or instantiate derivations.

use crate::args::InstArgs;
use crate::config::*;
use crate::diag::report;
use nixvm::value::{Attrs, Value, View};
use nixvm::{EvalError, Evaluator};
use nixvm_compiler::Symbol;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn instantiate(a: InstArgs) -> ExitCode {
    let writable = !a.parse && !a.dump_bytecode && (!a.eval || a.read_write);
    let store = if a.parse || a.dump_bytecode {
        None
    } else {
        match make_store(&a, writable) {
            Ok(s) => s,
            Err(e) => {
                nixvm::report::stderr_line(&format!("error: {e}"));
                return ExitCode::from(1);
            }
        }
    };
    let mut ev = build_evaluator_with(&a, store.clone());
    let start = std::time::Instant::now();
    let result =
        instantiate_inner(&a, &mut ev, store.as_ref(), None).and_then(|()| ev.flush_store());
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
    // CppNix's NIX_SHOW_STATS (and NIX_SHOW_STATS_PATH), as --stats does.
    let show_stats =
        a.stats || std::env::var("NIX_SHOW_STATS").is_ok_and(|v| !v.is_empty() && v != "0");
    let at_end =
        (show_stats || a.heap_census.is_some()).then(|| nixvm::census::census(&ev.vm, &[]));
    if let (true, Some(end)) = (show_stats, &at_end) {
        let json = stats_json(&ev, start.elapsed().as_secs_f64(), &end.json());
        match std::env::var("NIX_SHOW_STATS_PATH") {
            Ok(path) if !path.is_empty() => {
                if let Err(e) = std::fs::write(&path, format!("{json}\n")) {
                    nixvm::report::stderr_line(&format!("error: writing '{path}': {e}"));
                }
            }
            _ => nixvm::report::stderr_line(&json),
        }
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
        nixvm::report::stderr_line(&format!("error: {e}"));
    }
    ev.vm.code_cache.finish();
    std::mem::forget(ev);
    code
}

pub fn read_source(file: &str) -> Result<(String, String, PathBuf), Box<EvalError>> {
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
pub fn source_of(a: &InstArgs, input: &str) -> Result<(String, String, PathBuf), Box<EvalError>> {
    if a.expr {
        let cwd = std::env::current_dir().unwrap_or_default();
        Ok((input.to_string(), "«string»".to_string(), cwd))
    } else {
        read_source(input)
    }
}

pub fn instantiate_inner(
    a: &InstArgs,
    ev: &mut Evaluator,
    store: Option<&crate::storeuri::Store>,
    mut collect: Option<&mut Vec<String>>,
) -> Result<(), Box<EvalError>> {
    let mut out = std::io::stdout().lock();
    let (mut roots, mut warned) = (0, false);
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
    if a.find_file {
        for input in &inputs {
            let p = find_file(ev, input)?;
            let _ = writeln!(out, "{p}");
        }
        return Ok(());
    }
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
        } else {
            eval_input(ev, input)?
        };
        let auto_args = auto_args(a, ev)?;
        let paths = if a.attr.is_empty() {
            vec![String::new()]
        } else {
            a.attr.clone()
        };
        for attr in paths {
            let v = crate::attrpath::select(ev, root.clone(), &attr, &auto_args)?;
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
                    let text = ev.print(&v);
                    let _ = out.write_all(&nixvm_compiler::rawsrc::to_raw_bytes(&text));
                    let _ = out.write_all(b"\n");
                }
            } else {
                for line in ev.instantiate(v, &auto_args)? {
                    match collect.as_deref_mut() {
                        Some(c) => c.push(line),
                        None => {
                            roots += 1;
                            let line = gc_root(a, store, &line, roots, &mut warned)?;
                            let _ = writeln!(out, "{}", line);
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A derivation nix-instantiate prints (`DRV` or `DRV!OUTPUT`, the `n`th):
/// with `--add-root PATH` a symlink PATH (PATH-n after the first) to it,
/// printed instead; without, CppNix's warning (once) that nothing keeps it.
fn gc_root(
    a: &InstArgs,
    store: Option<&crate::storeuri::Store>,
    line: &str,
    n: usize,
    warned: &mut bool,
) -> Result<String, Box<EvalError>> {
    let Some(root) = &a.add_root else {
        if !*warned {
            *warned = true;
            nixvm::report::stderr_line(
                "warning: you did not specify '--add-root'; the result might be removed by the garbage collector",
            );
        }
        return Ok(line.to_string());
    };
    let (drv, output) = match line.split_once('!') {
        Some((d, o)) => (d, Some(o)),
        None => (line, None),
    };
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut path = cwd.join(root).to_string_lossy().into_owned();
    if n > 1 {
        path = format!("{path}-{n}");
    }
    let _ = std::fs::remove_file(&path);
    std::os::unix::fs::symlink(drv, &path).map_err(|e| {
        EvalError::new(
            nixvm::ErrorKind::Io,
            format!("creating symlink '{path}': {}", nixvm::vm::io_msg(&e)),
        )
    })?;
    if let Some(st) = store {
        st.add_indirect_root(&path)
            .map_err(|e| EvalError::new(nixvm::ErrorKind::Io, e))?;
    }
    Ok(match output {
        Some(o) => format!("{path}!{o}"),
        None => path,
    })
}

/// The value of a file argument: a path, `-` (stdin) or a search-path entry
/// (`<nixpkgs>`, as in `nix-build '<nixpkgs>' -A hello`).
pub fn eval_input(ev: &mut Evaluator, input: &str) -> Result<Value, Box<EvalError>> {
    if input == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| EvalError::new(nixvm::ErrorKind::Io, format!("reading stdin: {}", e)))?;
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        ev.eval_bytes(buf, "«stdin»", &cwd)
    } else if let Some(name) = input.strip_prefix('<').and_then(|s| s.strip_suffix('>')) {
        let p = find_file(ev, name)?;
        ev.eval_file(Path::new(&p))
    } else {
        ev.eval_file(Path::new(input))
    }
}

pub fn auto_args(a: &InstArgs, ev: &mut Evaluator) -> Result<Vec<(Symbol, Value)>, Box<EvalError>> {
    let mut out = Vec::new();
    let cwd = std::env::current_dir().unwrap_or_default();
    for pair in a.arg.chunks(2) {
        let v = ev.lazy_str(&pair[1], &cwd)?;
        out.push((Symbol::intern(&pair[0]), v));
    }
    for pair in a.argstr.chunks(2) {
        out.push((Symbol::intern(&pair[0]), Value::str(&pair[1])));
    }
    for pair in a.arg_from_file.chunks(2) {
        let text = std::fs::read(&pair[1]).map_err(|e| {
            EvalError::new(
                nixvm::ErrorKind::Io,
                format!("reading file '{}': {}", pair[1], nixvm::vm::io_msg(&e)),
            )
        })?;
        out.push((
            Symbol::intern(&pair[0]),
            Value::str(&String::from_utf8_lossy(&text)),
        ));
    }
    for name in &a.arg_from_stdin {
        let mut text = Vec::new();
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(|e| EvalError::new(nixvm::ErrorKind::Io, format!("reading stdin: {e}")))?;
        out.push((
            Symbol::intern(name),
            Value::str(&String::from_utf8_lossy(&text)),
        ));
    }
    Ok(out)
}

pub fn auto_call(
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
                // CppNix's text, its line breaks included, at the formal.
                return Err(EvalError::located(
                    nixvm::ErrorKind::Other,
                    format!(
                        "cannot evaluate a function that has an argument without a value ('{}')\n\
                         Nix attempted to evaluate a function as a top level expression; in\n\
                         this case it must have its arguments supplied either by default\n\
                         values, or passed explicitly with '--arg' or '--argstr'. See\n\
                         https://nix.dev/manual/nix/stable/language/syntax.html#functions.",
                        f.name
                    ),
                    Some(nixvm::Pos {
                        file: cl.proto.file(),
                        span: f.span,
                    }),
                ));
            }
        }
    }
    let arg = Value::attrs(Attrs::from_unsorted(entries));
    ev.vm.call(v, arg)
}

/// Where the search path puts `name` (`nixpkgs`, `nixpkgs/lib`), as `<name>`
/// finds it; a lookup failure has no position, as CppNix's has none here.
pub fn find_file(ev: &mut Evaluator, name: &str) -> Result<String, Box<EvalError>> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let v = ev
        .eval_str(&format!("<{name}>"), &cwd)
        .and_then(|v| ev.force(v))
        .map_err(|mut e| {
            e.trace.clear();
            e.with_pos(None)
        })?;
    match v.view() {
        View::Path(p) => Ok(p.to_string()),
        // A search-path entry that is a store path or URL gives a string.
        _ => {
            let s = ev.coerce_to_string(&v)?;
            Ok(String::from_utf8_lossy(&s).into_owned())
        }
    }
}

/// The statistics as CppNix's NIX_SHOW_STATS prints them: its field names for
/// the figures that mean the same here, nixvm's own under "nixvm".
fn stats_json(ev: &Evaluator, cpu: f64, live_by_kind: &str) -> String {
    let s = &ev.vm.stats;
    let gc = &ev.vm.gc;
    let heap = &ev.vm.heap;
    let peak = match &ev.vm.census.peak {
        Some(p) => format!(",\"liveByKindAtPeak\":{}", p.json()),
        None => String::new(),
    };
    // With --stats the op histogram, op pairs and builtin calls (observer).
    let observed = (ev.vm.observer.as_ref())
        .and_then(|o| o.json())
        .map(|j| format!(",\"observed\":{j}"))
        .unwrap_or_default();
    let made = s.thunks_created + s.thunks_elided;
    let elision = if made == 0 {
        0.0
    } else {
        s.thunks_elided as f64 / made as f64
    };
    format!(
        concat!(
            "{{\"cpuTime\":{cpu:.3},\"time\":{{\"cpu\":{cpu:.3}}},",
            "\"envs\":{{\"number\":{envs}}},\"sets\":{{\"number\":{sets}}},",
            "\"nrThunks\":{thunks},\"nrAvoided\":{elided},\"nrFunctionCalls\":{calls},",
            "\"nrPrimOpCalls\":{prim},\"gc\":{{\"heapSize\":{heap},\"totalBytes\":{total}}},",
            "\"nixvm\":{{\"thunksCreated\":{thunks},\"thunksElided\":{elided},",
            "\"thunksForced\":{forced},\"calls\":{calls},\"primOpCalls\":{prim},",
            "\"thunkElisionRate\":{elision:.4},",
            "\"frontEnd\":{{\"files\":{files},\"cacheHits\":{hits},\"cacheTime\":{ctime:.3},\"parseTime\":{parse:.3},",
            "\"compileTime\":{compile:.3},\"linkTime\":{link:.3},\"chunksLinked\":{linked}}},",
            "\"envs\":{envs},\"sets\":{sets},\"lists\":{lists},\"maxRssKiB\":{rss}{observed},",
            "\"gc\":{{\"collections\":{coll},\"time\":{gctime:.3},\"freedBytes\":{freed},",
            "\"releasedBytes\":{released},\"liveBytesAfterLast\":{after},\"liveBytes\":{live},",
            "\"heapBytes\":{heap},\"totalBytes\":{total},\"liveByKind\":{kinds}{peak}}}}}}}"
        ),
        cpu = cpu,
        envs = s.envs,
        sets = s.attrsets,
        thunks = s.thunks_created,
        elided = s.thunks_elided,
        forced = s.thunks_forced,
        calls = s.calls,
        prim = s.primop_calls,
        lists = s.lists,
        files = s.files_compiled,
        hits = s.cache_hits,
        ctime = s.cache_time.as_secs_f64(),
        parse = s.parse_time.as_secs_f64(),
        compile = s.compile_time.as_secs_f64(),
        link = s.link_time.as_secs_f64(),
        linked = s.chunks_linked,
        rss = max_rss_kib(),
        coll = gc.collections,
        gctime = gc.time.as_secs_f64(),
        freed = gc.freed_bytes,
        released = gc.released_bytes,
        after = gc.live_after,
        live = heap.live_bytes(),
        heap = heap.heap_bytes(),
        total = heap.allocated_bytes(),
        kinds = live_by_kind,
        peak = peak,
        elision = elision,
        observed = observed,
    )
}
