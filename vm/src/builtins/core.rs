//! Control, types, arithmetic, errors/tracing, files and the search path.

use super::{type_mismatch, Registry};
use crate::error::*;
use crate::value::*;
use crate::value::{Owned, View};
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use std::rc::Rc;

pub fn register(r: &mut Registry, vm: &Vm) {
    r.prim("abort", 1, abort);
    r.prim("throw", 1, throw);
    r.prim("import", 1, import);
    r.prim("scopedImport", 2, scoped_import);
    r.prim("seq", 2, seq);
    r.prim("deepSeq", 2, deep_seq);
    r.prim("trace", 2, trace);
    r.prim("traceVerbose", 2, trace_verbose);
    r.prim("warn", 2, warn);
    r.prim("break", 1, brk);
    r.prim("tryEval", 1, try_eval);
    r.prim("addErrorContext", 2, add_error_context);
    r.prim("typeOf", 1, type_of);
    r.prim("isNull", 1, |vm, a| {
        Ok(Value::Bool(vm.force(a[0].clone())?.view().is_null()))
    });
    r.prim("isInt", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::Int(_)
        )))
    });
    r.prim("isFloat", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::Float(_)
        )))
    });
    r.prim("isBool", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::Bool(_)
        )))
    });
    r.prim("isString", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::String(_)
        )))
    });
    r.prim("isPath", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::Path(_)
        )))
    });
    r.prim("isList", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::List(_)
        )))
    });
    r.prim("isAttrs", 1, |vm, a| {
        Ok(Value::Bool(matches!(
            vm.force(a[0].clone())?.unpack(),
            Owned::Attrs(_)
        )))
    });
    r.prim("isFunction", 1, |vm, a| {
        Ok(Value::Bool(vm.force(a[0].clone())?.is_function()))
    });
    r.prim("add", 2, |vm, a| arith(vm, a, '+'));
    r.prim("sub", 2, |vm, a| arith(vm, a, '-'));
    r.prim("mul", 2, |vm, a| arith(vm, a, '*'));
    r.prim("div", 2, |vm, a| arith(vm, a, '/'));
    r.prim("lessThan", 2, |vm, a| {
        let (x, y) = (vm.force(a[0].clone())?, vm.force(a[1].clone())?);
        Ok(Value::Bool(vm.less_than_ctx(&x, &y, "")?))
    });
    r.prim("bitAnd", 2, |vm, a| {
        let (x, y) = bit_args(vm, a, "bitAnd")?;
        Ok(Value::Int(x & y))
    });
    r.prim("bitOr", 2, |vm, a| {
        let (x, y) = bit_args(vm, a, "bitOr")?;
        Ok(Value::Int(x | y))
    });
    r.prim("bitXor", 2, |vm, a| {
        let (x, y) = bit_args(vm, a, "bitXor")?;
        Ok(Value::Int(x ^ y))
    });
    r.prim("ceil", 1, |vm, a| round(vm, a, f64::ceil, "ceil"));
    r.prim("floor", 1, |vm, a| round(vm, a, f64::floor, "floor"));
    r.prim("toString", 1, to_string);
    r.prim("getEnv", 1, get_env);
    r.prim("pathExists", 1, path_exists);
    r.prim("readFile", 1, read_file);
    r.prim("readDir", 1, read_dir);
    r.prim("readFileType", 1, read_file_type);
    r.prim("baseNameOf", 1, base_name_of);
    r.prim("dirOf", 1, dir_of);
    r.prim("toPath", 1, to_path);
    r.prim("functionArgs", 1, function_args);
    r.prim("unsafeGetAttrPos", 2, unsafe_get_attr_pos);
    r.prim("findFile", 2, find_file);
    // Pure evaluation has no search path, no clock and no host system.
    let pure = vm.settings.pure_eval;
    r.value(
        "nixPath",
        if pure {
            Value::list(Vec::new())
        } else {
            nix_path(vm)
        },
    );
    r.value("storeDir", Value::str(&vm.settings.store_dir));
    r.value("nixVersion", Value::str("2.34.0"));
    r.value("langVersion", Value::Int(6));
    if !pure {
        r.value("currentSystem", Value::str(&vm.settings.system));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        r.value("currentTime", Value::Int(now as i64));
    }
}

