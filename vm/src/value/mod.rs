//! Runtime values: what a `Value` points at (strings, sets, lists,
//! closures, builtins) and the constructors and accessors shared by every
//! kind. `Value` itself is 8 bytes (`repr.rs`): scalars inline, everything
//! else behind one reference-counted pointer (`Rc`, or the compact blocks of
//! `thunk.rs` and `env.rs`); `cycles.rs` frees the reference cycles.

use nixvm_compiler::Symbol;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use crate::error::EvalResult;
use crate::vm::Vm;

/// String context: the store paths a string refers to, in CppNix's encoded
/// form (`/nix/store/...` opaque, `=/nix/store/x.drv` deep, `!out!/nix/store/x.drv` built).
pub type Context = BTreeSet<Rc<str>>;

/// The context a new string keeps: none if it is empty (boxing an empty
/// one would allocate for nothing; strings drop it anyway).
pub fn ctx_box(ctx: Context) -> Option<Box<Context>> {
    (!ctx.is_empty()).then(|| Box::new(ctx))
}

mod counted;
pub(crate) use counted::{count_down, count_up, COUNT_MASK};
mod list;
mod string;
pub use list::List;
pub use string::NixStr;

pub use crate::state::PosIdx;

mod set;
pub use set::{Attr, Attrs, AttrsIter};

mod constant;
pub mod errctx;
mod proto;
pub use constant::{CView, Constant, PConst};
pub use proto::{Body, Proto};

/// A runtime environment: the slots of one scope and its parent.
pub use crate::env::Env;

pub struct Closure {
    pub proto: Rc<Proto>,
    pub env: Env,
}

pub type PrimFn = fn(&mut Vm, &mut [Value]) -> EvalResult<Value>;
pub type DynPrimFn = Rc<dyn Fn(&mut Vm, &mut [Value]) -> EvalResult<Value>>;

#[derive(Clone)]
pub enum PrimImpl {
    Native(PrimFn),
    Dyn(DynPrimFn),
}

pub struct PrimOp {
    pub name: Rc<str>,
    pub arity: usize,
    pub imp: PrimImpl,
}

pub struct PrimOpApp {
    pub prim: Rc<PrimOp>,
    pub args: Vec<Value>,
}

pub use crate::thunk::{Begin, Thunk};

mod repr;
pub use repr::{Handle, Owned, Ref, Value, View};

impl Value {
    /// A string without context.
    pub fn str(s: &str) -> Value {
        Value::String(NixStr::new(s, None))
    }
    /// A string without context, from an owned `String`.
    pub fn string(s: String) -> Value {
        Value::String(NixStr::new(s, None))
    }
    /// A string of any bytes, with a context or none.
    pub fn bytes(b: Vec<u8>, ctx: Option<Box<Context>>) -> Value {
        Value::String(NixStr::new(b, ctx))
    }
    /// A string with a context (the store paths it refers to).
    pub fn str_ctx(s: String, ctx: Option<Box<Context>>) -> Value {
        Value::String(NixStr::new(s, ctx))
    }
    /// A path (absolute and canonical, as the parser makes them).
    pub fn path(p: &str) -> Value {
        Value::Path(Rc::new(p.to_string()))
    }
    /// A set.
    pub fn attrs(a: Attrs) -> Value {
        Value::Attrs(a)
    }
    /// A list of these elements.
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(List::from_vec(v))
    }
    /// Whether it is a thunk (even one already evaluated).
    pub fn is_thunk(&self) -> bool {
        matches!(&self.view(), View::Thunk(_))
    }
    /// Whether it is a function: a lambda, a builtin, or a builtin partly applied.
    pub fn is_function(&self) -> bool {
        matches!(
            &self.view(),
            View::Lambda(_) | View::PrimOp(_) | View::PrimOpApp(_)
        )
    }

    /// The name `builtins.typeOf` gives.
    pub fn type_of(&self) -> &'static str {
        self.view().type_of()
    }
    /// The phrase CppNix uses in type errors ("an integer", "a set", ...).
    pub fn show_type(&self) -> std::borrow::Cow<'static, str> {
        self.view().show_type()
    }
}

impl View<'_> {
    /// The name `builtins.typeOf` gives.
    pub fn type_of(&self) -> &'static str {
        match self {
            View::Null => "null",
            View::Bool(_) => "bool",
            View::Int(_) => "int",
            View::Float(_) => "float",
            View::String(_) => "string",
            View::Path(_) => "path",
            View::Attrs(_) => "set",
            View::List(_) => "list",
            View::Lambda(_) | View::PrimOp(_) | View::PrimOpApp(_) => "lambda",
            View::Thunk(_) => "thunk",
        }
    }

    /// The phrase CppNix uses in type errors ("an integer", "a set", "the
    /// built-in function 'map'", ...).
    pub fn show_type(&self) -> std::borrow::Cow<'static, str> {
        let s = match self {
            View::PrimOp(p) => return format!("the built-in function '{}'", p.name).into(),
            View::PrimOpApp(p) => {
                return format!("the partially applied built-in function '{}'", p.prim.name).into()
            }
            _ => self.type_phrase(),
        };
        s.into()
    }

    fn type_phrase(&self) -> &'static str {
        match self {
            View::Null => "null",
            View::Bool(_) => "a Boolean",
            View::Int(_) => "an integer",
            View::Float(_) => "a float",
            View::String(s) if s.has_context() => "a string with context",
            View::String(_) => "a string",
            View::Path(_) => "a path",
            View::Attrs(_) => "a set",
            View::List(_) => "a list",
            View::Lambda(_) => "a function",
            View::PrimOp(_) => "a built-in function",
            View::PrimOpApp(_) => "a partially applied built-in function",
            View::Thunk(_) => "a thunk",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.view() {
            View::Null => write!(f, "null"),
            View::Bool(b) => write!(f, "{b}"),
            View::Int(n) => write!(f, "{n}"),
            View::Float(x) => write!(f, "{x}"),
            View::String(s) => write!(f, "{:?}", s.to_str()),
            View::Path(p) => write!(f, "{p}"),
            View::Attrs(a) => write!(f, "{{ {} attrs }}", a.len()),
            View::List(l) => write!(f, "[ {} items ]", l.len()),
            View::Lambda(_) => write!(f, "<LAMBDA>"),
            View::PrimOp(p) => write!(f, "<PRIMOP {}>", p.name),
            View::PrimOpApp(_) => write!(f, "<PRIMOP-APP>"),
            View::Thunk(_) => write!(f, "<thunk>"),
        }
    }
}

