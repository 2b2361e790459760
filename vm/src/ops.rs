//! Operators and coercions shared by the interpreter loop and builtins:
//! arithmetic with CppNix's overflow errors, comparison, equality,
//! `//`, `++`, string concatenation/interpolation and string coercion.

use crate::error::*;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use std::rc::Rc;

pub fn arith(vm: &mut Vm, op: char, a: Value, b: Value) -> EvalResult<Value> {
    let _ = vm;
    let num = |v: &Value| matches!(&v.view(), View::Int(_) | View::Float(_));
    // CppNix's `__div` forces the divisor as a float and checks it for zero
    // before looking at the dividend; every arithmetic primop then checks
    // the operands left to right, as floats if either one is a float.
    if op == '/' {
        if !num(&b) {
            return crate::force::type_mismatch("a float", &b);
        }
        if as_f64(&b) == 0.0 {
            return err_of(ErrorKind::DivisionByZero, "division by zero");
        }
    }
    let want = if matches!(a.view(), View::Float(_)) || matches!(b.view(), View::Float(_)) {
        "a float"
    } else {
        "an integer"
    };
    for v in [&a, &b] {
        if !num(v) {
            return crate::force::type_mismatch(want, v);
        }
    }
    match (&a.view(), &b.view()) {
        (View::Int(x), View::Int(y)) => {
            let (x, y) = (*x, *y);
            let r = match op {
                '-' => x.checked_sub(y),
                '*' => x.checked_mul(y),
                '/' => {
                    if y == 0 {
                        return err_of(ErrorKind::DivisionByZero, "division by zero");
                    }
                    x.checked_div(y)
                }
                _ => x.checked_add(y),
            };
            match r {
                Some(r) => Ok(Value::Int(r)),
                None => {
                    let verb = match op {
                        '-' => "subtracting",
                        '*' => "multiplying",
                        '/' => "dividing",
                        _ => "adding",
                    };
                    err_of(
                        ErrorKind::Overflow,
                        format!("integer overflow in {} {} {} {}", verb, x, op, y),
                    )
                }
            }
        }
        (View::Int(_) | View::Float(_), View::Int(_) | View::Float(_)) => {
            let x = as_f64(&a);
            let y = as_f64(&b);
            Ok(Value::Float(match op {
                '-' => x - y,
                '*' => x * y,
                '/' => {
                    if y == 0.0 {
                        return err_of(ErrorKind::DivisionByZero, "division by zero");
                    }
                    x / y
                }
                _ => x + y,
            }))
        }
        _ => unreachable!("operands checked above"),
    }
}

fn as_f64(v: &Value) -> f64 {
    match &v.view() {
        View::Int(n) => *n as f64,
        View::Float(f) => *f,
        _ => 0.0,
    }
}

pub fn less_than(vm: &mut Vm, a: &Value, b: &Value) -> EvalResult<bool> {
    Ok(compare(vm, a, b)? == std::cmp::Ordering::Less)
}

