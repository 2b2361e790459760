//! Value printers: the `nix-instantiate --eval` printer (CppNix's
//! `printAmbiguous`: `<LAMBDA>`, `<CODE>`, `«repeated»`) and the short
//! form used inside error messages (CppNix's `ValuePrinter` with its
//! error-message limits).

use crate::error::EvalResult;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::printer::{format_float_g, identifier, literal_string};
use rustc_hash::FxHashSet;

/// Print as `nix-instantiate --eval` does. Thunks that are still
/// unevaluated print as `<CODE>`; call `Vm::force_deep` first for `--strict`.
pub fn print_ambiguous(v: &Value) -> String {
    let mut out = String::new();
    let mut seen = FxHashSet::default();
    ambiguous(&mut out, v, &mut seen, 0, None);
    out
}

/// `holder` is the thunk a value was reached through: CppNix tracks lists by
/// the address of the Value holding them, which for us is that thunk.
fn ambiguous(
    out: &mut String,
    v: &Value,
    seen: &mut FxHashSet<usize>,
    depth: usize,
    holder: Option<usize>,
) {
    match &v.view() {
        View::Int(n) => out.push_str(&n.to_string()),
        View::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // Bytes that are not UTF-8 stay bytes (as raw-source code points,
        // which the command turns back into the bytes it writes).
        View::String(s) => match std::str::from_utf8(s.as_bytes()) {
            Ok(t) => out.push_str(&literal_string(t)),
            Err(_) => {
                let (t, _) = nixvm_compiler::rawsrc::decode_source(s.as_bytes().to_vec());
                out.push_str(&literal_string(&t))
            }
        },
        View::Path(p) => out.push_str(p),
        View::Null => out.push_str("null"),
        View::Float(f) => out.push_str(&format_float_g(*f)),
        View::Attrs(a) => {
            if !a.is_empty() && !seen.insert(a.as_ptr() as usize) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("{ ");
            for (k, x) in a.sorted_by_name() {
                out.push_str(&identifier(k.as_str()));
                out.push_str(" = ");
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                    ambiguous(out, x, seen, depth + 1, None)
                });
                out.push_str("; ");
            }
            out.push('}');
        }
        View::List(l) => {
            // The printed root is a copy in CppNix: it can never be seen again.
            let key = holder.unwrap_or(l.as_ptr() as usize);
            if !l.is_empty() && depth > 0 && !seen.insert(key) {
                out.push_str("«repeated»");
                return;
            }
            out.push_str("[ ");
            for x in l.iter() {
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                    ambiguous(out, x, seen, depth + 1, None)
                });
                out.push(' ');
            }
            out.push(']');
        }
        View::Thunk(t) => match t.done() {
            Some(v) => ambiguous(out, &v, seen, depth, Some(t.as_ptr() as usize)),
            None if t.is_running() => out.push_str("«potential infinite recursion»"),
            None => out.push_str("<CODE>"),
        },
        View::Lambda(_) => out.push_str("<LAMBDA>"),
        View::PrimOp(_) => out.push_str("<PRIMOP>"),
        View::PrimOpApp(_) => out.push_str("<PRIMOP-APP>"),
    }
}

/// The compact form CppNix prints inside error messages.
/// CppNix's `errorPrintOptions.maxDepth`.
const MAX_DEPTH: usize = 10;

pub fn show_short(v: &Value) -> String {
    let mut out = String::new();
    let mut budget = Budget {
        attrs: 10,
        items: 10,
    };
    short(&mut out, v, 0, &mut budget);
    out
}

struct Budget {
    attrs: usize,
    items: usize,
}

fn short(out: &mut String, v: &Value, depth: usize, budget: &mut Budget) {
    match &v.view() {
        View::String(s) => {
            let t = s.to_str();
            if t.len() > 1024 {
                let cut: String = t.chars().take(1024).collect();
                out.push_str(&literal_string(&cut)[..literal_string(&cut).len() - 1]);
                out.push_str(&format!("\" «{} bytes elided»", t.len() - cut.len()));
            } else {
                out.push_str(&literal_string(&t));
            }
        }
        View::Attrs(a) => {
            if is_derivation_like(a) {
                out.push_str("«derivation»");
                return;
            }
            if depth >= MAX_DEPTH {
                out.push_str("{ ... }");
                return;
            }
            if a.is_empty() {
                out.push_str("{ }");
                return;
            }
            out.push('{');
            let sorted = a.sorted_by_name();
            let n = sorted.len();
            for (i, (k, x)) in sorted.into_iter().enumerate() {
                out.push(' ');
                if budget.attrs == 0 {
                    out.push_str(&format!(
                        "«{} attribute{} elided»",
                        n - i,
                        if n - i == 1 { "" } else { "s" }
                    ));
                    break;
                }
                out.push_str(&identifier(k.as_str()));
                out.push_str(" = ");
                short(out, x, depth + 1, budget);
                out.push(';');
                // Counted after the value, as CppNix's printer does, so
                // nested values see the budget before their parent's entry.
                budget.attrs = budget.attrs.saturating_sub(1);
            }
            out.push_str(" }");
        }
        View::List(l) => {
            if depth >= MAX_DEPTH {
                out.push_str("[ ... ]");
                return;
            }
            if l.is_empty() {
                out.push_str("[ ]");
                return;
            }
            out.push('[');
            let n = l.len();
            for (i, x) in l.iter().enumerate() {
                out.push(' ');
                if budget.items == 0 {
                    out.push_str(&format!(
                        "«{} item{} elided»",
                        n - i,
                        if n - i == 1 { "" } else { "s" }
                    ));
                    break;
                }
                short(out, x, depth + 1, budget);
                budget.items = budget.items.saturating_sub(1);
            }
            out.push_str(" ]");
        }
        View::Thunk(t) => match t.done() {
            Some(v) => short(out, &v, depth, budget),
            None if t.is_running() => out.push_str("«potential infinite recursion»"),
            None => out.push_str("«thunk»"),
        },
        View::Lambda(c) => {
            out.push_str("«lambda");
            if let Some(n) = c.proto.name() {
                out.push(' ');
                out.push_str(n.as_str());
            }
            out.push_str(&format!(" @ {}»", c.proto.source.describe(c.proto.span)));
        }
        View::PrimOp(p) => out.push_str(&format!("«primop {}»", p.name)),
        View::PrimOpApp(p) => out.push_str(&format!("«partially applied primop {}»", p.prim.name)),
        other => ambiguous(
            out,
            &other.to_value(),
            &mut FxHashSet::default(),
            depth,
            None,
        ),
    }
}

