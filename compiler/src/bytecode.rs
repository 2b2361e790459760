//! A compiled file as bytes, for the on-disk bytecode cache (the VM owns
//! the cache's files and keys; this module owns the format).
//!
//! An entry is `MAGIC`, a CRC-32 of the rest (against damage: whoever can
//! write the cache could write any digest), then postcard of [`Entry`]: the
//! chunk tree, the parser's warnings, and the names of the symbols the
//! parse interned and the tree uses. Symbols are written as the ids of the
//! interner that wrote them, which mean nothing to another process, so
//! `decode` interns the names again (in the parse's order) and renumbers
//! every symbol of the tree. A chunk's `file` is the evaluator's index of its
//! source file, also per process: `decode` sets it. Anything that does not
//! check out (magic, digest, postcard, a symbol id outside the table) is
//! `None`, never a guess.

use crate::chunk::{Chunk, Const, Op};
use crate::parser::ParseErr;
use crate::symbol::Symbol;
use serde::{Deserialize, Serialize};
use std::rc::Rc;

const MAGIC: &[u8; 8] = b"nixvmbc2";

/// A hash of the compiler's sources (see build.rs): part of every cache
/// key, so that no other compiler's entry is ever read.
pub const FINGERPRINT: &str = env!("NIXVM_COMPILER_FINGERPRINT");

#[derive(Serialize, Deserialize)]
struct Entry {
    /// Ids of the writer's interner, in the order a parse of the file first
    /// interned them (see `symbol::recording`), then any others the tree uses.
    ids: Vec<u32>,
    /// Their names, in the order of `ids`: interned in this order on load,
    /// so that new names get their ids in the order a parse would give them.
    names: Vec<String>,
    warnings: Vec<ParseErr>,
    chunk: Rc<Chunk>,
}

/// The bytes of a compiled file, the warnings its parse gave and the
/// symbols its parse and compilation interned, in order (`symbol::recording`).
pub fn encode(chunk: &Rc<Chunk>, warnings: &[ParseErr], interned: &[Symbol]) -> Vec<u8> {
    let mut seen: rustc_hash::FxHashSet<u32> = interned.iter().map(|s| s.0).collect();
    let mut ids: Vec<u32> = interned.iter().map(|s| s.0).collect();
    let mut rest = Vec::new();
    each_symbol(chunk, &mut |s| {
        if seen.insert(s.0) {
            rest.push(s.0)
        }
    });
    rest.sort_unstable();
    ids.extend(rest);
    let names = ids.iter().map(|&i| Symbol(i).as_str().to_owned()).collect();
    let entry = Entry {
        ids,
        names,
        warnings: warnings.to_vec(),
        chunk: chunk.clone(),
    };
    let body = postcard::to_allocvec(&entry).expect("a chunk tree serializes");
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// The chunk tree (its chunks' `file` set to `file`) and the warnings of
/// bytes that `encode` wrote, or `None` if they are not such bytes.
pub fn decode(bytes: &[u8], file: u32) -> Option<(Rc<Chunk>, Vec<ParseErr>)> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (crc, body) = rest.split_first_chunk::<4>()?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let mut entry: Entry = postcard::from_bytes(body).ok()?;
    if entry.ids.len() != entry.names.len() {
        return None;
    }
    let ours: rustc_hash::FxHashMap<u32, Symbol> = (entry.ids.iter().copied())
        .zip(entry.names.iter().map(|n| Symbol::intern(n)))
        .collect();
    let mut ok = true;
    let chunk = Rc::get_mut(&mut entry.chunk)?;
    relink(chunk, file, &mut |s: &mut Symbol| match ours.get(&s.0) {
        Some(&o) => *s = o,
        None => ok = false,
    })?;
    ok.then_some((entry.chunk, entry.warnings))
}

/// `Chunk::code` as one byte string of 8-byte records (the opcode, a 32-bit
/// and a 24-bit operand): read with one check per op, where serde's derive
/// reads each variant and operand on its own (that was half of a load).
pub mod op_blob {
    use crate::chunk::{Op, U24};
    use serde::{Deserializer, Serializer};

