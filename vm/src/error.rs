//! Evaluation errors. Errors travel as `Err(Box<EvalError>)` through every
//! layer (never inside values); the VM attaches the source position of the
//! failing instruction and a trace of the frames it unwound through.

use nixvm_compiler::ast::Span;
use std::fmt;

/// What kind of failure an error is. Only `Throw` and `Assert` are caught
/// by `tryEval`, as in CppNix. Where the evaluator knows more (the types of a
/// type error, a missing attribute's name, an index and a length),
/// [`EvalError::detail`] carries it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `throw`: catchable by `tryEval`.
    Throw,
    /// A failed `assert`: catchable by `tryEval`.
    Assert,
    /// `abort`.
    Abort,
    /// A value of the wrong type ("expected an integer but found a string").
    Type,
    /// A thunk needed its own value ("infinite recursion encountered").
    InfiniteRecursion,
    /// Calls nested deeper than `max-call-depth`, or data too deep to walk.
    StackOverflow,
    /// Selecting an attribute a set does not have.
    MissingAttr,
    /// A variable no scope binds.
    UndefinedVar,
    /// A syntax error.
    Parse,
    /// Reading a file or directory failed.
    Io,
    /// Pure or restricted evaluation forbade an access.
    Restricted,
    /// CppNix's `UsageError`: the command adds "Try '… --help'" after it.
    Usage,
    /// `/`, `builtins.div` or `builtins.mod`-style division by zero.
    DivisionByZero,
    /// Integer arithmetic beyond 64 bits.
    Overflow,
    /// `elemAt` (or an attribute path's list step) past the end of a list.
    IndexOutOfRange,
    /// The evaluation was cancelled through its [`Interrupt`] handle.
    Interrupted,
    /// Everything else (builtin argument errors, store and fetcher failures).
    Other,
}

/// The data of an error, where the evaluator knows more than its message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Detail {
    /// A type error: what was expected, in CppNix's words ("an integer",
    /// "a set"), and the type found ("a string").
    Type {
        /// The expected type, as the message words it.
        expected: String,
        /// The type of the value found, as the message words it.
        found: String,
    },
    /// A missing attribute: its name (the suggestions are in
    /// [`EvalError::suggestions`]).
    MissingAttr {
        /// The attribute selected.
        name: String,
    },
    /// A list index out of range.
    IndexOutOfRange {
        /// The index asked for.
        index: i64,
        /// The list's length.
        len: usize,
    },
}

/// What kind of message the evaluation logs (see [`LogMessage`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogLevel {
    /// `builtins.trace`.
    Trace,
    /// `builtins.warn` ("evaluation warning: …").
    EvalWarning,
    /// The evaluator's own warnings (lints, deprecated forms, dirty Git trees).
    Warning,
    /// Progress of fetchers ("unpacking … into the Git cache...").
    Info,
}

/// A message from the evaluation, for the logger an embedder sets
/// (`EvaluatorBuilder::logger`); without one it goes to stderr as `rendered`.
#[derive(Clone, Debug)]
pub struct LogMessage {
    /// What kind of message it is.
    pub level: LogLevel,
    /// The message alone (a trace's value, a warning's text).
    pub message: String,
    /// The message as CppNix prints it on stderr, ending in a newline.
    pub rendered: String,
}

/// Where an evaluator sends its messages.
pub type Logger = Box<dyn FnMut(&LogMessage)>;

/// A handle that cancels an evaluation from another thread (see
/// `Evaluator::interrupt_handle`): the evaluation stops with an
/// [`ErrorKind::Interrupted`] error at its next call or builtin, which
/// `tryEval` does not catch. Cheap to clone; `Send` and `Sync`.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(pub(crate) std::sync::Arc<std::sync::atomic::AtomicBool>);

