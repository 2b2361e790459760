//! A compiled file as bytes, for the on-disk bytecode cache (the VM owns
//! the cache's files and keys; this module owns the format).
//!
//! An entry is `MAGIC`, a CRC-32 of the rest (against damage: whoever can
//! write the cache could write any digest), then a postcard [`Header`] (the
//! names of the symbols the file uses, the parser's warnings, where the root
//! chunk is) and the chunk records. Each chunk is a record of its own and
//! names its nested chunks by their offsets, so that a reader decodes a
//! chunk only when it is needed: NixOS minimal makes a thunk or closure of
//! 10,000 of the 307,000 chunks of the files it reads, and decoding and
//! linking all of them was an eighth of its time. A record comes after the
//! records of its nested chunks, so an offset always points back and a
//! damaged entry cannot make a cycle.
//!
//! Symbols are written as indices into the header's names, which `decode`
//! interns in the order a parse of the file first interned them (see
//! `symbol::recording`), so that new names get the ids a parse would give
//! them. A chunk's `file` is the evaluator's index of its source file, set
//! when it is decoded. Anything that does not check out (magic, digest,
//! postcard, a symbol or constant index out of range, a jump outside the
//! chunk) is `None`, never a guess.

use crate::ast::Span;
use crate::chunk::{Chunk, ChunkKind, Const, ErrCtx, FormalSpec, FormalsInfo, Op};
use crate::parser::ParseErr;
use crate::symbol::Symbol;
use crate::varint::{get as get_varint, put as put_varint};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

const MAGIC: &[u8; 8] = b"nixvmbc3";

/// A hash of the compiler's sources (see build.rs): part of every cache
/// key, so that no other compiler's entry is ever read.
pub const FINGERPRINT: &str = env!("NIXVM_COMPILER_FINGERPRINT");

#[derive(Serialize, Deserialize)]
struct Header<'a> {
    /// Symbols, in the order a parse of the file first interned them, then
    /// any others the chunks use.
    #[serde(borrow)]
    names: Vec<&'a str>,
    warnings: Vec<ParseErr>,
    /// The root chunk's offset among the records.
    root: u32,
}

/// A byte string (serde writes a `&[u8]` as a sequence of numbers).
#[derive(Deserialize)]
#[serde(transparent)]
struct Bytes<'a>(#[serde(borrow)] &'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// A chunk as stored: symbols are indices into the header's names.
#[derive(Serialize, Deserialize)]
struct Record<'a> {
    kind: ChunkKind,
    name: Option<u32>,
    span: Span,
    nslots: u16,
    /// Per op: its code, then its operands as variable-length integers.
    #[serde(borrow)]
    code: Bytes<'a>,
    /// Per op: the distance of its span's start from the previous one's
    /// (zigzag) and its length, as variable-length integers.
    #[serde(borrow)]
    spans: Bytes<'a>,
    #[serde(borrow)]
    consts: Vec<ConstRecord<'a>>,
    ctxs: Vec<ErrCtx>,
    part_spans: Vec<(u32, Span)>,
}

