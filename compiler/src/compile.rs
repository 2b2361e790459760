//! Scope resolution and code generation. Every variable is resolved here:
//! to an env slot `(depth, index)` when a lexical binding exists, to a
//! dynamic `with` lookup when only `with` scopes could provide it, or to an
//! "undefined variable" error. Each runtime env corresponds to exactly one
//! scope pushed here (lambda call, `let`, `rec`, `with`, `inherit (e)`
//! holder), which is what makes the static depths valid at run time.

use crate::ast::*;
use crate::chunk::*;
use crate::parser::ParseErr;
use crate::printer;
use crate::symbol::{known, Symbol};
use rustc_hash::FxHashMap;
use std::rc::Rc;

enum Scope {
    Env(FxHashMap<Symbol, u16>),
    With,
}

enum Resolved {
    Local(u16, u16),
    Dyn(Vec<u16>),
}

pub struct Compiler<'a> {
    scopes: Vec<Scope>,
    chunks: Vec<Chunk>,
    file: u32,
    src: &'a str,
    origin: &'a str,
    span: Span,
    /// A 24-bit operand overflowed (a chunk of 16 M constants or ops).
    too_large: bool,
}

/// Compile a parsed file. `globals` maps the names of the root env (the
/// builtins visible without `builtins.`) to their slots.
pub fn compile_file(
    e: &Expr,
    globals: &FxHashMap<Symbol, u16>,
    file: u32,
    src: &str,
    origin: &str,
) -> Result<Rc<Chunk>, ParseErr> {
    let mut c = Compiler {
        scopes: vec![Scope::Env(globals.clone())],
        chunks: vec![Chunk::new(ChunkKind::File, file, Span::new(0, src.len()))],
        file,
        src,
        origin,
        span: Span::default(),
        too_large: false,
    };
    c.expr(e)?;
    c.emit_force_return();
    if c.too_large {
        return Err(ParseErr::new(
            "expression too large to compile (a body with over 16 million instructions or constants)",
            Span::new(0, src.len()),
        ));
    }
    Ok(Rc::new(c.chunks.pop().expect("file chunk")))
}

/// A scope's names in slot order (for listings).
fn slot_names(names: &FxHashMap<Symbol, u16>) -> Vec<Symbol> {
    let mut v: Vec<(u16, Symbol)> = names.iter().map(|(&s, &i)| (i, s)).collect();
    v.sort_unstable();
    v.into_iter().map(|(_, s)| s).collect()
}

fn is_whnf_producer(op: Option<&Op>) -> bool {
    matches!(
        op,
        Some(
            Op::Call
                | Op::Force
                | Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Eq
                | Op::Neq
                | Op::Lt
                | Op::Not
                | Op::Concat
                | Op::Update
                | Op::ConcatStrings(..)
                | Op::MakeAttrs(_)
                | Op::MakeList(_)
                | Op::True
                | Op::False
                | Op::Null
                | Op::Closure(_)
                | Op::HasAttr(_)
                | Op::HasAttrDyn
        )
    )
}

impl<'a> Compiler<'a> {
    fn chunk(&mut self) -> &mut Chunk {
        self.chunks.last_mut().expect("chunk stack")
    }

    fn emit(&mut self, op: Op) -> usize {
        let span = self.span;
        let c = self.chunk();
        c.code.push(op);
        c.spans.push(span);
        c.code.len() - 1
    }

    fn here(&mut self) -> u32 {
        self.chunk().code.len() as u32
    }

    /// `n` as a 24-bit operand (remembering if it does not fit).
    fn u24(&mut self, n: u32) -> U24 {
        U24::new(n).unwrap_or_else(|| {
            self.too_large = true;
            U24::ZERO
        })
    }

    fn patch(&mut self, at: usize) {
        let target = self.here();
        let t24 = self.u24(target);
        let op = &mut self.chunk().code[at];
        *op = match *op {
            Op::Jump(_) => Op::Jump(target),
            Op::JumpIfFalse(_) => Op::JumpIfFalse(target),
            Op::JumpIfTrue(_) => Op::JumpIfTrue(target),
            Op::SelectOr(s, _) => Op::SelectOr(s, t24),
            Op::SelectDynOr(_) => Op::SelectDynOr(target),
            Op::HasAttrStep(s, _) => Op::HasAttrStep(s, t24),
            Op::HasAttrStepDyn(_) => Op::HasAttrStepDyn(target),
            other => other,
        };
    }

