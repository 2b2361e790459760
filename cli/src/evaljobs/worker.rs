//! An eval-jobs worker: evaluates the expression once, then answers one
//! attribute path per line on stdin with one JSON object per line on
//! stdout, as nix-eval-jobs's workers do: the job (name, system, drvPath,
//! outputs, and meta, extraValue, constituents when asked), the names of a
//! set to recurse into (`attrs`), or the `error`. After a job that leaves
//! its peak memory above `--max-memory-size` it says `restart` and ends.

use super::JobArgs;
use crate::args::InstArgs;
use crate::instantiate::auto_call;
use crate::nixenv::drvs::{is_derivation, query_name, Query};
use nixvm::value::{Attrs, Value, View};
use nixvm::{EvalError, Evaluator};
use serde_json::{json, Map, Value as J};
use std::io::{BufRead, Write};

type Res<T> = Result<T, Box<EvalError>>;

pub fn serve(ev: &mut Evaluator, inst: &InstArgs, a: &JobArgs) -> Res<()> {
    let show_trace = crate::diag::show_trace_of(inst);
    let root = setup(ev, inst, a);
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let Ok(path) = serde_json::from_str::<Vec<String>>(&line) else {
            break;
        };
        let mut reply = Map::new();
        reply.insert("attr".into(), J::from(join(&path)));
        reply.insert("attrPath".into(), json!(path));
        let r = match &root {
            Ok((v, args)) => job(ev, a, v, args, &path, &mut reply),
            Err(e) => Err(Box::new(e.memo_copy())),
        };
        if let Err(e) = r {
            let text = nixvm::report::render(&ev.vm, &e, show_trace);
            let text = nixvm::report::filter_log(&text, false).into_owned();
            nixvm::report::stderr_text(&text);
            reply.insert("error".into(), J::from(text.trim_end().to_string()));
        }
        if peak_rss_kib() > a.max_memory_size.saturating_mul(1024) {
            reply.insert("restart".into(), J::Bool(true));
        }
        let restart = reply.contains_key("restart");
        let text = serde_json::to_string(&J::Object(reply)).unwrap_or_default();
        if writeln!(out, "{text}").and_then(|()| out.flush()).is_err() || restart {
            break;
        }
    }
    Ok(())
}

type Root = (Value, Vec<(nixvm::Symbol, Value)>);

/// The value the jobs are under: the file or expression, auto-called with
/// the `--arg`s, then given to `--select`.
fn setup(ev: &mut Evaluator, inst: &InstArgs, a: &JobArgs) -> Res<Root> {
    let cwd = std::env::current_dir().unwrap_or_default();
    let v = if a.expr {
        ev.eval_str(&a.target, &cwd)?
    } else {
        crate::instantiate::eval_input(ev, &a.target)?
    };
    let args = crate::instantiate::auto_args(inst, ev)?;
    let mut v = auto_call(ev, v, &args)?;
    if let Some(sel) = &a.select {
        let f = ev.eval_str(sel, &cwd)?;
        v = ev.call(f, v)?;
        ev.vm.force_attrs_at(
            &v,
            None,
            "'--select' must evaluate to an attrset (the traversal root)",
        )?;
    }
    Ok((v, args))
}

/// nix-eval-jobs's attribute names joined: a name with a dot is quoted.
pub fn join(path: &[String]) -> String {
    let quoted: Vec<String> = path
        .iter()
        .map(|p| {
            if p.contains('.') {
                format!("\"{p}\"")
            } else {
                p.clone()
            }
        })
        .collect();
    quoted.join(".")
}

