//! `derivationStrict`, `derivation`, and instantiation.
//!
//! Derivations are computed in memory only: every derivation instantiated by
//! this thread is remembered (with its hash modulo) in a thread-local table,
//! so that derivations depending on it, `builtins.readFile` of its `.drv`
//! path's references, and the CLI can find it again without a store.

use crate::error::*;
use crate::value::*;
use crate::value::{Owned, View};
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use nixvm_store::derivation::{Derivation, Output};
use nixvm_store::hash::{empty_hash_warning, Hash, HashAlgo};
use nixvm_store::path::{ContentAddress, ContentAddressMethod, StoreDir};
use std::collections::BTreeSet;
use std::rc::Rc;

use crate::storeglue::Registry;

/// The source of the `derivation` wrapper around `derivationStrict`.
const DERIVATION_NIX: &str = r#"
attrs@{ outputs ? [ "out" ], ... }:
let
  strict = derivationStrict attrs;
  perOutput = map (o: {
    name = o;
    value = shared // {
      outPath = strict.${o};
      drvPath = strict.drvPath;
      type = "derivation";
      outputName = o;
    };
  }) outputs;
  shared = attrs // builtins.listToAttrs perOutput // {
    all = map (e: e.value) perOutput;
    drvAttrs = attrs;
  };
in (builtins.head perOutput).value
"#;

pub fn register(r: &mut super::Registry) {
    r.prim("derivationStrict", 1, derivation_strict);
    r.prim("placeholder", 1, placeholder);
    r.prim("toFile", 2, to_file);
    r.prim("path", 1, path);
    r.prim("filterSource", 2, filter_source);
    r.prim("storePath", 1, store_path);
}

fn store_dir(vm: &Vm) -> StoreDir {
    StoreDir::new(&vm.settings.store_dir)
}

fn store_err(e: impl std::fmt::Display) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other, e.to_string())
}

fn with_trace(mut e: Box<EvalError>, msg: String) -> Box<EvalError> {
    if e.trace.len() < 64 {
        e.trace.push(TraceEntry {
            always: false,
            msg,
            pos: None,
        });
    }
    e
}

fn one_ctx(s: String) -> Option<Box<Context>> {
    let mut c = Context::new();
    c.insert(Rc::from(s.as_str()));
    Some(Box::new(c))
}

/// CppNix's `forceStringNoCtx`: a string that must not carry context.
fn str_no_ctx(vm: &mut Vm, v: &Value) -> EvalResult<String> {
    vm.force_str_no_ctx(v)
}

/// A decoded string context element.
enum CtxElem<'a> {
    Opaque(&'a str),
    DrvDeep(&'a str),
    Built { output: &'a str, drv: &'a str },
}

fn decode_ctx(s: &str) -> CtxElem<'_> {
    if let Some(p) = s.strip_prefix('=') {
        CtxElem::DrvDeep(p)
    } else if let Some(rest) = s.strip_prefix('!') {
        match rest.split_once('!') {
            Some((output, drv)) => CtxElem::Built { output, drv },
            None => CtxElem::Opaque(s),
        }
    } else {
        CtxElem::Opaque(s)
    }
}

fn experimental(feature: &str, reason: &str) -> Box<EvalError> {
    let reason = if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    };
    EvalError::new(
        ErrorKind::Other,
        format!(
            "experimental Nix feature '{feature}' is disabled{reason}; add '--extra-experimental-features {feature}' to enable it"
        ),
    )
}

// ---- derivationStrict ---------------------------------------------------

fn derivation_strict(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let attrs = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the argument passed to builtins.derivationStrict",
    )?;
    let name_v = vm.get_attr_ctx(
        &attrs,
        known::NAME,
        "in the attrset passed as argument to builtins.derivationStrict",
    )?;
    let name_pos = vm.pos(attrs.position(known::NAME));
    let name = str_no_ctx(vm, &name_v)
        .ctx("while evaluating the `name` attribute passed to builtins.derivationStrict")
        .ctx_at(name_pos, || {
            "while evaluating the derivation attribute 'name'".into()
        })?;
    derivation_strict_inner(vm, &name, &attrs).map_err(|e| {
        let pos = vm
            .pos(attrs.position(known::NAME))
            .map(|p| vm.show_pos(p))
            .unwrap_or_else(|| "«unknown»".to_string());
        with_trace(
            e,
            format!(
                "while evaluating derivation '{name}'\n  whose name attribute is located at {pos}"
            ),
        )
    })
}

