//! Bytecode: one `Chunk` per lambda body, thunk body or file. A chunk owns
//! its instructions, a parallel span table (one source span per
//! instruction, for error messages) and a constant pool; nested bodies are
//! constants of their parent, so a file compiles to a single tree.

use crate::ast::Span;
use crate::symbol::Symbol;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

/// A 24-bit operand: an op with two operands keeps one of them in 24 bits so
/// that every `Op` is 8 bytes (NixOS minimal links 1.8 M of them). The
/// compiler refuses a chunk whose constants or ops outgrow it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct U24([u8; 3]);

impl U24 {
    pub const MAX: u32 = (1 << 24) - 1;
    /// A jump target to be patched.
    pub const ZERO: U24 = U24([0; 3]);

    /// `n`, if it fits.
    pub fn new(n: u32) -> Option<U24> {
        let [a, b, c, d] = n.to_le_bytes();
        (d == 0).then_some(U24([a, b, c]))
    }

    #[inline]
    pub fn get(self) -> u32 {
        let [a, b, c] = self.0;
        u32::from_le_bytes([a, b, c, 0])
    }
}

impl std::fmt::Display for U24 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// One VM instruction. Jump targets are absolute instruction indices.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Op {
    /// Push a constant from the pool.
    Const(u32),
    Null,
    True,
    False,
    /// Push env slot `idx` of the env `depth` levels up the chain.
    Local(u16, u16),
    /// Look `sym` up through the `with` scopes listed in constant `withs`.
    Dyn(Symbol, U24),
    /// Push a thunk of chunk constant `c` closing over the current env.
    Thunk(u32),
    /// Push a closure of lambda chunk constant `c`.
    Closure(u32),
    /// Enter a new env with `n` empty slots.
    PushEnv(u16),
    /// Pop the top of the stack into slot `idx` of the current env.
    SetLocal(u16),
    /// Leave the current env.
    PopEnv,
    /// Pop an attribute set (possibly a thunk) and enter a `with` env for it.
    PushWith,
    /// Pop one value per name of attribute-names constant `c` (sorted by id) into a new set.
    MakeAttrs(u32),
    /// `[attrs, name, value]` -> `[attrs']`: add a dynamic attribute.
    AttrsDyn,
    MakeList(u32),
    /// Replace the set on top of the stack with its attribute.
    Select(Symbol),
    /// As `Select`, but on a missing attribute or non-set pop and jump.
    SelectOr(Symbol, U24),
    /// `[set, name]` -> `[value]`.
    SelectDyn,
    SelectDynOr(u32),
    /// One step of `e ? a.b.c` that is not the last: on failure pop and jump.
    HasAttrStep(Symbol, U24),
    HasAttr(Symbol),
    HasAttrStepDyn(u32),
    HasAttrDyn,
    /// `[f, arg]` -> `[f arg]`.
    Call,
    /// Force the top of the stack to weak head normal form.
    Force,
    Return,
    Pop,
    Jump(u32),
    /// Pop a Boolean; jump if it is false.
    JumpIfFalse(u32),
    /// Pop a Boolean; jump if it is true.
    JumpIfTrue(u32),
    /// Check the top of the stack is a Boolean (second operand of `&&`, `||`, `->`).
    AssertBool,
    Not,
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Neq,
    Lt,
    Concat,
    Update,
    /// Concatenate `n` values as CppNix's ExprConcatStrings; the flag
    /// is `forceString` (interpolation) as opposed to `+`.
    ConcatStrings(u32, bool),
    /// Pop a Boolean; fail with the text constant if false.
    Assert(u32),
    /// The failure path of `assert a == b`: pop both operands (evaluated
    /// again, as CppNix does) and fail saying why they differ. The text
    /// constant is the condition; the second operand is the index of the op
    /// whose span is the `assert` keyword's.
    AssertEq(u32, U24),
    /// Destructure the argument according to formals constant `c`.
    BindFormals(u32),
    /// Apply `__overrides` of the rec set on top of the stack to it and to
    /// the current env, whose slot names are symbol-list constant `c`.
    RecOverrides(u32),
}

const _: () = assert!(std::mem::size_of::<Op>() == 8);

