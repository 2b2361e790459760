//! Linked code: a compiled chunk whose constants are runtime values. NixOS
//! minimal links 300,000 chunks, most of them thunk bodies of a few ops, so a
//! chunk's ops, spans and constants share one allocation (`Body`) instead
//! of three boxes (48 bytes of fat pointers and three allocations each).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;
use std::rc::Rc;

use nixvm_compiler::ast::Span;
use nixvm_compiler::chunk::{ChunkKind, FormalsInfo, Op};
use nixvm_compiler::Symbol;

use super::{PosIdx, Value};

/// A constant of a linked chunk.
pub enum PConst {
    Value(Value),
    Proto(Rc<Proto>),
    Syms(Box<[Symbol]>),
    /// The names of a set literal's attributes, sorted, each with where it is defined
    /// (one slice of pairs, so the constant stays 24 bytes).
    AttrNames(Box<[(Symbol, PosIdx)]>),
    Withs(Box<[u16]>),
    Formals(Rc<FormalsInfo>),
    Text(Rc<str>),
}

/// A chunk's constants, ops and a span per op, in one allocation (in that
/// order: the constants need the strictest alignment).
pub struct Body {
    ptr: NonNull<u8>,
    ops: u32,
    consts: u32,
}

const _: () = {
    assert!(std::mem::size_of::<Body>() == 16);
    assert!(std::mem::align_of::<Op>() <= 8 && std::mem::align_of::<Span>() <= 4);
    assert!(std::mem::size_of::<PConst>().is_multiple_of(std::mem::align_of::<Op>()));
    assert!(std::mem::size_of::<Op>().is_multiple_of(std::mem::align_of::<Span>()));
};

impl Body {
    /// Offsets of the ops and the spans, and the layout of the whole.
    fn layout(ops: usize, consts: usize) -> (usize, usize, Layout) {
        let code = consts * std::mem::size_of::<PConst>();
        let spans = code + ops * std::mem::size_of::<Op>();
        let size = spans + ops * std::mem::size_of::<Span>();
        (
            code,
            spans,
            Layout::from_size_align(size.max(1), 8).expect("body layout"),
        )
    }

    pub fn new(code: &[Op], spans: &[Span], consts: Vec<PConst>) -> Body {
        assert_eq!(code.len(), spans.len(), "a span per op");
        let (ops, nconsts) = (code.len(), consts.len());
        let (at_code, at_spans, l) = Body::layout(ops, nconsts);
        let mut consts = std::mem::ManuallyDrop::new(consts);
        // SAFETY: a non-zero size with room for each array at its offset;
        // the constants move in (the vector's buffer is freed without
        // dropping them), ops and spans are `Copy`.
        unsafe {
            let p = alloc(l);
            if p.is_null() {
                handle_alloc_error(l);
            }
            std::ptr::copy_nonoverlapping(consts.as_ptr(), p as *mut PConst, nconsts);
            consts.set_len(0);
            std::mem::ManuallyDrop::drop(&mut consts);
            std::ptr::copy_nonoverlapping(code.as_ptr(), p.add(at_code) as *mut Op, ops);
            std::ptr::copy_nonoverlapping(spans.as_ptr(), p.add(at_spans) as *mut Span, ops);
            Body {
                ptr: NonNull::new_unchecked(p),
                ops: u32::try_from(ops).expect("op count fits in u32"),
                consts: u32::try_from(nconsts).expect("constant count fits in u32"),
            }
        }
    }

    #[inline]
    pub fn code(&self) -> &[Op] {
        let (at, _, _) = Body::layout(self.ops as usize, self.consts as usize);
        // SAFETY: `ops` ops at their offset.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(at) as *const Op, self.ops as usize)
        }
    }
    #[inline]
    pub fn spans(&self) -> &[Span] {
        let (_, at, _) = Body::layout(self.ops as usize, self.consts as usize);
        // SAFETY: a span per op at their offset.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr().add(at) as *const Span, self.ops as usize)
        }
    }
    #[inline]
    pub fn consts(&self) -> &[PConst] {
        // SAFETY: `consts` constants at the start.
        unsafe {
            std::slice::from_raw_parts(self.ptr.as_ptr() as *const PConst, self.consts as usize)
        }
    }
    /// The bytes of the allocation (for walks over the heap).
    pub(crate) fn alloc_bytes(&self) -> usize {
        Body::layout(self.ops as usize, self.consts as usize)
            .2
            .size()
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let (_, _, l) = Body::layout(self.ops as usize, self.consts as usize);
        // SAFETY: the constants are initialised and owned here; then the
        // allocation goes.
        unsafe {
            std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(
                self.ptr.as_ptr() as *mut PConst,
                self.consts as usize,
            ));
            dealloc(self.ptr.as_ptr(), l);
        }
    }
}

/// A compiled chunk linked for execution: constants are runtime values.
pub struct Proto {
    pub kind: ChunkKind,
    pub name: Option<Symbol>,
    pub file: u32,
    /// The source of `file`, so positions can be shown without the `Vm`.
    pub source: Rc<crate::state::SourceFile>,
    pub span: Span,
    pub body: Body,
    pub nslots: u16,
    pub has_formals: bool,
    /// A thunk whose value may be computable on the spot (see `speculate`).
    pub speculate: bool,
}

impl Proto {
    #[inline]
    pub fn code(&self) -> &[Op] {
        self.body.code()
    }
    #[inline]
    pub fn spans(&self) -> &[Span] {
        self.body.spans()
    }
    #[inline]
    pub fn consts(&self) -> &[PConst] {
        self.body.consts()
    }
    pub fn formals(&self) -> Option<&FormalsInfo> {
        if let Some(Op::BindFormals(c)) = self.code().first() {
            if let PConst::Formals(f) = &self.consts()[*c as usize] {
                return Some(f);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            vec![PConst::Value(s.clone()), PConst::Text(Rc::from("t"))],
        );
        assert_eq!(b.code(), &code);
        assert_eq!(b.spans(), &spans);
        assert!(matches!(&b.consts()[0], PConst::Value(v) if v.as_str() == Some("constant")));
        assert!(matches!(&b.consts()[1], PConst::Text(t) if &**t == "t"));
        assert_eq!(b.alloc_bytes(), 2 * 24 + 3 * 12 + 3 * 8);
        let empty = Body::new(&[], &[], Vec::new());
        assert!(empty.code().is_empty() && empty.consts().is_empty());
        drop(b);
        // The constants went with the body.
        match s.view() {
            crate::value::View::String(r) => assert_eq!(r.strong_count(), 1),
            _ => panic!("a string"),
        }
    }
}
