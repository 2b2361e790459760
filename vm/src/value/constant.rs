//! A linked chunk's constant in 8 bytes. NixOS minimal links 655,000
//! constants; as an enum of fat boxes each took 24 bytes (16 MB where 5 do).
//!
//! The word uses the top 16 bits as `Value` does: a tag below `OWN` means
//! the word *is* a value (a constant is a number, string or path, never a
//! thunk, so the word is never 0), so `Op::Const` borrows it as a `Value`
//! with one test. Tags from `OWN` up name the other kinds, each a 48-bit
//! pointer below them: an `Rc` (`Proto`, `FormalsInfo`) or a [`Thin`]
//! slice, which keeps its length in its own allocation, or (`STORED`) the
//! offset of a nested chunk not yet decoded from its bytecode cache entry,
//! which becomes a `Proto` in place when first used (`Constant::link`).

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::rc::Rc;

use nixvm_compiler::chunk::FormalsInfo;
use nixvm_compiler::Symbol;

use super::repr::{tagged, Ref, PAYLOAD, SHIFT};
use super::{PosIdx, Proto, Value};

/// A constant as linking makes it, before `Constant::new` packs it.
pub enum PConst {
    Value(Value),
    Proto(Rc<Proto>),
    /// A nested chunk still in its file's cache entry, at this offset.
    Stored(u32),
    Syms(Vec<Symbol>),
    /// The names of a set literal's attributes, sorted, each with where it
    /// is defined.
    AttrNames(Vec<(Symbol, PosIdx)>),
    /// The same, in the order of the symbol ids of the process that compiled
    /// it (a chunk from the bytecode cache), which is not this one's: the
    /// set is sorted when made.
    AttrNamesUnsorted(Vec<(Symbol, PosIdx)>),
    Withs(Vec<u16>),
    Formals(Rc<FormalsInfo>),
    Text(String),
}