    /// Record that errors of ops `start..here` get the frame `msg` at `at`.
    fn ctx(&mut self, start: u32, msg: CtxMsg, at: Option<Span>) {
        let end = self.here();
        self.chunk().ctxs.push(ErrCtx {
            start,
            end,
            msg,
            forced: None,
            except_forced: None,
            at,
        });
    }

    /// Record that errors of forcing operand `slot` (from the top of the
    /// stack) of op `op` get the frame `msg` at `at`.
    fn ctx_forced(&mut self, op: u32, slot: u8, msg: CtxMsg, at: Option<Span>) {
        self.chunk().ctxs.push(ErrCtx {
            start: op,
            end: op + 1,
            msg,
            forced: Some(slot),
            except_forced: None,
            at,
        });
    }

    fn constant(&mut self, c: Const) -> u32 {
        let consts = &mut self.chunk().consts;
        consts.push(c);
        (consts.len() - 1) as u32
    }

    /// Whether some jump lands at `pos` (then the last op is not the only way to get there,
    /// and what it pushes says nothing about the other paths' values).
    fn is_jump_target(&mut self, pos: u32) -> bool {
        self.chunk().code.iter().any(|op| match *op {
            Op::Jump(t)
            | Op::JumpIfFalse(t)
            | Op::JumpIfTrue(t)
            | Op::SelectDynOr(t)
            | Op::HasAttrStepDyn(t) => t == pos,
            Op::SelectOr(_, t) | Op::HasAttrStep(_, t) => t.get() == pos,
            _ => false,
        })
    }

    fn emit_force_return(&mut self) {
        let here = self.here();
        if !is_whnf_producer(self.chunk().code.last()) || self.is_jump_target(here) {
            self.emit(Op::Force);
        }
        self.emit(Op::Return);
    }

    fn err<T>(&self, msg: String, span: Span) -> Result<T, ParseErr> {
        Err(ParseErr::new(msg, span))
    }

    fn resolve(&self, sym: Symbol, skip: usize) -> Option<Resolved> {
        let mut withs = Vec::new();
        let n = self.scopes.len() - skip;
        for (depth, scope) in self.scopes[..n].iter().rev().enumerate() {
            let depth = (depth + skip) as u16;
            match scope {
                Scope::Env(names) => {
                    if let Some(&idx) = names.get(&sym) {
                        return Some(Resolved::Local(depth, idx));
                    }
                }
                Scope::With => withs.push(depth),
            }
        }
        if withs.is_empty() {
            None
        } else {
            Some(Resolved::Dyn(withs))
        }
    }

    fn var(&mut self, sym: Symbol, span: Span, skip: usize) -> Result<(), ParseErr> {
        self.span = span;
        match self.resolve(sym, skip) {
            Some(Resolved::Local(d, i)) => {
                self.emit(Op::Local(d, i));
            }
            Some(Resolved::Dyn(withs)) => {
                let c = self.constant(Const::Withs(withs));
                let c = self.u24(c);
                self.emit(Op::Dyn(sym, c));
            }
            None => return self.err(format!("undefined variable '{}'", sym), span),
        }
        Ok(())
    }

    /// Compile `e` into its own chunk and push a thunk of it.
    fn thunk(&mut self, e: &Expr) -> Result<(), ParseErr> {
        let span = e.span().unwrap_or(self.span);
        self.chunks
            .push(Chunk::new(ChunkKind::Thunk, self.file, span));
        self.expr(e)?;
        self.emit_force_return();
        let chunk = self.chunks.pop().expect("thunk chunk");
        let c = self.constant(Const::Chunk(Rc::new(chunk)));
        self.emit(Op::Thunk(c));
        Ok(())
    }

