//! `hashString`, `hashFile` and `convertHash`.

use super::Registry;
use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use nixvm_store::hash::{Hash, HashAlgo, HashError, HashFormat, BASE32_DEPRECATION_WARNING};

pub fn register(r: &mut Registry) {
    r.prim("hashString", 2, hash_string);
    r.prim("hashFile", 2, hash_file);
    r.prim("convertHash", 1, convert_hash);
}

fn arg_ctx<T>(r: EvalResult<T>, msg: &str) -> EvalResult<T> {
    r.map_err(|mut e| {
        e.trace.push(TraceEntry {
            always: false,
            msg: msg.to_string(),
            pos: None,
        });
        e
    })
}

fn hash_err<T>(e: HashError) -> EvalResult<T> {
    if e.is_usage_error() {
        Err(EvalError::new(ErrorKind::Usage, e.to_string()))
    } else {
        err(e.to_string())
    }
}

fn parse_algo(name: &str) -> EvalResult<HashAlgo> {
    HashAlgo::parse(name).or_else(hash_err)
}

fn hash_string(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let algo = arg_ctx(
        vm.force_str_no_ctx(&a[0]),
        "while evaluating the first argument passed to builtins.hashString",
    )?;
    let algo = parse_algo(&algo)?;
    let s = arg_ctx(
        vm.force_string(&a[1]),
        "while evaluating the second argument passed to builtins.hashString",
    )?;
    Ok(Value::string(Hash::of(algo, s.as_bytes()).to_base16()))
}

fn hash_file(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let algo = arg_ctx(
        vm.force_str_no_ctx(&a[0]),
        "while evaluating the first argument passed to builtins.hashFile",
    )?;
    let algo = parse_algo(&algo)?;
    let path = vm.coerce_path(&a[1])?;
    crate::storeglue::check_access(vm, &path)?;
    let data = match vm.fs.read(&crate::storeglue::physical_path(vm, &path)) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return err(format!("path '{}' does not exist", path));
        }
        Err(e) => {
            return err(format!(
                "reading file '{}': {}",
                path,
                crate::vm::io_msg(&e)
            ))
        }
    };
    Ok(Value::string(Hash::of(algo, &data).to_base16()))
}

fn convert_hash(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let attrs = arg_ctx(
        vm.force_attrs(&a[0]),
        "while evaluating the first argument passed to builtins.convertHash",
    )?;
    let Some(hash) = attrs.get(Symbol::intern("hash")).cloned() else {
        return arg_ctx(
            err("attribute 'hash' missing"),
            "while locating the attribute 'hash'",
        );
    };
    let hash = arg_ctx(
        vm.force_str_no_ctx(&hash),
        "while evaluating the attribute 'hash'",
    )?;
    let algo = match attrs.get(Symbol::intern("hashAlgo")).cloned() {
        Some(v) => {
            let s = arg_ctx(
                vm.force_str_no_ctx(&v),
                "while evaluating the attribute 'hashAlgo'",
            )?;
            Some(parse_algo(&s)?)
        }
        None => None,
    };
    let Some(fmt) = attrs.get(Symbol::intern("toHashFormat")).cloned() else {
        return arg_ctx(
            err("attribute 'toHashFormat' missing"),
            "while locating the attribute 'toHashFormat'",
        );
    };
    let fmt = arg_ctx(
        vm.force_str_no_ctx(&fmt),
        "while evaluating the attribute 'toHashFormat'",
    )?;
    let format = match HashFormat::parse(&fmt) {
        Ok(f) => f,
        Err(e) => return hash_err(e),
    };
    if fmt == "base32" {
        vm.warn(BASE32_DEPRECATION_WARNING.to_string())?;
    }
    let h = Hash::parse_any(&hash, algo).or_else(hash_err)?;
    Ok(Value::string(
        h.to_string(format, format == HashFormat::Sri),
    ))
}