fn bit_args(vm: &mut Vm, a: &[Value], name: &str) -> EvalResult<(i64, i64)> {
    let x = vm
        .force_int(&a[0])
        .ctx_with(|| format!("while evaluating the first argument passed to builtins.{name}"))?;
    let y = vm
        .force_int(&a[1])
        .ctx_with(|| format!("while evaluating the second argument passed to builtins.{name}"))?;
    Ok((x, y))
}

fn abort(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let msg = vm.coerce_ctx(
        &a[0],
        &mut ctx,
        false,
        false,
        "while evaluating the error message passed to builtins.abort",
    )?;
    Err(EvalError::new(
        ErrorKind::Abort,
        format!(
            "evaluation aborted with the following error message: '{}'",
            String::from_utf8_lossy(&msg)
        ),
    ))
}

fn throw(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    // CppNix's text says "builtin.throw".
    let msg = vm.coerce_ctx(
        &a[0],
        &mut ctx,
        false,
        false,
        "while evaluating the error message passed to builtin.throw",
    )?;
    Err(EvalError::new(
        ErrorKind::Throw,
        String::from_utf8_lossy(&msg).into_owned(),
    ))
}

fn import(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let p = vm.coerce_path(&a[0])?;
    let p = crate::storeglue::realise_for_read(vm, &p)?;
    let v = vm.import_path(std::path::Path::new(&p))?;
    vm.force(v)
}

fn scoped_import(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let scope = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.scopedImport",
    )?;
    let p = vm.coerce_path(&a[1])?;
    let p = crate::storeglue::realise_for_read(vm, &p)?;
    let v = vm.scoped_import(&scope, std::path::Path::new(&p))?;
    vm.force(v)
}

fn seq(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    vm.force(a[0].clone())?;
    vm.force(a[1].clone())
}

fn deep_seq(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    vm.force_deep(a[0].clone())?;
    vm.force(a[1].clone())
}

fn trace_message(vm: &mut Vm, v: &Value) -> EvalResult<String> {
    let v = vm.force(v.clone())?;
    Ok(match &v.view() {
        View::String(s) => s.to_str().into_owned(),
        other => crate::print::show_short(&other.to_value()),
    })
}

fn trace(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let msg = trace_message(vm, &a[0])?;
    let text = format!("trace: {}\n", msg);
    vm.log(crate::error::LogLevel::Trace, msg, text);
    vm.force(a[1].clone())
}

fn trace_verbose(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    vm.force(a[1].clone())
}

fn warn(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let text = vm
        .force_string(&a[0])
        .ctx("while evaluating the first argument; the message passed to builtins.warn")?
        .to_str()
        .into_owned();
    vm.eval_warn(text)?;
    vm.force(a[1].clone())
}

fn brk(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    vm.force(a[0].clone())
}