/// Accessors for embedders. None of them forces anything, but they all see
/// through a thunk that has been forced (by `Evaluator::force`, `get`, or
/// anything that needed its value): forcing an attribute of a set updates
/// the thunk inside the set, so reading it again afterwards finds the value.
/// An unforced thunk answers `None` (force it first).
impl Value {
    /// This value, or the value of the forced thunk it is (through any
    /// number of forced thunks).
    #[inline]
    pub fn peeled(&self) -> &Value {
        let mut v = self;
        // A forced thunk holds a value in weak head normal form, so one step
        // is the rule; the bound only guards against a hand-tied loop.
        for _ in 0..64 {
            match v.view() {
                View::Thunk(t) => match t.obj().done_ref() {
                    Some(d) => v = d,
                    None => return v,
                },
                _ => return v,
            }
        }
        v
    }
    /// A Boolean (seen through an evaluated thunk).
    pub fn as_bool(&self) -> Option<bool> {
        match &self.peeled().view() {
            View::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// An integer (seen through an evaluated thunk).
    pub fn as_int(&self) -> Option<i64> {
        match &self.peeled().view() {
            View::Int(n) => Some(*n),
            _ => None,
        }
    }
    /// A float, or an int converted as Nix arithmetic would.
    pub fn as_float(&self) -> Option<f64> {
        match &self.peeled().view() {
            View::Float(f) => Some(*f),
            View::Int(n) => Some(*n as f64),
            _ => None,
        }
    }
    /// A string's text if it is valid UTF-8 (its context is ignored).
    pub fn as_str(&self) -> Option<&str> {
        match self.peeled().view() {
            View::String(s) => s.obj().as_str(),
            _ => None,
        }
    }
    /// A string's bytes, whatever they are (its context is ignored).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.peeled().view() {
            View::String(s) => Some(s.obj().as_bytes()),
            _ => None,
        }
    }
    /// A path's text.
    pub fn as_path(&self) -> Option<&str> {
        match self.peeled().view() {
            View::Path(p) => Some(p.obj().as_str()),
            _ => None,
        }
    }
    /// A list's elements (each possibly an unforced thunk).
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.peeled().view() {
            View::List(l) => Some(l.obj()),
            _ => None,
        }
    }
    /// A set (seen through an evaluated thunk).
    pub fn as_attrs(&self) -> Option<&Attrs> {
        match self.peeled().view() {
            View::Attrs(a) => Some(a.obj()),
            _ => None,
        }
    }
    /// Whether this is `null` (or a forced thunk whose value is).
    pub fn is_null(&self) -> bool {
        matches!(self.peeled().view(), View::Null)
    }
    /// The attribute `name` of a set (possibly an unforced thunk).
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.as_attrs()?.get(Symbol::intern(name))
    }
}

/// An empty lambda body, for tests that need a closure or a pending thunk.
#[cfg(test)]
pub(crate) fn test_proto() -> Rc<Proto> {
    Rc::new(Proto::new(
        nixvm_compiler::chunk::ChunkKind::Lambda,
        None,
        Rc::new(crate::state::SourceFile::new(
            "test".into(),
            Rc::from(""),
            false,
        )),
        Default::default(),
        Body::new(&[], &[], &[], Vec::new()),
        0,
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_constant_is_8_bytes() {
        assert_eq!(std::mem::size_of::<Constant>(), 8);
    }
    #[test]
    fn value_is_8_bytes_and_an_attribute_16() {
        assert_eq!(std::mem::size_of::<Value>(), 8);
        assert_eq!(std::mem::size_of::<Attr>(), 16);
    }
    #[test]
    fn embedder_accessors() {
        let a = Value::attrs(Attrs::from_unsorted(vec![
            (Symbol::intern("n"), Value::Int(3)),
            (Symbol::intern("s"), Value::str("x")),
        ]));
        assert_eq!(a.attr("n").and_then(Value::as_int), Some(3));
        assert_eq!(a.attr("s").and_then(Value::as_str), Some("x"));
        assert!(a.attr("missing").is_none());
        assert_eq!(Value::Int(2).as_float(), Some(2.0));
        assert!(Value::Int(2).as_str().is_none());
        assert_eq!(
            Value::list(vec![Value::Null]).as_list().map(|l| l.len()),
            Some(1)
        );
    }
}