    fn parts(op: &Op) -> (u32, u32) {
        let b = |u: U24| u.get();
        match *op {
            Op::Const(a)
            | Op::Thunk(a)
            | Op::Closure(a)
            | Op::MakeAttrs(a)
            | Op::MakeList(a)
            | Op::SelectDynOr(a)
            | Op::HasAttrStepDyn(a)
            | Op::Jump(a)
            | Op::JumpIfFalse(a)
            | Op::JumpIfTrue(a)
            | Op::Assert(a)
            | Op::BindFormals(a)
            | Op::RecOverrides(a) => (a, 0),
            Op::PushEnv(a) | Op::SetLocal(a) => (a as u32, 0),
            Op::Local(d, i) => (d as u32 | (i as u32) << 16, 0),
            Op::Select(s) | Op::HasAttr(s) => (s.0, 0),
            Op::Dyn(s, u) | Op::SelectOr(s, u) | Op::HasAttrStep(s, u) => (s.0, b(u)),
            Op::ConcatStrings(n, f) => (n, f as u32),
            Op::AssertEq(a, u) => (a, b(u)),
            _ => (0, 0),
        }
    }

    fn op(code: u8, a: u32, b: u32) -> Option<Op> {
        use crate::symbol::Symbol as S;
        let u = U24::new(b)?;
        let short = || u16::try_from(a).ok();
        Some(match code {
            0 => Op::Const(a),
            1 => Op::Null,
            2 => Op::True,
            3 => Op::False,
            4 => Op::Local(a as u16, (a >> 16) as u16),
            5 => Op::Dyn(S(a), u),
            6 => Op::Thunk(a),
            7 => Op::Closure(a),
            8 => Op::PushEnv(short()?),
            9 => Op::SetLocal(short()?),
            10 => Op::PopEnv,
            11 => Op::PushWith,
            12 => Op::MakeAttrs(a),
            13 => Op::AttrsDyn,
            14 => Op::MakeList(a),
            15 => Op::Select(S(a)),
            16 => Op::SelectOr(S(a), u),
            17 => Op::SelectDyn,
            18 => Op::SelectDynOr(a),
            19 => Op::HasAttrStep(S(a), u),
            20 => Op::HasAttr(S(a)),
            21 => Op::HasAttrStepDyn(a),
            22 => Op::HasAttrDyn,
            23 => Op::Call,
            24 => Op::Force,
            25 => Op::Return,
            26 => Op::Pop,
            27 => Op::Jump(a),
            28 => Op::JumpIfFalse(a),
            29 => Op::JumpIfTrue(a),
            30 => Op::AssertBool,
            31 => Op::Not,
            32 => Op::Add,
            33 => Op::Sub,
            34 => Op::Mul,
            35 => Op::Div,
            36 => Op::Eq,
            37 => Op::Neq,
            38 => Op::Lt,
            39 => Op::Concat,
            40 => Op::Update,
            41 if b <= 1 => Op::ConcatStrings(a, b == 1),
            42 => Op::Assert(a),
            43 => Op::AssertEq(a, u),
            44 => Op::BindFormals(a),
            45 => Op::RecOverrides(a),
            _ => return None,
        })
    }