/// Every opcode's name, indexed by `Op::code`.
pub const OP_NAMES: [&str; Op::COUNT] = [
    "Const",
    "Null",
    "True",
    "False",
    "Local",
    "Dyn",
    "Thunk",
    "Closure",
    "PushEnv",
    "SetLocal",
    "PopEnv",
    "PushWith",
    "MakeAttrs",
    "AttrsDyn",
    "MakeList",
    "Select",
    "SelectOr",
    "SelectDyn",
    "SelectDynOr",
    "HasAttrStep",
    "HasAttr",
    "HasAttrStepDyn",
    "HasAttrDyn",
    "Call",
    "Force",
    "Return",
    "Pop",
    "Jump",
    "JumpIfFalse",
    "JumpIfTrue",
    "AssertBool",
    "Not",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Eq",
    "Neq",
    "Lt",
    "Concat",
    "Update",
    "ConcatStrings",
    "Assert",
    "AssertEq",
    "BindFormals",
    "RecOverrides",
];

impl Op {
    pub const COUNT: usize = 46;

    /// The opcode alone (operands dropped), a dense index for histograms.
    pub fn code(&self) -> usize {
        match self {
            Op::Const(_) => 0,
            Op::Null => 1,
            Op::True => 2,
            Op::False => 3,
            Op::Local(..) => 4,
            Op::Dyn(..) => 5,
            Op::Thunk(_) => 6,
            Op::Closure(_) => 7,
            Op::PushEnv(_) => 8,
            Op::SetLocal(_) => 9,
            Op::PopEnv => 10,
            Op::PushWith => 11,
            Op::MakeAttrs(_) => 12,
            Op::AttrsDyn => 13,
            Op::MakeList(_) => 14,
            Op::Select(_) => 15,
            Op::SelectOr(..) => 16,
            Op::SelectDyn => 17,
            Op::SelectDynOr(_) => 18,
            Op::HasAttrStep(..) => 19,
            Op::HasAttr(_) => 20,
            Op::HasAttrStepDyn(_) => 21,
            Op::HasAttrDyn => 22,
            Op::Call => 23,
            Op::Force => 24,
            Op::Return => 25,
            Op::Pop => 26,
            Op::Jump(_) => 27,
            Op::JumpIfFalse(_) => 28,
            Op::JumpIfTrue(_) => 29,
            Op::AssertBool => 30,
            Op::Not => 31,
            Op::Add => 32,
            Op::Sub => 33,
            Op::Mul => 34,
            Op::Div => 35,
            Op::Eq => 36,
            Op::Neq => 37,
            Op::Lt => 38,
            Op::Concat => 39,
            Op::Update => 40,
            Op::ConcatStrings(..) => 41,
            Op::Assert(_) => 42,
            Op::AssertEq(..) => 43,
            Op::BindFormals(_) => 44,
            Op::RecOverrides(_) => 45,
        }
    }

    pub fn name(&self) -> &'static str {
        OP_NAMES[self.code()]
    }
}

#[derive(Clone, Debug)]
pub struct FormalSpec {
    pub name: Symbol,
    /// Index of the default's thunk chunk among the chunk's constants.
    pub default: Option<u32>,
    /// Where the formal is declared (for `unsafeGetAttrPos` on `functionArgs`).
    pub span: crate::ast::Span,
}

#[derive(Clone, Debug)]
pub struct FormalsInfo {
    /// In source order; slot `i` of the call env holds formal `i`.
    pub formals: Vec<FormalSpec>,
    pub ellipsis: bool,
    /// Slot of the `@`-bound name, if any.
    pub at_slot: Option<u16>,
}

#[derive(Clone, Debug)]
pub enum Const {
    Int(i64),
    Float(f64),
    Str(String),
    Path(String),
    Chunk(Rc<Chunk>),
    Syms(Vec<Symbol>),
    /// Attribute names (sorted by id) and where each was defined.
    AttrNames(Vec<Symbol>, Vec<Span>),
    /// Env depths of the enclosing `with` scopes, innermost first.
    Withs(Vec<u16>),
    Formals(FormalsInfo),
    Text(String),
    /// A nested chunk still in a bytecode cache entry: the offset of its
    /// record (only in a chunk `bytecode::Stored::chunk` decoded).
    Stored(u32),
}