    /// Push `e` without evaluating it: constants, plain variables and
    /// lambdas directly, everything else as a thunk.
    fn lazy(&mut self, e: &Expr) -> Result<(), ParseErr> {
        match e {
            Expr::Int(_) | Expr::Float(_) | Expr::Str(_) | Expr::Path(_) | Expr::Lambda(_) => {
                self.expr(e)
            }
            Expr::Var(sym, span) => match self.resolve(*sym, 0) {
                Some(Resolved::Local(..)) => self.var(*sym, *span, 0),
                Some(Resolved::Dyn(_)) => self.thunk(e),
                None => self.err(format!("undefined variable '{}'", sym), *span),
            },
            Expr::Attrs(a) if !a.rec && a.attrs.is_empty() && a.dynamic.is_empty() => self.expr(e),
            Expr::List(items, _) if items.is_empty() => self.expr(e),
            _ => self.thunk(e),
        }
    }

    /// `lazy` for a binding of a scope whose slots are still being filled:
    /// a variable of that same scope may not be set yet, so it gets a thunk.
    fn lazy_in_rec(&mut self, e: &Expr) -> Result<(), ParseErr> {
        if let Expr::Var(sym, _) = e {
            if let Some(Resolved::Local(0, _)) = self.resolve(*sym, 0) {
                return self.thunk(e);
            }
        }
        self.lazy(e)
    }

    fn line_col(&self, offset: u32) -> (i64, i64) {
        let upto = &self.src.as_bytes()[..(offset as usize).min(self.src.len())];
        let line = upto.iter().filter(|&&c| c == b'\n').count() + 1;
        let col = upto.iter().rev().take_while(|&&c| c != b'\n').count() + 1;
        (line as i64, col as i64)
    }

    /// Compile `e`. Nesting in the source is recursion here, so a deeply
    /// nested expression moves onto a fresh stack segment instead of
    /// overflowing the native stack.
    pub fn expr(&mut self, e: &Expr) -> Result<(), ParseErr> {
        stacker::maybe_grow(crate::RED_ZONE, crate::STACK_SEGMENT, || self.expr_inner(e))
    }