    pub fn serialize<S: Serializer>(code: &[Op], s: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(code.len() * 8);
        for o in code {
            let (a, b) = parts(o);
            out.push(o.code() as u8);
            out.extend_from_slice(&a.to_le_bytes());
            out.extend_from_slice(&b.to_le_bytes()[..3]);
        }
        s.serialize_bytes(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Op>, D::Error> {
        let bytes: &[u8] = serde::Deserialize::deserialize(d)?;
        let bad = || serde::de::Error::custom("not an op");
        if !bytes.len().is_multiple_of(8) {
            return Err(bad());
        }
        (bytes.chunks_exact(8))
            .map(|r| {
                let a = u32::from_le_bytes([r[1], r[2], r[3], r[4]]);
                let b = u32::from_le_bytes([r[5], r[6], r[7], 0]);
                op(r[0], a, b).ok_or_else(bad)
            })
            .collect()
    }

    #[test]
    fn every_op_reads_back_as_written() {
        let s = crate::symbol::Symbol(70_000);
        let u = U24::new(0xabcdef).unwrap();
        let ops = [
            Op::Const(u32::MAX),
            Op::Local(65_535, 7),
            Op::Dyn(s, u),
            Op::PushEnv(65_535),
            Op::SetLocal(3),
            Op::Select(s),
            Op::SelectOr(s, u),
            Op::HasAttrStep(s, u),
            Op::HasAttr(s),
            Op::ConcatStrings(9, true),
            Op::ConcatStrings(9, false),
            Op::AssertEq(5, u),
            Op::Return,
        ];
        for o in ops {
            let (a, b) = parts(&o);
            assert_eq!(op(o.code() as u8, a, b), Some(o));
        }
        for code in 0..crate::chunk::Op::COUNT as u8 {
            let o = op(code, 1, 0).expect("every code");
            assert_eq!(o.code(), code as usize);
        }
        assert_eq!(op(Op::COUNT as u8, 0, 0), None);
        assert_eq!(op(41, 0, 2), None, "a flag is 0 or 1");
        assert_eq!(op(8, 1 << 16, 0), None, "a slot count is 16 bits");
    }
}

/// A nested chunk, read and written on a stack grown as needed: a tree is
/// as deep as the source's nesting (100,000 levels in tests), and serde
/// recurses once per level.
pub mod nested {
    use crate::chunk::Chunk;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::rc::Rc;

    pub fn serialize<S: Serializer>(c: &Rc<Chunk>, s: S) -> Result<S::Ok, S::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || c.serialize(s))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Rc<Chunk>, D::Error> {
        stacker::maybe_grow(64 * 1024, 1024 * 1024, || Rc::<Chunk>::deserialize(d))
    }
}

/// `Chunk::spans` as one byte string of (start, end) pairs.
pub mod span_blob {
    use crate::ast::Span;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(spans: &[Span], s: S) -> Result<S::Ok, S::Error> {
        let mut out = Vec::with_capacity(spans.len() * 8);
        for sp in spans {
            out.extend_from_slice(&sp.start.to_le_bytes());
            out.extend_from_slice(&sp.end.to_le_bytes());
        }
        s.serialize_bytes(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Span>, D::Error> {
        let bytes: &[u8] = serde::Deserialize::deserialize(d)?;
        if !bytes.len().is_multiple_of(8) {
            return Err(serde::de::Error::custom("not a span"));
        }
        Ok((bytes.chunks_exact(8))
            .map(|r| Span {
                start: u32::from_le_bytes([r[0], r[1], r[2], r[3]]),
                end: u32::from_le_bytes([r[4], r[5], r[6], r[7]]),
            })
            .collect())
    }
}

fn op_symbol(op: &Op) -> Option<Symbol> {
    op_symbol_mut(&mut { *op }).copied()
}

/// The symbol operand of an op, if it has one.
fn op_symbol_mut(op: &mut Op) -> Option<&mut Symbol> {
    match op {
        Op::Dyn(s, _)
        | Op::Select(s)
        | Op::SelectOr(s, _)
        | Op::HasAttrStep(s, _)
        | Op::HasAttr(s) => Some(s),
        _ => None,
    }
}

/// Every symbol of a chunk tree that the cache keeps (ops, constants).
fn each_symbol(c: &Chunk, f: &mut impl FnMut(Symbol)) {
    c.name.into_iter().for_each(&mut *f);
    c.code.iter().filter_map(op_symbol).for_each(&mut *f);
    for k in &c.consts {
        match k {
            Const::Chunk(inner) => {
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || each_symbol(inner, f))
            }
            Const::Syms(s) | Const::AttrNames(s, _) => s.iter().copied().for_each(&mut *f),
            Const::Formals(fi) => fi.formals.iter().for_each(|x| f(x.name)),
            Const::Int(_)
            | Const::Float(_)
            | Const::Str(_)
            | Const::Path(_)
            | Const::Withs(_)
            | Const::Text(_) => {}
        }
    }
}

/// `each_symbol`'s walk, renumbering each symbol with `f` and setting
/// each chunk's file; `None` if a nested chunk is shared (a fresh decode
/// owns every chunk alone).
fn relink(c: &mut Chunk, file: u32, f: &mut impl FnMut(&mut Symbol)) -> Option<()> {
    c.file = file;
    c.name.iter_mut().for_each(&mut *f);
    c.code
        .iter_mut()
        .filter_map(op_symbol_mut)
        .for_each(&mut *f);
    for k in &mut c.consts {
        match k {
            Const::Chunk(inner) => {
                let inner = Rc::get_mut(inner)?;
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || relink(inner, file, f))?
            }
            Const::Syms(s) | Const::AttrNames(s, _) => s.iter_mut().for_each(&mut *f),
            Const::Formals(fi) => fi.formals.iter_mut().for_each(|x| f(&mut x.name)),
            Const::Int(_)
            | Const::Float(_)
            | Const::Str(_)
            | Const::Path(_)
            | Const::Withs(_)
            | Const::Text(_) => {}
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parser::{parse, ParseOptions};
    use rustc_hash::FxHashMap;

    fn compile(src: &str) -> (Rc<Chunk>, Vec<ParseErr>) {
        let opts = ParseOptions {
            lint_url: crate::parser::LintLevel::Warn,
            ..Default::default()
        };
        let (ast, warnings) = parse(src, "t.nix", "/d", opts).expect("parses");
        let mut globals = FxHashMap::default();
        globals.insert(Symbol::intern("toString"), 0);
        let chunk = crate::compile_file(&ast, &globals, 7, src, "t.nix").unwrap();
        (chunk, warnings)
    }

    fn without_slot_names(c: &Chunk) -> Chunk {
        let mut c = c.clone();
        c.env_names.clear();
        for k in &mut c.consts {
            if let Const::Chunk(i) = k {
                *i = Rc::new(without_slot_names(i));
            }
        }
        c
    }

    fn listing(c: &Chunk) -> String {
        crate::disasm::disassemble(c)
    }

    const SRC: &str = r#"
        let f = { a, b ? a.x or 1, ... }@args: with args; a.y.z + b + c;
            s = rec { p = ./p; q = "s${toString p}"; inherit (s) t; r = 2.5; };
        in [ (f { a = { y.z = 1; }; c = 3; }) s.q (s ? r) http://u ]
    "#;

    #[test]
    fn a_decoded_tree_lists_as_the_compiled_one() {
        let (chunk, warnings) = compile(SRC);
        let bytes = encode(&chunk, &warnings, &[]);
        let (back, w2) = decode(&bytes, 7).expect("decodes");
        // The same ops, spans, error contexts and constants (symbols print
        // as their names); not the slot names of listings, which the cache
        // does not keep.
        let chunk = without_slot_names(&chunk);
        assert_eq!(listing(&back), listing(&chunk));
        assert_eq!(format!("{back:?}"), format!("{chunk:?}"));
        assert_eq!(w2, warnings);
        assert!(!warnings.is_empty(), "the URL literal warns");
    }

    #[test]
    fn symbols_are_renumbered_by_name_and_files_set() {
        let (chunk, warnings) = compile(SRC);
        let mut bytes = encode(&chunk, &warnings, &[]);
        // Another interner: rewrite the table's names to ones this thread
        // has not seen (same lengths), keeping the digest valid.
        let body_start = MAGIC.len() + 4;
        let mut entry: Entry = postcard::from_bytes(&bytes[body_start..]).unwrap();
        let renamed: Vec<String> = entry.names.iter().map(|n| format!("zz_{n}")).collect();
        entry.names = renamed;
        let body = postcard::to_allocvec(&entry).unwrap();
        bytes.truncate(MAGIC.len());
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let (back, _) = decode(&bytes, 3).unwrap();
        assert_eq!(back.file, 3);
        let mut seen = Vec::new();
        each_symbol(&back, &mut |s| seen.push(s.as_str()));
        assert!(seen.iter().all(|n| n.starts_with("zz_")), "{seen:?}");
        assert!(seen.contains(&"zz_a") && seen.contains(&"zz_y"), "{seen:?}");
    }

    #[test]
    fn damaged_bytes_are_refused_not_trusted() {
        let (chunk, warnings) = compile(SRC);
        let bytes = encode(&chunk, &warnings, &[]);
        assert!(decode(&bytes[..bytes.len() - 1], 0).is_none(), "truncated");
        assert!(decode(&bytes[..20], 0).is_none(), "cut in the digest");
        assert!(decode(b"", 0).is_none());
        for i in [0, 9, 45, bytes.len() / 2, bytes.len() - 1] {
            let mut b = bytes.clone();
            b[i] ^= 0x40;
            assert!(decode(&b, 0).is_none(), "byte {i} flipped");
        }
    }
}
