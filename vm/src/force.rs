//! Forcing with a type check: the `Vm::force_*` helpers that the
//! interpreter, the operators and the builtins all use, and the
//! "expected X but found Y" error they raise.

use crate::error::*;
use crate::value::*;
use crate::value::{Owned, View};
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;

pub fn type_mismatch<T>(expected: &str, v: &Value) -> EvalResult<T> {
    let e = EvalError::new(
        ErrorKind::Type,
        format!(
            "expected {} but found {}: {}",
            expected,
            v.show_type(),
            crate::print::show_short(v)
        ),
    );
    Err(e.with_detail(Detail::Type {
        expected: expected.to_string(),
        found: v.show_type().into_owned(),
    }))
}

fn cannot_coerce<T>(v: &Value) -> EvalResult<T> {
    type_err(format!(
        "cannot coerce {} to a string: {}",
        v.show_type(),
        crate::print::show_short(v)
    ))
}

/// How an error names a string context element (CppNix's
/// `NixStringContextElem::display`): a path, `DRV^OUT`, or `DRV (deep)`.
pub fn show_context_elem(e: &str) -> String {
    if let Some(p) = e.strip_prefix('=') {
        format!("{} (deep)", p)
    } else if let Some((out, drv)) = e.strip_prefix('!').and_then(|r| r.split_once('!')) {
        format!("{}^{}", drv, out)
    } else {
        e.to_string()
    }
}

/// `ErrCtx::ctx` that adds nothing for an empty text (CppNix's callers
/// pass "" where an enclosing frame says it all).
trait CtxNonEmpty<T> {
    fn ctx_nonempty(self, msg: &str) -> EvalResult<T>;
    fn ctx_nonempty_at(self, msg: &str, pos: Option<Pos>) -> EvalResult<T>;
}

impl<T> CtxNonEmpty<T> for EvalResult<T> {
    fn ctx_nonempty(self, msg: &str) -> EvalResult<T> {
        self.ctx_nonempty_at(msg, None)
    }
    fn ctx_nonempty_at(self, msg: &str, pos: Option<Pos>) -> EvalResult<T> {
        if msg.is_empty() {
            self
        } else {
            self.ctx_at(pos, || msg.to_string())
        }
    }
}