    fn expr_inner(&mut self, e: &Expr) -> Result<(), ParseErr> {
        // A `let`'s span is its body's, found by walking down a chain of
        // `let`s: asking at every level would be quadratic in the chain.
        // Setting up its bindings cannot fail, and the body sets the span.
        let span = match e {
            Expr::Let(..) => None,
            _ => e.span(),
        };
        if let Some(s) = span {
            self.span = s;
        }
        match e {
            Expr::Int(n) => {
                let c = self.constant(Const::Int(*n));
                self.emit(Op::Const(c));
            }
            Expr::Float(f) => {
                let c = self.constant(Const::Float(*f));
                self.emit(Op::Const(c));
            }
            Expr::Str(s) => {
                let c = self.constant(Const::Str(s.clone()));
                self.emit(Op::Const(c));
            }
            Expr::Path(p) => {
                let c = self.constant(Const::Path(p.clone()));
                self.emit(Op::Const(c));
            }
            Expr::Var(sym, span) => {
                self.var(*sym, *span, 0)?;
            }
            Expr::CurPos(_) if !crate::origin_is_file(self.origin) => {
                self.emit(Op::Null);
            }
            Expr::CurPos(span) => {
                let (line, col) = self.line_col(span.start);
                let file = self.constant(Const::Str(self.origin.to_string()));
                let l = self.constant(Const::Int(line));
                let c = self.constant(Const::Int(col));
                // Values in the order of the sorted symbol ids of column, file, line.
                let mut names = vec![(known::COLUMN, c), (known::FILE, file), (known::LINE, l)];
                names.sort_by_key(|(s, _)| *s);
                for (_, k) in &names {
                    self.emit(Op::Const(*k));
                }
                let syms = self.constant(Const::AttrNames(
                    names.iter().map(|(s, _)| *s).collect(),
                    vec![*span; 3],
                ));
                self.emit(Op::MakeAttrs(syms));
            }
            Expr::Select {
                e,
                path,
                default,
                span,
            } => {
                // CppNix: the base is evaluated "while selecting an attribute";
                // then every step and the forcing of the value are "while
                // evaluating the attribute 'a.b'" (forced here, as CppNix
                // forces it, so that its errors carry the frame).
                let base = self.here();
                self.expr(e)?;
                self.ctx(base, CtxMsg::SelectingAttr, e.span());
                self.span = *span;
                let steps = self.here();
                // The op that forces the base: the first step's.
                let mut first_step = None;
                match default {
                    None => {
                        for a in path {
                            match a {
                                AttrName::Static(s) => {
                                    let at = self.emit(Op::Select(*s)) as u32;
                                    first_step.get_or_insert((at, 0));
                                }
                                AttrName::Dynamic(n) => {
                                    let ns = self.here();
                                    self.expr(n)?;
                                    self.span = *span;
                                    let at = self.emit(Op::SelectDyn) as u32;
                                    first_step.get_or_insert((at, 1));
                                    self.attr_name_ctx(ns, at, n);
                                }
                            }
                        }
                        self.emit(Op::Force);
                    }
                    Some(d) => {
                        let mut fails = Vec::new();
                        for a in path {
                            match a {
                                AttrName::Static(s) => {
                                    let at = self.emit(Op::SelectOr(*s, U24::ZERO));
                                    first_step.get_or_insert((at as u32, 0));
                                    fails.push(at)
                                }
                                AttrName::Dynamic(n) => {
                                    let ns = self.here();
                                    self.expr(n)?;
                                    self.span = *span;
                                    let at = self.emit(Op::SelectDynOr(0));
                                    first_step.get_or_insert((at as u32, 1));
                                    self.attr_name_ctx(ns, at as u32, n);
                                    fails.push(at);
                                }
                            }
                        }
                        self.emit(Op::Force);
                        let j = self.emit(Op::Jump(0));
                        for f in fails {
                            self.patch(f);
                        }
                        self.expr(d)?;
                        self.patch(j);
                    }
                }
                if let Some((op, slot)) = first_step {
                    self.ctx_forced(op, slot, CtxMsg::SelectingAttr, e.span());
                    let end = self.here();
                    self.chunk().ctxs.push(ErrCtx {
                        start: steps,
                        end,
                        msg: CtxMsg::Attribute,
                        forced: None,
                        except_forced: Some((op, slot)),
                        at: Some(*span),
                    });
                }
            }
            Expr::HasAttr { e, path, span } => {
                let base = self.here();
                self.expr(e)?;
                self.ctx(base, CtxMsg::HasAttrArg, e.span());
                let first = self.here();
                if let Some(AttrName::Static(_)) = path.first() {
                    self.ctx_forced(first, 0, CtxMsg::HasAttrArg, e.span());
                }
                self.span = *span;
                let mut fails = Vec::new();
                let n = path.len();
                for (i, a) in path.iter().enumerate() {
                    let last = i == n - 1;
                    match a {
                        AttrName::Static(s) => {
                            if last {
                                self.emit(Op::HasAttr(*s));
                            } else {
                                fails.push(self.emit(Op::HasAttrStep(*s, U24::ZERO)));
                            }
                        }
                        AttrName::Dynamic(d) => {
                            self.expr(d)?;
                            self.span = *span;
                            if last {
                                self.emit(Op::HasAttrDyn);
                            } else {
                                fails.push(self.emit(Op::HasAttrStepDyn(0)));
                            }
                        }
                    }
                }
                if !fails.is_empty() {
                    let j = self.emit(Op::Jump(0));
                    for f in fails {
                        self.patch(f);
                    }
                    self.emit(Op::False);
                    self.patch(j);
                }
            }
            Expr::Attrs(a) => self.attrs(a)?,
            Expr::List(items, span) => {
                for i in items {
                    self.lazy(i)?;
                }
                self.span = *span;
                self.emit(Op::MakeList(items.len() as u32));
            }
            Expr::Lambda(l) => self.lambda(l)?,
            Expr::Call { f, args, span } => {
                self.expr(f)?;
                for a in args {
                    self.lazy(a)?;
                    self.span = *span;
                    self.emit(Op::Call);
                }
            }
            Expr::Let(a, body) => {
                self.rec_scope(a, |c, _| c.expr(body))?;
            }
            Expr::With { env, body, span } => {
                self.lazy(env)?;
                self.span = *span;
                self.emit(Op::PushWith);
                self.scopes.push(Scope::With);
                self.expr(body)?;
                self.scopes.pop();
                self.emit(Op::PopEnv);
            }
            Expr::If {
                cond,
                then,
                els,
                span,
            } => {
                let cs = self.here();
                self.expr(cond)?;
                self.span = cond.span().unwrap_or(*span);
                let jf = self.emit(Op::JumpIfFalse(0));
                self.ctx(cs, CtxMsg::BranchCond, cond.span());
                self.expr(then)?;
                let je = self.emit(Op::Jump(0));
                self.patch(jf);
                self.expr(els)?;
                self.patch(je);
            }
            Expr::Assert { cond, body, span } => {
                let cs = self.here();
                self.expr(cond)?;
                self.span = *span;
                let text = self.constant(Const::Text(printer::show(cond)));
                if let Expr::BinOp {
                    op: BinOp::Eq,
                    l,
                    r,
                    span: eq,
                } = &**cond
                {
                    // CppNix evaluates the operands a second time to explain the failure.
                    let ok = self.emit(Op::JumpIfTrue(0));
                    self.ctx(cs, CtxMsg::AssertCond, cond.span());
                    self.expr(l)?;
                    self.expr(r)?;
                    self.span = *eq;
                    let at = self.u24(ok as u32);
                    self.emit(Op::AssertEq(text, at));
                    self.patch(ok);
                } else {
                    self.emit(Op::Assert(text));
                    self.ctx(cs, CtxMsg::AssertCond, cond.span());
                }
                self.expr(body)?;
            }
            Expr::Not(e, span) => {
                // CppNix's evalBool: a non-Boolean is reported at the operand.
                let start = self.here();
                self.expr(e)?;
                self.span = e.span().unwrap_or(*span);
                self.emit(Op::Not);
                self.ctx(start, CtxMsg::NotArg, e.span());
            }
            Expr::Neg(e, span) => {
                self.span = *span;
                let start = self.here();
                let c = self.constant(Const::Int(0));
                self.emit(Op::Const(c));
                self.expr(e)?;
                self.span = *span;
                self.emit(Op::Sub);
                self.ctx(start, CtxMsg::CallSub, Some(*span));
            }
            Expr::BinOp { op, l, r, span } => self.binop(*op, l, r, *span)?,
            Expr::ConcatStrings {
                force_string,
                parts,
                span,
            } => {
                for (_, p) in parts {
                    let start = self.here();
                    self.expr(p)?;
                    if !matches!(p, Expr::Str(_)) {
                        self.ctx(start, CtxMsg::AddOperand, p.span());
                    }
                }
                self.span = *span;
                let op = if !force_string && parts.len() == 2 {
                    self.emit(Op::Add)
                } else {
                    self.emit(Op::ConcatStrings(parts.len() as u32, *force_string))
                } as u32;
                let n = parts.len();
                for (i, (_, p)) in parts.iter().enumerate() {
                    if !matches!(p, Expr::Str(_)) && n - 1 - i < 256 {
                        self.ctx_forced(op, (n - 1 - i) as u8, CtxMsg::AddOperand, p.span());
                    }
                }
                let c = self.chunk();
                c.part_spans.extend(parts.iter().map(|(s, _)| (op, *s)));
            }
            Expr::InheritFrom(_, span) => {
                return self.err("internal error: stray inherit-from".into(), *span)
            }
            Expr::SearchPath(p, span) => {
                self.var(known::FIND_FILE, *span, 0)?;
                self.var(known::NIX_PATH, *span, 0)?;
                self.emit(Op::Call);
                let c = self.constant(Const::Str(p.clone()));
                self.emit(Op::Const(c));
                self.emit(Op::Call);
            }
        }
        Ok(())
    }