/// What the attribute loop of `derivationStrict` collects besides the env.
#[derive(Default)]
struct Special {
    output_hash: Option<String>,
    output_hash_algo: Option<HashAlgo>,
    method: Option<ContentAddressMethod>,
    outputs: Option<BTreeSet<String>>,
}

fn hash_mode(s: &str, drv_name: &str) -> EvalResult<ContentAddressMethod> {
    match ContentAddressMethod::from_output_hash_mode(s, drv_name) {
        Ok(Some(m)) => Ok(m),
        Ok(None) => err(format!(
            "invalid value '{s}' for 'outputHashMode' attribute"
        )),
        Err(e) => Err(store_err(e)),
    }
}

fn set_outputs(list: Vec<String>) -> EvalResult<BTreeSet<String>> {
    let mut set = BTreeSet::new();
    for o in list {
        if set.contains(&o) {
            return err(format!("duplicate derivation output '{o}'"));
        }
        if o == "drvPath" {
            return err("invalid derivation output name 'drvPath'");
        }
        set.insert(o);
    }
    if set.is_empty() {
        return err("derivation cannot have an empty set of outputs");
    }
    Ok(set)
}

fn derivation_strict_inner(vm: &mut Vm, name: &str, attrs: &Attrs) -> EvalResult<Value> {
    if let Err(e) = nixvm_store::path::check_name(name) {
        return err(format!(
            "invalid derivation name: {e}. Please pass a different 'name'."
        ));
    }
    let structured = match attrs.get(Symbol::intern("__structuredAttrs")) {
        Some(v) => vm.force_bool(v).ctx(
            "while evaluating the `__structuredAttrs` attribute passed to builtins.derivationStrict",
        )?,
        None => false,
    };
    let ignore_nulls = match attrs.get(Symbol::intern("__ignoreNulls")) {
        Some(v) => vm.force_bool(v).ctx(
            "while evaluating the `__ignoreNulls` attribute passed to builtins.derivationStrict",
        )?,
        None => false,
    };

    let mut drv = Derivation {
        name: name.to_string(),
        ..Default::default()
    };
    let mut ctx = Context::new();
    let mut sp = Special::default();
    let mut json_entries: Vec<(String, String)> = Vec::new();

    for (sym, v) in attrs.sorted_by_name() {
        let key = sym.as_str().to_string();
        if key == "__ignoreNulls" {
            continue;
        }
        let r = attr_into_drv(
            vm,
            name,
            &key,
            v,
            structured,
            ignore_nulls,
            &mut drv,
            &mut ctx,
            &mut sp,
            &mut json_entries,
        );
        r.map_err(|mut e| {
            if e.trace.len() < 64 {
                e.trace.push(TraceEntry {
                    always: false,
                    msg: format!("while evaluating attribute '{key}' of derivation '{name}'"),
                    pos: vm.pos(attrs.position(sym)),
                });
            }
            e
        })?;
    }

    if structured {
        let mut json = String::from("{");
        for (i, (k, v)) in json_entries.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&json_quote(k));
            json.push(':');
            json.push_str(v);
        }
        json.push('}');
        drv.env.insert("__json".to_string(), json);
    }

    // Context → inputs.
    for c in ctx.iter() {
        match decode_ctx(c) {
            CtxElem::Opaque(p) => {
                drv.input_srcs.insert(p.to_string());
            }
            CtxElem::Built { output, drv: d } => {
                drv.input_drvs
                    .entry(d.to_string())
                    .or_default()
                    .insert(output.to_string());
            }
            CtxElem::DrvDeep(d) => add_deep(&vm.registry, &mut drv, d),
        }
    }

    if drv.builder.is_empty() {
        return err("required attribute 'builder' missing");
    }
    if drv.platform.is_empty() {
        return err("required attribute 'system' missing");
    }
    if name.ends_with(".drv") {
        return err(
            "derivation names are allowed to end in '.drv' only if they produce a single derivation file",
        );
    }

    let outputs = sp
        .outputs
        .take()
        .unwrap_or_else(|| BTreeSet::from(["out".to_string()]));
    let store = store_dir(vm);

    if let Some(oh) = &sp.output_hash {
        if outputs.len() != 1 || !outputs.contains("out") {
            return err("multiple outputs are not supported in fixed-output derivations");
        }
        let h = Hash::parse_allow_empty(oh, sp.output_hash_algo)
            .map_err(|e| store_err(nixvm_store::Error::from(e)))?;
        if oh.is_empty() {
            vm.warn(empty_hash_warning(&h))?;
        }
        let ca = ContentAddress {
            method: sp.method.unwrap_or(ContentAddressMethod::Flat),
            hash: h,
        };
        let out = Output::CAFixed(ca);
        let p = out
            .path(&store, name, "out")
            .map_err(store_err)?
            .unwrap_or_default();
        drv.env.insert("out".to_string(), p);
        drv.outputs.insert("out".to_string(), out);
    } else {
        for o in &outputs {
            drv.env.insert(o.clone(), String::new());
            drv.outputs.insert(o.clone(), Output::Deferred);
        }
    }

    let backend = vm.store.clone();
    let warnings = {
        let modulo = &mut vm.registry.modulo;
        let mut read = |p: &str| read_drv(&store, backend.as_deref(), p);
        drv.fill_in_output_paths(&store, modulo, &mut read)
    }
    .map_err(store_err)?;
    for w in warnings {
        vm.warn(w)?;
    }

    let (drv_path, _contents) = drv.compute_drv_path(&store).map_err(store_err)?;
    if let Some(st) = crate::storeglue::writable_store(vm) {
        let written = st.add_derivation(&drv).map_err(store_err)?;
        if written != drv_path {
            return err(format!(
                "internal error: derivation written as '{written}' instead of '{drv_path}'"
            ));
        }
    }
    {
        let Registry {
            modulo,
            drv_outputs,
            refs,
            outputs,
        } = &mut vm.registry;
        for (o, out) in &drv.outputs {
            if let Ok(Some(p)) = out.path(&store, &drv.name, o) {
                outputs.insert(p, (drv_path.clone(), o.clone()));
            }
        }
        let h = {
            let mut read = |p: &str| read_drv(&store, backend.as_deref(), p);
            modulo.hash_input(&store, &drv, &mut read)
        }
        .map_err(store_err)?;
        modulo.insert(drv_path.clone(), h);
        refs.insert(
            drv_path.clone(),
            drv.input_srcs
                .iter()
                .chain(drv.input_drvs.keys())
                .cloned()
                .collect(),
        );
        drv_outputs.insert(drv_path.clone(), drv.outputs.keys().cloned().collect());
    }

    let mut entries = vec![(
        known::DRV_PATH,
        Value::str_ctx(drv_path.clone(), one_ctx(format!("={drv_path}"))),
    )];
    for (o, out) in &drv.outputs {
        let p = out
            .path(&store, name, o)
            .map_err(store_err)?
            .unwrap_or_else(|| nixvm_store::derivation::hash_placeholder(o));
        entries.push((
            Symbol::intern(o),
            Value::str_ctx(p, one_ctx(format!("!{o}!{drv_path}"))),
        ));
    }
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