#[derive(Serialize, Deserialize)]
enum ConstRecord<'a> {
    Int(i64),
    Float(f64),
    Str(&'a str),
    Path(&'a str),
    /// A nested chunk: the offset of its record.
    Chunk(u32),
    Syms(Vec<u32>),
    AttrNames(Vec<u32>, Vec<Span>),
    Withs(Vec<u16>),
    /// Formals (name, default's constant, span), `...`, the `@` slot.
    Formals(Vec<(u32, Option<u32>, Span)>, bool, Option<u16>),
    Text(&'a str),
}

/// The bytes of a compiled file, the warnings its parse gave and the
/// symbols its parse and compilation interned, in order (`symbol::recording`).
/// The tree is one `compile_file` made: it has no `Const::Stored`.
pub fn encode(chunk: &Chunk, warnings: &[ParseErr], interned: &[Symbol]) -> Vec<u8> {
    let mut index: FxHashMap<Symbol, u32> = FxHashMap::default();
    let mut order: Vec<Symbol> = Vec::new();
    for &s in interned {
        index.entry(s).or_insert_with(|| {
            order.push(s);
            order.len() as u32 - 1
        });
    }
    let mut rest = Vec::new();
    each_symbol(chunk, &mut |s| {
        if let std::collections::hash_map::Entry::Vacant(e) = index.entry(s) {
            e.insert(u32::MAX);
            rest.push(s);
        }
    });
    rest.sort_unstable();
    for s in rest {
        index.insert(s, order.len() as u32);
        order.push(s);
    }
    let mut enc = Encoder {
        index: &index,
        out: Vec::new(),
    };
    let root = enc.chunk(chunk);
    let names: Vec<&str> = order.iter().map(|s| s.as_str()).collect();
    let header = Header {
        names,
        warnings: warnings.to_vec(),
        root,
    };
    let mut body = postcard::to_allocvec(&header).expect("a header serializes");
    body.extend_from_slice(&enc.out);
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

struct Encoder<'i> {
    index: &'i FxHashMap<Symbol, u32>,
    out: Vec<u8>,
}

impl Encoder<'_> {
    /// Write `c`'s nested chunks, then `c`; the offset of `c`'s record.
    fn chunk(&mut self, c: &Chunk) -> u32 {
        let sym = |s: &Symbol| self.index[s];
        let mut consts = Vec::with_capacity(c.consts.len());
        for k in &c.consts {
            consts.push(match k {
                // Chunks nest as deeply as the source (100,000 levels in
                // tests): grow the stack as needed.
                Const::Chunk(inner) => {
                    ConstRecord::Chunk(stacker::maybe_grow(64 * 1024, 1024 * 1024, || {
                        self.chunk(inner)
                    }))
                }
                Const::Int(n) => ConstRecord::Int(*n),
                Const::Float(f) => ConstRecord::Float(*f),
                Const::Str(s) => ConstRecord::Str(s),
                Const::Path(p) => ConstRecord::Path(p),
                Const::Syms(s) => ConstRecord::Syms(s.iter().map(sym).collect()),
                Const::AttrNames(s, sp) => {
                    ConstRecord::AttrNames(s.iter().map(sym).collect(), sp.clone())
                }
                Const::Withs(w) => ConstRecord::Withs(w.clone()),
                Const::Formals(f) => ConstRecord::Formals(
                    (f.formals.iter())
                        .map(|x| (sym(&x.name), x.default, x.span))
                        .collect(),
                    f.ellipsis,
                    f.at_slot,
                ),
                Const::Text(t) => ConstRecord::Text(t),
                Const::Stored(_) => unreachable!("a compiled tree has no stored chunks"),
            });
        }
        let mut code = Vec::with_capacity(c.code.len() * 3);
        for op in &c.code {
            let (a, b) = ops::parts(op, |s| self.index[&s]);
            code.push(op.code() as u8);
            let n = ops::ARITY[op.code()];
            if n > 0 {
                put_varint(&mut code, a);
            }
            if n > 1 {
                put_varint(&mut code, b);
            }
        }
        let mut spans = Vec::with_capacity(c.spans.len() * 3);
        let mut prev = 0u32;
        for s in &c.spans {
            let d = s.start.wrapping_sub(prev) as i32;
            put_varint(&mut spans, ((d << 1) ^ (d >> 31)) as u32);
            put_varint(&mut spans, s.end.wrapping_sub(s.start));
            prev = s.start;
        }
        let rec = Record {
            kind: c.kind,
            name: c.name.as_ref().map(sym),
            span: c.span,
            nslots: c.nslots,
            code: Bytes(&code),
            spans: Bytes(&spans),
            consts,
            ctxs: c.ctxs.clone(),
            part_spans: c.part_spans.clone(),
        };
        let at = u32::try_from(self.out.len()).expect("an entry under 4 GiB");
        self.out =
            postcard::to_extend(&rec, std::mem::take(&mut self.out)).expect("a record serializes");
        at
    }
}

/// A decoded entry: its chunks still as bytes, each decoded on demand.
pub struct Stored {
    bytes: Vec<u8>,
    /// Where the records start in `bytes`.
    records: usize,
    syms: Box<[Symbol]>,
}

impl Stored {
    /// The chunk whose record is at `at`, its `file` set to `file`; its
    /// nested chunks are `Const::Stored` offsets. `None` if the record does
    /// not check out.
    pub fn chunk(&self, at: u32, file: u32) -> Option<Chunk> {
        let recs = &self.bytes[self.records..];
        let (rec, _) = postcard::take_from_bytes::<Record>(recs.get(at as usize..)?).ok()?;
        let sym = |i: u32| self.syms.get(i as usize).copied();
        let syms = |v: Vec<u32>| v.into_iter().map(sym).collect::<Option<Vec<_>>>();
        let mut consts = Vec::with_capacity(rec.consts.len());
        for k in rec.consts {
            consts.push(match k {
                // Nested records come first: no cycles.
                ConstRecord::Chunk(c) if c < at => Const::Stored(c),
                ConstRecord::Chunk(_) => return None,
                ConstRecord::Int(n) => Const::Int(n),
                ConstRecord::Float(f) => Const::Float(f),
                ConstRecord::Str(s) => Const::Str(s.to_owned()),
                ConstRecord::Path(p) => Const::Path(p.to_owned()),
                ConstRecord::Syms(s) => Const::Syms(syms(s)?),
                ConstRecord::AttrNames(s, sp) if s.len() == sp.len() => {
                    Const::AttrNames(syms(s)?, sp)
                }
                ConstRecord::AttrNames(..) => return None,
                ConstRecord::Withs(w) => Const::Withs(w),
                ConstRecord::Formals(f, ellipsis, at_slot) => Const::Formals(FormalsInfo {
                    formals: (f.into_iter())
                        .map(|(name, default, span)| {
                            Some(FormalSpec {
                                name: sym(name)?,
                                default,
                                span,
                            })
                        })
                        .collect::<Option<_>>()?,
                    ellipsis,
                    at_slot,
                }),
                ConstRecord::Text(t) => Const::Text(t.to_owned()),
            });
        }
        let code = ops::read(rec.code.0, &sym)?;
        let spans = read_spans(rec.spans.0, code.len())?;
        if !ops::operands_ok(&code, &consts) {
            return None;
        }
        // Error contexts and operand spans name ops of this chunk.
        let n = code.len() as u32;
        let ctxs_ok = (rec.ctxs.iter()).all(|c| c.start <= c.end && c.end <= n);
        if !ctxs_ok || rec.part_spans.iter().any(|&(op, _)| op >= n) {
            return None;
        }
        Some(Chunk {
            kind: rec.kind,
            name: match rec.name {
                Some(i) => Some(sym(i)?),
                None => None,
            },
            file,
            span: rec.span,
            code,
            spans,
            consts,
            nslots: rec.nslots,
            ctxs: rec.ctxs,
            part_spans: rec.part_spans,
            env_names: Vec::new(),
        })
    }

    /// The bytes it holds.
    pub fn size(&self) -> usize {
        self.bytes.capacity() + self.syms.len() * std::mem::size_of::<Symbol>()
    }
}

/// The entry in `bytes[start..]` (as `encode` wrote it): its chunks, its
/// root chunk (`file` set to `file`) and its parse's warnings; `None` if
/// they are not such bytes.
pub fn decode(bytes: Vec<u8>, start: usize, file: u32) -> Option<(Stored, Chunk, Vec<ParseErr>)> {
    let rest = bytes.get(start..)?.strip_prefix(MAGIC.as_slice())?;
    let (crc, body) = rest.split_first_chunk::<4>()?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return None;
    }
    let (header, recs) = postcard::take_from_bytes::<Header>(body).ok()?;
    let syms: Box<[Symbol]> = header.names.iter().map(|n| Symbol::intern(n)).collect();
    let (warnings, root) = (header.warnings, header.root);
    let records = bytes.len() - recs.len();
    let stored = Stored {
        bytes,
        records,
        syms,
    };
    let chunk = stored.chunk(root, file)?;
    Some((stored, chunk, warnings))
}