    /// A dynamic attribute name's code (from `start`) and its use by op `op`
    /// (on top of the stack there): "while evaluating an attribute name".
    fn attr_name_ctx(&mut self, start: u32, op: u32, n: &Expr) {
        let end = self.here() - 1;
        self.chunk().ctxs.push(ErrCtx {
            start,
            end,
            msg: CtxMsg::AttrName,
            forced: None,
            except_forced: None,
            at: n.span(),
        });
        self.ctx_forced(op, 0, CtxMsg::AttrName, n.span());
    }

    fn binop(&mut self, op: BinOp, l: &Expr, r: &Expr, span: Span) -> Result<(), ParseErr> {
        if let BinOp::And | BinOp::Or | BinOp::Impl = op {
            let (lm, rm) = match op {
                BinOp::And => (CtxMsg::AndLeft, CtxMsg::AndRight),
                BinOp::Or => (CtxMsg::OrLeft, CtxMsg::OrRight),
                _ => (CtxMsg::ImplLeft, CtxMsg::ImplRight),
            };
            // CppNix's evalBool: a non-Boolean is reported at the operand.
            let ls = self.here();
            self.expr(l)?;
            self.span = l.span().unwrap_or(span);
            let j = match op {
                BinOp::Or => self.emit(Op::JumpIfTrue(0)),
                _ => self.emit(Op::JumpIfFalse(0)),
            };
            self.ctx(ls, lm, l.span());
            let rs = self.here();
            self.expr(r)?;
            self.span = r.span().unwrap_or(span);
            self.emit(Op::AssertBool);
            self.ctx(rs, rm, r.span());
            self.span = span;
            let end = self.emit(Op::Jump(0));
            self.patch(j);
            match op {
                BinOp::And => self.emit(Op::False),
                _ => self.emit(Op::True),
            };
            self.patch(end);
            return Ok(());
        }
        // `a > b` is `b < a`; CppNix evaluates the right operand of `//`
        // first (the op finds it below the left one).
        let (first, second) = match op {
            BinOp::Gt | BinOp::Le | BinOp::Update => (r, l),
            _ => (l, r),
        };
        let fs = self.here();
        self.expr(first)?;
        let ss = self.here();
        self.expr(second)?;
        self.span = span;
        // The frames of the operand evaluated first and second.
        let sides = match op {
            BinOp::Eq => Some((CtxMsg::EqLeft, CtxMsg::EqRight)),
            BinOp::Neq => Some((CtxMsg::NeqLeft, CtxMsg::NeqRight)),
            BinOp::Update => Some((CtxMsg::UpdateRight, CtxMsg::UpdateLeft)),
            BinOp::Concat => Some((CtxMsg::ConcatLeft, CtxMsg::ConcatRight)),
            _ => None,
        };
        if let Some((fm, sm)) = sides {
            // The operands' code, and their forcing by the op.
            let se = self.here();
            self.chunk().ctxs.push(ErrCtx {
                start: fs,
                end: ss,
                msg: fm,
                forced: None,
                except_forced: None,
                at: first.span(),
            });
            self.chunk().ctxs.push(ErrCtx {
                start: ss,
                end: se,
                msg: sm,
                forced: None,
                except_forced: None,
                at: second.span(),
            });
            let at = self.here();
            self.ctx_forced(at, 1, fm, first.span());
            self.ctx_forced(at, 0, sm, second.span());
        }
        match op {
            BinOp::Eq => self.emit(Op::Eq),
            BinOp::Neq => self.emit(Op::Neq),
            BinOp::Update => self.emit(Op::Update),
            BinOp::Concat => self.emit(Op::Concat),
            BinOp::Sub => self.emit(Op::Sub),
            BinOp::Mul => self.emit(Op::Mul),
            BinOp::Div => self.emit(Op::Div),
            BinOp::Lt | BinOp::Gt => self.emit(Op::Lt),
            BinOp::Le | BinOp::Ge => {
                self.emit(Op::Lt);
                // `a <= b` is CppNix's `!(b < a)`: both frames at the operator.
                self.ctx(fs, CtxMsg::CallLessThan, Some(span));
                self.emit(Op::Not);
                self.ctx(fs, CtxMsg::NotArg, Some(span));
                return Ok(());
            }
            BinOp::PipeInto | BinOp::PipeFrom => {
                // The parser turns pipes into calls; kept for completeness.
                self.emit(Op::Call)
            }
            BinOp::And | BinOp::Or | BinOp::Impl => unreachable!("handled above"),
        };
        // `-`, `*`, `/` and `<` are calls of builtins in CppNix: everything
        // their operands do happens inside the call.
        let call = match op {
            BinOp::Sub => Some(CtxMsg::CallSub),
            BinOp::Mul => Some(CtxMsg::CallMul),
            BinOp::Div => Some(CtxMsg::CallDiv),
            BinOp::Lt | BinOp::Gt => Some(CtxMsg::CallLessThan),
            _ => None,
        };
        if let Some(m) = call {
            self.ctx(fs, m, Some(span));
        }
        Ok(())
    }