/// An input derivation whose hash modulo is not cached: one this evaluation did not
/// instantiate (those are all in the cache), so it is in the store.
fn read_drv(
    store: &StoreDir,
    backend: Option<&dyn crate::StoreBackend>,
    p: &str,
) -> Result<Derivation, nixvm_store::Error> {
    if let Some(b) = backend {
        if b.is_valid(p).unwrap_or(false) {
            return b.read_derivation(p);
        }
    }
    match std::fs::read_to_string(p) {
        Ok(s) => Derivation::parse_at_path(store, p, &s),
        Err(_) => Err(nixvm_store::DerivationError::InputNotFound(p.to_string()).into()),
    }
}

/// A `=drv` context: the closure of the `.drv` file, with every output of
/// every derivation in it.
fn add_deep(reg: &Registry, drv: &mut Derivation, root: &str) {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        if !seen.insert(p.clone()) {
            continue;
        }
        if let Some(refs) = reg.refs.get(&p) {
            todo.extend(refs.iter().cloned());
        }
    }
    for p in seen {
        if p.ends_with(".drv") {
            let outs: Vec<String> = reg
                .drv_outputs
                .get(&p)
                .map(|o| o.to_vec())
                .unwrap_or_default();
            if !outs.is_empty() {
                drv.input_drvs.entry(p.clone()).or_default().extend(outs);
            }
        }
        drv.input_srcs.insert(p);
    }
}