fn read_spans(b: &[u8], ops: usize) -> Option<Vec<Span>> {
    let mut spans = Vec::with_capacity(ops);
    let (mut at, mut prev) = (0, 0u32);
    while at < b.len() {
        let z = get_varint(b, &mut at)?;
        let d = ((z >> 1) as i32) ^ -((z & 1) as i32);
        let start = prev.wrapping_add(d as u32);
        // The inverse of the encoder's wrapping difference.
        let end = start.wrapping_add(get_varint(b, &mut at)?);
        spans.push(Span { start, end });
        prev = start;
    }
    (spans.len() == ops).then_some(spans)
}

/// Ops as records: the opcode, then up to two operands.
mod ops {
    use super::{get_varint, Const};
    use crate::chunk::{Op, U24};
    use crate::symbol::Symbol;

    /// How many operands each opcode's record carries.
    pub const ARITY: [u8; Op::COUNT] = {
        let mut a = [0u8; Op::COUNT];
        let one = [
            0, 4, 6, 7, 8, 9, 12, 14, 15, 18, 20, 21, 27, 28, 29, 42, 44, 45,
        ];
        let two = [5, 16, 19, 41, 43];
        let mut i = 0;
        while i < one.len() {
            a[one[i]] = 1;
            i += 1;
        }
        i = 0;
        while i < two.len() {
            a[two[i]] = 2;
            i += 1;
        }
        a
    };