    fn lambda(&mut self, l: &Lambda) -> Result<(), ParseErr> {
        let mut names = FxHashMap::default();
        let mut chunk = Chunk::new(ChunkKind::Lambda, self.file, l.span);
        chunk.name = l.name;
        let mut nslots: u16 = 0;
        if let Some(f) = &l.formals {
            for fm in &f.formals {
                names.insert(fm.name, nslots);
                nslots += 1;
            }
        }
        let at_slot = l.arg.map(|a| {
            names.insert(a, nslots);
            nslots += 1;
            nslots - 1
        });
        chunk.nslots = nslots;
        chunk.env_names.push((None, slot_names(&names)));
        self.chunks.push(chunk);
        self.scopes.push(Scope::Env(names));
        if let Some(f) = &l.formals {
            let mut specs = Vec::new();
            for fm in &f.formals {
                let default = match &fm.default {
                    Some(d) => {
                        self.lazy(d)?;
                        // The default was compiled as a push; turn the op
                        // into a constant reference the binder can use.
                        let op = self.chunk().code.pop().expect("lazy emitted");
                        self.chunk().spans.pop();
                        let c = match op {
                            Op::Thunk(c) | Op::Closure(c) | Op::Const(c) => c,
                            _ => {
                                // A local or an empty set: wrap it in a thunk.
                                self.thunk(d)?;
                                self.chunk().spans.pop();
                                match self.chunk().code.pop() {
                                    Some(Op::Thunk(c)) => c,
                                    _ => unreachable!("thunk emitted"),
                                }
                            }
                        };
                        Some(c)
                    }
                    None => None,
                };
                specs.push(FormalSpec {
                    name: fm.name,
                    default,
                    span: fm.span,
                });
            }
            let info = self.constant(Const::Formals(FormalsInfo {
                formals: specs,
                ellipsis: f.ellipsis,
                at_slot,
            }));
            self.span = l.span;
            self.emit(Op::BindFormals(info));
        }
        self.expr(&l.body)?;
        self.emit_force_return();
        self.scopes.pop();
        let chunk = self.chunks.pop().expect("lambda chunk");
        let c = self.constant(Const::Chunk(Rc::new(chunk)));
        self.span = l.span;
        self.emit(Op::Closure(c));
        Ok(())
    }