fn job(
    ev: &mut Evaluator,
    a: &JobArgs,
    root: &Value,
    args: &[(nixvm::Symbol, Value)],
    path: &[String],
    reply: &mut Map<String, J>,
) -> Res<()> {
    let v = crate::attrpath::select(ev, root.clone(), &join(path), args)?;
    let v = auto_call(ev, v, args)?;
    let View::Attrs(set) = v.view() else {
        reply.insert("attrs".into(), json!([]));
        return Ok(());
    };
    let set = set.clone();
    if !is_derivation(ev, &set)? {
        reply.insert("attrs".into(), J::Array(recurse_names(ev, a, &set, path)?));
        return Ok(());
    }
    let name = query_name(ev, &set)?;
    let mut q = Query { ev: &mut *ev };
    let drv_path = q.drv_path(&set)?.ok_or_else(|| {
        EvalError::new(
            nixvm::ErrorKind::Other,
            "derivation does not contain a 'drvPath' attribute",
        )
    })?;
    let mut outputs = Map::new();
    let outs = q.outputs(&set, true).map_err(|e| {
        EvalError::new(
            nixvm::ErrorKind::Other,
            format!(
                "derivation '{}' does not have valid outputs: {}",
                join(path),
                e.msg
            ),
        )
    })?;
    let outs_names: Vec<String> = outs.iter().map(|(o, _)| o.clone()).collect();
    for (o, p) in outs {
        outputs.insert(o, p.map_or(J::Null, J::from));
    }
    reply.insert("name".into(), J::from(name));
    reply.insert("system".into(), J::from(q.system(&set)?));
    reply.insert("drvPath".into(), J::from(drv_path.clone()));
    reply.insert("outputs".into(), J::Object(outputs));
    if a.meta {
        let mut m = Map::new();
        for n in q.meta_names(&set)? {
            if let Some(v) = q.meta_value(&set, &n)? {
                let text = q.ev.to_json(v, true)?;
                m.insert(n, serde_json::from_str(&text).unwrap_or(J::Null));
            }
        }
        reply.insert("meta".into(), J::Object(m));
    }
    if a.constituents {
        constituents(ev, &set, reply)?;
    }
    if a.show_input_drvs {
        let Some(store) = ev.vm.store.clone() else {
            return Err(EvalError::new(
                nixvm::ErrorKind::Other,
                "--show-input-drvs needs a store",
            ));
        };
        let d = store
            .read_derivation(&drv_path)
            .map_err(|e| EvalError::new(nixvm::ErrorKind::Other, e.to_string()))?;
        let inputs: Map<String, J> = d
            .input_drvs
            .into_iter()
            .map(|(p, outs)| (p, J::Array(outs.into_iter().map(J::from).collect())))
            .collect();
        reply.insert("inputDrvs".into(), J::Object(inputs));
    }
    if a.check_cache_status {
        let Some(store) = ev.vm.store.clone() else {
            return Err(EvalError::new(
                nixvm::ErrorKind::Other,
                "--check-cache-status needs a store",
            ));
        };
        let dir = nixvm_store::StoreDir::new(&ev.vm.settings.store_dir);
        let wanted = outs_names.into_iter().collect();
        let needed = super::cache::needed_builds(&*store, &dir, &drv_path, &wanted)
            .map_err(|e| EvalError::new(nixvm::ErrorKind::Other, e))?;
        super::cache::fields(needed, reply);
    }
    if let Some(apply) = &a.apply {
        let cwd = std::env::current_dir().unwrap_or_default();
        let f = ev.eval_str(apply, &cwd)?;
        let r = ev.call(f, v.clone())?;
        ev.vm
            .force_attrs_at(&r, None, "apply needs to evaluate to an attrset")?;
        let text = ev.to_json(r, true)?;
        reply.insert(
            "extraValue".into(),
            serde_json::from_str(&text).unwrap_or(J::Null),
        );
    }
    if let Some(dir) = &a.gc_roots_dir {
        let base = drv_path.rsplit('/').next().unwrap_or(&drv_path);
        let root = std::path::Path::new(dir).join(base);
        if std::fs::symlink_metadata(&root).is_err() {
            let _ = std::fs::create_dir_all(dir);
            std::os::unix::fs::symlink(&drv_path, &root).map_err(|e| {
                EvalError::new(
                    nixvm::ErrorKind::Io,
                    format!("creating GC root '{}': {e}", root.display()),
                )
            })?;
        }
    }
    Ok(())
}

/// A set that is not a derivation: its names (all of them, in byte order)
/// if the walk goes into it: at the top, with `--force-recurse`, or when
/// its `recurseForDerivations` is true.
fn recurse_names(ev: &mut Evaluator, a: &JobArgs, set: &Attrs, path: &[String]) -> Res<Vec<J>> {
    let mut recurse = a.force_recurse || path.is_empty();
    if !a.force_recurse {
        if let Some(r) = set.get_attr(nixvm::Symbol::intern("recurseForDerivations")) {
            let (v, pos) = (r.value.clone(), ev.vm.pos(r.pos));
            recurse = ev
                .vm
                .force_bool_at(&v, pos, "while evaluating recurseForDerivations")?;
        }
    }
    if !recurse {
        return Ok(Vec::new());
    }
    let mut names: Vec<&str> = set.iter().map(|(k, _)| k.as_str()).collect();
    names.sort();
    Ok(names.into_iter().map(J::from).collect())
}

/// Hydra's aggregates (`--constituents`): a derivation with
/// `_hydraAggregate = true` lists its `constituents`, derivations (by their
/// paths) or names of other jobs.
fn constituents(ev: &mut Evaluator, set: &Attrs, reply: &mut Map<String, J>) -> Res<()> {
    let agg = set.get_attr(nixvm::Symbol::intern("_hydraAggregate"));
    let Some(agg) = agg else { return Ok(()) };
    let (v, pos) = (agg.value.clone(), ev.vm.pos(agg.pos));
    if !ev
        .vm
        .force_bool_at(&v, pos, "while evaluating the `_hydraAggregate` attribute")?
    {
        return Ok(());
    }
    let Some(c) = set.get(nixvm::Symbol::intern("constituents")).cloned() else {
        return Err(EvalError::new(
            nixvm::ErrorKind::Other,
            "derivation must have a 'constituents' attribute",
        ));
    };
    let list = ev
        .vm
        .force_list_at(&c, None, "while evaluating the `constituents` attribute")?;
    let (mut drvs, mut named) = (Vec::new(), Vec::new());
    let items: Vec<Value> = list.iter().cloned().collect();
    for x in items {
        let x = ev.vm.force(x)?;
        match x.view() {
            View::String(s) => named.push(J::from(s.to_str().into_owned())),
            View::Attrs(s) => {
                let s = s.clone();
                if let Some(d) = (Query { ev: &mut *ev }).drv_path(&s)? {
                    drvs.push(J::from(d));
                }
            }
            _ => {}
        }
    }
    let glob = match set.get_attr(nixvm::Symbol::intern("_hydraGlobConstituents")) {
        Some(g) => {
            let (v, pos) = (g.value.clone(), ev.vm.pos(g.pos));
            ev.vm.force_bool_at(
                &v,
                pos,
                "while evaluating the `_hydraGlobConstituents` attribute",
            )?
        }
        None => false,
    };
    reply.insert("constituents".into(), J::Array(drvs));
    reply.insert("namedConstituents".into(), J::Array(named));
    reply.insert("globConstituents".into(), J::Bool(glob));
    Ok(())
}

/// This process's peak resident memory.
fn peak_rss_kib() -> u64 {
    // SAFETY: getrusage fills the zeroed struct for this process.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) == 0 {
            ru.ru_maxrss as u64
        } else {
            0
        }
    }
}