#[allow(clippy::too_many_arguments)]
fn attr_into_drv(
    vm: &mut Vm,
    drv_name: &str,
    key: &str,
    v: &Value,
    structured: bool,
    ignore_nulls: bool,
    drv: &mut Derivation,
    ctx: &mut Context,
    sp: &mut Special,
    json_entries: &mut Vec<(String, String)>,
) -> EvalResult<()> {
    if ignore_nulls && vm.force(v.clone())?.view().is_null() {
        return Ok(());
    }
    match key {
        "__contentAddressed" => {
            if vm.force_bool(v)? {
                return Err(experimental("ca-derivations", ""));
            }
            return Ok(());
        }
        "__impure" => {
            if vm.force_bool(v)? {
                return Err(experimental("impure-derivations", ""));
            }
            return Ok(());
        }
        "args" => {
            let l = vm.force_list(v)?;
            for x in l.iter() {
                let s = vm.coerce_ctx(
                    x,
                    ctx,
                    true,
                    true,
                    "while evaluating an element of the argument list",
                )?;
                drv.args.push(String::from_utf8_lossy(&s).into_owned());
            }
            return Ok(());
        }
        _ => {}
    }
    if structured {
        if key == "__structuredAttrs" {
            return Ok(());
        }
        let json = crate::builtins::json::to_json_string(vm, v.clone(), true)?;
        collect_json_context(vm, v, ctx, 0)?;
        json_entries.push((key.to_string(), json));
        if matches!(
            key,
            "allowedReferences"
                | "allowedRequisites"
                | "disallowedReferences"
                | "disallowedRequisites"
                | "maxSize"
                | "maxClosureSize"
        ) {
            vm.warn(format!(
                "'structuredAttrs' disables the effect of the derivation attribute '{key}'; use 'outputChecks.<output>.{key}' instead"
            ))?;
        }
        match key {
            "builder" => {
                let s = vm.force_string(v)?;
                if let Some(c) = s.context() {
                    ctx.extend(c.iter().cloned());
                }
                drv.builder = s.to_str().into_owned();
            }
            "system" => drv.platform = str_no_ctx(vm, v)?,
            "outputHash" => sp.output_hash = Some(str_no_ctx(vm, v)?),
            "outputHashAlgo" => {
                let s = str_no_ctx(vm, v)?;
                sp.output_hash_algo =
                    HashAlgo::parse_opt(&s).map_err(|e| store_err(nixvm_store::Error::from(e)))?;
            }
            "outputHashMode" => {
                let s = str_no_ctx(vm, v)?;
                sp.method = Some(hash_mode(&s, drv_name)?);
            }
            "outputs" => {
                let l = vm.force_list(v)?;
                let mut names = Vec::new();
                for x in l.iter() {
                    names.push(str_no_ctx(vm, x)?);
                }
                sp.outputs = Some(set_outputs(names)?);
            }
            _ => {}
        }
        return Ok(());
    }
    let s = vm.coerce_ctx(v, ctx, true, true, "")?;
    let s = String::from_utf8_lossy(&s).into_owned();
    if key == "__json" {
        vm.warn(
            "setting structured attributes via '__json' is deprecated, and may be disallowed in future versions of Nix. Set '__structuredAttrs = true' instead."
                .to_string(),
        )?;
        drv.env.insert(key.to_string(), s);
        return Ok(());
    }
    match key {
        "builder" => drv.builder = s.clone(),
        "system" => drv.platform = s.clone(),
        "outputHash" => sp.output_hash = Some(s.clone()),
        "outputHashAlgo" => {
            sp.output_hash_algo =
                HashAlgo::parse_opt(&s).map_err(|e| store_err(nixvm_store::Error::from(e)))?
        }
        "outputHashMode" => sp.method = Some(hash_mode(&s, drv_name)?),
        "outputs" => {
            let names = s
                .split([' ', '\t', '\n', '\r'])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect();
            sp.outputs = Some(set_outputs(names)?);
        }
        _ => {}
    }
    drv.env.insert(key.to_string(), s);
    Ok(())
}

