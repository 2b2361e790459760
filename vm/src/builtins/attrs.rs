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
    let s = vm.force_attrs(&a[0])?;
    Ok(Value::list(
        s.sorted_by_name()
            .into_iter()
            .map(|(k, _)| vm.name_string(k))
            .collect(),
    ))
}

fn attr_values(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm.force_attrs(&a[0])?;
    Ok(Value::list(
        s.sorted_by_name()
            .into_iter()
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

fn get_attr(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm.force_str_no_ctx(&a[0])?;
    let s = vm.force_attrs(&a[1])?;
    match s.get(Symbol::intern(&name)) {
        Some(v) => vm.force(v.clone()),
        None => Err(EvalError::new(
            ErrorKind::MissingAttr,
            format!("attribute '{}' missing", name),
        )),
    }
}

fn has_attr(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm.force_str_no_ctx(&a[0])?;
    let s = vm.force_attrs(&a[1])?;
    Ok(Value::Bool(s.contains(Symbol::intern(&name))))
}

fn remove_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm.force_attrs(&a[0])?;
    let names = vm.force_list(&a[1])?;
    let mut drop = Vec::with_capacity(names.len());
    for n in names.iter() {
        drop.push(Symbol::intern(&vm.force_str_no_ctx(n)?));
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
    let l = vm.force_list(&a[0])?;
    let mut entries: Vec<Attr> = Vec::with_capacity(l.len());
    for item in l.iter() {
        let item = vm.force_attrs(item)?;
        let Some(name) = item.get(known::NAME) else {
            return Err(EvalError::new(
                ErrorKind::MissingAttr,
                "attribute 'name' missing",
            ));
        };
        let name = vm.force_str_no_ctx(&name.clone())?;
        let Some(value) = item.get(known::VALUE) else {
            return Err(EvalError::new(
                ErrorKind::MissingAttr,
                "attribute 'value' missing",
            ));
        };
        // Defined where the item's `value` is, as in CppNix.
        entries.push(Attr {
            name: Symbol::intern(&name),
            pos: item.position(known::VALUE),
            value: value.clone(),
        });
    }
    // The first occurrence of a name wins.
    entries.reverse();
    Ok(Value::attrs(Attrs::from_unsorted_attrs(entries)))
}

fn intersect_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let x = vm.force_attrs(&a[0])?;
    let y = vm.force_attrs(&a[1])?;
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
    let name = Symbol::intern(&vm.force_str_no_ctx(&a[0])?);
    let l = vm.force_list(&a[1])?;
    let mut out = Vec::new();
    for item in l.iter() {
        let s = vm.force_attrs(item)?;
        if let Some(v) = s.get(name) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn map_attrs(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = a[0].clone();
    let s = vm.force_attrs(&a[1])?;
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
    let f = vm.force_function(&a[0])?;
    let l = vm.force_list(&a[1])?;
    let mut groups: rustc_hash::FxHashMap<Symbol, Vec<Value>> = Default::default();
    let mut order = Vec::new();
    for item in l.iter() {
        let s = vm.force_attrs(item)?;
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
