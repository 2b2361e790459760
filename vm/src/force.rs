//! Forcing with a type check: the `Vm::force_*` helpers that the
//! interpreter, the operators and the builtins all use, and the
//! "expected X but found Y" error they raise.

use crate::error::*;
use crate::value::*;
use crate::value::{Owned, View};
use crate::vm::Vm;

pub fn type_mismatch<T>(expected: &str, v: &Value) -> EvalResult<T> {
    type_err(format!(
        "expected {} but found {}: {}",
        expected,
        v.show_type(),
        crate::print::show_short(v)
    ))
}

impl Vm {
    pub fn force_int(&mut self, v: &Value) -> EvalResult<i64> {
        match self.force(v.clone())?.unpack() {
            Owned::Int(n) => Ok(n),
            other => type_mismatch("an integer", &Value::from(other)),
        }
    }
    pub fn force_float(&mut self, v: &Value) -> EvalResult<f64> {
        match self.force(v.clone())?.unpack() {
            Owned::Int(n) => Ok(n as f64),
            Owned::Float(f) => Ok(f),
            other => type_mismatch("a float", &Value::from(other)),
        }
    }
    pub fn force_bool(&mut self, v: &Value) -> EvalResult<bool> {
        match self.force(v.clone())?.unpack() {
            Owned::Bool(b) => Ok(b),
            other => type_mismatch("a Boolean", &Value::from(other)),
        }
    }
    pub fn force_list(&mut self, v: &Value) -> EvalResult<List> {
        match self.force(v.clone())?.unpack() {
            Owned::List(l) => Ok(l),
            other => type_mismatch("a list", &Value::from(other)),
        }
    }
    pub fn force_attrs(&mut self, v: &Value) -> EvalResult<Attrs> {
        match self.force(v.clone())?.unpack() {
            Owned::Attrs(a) => Ok(a),
            other => type_mismatch("a set", &Value::from(other)),
        }
    }
    pub fn force_function(&mut self, v: &Value) -> EvalResult<Value> {
        let f = self.force(v.clone())?;
        match &f.view() {
            View::Lambda(_) | View::PrimOp(_) | View::PrimOpApp(_) => Ok(f),
            View::Attrs(a) if a.contains(nixvm_compiler::symbol::known::FUNCTOR) => Ok(f),
            other => type_mismatch("a function", &other.to_value()),
        }
    }
    /// A string value (no coercion), with its context.
    pub fn force_string(&mut self, v: &Value) -> EvalResult<NixStr> {
        match self.force(v.clone())?.unpack() {
            Owned::String(s) => Ok(s),
            other => type_mismatch("a string", &Value::from(other)),
        }
    }
    /// A string (not coerced, like CppNix's `forceString`), adding its
    /// context to `ctx`.
    pub fn force_string_ctx(&mut self, v: &Value, ctx: &mut Context) -> EvalResult<Vec<u8>> {
        let s = self.force_string(v)?;
        if let Some(c) = s.context() {
            ctx.extend(c.iter().cloned());
        }
        Ok(s.as_bytes().to_vec())
    }
    /// A string without context, as text.
    pub fn force_str_no_ctx(&mut self, v: &Value) -> EvalResult<String> {
        let s = self.force_string(v)?;
        Ok(s.to_str().into_owned())
    }
    /// Coerce to a string like interpolation does (no numbers).
    pub fn coerce_string(&mut self, v: &Value, ctx: &mut Context) -> EvalResult<Vec<u8>> {
        crate::ops::coerce_to_string(self, v, ctx, false, true)
    }
    /// Coerce to an absolute path string (CppNix's `coerceToPath`).
    pub fn coerce_path(&mut self, v: &Value) -> EvalResult<String> {
        let v = self.force(v.clone())?;
        if let View::Path(p) = &v.view() {
            return Ok(p.to_string());
        }
        let mut ctx = Context::new();
        let s = crate::ops::coerce_to_string(self, &v, &mut ctx, false, false)?;
        let s = String::from_utf8_lossy(&s).into_owned();
        if !s.starts_with('/') {
            return err(format!("string '{}' doesn't represent an absolute path", s));
        }
        Ok(nixvm_compiler::parser::canon_path(&s))
    }
}