/// A constant borrowed from its chunk, for `match`.
pub enum CView<'a> {
    Value(&'a Value),
    Proto(Ref<'a, Proto>),
    Stored(u32),
    Syms(&'a [Symbol]),
    AttrNames(&'a [(Symbol, PosIdx)]),
    AttrNamesUnsorted(&'a [(Symbol, PosIdx)]),
    Withs(&'a [u16]),
    Formals(Ref<'a, FormalsInfo>),
    Text(&'a str),
}

/// The first tag that is not a value's (values use 0 to 12).
const OWN: u64 = 0x8000;
const PROTO: u64 = OWN;
const SYMS: u64 = OWN + 1;
const NAMES: u64 = OWN + 2;
const WITHS: u64 = OWN + 3;
const FORMALS: u64 = OWN + 4;
const TEXT: u64 = OWN + 5;
const NAMES_UNSORTED: u64 = OWN + 6;
const STORED: u64 = OWN + 7;

/// A packed constant (see the module header).
#[repr(transparent)]
pub struct Constant {
    /// Changes once, from `STORED` to `PROTO` (`link`); no borrow of a
    /// `STORED` word is ever handed out.
    bits: std::cell::Cell<NonZeroU64>,
    /// Holds `Rc`s: not `Send`, not `Sync`.
    _not_send: PhantomData<*const ()>,
}

const _: () = assert!(std::mem::size_of::<Constant>() == 8);

impl Constant {
    pub fn new(c: PConst) -> Constant {
        let bits = match c {
            PConst::Value(v) => {
                let b = v.into_bits();
                assert!(b >> SHIFT < OWN, "a value's tag is below OWN");
                b
            }
            PConst::Proto(p) => tagged(PROTO, Rc::into_raw(p) as *const u8),
            PConst::Stored(at) => STORED << SHIFT | at as u64,
            PConst::Formals(f) => tagged(FORMALS, Rc::into_raw(f) as *const u8),
            PConst::Syms(s) => tagged(SYMS, Thin::alloc(&s)),
            PConst::AttrNames(s) => tagged(NAMES, Thin::alloc(&s)),
            PConst::AttrNamesUnsorted(s) => tagged(NAMES_UNSORTED, Thin::alloc(&s)),
            PConst::Withs(s) => tagged(WITHS, Thin::alloc(&s)),
            PConst::Text(t) => tagged(TEXT, Thin::alloc(t.as_bytes())),
        };
        Constant {
            bits: std::cell::Cell::new(
                NonZeroU64::new(bits).expect("a constant's bits are never 0"),
            ),
            _not_send: PhantomData,
        }
    }

    #[inline]
    fn tag(&self) -> u64 {
        self.bits.get().get() >> SHIFT
    }
    #[inline]
    fn ptr(&self) -> *const u8 {
        (self.bits.get().get() & PAYLOAD) as *const u8
    }

    /// Whether it is a nested chunk still to be decoded.
    #[inline]
    pub fn is_stored(&self) -> bool {
        self.tag() == STORED
    }

    /// Make a `STORED` constant the `Proto` its chunk linked to.
    pub fn link(&self, p: Rc<Proto>) {
        assert!(self.is_stored(), "only a stored chunk is linked late");
        let bits = tagged(PROTO, Rc::into_raw(p) as *const u8);
        self.bits
            .set(NonZeroU64::new(bits).expect("a pointer is never 0"));
    }

    /// The constant as a value, if it is one: `Op::Const`'s one test.
    #[inline]
    pub fn value(&self) -> Option<&Value> {
        // SAFETY: below `OWN` the word is a value's bits, and both types
        // are a transparent `NonZeroU64` (`Cell` is transparent too); a
        // value's word never changes.
        (self.tag() < OWN).then(|| unsafe { &*(self as *const Constant as *const Value) })
    }

    #[inline]
    pub fn view(&self) -> CView<'_> {
        if let Some(v) = self.value() {
            return CView::Value(v);
        }
        let p = self.ptr();
        // SAFETY: the tag says what the pointer is; it lives as long as
        // this constant, which owns it.
        unsafe {
            match self.tag() {
                PROTO => CView::Proto(Ref::new(p as *const Proto)),
                STORED => CView::Stored(p as u32),
                FORMALS => CView::Formals(Ref::new(p as *const FormalsInfo)),
                SYMS => CView::Syms(Thin::slice(p)),
                NAMES => CView::AttrNames(Thin::slice(p)),
                NAMES_UNSORTED => CView::AttrNamesUnsorted(Thin::slice(p)),
                WITHS => CView::Withs(Thin::slice(p)),
                _ => CView::Text(std::str::from_utf8_unchecked(Thin::slice(p))),
            }
        }
    }

    /// The formals, borrowed for as long as the constant.
    pub fn formals(&self) -> Option<&FormalsInfo> {
        // SAFETY: the tag says the pointer is an `Rc<FormalsInfo>`'s.
        (self.tag() == FORMALS).then(|| unsafe { &*(self.ptr() as *const FormalsInfo) })
    }
}

impl Drop for Constant {
    fn drop(&mut self) {
        let p = self.ptr();
        // SAFETY: this constant owns what its bits name, once.
        unsafe {
            match self.tag() {
                t if t < OWN => drop(Value::from_raw_bits(self.bits.get().get())),
                PROTO => drop(Rc::from_raw(p as *const Proto)),
                STORED => {}
                FORMALS => drop(Rc::from_raw(p as *const FormalsInfo)),
                SYMS => Thin::<Symbol>::free(p),
                NAMES | NAMES_UNSORTED => Thin::<(Symbol, PosIdx)>::free(p),
                WITHS => Thin::<u16>::free(p),
                _ => Thin::<u8>::free(p),
            }
        }
    }
}

/// A boxed slice behind a thin pointer: its length (a `u32`) starts the
/// allocation, the items follow. `Box<[T]>` is a fat pointer; the `thin-vec`
/// crate's header is 16 bytes (length and capacity as `usize`) where these
/// slices, of a few names each, need 4.
struct Thin<T>(PhantomData<T>);

impl<T: Copy> Thin<T> {
    fn layout(len: usize) -> (Layout, usize) {
        let (l, at) = Layout::new::<u32>()
            .extend(Layout::array::<T>(len).expect("slice layout"))
            .expect("slice layout");
        (l.pad_to_align(), at)
    }
    fn alloc(items: &[T]) -> *const u8 {
        let len = u32::try_from(items.len()).expect("constant length fits in u32");
        let (l, at) = Thin::<T>::layout(items.len());
        // SAFETY: a non-zero size (the length); the items are `Copy`.
        unsafe {
            let p = alloc(l);
            if p.is_null() {
                handle_alloc_error(l);
            }
            (p as *mut u32).write(len);
            std::ptr::copy_nonoverlapping(items.as_ptr(), p.add(at) as *mut T, items.len());
            p
        }
    }
    /// # Safety
    /// `p` came from `Thin::<T>::alloc` and lives for `'a`.
    unsafe fn slice<'a>(p: *const u8) -> &'a [T] {
        let len = (p as *const u32).read() as usize;
        let (_, at) = Thin::<T>::layout(len);
        std::slice::from_raw_parts(p.add(at) as *const T, len)
    }
    /// # Safety
    /// `p` came from `Thin::<T>::alloc` and is not used again.
    unsafe fn free(p: *const u8) {
        let len = (p as *const u32).read() as usize;
        dealloc(p as *mut u8, Thin::<T>::layout(len).0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nixvm_compiler::chunk::FormalSpec;

    #[test]
    fn every_kind_packs_and_borrows_back() {
        let s = Value::str("constant");
        let [s1, s2, s3, s5, s7] = ["k1", "k2", "k3", "k5", "k7"].map(Symbol::intern);
        let f = Rc::new(FormalsInfo {
            formals: vec![FormalSpec {
                name: s7,
                default: None,
                span: Default::default(),
            }],
            ellipsis: true,
            at_slot: None,
        });
        let cs = [
            Constant::new(PConst::Value(Value::Int(-5))),
            Constant::new(PConst::Value(Value::Int(1 << 50))),
            Constant::new(PConst::Value(s.clone())),
            Constant::new(PConst::Syms(vec![s1, s2])),
            Constant::new(PConst::AttrNames(vec![(s3, PosIdx(9))])),
            Constant::new(PConst::Withs(vec![4, 0, 2])),
            Constant::new(PConst::Withs(Vec::new())),
            Constant::new(PConst::Formals(f.clone())),
            Constant::new(PConst::Text("é!".into())),
            Constant::new(PConst::AttrNamesUnsorted(vec![(s5, PosIdx(1))])),
        ];
        assert!(matches!(cs[0].view(), CView::Value(v) if v.as_int() == Some(-5)));
        assert!(matches!(cs[1].view(), CView::Value(v) if v.as_int() == Some(1 << 50)));
        assert!(matches!(cs[2].view(), CView::Value(v) if v.as_str() == Some("constant")));
        assert!(matches!(cs[3].view(), CView::Syms(x) if x == [s1, s2]));
        assert!(matches!(cs[4].view(), CView::AttrNames(x) if x == [(s3, PosIdx(9))]));
        assert!(matches!(cs[5].view(), CView::Withs(&[4, 0, 2])));
        assert!(matches!(cs[6].view(), CView::Withs(&[])));
        assert!(matches!(cs[7].view(), CView::Formals(g) if Rc::ptr_eq(&g, &f)));
        assert!(cs[7].formals().is_some_and(|g| g.ellipsis) && cs[3].formals().is_none());
        assert!(matches!(cs[8].view(), CView::Text("é!")));
        assert!(matches!(
            cs[9].view(),
            CView::AttrNamesUnsorted(x) if x == [(s5, PosIdx(1))]
        ));
        assert!(cs[3].value().is_none());
        assert_eq!(Rc::strong_count(&f), 2);
        drop(cs);
        // What the constants owned went with them.
        assert_eq!(Rc::strong_count(&f), 1);
        match s.view() {
            crate::value::View::String(r) => assert_eq!(r.strong_count(), 1),
            _ => panic!("a string"),
        }
    }

    #[test]
    fn a_stored_chunk_becomes_its_proto_in_place() {
        let c = Constant::new(PConst::Stored(1234));
        assert!(c.is_stored() && c.value().is_none());
        assert!(matches!(c.view(), CView::Stored(1234)));
        let p = crate::value::test_proto();
        c.link(p.clone());
        assert!(!c.is_stored());
        assert!(matches!(c.view(), CView::Proto(q) if Rc::ptr_eq(&q, &p)));
        assert_eq!(Rc::strong_count(&p), 2);
        drop(c);
        assert_eq!(Rc::strong_count(&p), 1);
    }
}