fn try_eval(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let (ok, v) = match vm.force(a[0].clone()) {
        Ok(v) => (true, v),
        Err(e) if e.catchable() => {
            for t in &e.memo {
                if let View::Thunk(t) = t.view() {
                    t.refail(&e);
                }
            }
            (false, Value::Bool(false))
        }
        Err(e) => return Err(e),
    };
    let entries = vec![
        (Symbol::intern("success"), Value::Bool(ok)),
        (known::VALUE, v),
    ];
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn add_error_context(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    match vm.force(a[1].clone()) {
        Ok(v) => Ok(v),
        Err(mut e) => {
            let mut ctx = Context::new();
            let msg = vm.coerce_ctx(
                &a[0],
                &mut ctx,
                false,
                false,
                "while evaluating the error message passed to builtins.addErrorContext",
            )?;
            // Shown even in a truncated trace, as CppNix shows it.
            e.trace.push(TraceEntry {
                always: true,
                msg: String::from_utf8_lossy(&msg).into_owned(),
                pos: None,
            });
            Err(e)
        }
    }
}

fn type_of(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    Ok(Value::str(vm.force(a[0].clone())?.type_of()))
}

/// `add`, `sub`, `mul`, `div`: both operands are forced, then checked as
/// floats if either is one (the divisor first, as a float), with CppNix's
/// frames naming the operand.
pub(crate) fn arith(vm: &mut Vm, a: &mut [Value], op: char) -> EvalResult<Value> {
    let x = vm.force(a[0].clone())?;
    let y = vm.force(a[1].clone())?;
    let float = matches!(x.view(), View::Float(_)) || matches!(y.view(), View::Float(_));
    let (first, second) = match op {
        '+' => (
            "while evaluating the first argument of the addition",
            "while evaluating the second argument of the addition",
        ),
        '-' => (
            "while evaluating the first argument of the subtraction",
            "while evaluating the second argument of the subtraction",
        ),
        // CppNix's float text lacks "argument".
        '*' if float => (
            "while evaluating the first of the multiplication",
            "while evaluating the second argument of the multiplication",
        ),
        '*' => (
            "while evaluating the first argument of the multiplication",
            "while evaluating the second argument of the multiplication",
        ),
        _ => (
            "while evaluating the first operand of the division",
            "while evaluating the second operand of the division",
        ),
    };
    if op == '/' && vm.force_float(&y).ctx(second)? == 0.0 {
        return err_of(ErrorKind::DivisionByZero, "division by zero");
    }
    if float {
        vm.force_float(&x).ctx(first)?;
        vm.force_float(&y).ctx(second)?;
    } else {
        vm.force_int(&x).ctx(first)?;
        vm.force_int(&y).ctx(second)?;
    }
    crate::ops::arith(vm, op, x, y)
}

fn round(vm: &mut Vm, a: &mut [Value], f: fn(f64) -> f64, name: &str) -> EvalResult<Value> {
    let pos = crate::force::determine_pos(&a[0]);
    let ctx = |r: EvalResult<Value>| {
        r.ctx_at(pos, || {
            format!("while evaluating the first argument passed to builtins.{name}")
        })
    };
    let v = ctx(vm.force(a[0].clone()))?;
    match v.unpack() {
        Owned::Int(n) => Ok(Value::Int(n)),
        Owned::Float(x) => {
            let r = f(x);
            if !(-9.223372036854776e18..9.223372036854776e18).contains(&r) {
                return err(format!(
                    "NixFloat argument {} is not in the range of NixInt",
                    nixvm_compiler::printer::format_float_g(x)
                ));
            }
            Ok(Value::Int(r as i64))
        }
        other => ctx(type_mismatch("a float", &Value::from(other))),
    }
}

fn to_string(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    // The usual arguments, a string or an integer, without the general
    // coercion's copies (`map toString` over a million integers made a
    // `String`, a boxed empty context and the result for each). Forcing
    // first changes nothing: coercion adds its frame only after forcing.
    let v = vm.force(a[0].clone())?;
    match v.view() {
        View::String(_) => return Ok(v),
        View::Int(n) => return Ok(Value::str(itoa::Buffer::new().format(n))),
        _ => {}
    }
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &v,
        &mut ctx,
        true,
        false,
        "while evaluating the first argument passed to builtins.toString",
    )?;
    Ok(Value::bytes(s, ctx_box(ctx)))
}

fn get_env(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.getEnv")?;
    if vm.settings.pure_eval || vm.settings.restrict_eval {
        return Ok(Value::str(""));
    }
    Ok(Value::string(std::env::var(&name).unwrap_or_default()))
}

/// The real file a path value refers to (realising store paths if needed).
fn real_path(vm: &mut Vm, v: &Value) -> EvalResult<String> {
    let p = vm.coerce_path(v)?;
    let p = crate::storeglue::realise_for_read(vm, &p)?;
    Ok(crate::storeglue::physical_path(vm, &p)
        .to_string_lossy()
        .into_owned())
}

fn path_exists(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let v = vm.force(a[0].clone())?;
    let must_be_dir = match &v.view() {
        View::Path(p) => p.ends_with('/') && p.len() > 1,
        View::String(s) => s.as_bytes().ends_with(b"/") || s.as_bytes().ends_with(b"/."),
        _ => false,
    };
    // A path that pure or restricted evaluation may not read does not exist.
    let p = match real_path(vm, &v) {
        Err(e) if e.kind == ErrorKind::Restricted => return Ok(Value::Bool(false)),
        r => r?,
    };
    // As CppNix: the last component is not followed (a dangling symlink exists) unless
    // a trailing `/` or `/.` asks for a directory, which resolves symlinks fully.
    let kind = vm.fs.kind(std::path::Path::new(&p), must_be_dir);
    Ok(Value::Bool(match kind {
        Ok(k) => !must_be_dir || k == crate::io::FileKind::Directory,
        Err(_) => false,
    }))
}