/// CppNix's `Value::determinePos`: where a function value was written
/// (sets carry no position here), else none.
pub fn determine_pos(v: &Value) -> Option<Pos> {
    match &v.view() {
        View::Lambda(c) => Some(Pos {
            file: c.proto.file(),
            span: c.proto.span,
        }),
        // An application is where its function is (a value read through).
        View::Thunk(t) => t.app_function().and_then(|f| match f.view() {
            View::Thunk(_) => None,
            _ => determine_pos(&f),
        }),
        _ => None,
    }
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
    /// A string that must not carry context, as text (CppNix's
    /// `forceStringNoCtx`).
    pub fn force_str_no_ctx(&mut self, v: &Value) -> EvalResult<String> {
        Ok(self.force_string_no_ctx(v)?.to_str().into_owned())
    }
    /// `force_str_no_ctx` keeping the string value (its bytes).
    pub fn force_string_no_ctx(&mut self, v: &Value) -> EvalResult<NixStr> {
        let s = self.force_string(v)?;
        if let Some(first) = s.context().and_then(|c| c.iter().next()) {
            return err(format!(
                "the string '{}' is not allowed to refer to a store path (such as '{}')",
                s.to_str(),
                show_context_elem(first)
            ));
        }
        Ok(s)
    }
    /// A list; `msg` is added to a type error only (an error from
    /// evaluating `v` itself passes unchanged), as CppNix's `forceList`.
    pub fn force_list_ctx(&mut self, v: &Value, msg: &str) -> EvalResult<List> {
        self.force_list_at(v, None, msg)
    }
    /// `force_list_ctx` with the frame at `pos`.
    pub fn force_list_at(&mut self, v: &Value, pos: Option<Pos>, msg: &str) -> EvalResult<List> {
        match self.force(v.clone())?.unpack() {
            Owned::List(l) => Ok(l),
            other => type_mismatch("a list", &Value::from(other)).ctx_nonempty_at(msg, pos),
        }
    }
    /// A set; `msg` is added to a type error only, as CppNix's `forceAttrs`.
    pub fn force_attrs_ctx(&mut self, v: &Value, msg: &str) -> EvalResult<Attrs> {
        self.force_attrs_at(v, None, msg)
    }
    /// `force_attrs_ctx` with the frame at `pos`.
    pub fn force_attrs_at(&mut self, v: &Value, pos: Option<Pos>, msg: &str) -> EvalResult<Attrs> {
        match self.force(v.clone())?.unpack() {
            Owned::Attrs(a) => Ok(a),
            other => type_mismatch("a set", &Value::from(other)).ctx_nonempty_at(msg, pos),
        }
    }
    /// A Boolean as CppNix's `forceBool` at `pos`: the type error is
    /// reported there, and every error gets the frame `msg` there.
    pub fn force_bool_at(&mut self, v: &Value, pos: Option<Pos>, msg: &str) -> EvalResult<bool> {
        let r = match self.force(v.clone()) {
            Ok(x) => match x.unpack() {
                Owned::Bool(b) => Ok(b),
                other => {
                    type_mismatch("a Boolean", &Value::from(other)).map_err(|e| e.with_pos(pos))
                }
            },
            Err(e) => Err(e),
        };
        r.ctx_nonempty_at(msg, pos)
    }
    /// `force_str_no_ctx` as CppNix's `forceStringNoCtx` at `pos` (see
    /// `force_bool_at`).
    pub fn force_str_no_ctx_at(
        &mut self,
        v: &Value,
        pos: Option<Pos>,
        msg: &str,
    ) -> EvalResult<String> {
        let r = match self.force(v.clone()) {
            Ok(x) if !matches!(x.view(), View::String(_)) => {
                type_mismatch("a string", &x).map_err(|e| e.with_pos(pos))
            }
            Ok(x) => self.force_str_no_ctx(&x),
            Err(e) => Err(e),
        };
        r.ctx_nonempty_at(msg, pos)
    }
    /// The attribute `name` of `set`, or "attribute 'name' missing" with
    /// the frame `msg` (CppNix's `getAttr`).
    pub fn get_attr_ctx(&mut self, set: &Attrs, name: Symbol, msg: &str) -> EvalResult<Value> {
        match set.get(name) {
            Some(v) => Ok(v.clone()),
            None => Err(EvalError::new(
                ErrorKind::MissingAttr,
                format!("attribute '{}' missing", name.as_str()),
            )
            .with_detail(Detail::MissingAttr {
                name: name.as_str().to_string(),
            }))
            .ctx(msg),
        }
    }
    /// CppNix's `coerceToString` with its `errorCtx`: `msg` goes on what
    /// cannot be coerced (and on any error of a list's element), not on
    /// errors from evaluating `v`; a set is peeled through `__toString`
    /// and `outPath` with CppNix's frames.
    pub fn coerce_ctx(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        more: bool,
        copy: bool,
        msg: &str,
    ) -> EvalResult<Vec<u8>> {
        self.coerce_at(v, ctx, more, copy, None, msg)
    }
    /// `coerce_ctx` with the frame at `pos`.
    pub fn coerce_at(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        more: bool,
        copy: bool,
        pos: Option<Pos>,
        msg: &str,
    ) -> EvalResult<Vec<u8>> {
        let v = self.force(v.clone())?;
        if let View::String(s) = &v.view() {
            if let Some(c) = s.context() {
                ctx.extend(c.iter().cloned());
            }
            return Ok(s.as_bytes().to_vec());
        }
        self.peel(v, &mut |vm, v| {
            vm.coerce_peeled(v, ctx, more, copy, msg, pos)
        })
    }
    fn coerce_peeled(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        more: bool,
        copy: bool,
        msg: &str,
        pos: Option<Pos>,
    ) -> EvalResult<Vec<u8>> {
        match &v.view() {
            View::String(s) => {
                if let Some(c) = s.context() {
                    ctx.extend(c.iter().cloned());
                }
                Ok(s.as_bytes().to_vec())
            }
            View::Path(p) if copy => {
                let sp = crate::storeglue::copy_path_to_store(self, p)?;
                ctx.insert(std::rc::Rc::from(sp.as_str()));
                Ok(sp.into_bytes())
            }
            View::Path(p) => Ok(p.as_bytes().to_vec()),
            View::Bool(b) if more => Ok(if *b { b"1".to_vec() } else { Vec::new() }),
            View::Null if more => Ok(Vec::new()),
            View::Int(n) if more => Ok(n.to_string().into_bytes()),
            View::Float(f) if more => Ok(crate::ops::float_to_string(*f).into_bytes()),
            View::List(l) if more => {
                let mut out = Vec::new();
                let n = l.len();
                for (i, x) in l.iter().enumerate() {
                    // Lists nest as deeply as the data: grow the stack, never overflow it.
                    let s = self
                        .grow_stack(256 * 1024, 4 * 1024 * 1024, |vm| {
                            vm.coerce_ctx(
                                x,
                                ctx,
                                more,
                                copy,
                                "while evaluating one element of the list",
                            )
                        })
                        .ctx_nonempty_at(msg, pos)?;
                    out.extend_from_slice(&s);
                    if i + 1 < n {
                        let x = self.force(x.clone())?;
                        if !matches!(&x.view(), View::List(y) if y.is_empty()) {
                            out.push(b' ');
                        }
                    }
                }
                Ok(out)
            }
            _ => cannot_coerce(v).ctx_nonempty_at(msg, pos),
        }
    }
    /// CppNix's `peelToStringOutPath`: a set with `__toString` or `outPath`
    /// becomes what they give (repeatedly) and goes to `then`, whose errors
    /// get the frames of the attributes it came through.
    fn peel<T>(
        &mut self,
        v: Value,
        then: &mut dyn FnMut(&mut Vm, &Value) -> EvalResult<T>,
    ) -> EvalResult<T> {
        let View::Attrs(a) = &v.view() else {
            return then(self, &v);
        };
        if let Some(f) = a.get(known::TO_STRING) {
            let f = f.clone();
            let pos = self.pos(a.position(known::TO_STRING));
            let r = self
                .call_at(f, v.clone(), pos)
                .ctx_at(pos, || "while calling the `__toString` attribute".into())?;
            return self.peel(r, then).ctx_at(pos, || {
                "while using the result of the `__toString` attribute".into()
            });
        }
        if let Some(o) = a.get(known::OUT_PATH) {
            let o = o.clone();
            let pos = self.pos(a.position(known::OUT_PATH));
            let o = self
                .force(o)
                .ctx_at(pos, || "while evaluating the `outPath` attribute".into())?;
            return self
                .peel(o, then)
                .ctx_at(pos, || "while using the `outPath` attribute".into());
        }
        then(self, &v)
    }
    /// Call `f` on `arg` where calling a non-function is reported at `pos`.
    fn call_at(&mut self, f: Value, arg: Value, pos: Option<Pos>) -> EvalResult<Value> {
        let f = self.force(f)?;
        let callable = match &f.view() {
            View::Attrs(a) => a.contains(known::FUNCTOR),
            _ => f.is_function(),
        };
        if !callable {
            return Err(EvalError::new(
                ErrorKind::Type,
                format!(
                    "attempt to call something which is not a function but {}: {}",
                    f.show_type(),
                    crate::print::show_short(&f)
                ),
            )
            .with_pos(pos));
        }
        self.call(f, arg)
    }
    /// CppNix's `coerceToPath` with its `errorCtx`: an absolute path (a
    /// string's context goes to `ctx`).
    pub fn coerce_path_ctx(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        msg: &str,
    ) -> EvalResult<String> {
        self.coerce_path_at(v, ctx, None, msg)
    }
    /// `coerce_path_ctx` with the frame at `pos`.
    pub fn coerce_path_at(
        &mut self,
        v: &Value,
        ctx: &mut Context,
        pos: Option<Pos>,
        msg: &str,
    ) -> EvalResult<String> {
        let v = self.force(v.clone())?;
        self.peel(v, &mut |vm, v| {
            if let View::Path(p) = &v.view() {
                return Ok(p.to_string());
            }
            let s = vm.coerce_peeled(v, ctx, false, false, msg, pos)?;
            let s = String::from_utf8_lossy(&s).into_owned();
            if !s.starts_with('/') {
                return err(format!("string '{}' doesn't represent an absolute path", s))
                    .ctx_nonempty_at(msg, pos);
            }
            Ok(nixvm_compiler::parser::canon_path(&s))
        })
    }
    /// Coerce to a string like interpolation does (no numbers).
    pub fn coerce_string(&mut self, v: &Value, ctx: &mut Context) -> EvalResult<Vec<u8>> {
        crate::ops::coerce_to_string(self, v, ctx, false, true)
    }
    /// Coerce to an absolute path string (CppNix's `coerceToPath`), with
    /// CppNix's frames for what `realisePath` coerces.
    pub fn coerce_path(&mut self, v: &Value) -> EvalResult<String> {
        let mut ctx = Context::new();
        self.coerce_path_ctx(v, &mut ctx, "while realising the context of a path")
    }
    /// CppNix's `CompareValues`: whether `a < b` (both forced), `msg`
    /// going on any error; lists compare element-wise, a failing element
    /// comparison with its own frame.
    pub fn less_than_ctx(&mut self, a: &Value, b: &Value, msg: &str) -> EvalResult<bool> {
        Ok(self.compare_ctx(a, b, msg)? == std::cmp::Ordering::Less)
    }
    /// `less_than_ctx` as an ordering (for ordered sets of keys).
    pub fn compare_ctx(
        &mut self,
        a: &Value,
        b: &Value,
        msg: &str,
    ) -> EvalResult<std::cmp::Ordering> {
        let r = match (&a.view(), &b.view()) {
            (View::List(x), View::List(y)) => self.compare_lists(x, y),
            _ => crate::ops::compare(self, a, b),
        };
        if msg.is_empty() {
            r
        } else {
            r.ctx_nonempty(msg)
        }
    }
    fn compare_lists(&mut self, x: &List, y: &List) -> EvalResult<std::cmp::Ordering> {
        for (p, q) in x.iter().zip(y.iter()) {
            if self.equal(p, q)? {
                continue;
            }
            let p = self.force(p.clone())?;
            let q = self.force(q.clone())?;
            return self.compare_ctx(&p, &q, "while comparing two list elements");
        }
        Ok(x.len().cmp(&y.len()))
    }
}
