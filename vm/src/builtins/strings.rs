//! String builtins and version strings.

use super::Registry;
use crate::error::*;
use crate::value::Owned;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use std::cmp::Ordering;

pub fn register(r: &mut Registry) {
    r.prim("stringLength", 1, string_length);
    r.prim("substring", 3, substring);
    r.prim("concatStringsSep", 2, concat_strings_sep);
    r.prim("replaceStrings", 3, replace_strings);
    r.prim("splitVersion", 1, split_version);
    r.prim("compareVersions", 2, compare_versions);
    r.prim("parseDrvName", 1, parse_drv_name);
    r.prim("unsafeDiscardStringContext", 1, |vm, a| {
        let mut ctx = Context::new();
        let s = vm.coerce_ctx(
            &a[0],
            &mut ctx,
            false,
            true,
            "while evaluating the argument passed to builtins.unsafeDiscardStringContext",
        )?;
        Ok(Value::bytes(s, None))
    });
    r.prim("hasContext", 1, |vm, a| {
        let s = vm
            .force_string(&a[0])
            .ctx("while evaluating the argument passed to builtins.hasContext")?;
        Ok(Value::Bool(s.has_context()))
    });
}

fn string_length(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &a[0],
        &mut ctx,
        false,
        true,
        "while evaluating the argument passed to builtins.stringLength",
    )?;
    Ok(Value::Int(s.len() as i64))
}

fn substring(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let start = vm.force_int(&a[0]).ctx(
        "while evaluating the first argument (the start offset) passed to builtins.substring",
    )?;
    if start < 0 {
        return err("negative start position in 'substring'");
    }
    let len = vm.force_int(&a[1]).ctx(
        "while evaluating the second argument (the substring length) passed to builtins.substring",
    )?;
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &a[2],
        &mut ctx,
        false,
        true,
        "while evaluating the third argument (the string) passed to builtins.substring",
    )?;
    let start = (start as usize).min(s.len());
    let end = if len < 0 {
        s.len()
    } else {
        start.saturating_add(len as usize).min(s.len())
    };
    Ok(Value::bytes(s[start..end].to_vec(), ctx_box(ctx)))
}

fn concat_strings_sep(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let sep = vm.force_string_ctx(&a[0], &mut ctx).ctx(
        "while evaluating the first argument (the separator string) passed to builtins.concatStringsSep",
    )?;
    let l = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument (the list of strings to concat) passed to builtins.concatStringsSep",
    )?;
    if let Some(v) = join_strings(vm, &l, &sep, &mut ctx)? {
        return Ok(v);
    }
    let mut out = Vec::new();
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(&sep);
        }
        // Strings (the common case) are appended in place rather than copied out first.
        match vm.force(x.clone())?.unpack() {
            Owned::String(s) => {
                out.extend_from_slice(s.as_bytes());
                if let Some(c) = s.context() {
                    ctx.extend(c.iter().cloned());
                }
            }
            other => out.extend_from_slice(&vm.coerce_ctx(
                &Value::from(other),
                &mut ctx,
                false,
                true,
                "while evaluating one element of the list of strings to concat passed to builtins.concatStringsSep",
            )?),
        }
    }
    Ok(Value::bytes(out, ctx_box(ctx)))
}

/// `concatStringsSep`'s usual case, a list of strings: each is forced and
/// measured, then all are copied once into a result of the right size
/// (appending to a growing buffer copied the text twice more, and the
/// reallocations showed in `map toString` over a million integers). None
/// at the first element that is not a string: the general loop then starts
/// again from the first, whose forced elements it finds as they are.
fn join_strings(vm: &mut Vm, l: &List, sep: &[u8], ctx: &mut Context) -> EvalResult<Option<Value>> {
    let mut len = sep.len() * l.len().saturating_sub(1);
    for x in l.iter() {
        match &vm.force(x.clone())?.view() {
            View::String(s) => {
                len += s.len();
                if let Some(c) = s.context() {
                    ctx.extend(c.iter().cloned());
                }
            }
            _ => return Ok(None),
        }
    }
    let ctx = ctx_box(std::mem::take(ctx));
    let s = NixStr::filled(len, ctx, |out| {
        let mut at = 0;
        for (i, x) in l.iter().enumerate() {
            if i > 0 {
                out[at..at + sep.len()].copy_from_slice(sep);
                at += sep.len();
            }
            let v = match x.as_thunk() {
                Some(t) => t.done().expect("forced above"),
                None => x.clone(),
            };
            let b = v.as_bytes().expect("a string above");
            out[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        }
    });
    Ok(Some(Value::String(s)))
}

fn replace_strings(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let from = vm.force_list_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.replaceStrings",
    )?;
    let to = vm.force_list_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.replaceStrings",
    )?;
    if from.len() != to.len() {
        return err(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
        );
    }
    let mut from_s = Vec::with_capacity(from.len());
    for f in from.iter() {
        let mut c = Context::new();
        from_s.push(vm.force_string_ctx(f, &mut c).ctx(
            "while evaluating one of the strings to replace passed to builtins.replaceStrings",
        )?);
    }
    let mut to_cache: Vec<Option<(Vec<u8>, Context)>> = vec![None; to.len()];
    let mut ctx = Context::new();
    let s = vm
        .force_string_ctx(&a[2], &mut ctx)
        .ctx("while evaluating the third argument passed to builtins.replaceStrings")?;
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    loop {
        let mut matched = false;
        for (k, pat) in from_s.iter().enumerate() {
            if s[i..].starts_with(pat) {
                if to_cache[k].is_none() {
                    let mut c = Context::new();
                    let t = vm.force_string_ctx(&to[k], &mut c).ctx(
                        "while evaluating one of the replacement strings passed to builtins.replaceStrings",
                    )?;
                    to_cache[k] = Some((t, c));
                }
                let (t, c) = to_cache[k].as_ref().expect("filled");
                out.extend_from_slice(t);
                ctx.extend(c.iter().cloned());
                if pat.is_empty() {
                    if i < s.len() {
                        out.push(s[i]);
                    }
                    i += 1;
                } else {
                    i += pat.len();
                }
                matched = true;
                break;
            }
        }
        if !matched {
            if i < s.len() {
                out.push(s[i]);
            }
            i += 1;
        }
        if i > s.len() {
            break;
        }
    }
    Ok(Value::bytes(out, ctx_box(ctx)))
}

