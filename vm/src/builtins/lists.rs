//! List builtins, with CppNix's laziness: `map`, `genList` and friends
//! build thunks; `foldl'` forces the accumulator at every step.

use super::Registry;
use crate::error::*;
use crate::value::View;
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
        let l = vm.force_list_ctx(
            &a[0],
            "while evaluating the first argument passed to builtins.length",
        )?;
        Ok(Value::Int(l.len() as i64))
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
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.map",
    )?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.map")?;
    Ok(Value::List(List::from_fn(l.len(), |i| {
        Value::Thunk(Thunk::app(&vm.heap, f.clone(), l[i].clone()))
    })))
}

fn filter(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.filter",
    )?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.filter")?;
    let mut out = Vec::new();
    let mut all = true;
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        let keep = vm.force_bool(&r).ctx(
            "while evaluating the return value of the filtering function passed to builtins.filter",
        )?;
        if keep {
            out.push(x.clone());
        } else {
            all = false;
        }
    }
    if all {
        return Ok(Value::List(l));
    }
    Ok(Value::list(out))
}

fn foldl(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // CppNix checks the function before the list.
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.foldlStrict")?;
    let l = vm.force_list_ctx(
        &a[2],
        "while evaluating the third argument passed to builtins.foldlStrict",
    )?;
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
    let l = vm.force_list_ctx(
        &a[0],
        "while evaluating the first argument passed to 'builtins.head'",
    )?;
    match l.first() {
        Some(v) => vm.force(v.clone()),
        None => err("'builtins.head' called on an empty list"),
    }
}

fn tail(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list_ctx(
        &a[0],
        "while evaluating the first argument passed to 'builtins.tail'",
    )?;
    if l.is_empty() {
        return err("'builtins.tail' called on an empty list");
    }
    Ok(Value::list(l[1..].to_vec()))
}

fn elem_at(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // CppNix checks the index before the list.
    let n = vm
        .force_int(&a[1])
        .ctx("while evaluating the second argument passed to 'builtins.elemAt'")?;
    let l = vm.force_list_ctx(
        &a[0],
        "while evaluating the first argument passed to 'builtins.elemAt'",
    )?;
    if n < 0 || n as usize >= l.len() {
        let e = EvalError::new(
            ErrorKind::IndexOutOfRange,
            format!(
                "'builtins.elemAt' called with index {} on a list of size {}",
                n,
                l.len()
            ),
        );
        return Err(e.with_detail(Detail::IndexOutOfRange {
            index: n,
            len: l.len(),
        }));
    }
    vm.force(l[n as usize].clone())
}

fn elem(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.elem",
    )?;
    for x in l.iter() {
        if vm.equal(&a[0], x)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn concat_lists(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let l = vm.force_list_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.concatLists",
    )?;
    let mut out = Vec::new();
    for x in l.iter() {
        let x = vm.force_list_ctx(
            x,
            "while evaluating a value of the list passed to builtins.concatLists",
        )?;
        out.extend(x.iter().cloned());
    }
    Ok(Value::list(out))
}

fn concat_map(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.concatMap")?;
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.concatMap",
    )?;
    let mut out = Vec::new();
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        let View::List(items) = &r.view() else {
            // The frame points at the function (CppNix's `determinePos`).
            let pos = crate::force::determine_pos(&r).or_else(|| crate::force::determine_pos(&f));
            return super::type_mismatch("a list", &r).ctx_at(pos, || {
                "while evaluating the return value of the function passed to builtins.concatMap"
                    .into()
            });
        };
        out.extend(items.iter().cloned());
    }
    Ok(Value::list(out))
}

fn gen_list(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let n = vm
        .force_int(&a[1])
        .ctx("while evaluating the second argument passed to builtins.genList")?;
    if n < 0 {
        return err(format!("cannot create list of size {}", n));
    }
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.genList")?;
    let l = List::try_from_fn(n as usize, |i| {
        Value::Thunk(Thunk::app(&vm.heap, f.clone(), Value::Int(i as i64)))
    });
    l.map(Value::List)
        .ok_or_else(|| EvalError::new(ErrorKind::Other, "out of memory"))
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
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.sort",
    )?;
    if l.is_empty() {
        return Ok(Value::List(l));
    }
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.sort")?;
    let mut items = Vec::with_capacity(l.len());
    for x in l.iter() {
        items.push(vm.force(x.clone())?);
    }
    // CppNix compares directly when the comparator is `lessThan` itself.
    let less_than = matches!(&f.view(), View::PrimOp(p) if &*p.name == "lessThan");
    let sorted = merge_sort(vm, items, &mut |vm, x, y| {
        if less_than {
            return vm.less_than_ctx(
                x,
                y,
                "while evaluating the ordering function passed to builtins.sort",
            );
        }
        let r = vm.call2(f.clone(), x.clone(), y.clone())?;
        vm.force_bool(&r).ctx(
            "while evaluating the return value of the sorting function passed to builtins.sort",
        )
    })?;
    Ok(Value::list(sorted))
}