    /// An op's operands as numbers, its symbol written by `sym`.
    pub fn parts(op: &Op, sym: impl Fn(Symbol) -> u32) -> (u32, u32) {
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
            Op::Select(s) | Op::HasAttr(s) => (sym(s), 0),
            Op::Dyn(s, u) | Op::SelectOr(s, u) | Op::HasAttrStep(s, u) => (sym(s), b(u)),
            Op::ConcatStrings(n, f) => (n, f as u32),
            Op::AssertEq(a, u) => (a, b(u)),
            _ => (0, 0),
        }
    }

    /// The op of `parts`, its symbol read by `sym`.
    pub fn op(code: u8, a: u32, b: u32, sym: impl Fn(u32) -> Option<Symbol>) -> Option<Op> {
        let u = U24::new(b)?;
        let short = || u16::try_from(a).ok();
        Some(match code {
            0 => Op::Const(a),
            1 => Op::Null,
            2 => Op::True,
            3 => Op::False,
            4 => Op::Local(a as u16, (a >> 16) as u16),
            5 => Op::Dyn(sym(a)?, u),
            6 => Op::Thunk(a),
            7 => Op::Closure(a),
            8 => Op::PushEnv(short()?),
            9 => Op::SetLocal(short()?),
            10 => Op::PopEnv,
            11 => Op::PushWith,
            12 => Op::MakeAttrs(a),
            13 => Op::AttrsDyn,
            14 => Op::MakeList(a),
            15 => Op::Select(sym(a)?),
            16 => Op::SelectOr(sym(a)?, u),
            17 => Op::SelectDyn,
            18 => Op::SelectDynOr(a),
            19 => Op::HasAttrStep(sym(a)?, u),
            20 => Op::HasAttr(sym(a)?),
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

    /// The ops of a record's code bytes.
    pub fn read(b: &[u8], sym: &impl Fn(u32) -> Option<Symbol>) -> Option<Vec<Op>> {
        let mut code = Vec::with_capacity(b.len() / 2);
        let mut at = 0;
        while let Some(&c) = b.get(at) {
            at += 1;
            let n = *ARITY.get(c as usize)?;
            let a = if n > 0 { get_varint(b, &mut at)? } else { 0 };
            let bb = if n > 1 { get_varint(b, &mut at)? } else { 0 };
            code.push(op(c, a, bb, sym)?);
        }
        Some(code)
    }

    /// Whether every constant an op names is there and of the kind the VM
    /// reads there, every jump lands on an op of the chunk, and the chunk
    /// ends in `Return` (as every compiled one does), so that the run loop
    /// never reads past its end.
    pub fn operands_ok(code: &[Op], consts: &[Const]) -> bool {
        if code.last() != Some(&Op::Return) {
            return false;
        }
        let k = |i: u32| consts.get(i as usize);
        let value = |i: u32| {
            matches!(
                k(i),
                Some(Const::Int(_) | Const::Float(_) | Const::Str(_) | Const::Path(_))
            )
        };
        let inside = |t: u32| (t as usize) < code.len();
        let op_ok = |op: &Op| match *op {
            Op::Const(c) => value(c),
            Op::Thunk(c) | Op::Closure(c) => matches!(k(c), Some(Const::Stored(_))),
            Op::MakeAttrs(c) => matches!(k(c), Some(Const::AttrNames(..))),
            Op::Dyn(_, c) => matches!(k(c.get()), Some(Const::Withs(_))),
            Op::Assert(c) => matches!(k(c), Some(Const::Text(_))),
            Op::AssertEq(c, at) => matches!(k(c), Some(Const::Text(_))) && inside(at.get()),
            Op::RecOverrides(c) => matches!(k(c), Some(Const::Syms(_))),
            Op::BindFormals(c) => match k(c) {
                Some(Const::Formals(f)) => (f.formals.iter())
                    .filter_map(|x| x.default)
                    .all(|d| value(d) || matches!(k(d), Some(Const::Stored(_)))),
                _ => false,
            },
            Op::Jump(t)
            | Op::JumpIfFalse(t)
            | Op::JumpIfTrue(t)
            | Op::SelectDynOr(t)
            | Op::HasAttrStepDyn(t) => inside(t),
            Op::SelectOr(_, t) | Op::HasAttrStep(_, t) => inside(t.get()),
            _ => true,
        };
        code.iter().all(op_ok)
    }

    #[test]
    fn every_op_reads_back_as_written() {
        let s = Symbol::from_id(70_000);
        let u = U24::new(0xabcdef).unwrap();
        let id = |s: Symbol| s.id();
        let back = |i: u32| Some(Symbol::from_id(i));
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
            let (a, b) = parts(&o, id);
            assert_eq!(op(o.code() as u8, a, b, back), Some(o));
        }
        // Every code, its operands all 1: a record that carried fewer than
        // the op has would lose one.
        for code in 0..Op::COUNT as u8 {
            let o = op(code, 1, 1, back).expect("every code");
            assert_eq!(o.code(), code as usize);
            let (a, b) = parts(&o, id);
            let mut bytes = vec![code];
            if ARITY[code as usize] > 0 {
                super::put_varint(&mut bytes, a);
            }
            if ARITY[code as usize] > 1 {
                super::put_varint(&mut bytes, b);
            }
            assert_eq!(read(&bytes, &back), Some(vec![o]), "{}", o.name());
        }
        assert_eq!(op(Op::COUNT as u8, 0, 0, back), None);
        assert_eq!(op(41, 0, 2, back), None, "a flag is 0 or 1");
        assert_eq!(op(8, 1 << 16, 0, back), None, "a slot count is 16 bits");
        assert_eq!(op(15, 1, 0, |_| None), None, "a symbol outside the table");
    }
}

/// The symbol operand of an op, if it has one.
fn op_symbol(op: &Op) -> Option<Symbol> {
    match *op {
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
            | Const::Text(_)
            | Const::Stored(_) => {}
        }
    }
}

#[cfg(test)]
mod tests;
