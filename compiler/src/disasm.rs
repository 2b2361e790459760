//! Human-readable bytecode listings, used by `nixvm instantiate
//! --dump-bytecode`, `--trace-ops` and by snapshot tests of the code
//! generator. Each op shows its source line (clox style: `|` while the line
//! does not change) and what it names: a local slot's variable, a
//! constant's value. Nested chunks are numbered by their path of constant
//! indices (`#2.0` is constant 0 of constant 2 of the file), so the chunk a
//! `Thunk(2)` makes can be found.

use crate::chunk::{Chunk, ChunkKind, Const, Op};
use crate::symbol::Symbol;
use rustc_hash::FxHashMap;
use std::fmt::Write;

/// What a listing knows beyond the chunk: the line of a byte offset in the
/// source (the caller's line table: a listing asks once per op) and the
/// names of the root env's slots (the global builtins).
#[derive(Default)]
pub struct Context<'a> {
    pub line: Option<&'a dyn Fn(u32) -> usize>,
    pub globals: Option<&'a FxHashMap<Symbol, u16>>,
}

/// A listing of `chunk` without source lines or global names.
pub fn disassemble(chunk: &Chunk) -> String {
    disassemble_with(chunk, &Context::default())
}

pub fn disassemble_with(chunk: &Chunk, cx: &Context) -> String {
    let globals = cx.globals.map(|g| {
        let mut v = vec![None; g.values().map(|&i| i as usize + 1).max().unwrap_or(0)];
        for (&s, &i) in g {
            v[i as usize] = Some(s);
        }
        v
    });
    let mut out = String::new();
    let mut w = Writer {
        out: &mut out,
        line: cx.line,
        globals: globals.as_deref(),
    };
    w.chunk(chunk, "", &[], &[Scope::Globals]);
    out
}

/// One env level as the listing tracks it while it walks a chunk's ops.
#[derive(Clone)]
enum Scope<'c> {
    Globals,
    With,
    Env(&'c [Symbol]),
}

struct Writer<'o, 'a> {
    out: &'o mut String,
    line: Option<&'a dyn Fn(u32) -> usize>,
    globals: Option<&'a [Option<Symbol>]>,
}

