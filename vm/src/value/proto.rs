//! Linked code: a compiled chunk whose constants are runtime values. NixOS
//! minimal links 300,000 chunks, most of them thunk bodies of a few ops, so a
//! chunk's ops, spans and constants share one allocation (`Body`) instead
//! of three boxes (48 bytes of fat pointers and three allocations each).
//!
//! Spans are read only to report an error or a position, so they are kept
//! packed: per op, the distance of its start from the previous op's start and
//! its length, as variable-length integers (3 bytes an op on nixpkgs instead
//! of 8), with the offset of every 16th op's entry so that finding one
//! decodes at most 15 others.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::rc::Rc;

use nixvm_compiler::ast::Span;
use nixvm_compiler::chunk::{ChunkKind, FormalsInfo, Op};
use nixvm_compiler::Symbol;

use super::Constant;

/// A chunk's constants, ops and a span per op, in one allocation (in that
/// order: the constants need the strictest alignment). The spans are a
/// `u32` byte length, a `u32` offset for each of ops 16, 32, ..., then the
/// packed entries (see the module header).
pub struct Body {
    ptr: NonNull<u8>,
    ops: u32,
    consts: u32,
}

const _: () = {
    assert!(std::mem::size_of::<Body>() == 16);
    assert!(std::mem::align_of::<Op>() <= 8 && std::mem::align_of::<Span>() <= 4);
    assert!(std::mem::size_of::<Constant>().is_multiple_of(std::mem::align_of::<Op>()));
    assert!(std::mem::size_of::<Op>().is_multiple_of(std::mem::align_of::<Span>()));
};

/// Ops between two recorded offsets into the packed spans.
const SPAN_STEP: usize = 16;

pub(super) use nixvm_compiler::varint::put as put_varint;

/// A `put_varint` number in bytes this module packed.
pub(super) fn get_varint(b: &[u8], at: &mut usize) -> u32 {
    nixvm_compiler::varint::get(b, at).expect("bytes packed by put_varint")
}

/// How many offsets the packed spans of `ops` ops record.
fn span_marks(ops: usize) -> usize {
    ops.saturating_sub(1) / SPAN_STEP
}

/// The packed spans: the offsets of every `SPAN_STEP`th entry after the
/// first, then the entries. An entry is the start's distance from the
/// previous start (zigzag: it can go back) and the length; an entry at a
/// recorded offset counts from 0, so decoding can begin there.
fn pack_spans(spans: &[Span]) -> (Vec<u32>, Vec<u8>) {
    let (mut marks, mut bytes) = (Vec::new(), Vec::with_capacity(spans.len() * 3));
    let mut prev = 0u32;
    for (i, s) in spans.iter().enumerate() {
        if i > 0 && i % SPAN_STEP == 0 {
            marks.push(bytes.len() as u32);
            prev = 0;
        }
        let d = s.start.wrapping_sub(prev) as i32;
        put_varint(&mut bytes, ((d << 1) ^ (d >> 31)) as u32);
        put_varint(&mut bytes, s.end.saturating_sub(s.start));
        prev = s.start;
    }
    (marks, bytes)
}

impl Body {
    /// Offsets of the ops and the spans, and the layout of the whole, given
    /// the bytes after the marks (packed spans and error contexts).
    fn layout(ops: usize, consts: usize, tail_bytes: usize) -> (usize, usize, Layout) {
        let code = consts * std::mem::size_of::<Constant>();
        let spans = code + ops * std::mem::size_of::<Op>();
        let size = spans + 4 * (2 + span_marks(ops)) + tail_bytes;
        (
            code,
            spans,
            Layout::from_size_align(size.max(1), 8).expect("body layout"),
        )
    }

    /// The packed spans' and error contexts' lengths in bytes, stored first
    /// in the span area.
    fn tail_lens(&self) -> (usize, usize) {
        let (_, at, _) = Body::layout(self.ops as usize, self.consts as usize, 0);
        // SAFETY: the lengths are written at the start of the span area.
        unsafe {
            let p = self.ptr.as_ptr().add(at) as *const u32;
            (p.read() as usize, p.add(1).read() as usize)
        }
    }

    fn span_bytes(&self) -> usize {
        self.tail_lens().0
    }

    fn tail_bytes(&self) -> usize {
        let (s, c) = self.tail_lens();
        s + c
    }

    /// The packed error contexts (`errctx`), read when an error unwinds.
    pub fn ctx_bytes(&self) -> &[u8] {
        let (spans, ctxs) = self.tail_lens();
        if ctxs == 0 {
            return &[];
        }
        let (_, at, _) = Body::layout(self.ops as usize, self.consts as usize, 0);
        let nmarks = span_marks(self.ops as usize);
        // SAFETY: the context bytes follow the packed spans.
        unsafe {
            let p = (self.ptr.as_ptr().add(at) as *const u32).add(2 + nmarks) as *const u8;
            std::slice::from_raw_parts(p.add(spans), ctxs)
        }
    }