impl Interrupt {
    /// Ask the evaluation to stop.
    pub fn interrupt(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    /// Let evaluations go on again (after an interrupted one has returned).
    pub fn reset(&self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
    /// Whether a stop was asked for and not reset.
    pub fn is_set(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// How many frames an error keeps: CppNix keeps all, but prints only the first
/// few without --show-trace and folds repeats; a bound keeps a deep recursion's
/// error small.
pub const MAX_TRACE: usize = 50_000;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
/// A place in a source: the evaluator's number for the file (see
/// `Vm::show_pos` and `Evaluator::render_error`) and the byte span.
pub struct Pos {
    /// The evaluator's index of the file.
    pub file: u32,
    /// The bytes of the file.
    pub span: Span,
}

#[derive(Clone, Debug)]
/// One frame of an error's trace ("while evaluating the attribute 'x'").
pub struct TraceEntry {
    /// What was being done.
    pub msg: String,
    /// Where, if the frame has a position.
    pub pos: Option<Pos>,
    /// Printed even where the trace is truncated (CppNix's `TracePrint::Always`,
    /// which `addErrorContext` uses).
    pub always: bool,
}

impl TraceEntry {
    /// A frame saying `msg` at `pos`.
    pub fn new(msg: impl Into<String>, pos: Option<Pos>) -> TraceEntry {
        TraceEntry {
            msg: msg.into(),
            pos,
            always: false,
        }
    }
}

#[derive(Clone, Debug)]
/// An evaluation error: what kind, the message as CppNix words it, where,
/// the trace of what was being evaluated, and its data where known.
/// `Evaluator::render_error` lays it out as CppNix prints it.
pub struct EvalError {
    /// What kind of failure it is.
    pub kind: ErrorKind,
    /// The message, without "error: ".
    pub msg: String,
    /// Where it was raised, if known.
    pub pos: Option<Pos>,
    /// Innermost frame first (the order they are added while unwinding).
    pub trace: Vec<TraceEntry>,
    /// Names close to a misspelt one ("Did you mean ...?"), best first.
    pub suggestions: Vec<String>,
    /// The position is final: unwinding does not give the error the position of
    /// the instruction that failed. Builtins' errors are settled when they leave
    /// the builtin (CppNix gives them the builtin's own position, which is none;
    /// the call site goes on the "while calling the builtin" frame instead).
    #[doc(hidden)]
    pub settled: bool,
    /// The innermost frame is a builtin's "while calling" frame that takes the
    /// position of the call instruction that called it, if an instruction did.
    #[doc(hidden)]
    pub site_pending: bool,
    /// Raised while binding a lambda's formals: the lambda's frame adds no
    /// "while calling" entry (its body never ran).
    #[doc(hidden)]
    pub in_formals: bool,
    /// Raised by forcing operand `n` (from the top of the stack) of the
    /// failing op, whose error contexts for that operand then apply.
    #[doc(hidden)]
    pub forced: Option<u8>,
    /// For an infinite recursion: the thunk found under evaluation (its
    /// address), whose frame marks where the cycle was entered.
    #[doc(hidden)]
    pub blackhole: usize,
    /// The thunks this error failed on its way out. CppNix memoises the
    /// exception itself, so the frames added until something catches it
    /// show when such a thunk is forced again: `tryEval` stores the error,
    /// as it is when caught, back into them.
    #[doc(hidden)]
    pub memo: Vec<crate::value::Value>,
    /// What the error is about, as data, where it is known.
    pub detail: Option<Box<Detail>>,
}

/// What evaluation returns: errors are boxed, so a result is one word
/// more than its value.
pub type EvalResult<T> = Result<T, Box<EvalError>>;

impl EvalError {
    /// An error of `kind` saying `msg`, with no position or trace yet.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Box<EvalError> {
        Box::new(EvalError {
            suggestions: Vec::new(),
            settled: false,
            site_pending: false,
            in_formals: false,
            forced: None,
            blackhole: 0,
            memo: Vec::new(),
            detail: None,
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
    /// An error at `pos`.
    pub fn located(kind: ErrorKind, msg: impl Into<String>, pos: Option<Pos>) -> Box<EvalError> {
        let mut e = EvalError::new(kind, msg);
        e.pos = pos;
        e
    }
    /// The error with `detail` attached.
    pub fn with_detail(mut self: Box<Self>, detail: Detail) -> Box<Self> {
        self.detail = Some(Box::new(detail));
        self
    }
    /// The error at `pos`, which unwinding will not change.
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
            detail: self.detail.clone(),
        }
    }
    /// Whether `builtins.tryEval` catches it (`throw` and `assert` only).
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

/// A type error saying `msg`.
pub fn type_err<T>(msg: impl Into<String>) -> EvalResult<T> {
    Err(EvalError::new(ErrorKind::Type, msg))
}

/// An error of kind `Other` saying `msg`.
pub fn err<T>(msg: impl Into<String>) -> EvalResult<T> {
    Err(EvalError::new(ErrorKind::Other, msg))
}

/// An error of `kind`.
pub fn err_of<T>(kind: ErrorKind, msg: impl Into<String>) -> EvalResult<T> {
    Err(EvalError::new(kind, msg))
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
