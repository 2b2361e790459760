//! The observer hook: what the interpreter tells an onlooker while it runs.
//! The loop is compiled twice (`run_inner::<true>` and `::<false>`), and the
//! observing copy is entered only while `Vm::observer` is set, so an
//! evaluation nobody watches pays nothing for the hook.
//!
//! Two observers come with the VM: `OpStats` (the op histogram, the pairs
//! of ops that follow each other in a chunk, builtin call counts, for
//! `--stats` and for choosing superinstructions) and `TraceOps` (every op
//! with its place in the source, for `--trace-ops`).

use crate::value::Proto;
use nixvm_compiler::chunk::{Op, OP_NAMES};
use rustc_hash::FxHashMap;
use std::io::Write;

pub trait Observer {
    /// Op `op`, at index `ip` of `proto`, is about to run with `frames`
    /// frames active and `stack` values on the stack.
    fn op(&mut self, proto: &Proto, ip: usize, op: Op, frames: usize, stack: usize);
    /// A builtin is called (with all its arguments).
    fn builtin(&mut self, _name: &str) {}
    /// What the observer counted, as a JSON object (for `--stats`).
    fn json(&self) -> Option<String> {
        None
    }
}

/// Op and builtin counts.
pub struct OpStats {
    ops: [u64; Op::COUNT],
    /// `pairs[a][b]`: op `b` ran right after op `a` in the same chunk.
    pairs: Box<[[u64; Op::COUNT]; Op::COUNT]>,
    /// The op that ran last: its chunk, index and code.
    last: (usize, usize, usize),
    builtins: FxHashMap<String, u64>,
}

impl Default for OpStats {
    fn default() -> OpStats {
        OpStats {
            ops: [0; Op::COUNT],
            pairs: Box::new([[0; Op::COUNT]; Op::COUNT]),
            last: (0, usize::MAX, 0),
            builtins: FxHashMap::default(),
        }
    }
}

impl OpStats {
    /// Each opcode's count, most frequent first.
    pub fn ops(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = (0..Op::COUNT)
            .filter(|&i| self.ops[i] > 0)
            .map(|i| (OP_NAMES[i], self.ops[i]))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// The `n` most frequent pairs of consecutive ops.
    pub fn pairs(&self, n: usize) -> Vec<(&'static str, &'static str, u64)> {
        let mut v = Vec::new();
        for (row, a) in self.pairs.iter().zip(OP_NAMES) {
            for (&n, b) in row.iter().zip(OP_NAMES) {
                if n > 0 {
                    v.push((a, b, n));
                }
            }
        }
        v.sort_by(|x, y| y.2.cmp(&x.2).then((x.0, x.1).cmp(&(y.0, y.1))));
        v.truncate(n);
        v
    }

    pub fn builtins(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<_> = self
            .builtins
            .iter()
            .map(|(k, &n)| (k.as_str(), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

impl Observer for OpStats {
    #[inline]
    fn op(&mut self, proto: &Proto, ip: usize, op: Op, _frames: usize, _stack: usize) {
        let code = op.code();
        self.ops[code] += 1;
        let chunk = proto as *const Proto as usize;
        let (lc, lip, lcode) = self.last;
        if lc == chunk && lip.wrapping_add(1) == ip {
            self.pairs[lcode][code] += 1;
        }
        self.last = (chunk, ip, code);
    }

    fn builtin(&mut self, name: &str) {
        *self.builtins.entry(name.to_string()).or_default() += 1;
    }

    fn json(&self) -> Option<String> {
        let ops: Vec<String> = (self.ops().iter())
            .map(|(n, c)| format!("\"{n}\":{c}"))
            .collect();
        let pairs: Vec<String> = (self.pairs(40).iter())
            .map(|(a, b, c)| format!("[\"{a}\",\"{b}\",{c}]"))
            .collect();
        let builtins: Vec<String> = (self.builtins().iter())
            // Builtin names are identifiers: Rust's quoting is JSON's for them.
            .map(|(n, c)| format!("{n:?}:{c}"))
            .collect();
        Some(format!(
            "{{\"ops\":{{{}}},\"opPairs\":[{}],\"builtinCalls\":{{{}}}}}",
            ops.join(","),
            pairs.join(","),
            builtins.join(",")
        ))
    }
}

/// Writes every op as it runs: indented by frame depth, with its file and
/// line, its index in the chunk and the stack's depth.
pub struct TraceOps<W: Write> {
    out: W,
}

impl<W: Write> TraceOps<W> {
    pub fn new(out: W) -> TraceOps<W> {
        TraceOps { out }
    }
}

impl<W: Write> Observer for TraceOps<W> {
    fn op(&mut self, proto: &Proto, ip: usize, op: Op, frames: usize, stack: usize) {
        let line = proto
            .span_at(ip)
            .map(|s| proto.source.line_col(s.start).0)
            .unwrap_or(0);
        let indent = frames.min(40);
        let _ = writeln!(
            self.out,
            "{:indent$}{}:{line} {ip:04} {}  [stack {stack}]",
            "",
            proto.source.name,
            nixvm_compiler::disasm::show_op(&op),
        );
    }

    fn builtin(&mut self, name: &str) {
        let _ = writeln!(self.out, "  builtin {name}");
    }
}