    pub fn new(code: &[Op], spans: &[Span], ctxs: &[u8], consts: Vec<Constant>) -> Body {
        assert_eq!(code.len(), spans.len(), "a span per op");
        let (ops, nconsts) = (code.len(), consts.len());
        let (marks, packed) = pack_spans(spans);
        let (at_code, at_spans, l) = Body::layout(ops, nconsts, packed.len() + ctxs.len());
        let mut consts = std::mem::ManuallyDrop::new(consts);
        // SAFETY: a non-zero size with room for each array at its offset;
        // the constants move in (the vector's buffer is freed without
        // dropping them), ops and spans are `Copy`.
        unsafe {
            let p = alloc(l);
            if p.is_null() {
                handle_alloc_error(l);
            }
            std::ptr::copy_nonoverlapping(consts.as_ptr(), p as *mut Constant, nconsts);
            consts.set_len(0);
            std::mem::ManuallyDrop::drop(&mut consts);
            std::ptr::copy_nonoverlapping(code.as_ptr(), p.add(at_code) as *mut Op, ops);
            let sp = p.add(at_spans) as *mut u32;
            sp.write(packed.len() as u32);
            sp.add(1).write(ctxs.len() as u32);
            std::ptr::copy_nonoverlapping(marks.as_ptr(), sp.add(2), marks.len());
            let bytes = sp.add(2 + marks.len()) as *mut u8;
            std::ptr::copy_nonoverlapping(packed.as_ptr(), bytes, packed.len());
            std::ptr::copy_nonoverlapping(ctxs.as_ptr(), bytes.add(packed.len()), ctxs.len());
            Body {
                ptr: NonNull::new_unchecked(p),
                ops: u32::try_from(ops).expect("op count fits in u32"),
                consts: u32::try_from(nconsts).expect("constant count fits in u32"),
            }
        }
    }

    #[inline]
    pub fn code(&self) -> &[Op] {
        let at = self.consts as usize * std::mem::size_of::<Constant>();
        // SAFETY: `ops` ops at their offset.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(at) as *const Op, self.ops as usize)
        }
    }
    /// The span of op `i`.
    pub fn span(&self, i: usize) -> Option<Span> {
        if i >= self.ops as usize {
            return None;
        }
        let (_, at, _) = Body::layout(self.ops as usize, self.consts as usize, 0);
        let nmarks = span_marks(self.ops as usize);
        // SAFETY: the span area holds its length, the marks, then the bytes.
        let (marks, bytes) = unsafe {
            let sp = self.ptr.as_ptr().add(at) as *const u32;
            (
                std::slice::from_raw_parts(sp.add(2), nmarks),
                std::slice::from_raw_parts(sp.add(2 + nmarks) as *const u8, self.span_bytes()),
            )
        };
        let k = i / SPAN_STEP;
        let mut pos = if k == 0 { 0 } else { marks[k - 1] as usize };
        let (mut start, mut len) = (0u32, 0u32);
        for _ in k * SPAN_STEP..=i {
            let z = get_varint(bytes, &mut pos);
            let d = ((z >> 1) as i32) ^ -((z & 1) as i32);
            start = start.wrapping_add(d as u32);
            len = get_varint(bytes, &mut pos);
        }
        Some(Span {
            start,
            end: start + len,
        })
    }
    #[inline]
    pub fn consts(&self) -> &[Constant] {
        // SAFETY: `consts` constants at the start.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr() as *const Constant, self.consts as usize)
        }
    }
    /// The bytes of the allocation (for walks over the heap).
    pub(crate) fn alloc_bytes(&self) -> usize {
        Body::layout(self.ops as usize, self.consts as usize, self.tail_bytes())
            .2
            .size()
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let (_, _, l) = Body::layout(self.ops as usize, self.consts as usize, self.tail_bytes());
        // SAFETY: the constants are initialised and owned here; then the
        // allocation goes.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr() as *mut Constant,
                self.consts as usize,
            ));
            dealloc(self.ptr.as_ptr(), l);
        }
    }
}

/// A compiled chunk linked for execution: constants are runtime values.
/// NixOS minimal links 307k of them, so the header is packed into 40 bytes
/// (56 with its `Rc`): the name without an `Option`'s padding, the two flags
/// in a byte, the file index read from its source.
pub struct Proto {
    pub kind: ChunkKind,
    flags: u8,
    pub nslots: u16,
    /// The lambda's name, or `NO_NAME`.
    name: u32,
    pub span: Span,
    /// The chunk's source, so positions can be shown without the `Vm`.
    pub source: Rc<crate::state::SourceFile>,
    pub body: Body,
}