/// What a frame of CppNix's (`errorCtx`) says about the code it wraps.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum CtxMsg {
    NotArg,
    EqLeft,
    EqRight,
    NeqLeft,
    NeqRight,
    AndLeft,
    AndRight,
    OrLeft,
    OrRight,
    ImplLeft,
    ImplRight,
    UpdateLeft,
    UpdateRight,
    ConcatLeft,
    ConcatRight,
    AddOperand,
    BranchCond,
    AssertCond,
    SelectingAttr,
    HasAttrArg,
    CallSub,
    CallMul,
    CallDiv,
    CallLessThan,
    AttrName,
    /// A selection `e.a.b`: "while evaluating the attribute 'a.b'" (and "from
    /// the definition of …"), the names read from the select ops in range.
    Attribute,
}

impl CtxMsg {
    pub const ALL: [CtxMsg; 26] = [
        CtxMsg::NotArg,
        CtxMsg::EqLeft,
        CtxMsg::EqRight,
        CtxMsg::NeqLeft,
        CtxMsg::NeqRight,
        CtxMsg::AndLeft,
        CtxMsg::AndRight,
        CtxMsg::OrLeft,
        CtxMsg::OrRight,
        CtxMsg::ImplLeft,
        CtxMsg::ImplRight,
        CtxMsg::UpdateLeft,
        CtxMsg::UpdateRight,
        CtxMsg::ConcatLeft,
        CtxMsg::ConcatRight,
        CtxMsg::AddOperand,
        CtxMsg::BranchCond,
        CtxMsg::AssertCond,
        CtxMsg::SelectingAttr,
        CtxMsg::HasAttrArg,
        CtxMsg::CallSub,
        CtxMsg::CallMul,
        CtxMsg::CallDiv,
        CtxMsg::CallLessThan,
        CtxMsg::AttrName,
        CtxMsg::Attribute,
    ];
    pub fn from_u8(b: u8) -> Option<CtxMsg> {
        CtxMsg::ALL.get(b as usize).copied()
    }
    /// CppNix's words for it (`Attribute` is composed by the VM).
    pub fn text(self) -> &'static str {
        match self {
            CtxMsg::NotArg => "in the argument of '!'",
            CtxMsg::EqLeft => "in the left operand of '=='",
            CtxMsg::EqRight => "in the right operand of '=='",
            CtxMsg::NeqLeft => "in the left operand of '!='",
            CtxMsg::NeqRight => "in the right operand of '!='",
            CtxMsg::AndLeft => "in the left operand of '&&'",
            CtxMsg::AndRight => "in the right operand of '&&'",
            CtxMsg::OrLeft => "in the left operand of '||'",
            CtxMsg::OrRight => "in the right operand of '||'",
            CtxMsg::ImplLeft => "in the left operand of '->'",
            CtxMsg::ImplRight => "in the right operand of '->'",
            CtxMsg::UpdateLeft => "in the left operand of '//'",
            CtxMsg::UpdateRight => "in the right operand of '//'",
            CtxMsg::ConcatLeft => "in the left operand of '++'",
            CtxMsg::ConcatRight => "in the right operand of '++'",
            CtxMsg::AddOperand => "in an operand of '+'",
            CtxMsg::BranchCond => "while evaluating a branch condition",
            CtxMsg::AssertCond => "in the condition of the assert statement",
            CtxMsg::SelectingAttr => "while selecting an attribute",
            CtxMsg::HasAttrArg => "in the argument of '?'",
            CtxMsg::CallSub => "while calling the 'sub' builtin",
            CtxMsg::CallMul => "while calling the 'mul' builtin",
            CtxMsg::CallDiv => "while calling the 'div' builtin",
            CtxMsg::CallLessThan => "while calling the 'lessThan' builtin",
            CtxMsg::AttrName => "while evaluating an attribute name",
            CtxMsg::Attribute => "",
        }
    }
}

