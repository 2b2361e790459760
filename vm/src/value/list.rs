//! Lists: one allocation each, a 16-byte header (count, length) followed by
//! the items. As `List` every list was two allocations and 40
//! bytes of overhead, for the 850,000 lists NixOS minimal makes.
//!
//! A `List` is a counted handle whose bits are those of the `Value` that
//! holds it (the list tag above the address), so a `&Value` of a list can
//! be read as a `&List`. Lists never change after they are made; a `List`
//! derefs to the slice of its items.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ops::Deref;

use super::counted::Counted;
use super::repr::LIST_BITS;
use super::Value;

#[repr(C)]
struct Header {
    count: Cell<u32>,
    len: usize,
}

const _: () = {
    // `Value`'s clone and drop read the count here (`repr.rs`, `COUNTED_FIRST`).
    assert!(std::mem::offset_of!(Header, count) == 0);
    assert!(std::mem::size_of::<Header>() == 16);
    assert!(std::mem::size_of::<List>() == 8);
};

fn layout(len: usize) -> Layout {
    checked_layout(len).expect("list layout")
}

/// The layout of a list of `len` items, if its size fits. Checked: a
/// wrapped size would be a small block with `len` items written past its end.
fn checked_layout(len: usize) -> Option<Layout> {
    len.checked_mul(std::mem::size_of::<Value>())
        .and_then(|b| b.checked_add(std::mem::size_of::<Header>()))
        .and_then(|b| Layout::from_size_align(b, 8).ok())
}

/// A shared, immutable Nix list (see the module header).
#[repr(transparent)]
pub struct List(Counted);

impl List {
    /// The list of `items`, moved into one allocation.
    pub fn from_vec(items: Vec<Value>) -> List {
        let len = items.len();
        let l = layout(len);
        let mut items = std::mem::ManuallyDrop::new(items);
        // SAFETY: a non-zero size; the header is written and the items moved
        // in before the handle escapes; the vector's buffer is then freed
        // without dropping them.
        unsafe {
            let p = alloc(l);
            if p.is_null() {
                handle_alloc_error(l);
            }
            (p as *mut Header).write(Header {
                count: Cell::new(1),
                len,
            });
            std::ptr::copy_nonoverlapping(
                items.as_ptr(),
                p.add(std::mem::size_of::<Header>()) as *mut Value,
                len,
            );
            items.set_len(0);
            std::mem::ManuallyDrop::drop(&mut items);
            List(Counted::new(LIST_BITS, p))
        }
    }

    /// The list of `len` items `item(0)`, `item(1)`, ..., written straight
    /// into its allocation (`from_vec` of a collected `Vec` allocated and
    /// copied the items twice: `map` and `genList` make lists of a million).
    /// If `item` panics, what was allocated leaks; nothing is left half made.
    pub fn from_fn(len: usize, item: impl FnMut(usize) -> Value) -> List {
        List::try_from_fn(len, item).unwrap_or_else(|| handle_alloc_error(layout(len)))
    }

    /// `from_fn`, or None if a list of `len` items cannot be allocated (its
    /// size overflows, or the system refuses it): `genList` of a length
    /// taken from the program reports that as CppNix does, out of memory.
    pub fn try_from_fn(len: usize, mut item: impl FnMut(usize) -> Value) -> Option<List> {
        let l = checked_layout(len)?;
        // SAFETY: a non-zero size; the handle (the only reader of the
        // header's length) is made only once all `len` items are written.
        unsafe {
            let p = alloc(l);
            if p.is_null() {
                return None;
            }
            (p as *mut Header).write(Header {
                count: Cell::new(1),
                len,
            });
            let items = p.add(std::mem::size_of::<Header>()) as *mut Value;
            for i in 0..len {
                items.add(i).write(item(i));
            }
            Some(List(Counted::new(LIST_BITS, p)))
        }
    }

    /// The list's bits (for `Value`), owning its count.
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

    /// The bytes of this list's allocation (for walks over the heap).
    pub(crate) fn alloc_bytes(&self) -> usize {
        layout(self.len()).size()
    }
    pub fn ptr_eq(a: &List, b: &List) -> bool {
        a.0.bits() == b.0.bits()
    }
    /// The allocation's address (for walks over the heap).
    pub fn as_ptr(&self) -> *const () {
        self.base() as *const ()
    }
    /// How many handles share this list.
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }
    /// The handle's bits, for a walk that keeps lists by address.
    pub(crate) fn bits(&self) -> u64 {
        self.0.bits()
    }
    /// A handle that owns no count, from `bits`.
    ///
    /// # Safety
    /// `bits` came from `List::bits` of a list that is still alive.
    pub(crate) unsafe fn view_bits(bits: u64) -> std::mem::ManuallyDrop<List> {
        std::mem::ManuallyDrop::new(List(Counted::from_bits(bits)))
    }
}

impl Deref for List {
    type Target = [Value];
    #[inline]
    fn deref(&self) -> &[Value] {
        // SAFETY: `len` items follow the header.
        unsafe {
            std::slice::from_raw_parts(
                self.base().add(std::mem::size_of::<Header>()) as *const Value,
                self.header().len,
            )
        }
    }
}

impl Clone for List {
    #[inline]
    fn clone(&self) -> List {
        List(self.0.retain())
    }
}

impl Drop for List {
    #[inline]
    fn drop(&mut self) {
        if self.0.release() {
            let len = self.header().len;
            // SAFETY: the last handle: drop the items, free the allocation.
            unsafe {
                let items = self.base().add(std::mem::size_of::<Header>()) as *mut Value;
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(items, len));
                dealloc(self.base(), layout(len));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_and_counts() {
        let s = Value::str("item");
        let l = List::from_vec(vec![Value::Int(1), s.clone(), Value::Null]);
        assert_eq!(l.len(), 3);
        assert_eq!(l[0].as_int(), Some(1));
        assert_eq!(l[1].as_str(), Some("item"));
        let m = l.clone();
        assert!(List::ptr_eq(&l, &m) && l.strong_count() == 2);
        let count = |v: &Value| match v.view() {
            crate::value::View::String(r) => r.strong_count(),
            _ => panic!("a string"),
        };
        assert_eq!(count(&s), 2);
        drop((l, m));
        // The items went with the list.
        assert_eq!(count(&s), 1);
        assert!(List::from_vec(Vec::new()).is_empty());
    }
}