fn read_file(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let logical = vm.coerce_path(&a[0])?;
    let p = crate::storeglue::realise_for_read(vm, &logical)?;
    let bytes = (vm.fs.read(std::path::Path::new(&p)))
        .map_err(|e| EvalError::new(ErrorKind::Io, crate::vm::read_error(&logical, &e)))?;
    if bytes.contains(&0) {
        return err(format!(
            "the contents of the file '{}' cannot be represented as a Nix string",
            p
        ));
    }
    let ctx = crate::storeglue::context_for_store_file(vm, &logical, &bytes);
    Ok(Value::bytes(bytes, ctx))
}

fn read_dir(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let p = real_path(vm, &a[0])?;
    let fs = vm.fs.clone();
    let rd = fs.read_dir(std::path::Path::new(&p)).map_err(|e| {
        // CppNix's wording; it names a symlink's target.
        let msg = match e.kind() {
            std::io::ErrorKind::NotFound => format!("path '{}' does not exist", p),
            std::io::ErrorKind::NotADirectory => {
                let target = (fs.canonicalize(std::path::Path::new(&p)))
                    .map(|t| t.to_string_lossy().into_owned())
                    .unwrap_or_else(|_| p.clone());
                format!("'{}' is not a directory", target)
            }
            _ => format!("reading directory '{}': {}", p, crate::vm::io_msg(&e)),
        };
        EvalError::new(ErrorKind::Io, msg)
    })?;
    let entries = (rd.into_iter())
        .map(|(name, kind)| (Symbol::intern(&name), Value::str(kind.as_str())))
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn read_file_type(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let p = real_path(vm, &a[0])?;
    let kind = vm.fs.kind(std::path::Path::new(&p), false).map_err(|e| {
        EvalError::new(
            ErrorKind::Io,
            format!("getting status of '{}': {}", p, crate::vm::io_msg(&e)),
        )
    })?;
    Ok(Value::str(kind.as_str()))
}

use crate::storeglue::base_name;

fn base_name_of(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let v = vm.force(a[0].clone())?;
    if let View::Path(p) = &v.view() {
        return Ok(Value::str(base_name(p)));
    }
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &v,
        &mut ctx,
        false,
        false,
        "while evaluating the first argument passed to builtins.baseNameOf",
    )?;
    let s = String::from_utf8_lossy(&s).into_owned();
    Ok(Value::str_ctx(
        base_name(&s).to_string(),
        Some(Box::new(ctx)),
    ))
}

fn dir_of(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let v = vm.force(a[0].clone())?;
    if let View::Path(p) = &v.view() {
        let d = match p.rfind('/') {
            Some(0) | None => "/".to_string(),
            Some(i) => p[..i].to_string(),
        };
        return Ok(Value::path(&d));
    }
    let mut ctx = Context::new();
    let s = vm.coerce_ctx(
        &v,
        &mut ctx,
        false,
        false,
        "while evaluating the first argument passed to 'builtins.dirOf'",
    )?;
    let s = String::from_utf8_lossy(&s).into_owned();
    let d = match s.rfind('/') {
        None => ".".to_string(),
        Some(0) => "/".to_string(),
        Some(i) => s[..i].to_string(),
    };
    Ok(Value::str_ctx(d, Some(Box::new(ctx))))
}

fn to_path(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let p = vm.coerce_path_ctx(
        &a[0],
        &mut ctx,
        "while evaluating the first argument passed to builtins.toPath",
    )?;
    Ok(Value::str_ctx(p, ctx_box(ctx)))
}

fn function_args(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    match vm.force(a[0].clone())?.unpack() {
        Owned::Lambda(c) => {
            let Some(f) = c.proto.formals() else {
                return Ok(Value::attrs(Attrs::new()));
            };
            let file = c.proto.file();
            let mut entries: Vec<crate::value::Attr> = f
                .formals
                .iter()
                .map(|x| crate::value::Attr {
                    name: x.name,
                    pos: vm.positions.intern(file, x.span),
                    value: Value::Bool(x.default.is_some()),
                })
                .collect();
            entries.sort_by_key(|a| a.name);
            entries.dedup_by_key(|a| a.name);
            let attrs = Attrs::from_sorted_attrs(entries);
            Ok(Value::attrs(attrs))
        }
        Owned::PrimOp(_) | Owned::PrimOpApp(_) => Ok(Value::attrs(Attrs::new())),
        // CppNix's wording, also for a set with `__functor`.
        _ => type_err("'functionArgs' requires a function"),
    }
}