/// The string context `toJSON` would collect from a (forced) value.
fn collect_json_context(vm: &mut Vm, v: &Value, ctx: &mut Context, depth: usize) -> EvalResult<()> {
    if depth > 10000 {
        return err("stack overflow");
    }
    let v = vm.force(v.clone())?;
    match &v.view() {
        View::String(s) => {
            if let Some(c) = s.context() {
                ctx.extend(c.iter().cloned());
            }
        }
        View::Path(p) => {
            let sp = crate::storeglue::copy_path_to_store(vm, p)?;
            ctx.insert(Rc::from(sp.as_str()));
        }
        View::Attrs(a) => {
            if a.contains(known::TO_STRING) || a.contains(known::OUT_PATH) {
                crate::ops::coerce_to_string(vm, &v, ctx, false, true)?;
            } else {
                for (_, x) in a.iter() {
                    collect_json_context(vm, x, ctx, depth + 1)?;
                }
            }
        }
        View::List(l) => {
            for x in l.iter() {
                collect_json_context(vm, x, ctx, depth + 1)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn json_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---- derivation ---------------------------------------------------------

/// The `derivation` function: the wrapper around `derivationStrict`,
/// compiled (a lambda, as CppNix's is).
pub fn wrapper(vm: &mut Vm) -> EvalResult<Value> {
    let thunk = vm.compile_source(
        DERIVATION_NIX,
        "«nix-internal»/derivation-internal.nix",
        "/",
    )?;
    vm.force(thunk)
}

// ---- placeholder, toFile, storePath -------------------------------------

fn placeholder(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let o = str_no_ctx(vm, &a[0])
        .ctx("while evaluating the first argument passed to builtins.placeholder")?;
    Ok(Value::string(nixvm_store::derivation::hash_placeholder(&o)))
}

fn to_file(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = str_no_ctx(vm, &a[0])
        .ctx("while evaluating the first argument passed to builtins.toFile")?;
    let contents = vm
        .force_string(&a[1])
        .ctx("while evaluating the second argument passed to builtins.toFile")?;
    let mut refs = BTreeSet::new();
    if let Some(c) = contents.context() {
        for e in c.iter() {
            match decode_ctx(e) {
                CtxElem::Opaque(p) => {
                    refs.insert(p.to_string());
                }
                _ => {
                    return err(format!(
                        "files created by builtins.toFile may not reference derivations, but {name} references {e}"
                    ))
                }
            }
        }
    }
    let store = store_dir(vm);
    let h = Hash::of(HashAlgo::Sha256, contents.as_bytes());
    let p = store
        .make_text_path(&name, &h, refs.iter())
        .map_err(store_err)?;
    let printed = store.print(&p);
    if let Some(st) = crate::storeglue::writable_store(vm) {
        st.add_text(&name, contents.as_bytes(), &refs)
            .map_err(store_err)?;
    }
    vm.registry.refs.insert(printed.clone(), refs);
    Ok(Value::str_ctx(printed.clone(), one_ctx(printed)))
}

fn store_path(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    if vm.settings.pure_eval {
        return err("'builtins.storePath' is not allowed in pure evaluation mode");
    }
    let mut ctx = Context::new();
    let mut p = vm.coerce_path_ctx(
        &a[0],
        &mut ctx,
        "while evaluating the first argument passed to 'builtins.storePath'",
    )?;
    let store = store_dir(vm);
    if !store.is_store_path(&p) {
        if let Ok(real) = std::fs::canonicalize(&p) {
            p = real.to_string_lossy().into_owned();
        }
    }
    if !store.is_in_store(&p) {
        return err(format!("path '{p}' is not in the Nix store"));
    }
    let (sp, _) = store.to_store_path(&p).map_err(store_err)?;
    let printed = store.print(&sp);
    Ok(Value::str_ctx(p, one_ctx(printed)))
}

// ---- builtins.path, filterSource ----------------------------------------

fn path(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let attrs = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the argument passed to 'builtins.path'",
    )?;
    let mut src: Option<String> = None;
    let mut name = String::new();
    let mut filter: Option<Value> = None;
    let mut method = ContentAddressMethod::Recursive;
    let mut expected: Option<Hash> = None;
    for (sym, v) in attrs.sorted_by_name() {
        // The frames point at the attribute, as CppNix's.
        let pos = vm.pos(attrs.position(sym));
        let at = |msg: &'static str| move || msg.to_string();
        match sym.as_str() {
            "path" => {
                let mut ctx = Context::new();
                let msg = "while evaluating the 'path' attribute passed to 'builtins.path'";
                src = Some(vm.coerce_path_at(v, &mut ctx, pos, msg)?)
            }
            "name" => {
                let msg = "while evaluating the `name` attribute passed to builtins.path";
                name = str_no_ctx(vm, v).ctx_at(pos, at(msg))?
            }
            "filter" => {
                let msg = "while evaluating the `filter` parameter passed to builtins.path";
                filter = Some(vm.force_function(v).ctx_at(pos, at(msg))?)
            }
            "recursive" => {
                let msg = "while evaluating the `recursive` attribute passed to builtins.path";
                method = if vm.force_bool(v).ctx_at(pos, at(msg))? {
                    ContentAddressMethod::Recursive
                } else {
                    ContentAddressMethod::Flat
                }
            }
            "sha256" => {
                let msg = "while evaluating the `sha256` attribute passed to builtins.path";
                let s = str_no_ctx(vm, v).ctx_at(pos, at(msg))?;
                let h = Hash::parse_allow_empty(&s, Some(HashAlgo::Sha256))
                    .map_err(|e| store_err(nixvm_store::Error::from(e)))?;
                if s.is_empty() {
                    vm.warn(empty_hash_warning(&h))?;
                }
                expected = Some(h);
            }
            other => return err(format!("unsupported argument '{other}' to 'builtins.path'")),
        }
    }
    let Some(src) = src else {
        return err("missing required 'path' attribute in the first argument to 'builtins.path'");
    };
    if name.is_empty() {
        name = crate::storeglue::base_name(&src).to_string();
    }
    add_path(vm, &name, &src, filter, method, expected)
}

fn filter_source(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let src = vm.coerce_path_ctx(
        &a[1],
        &mut ctx,
        "while evaluating the second argument (the path to filter) passed to 'builtins.filterSource'",
    )?;
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.filterSource")?;
    let name = crate::storeglue::base_name(&src).to_string();
    add_path(
        vm,
        &name,
        &src,
        Some(f),
        ContentAddressMethod::Recursive,
        None,
    )
}

/// Errors while hashing a filtered tree: from the store crate or the filter.
enum FilterError {
    Store(nixvm_store::Error),
    Eval(Box<EvalError>),
}

impl From<nixvm_store::Error> for FilterError {
    fn from(e: nixvm_store::Error) -> Self {
        FilterError::Store(e)
    }
}

fn add_path(
    vm: &mut Vm,
    name: &str,
    src: &str,
    filter: Option<Value>,
    method: ContentAddressMethod,
    expected: Option<Hash>,
) -> EvalResult<Value> {
    add_path_inner(vm, name, src, filter, method, expected)
        .map_err(|e| with_trace(e, format!("while adding path '{src}'")))
}

fn add_path_inner(
    vm: &mut Vm,
    name: &str,
    src: &str,
    filter: Option<Value>,
    method: ContentAddressMethod,
    expected: Option<Hash>,
) -> EvalResult<Value> {
    let store = store_dir(vm);
    let make = |h: Hash| -> EvalResult<String> {
        let ca = ContentAddress { method, hash: h };
        let p = store
            .make_fixed_output_path(name, &ca, std::iter::empty::<&str>(), false)
            .map_err(store_err)?;
        Ok(store.print(&p))
    };
    let expected_path = match expected {
        Some(h) => Some(make(h)?),
        None => None,
    };
    if let Some(p) = &expected_path {
        let valid = crate::storeglue::fetched_path_exists(vm, p)
            || match &vm.store {
                Some(b) => b.is_valid(p).unwrap_or(false),
                None => false,
            };
        if valid {
            return Ok(Value::str_ctx(p.clone(), one_ctx(p.clone())));
        }
    }
    crate::storeglue::check_access(vm, src)?;
    let real = std::fs::canonicalize(crate::storeglue::physical_path(vm, src))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| src.to_string());
    let real_path = std::path::Path::new(&real);
    if let Some(st) = crate::storeglue::writable_store(vm) {
        let p = add_to_writable_store(vm, &*st, name, src, real_path, filter, method)?;
        if let Some(e) = &expected_path {
            if *e != p {
                return err(format!(
                    "store path mismatch in (possibly filtered) path added from '{src}'"
                ));
            }
        }
        return Ok(Value::str_ctx(p.clone(), one_ctx(p)));
    }
    let hash = match &filter {
        None => {
            nixvm_store::nar::hash_path(
                real_path,
                method,
                HashAlgo::Sha256,
                &mut |_: &std::path::Path, _| Ok::<bool, nixvm_store::Error>(true),
            )
            .map_err(store_err)?
            .0
        }
        Some(f) => {
            let mut cb =
                |p: &std::path::Path, t: nixvm_store::FileType| -> Result<bool, FilterError> {
                    let shown = filter_shown_path(src, real_path, p);
                    let r = vm
                        .call2(f.clone(), Value::string(shown), Value::str(t.as_str()))
                        .map_err(FilterError::Eval)?;
                    vm.force_bool(&r).map_err(|e| {
                        FilterError::Eval(with_trace(
                            e,
                            "while evaluating the return value of the path filter function".into(),
                        ))
                    })
                };
            let r = nixvm_store::nar::hash_path(real_path, method, HashAlgo::Sha256, &mut cb);
            match r {
                Ok((h, _)) => h,
                Err(FilterError::Store(e)) => return Err(store_err(e)),
                Err(FilterError::Eval(e)) => return Err(e),
            }
        }
    };
    let p = make(hash)?;
    if let Some(e) = &expected_path {
        if *e != p {
            return err(format!(
                "store path mismatch in (possibly filtered) path added from '{src}'"
            ));
        }
    }
    Ok(Value::str_ctx(p.clone(), one_ctx(p)))
}

/// `builtins.path`/`filterSource` with a writable store: copy (through the filter) into it.
fn add_to_writable_store(
    vm: &mut Vm,
    st: &dyn crate::StoreBackend,
    name: &str,
    src: &str,
    real_path: &std::path::Path,
    filter: Option<Value>,
    method: ContentAddressMethod,
) -> EvalResult<String> {
    let Some(f) = filter else {
        return st
            .add_path(name, real_path, method, None)
            .map_err(store_err);
    };
    // The filter runs Nix code; its errors are kept here and the store is told to stop.
    let mut eval_error: Option<Box<EvalError>> = None;
    let mut cb =
        |p: &std::path::Path, t: nixvm_store::FileType| -> Result<bool, nixvm_store::Error> {
            let shown = filter_shown_path(src, real_path, p);
            let r = vm
                .call2(f.clone(), Value::string(shown), Value::str(t.as_str()))
                .and_then(|r| {
                    vm.force_bool(&r).map_err(|e| {
                        with_trace(
                            e,
                            "while evaluating the return value of the path filter function".into(),
                        )
                    })
                });
            match r {
                Ok(b) => Ok(b),
                Err(e) => {
                    eval_error = Some(e);
                    Err(nixvm_store::Error::Msg("path filter failed".into()))
                }
            }
        };
    let r = st.add_path(name, real_path, method, Some(&mut cb));
    if let Some(e) = eval_error {
        return Err(e);
    }
    r.map_err(store_err)
}

// ---- instantiation --------------------------------------------------------

fn is_derivation(vm: &mut Vm, a: &Attrs) -> EvalResult<bool> {
    match a.get(known::TYPE) {
        Some(t) => match vm.force(t.clone())?.unpack() {
            Owned::String(s) => Ok(s.as_bytes() == b"derivation"),
            _ => Ok(false),
        },
        None => Ok(false),
    }
}

fn drv_path_of(vm: &mut Vm, a: &Attrs) -> EvalResult<String> {
    let Some(dp) = a.get(known::DRV_PATH).cloned() else {
        return err("derivation does not have a 'drvPath' attribute");
    };
    let mut ctx = Context::new();
    let p = crate::ops::coerce_to_string(vm, &dp, &mut ctx, false, false)?;
    let mut p = String::from_utf8_lossy(&p).into_owned();
    if let Some(o) = a.get(known::OUTPUT_NAME).cloned() {
        let o = vm.force_str_no_ctx(&o)?;
        if o != "out" {
            p.push('!');
            p.push_str(&o);
        }
    }
    Ok(p)
}

/// Derivations found so far, and the attribute sets already seen (CppNix
/// skips a derivation value it has already listed).
struct Found {
    seen: BTreeSet<*const ()>,
    paths: Vec<String>,
}

impl Found {
    fn add(&mut self, vm: &mut Vm, a: &Attrs) -> EvalResult<()> {
        if self.seen.insert(a.as_ptr()) {
            let p = drv_path_of(vm, a)?;
            self.paths.push(p);
        }
        Ok(())
    }
}

fn get_derivations(vm: &mut Vm, v: Value, top: bool, out: &mut Found) -> EvalResult<()> {
    match vm.force(v)?.unpack() {
        Owned::Attrs(a) => {
            if is_derivation(vm, &a)? {
                return out.add(vm, &a);
            }
            if !top {
                let rec = match a.get(Symbol::intern("recurseForDerivations")) {
                    Some(r) => vm.force_bool(r)?,
                    None => false,
                };
                if !rec {
                    return Ok(());
                }
            }
            for (_, x) in a.sorted_by_name() {
                let x = vm.force(x.clone())?;
                if let View::Attrs(_) = &x.view() {
                    get_derivations(vm, x, false, out)?;
                }
            }
            Ok(())
        }
        Owned::List(l) => {
            for x in l.iter() {
                let x = vm.force(x.clone())?;
                match &x.view() {
                    View::Attrs(b) if is_derivation(vm, b)? => out.add(vm, b)?,
                    View::Attrs(_) | View::List(_) => get_derivations(vm, x, true, out)?,
                    _ => return err(
                        "expression does not evaluate to a derivation (or a set or list of those)",
                    ),
                }
            }
            Ok(())
        }
        _ if top => err("expression does not evaluate to a derivation (or a set or list of those)"),
        _ => Ok(()),
    }
}

pub fn instantiate(vm: &mut Vm, v: Value) -> EvalResult<Vec<String>> {
    let mut out = Found {
        seen: BTreeSet::new(),
        paths: Vec::new(),
    };
    get_derivations(vm, v, true, &mut out)?;
    Ok(out.paths)
}

/// The path a `filter` function is shown for the entry `p` of the tree at `real_path`: the
/// source path as the user wrote it, extended by the entry's relative path.
fn filter_shown_path(src: &str, real_path: &std::path::Path, p: &std::path::Path) -> String {
    match p.strip_prefix(real_path) {
        Ok(rel) if !rel.as_os_str().is_empty() => {
            format!("{}/{}", src.trim_end_matches('/'), rel.to_string_lossy())
        }
        _ => src.to_string(),
    }
}
