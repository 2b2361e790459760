//! Runtime values: what a `Value` points at (strings, sets, lists,
//! closures, builtins) and the constructors and accessors shared by every
//! kind. `Value` itself is 8 bytes (`repr.rs`): scalars inline, everything
//! else behind one reference-counted pointer (`Rc`, or the compact blocks of
//! `thunk.rs` and `env.rs`); `cycles.rs` frees the reference cycles.

use nixvm_compiler::ast::Span;
use nixvm_compiler::chunk::{ChunkKind, FormalsInfo, Op};
use nixvm_compiler::Symbol;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

use crate::error::EvalResult;
use crate::vm::Vm;

/// String context: the store paths a string refers to, in CppNix's encoded
/// form (`/nix/store/...` opaque, `=/nix/store/x.drv` deep, `!out!/nix/store/x.drv` built).
pub type Context = BTreeSet<Rc<str>>;

pub struct NixStr {
    bytes: Box<[u8]>,
    ctx: Option<Box<Context>>,
}

impl NixStr {
    pub fn new(bytes: impl Into<Box<[u8]>>, ctx: Option<Box<Context>>) -> NixStr {
        let ctx = ctx.filter(|c| !c.is_empty());
        NixStr {
            bytes: bytes.into(),
            ctx,
        }
    }
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The text, with invalid UTF-8 replaced (only printing should need that).
    pub fn to_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
    pub fn context(&self) -> Option<&Context> {
        self.ctx.as_deref()
    }
    pub fn has_context(&self) -> bool {
        self.ctx.is_some()
    }
}

pub use crate::state::PosIdx;

/// One attribute: 16 bytes, CppNix's `Attr` with the value inline instead
/// of a pointer to it.
#[derive(Clone)]
pub struct Attr {
    pub name: Symbol,
    pub pos: PosIdx,
    pub value: Value,
}

impl Attr {
    pub fn new(name: Symbol, value: Value) -> Attr {
        Attr {
            name,
            pos: PosIdx::NONE,
            value,
        }
    }
}

/// An attribute set. `a // b` with a small `b` does not copy `a`: the result
/// is a layer holding `b`'s attributes on top of `a` (as CppNix 2.34 does,
/// with its limits: a right side of at most 16 attributes, at most 8
/// layers). nixpkgs' overlays otherwise copied its 20,000-attribute package
/// set over and over. Lookups search the layers top down; iteration merges
/// them in symbol order, upper layers shadowing lower ones.
#[derive(Clone, Default)]
pub struct Attrs {
    /// This layer's attributes, sorted by symbol id, for binary search and
    /// linear merges.
    entries: Vec<Attr>,
    /// The layer below, whose attributes `entries` shadow.
    base: Option<Rc<Attrs>>,
    /// Distinct names over all layers.
    len: u32,
    /// Layers in the chain, this one included (0 is read as 1).
    layers: u8,
}

/// CppNix's `bindingsUpdateLayerRhsSizeThreshold` default.
const LAYER_RHS_MAX: usize = 16;
/// CppNix's `Bindings::maxLayers`.
const MAX_LAYERS: u8 = 8;