fn partition(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.partition")?;
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.partition",
    )?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for x in l.iter() {
        let x = &vm.force(x.clone())?;
        let r = vm.call(f.clone(), x.clone())?;
        let yes = vm.force_bool(&r).ctx(
            "while evaluating the return value of the partition function passed to builtins.partition",
        )?;
        if yes {
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
    let f = vm
        .force_function(&a[0])
        .ctx("while evaluating the first argument passed to builtins.groupBy")?;
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.groupBy",
    )?;
    let mut groups: rustc_hash::FxHashMap<Symbol, Vec<Value>> = Default::default();
    for x in l.iter() {
        let r = vm.call(f.clone(), x.clone())?;
        let k = vm.force_str_no_ctx(&r).ctx(
            "while evaluating the return value of the grouping function passed to builtins.groupBy",
        )?;
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
    const IN_ARG: &str = "in the attrset passed as argument to builtins.genericClosure";
    let args = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.genericClosure",
    )?;
    let start = vm.get_attr_ctx(&args, known::START_SET, IN_ARG)?;
    let start = vm.force_list_ctx(
        &start,
        "while evaluating the 'startSet' attribute passed as argument to builtins.genericClosure",
    )?;
    if start.is_empty() {
        return Ok(Value::List(start));
    }
    let op = vm.get_attr_ctx(&args, known::OPERATOR, IN_ARG)?;
    let op = vm.force_function(&op).ctx(
        "while evaluating the 'operator' attribute passed as argument to builtins.genericClosure",
    )?;
    let show = |v: &Value| crate::print::show_short(v);
    let mut work: std::collections::VecDeque<Value> = start.iter().cloned().collect();
    // The keys seen, kept sorted by Nix ordering, each with its element.
    let mut seen: Vec<(Value, Value)> = Vec::new();
    let mut out = Vec::new();
    while let Some(e) = work.pop_front() {
        let e = vm.force(e)?;
        let in_elem = || format!("in genericClosure element {}", show(&e));
        let View::Attrs(s) = &e.view() else {
            return super::type_mismatch("a set", &e).ctx_with(in_elem);
        };
        let Some(key) = s.get(known::KEY) else {
            return Err(EvalError::new(
                ErrorKind::MissingAttr,
                "attribute 'key' missing",
            ))
            .ctx_with(in_elem);
        };
        let key = vm.force(key.clone())?;
        let (mut lo, mut hi) = (0, seen.len());
        let mut found = false;
        while lo < hi {
            let mid = (lo + hi) / 2;
            // The new key goes on the left, as in CppNix's `std::set`
            // insertion, so a type error names the operands in its order.
            let ord = match vm.compare_ctx(&key, &seen[mid].0, "") {
                Ok(o) => o,
                Err(mut err) => {
                    // Name the element whose key could not be compared, as
                    // CppNix finds it: the first in order that fails.
                    let mut other = None;
                    for (k, elem) in seen.iter() {
                        if vm.compare_ctx(&key, k, "").is_err() {
                            other = Some(elem.clone());
                            break;
                        }
                    }
                    match other {
                        Some(o) => {
                            err.add_trace(format!("with element {}", show(&o)), None);
                            err.add_trace(format!("while comparing element {}", show(&e)), None);
                        }
                        None => err
                            .add_trace(format!("while checking key of element {}", show(&e)), None),
                    }
                    return Err(err);
                }
            };
            match ord {
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
        seen.insert(lo, (key, e.clone()));
        out.push(e.clone());
        let next = (|| {
            let next = vm.call(op.clone(), e.clone())?;
            let next = vm.force_list_ctx(
                &next,
                "while evaluating the return value of the `operator` passed to builtins.genericClosure",
            )?;
            for x in next.iter() {
                work.push_back(vm.force(x.clone())?);
            }
            Ok(())
        })();
        next.ctx_with(|| {
            format!(
                "while calling operator on genericClosure element {}",
                show(&e)
            )
        })?;
    }
    Ok(Value::list(out))
}