/// An error context: the frame `msg` goes on an error raised while ops
/// `start..end` run (CppNix adds it where an expression's evaluation is
/// wrapped in `errorCtx`). The interpreter forces an operand at the op that
/// uses it, so an operand's context also covers that op, but only for
/// errors of forcing that operand (`forced`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrCtx {
    pub start: u32,
    pub end: u32,
    pub msg: CtxMsg,
    /// Only errors of forcing operand `n` (counted from the top of the
    /// stack) of the op at `start`.
    pub forced: Option<u8>,
    /// Not errors of forcing this operand of this op (a selection's base is
    /// evaluated outside the selection's frames).
    pub except_forced: Option<(u32, u8)>,
    /// Where the frame is shown; `None`: no position.
    pub at: Option<Span>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChunkKind {
    File,
    Thunk,
    Lambda,
}

#[derive(Clone, Debug)]
pub struct Chunk {
    pub kind: ChunkKind,
    /// The lambda's name if it was bound to one, for traces and printing.
    pub name: Option<Symbol>,
    pub file: u32,
    pub span: Span,
    pub code: Vec<Op>,
    pub spans: Vec<Span>,
    pub consts: Vec<Const>,
    /// Number of env slots a call creates (lambdas only).
    pub nslots: u16,
    /// Error contexts, in the order they were recorded.
    pub ctxs: Vec<ErrCtx>,
    /// Where each operand of a `+` or an interpolation begins (CppNix reports
    /// an operand's errors there): the op's index and the operand's span, in
    /// the order of the operands (one flat list for the chunk).
    pub part_spans: Vec<(u32, Span)>,
    /// The names of the slots of each env this chunk makes, for listings:
    /// `None` is the call env of a lambda, `Some(i)` the env op `i` pushes.
    /// Slots past the names hold `inherit (e)` sources. Not in the bytecode
    /// cache (listings compile afresh).
    pub env_names: Vec<(Option<u32>, Vec<Symbol>)>,
}

impl Chunk {
    pub fn new(kind: ChunkKind, file: u32, span: Span) -> Chunk {
        Chunk {
            kind,
            name: None,
            file,
            span,
            code: Vec::new(),
            spans: Vec::new(),
            consts: Vec::new(),
            nslots: 0,
            ctxs: Vec::new(),
            part_spans: Vec::new(),
            env_names: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Op, OP_NAMES, U24};
    use crate::symbol::Symbol;

    #[test]
    fn every_opcode_has_its_own_index_and_its_variant_name() {
        let s = Symbol::intern("a");
        let ops = [
            Op::Const(0),
            Op::Null,
            Op::True,
            Op::False,
            Op::Local(0, 0),
            Op::Dyn(s, U24::ZERO),
            Op::Thunk(0),
            Op::Closure(0),
            Op::PushEnv(0),
            Op::SetLocal(0),
            Op::PopEnv,
            Op::PushWith,
            Op::MakeAttrs(0),
            Op::AttrsDyn,
            Op::MakeList(0),
            Op::Select(s),
            Op::SelectOr(s, U24::ZERO),
            Op::SelectDyn,
            Op::SelectDynOr(0),
            Op::HasAttrStep(s, U24::ZERO),
            Op::HasAttr(s),
            Op::HasAttrStepDyn(0),
            Op::HasAttrDyn,
            Op::Call,
            Op::Force,
            Op::Return,
            Op::Pop,
            Op::Jump(0),
            Op::JumpIfFalse(0),
            Op::JumpIfTrue(0),
            Op::AssertBool,
            Op::Not,
            Op::Add,
            Op::Sub,
            Op::Mul,
            Op::Div,
            Op::Eq,
            Op::Neq,
            Op::Lt,
            Op::Concat,
            Op::Update,
            Op::ConcatStrings(0, false),
            Op::Assert(0),
            Op::AssertEq(0, U24::ZERO),
            Op::BindFormals(0),
            Op::RecOverrides(0),
        ];
        assert_eq!(ops.len(), Op::COUNT);
        for (i, op) in ops.iter().enumerate() {
            assert_eq!(op.code(), i);
            let debug = format!("{op:?}");
            let variant = debug.split(['(', ' ']).next().unwrap_or_default();
            assert_eq!(OP_NAMES[i], variant);
        }
    }

    #[test]
    fn u24_holds_24_bits_and_refuses_more() {
        for n in [0, 1, 255, 256, 65_535, 65_536, U24::MAX] {
            assert_eq!(U24::new(n).map(U24::get), Some(n));
        }
        assert_eq!(U24::new(U24::MAX + 1), None);
        assert_eq!(U24::new(u32::MAX), None);
    }
}