/// Iterates a set's attributes in symbol order.
pub enum AttrsIter<'a> {
    Flat(std::slice::Iter<'a, Attr>),
    Merged(std::vec::IntoIter<&'a Attr>),
}

impl<'a> Iterator for AttrsIter<'a> {
    type Item = &'a Attr;
    #[inline]
    fn next(&mut self) -> Option<&'a Attr> {
        match self {
            AttrsIter::Flat(i) => i.next(),
            AttrsIter::Merged(i) => i.next(),
        }
    }
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }
    fn flat(entries: Vec<Attr>) -> Attrs {
        let len = u32::try_from(entries.len()).expect("attribute count fits in u32");
        Attrs {
            entries,
            base: None,
            len,
            layers: 1,
        }
    }
    pub fn with_capacity(n: usize) -> Attrs {
        Attrs::flat(Vec::with_capacity(n))
    }
    /// Build from entries already sorted by symbol with no duplicates.
    pub fn from_sorted(entries: Vec<(Symbol, Value)>) -> Attrs {
        Attrs::from_sorted_attrs(
            entries
                .into_iter()
                .map(|(name, value)| Attr::new(name, value))
                .collect(),
        )
    }
    /// Build from attributes already sorted by symbol with no duplicates.
    pub fn from_sorted_attrs(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs::flat(entries)
    }
    /// Build from arbitrary entries; a later duplicate wins.
    pub fn from_unsorted(entries: Vec<(Symbol, Value)>) -> Attrs {
        let mut entries: Vec<Attr> = entries
            .into_iter()
            .rev()
            .map(|(name, value)| Attr::new(name, value))
            .collect();
        entries.sort_by_key(|e| e.name);
        entries.dedup_by_key(|e| e.name);
        Attrs::flat(entries)
    }
    /// Copy the layers into one, before changing the set in place.
    fn flatten(&mut self) {
        if self.base.is_some() {
            let entries: Vec<Attr> = self.attr_iter().cloned().collect();
            *self = Attrs::flat(entries);
        }
    }
    /// Give every attribute the same definition position.
    pub fn set_all_positions(&mut self, pos: PosIdx) {
        self.flatten();
        for e in &mut self.entries {
            e.pos = pos;
        }
    }
    fn find(&self, name: Symbol) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&name, |e| e.name)
    }
    /// The attribute called `name`, from the uppermost layer that has it.
    #[inline]
    fn lookup(&self, name: Symbol) -> Option<&Attr> {
        let mut layer = self;
        loop {
            if let Ok(i) = layer.find(name) {
                return Some(&layer.entries[i]);
            }
            layer = layer.base.as_deref()?;
        }
    }
    /// This layer's attributes, the capacity of their vector, and the layer
    /// below (for walks over the heap).
    pub(crate) fn layer(&self) -> (&[Attr], usize, Option<&Rc<Attrs>>) {
        (&self.entries, self.entries.capacity(), self.base.as_ref())
    }
    /// Where attribute `name` was defined (resolve it with `Vm::pos`).
    pub fn position(&self, name: Symbol) -> PosIdx {
        self.lookup(name).map_or(PosIdx::NONE, |a| a.pos)
    }
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    #[inline]
    pub fn get(&self, name: Symbol) -> Option<&Value> {
        self.lookup(name).map(|a| &a.value)
    }
    pub fn contains(&self, name: Symbol) -> bool {
        self.lookup(name).is_some()
    }
    /// Insert; returns false (and changes nothing) if the name exists.
    pub fn insert_new(&mut self, name: Symbol, value: Value, pos: PosIdx) -> bool {
        self.flatten();
        match self.find(name) {
            Ok(_) => false,
            Err(i) => {
                self.entries.insert(i, Attr { name, pos, value });
                self.len += 1;
                true
            }
        }
    }
    pub fn insert(&mut self, name: Symbol, v: Value) {
        self.flatten();
        match self.find(name) {
            Ok(i) => self.entries[i].value = v,
            Err(i) => {
                self.entries.insert(i, Attr::new(name, v));
                self.len += 1;
            }
        }
    }
    /// The attributes with their positions, in symbol order.
    pub fn attr_iter(&self) -> AttrsIter<'_> {
        let Some(base) = &self.base else {
            return AttrsIter::Flat(self.entries.iter());
        };
        // Merge upward from the bottom layer; each layer shadows what is below.
        let mut layers: Vec<&[Attr]> = vec![&self.entries];
        let mut l = base.as_ref();
        loop {
            layers.push(&l.entries);
            match &l.base {
                Some(b) => l = b,
                None => break,
            }
        }
        let mut merged: Vec<&Attr> = layers.pop().expect("bottom layer").iter().collect();
        while let Some(upper) = layers.pop() {
            let mut out = Vec::with_capacity(merged.len() + upper.len());
            let (mut i, mut j) = (0, 0);
            while i < merged.len() && j < upper.len() {
                match merged[i].name.cmp(&upper[j].name) {
                    std::cmp::Ordering::Less => {
                        out.push(merged[i]);
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(&upper[j]);
                        j += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        out.push(&upper[j]);
                        i += 1;
                        j += 1;
                    }
                }
            }
            out.extend_from_slice(&merged[i..]);
            out.extend(upper[j..].iter());
            merged = out;
        }
        debug_assert_eq!(merged.len(), self.len());
        AttrsIter::Merged(merged.into_iter())
    }
    pub fn iter(&self) -> impl Iterator<Item = (Symbol, &Value)> {
        self.attr_iter().map(|a| (a.name, &a.value))
    }
    /// Entries ordered by name, as Nix shows and iterates them.
    pub fn sorted_by_name(&self) -> Vec<(Symbol, &Value)> {
        let mut v: Vec<(Symbol, &Value)> = self.iter().collect();
        v.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        v
    }
    /// `a // b`: `b` wins. A small `b` becomes a layer on top of `a`.
    pub fn update(a: &Rc<Attrs>, b: &Rc<Attrs>) -> Attrs {
        let layers = a.layers.max(1);
        if b.base.is_none() && b.entries.len() <= LAYER_RHS_MAX && layers < MAX_LAYERS {
            let shadowed = b.entries.iter().filter(|e| a.contains(e.name)).count();
            return Attrs {
                entries: b.entries.clone(),
                base: Some(a.clone()),
                len: a.len + (b.entries.len() - shadowed) as u32,
                layers: layers + 1,
            };
        }
        let av: Vec<&Attr> = a.attr_iter().collect();
        let bv: Vec<&Attr> = b.attr_iter().collect();
        // Size the result exactly: overlays update huge sets with mostly shared names.
        let (mut i, mut j, mut shared) = (0, 0, 0);
        while i < av.len() && j < bv.len() {
            match av[i].name.cmp(&bv[j].name) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(av.len() + bv.len() - shared);
        let (mut i, mut j) = (0, 0);
        while i < av.len() && j < bv.len() {
            match av[i].name.cmp(&bv[j].name) {
                std::cmp::Ordering::Less => {
                    out.push(av[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(bv[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(bv[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend(av[i..].iter().map(|&x| x.clone()));
        out.extend(bv[j..].iter().map(|&x| x.clone()));
        Attrs::flat(out)
    }
}

/// A constant of a linked chunk.
pub enum PConst {
    Value(Value),
    Proto(Rc<Proto>),
    Syms(Box<[Symbol]>),
    /// The names of a set literal's attributes, sorted, each with where it is defined
    /// (one slice of pairs, so the constant stays 24 bytes).
    AttrNames(Box<[(Symbol, PosIdx)]>),
    Withs(Box<[u16]>),
    Formals(Rc<FormalsInfo>),
    Text(Rc<str>),
}

/// A compiled chunk linked for execution: constants are runtime values.
pub struct Proto {
    pub kind: ChunkKind,
    pub name: Option<Symbol>,
    pub file: u32,
    /// The source of `file`, so positions can be shown without the `Vm`.
    pub source: Rc<crate::state::SourceFile>,
    pub span: Span,
    pub code: Box<[Op]>,
    pub spans: Box<[Span]>,
    pub consts: Box<[PConst]>,
    pub nslots: u16,
    pub has_formals: bool,
    /// A thunk whose value may be computable on the spot (see `speculate`).
    pub speculate: bool,
}

impl Proto {
    pub fn formals(&self) -> Option<&FormalsInfo> {
        for op in self.code.iter().take(1) {
            if let Op::BindFormals(c) = op {
                if let PConst::Formals(f) = &self.consts[*c as usize] {
                    return Some(f);
                }
            }
        }
        None
    }
}

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
pub use repr::{Owned, Ref, ThunkRef, Value, View};

impl Value {
    pub fn str(s: &str) -> Value {
        Value::String(Rc::new(NixStr::new(s.as_bytes(), None)))
    }
    pub fn string(s: String) -> Value {
        Value::String(Rc::new(NixStr::new(s.into_bytes(), None)))
    }
    pub fn bytes(b: Vec<u8>, ctx: Option<Box<Context>>) -> Value {
        Value::String(Rc::new(NixStr::new(b, ctx)))
    }
    pub fn str_ctx(s: String, ctx: Option<Box<Context>>) -> Value {
        Value::String(Rc::new(NixStr::new(s.into_bytes(), ctx)))
    }
    pub fn path(p: &str) -> Value {
        Value::Path(Rc::new(p.to_string()))
    }
    pub fn attrs(a: Attrs) -> Value {
        Value::Attrs(Rc::new(a))
    }
    pub fn list(v: Vec<Value>) -> Value {
        Value::List(Rc::new(v))
    }
    pub fn is_thunk(&self) -> bool {
        matches!(&self.view(), View::Thunk(_))
    }
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
    pub fn show_type(&self) -> &'static str {
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

    /// The phrase CppNix uses in type errors ("an integer", "a set", ...).
    pub fn show_type(&self) -> &'static str {
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

/// Accessors for embedders. None of them forces anything: a `Thunk` answers
/// `None` (force it first with `Evaluator::force` or `Evaluator::force_deep`).
impl Value {
    pub fn as_bool(&self) -> Option<bool> {
        match &self.view() {
            View::Bool(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match &self.view() {
            View::Int(n) => Some(*n),
            _ => None,
        }
    }
    /// A float, or an int converted as Nix arithmetic would.
    pub fn as_float(&self) -> Option<f64> {
        match &self.view() {
            View::Float(f) => Some(*f),
            View::Int(n) => Some(*n as f64),
            _ => None,
        }
    }
    /// A string's text if it is valid UTF-8 (its context is ignored).
    pub fn as_str(&self) -> Option<&str> {
        match self.view() {
            View::String(s) => s.obj().as_str(),
            _ => None,
        }
    }
    pub fn as_list(&self) -> Option<&[Value]> {
        match self.view() {
            View::List(l) => Some(l.obj()),
            _ => None,
        }
    }
    pub fn as_attrs(&self) -> Option<&Attrs> {
        match self.view() {
            View::Attrs(a) => Some(a.obj()),
            _ => None,
        }
    }
    /// The attribute `name` of a set (possibly an unevaluated thunk).
    pub fn attr(&self, name: &str) -> Option<&Value> {
        self.as_attrs()?.get(Symbol::intern(name))
    }
}

/// An empty lambda body, for tests that need a closure or a pending thunk.
#[cfg(test)]
pub(crate) fn test_proto() -> Rc<Proto> {
    Rc::new(Proto {
        kind: ChunkKind::Lambda,
        name: None,
        file: 0,
        source: Rc::new(crate::state::SourceFile {
            name: "test".into(),
            src: Rc::from(""),
            raw: false,
        }),
        span: Default::default(),
        code: Box::new([]),
        spans: Box::new([]),
        consts: Box::new([]),
        nslots: 0,
        has_formals: false,
        speculate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn a_constant_is_24_bytes() {
        assert_eq!(std::mem::size_of::<PConst>(), 24);
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
    #[test]
    fn update_merges_and_right_wins() {
        let a = Attrs::from_unsorted(vec![
            (Symbol::intern("a"), Value::Int(1)),
            (Symbol::intern("b"), Value::Int(2)),
        ]);
        let b = Attrs::from_unsorted(vec![
            (Symbol::intern("b"), Value::Int(3)),
            (Symbol::intern("c"), Value::Int(4)),
        ]);
        let (a, b) = (Rc::new(a), Rc::new(b));
        let u = Attrs::update(&a, &b);
        assert_eq!(u.len(), 3);
        assert!(matches!(
            (u.get(Symbol::intern("b"))).map(Value::view).as_ref(),
            Some(View::Int(3))
        ));
        let names: Vec<Symbol> = u.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 3);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn layers_shadow_and_merge_like_a_copy() {
        let sym = |i: usize| Symbol::intern(&format!("layer-test-{i}"));
        let mut big = Rc::new(Attrs::from_unsorted(
            (0..100).map(|i| (sym(i), Value::Int(i as i64))).collect(),
        ));
        let mut copy: std::collections::BTreeMap<Symbol, i64> =
            (0..100).map(|i| (sym(i), i as i64)).collect();
        // More updates than the layer limit, each shadowing one name and adding one.
        for round in 0..20usize {
            let small = Rc::new(Attrs::from_unsorted(vec![
                (sym(round * 3), Value::Int(1000 + round as i64)),
                (sym(100 + round), Value::Int(2000 + round as i64)),
            ]));
            big = Rc::new(Attrs::update(&big, &small));
            copy.insert(sym(round * 3), 1000 + round as i64);
            copy.insert(sym(100 + round), 2000 + round as i64);
            assert!(big.layers <= MAX_LAYERS);
            assert_eq!(big.len(), copy.len());
            let got: Vec<(Symbol, i64)> = big
                .iter()
                .map(|(n, v)| match &v.view() {
                    View::Int(i) => (n, *i),
                    _ => panic!("int"),
                })
                .collect();
            let want: Vec<(Symbol, i64)> = copy.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(got, want);
            for (k, v) in &copy {
                assert!(
                    matches!((big.get(*k)).map(Value::view).as_ref(), Some(View::Int(i)) if i == v)
                );
            }
        }
        // Changing a layered set in place first copies it into one layer.
        let mut flat = (*big).clone();
        flat.insert(sym(999), Value::Null);
        assert_eq!(flat.len(), copy.len() + 1);
        assert!(flat.base.is_none());
    }
}