fn unsafe_get_attr_pos(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let name = vm
        .force_str_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.unsafeGetAttrPos")?;
    let set = vm.force_attrs_ctx(
        &a[1],
        "while evaluating the second argument passed to builtins.unsafeGetAttrPos",
    )?;
    let sym = Symbol::intern(&name);
    if !set.contains(sym) {
        return Ok(Value::Null);
    }
    match vm.pos(set.position(sym)) {
        Some(p) if nixvm_compiler::origin_is_file(&vm.files[p.file as usize].name) => {
            let (line, col) = vm.line_col(p);
            let fname = vm.files[p.file as usize].name.clone();
            Ok(Value::attrs(Attrs::from_unsorted(vec![
                (known::FILE, Value::string(fname)),
                (known::LINE, Value::Int(line as i64)),
                (known::COLUMN, Value::Int(col as i64)),
            ])))
        }
        _ => Ok(Value::Null),
    }
}

pub fn nix_path(vm: &Vm) -> Value {
    let items = vm
        .settings
        .search_path
        .iter()
        .map(|(prefix, path)| {
            Value::attrs(Attrs::from_unsorted(vec![
                (known::PREFIX, Value::str(prefix)),
                (known::PATH, Value::str(path)),
            ]))
        })
        .collect();
    Value::list(items)
}

fn find_file(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let list = vm.force_list_ctx(
        &a[0],
        "while evaluating the first argument passed to builtins.findFile",
    )?;
    // CppNix reads the whole search path before the name it looks up.
    let mut elems = Vec::with_capacity(list.len());
    for item in list.iter() {
        let item = vm.force_attrs_ctx(
            item,
            "while evaluating an element of the list passed to builtins.findFile",
        )?;
        let prefix = match item.get(known::PREFIX) {
            Some(p) => vm.force_str_no_ctx(p).ctx(
                "while evaluating the `prefix` attribute of an element of the list passed to builtins.findFile",
            )?,
            None => String::new(),
        };
        let pathv = vm.get_attr_ctx(&item, known::PATH, "in an element of the __nixPath")?;
        let mut ctx = Context::new();
        let base = vm.coerce_ctx(
            &pathv,
            &mut ctx,
            false,
            false,
            "while evaluating the `path` attribute of an element of the list passed to builtins.findFile",
        )?;
        elems.push((prefix, String::from_utf8_lossy(&base).into_owned()));
    }
    let lookup = vm
        .force_str_no_ctx(&a[1])
        .ctx("while evaluating the second argument passed to builtins.findFile")?;
    if vm.settings.pure_eval {
        return Err(EvalError::new(
            ErrorKind::Restricted,
            format!(
                "cannot look up '<{lookup}>' in pure evaluation mode (use '--impure' to override)"
            ),
        ));
    }
    for (prefix, base) in elems {
        let rest = if prefix.is_empty() {
            Some(lookup.clone())
        } else if lookup == prefix {
            Some(String::new())
        } else {
            lookup
                .strip_prefix(&format!("{}/", prefix))
                .map(str::to_string)
        };
        let Some(rest) = rest else { continue };
        let absolute = |p: &str| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                let cwd = std::env::current_dir()
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{}/{}", cwd, p)
            }
        };
        // An entry whose own path does not exist is ignored, with CppNix's
        // warning (once per entry).
        if !vm.fs.exists(std::path::Path::new(&absolute(&base))) {
            if vm.missing_search_paths.insert(base.clone()) {
                vm.warn(format!(
                    "Nix search path entry '{base}' does not exist, ignoring"
                ))?;
            }
            continue;
        }
        let candidate = if rest.is_empty() {
            base.clone()
        } else {
            format!("{}/{}", base, rest)
        };
        let resolved = absolute(&candidate);
        if vm.fs.exists(std::path::Path::new(&resolved)) {
            return Ok(Value::path(&nixvm_compiler::parser::canon_path(&resolved)));
        }
    }
    if let Some(v) = crate::corepkgs::lookup(&lookup) {
        return Ok(v);
    }
    Err(EvalError::new(
        ErrorKind::Throw,
        format!(
            "file '{}' was not found in the Nix search path (add it using $NIX_PATH or -I)",
            lookup
        ),
    ))
}

pub fn mk_attrs(entries: Vec<(&str, Value)>) -> Value {
    Value::attrs(Attrs::from_unsorted(
        entries
            .into_iter()
            .map(|(k, v)| (Symbol::intern(k), v))
            .collect(),
    ))
}

pub fn rc_str(s: &str) -> Rc<str> {
    Rc::from(s)
}
