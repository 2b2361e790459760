//! Human-readable bytecode listings, used by `nixvm eval --dump-bytecode`
//! and by snapshot tests of the code generator.

use crate::chunk::{Chunk, ChunkKind, Const, Op};
use std::fmt::Write;

pub fn disassemble(chunk: &Chunk) -> String {
    let mut out = String::new();
    write_chunk(&mut out, chunk, "");
    out
}

fn write_chunk(out: &mut String, chunk: &Chunk, indent: &str) {
    let kind = match chunk.kind {
        ChunkKind::File => "file",
        ChunkKind::Thunk => "thunk",
        ChunkKind::Lambda => "lambda",
    };
    let _ = write!(out, "{indent}== {kind}");
    if let Some(n) = chunk.name {
        let _ = write!(out, " {n}");
    }
    if chunk.kind == ChunkKind::Lambda {
        let _ = write!(out, " (slots {})", chunk.nslots);
    }
    out.push('\n');
    for (i, op) in chunk.code.iter().enumerate() {
        let _ = write!(out, "{indent}{i:04} {}", show_op(op));
        match op {
            Op::Const(c) | Op::Assert(c) | Op::AssertEq(c, _) => {
                let _ = write!(out, "  ; {}", show_const(&chunk.consts[*c as usize]));
            }
            Op::MakeAttrs(c) | Op::BindFormals(c) => {
                let _ = write!(out, "  ; {}", show_const(&chunk.consts[*c as usize]));
            }
            Op::Dyn(_, c) => {
                let _ = write!(out, "  ; {}", show_const(&chunk.consts[c.get() as usize]));
            }
            _ => {}
        }
        out.push('\n');
    }
    let nested = format!("{indent}  ");
    for c in &chunk.consts {
        if let Const::Chunk(ch) = c {
            write_chunk(out, ch, &nested);
        }
    }
}

fn show_op(op: &Op) -> String {
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
