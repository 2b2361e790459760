//! Thunk elision. When a thunk's code is a short straight line of variable
//! reads, constants, attribute selections and integer arithmetic, and every
//! value it reads is already evaluated, running it at once gives the value
//! forcing it later would give, with no side effects and no chance of
//! non-termination. Then there is no need to allocate the thunk, nor to push
//! and pop a frame when it is forced. Whenever the outcome is not certain
//! (an operand is still a thunk, a type does not fit, an attribute is
//! missing, arithmetic overflows) the attempt is abandoned and the thunk is
//! made as usual, so errors and their traces are unchanged.

use crate::env::Env;
use crate::value::{Owned, View};
use crate::value::{Proto, Value};
use nixvm_compiler::chunk::Op;

/// Longest code worth trying; longer thunks rarely succeed and cost more to try.
const MAX_OPS: usize = 8;

/// Whether the code of a thunk chunk is of the shape `run` can handle.
pub fn eligible(code: &[Op]) -> bool {
    code.len() <= MAX_OPS
        && matches!(code.last(), Some(Op::Return))
        && code.iter().all(|op| {
            matches!(
                op,
                Op::Const(_)
                    | Op::Null
                    | Op::True
                    | Op::False
                    | Op::Local(..)
                    | Op::Select(_)
                    | Op::Add
                    | Op::Sub
                    | Op::Mul
                    | Op::Lt
                    | Op::Force
                    | Op::Return
            )
        })
}

/// The value the thunk of `proto` in `env` would have, if that is certain
/// without evaluating anything else. The result may be another, unforced
/// thunk (an attribute's value): forcing it is then what forcing ours
/// would have done.
pub fn run(proto: &Proto, env: &Env) -> Option<Value> {
    let mut stack: [Value; MAX_OPS] = std::array::from_fn(|_| Value::Null);
    let mut sp = 0usize;
    // A value an operation needs in normal form: evaluated, or give up.
    fn evaluated(v: &Value) -> Option<Value> {
        match &v.view() {
            View::Thunk(t) => t.done(),
            other => Some(other.to_value()),
        }
    }
    let code = &proto.code();
    for (ip, op) in code.iter().enumerate() {
        match *op {
            Op::Const(c) => {
                let v = proto.consts()[c as usize].value()?;
                stack[sp] = v.clone();
                sp += 1;
            }
            Op::Null => {
                stack[sp] = Value::Null;
                sp += 1;
            }
            Op::True | Op::False => {
                stack[sp] = Value::Bool(matches!(op, Op::True));
                sp += 1;
            }
            Op::Local(depth, idx) => {
                let mut e = env;
                for _ in 0..depth {
                    e = e.parent()?;
                }
                if idx as usize >= e.len() {
                    return None;
                }
                // A `let` or `rec` scope is built slot by slot and its unset slots
                // hold null: a null may be a binding that does not exist yet.
                let v = e.get(idx as usize);
                if matches!(v.view(), View::Null) {
                    return None;
                }
                stack[sp] = v;
                sp += 1;
            }
            Op::Select(sym) => {
                let Owned::Attrs(a) = evaluated(&stack[sp.checked_sub(1)?])?.unpack() else {
                    return None;
                };
                stack[sp - 1] = a.get(sym)?.clone();
            }
            Op::Add | Op::Sub | Op::Mul | Op::Lt => {
                if sp < 2 {
                    return None;
                }
                let (Owned::Int(x), Owned::Int(y)) = (
                    evaluated(&stack[sp - 2])?.unpack(),
                    evaluated(&stack[sp - 1])?.unpack(),
                ) else {
                    return None;
                };
                sp -= 1;
                stack[sp - 1] = match op {
                    Op::Add => Value::Int(x.checked_add(y)?),
                    Op::Sub => Value::Int(x.checked_sub(y)?),
                    Op::Mul => Value::Int(x.checked_mul(y)?),
                    _ => Value::Bool(x < y),
                };
            }
            // Forcing the result just before returning it is what forcing our
            // thunk does anyway; anywhere else it would need evaluation.
            Op::Force => {
                if !matches!(code.get(ip + 1), Some(Op::Return)) {
                    evaluated(&stack[sp.checked_sub(1)?])?;
                }
            }
            Op::Return => {
                return if sp == 1 {
                    Some(std::mem::replace(&mut stack[0], Value::Null))
                } else {
                    None
                };
            }
            _ => return None,
        }
    }
    None
}