const _: () = assert!(std::mem::size_of::<Proto>() == 40);

const NO_NAME: u32 = u32::MAX;
const HAS_FORMALS: u8 = 1;
const SPECULATE: u8 = 2;

impl Proto {
    /// `speculate`: a thunk whose value may be computable on the spot (see
    /// `crate::speculate`).
    pub fn new(
        kind: ChunkKind,
        name: Option<Symbol>,
        source: Rc<crate::state::SourceFile>,
        span: Span,
        body: Body,
        nslots: u16,
        speculate: bool,
    ) -> Proto {
        let has_formals = matches!(body.code().first(), Some(Op::BindFormals(_)));
        Proto {
            kind,
            flags: if has_formals { HAS_FORMALS } else { 0 }
                | if speculate { SPECULATE } else { 0 },
            nslots,
            name: name.map_or(NO_NAME, |s| s.id()),
            span,
            source,
            body,
        }
    }
    pub fn name(&self) -> Option<Symbol> {
        (self.name != NO_NAME).then_some(Symbol::from_id(self.name))
    }
    /// The index of the chunk's file in the `Vm`'s table.
    #[inline]
    pub fn file(&self) -> u32 {
        self.source.index
    }
    #[inline]
    pub fn has_formals(&self) -> bool {
        self.flags & HAS_FORMALS != 0
    }
    #[inline]
    pub fn speculate(&self) -> bool {
        self.flags & SPECULATE != 0
    }
    #[inline]
    pub fn code(&self) -> &[Op] {
        self.body.code()
    }
    /// The span of op `i`.
    pub fn span_at(&self, i: usize) -> Option<Span> {
        self.body.span(i)
    }
    pub fn op_count(&self) -> usize {
        self.body.code().len()
    }
    #[inline]
    pub fn consts(&self) -> &[Constant] {
        self.body.consts()
    }
    pub fn formals(&self) -> Option<&FormalsInfo> {
        if let Some(Op::BindFormals(c)) = self.code().first() {
            return self.consts()[*c as usize].formals();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{CView, PConst, Value};

    #[test]
    fn a_body_keeps_its_three_arrays() {
        let code = [Op::Null, Op::Const(0), Op::Const(1)];
        let spans = [
            Span { start: 0, end: 1 },
            Span { start: 2, end: 3 },
            Span { start: 4, end: 9 },
        ];
        let s = Value::str("constant");
        let b = Body::new(
            &code,
            &spans,
            &[],
            vec![
                Constant::new(PConst::Value(s.clone())),
                Constant::new(PConst::Text("t".into())),
            ],
        );
        assert_eq!(b.code(), &code);
        for (i, sp) in spans.iter().enumerate() {
            assert_eq!(b.span(i), Some(*sp));
        }
        assert_eq!(b.span(3), None);
        assert!(matches!(b.consts()[0].view(), CView::Value(v) if v.as_str() == Some("constant")));
        assert!(matches!(b.consts()[1].view(), CView::Text("t")));
        // Three ops' spans packed: 0,1 / 2,1 / 2,5 (start deltas zigzagged).
        assert_eq!(b.alloc_bytes(), 2 * 8 + 3 * 8 + 8 + 6);
        let empty = Body::new(&[], &[], &[], Vec::new());
        assert!(empty.code().is_empty() && empty.consts().is_empty());
        drop(b);
        // The constants went with the body.
        match s.view() {
            crate::value::View::String(r) => assert_eq!(r.strong_count(), 1),
            _ => panic!("a string"),
        }
    }

    #[test]
    fn packed_spans_give_back_every_span() {
        // Starts that go back and forth, long and empty spans, offsets past
        // 2^28, over several recorded offsets.
        let mut x = 12345u64;
        let spans: Vec<Span> = (0..200u32)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let start = match i % 5 {
                    0 => (x >> 40) as u32,
                    1 => u32::MAX - 10,
                    _ => i * 7,
                };
                let len = if i % 3 == 0 {
                    0
                } else {
                    (x >> 50) as u32 % 10_000
                };
                Span {
                    start,
                    end: start.saturating_add(len),
                }
            })
            .collect();
        let code = vec![Op::Null; spans.len()];
        let b = Body::new(&code, &spans, &[3, 1, 4], Vec::new());
        assert_eq!(b.ctx_bytes(), &[3, 1, 4]);
        for (i, sp) in spans.iter().enumerate() {
            assert_eq!(b.span(i), Some(*sp), "op {i}");
        }
        assert_eq!(b.span(spans.len()), None);
    }
}
