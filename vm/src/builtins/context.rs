//! String-context introspection: `getContext`, `appendContext`,
//! `addDrvOutputDependencies` and `unsafeDiscardOutputDependency`.
//!
//! Context elements are kept in CppNix's encoded form: `/nix/store/...`
//! (opaque), `=/nix/store/x.drv` (deep: the derivation with all outputs) and
//! `!out!/nix/store/x.drv` (one built output).

use super::Registry;
use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use std::collections::BTreeMap;
use std::rc::Rc;

pub fn register(r: &mut Registry) {
    r.prim("getContext", 1, get_context);
    r.prim("appendContext", 2, append_context);
    r.prim("addDrvOutputDependencies", 1, add_drv_output_dependencies);
    r.prim(
        "unsafeDiscardOutputDependency",
        1,
        unsafe_discard_output_dependency,
    );
}

fn arg_ctx<T>(r: EvalResult<T>, msg: &str) -> EvalResult<T> {
    r.map_err(|mut e| {
        e.trace.push(TraceEntry {
            always: false,
            msg: msg.to_string(),
            pos: None,
        });
        e
    })
}

/// A decoded context element.
enum Elem<'a> {
    Opaque(&'a str),
    DrvDeep(&'a str),
    Built { drv: &'a str, output: &'a str },
}

fn decode(e: &str) -> Elem<'_> {
    if let Some(rest) = e.strip_prefix('=') {
        Elem::DrvDeep(rest)
    } else if let Some(rest) = e.strip_prefix('!') {
        match rest.split_once('!') {
            Some((output, drv)) => Elem::Built { drv, output },
            None => Elem::Opaque(e),
        }
    } else {
        Elem::Opaque(e)
    }
}

fn is_derivation(path: &str) -> bool {
    path.ends_with(".drv")
}

#[derive(Default)]
struct Info {
    path: bool,
    all_outputs: bool,
    outputs: Vec<Value>,
}

fn get_context(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = arg_ctx(
        vm.force_string(&a[0]),
        "while evaluating the argument passed to builtins.getContext",
    )?;
    let mut infos: BTreeMap<&str, Info> = BTreeMap::new();
    if let Some(ctx) = s.context() {
        for e in ctx.iter() {
            match decode(e) {
                Elem::Opaque(p) => infos.entry(p).or_default().path = true,
                Elem::DrvDeep(p) => infos.entry(p).or_default().all_outputs = true,
                Elem::Built { drv, output } => infos
                    .entry(drv)
                    .or_default()
                    .outputs
                    .push(Value::str(output)),
            }
        }
    }
    let mut entries = Vec::with_capacity(infos.len());
    for (path, info) in infos {
        let mut attrs = Vec::new();
        if info.path {
            attrs.push((Symbol::intern("path"), Value::Bool(true)));
        }
        if info.all_outputs {
            attrs.push((Symbol::intern("allOutputs"), Value::Bool(true)));
        }
        if !info.outputs.is_empty() {
            attrs.push((Symbol::intern("outputs"), Value::list(info.outputs)));
        }
        entries.push((
            Symbol::intern(path),
            Value::attrs(Attrs::from_unsorted(attrs)),
        ));
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn append_context(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = arg_ctx(
        vm.force_string(&a[0]),
        "while evaluating the first argument passed to builtins.appendContext",
    )?;
    let attrs = vm.force_attrs_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.appendContext",
    )?;
    let mut ctx = s.context().cloned().unwrap_or_default();
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    for (sym, v) in attrs.sorted_by_name() {
        let name = sym.as_str().to_string();
        let ipos = vm.pos(attrs.position(sym));
        let path = match store.parse(&name) {
            Ok(p) => store.print(&p),
            Err(_) => {
                return err(format!("context key '{}' is not a store path", name))
                    .map_err(|e| e.with_pos(ipos))
            }
        };
        let info = vm.force_attrs_at(v, ipos, "while evaluating the value of a string context")?;
        let (path_sym, all_sym) = (Symbol::intern("path"), Symbol::intern("allOutputs"));
        if let Some(p) = info.get(path_sym) {
            let apos = vm.pos(info.position(path_sym));
            if vm.force_bool_at(
                p,
                apos,
                "while evaluating the `path` attribute of a string context",
            )? {
                ctx.insert(Rc::from(path.as_str()));
            }
        }
        if let Some(p) = info.get(all_sym) {
            let apos = vm.pos(info.position(all_sym));
            if vm.force_bool_at(
                p,
                apos,
                "while evaluating the `allOutputs` attribute of a string context",
            )? {
                if !is_derivation(&name) {
                    return err(format!(
                        "tried to add all-outputs context of {}, which is not a derivation, to a string",
                        name
                    ));
                }
                ctx.insert(Rc::from(format!("={}", path)));
            }
        }
        if let Some(p) = info.get(known::OUTPUTS) {
            let apos = vm.pos(info.position(known::OUTPUTS));
            let outs = vm.force_list_at(
                p,
                apos,
                "while evaluating the `outputs` attribute of a string context",
            )?;
            if !outs.is_empty() && !is_derivation(&name) {
                return err(format!(
                    "tried to add derivation output context of {}, which is not a derivation, to a string",
                    name
                ));
            }
            for o in outs.iter() {
                let o = vm.force_str_no_ctx_at(
                    o,
                    apos,
                    "while evaluating an output name within a string context",
                )?;
                ctx.insert(Rc::from(format!("!{}!{}", o, path)));
            }
        }
    }
    Ok(Value::bytes(s.as_bytes().to_vec(), ctx_box(ctx)))
}

fn add_drv_output_dependencies(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &a[0],
        &mut ctx,
        false,
        true,
        "while evaluating the argument passed to builtins.addDrvOutputDependencies",
    )?;
    if ctx.len() != 1 {
        return err(format!(
            "context of string '{}' must have exactly one element, but has {}",
            String::from_utf8_lossy(&s),
            ctx.len()
        ));
    }
    let elem = ctx.iter().next().expect("one element").clone();
    let new: Rc<str> = match decode(&elem) {
        Elem::Opaque(p) => {
            if !is_derivation(p) {
                return err(format!("path '{}' is not a derivation", p));
            }
            Rc::from(format!("={}", p))
        }
        Elem::Built { output, .. } => {
            return err(format!(
                "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{}'",
                output
            ))
        }
        Elem::DrvDeep(_) => elem.clone(),
    };
    let mut out = Context::new();
    out.insert(new);
    Ok(Value::bytes(s, ctx_box(out)))
}

fn unsafe_discard_output_dependency(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &a[0],
        &mut ctx,
        false,
        true,
        "while evaluating the argument passed to builtins.unsafeDiscardOutputDependency",
    )?;
    let out: Context = ctx
        .into_iter()
        .map(|e| match decode(&e) {
            Elem::DrvDeep(p) => Rc::from(p),
            _ => e.clone(),
        })
        .collect();
    Ok(Value::bytes(s, ctx_box(out)))
}