impl Writer<'_, '_> {
    fn chunk<'c>(&mut self, chunk: &'c Chunk, indent: &str, path: &[u32], outer: &[Scope<'c>]) {
        let kind = match chunk.kind {
            ChunkKind::File => "file",
            ChunkKind::Thunk => "thunk",
            ChunkKind::Lambda => "lambda",
        };
        let _ = write!(self.out, "{indent}== ");
        if !path.is_empty() {
            let p: Vec<String> = path.iter().map(|i| i.to_string()).collect();
            let _ = write!(self.out, "#{} ", p.join("."));
        }
        let _ = write!(self.out, "{kind}");
        if let Some(n) = chunk.name {
            let _ = write!(self.out, " {n}");
        }
        if chunk.kind == ChunkKind::Lambda {
            let _ = write!(self.out, " (slots {})", chunk.nslots);
        }
        self.out.push('\n');
        let names_at = |at: Option<u32>| -> &'c [Symbol] {
            (chunk.env_names.iter())
                .find(|(i, _)| *i == at)
                .map(|(_, n)| n.as_slice())
                .unwrap_or(&[])
        };
        let mut scopes: Vec<Scope<'c>> = outer.to_vec();
        if chunk.kind == ChunkKind::Lambda {
            scopes.push(Scope::Env(names_at(None)));
        }
        let base = scopes.clone();
        // The scopes each nested chunk starts in: where its Thunk/Closure op
        // is; a formal's default (made by BindFormals) runs in the call env.
        let mut nested: FxHashMap<u32, Vec<Scope<'c>>> = FxHashMap::default();
        let mut last_line = 0;
        for (i, op) in chunk.code.iter().enumerate() {
            let _ = write!(self.out, "{indent}{i:04} ");
            if let Some(line_of) = self.line {
                match chunk.spans.get(i).map(|s| line_of(s.start)) {
                    Some(l) if l != last_line => {
                        let _ = write!(self.out, "{l:4} ");
                        last_line = l;
                    }
                    _ => self.out.push_str("   | "),
                }
            }
            let _ = write!(self.out, "{}", show_op(op));
            let note = match op {
                Op::Const(c)
                | Op::Assert(c)
                | Op::AssertEq(c, _)
                | Op::MakeAttrs(c)
                | Op::BindFormals(c) => Some(show_const(&chunk.consts[*c as usize])),
                Op::Dyn(_, c) => Some(show_const(&chunk.consts[c.get() as usize])),
                Op::Local(d, s) => Some(self.slot_name(&scopes, *d as usize, *s as usize)),
                Op::SetLocal(s) => Some(self.slot_name(&scopes, 0, *s as usize)),
                _ => None,
            };
            if let Some(n) = note {
                let _ = write!(self.out, "  ; {n}");
            }
            self.out.push('\n');
            match op {
                Op::PushEnv(_) => scopes.push(Scope::Env(names_at(Some(i as u32)))),
                Op::PushWith => scopes.push(Scope::With),
                Op::PopEnv => {
                    scopes.pop();
                }
                Op::Thunk(c) | Op::Closure(c) => {
                    nested.insert(*c, scopes.clone());
                }
                _ => {}
            }
        }
        let inner = format!("{indent}  ");
        for (k, c) in chunk.consts.iter().enumerate() {
            if let Const::Chunk(ch) = c {
                let mut p = path.to_vec();
                p.push(k as u32);
                let outer = nested.get(&(k as u32)).unwrap_or(&base);
                self.chunk(ch, &inner, &p, outer);
            }
        }
    }

    /// What slot `slot` of the env `depth` levels up holds.
    fn slot_name(&self, scopes: &[Scope], depth: usize, slot: usize) -> String {
        let Some(scope) = scopes.len().checked_sub(depth + 1).map(|i| &scopes[i]) else {
            return "?".into();
        };
        match scope {
            Scope::Globals => match self.globals.and_then(|g| g.get(slot).copied().flatten()) {
                Some(s) => format!("global {s}"),
                None => format!("global #{slot}"),
            },
            Scope::With => "with scope".into(),
            Scope::Env(names) => match names.get(slot) {
                Some(s) => s.to_string(),
                None => format!("inherit source #{}", slot - names.len()),
            },
        }
    }
}

/// One op with its operands (names shown by name).
pub fn show_op(op: &Op) -> String {
    match op {
        Op::Select(s) => format!("Select {}", s),
        Op::SelectOr(s, t) => format!("SelectOr {} -> {}", s, t),
        Op::HasAttrStep(s, t) => format!("HasAttrStep {} -> {}", s, t),
        Op::HasAttr(s) => format!("HasAttr {}", s),
        Op::Dyn(s, _) => format!("Dyn {}", s),
        other => format!("{:?}", other),
    }
}

fn show_const(c: &Const) -> String {
    match c {
        Const::Int(n) => n.to_string(),
        Const::Float(f) => f.to_string(),
        Const::Str(s) => format!("{:?}", s),
        Const::Path(p) => p.clone(),
        Const::Chunk(_) => "<chunk>".into(),
        Const::Stored(at) => format!("<stored chunk @{at}>"),
        Const::Syms(s) => format!("{:?}", s),
        Const::AttrNames(s, _) => format!("{:?}", s),
        Const::Withs(w) => format!("withs {:?}", w),
        Const::Formals(f) => {
            let names: Vec<String> = f.formals.iter().map(|x| x.name.to_string()).collect();
            format!(
                "{{ {}{} }}",
                names.join(", "),
                if f.ellipsis { ", ..." } else { "" }
            )
        }
        Const::Text(t) => format!("{:?}", t),
    }
}
