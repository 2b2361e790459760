//! Evaluation errors. Errors travel as `Err(Box<EvalError>)` through every
//! layer (never inside values); the VM attaches the source position of the
//! failing instruction and a trace of the frames it unwound through.

use nixvm_compiler::ast::Span;
use std::fmt;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `throw`: catchable by `tryEval`.
    Throw,
    /// A failed `assert`: catchable by `tryEval`.
    Assert,
    Abort,
    Type,
    InfiniteRecursion,
    StackOverflow,
    MissingAttr,
    UndefinedVar,
    Parse,
    Io,
    Restricted,
    /// CppNix's `UsageError`: the command adds "Try '… --help'" after it.
    Usage,
    Other,
}

/// How many frames an error keeps: CppNix keeps all, but prints only the first
/// few without --show-trace and folds repeats; a bound keeps a deep recursion's
/// error small.
pub const MAX_TRACE: usize = 50_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pos {
    pub file: u32,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct TraceEntry {
    pub msg: String,
    pub pos: Option<Pos>,
    /// Printed even where the trace is truncated (CppNix's `TracePrint::Always`,
    /// which `addErrorContext` uses).
    pub always: bool,
}

impl TraceEntry {
    pub fn new(msg: impl Into<String>, pos: Option<Pos>) -> TraceEntry {
        TraceEntry {
            msg: msg.into(),
            pos,
            always: false,
        }
    }
}

#[derive(Clone, Debug)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub msg: String,
    pub pos: Option<Pos>,
    /// Innermost frame first (the order they are added while unwinding).
    pub trace: Vec<TraceEntry>,
    /// Names close to a misspelt one ("Did you mean ...?"), best first.
    pub suggestions: Vec<String>,
    /// The position is final: unwinding does not give the error the position of
    /// the instruction that failed. Builtins' errors are settled when they leave
    /// the builtin (CppNix gives them the builtin's own position, which is none;
    /// the call site goes on the "while calling the builtin" frame instead).
    pub settled: bool,
    /// The innermost frame is a builtin's "while calling" frame that takes the
    /// position of the call instruction that called it, if an instruction did.
    pub site_pending: bool,
    /// Raised while binding a lambda's formals: the lambda's frame adds no
    /// "while calling" entry (its body never ran).
    pub in_formals: bool,
    /// Raised by forcing operand `n` (from the top of the stack) of the
    /// failing op, whose error contexts for that operand then apply.
    pub forced: Option<u8>,
    /// For an infinite recursion: the thunk found under evaluation (its
    /// address), whose frame marks where the cycle was entered.
    pub blackhole: usize,
    /// The thunks this error failed on its way out. CppNix memoises the
    /// exception itself, so the frames added until something catches it
    /// show when such a thunk is forced again: `tryEval` stores the error,
    /// as it is when caught, back into them.
    pub memo: Vec<crate::value::Value>,
}

pub type EvalResult<T> = Result<T, Box<EvalError>>;

impl EvalError {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Box<EvalError> {
        Box::new(EvalError {
            suggestions: Vec::new(),
            settled: false,
            site_pending: false,
            in_formals: false,
            forced: None,
            blackhole: 0,
            memo: Vec::new(),
            kind,
            msg: msg.into(),
            pos: None,
            trace: Vec::new(),
        })
    }
    /// Add a frame (innermost first), as CppNix's `addTrace` does; traces are
    /// bounded so that deep recursion does not build huge errors.
    pub fn add_trace(&mut self, msg: impl Into<String>, pos: Option<Pos>) {
        if self.trace.len() < MAX_TRACE {
            self.trace.push(TraceEntry::new(msg, pos));
        }
    }
    pub fn with_pos(mut self: Box<Self>, pos: Option<Pos>) -> Box<Self> {
        self.pos = pos;
        self.settled = true;
        self
    }
    /// A copy to memoise in a failed thunk (without the thunks it failed,
    /// which would hold themselves).
    pub fn memo_copy(&self) -> EvalError {
        EvalError {
            kind: self.kind,
            msg: self.msg.clone(),
            pos: self.pos,
            trace: self.trace.clone(),
            suggestions: self.suggestions.clone(),
            settled: self.settled,
            site_pending: self.site_pending,
            in_formals: self.in_formals,
            forced: self.forced,
            blackhole: self.blackhole,
            memo: Vec::new(),
        }
    }
    pub fn catchable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throw | ErrorKind::Assert)
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for EvalError {}

pub fn type_err<T>(msg: impl Into<String>) -> EvalResult<T> {
    Err(EvalError::new(ErrorKind::Type, msg))
}

pub fn err<T>(msg: impl Into<String>) -> EvalResult<T> {
    Err(EvalError::new(ErrorKind::Other, msg))
}

/// CppNix's `errorCtx`: a frame naming what was being evaluated, added to any
/// error raised while evaluating it (forcing a builtin's argument, an operand).
pub trait ErrCtx<T> {
    /// Add `msg` (without a position) to the error, if there is one.
    fn ctx(self, msg: &str) -> EvalResult<T>;
    /// Add a message computed only if there is an error.
    fn ctx_with(self, msg: impl FnOnce() -> String) -> EvalResult<T>;
    /// Add a computed message at `pos`, if there is an error.
    fn ctx_at(self, pos: Option<Pos>, msg: impl FnOnce() -> String) -> EvalResult<T>;
}

impl<T> ErrCtx<T> for EvalResult<T> {
    #[inline]
    fn ctx(self, msg: &str) -> EvalResult<T> {
        match self {
            Ok(v) => Ok(v),
            Err(mut e) => {
                e.add_trace(msg, None);
                Err(e)
            }
        }
    }
    #[inline]
    fn ctx_with(self, msg: impl FnOnce() -> String) -> EvalResult<T> {
        self.ctx_at(None, msg)
    }
    #[inline]
    fn ctx_at(self, pos: Option<Pos>, msg: impl FnOnce() -> String) -> EvalResult<T> {
        match self {
            Ok(v) => Ok(v),
            Err(mut e) => {
                e.add_trace(msg(), pos);
                Err(e)
            }
        }
    }
}