    /// Push the value of one attribute definition of a set or let whose
    /// scope is the innermost one. `inherit x` looks past that scope. Only a
    /// recursive scope (`rec`) can see its own, still unset, slots.
    fn attr_value(
        &mut self,
        d: &AttrDef,
        from_base: u16,
        inherit_skip: usize,
        rec: bool,
    ) -> Result<(), ParseErr> {
        self.span = d.span;
        match d.kind {
            AttrKind::Plain if rec => self.lazy_in_rec(&d.value),
            AttrKind::Plain => self.lazy(&d.value),
            AttrKind::Inherited => match self.resolve(d.name, inherit_skip) {
                Some(Resolved::Local(..)) => self.var(d.name, d.span, inherit_skip),
                Some(Resolved::Dyn(withs)) => {
                    // A `with`-bound inherit must stay lazy.
                    self.chunks
                        .push(Chunk::new(ChunkKind::Thunk, self.file, d.span));
                    let c = self.constant(Const::Withs(withs));
                    let c = self.u24(c);
                    self.emit(Op::Dyn(d.name, c));
                    self.emit_force_return();
                    let chunk = self.chunks.pop().expect("thunk chunk");
                    let c = self.constant(Const::Chunk(Rc::new(chunk)));
                    self.emit(Op::Thunk(c));
                    Ok(())
                }
                None => self.err(format!("undefined variable '{}'", d.name), d.span),
            },
            AttrKind::InheritedFrom(k) => {
                self.chunks
                    .push(Chunk::new(ChunkKind::Thunk, self.file, d.span));
                self.emit(Op::Local(0, from_base + k as u16));
                self.emit(Op::Select(d.name));
                self.emit_force_return();
                let chunk = self.chunks.pop().expect("thunk chunk");
                let c = self.constant(Const::Chunk(Rc::new(chunk)));
                self.emit(Op::Thunk(c));
                Ok(())
            }
        }
    }

