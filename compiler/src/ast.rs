//! The syntax tree the parser produces and the resolver/code generator
//! consume. Shapes follow CppNix's `nixexpr.hh` closely enough that the
//! `--parse` printer can reproduce its output; operators CppNix desugars
//! into calls (`-`, `*`, `/`, `<`, ...) stay operators here and are
//! re-sugared only by the printer.

use crate::symbol::Symbol;

/// Byte offsets into one source file.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    pub start: u32,
    pub end: u32,
}

/// 1-based line and column of byte `offset` in `src` (columns count bytes,
/// as CppNix's do).
pub fn line_col(src: &str, offset: u32) -> (usize, usize) {
    let upto = &src.as_bytes()[..(offset as usize).min(src.len())];
    let line = upto.iter().filter(|&&c| c == b'\n').count() + 1;
    let col = upto.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
    (line, col)
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end,
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    Neq,
    And,
    Or,
    Impl,
    Update,
    Concat,
    Sub,
    Mul,
    Div,
    Lt,
    Gt,
    Le,
    Ge,
    PipeInto,
    PipeFrom,
}

#[derive(Clone, Debug)]
pub enum AttrName {
    Static(Symbol),
    Dynamic(Box<Expr>),
}

#[derive(Clone, Debug)]
pub enum Expr {
    Int(i64),
    Float(f64),
    Str(String),
    /// An absolute path (relative literals are resolved by the parser).
    Path(String),
    Var(Symbol, Span),
    CurPos(Span),
    Select {
        e: Box<Expr>,
        path: Vec<AttrName>,
        default: Option<Box<Expr>>,
        span: Span,
    },
    HasAttr {
        e: Box<Expr>,
        path: Vec<AttrName>,
        span: Span,
    },
    Attrs(Box<AttrsExpr>),
    List(Vec<Expr>, Span),
    Lambda(Box<Lambda>),
    Call {
        f: Box<Expr>,
        args: Vec<Expr>,
        span: Span,
    },
    Let(Box<AttrsExpr>, Box<Expr>),
    With {
        env: Box<Expr>,
        body: Box<Expr>,
        span: Span,
    },
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        els: Box<Expr>,
        span: Span,
    },
    Assert {
        cond: Box<Expr>,
        body: Box<Expr>,
        span: Span,
    },
    Not(Box<Expr>, Span),
    Neg(Box<Expr>, Span),
    BinOp {
        op: BinOp,
        l: Box<Expr>,
        r: Box<Expr>,
        span: Span,
    },
    /// `+` (force_string = false, two parts) and string/path interpolation.
    ConcatStrings {
        force_string: bool,
        parts: Vec<(Span, Expr)>,
        span: Span,
    },
    /// The `i`th `inherit (e)` source of the enclosing attribute set/let.
    InheritFrom(usize, Span),
    /// `<path>` search-path lookup, kept distinct from a plain call so that
    /// the printer and the resolver both see what was written.
    SearchPath(String, Span),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AttrKind {
    Plain,
    Inherited,
    InheritedFrom(usize),
}

#[derive(Clone, Debug)]
pub struct AttrDef {
    pub name: Symbol,
    pub kind: AttrKind,
    pub value: Expr,
    /// Position of the attribute name (what `unsafeGetAttrPos` reports).
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct DynAttrDef {
    pub name: Expr,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct AttrsExpr {
    pub rec: bool,
    /// In definition order.
    pub attrs: Vec<AttrDef>,
    pub dynamic: Vec<DynAttrDef>,
    pub inherit_from: Vec<Expr>,
    pub span: Span,
    /// Where each name is in `attrs`, once there are many: the parser looks
    /// every new name up, and a linear search made a set of n names cost n²
    /// (all-packages.nix has 15,000). Kept up to date by `push`.
    pub index: NameIndex,
}

#[derive(Clone, Debug, Default)]
pub struct NameIndex(Option<Box<rustc_hash::FxHashMap<Symbol, u32>>>);

/// Sets with fewer names are searched linearly.
const INDEX_FROM: usize = 16;

impl AttrsExpr {
    pub fn find(&self, name: Symbol) -> Option<usize> {
        match &self.index.0 {
            Some(map) if map.len() == self.attrs.len() => map.get(&name).map(|&i| i as usize),
            _ => self.attrs.iter().position(|a| a.name == name),
        }
    }

    /// Add a definition of a name not yet defined here; returns its index.
    pub fn push(&mut self, def: AttrDef) -> usize {
        let i = self.attrs.len();
        let name = def.name;
        self.attrs.push(def);
        match &mut self.index.0 {
            Some(map) if map.len() == i => {
                map.insert(name, i as u32);
            }
            _ if i + 1 >= INDEX_FROM => {
                let map = self.attrs.iter().enumerate();
                let map = map.map(|(j, a)| (a.name, j as u32)).collect();
                self.index.0 = Some(Box::new(map));
            }
            _ => {}
        }
        i
    }
}

#[derive(Clone, Debug)]
pub struct Formal {
    pub name: Symbol,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Formals {
    pub formals: Vec<Formal>,
    pub ellipsis: bool,
}

#[derive(Clone, Debug)]
pub struct Lambda {
    pub arg: Option<Symbol>,
    pub formals: Option<Formals>,
    pub body: Expr,
    pub span: Span,
    /// Filled in when the lambda is bound to an attribute or let name, for traces.
    pub name: Option<Symbol>,
}

impl Expr {
    pub fn span(&self) -> Option<Span> {
        Some(match self {
            Expr::Var(_, s)
            | Expr::CurPos(s)
            | Expr::Select { span: s, .. }
            | Expr::HasAttr { span: s, .. }
            | Expr::List(_, s)
            | Expr::Call { span: s, .. }
            | Expr::With { span: s, .. }
            | Expr::If { span: s, .. }
            | Expr::Assert { span: s, .. }
            | Expr::Not(_, s)
            | Expr::Neg(_, s)
            | Expr::BinOp { span: s, .. }
            | Expr::ConcatStrings { span: s, .. }
            | Expr::InheritFrom(_, s)
            | Expr::SearchPath(_, s) => *s,
            Expr::Attrs(a) => a.span,
            Expr::Lambda(l) => l.span,
            Expr::Let(_, b) => return b.span(),
            _ => return None,
        })
    }
}
