//! The `builtins` set and the global names of the root env. Each family
//! of builtins lives in its own module; this one registers them all and
//! holds the argument helpers they share.

use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use std::rc::Rc;

pub mod attrs;
pub mod context;
pub mod core;
pub mod derivations;
pub mod fetchers;
pub mod fetchforge;
pub mod fetchgit;
pub mod fetchinput;
pub mod flake;
pub mod fromjson;
pub mod hash;
pub mod json;
pub mod lists;
pub mod regex;
pub mod strings;
pub mod toml;
pub mod xml;

/// Names visible without the `builtins.` prefix (everything else is
/// also reachable as `__name`).
const GLOBAL: &[&str] = &[
    "abort",
    "baseNameOf",
    "break",
    "derivation",
    "derivationStrict",
    "dirOf",
    "fetchGit",
    "fetchMercurial",
    "fetchTarball",
    "fetchTree",
    "fromTOML",
    "import",
    "isNull",
    "map",
    "placeholder",
    "removeAttrs",
    "scopedImport",
    "throw",
    "toString",
];

pub struct Registry {
    entries: Vec<(String, Value)>,
}

impl Registry {
    pub fn prim(&mut self, name: &str, arity: usize, f: PrimFn) {
        let p = PrimOp {
            name: Rc::from(name),
            arity,
            imp: PrimImpl::Native(f),
        };
        self.entries
            .push((name.to_string(), Value::PrimOp(Rc::new(p))));
    }
    pub fn value(&mut self, name: &str, v: Value) {
        self.entries.push((name.to_string(), v));
    }
}

/// Install the builtins, and `extra` (an embedder's) beside them; the name
/// of an `extra` one that a builtin already has is an error.
pub fn install(vm: &mut Vm, extra: Vec<(String, Value)>) -> Result<(), String> {
    let mut r = Registry {
        entries: Vec::new(),
    };
    core::register(&mut r, vm);
    attrs::register(&mut r);
    lists::register(&mut r);
    strings::register(&mut r);
    json::register(&mut r);
    toml::register(&mut r);
    regex::register(&mut r);
    hash::register(&mut r);
    context::register(&mut r);
    flake::register(&mut r);
    xml::register(&mut r);
    derivations::register(&mut r);
    // `derivation` is a Nix function in CppNix (functionArgs gives
    // `{ outputs = true; }`, it prints as a lambda): a thunk here, set to the
    // compiled wrapper once the global names it uses exist.
    let derivation = Thunk::evaluated(&vm.heap, Value::Null);
    r.value("derivation", Value::Thunk(derivation.clone()));
    fetchers::register(&mut r, vm);
    let taken = |n: &str| {
        let bare = n.strip_prefix("__").unwrap_or(n);
        matches!(bare, "true" | "false" | "null" | "builtins")
            || r.entries
                .iter()
                .any(|(e, _)| e.strip_prefix("__").unwrap_or(e) == bare)
    };
    if let Some((n, _)) = extra.iter().find(|(n, _)| taken(n)) {
        return Err(format!(
            "cannot define builtin '{n}': the name is already a builtin"
        ));
    }
    r.entries.extend(extra);
    // The language constants live in `builtins` too, but only under their own names.
    r.value("true", Value::Bool(true));
    r.value("false", Value::Bool(false));
    r.value("null", Value::Null);

    let self_ref = Thunk::evaluated(&vm.heap, Value::Null);
    let mut entries: Vec<(Symbol, Value)> = r
        .entries
        .iter()
        .map(|(n, v)| (Symbol::intern(n), v.clone()))
        .collect();
    entries.push((Symbol::intern("builtins"), Value::Thunk(self_ref.clone())));
    let builtins = Value::Attrs(Attrs::from_unsorted(entries));
    self_ref.set(builtins.clone());

    let mut names = rustc_hash::FxHashMap::default();
    let mut values = Vec::new();
    let mut add = |name: &str, v: Value, values: &mut Vec<Value>| {
        let sym = Symbol::intern(name);
        if let Some(&i) = names.get(&sym) {
            values[i as usize] = v;
        } else {
            names.insert(sym, values.len() as u16);
            values.push(v);
        }
    };
    add("builtins", builtins.clone(), &mut values);
    // The constants take the first slots so listings keep stable numbers for them.
    add("true", Value::Bool(true), &mut values);
    add("false", Value::Bool(false), &mut values);
    add("null", Value::Null, &mut values);
    for (name, v) in &r.entries {
        if matches!(name.as_str(), "true" | "false" | "null") {
            add(name, v.clone(), &mut values);
            continue;
        }
        // CppNix's global primops have no `__` twin (`map`, not `__map`).
        if GLOBAL.contains(&name.as_str()) {
            add(name, v.clone(), &mut values);
        } else if !name.starts_with("__") {
            add(&format!("__{}", name), v.clone(), &mut values);
        }
    }
    vm.globals = Env::with_values(&vm.heap, None, values);
    vm.global_names = names;
    vm.cache_key = None;
    vm.builtins = builtins;
    let f = derivations::wrapper(vm).expect("the derivation wrapper compiles");
    derivation.set(f);
    Ok(())
}

// The argument helpers builtins share live with the interpreter.
pub use crate::force::type_mismatch;
