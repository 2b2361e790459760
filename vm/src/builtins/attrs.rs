//! Attribute-set builtins.

use super::{type_mismatch, Registry};
use crate::error::*;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;

pub fn register(r: &mut Registry) {
    r.prim("attrNames", 1, attr_names);
    r.prim("attrValues", 1, attr_values);
    r.prim("getAttr", 2, get_attr);
    r.prim("hasAttr", 2, has_attr);
    r.prim("removeAttrs", 2, remove_attrs);
    r.prim("listToAttrs", 1, list_to_attrs);
    r.prim("intersectAttrs", 2, intersect_attrs);
    r.prim("catAttrs", 2, cat_attrs);
    r.prim("mapAttrs", 2, map_attrs);
    r.prim("zipAttrsWith", 2, zip_attrs_with);
}

fn attr_names(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the argument passed to builtins.attrNames",
    )?;
    Ok(Value::list(
        s.sorted_by_name()
            .into_iter()
            .map(|(k, _)| vm.name_string(k))
            .collect(),
    ))
}

fn attr_values(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the argument passed to builtins.attrValues",
    )?;
    Ok(Value::list(
        s.sorted_by_name()
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

fn get_attr(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.getAttr")?;
    let s = vm.force_attrs_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.getAttr",
    )?;
    let v = vm.get_attr_ctx(
        &s,
        Symbol::intern(&name),
        "in the attribute set under consideration",
    )?;
    vm.force(v)
}

fn has_attr(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.hasAttr")?;
    let s = vm.force_attrs_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.hasAttr",
    )?;
    Ok(Value::Bool(s.contains(Symbol::intern(&name))))
}

fn remove_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.removeAttrs",
    )?;
    let names = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.removeAttrs",
    )?;
    let mut drop = Vec::with_capacity(names.len());
    for n in names.iter() {
        let n = vm.force_str_no_ctx(n).ctx(
            "while evaluating the values of the second argument passed to builtins.removeAttrs",
        )?;
        drop.push(Symbol::intern(&n));
    }
    if !drop.iter().any(|k| s.contains(*k)) {
        return Ok(Value::Attrs(s));
    }
    // Sorted for binary search (a long list over a big set was n * m), and the
    // attributes kept whole, positions included, as CppNix keeps them.
    drop.sort_unstable();
    let kept: Vec<Attr> = s
        .attr_iter()
        .filter(|a| drop.binary_search(&a.name).is_err())
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs::from_sorted_attrs(kept)))
}

fn list_to_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    const PAIR: &str = "in a {name=...; value=...;} pair";
    let l = vm.force_list_ctx(
        &a[0],
        "while evaluating the argument passed to builtins.listToAttrs",
    )?;
    // Every name first, then (as CppNix, in the order of the names) the
    // value of each name's first pair.
    let mut named: Vec<(Symbol, Attrs)> = Vec::with_capacity(l.len());
    for item in l.iter() {
        let item = vm.force_attrs_ctx(
            item,
            "while evaluating an element of the list passed to builtins.listToAttrs",
        )?;
        let name = vm.get_attr_ctx(&item, known::NAME, PAIR)?;
        let pos = vm.pos(item.position(known::NAME));
        let name = vm.force_str_no_ctx_at(
            &name,
            pos,
            "while evaluating the `name` attribute of an element of the list passed to builtins.listToAttrs",
        )?;
        named.push((Symbol::intern(&name), item));
    }
    // Stable: the first pair of a name stays first.
    named.sort_by_key(|x| x.0);
    let mut entries: Vec<Attr> = Vec::with_capacity(named.len());
    let mut prev = None;
    for (name, item) in named {
        if prev == Some(name) {
            continue;
        }
        prev = Some(name);
        let value = vm.get_attr_ctx(&item, known::VALUE, PAIR)?;
        // Defined where the item's `value` is, as in CppNix.
        entries.push(Attr {
            name,
            pos: item.position(known::VALUE),
            value,
        });
    }
    Ok(Value::attrs(Attrs::from_sorted_attrs(entries)))
}

fn intersect_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let x = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.intersectAttrs",
    )?;
    let y = vm.force_attrs_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.intersectAttrs",
    )?;
    // Walk the smaller side and look names up in the other, as CppNix does:
    // `callPackage` intersects a function's few arguments with all of `pkgs`.
    // Either way the attributes kept are `y`'s, with their positions.
    let kept: Vec<Attr> = if x.len() < y.len() {
        x.attr_iter()
            .filter_map(|a| y.get_attr(a.name).cloned())
            .collect()
    } else {
        y.attr_iter()
            .filter(|a| x.contains(a.name))
            .cloned()
            .collect()
    };
    Ok(Value::attrs(Attrs::from_sorted_attrs(kept)))
}

fn cat_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.catAttrs")?;
    let name = Symbol::intern(&name);
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.catAttrs",
    )?;
    let mut out = Vec::new();
    for item in l.iter() {
        let s = vm.force_attrs_ctx(
            item,
            "while evaluating an element in the list passed as second argument to builtins.catAttrs",
        )?;
        if let Some(v) = s.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn map_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // CppNix does not force the function here: its applications have no
    // call site (an evaluated function would give them the lambda's). A
    // thunk that holds it says the same to the interpreter.
    let f = match a[0].view() {
        View::Thunk(_) => a[0].clone(),
        _ => Value::Thunk(Thunk::evaluated(&vm.heap, a[0].clone())),
    };
    let s = vm.force_attrs_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.mapAttrs",
    )?;
    let entries: Vec<Attr> = s
        .attr_iter()
        .map(|a| {
            let name = vm.name_string(a.name);
            Attr {
                name: a.name,
                pos: PosIdx::NONE,
                value: Value::Thunk(Thunk::app2(&vm.heap, f.clone(), name, a.value.clone())),
            }
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted_attrs(entries)))
}

fn zip_attrs_with(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.zipAttrsWith")?;
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.zipAttrsWith",
    )?;
    let mut groups: rustc_hash::FxHashMap<Symbol, Vec<Value>> = Default::default();
    let mut order = Vec::new();
    for item in l.iter() {
        let s = vm.force_attrs_ctx(
            item,
            "while evaluating a value of the list passed as second argument to builtins.zipAttrsWith",
        )?;
        for (k, v) in s.iter() {
            groups
                .entry(k)
                .or_insert_with(|| {
                    order.push(k);
                    Vec::new()
                })
                .push(v.clone());
        }
    }
    let entries = order
        .into_iter()
        .map(|k| {
            let vals = groups.remove(&k).unwrap_or_default();
            let name = vm.name_string(k);
            (
                k,
                Value::Thunk(Thunk::app2(&vm.heap, f.clone(), name, Value::list(vals))),
            )
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

pub fn get_string_attr(vm: &mut Vm, s: &Attrs, name: &str) -> EvalResult<Option<String>> {
    match s.get(Symbol::intern(name)) {
        Some(v) => Ok(Some(vm.force_str_no_ctx(&v.clone())?)),
        None => Ok(None),
    }
}

pub fn expect_attrs(v: &Value) -> EvalResult<Attrs> {
    match &v.view() {
        View::Attrs(a) => Ok(a.clone()),
        other => type_mismatch("a set", &other.to_value()),
    }
}
