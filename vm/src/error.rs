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
    Other,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Pos {
    pub file: u32,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct TraceEntry {
    pub msg: String,
    pub pos: Option<Pos>,
}

#[derive(Clone, Debug)]
pub struct EvalError {
    pub kind: ErrorKind,
    pub msg: String,
    pub pos: Option<Pos>,
    pub trace: Vec<TraceEntry>,
}

pub type EvalResult<T> = Result<T, Box<EvalError>>;

impl EvalError {
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Box<EvalError> {
        Box::new(EvalError {
            kind,
            msg: msg.into(),
            pos: None,
            trace: Vec::new(),
        })
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
