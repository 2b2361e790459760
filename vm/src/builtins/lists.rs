//! List builtins, with CppNix's laziness: `map`, `genList` and friends
//! build thunks; `foldl'` forces the accumulator at every step.

use super::Registry;
use crate::error::*;
use crate::value::Owned;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use std::cmp::Ordering;

pub fn register(r: &mut Registry) {
    r.prim("map", 2, map);
    r.prim("filter", 2, filter);
    r.prim("foldl'", 3, foldl);
    r.prim("length", 1, |vm, a| {
        Ok(Value::Int(vm.force_list(&a[0])?.len() as i64))
    });
    r.prim("head", 1, head);
    r.prim("tail", 1, tail);
    r.prim("elemAt", 2, elem_at);
    r.prim("elem", 2, elem);
    r.prim("concatLists", 1, concat_lists);
    r.prim("concatMap", 2, concat_map);
    r.prim("genList", 2, gen_list);
    r.prim("all", 2, |vm, a| any_all(vm, a, false));
    r.prim("any", 2, |vm, a| any_all(vm, a, true));
    r.prim("sort", 2, sort);
    r.prim("partition", 2, partition);
    r.prim("groupBy", 2, group_by);
    r.prim("genericClosure", 1, generic_closure);
}

fn map(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // CppNix forces the list, then (only if it is non-empty) the function.
    let l = vm.force_list(&a[1])?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = vm.force_function(&a[0])?;
    Ok(Value::list(
        l.iter()
            .map(|x| Value::Thunk(Thunk::app(&vm.heap, f.clone(), x.clone())))
            .collect(),
    ))
}

fn filter(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list(&a[1])?;
    let f = vm.force_function(&a[0])?;
    let mut out = Vec::new();
    let mut all = true;
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        match r.unpack() {
            Owned::Bool(true) => out.push(x.clone()),
            Owned::Bool(false) => all = false,
            other => return super::type_mismatch("a Boolean", &Value::from(other)),
        }
    }
    if all {
        return Ok(Value::List(l));
    }
    Ok(Value::list(out))
}

fn foldl(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // CppNix checks the function before the list.
    let f = vm.force_function(&a[0])?;
    let l = vm.force_list(&a[2])?;
    if l.is_empty() {
        return vm.force(a[1].clone());
    }
    let mut acc = a[1].clone();
    for x in l.iter() {
        acc = vm.call2(f.clone(), acc, x.clone())?;
    }
    Ok(acc)
}

fn head(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list(&a[0])?;
    match l.first() {
        Some(v) => vm.force(v.clone()),
        None => err("'builtins.head' called on an empty list"),
    }
}

fn tail(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list(&a[0])?;
    if l.is_empty() {
        return err("'builtins.tail' called on an empty list");
    }
    Ok(Value::list(l[1..].to_vec()))
}

fn elem_at(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list(&a[0])?;
    let n = vm.force_int(&a[1])?;
    if n < 0 || n as usize >= l.len() {
        return err(format!(
            "'builtins.elemAt' called with index {} on a list of size {}",
            n,
            l.len()
        ));
    }
    vm.force(l[n as usize].clone())
}

fn elem(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list(&a[1])?;
    for x in l.iter() {
        if vm.equal(&a[0], x)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn concat_lists(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list(&a[0])?;
    let mut out = Vec::new();
    for x in l.iter() {
        out.extend(vm.force_list(x)?.iter().cloned());
    }
    Ok(Value::list(out))
}

fn concat_map(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = vm.force_function(&a[0])?;
    let l = vm.force_list(&a[1])?;
    let mut out = Vec::new();
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        out.extend(vm.force_list(&r)?.iter().cloned());
    }
    Ok(Value::list(out))
}

fn gen_list(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let n = vm.force_int(&a[1])?;
    if n < 0 {
        return err(format!("cannot create list of size {}", n));
    }
    let f = vm.force_function(&a[0])?;
    Ok(Value::list(
        (0..n)
            .map(|i| Value::Thunk(Thunk::app(&vm.heap, f.clone(), Value::Int(i))))
            .collect(),
    ))
}

fn any_all(vm: &mut Vm, a: &mut [Value], any: bool) -> EvalResult<Value> {
    let name = if any { "any" } else { "all" };
    let f = vm
        .force_function(&a[0])
        .ctx_with(|| format!("while evaluating the first argument passed to builtins.{name}"))?;
    let l = vm
        .force_list(&a[1])
        .ctx_with(|| format!("while evaluating the second argument passed to builtins.{name}"))?;
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        let b = vm.force_bool(&r).ctx_with(|| {
            format!("while evaluating the return value of the function passed to builtins.{name}")
        })?;
        if b == any {
            return Ok(Value::Bool(any));
        }
    }
    Ok(Value::Bool(!any))
}