/// Components of a version string, as CppNix's `nextComponent` splits them.
pub fn version_components(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b'.' || b[i] == b'-') {
            i += 1;
        }
        if i >= b.len() {
            break;
        }
        let start = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            while i < b.len() && !(b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'-') {
                i += 1;
            }
        }
        out.push(s[start..i].to_string());
    }
    out
}

fn component_less(a: &str, b: &str) -> bool {
    let an = a
        .parse::<u64>()
        .ok()
        .filter(|_| a.bytes().all(|c| c.is_ascii_digit()));
    let bn = b
        .parse::<u64>()
        .ok()
        .filter(|_| b.bytes().all(|c| c.is_ascii_digit()));
    match (an, bn) {
        (Some(x), Some(y)) => x < y,
        _ => {
            if (a.is_empty() && bn.is_some()) || (a == "pre" && b != "pre") {
                true
            } else if b == "pre" {
                false
            } else if bn.is_some() {
                true
            } else if an.is_some() {
                false
            } else {
                a < b
            }
        }
    }
}

pub fn compare_version_strings(a: &str, b: &str) -> Ordering {
    let (ca, cb) = (version_components(a), version_components(b));
    let n = ca.len().max(cb.len());
    for i in 0..n {
        let x = ca.get(i).map(String::as_str).unwrap_or("");
        let y = cb.get(i).map(String::as_str).unwrap_or("");
        if component_less(x, y) {
            return Ordering::Less;
        }
        if component_less(y, x) {
            return Ordering::Greater;
        }
    }
    Ordering::Equal
}

fn split_version(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.splitVersion")?;
    Ok(Value::list(
        version_components(&s)
            .into_iter()
            .map(Value::string)
            .collect(),
    ))
}

fn compare_versions(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let x = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.compareVersions")?;
    let y = vm
        .force_str_no_ctx(&a[1])
        .ctx("while evaluating the second argument passed to builtins.compareVersions")?;
    Ok(Value::Int(match compare_version_strings(&x, &y) {
        Ordering::Less => -1,
        Ordering::Equal => 0,
        Ordering::Greater => 1,
    }))
}

fn parse_drv_name(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.parseDrvName")?;
    let b = s.as_bytes();
    let mut split = None;
    for i in 0..b.len() {
        if b[i] == b'-' && i + 1 < b.len() && !b[i + 1].is_ascii_alphabetic() {
            split = Some(i);
            break;
        }
    }
    let (name, version) = match split {
        Some(i) => (s[..i].to_string(), s[i + 1..].to_string()),
        None => (s.clone(), String::new()),
    };
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        (Symbol::intern("name"), Value::string(name)),
        (Symbol::intern("version"), Value::string(version)),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn versions() {
        assert_eq!(
            version_components("2.3a-pre1"),
            vec!["2", "3", "a", "pre", "1"]
        );
        assert_eq!(compare_version_strings("1.0", "2.3"), Ordering::Less);
        assert_eq!(compare_version_strings("2.1", "2.3"), Ordering::Less);
        assert_eq!(compare_version_strings("2.3", "2.3"), Ordering::Equal);
        assert_eq!(compare_version_strings("2.5", "2.3"), Ordering::Greater);
        assert_eq!(compare_version_strings("2.3pre1", "2.3"), Ordering::Less);
        assert_eq!(compare_version_strings("2.3.1", "2.3a"), Ordering::Greater);
        assert_eq!(compare_version_strings("2.3pre1", "2.3c"), Ordering::Less);
    }
}