/// Nix's ordering: numbers, strings, paths, and lists lexicographically.
pub fn compare(vm: &mut Vm, a: &Value, b: &Value) -> EvalResult<std::cmp::Ordering> {
    use std::cmp::Ordering;
    let a = vm.force(a.clone())?;
    let b = vm.force(b.clone())?;
    match (&a.view(), &b.view()) {
        (View::Int(x), View::Int(y)) => Ok(x.cmp(y)),
        (View::Int(_) | View::Float(_), View::Int(_) | View::Float(_)) => {
            let (x, y) = (as_f64(&a), as_f64(&b));
            Ok(x.partial_cmp(&y).unwrap_or(Ordering::Equal))
        }
        (View::String(x), View::String(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (View::Path(x), View::Path(y)) => Ok(x.as_bytes().cmp(y.as_bytes())),
        (View::List(x), View::List(y)) => {
            for (p, q) in x.iter().zip(y.iter()) {
                if vm.equal(p, q)? {
                    continue;
                }
                return compare(vm, p, q);
            }
            Ok(x.len().cmp(&y.len()))
        }
        _ if a.show_type() == b.show_type() => type_err(format!(
            "cannot compare {} with {}; values of that type are incomparable (values are {} and {})",
            a.show_type(),
            b.show_type(),
            crate::print::show_short(&a),
            crate::print::show_short(&b)
        )),
        _ => type_err(format!(
            "cannot compare {} with {}; values are {} and {}",
            a.show_type(),
            b.show_type(),
            crate::print::show_short(&a),
            crate::print::show_short(&b)
        )),
    }
}

pub fn concat_lists(vm: &mut Vm, a: Value, b: Value) -> EvalResult<Value> {
    let (View::List(x), View::List(y)) = (&a.view(), &b.view()) else {
        let bad = if matches!(a.view(), View::List(_)) {
            &b
        } else {
            &a
        };
        let _ = vm;
        return crate::force::type_mismatch("a list", bad);
    };
    if x.is_empty() {
        return Ok(b);
    }
    if y.is_empty() {
        return Ok(a);
    }
    let mut v = Vec::with_capacity(x.len() + y.len());
    v.extend(x.iter().cloned());
    v.extend(y.iter().cloned());
    Ok(Value::list(v))
}

pub fn update(vm: &mut Vm, a: Value, b: Value) -> EvalResult<Value> {
    let _ = vm;
    match (&a.view(), &b.view()) {
        (View::Attrs(x), View::Attrs(y)) => {
            if y.is_empty() {
                return Ok(a);
            }
            if x.is_empty() {
                return Ok(b);
            }
            Ok(Value::Attrs(Attrs::update(x, y)))
        }
        // CppNix checks the right operand first.
        _ => {
            let bad = if matches!(b.view(), View::Attrs(_)) {
                &a
            } else {
                &b
            };
            crate::force::type_mismatch("a set", bad)
        }
    }
}

fn is_derivation(vm: &mut Vm, a: &Attrs) -> EvalResult<bool> {
    match a.get(known::TYPE) {
        Some(t) => {
            let t = vm.force(t.clone())?;
            Ok(matches!(&t.view(), View::String(s) if s.as_bytes() == b"derivation"))
        }
        None => Ok(false),
    }
}

/// `a == b`. Functions are never equal, but CppNix short-cuts a nested value
/// compared with itself (the same element pointer), so `[ f ] == [ f ]` holds
/// while `f == f` does not.
pub fn equal(vm: &mut Vm, a: &Value, b: &Value) -> EvalResult<bool> {
    equal_at(vm, a, b, true)
}

fn equal_nested(vm: &mut Vm, a: &Value, b: &Value) -> EvalResult<bool> {
    vm.grow_stack(256 * 1024, 4 * 1024 * 1024, |vm| equal_at(vm, a, b, false))
}

/// CppNix's pointer shortcut: a nested value compared with itself is equal
/// without being forced.
fn same_nested(a: &Value, b: &Value) -> bool {
    match (&a.view(), &b.view()) {
        (View::Thunk(x), View::Thunk(y)) => Thunk::ptr_eq(x, y),
        (View::Attrs(x), View::Attrs(y)) => Attrs::ptr_eq(x, y),
        (View::List(x), View::List(y)) => List::ptr_eq(x, y),
        _ => false,
    }
}

fn equal_at(vm: &mut Vm, a: &Value, b: &Value, top: bool) -> EvalResult<bool> {
    if !top && same_nested(a, b) {
        return Ok(true);
    }
    let a = vm.force(a.clone())?;
    let b = vm.force(b.clone())?;
    Ok(match (&a.view(), &b.view()) {
        (View::Null, View::Null) => true,
        (View::Bool(x), View::Bool(y)) => x == y,
        (View::Int(x), View::Int(y)) => x == y,
        (View::Int(_) | View::Float(_), View::Int(_) | View::Float(_)) => as_f64(&a) == as_f64(&b),
        (View::String(x), View::String(y)) => x.as_bytes() == y.as_bytes(),
        (View::Path(x), View::Path(y)) => x.as_str() == y.as_str(),
        (View::List(x), View::List(y)) => {
            if List::ptr_eq(x, y) {
                return Ok(true);
            }
            if x.len() != y.len() {
                return Ok(false);
            }
            for (p, q) in x.iter().zip(y.iter()) {
                if !equal_nested(vm, p, q)? {
                    return Ok(false);
                }
            }
            true
        }
        (View::Attrs(x), View::Attrs(y)) => {
            // Derivations compare by their output path, even one set with itself: forcing
            // outPath is where nixpkgs' meta checks (assert in extendDerivation) fire.
            if is_derivation(vm, x)? && is_derivation(vm, y)? {
                if let (Some(p), Some(q)) = (x.get(known::OUT_PATH), y.get(known::OUT_PATH)) {
                    let (p, q) = (p.clone(), q.clone());
                    return equal(vm, &p, &q);
                }
            }
            if Attrs::ptr_eq(x, y) {
                return Ok(true);
            }
            if x.len() != y.len() {
                return Ok(false);
            }
            for ((k1, v1), (k2, v2)) in x.iter().zip(y.iter()) {
                if k1 != k2 {
                    return Ok(false);
                }
                let (v1, v2) = (v1.clone(), v2.clone());
                if !equal_nested(vm, &v1, &v2)? {
                    return Ok(false);
                }
            }
            true
        }
        (View::Lambda(x), View::Lambda(y)) => !top && Rc::ptr_eq(x, y),
        (View::PrimOp(x), View::PrimOp(y)) => !top && Rc::ptr_eq(x, y),
        (View::PrimOpApp(x), View::PrimOpApp(y)) => !top && Rc::ptr_eq(x, y),
        _ => false,
    })
}

/// Why `a == b` is false, as an error: CppNix re-runs the comparison of a
/// failed `assert a == b` to say which part differs (its `assertEqValues`).
/// Returns `Ok` only when the values turn out equal after all; the caller
/// then reports the plain assertion failure. `eq` is where the `==` stands.
pub fn explain_unequal(vm: &mut Vm, a: &Value, b: &Value, eq: Option<Pos>) -> EvalResult<()> {
    explain_at(vm, a, b, eq, true)
}

fn explain_at(vm: &mut Vm, a: &Value, b: &Value, eq: Option<Pos>, top: bool) -> EvalResult<()> {
    if !top && same_nested(a, b) {
        return Ok(());
    }
    let a = vm.force(a.clone())?;
    let b = vm.force(b.clone())?;
    // CppNix raises these without a position: the frames carry them.
    let fail = |msg: String| Err(EvalError::new(ErrorKind::Assert, msg).with_pos(None));
    let show = crate::print::show_short;
    let number = |v: &Value| matches!(&v.view(), View::Int(_) | View::Float(_));
    if number(&a) && number(&b) {
        if equal_at(vm, &a, &b, top)? {
            return Ok(());
        }
        return fail(format!(
            "{} with value '{}' is not equal to {} with value '{}'",
            a.show_type(),
            show(&a),
            b.show_type(),
            show(&b)
        ));
    }
    let tag = |v: &Value| match &v.view() {
        View::Lambda(_) | View::PrimOp(_) | View::PrimOpApp(_) => None,
        other => Some(other.type_of()),
    };
    if tag(&a) != tag(&b) {
        return fail(format!(
            "{} of value '{}' is not equal to {} of value '{}'",
            a.show_type(),
            show(&a),
            b.show_type(),
            show(&b)
        ));
    }
    match (&a.view(), &b.view()) {
        (View::Bool(x), View::Bool(y)) if x != y => fail(format!(
            "boolean '{}' is not equal to boolean '{}'",
            show(&a),
            show(&b)
        )),
        (View::String(x), View::String(y)) if x.as_bytes() != y.as_bytes() => fail(format!(
            "string '{}' is not equal to string '{}'",
            show(&a),
            show(&b)
        )),
        (View::Path(x), View::Path(y)) if x.as_str() != y.as_str() => fail(format!(
            "path '{}' is not equal to path '{}'",
            show(&a),
            show(&b)
        )),
        (View::List(x), View::List(y)) => {
            if List::ptr_eq(x, y) {
                return Ok(());
            }
            if x.len() != y.len() {
                return fail(format!(
                    "list of size '{}' is not equal to list of size '{}', left hand side is '{}', right hand side is '{}'",
                    x.len(),
                    y.len(),
                    show(&a),
                    show(&b)
                ));
            }
            for (n, (p, q)) in x.iter().zip(y.iter()).enumerate() {
                explain_nested(vm, p, q, eq).map_err(|mut e| {
                    e.trace.push(TraceEntry {
                        always: false,
                        msg: format!("while comparing list element {}", n),
                        pos: eq,
                    });
                    e
                })?;
            }
            Ok(())
        }
        (View::Attrs(x), View::Attrs(y)) => {
            if is_derivation(vm, x)? && is_derivation(vm, y)? {
                if let (Some(p), Some(q)) = (x.get(known::OUT_PATH), y.get(known::OUT_PATH)) {
                    let (p, q) = (p.clone(), q.clone());
                    return explain_at(vm, &p, &q, eq, true).map_err(|mut e| {
                        e.trace.push(TraceEntry {
                            always: false,
                            msg: "while comparing a derivation by its 'outPath' attribute".into(),
                            pos: eq,
                        });
                        e
                    });
                }
            }
            if Attrs::ptr_eq(x, y) {
                return Ok(());
            }
            if x.len() != y.len() {
                return fail(format!(
                    "attribute names of attribute set '{}' differs from attribute set '{}'",
                    show(&a),
                    show(&b)
                ));
            }
            for ((k1, v1), (k2, v2)) in x.iter().zip(y.iter()) {
                if k1 != k2 {
                    // Sorted names differ here, so one side lacks one of them.
                    let msg = if y.get(k1).is_none() {
                        format!(
                            "attribute name '{}' is contained in '{}', but not in '{}'",
                            k1,
                            show(&a),
                            show(&b)
                        )
                    } else {
                        format!(
                            "attribute name '{}' is missing in '{}', but is contained in '{}'",
                            k2,
                            show(&a),
                            show(&b)
                        )
                    };
                    return fail(msg);
                }
                let (v1, v2) = (v1.clone(), v2.clone());
                explain_nested(vm, &v1, &v2, eq).map_err(|mut e| {
                    let at = |set: &Attrs| vm.pos(set.position(k1));
                    if let Some(pos) = at(y) {
                        e.trace.push(TraceEntry {
                            always: false,
                            msg: "where right hand side is".into(),
                            pos: Some(pos),
                        });
                    }
                    if let Some(pos) = at(x) {
                        e.trace.push(TraceEntry {
                            always: false,
                            msg: "where left hand side is".into(),
                            pos: Some(pos),
                        });
                    }
                    e.trace.push(TraceEntry {
                        always: false,
                        msg: format!("while comparing attribute '{}'", k1),
                        pos: eq,
                    });
                    e
                })?;
            }
            Ok(())
        }
        (View::Lambda(_) | View::PrimOp(_) | View::PrimOpApp(_), _) => {
            if equal_at(vm, &a, &b, top)? {
                return Ok(());
            }
            fail("distinct functions and immediate comparisons of identical functions compare as unequal".into())
        }
        _ => Ok(()),
    }
}

fn explain_nested(vm: &mut Vm, a: &Value, b: &Value, eq: Option<Pos>) -> EvalResult<()> {
    vm.grow_stack(256 * 1024, 4 * 1024 * 1024, |vm| {
        explain_at(vm, a, b, eq, false)
    })
}

/// CppNix's `std::to_string(double)`: fixed notation, six decimals.
pub fn float_to_string(f: f64) -> String {
    format!("{:.6}", f)
}

/// Coerce to a string as CppNix's `coerceToString` does. `coerce_more`
/// also accepts numbers, Booleans, null and lists (what `toString` does);
/// `copy_to_store` turns paths into store paths (interpolation).
pub fn coerce_to_string(
    vm: &mut Vm,
    v: &Value,
    ctx: &mut Context,
    coerce_more: bool,
    copy_to_store: bool,
) -> EvalResult<Vec<u8>> {
    let v = vm.force(v.clone())?;
    match &v.view() {
        View::String(s) => {
            if let Some(c) = s.context() {
                ctx.extend(c.iter().cloned());
            }
            Ok(s.as_bytes().to_vec())
        }
        View::Path(p) => {
            if copy_to_store {
                let sp = crate::storeglue::copy_path_to_store(vm, p)?;
                ctx.insert(Rc::from(sp.as_str()));
                Ok(sp.into_bytes())
            } else {
                Ok(p.as_bytes().to_vec())
            }
        }
        View::Attrs(a) => {
            if let Some(f) = a.get(known::TO_STRING) {
                let f = f.clone();
                let r = vm.call(f, v.clone())?;
                return coerce_to_string(vm, &r, ctx, coerce_more, copy_to_store);
            }
            if let Some(o) = a.get(known::OUT_PATH) {
                let o = o.clone();
                return coerce_to_string(vm, &o, ctx, coerce_more, copy_to_store);
            }
            type_err(format!(
                "cannot coerce {} to a string: {}",
                v.show_type(),
                crate::print::show_short(&v)
            ))
        }
        View::Bool(b) if coerce_more => Ok(if *b { b"1".to_vec() } else { Vec::new() }),
        View::Null if coerce_more => Ok(Vec::new()),
        View::Int(n) if coerce_more => Ok(n.to_string().into_bytes()),
        View::Float(f) if coerce_more => Ok(float_to_string(*f).into_bytes()),
        View::List(l) if coerce_more => {
            let mut out = Vec::new();
            let n = l.len();
            for (i, x) in l.iter().enumerate() {
                let s = coerce_to_string(vm, x, ctx, coerce_more, copy_to_store)?;
                out.extend_from_slice(&s);
                if i + 1 < n {
                    let x = vm.force(x.clone())?;
                    if !matches!(&x.view(), View::List(y) if y.is_empty()) {
                        out.push(b' ');
                    }
                }
            }
            Ok(out)
        }
        _ => type_err(format!(
            "cannot coerce {} to a string: {}",
            v.show_type(),
            crate::print::show_short(&v)
        )),
    }
}

/// A type error of `+` (`cannot add a string to an integer`) as a type error
/// with its data: what the sum so far needs, what was found.
#[cold]
fn type_at(mut e: Box<EvalError>, expected: &str, found: &View) -> Box<EvalError> {
    e.kind = ErrorKind::Type;
    e.with_detail(Detail::Type {
        expected: expected.to_string(),
        found: found.show_type().into_owned(),
    })
}

/// `+` on non-numbers and string/path interpolation (ExprConcatStrings).
/// `fi`: the frame whose op this is, for CppNix's positions of the
/// operands' errors (each at the operand; a coercion's as "while evaluating
/// a path segment" there).
pub fn concat_strings(
    vm: &mut Vm,
    parts: Vec<Value>,
    force_string: bool,
    fi: usize,
) -> EvalResult<Value> {
    let mut first = !force_string;
    let mut first_type = "string";
    let mut n: i64 = 0;
    let mut nf: f64 = 0.0;
    // The string pieces, kept as the strings themselves where possible and
    // joined once at the end into an exactly sized buffer.
    enum Piece {
        Str(NixStr),
        Bytes(Vec<u8>),
    }
    let at = |vm: &Vm, i: usize, msg: String| -> Box<EvalError> {
        EvalError::new(ErrorKind::Other, msg).with_pos(vm.part_pos(fi, i))
    };
    let mut pieces: Vec<Piece> = Vec::with_capacity(parts.len());
    let mut ctx = Context::new();
    for (i, p) in parts.iter().enumerate() {
        let p = vm.force(p.clone())?;
        if first {
            first_type = match &p.view() {
                View::Int(_) => "int",
                View::Float(_) => "float",
                View::Path(_) => "path",
                _ => "string",
            };
        }
        match first_type {
            "int" => match &p.view() {
                View::Int(x) => match n.checked_add(*x) {
                    Some(r) => n = r,
                    None => {
                        let mut e = at(vm, i, format!("integer overflow in adding {} + {}", n, x));
                        e.kind = ErrorKind::Overflow;
                        return Err(e);
                    }
                },
                View::Float(x) => {
                    first_type = "float";
                    nf = n as f64 + x;
                }
                other => {
                    let msg = format!("cannot add {} to an integer", other.show_type());
                    return Err(type_at(at(vm, i, msg), "an integer", other));
                }
            },
            "float" => match &p.view() {
                View::Int(x) => nf += *x as f64,
                View::Float(x) => nf += x,
                other => {
                    let msg = format!("cannot add {} to a float", other.show_type());
                    return Err(type_at(at(vm, i, msg), "a float", other));
                }
            },
            _ => match &p.view() {
                View::String(s) => {
                    if let Some(c) = s.context() {
                        ctx.extend(c.iter().cloned());
                    }
                    pieces.push(Piece::Str(s.clone()));
                }
                _ => {
                    let pos = vm.part_pos(fi, i);
                    let copy = first_type == "string";
                    let s = vm
                        .coerce_at(
                            &p,
                            &mut ctx,
                            false,
                            copy,
                            pos,
                            "while evaluating a path segment",
                        )
                        .map_err(|mut e| {
                            e.settled = true;
                            e
                        })?;
                    pieces.push(Piece::Bytes(s));
                }
            },
        }
        first = false;
    }
    let bytes = |p: &Piece| -> usize {
        match p {
            Piece::Str(s) => s.as_bytes().len(),
            Piece::Bytes(b) => b.len(),
        }
    };
    let fill = |buf: &mut [u8]| {
        let mut at = 0;
        for p in &pieces {
            let b = match p {
                Piece::Str(s) => s.as_bytes(),
                Piece::Bytes(b) => b,
            };
            buf[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
    };
    let len = pieces.iter().map(bytes).sum();
    Ok(match first_type {
        "int" => Value::Int(n),
        "float" => Value::Float(nf),
        "path" => {
            if !ctx.is_empty() {
                return err("a string that refers to a store path cannot be appended to a path");
            }
            let mut buf = vec![0; len];
            fill(&mut buf);
            let s = String::from_utf8_lossy(&buf).into_owned();
            Value::path(&nixvm_compiler::parser::canon_path(&s))
        }
        // Written once, into the string itself.
        _ => Value::String(NixStr::filled(len, ctx_box(ctx), fill)),
    })
}