/// Stable merge sort calling a fallible comparator (`less(a, b)`).
pub fn merge_sort(
    vm: &mut Vm,
    items: Vec<Value>,
    less: &mut dyn FnMut(&mut Vm, &Value, &Value) -> EvalResult<bool>,
) -> EvalResult<Vec<Value>> {
    let n = items.len();
    if n <= 1 {
        return Ok(items);
    }
    // Insertion sort for short runs, then bottom-up merges.
    let mut v = items;
    const RUN: usize = 16;
    let mut start = 0;
    while start < n {
        let end = (start + RUN).min(n);
        for i in start + 1..end {
            let mut j = i;
            while j > start && less(vm, &v[j], &v[j - 1])? {
                v.swap(j, j - 1);
                j -= 1;
            }
        }
        start = end;
    }
    let mut width = RUN;
    let mut buf: Vec<Value> = Vec::with_capacity(n);
    while width < n {
        buf.clear();
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j) = (lo, mid);
            while i < mid && j < hi {
                if less(vm, &v[j], &v[i])? {
                    buf.push(v[j].clone());
                    j += 1;
                } else {
                    buf.push(v[i].clone());
                    i += 1;
                }
            }
            buf.extend_from_slice(&v[i..mid]);
            buf.extend_from_slice(&v[j..hi]);
            lo = hi;
        }
        std::mem::swap(&mut v, &mut buf);
        width *= 2;
    }
    Ok(v)
}

fn sort(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // CppNix forces the list first and only needs the comparator when the
    // list is non-empty.
    let l = vm.force_list(&a[1])?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = vm.force_function(&a[0])?;
    let items: Vec<Value> = l.iter().cloned().collect();
    let sorted = merge_sort(vm, items, &mut |vm, x, y| {
        let r = vm.call2(f.clone(), x.clone(), y.clone())?;
        vm.force_bool(&r)
    })?;
    Ok(Value::list(sorted))
}

fn partition(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = vm.force_function(&a[0])?;
    let l = vm.force_list(&a[1])?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        if vm.force_bool(&r)? {
            right.push(x.clone());
        } else {
            wrong.push(x.clone());
        }
    }
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        (known::RIGHT, Value::list(right)),
        (known::WRONG, Value::list(wrong)),
    ])))
}

fn group_by(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = vm.force_function(&a[0])?;
    let l = vm.force_list(&a[1])?;
    let mut groups: rustc_hash::FxHashMap<Symbol, Vec<Value>> = Default::default();
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        let k = vm.force_str_no_ctx(&r)?;
        groups
            .entry(Symbol::intern(&k))
            .or_default()
            .push(x.clone());
    }
    Ok(Value::attrs(Attrs::from_unsorted(
        groups
            .into_iter()
            .map(|(k, v)| (k, Value::list(v)))
            .collect(),
    )))
}

fn generic_closure(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let args = vm.force_attrs(&a[0])?;
    let Some(start) = args.get(known::START_SET) else {
        return Err(EvalError::new(
            ErrorKind::MissingAttr,
            "attribute 'startSet' missing",
        ));
    };
    let start = vm.force_list(&start.clone())?;
    let Some(op) = args.get(known::OPERATOR) else {
        return Err(EvalError::new(
            ErrorKind::MissingAttr,
            "attribute 'operator' missing",
        ));
    };
    let op = vm.force_function(&op.clone())?;
    let mut work: std::collections::VecDeque<Value> = start.iter().cloned().collect();
    let mut seen: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    while let Some(e) = work.pop_front() {
        let s = vm.force_attrs(&e)?;
        let Some(key) = s.get(known::KEY) else {
            return Err(EvalError::new(
                ErrorKind::MissingAttr,
                "attribute 'key' missing",
            ));
        };
        let key = vm.force(key.clone())?;
        // Binary search over keys kept sorted by Nix ordering.
        let (mut lo, mut hi) = (0, seen.len());
        let mut found = false;
        while lo < hi {
            let mid = (lo + hi) / 2;
            // The new key goes on the left, as in CppNix's `std::set`
            // insertion, so a type error names the operands in its order.
            match crate::ops::compare(vm, &key, &seen[mid])? {
                Ordering::Greater => lo = mid + 1,
                Ordering::Less => hi = mid,
                Ordering::Equal => {
                    found = true;
                    break;
                }
            }
        }
        if found {
            continue;
        }
        seen.insert(lo, key);
        out.push(e.clone());
        let next = vm.call(op.clone(), e)?;
        let next = vm.force_list(&next)?;
        work.extend(next.iter().cloned());
    }
    Ok(Value::list(out))
}
