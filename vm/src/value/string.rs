//! Strings: one allocation each, a 16-byte header (count, length, context)
//! followed by the bytes. As `NixStr` over a `Box<[u8]>` every string
//! was two allocations and 40 bytes of overhead, and strings are what string
//! operations make by the million.
//!
//! A `NixStr` is a counted handle whose bits are those of the `Value` that
//! holds it (the string tag above the address), so a `&Value` of a string
//! can be read as a `&NixStr`. Strings never change after they are made.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;

use super::counted::Counted;
use super::repr::STRING_BITS;
use super::Context;

#[repr(C)]
struct Header {
    count: Cell<u32>,
    /// The length, if below `u32::MAX`; otherwise it is in the 8 bytes
    /// before the text (strings of 4 GiB do not need to be small).
    len: u32,
    ctx: Option<Box<Context>>,
}

const _: () = {
    // `Value`'s clone and drop read the count here (`repr.rs`, `COUNTED_FIRST`).
    assert!(std::mem::offset_of!(Header, count) == 0);
    assert!(std::mem::size_of::<Header>() == 16);
    assert!(std::mem::size_of::<NixStr>() == 8);
};

const LONG: u32 = u32::MAX;

/// Where the text starts, after the header (and the long length, if any).
fn text_offset(len: usize) -> usize {
    std::mem::size_of::<Header>() + if len >= LONG as usize { 8 } else { 0 }
}

fn layout(len: usize) -> Layout {
    Layout::from_size_align(text_offset(len) + len, 8).expect("string layout")
}

/// A shared, immutable Nix string with its context (see the module header).
#[repr(transparent)]
pub struct NixStr(Counted);

impl NixStr {
    pub fn new(bytes: impl AsRef<[u8]>, ctx: Option<Box<Context>>) -> NixStr {
        let bytes = bytes.as_ref();
        // SAFETY: all `len` bytes of text are written before the handle escapes.
        unsafe {
            let (s, text) = NixStr::raw(bytes.len(), ctx);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), text, bytes.len());
            s
        }
    }

    /// The string of `len` bytes that `fill` writes into its own
    /// allocation: a string joined from pieces is copied once, not gathered
    /// into a growing buffer first and copied again.
    pub fn filled(len: usize, ctx: Option<Box<Context>>, fill: impl FnOnce(&mut [u8])) -> NixStr {
        // SAFETY: the text is zeroed before `fill` sees it, so the handle
        // is whole even if `fill` writes less or panics.
        unsafe {
            let (s, text) = NixStr::raw(len, ctx);
            text.write_bytes(0, len);
            fill(std::slice::from_raw_parts_mut(text, len));
            s
        }
    }

    /// A string of `len` bytes whose text (at the returned address) is not
    /// written yet.
    ///
    /// # Safety
    /// The caller writes all `len` bytes before the handle is read.
    unsafe fn raw(len: usize, ctx: Option<Box<Context>>) -> (NixStr, *mut u8) {
        let ctx = ctx.filter(|c| !c.is_empty());
        let l = layout(len);
        let p = alloc(l);
        if p.is_null() {
            handle_alloc_error(l);
        }
        (p as *mut Header).write(Header {
            count: Cell::new(1),
            len: if len >= LONG as usize {
                LONG
            } else {
                len as u32
            },
            ctx,
        });
        if len >= LONG as usize {
            (p.add(std::mem::size_of::<Header>()) as *mut usize).write(len);
        }
        (
            NixStr(Counted::new(STRING_BITS, p)),
            p.add(text_offset(len)),
        )
    }

    /// The string's bits (for `Value`), owning its count.
    pub(super) fn into_bits(self) -> u64 {
        std::mem::ManuallyDrop::new(self).0.bits()
    }

    #[inline]
    fn base(&self) -> *mut u8 {
        self.0.base()
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while this handle does.
        unsafe { &*(self.base() as *const Header) }
    }

    #[inline]
    pub fn len(&self) -> usize {
        match self.header().len {
            // SAFETY: a long string keeps its length after the header.
            LONG => unsafe { *(self.base().add(std::mem::size_of::<Header>()) as *const usize) },
            n => n as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        let len = self.len();
        // SAFETY: `len` bytes of text follow the header.
        unsafe { std::slice::from_raw_parts(self.base().add(text_offset(len)), len) }
    }
    /// The text, with invalid UTF-8 replaced (only printing should need that).
    pub fn to_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(self.as_bytes())
    }
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }
    pub fn context(&self) -> Option<&Context> {
        self.header().ctx.as_deref()
    }
    pub fn has_context(&self) -> bool {
        self.header().ctx.is_some()
    }
    /// The bytes of this string's allocation (for walks over the heap).
    pub(crate) fn alloc_bytes(&self) -> usize {
        layout(self.len()).size()
    }
    pub fn ptr_eq(a: &NixStr, b: &NixStr) -> bool {
        a.0.bits() == b.0.bits()
    }
    /// The allocation's address (for walks over the heap).
    pub fn as_ptr(&self) -> *const () {
        self.base() as *const ()
    }
    /// How many handles share this string.
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }
}

impl Clone for NixStr {
    #[inline]
    fn clone(&self) -> NixStr {
        NixStr(self.0.retain())
    }
}

impl Drop for NixStr {
    #[inline]
    fn drop(&mut self) {
        if self.0.release() {
            let len = self.len();
            // SAFETY: the last handle: drop the context, free the allocation.
            unsafe {
                std::ptr::drop_in_place(&mut (*(self.base() as *mut Header)).ctx);
                dealloc(self.base(), layout(len));
            }
        }
    }
}

impl std::fmt::Debug for NixStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.to_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_context_and_counts() {
        let s = NixStr::new(b"hello", None);
        assert_eq!(
            (s.as_bytes(), s.len(), s.has_context()),
            (&b"hello"[..], 5, false)
        );
        let t = s.clone();
        assert_eq!(s.strong_count(), 2);
        assert!(NixStr::ptr_eq(&s, &t));
        drop(t);
        assert_eq!(s.strong_count(), 1);
        let ctx: Context = [std::rc::Rc::from("/nix/store/x")].into_iter().collect();
        let c = NixStr::new("", Some(Box::new(ctx)));
        assert!(c.is_empty() && c.has_context());
        assert_eq!(c.context().map(|c| c.len()), Some(1));
        // An empty context is no context.
        assert!(!NixStr::new("x", Some(Box::default())).has_context());
        assert_eq!(NixStr::new([0xffu8, b'a'], None).as_str(), None);
    }
}