fn is_derivation_like(a: &Attrs) -> bool {
    match (a.get(nixvm_compiler::symbol::known::TYPE))
        .map(Value::view)
        .as_ref()
    {
        Some(View::String(s)) => s.as_bytes() == b"derivation",
        _ => false,
    }
}

/// Print as `nix eval` does (CppNix's `ValuePrinter` with `force` and
/// `derivationPaths`, no limits): values are forced as they are printed, a
/// derivation is `«derivation DRV»`, functions name their position, and a set
/// or list met again is `«repeated»` (all empty sets are one set in CppNix).
/// An error below the top is printed in place, `«error: MSG»` (a stack
/// overflow ends the printing, as CppNix's does).
pub fn print_forced(vm: &mut Vm, v: &Value) -> EvalResult<String> {
    let mut out = String::new();
    let mut seen = FxHashSet::default();
    forced(vm, &mut out, v, &mut seen, None)?;
    Ok(out)
}

/// A value inside a set or list: its error, if it is not fatal, in place.
fn nested(vm: &mut Vm, out: &mut String, v: &Value, seen: &mut FxHashSet<usize>) -> EvalResult<()> {
    let mark = out.len();
    match vm.grow_stack(64 * 1024, 1024 * 1024, |vm| forced(vm, out, v, seen, None)) {
        Err(e) if e.kind != crate::error::ErrorKind::StackOverflow => {
            out.truncate(mark);
            out.push_str(&format!("«error: {}»", e.msg));
            Ok(())
        }
        r => r,
    }
}

fn forced(
    vm: &mut Vm,
    out: &mut String,
    v: &Value,
    seen: &mut FxHashSet<usize>,
    holder: Option<usize>,
) -> EvalResult<()> {
    let holder = holder.or_else(|| v.as_thunk().map(|t| t.as_ptr() as usize));
    let v = vm.force(v.clone())?;
    match &v.view() {
        View::Attrs(a) => {
            // The shared empty set of CppNix has this key.
            let key = if a.is_empty() { 1 } else { a.as_ptr() as usize };
            if !seen.insert(key) {
                out.push_str("«repeated»");
                return Ok(());
            }
            if is_derivation(vm, a)? {
                out.push_str("«derivation");
                if let Some(p) = a.get(nixvm_compiler::symbol::known::DRV_PATH) {
                    let p = vm.force_string(p).map_err(|mut e| {
                        e.add_trace("while evaluating the drvPath of a derivation", None);
                        e
                    })?;
                    out.push(' ');
                    out.push_str(&p.to_str());
                }
                out.push('»');
                return Ok(());
            }
            out.push('{');
            for (k, x) in a.sorted_by_name() {
                out.push(' ');
                out.push_str(&identifier(k.as_str()));
                out.push_str(" = ");
                nested(vm, out, x, seen)?;
                out.push(';');
            }
            out.push_str(" }");
        }
        View::List(l) => {
            let key = holder.unwrap_or(l.as_ptr() as usize);
            if !l.is_empty() && !seen.insert(key) {
                out.push_str("«repeated»");
                return Ok(());
            }
            out.push('[');
            for x in l.iter() {
                out.push(' ');
                nested(vm, out, x, seen)?;
            }
            out.push_str(" ]");
        }
        View::Lambda(_) | View::PrimOp(_) | View::PrimOpApp(_) => out.push_str(&show_short(&v)),
        _ => ambiguous(out, &v, seen, 0, None),
    }
    Ok(())
}

/// CppNix's `isDerivation`: a set whose `type` is "derivation" (forced).
fn is_derivation(vm: &mut Vm, a: &Attrs) -> EvalResult<bool> {
    let Some(t) = a.get(nixvm_compiler::symbol::known::TYPE) else {
        return Ok(false);
    };
    let t = vm.force(t.clone())?;
    Ok(matches!(&t.view(), View::String(s) if s.as_bytes() == b"derivation"))
}