    /// `let` and `rec { }`: one env holding every binding (and the
    /// `inherit (e)` sources after them), then `body` in that scope.
    fn rec_scope(
        &mut self,
        a: &AttrsExpr,
        body: impl FnOnce(&mut Self, &AttrsExpr) -> Result<(), ParseErr>,
    ) -> Result<(), ParseErr> {
        let n = a.attrs.len();
        let total = n + a.inherit_from.len();
        if total > u16::MAX as usize {
            return self.err("too many bindings".into(), a.span);
        }
        let mut names = FxHashMap::default();
        for (i, d) in a.attrs.iter().enumerate() {
            names.insert(d.name, i as u16);
        }
        self.span = a.span;
        let at = self.emit(Op::PushEnv(total as u16)) as u32;
        let listed = slot_names(&names);
        self.chunk().env_names.push((Some(at), listed));
        self.scopes.push(Scope::Env(names));
        for (k, from) in a.inherit_from.iter().enumerate() {
            self.lazy_in_rec(from)?;
            self.emit(Op::SetLocal((n + k) as u16));
        }
        for (i, d) in a.attrs.iter().enumerate() {
            self.attr_value(d, n as u16, 1, true)?;
            self.emit(Op::SetLocal(i as u16));
        }
        body(self, a)?;
        self.scopes.pop();
        self.emit(Op::PopEnv);
        Ok(())
    }

    fn attrs(&mut self, a: &AttrsExpr) -> Result<(), ParseErr> {
        let mut order: Vec<usize> = (0..a.attrs.len()).collect();
        order.sort_by_key(|&i| a.attrs[i].name);
        let syms: Vec<Symbol> = order.iter().map(|&i| a.attrs[i].name).collect();
        let spans: Vec<Span> = order.iter().map(|&i| a.attrs[i].span).collect();
        if a.rec {
            return self.rec_scope(a, |c, a| {
                for &i in &order {
                    c.emit(Op::Local(0, i as u16));
                }
                let s = c.constant(Const::AttrNames(syms, spans));
                c.span = a.span;
                c.emit(Op::MakeAttrs(s));
                c.dynamic_attrs(a)?;
                if a.find(Symbol::intern("__overrides")).is_some() {
                    let slots = c.constant(Const::Syms(a.attrs.iter().map(|d| d.name).collect()));
                    c.emit(Op::RecOverrides(slots));
                }
                Ok(())
            });
        }
        let holder = !a.inherit_from.is_empty();
        if holder {
            self.span = a.span;
            self.emit(Op::PushEnv(a.inherit_from.len() as u16));
            self.scopes.push(Scope::Env(FxHashMap::default()));
            for (k, from) in a.inherit_from.iter().enumerate() {
                self.lazy(from)?;
                self.emit(Op::SetLocal(k as u16));
            }
        }
        for &i in &order {
            self.attr_value(&a.attrs[i], 0, 0, false)?;
        }
        let s = self.constant(Const::AttrNames(syms, spans));
        self.span = a.span;
        self.emit(Op::MakeAttrs(s));
        self.dynamic_attrs(a)?;
        if holder {
            self.scopes.pop();
            self.emit(Op::PopEnv);
        }
        Ok(())
    }

    fn dynamic_attrs(&mut self, a: &AttrsExpr) -> Result<(), ParseErr> {
        for d in &a.dynamic {
            self.expr(&d.name)?;
            self.lazy(&d.value)?;
            self.span = d.span;
            self.emit(Op::AttrsDyn);
        }
        Ok(())
    }
}
