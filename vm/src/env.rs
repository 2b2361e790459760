//! Runtime scopes. An `Env` owns one block of the `Heap` (`heap.rs`) holding
//! a 4-byte reference count, its slot count, the parent scope and the slots
//! themselves, behind a thin 8-byte pointer. `Rc<SliceWithHeader<..>>` spent 16 bytes on its
//! counts and another 8 on a fat pointer's length; millions of envs and the
//! thunks and closures that point at them were paying for that.

use crate::heap::{Heap, Kind};
use crate::value::Value;
use std::cell::{Cell, UnsafeCell};
use std::ptr::NonNull;

#[repr(C)]
struct Header {
    count: Cell<u32>,
    len: u32,
    parent: Option<Env>,
}

/// A shared, reference-counted scope: the parent scope and this scope's
/// slots. Slots are written once when the scope is built and again when a
/// thunk in a slot is replaced by its value.
pub struct Env(NonNull<Header>);

const _: () = assert!(std::mem::size_of::<Header>() == 16);

/// The bytes of an env block with `len` slots.
pub(crate) fn block_size(len: usize) -> usize {
    std::mem::size_of::<Header>() + len * std::mem::size_of::<Value>()
}

impl Env {
    fn alloc(
        heap: &Heap,
        parent: Option<Env>,
        len: usize,
        mut fill: impl FnMut(usize) -> Value,
    ) -> Env {
        let len32 = u32::try_from(len).expect("env size fits in u32");
        // SAFETY: the block is big enough for the header and the slots, and
        // every slot is written before the pointer escapes.
        unsafe {
            let p = heap.alloc(block_size(len), Kind::Env) as *mut Header;
            p.write(Header {
                count: Cell::new(1),
                len: len32,
                parent,
            });
            let slots = slots_ptr(p);
            for i in 0..len {
                slots.add(i).write(UnsafeCell::new(fill(i)));
            }
            Env(NonNull::new_unchecked(p))
        }
    }

    pub fn new(heap: &Heap, parent: Option<Env>, n: usize) -> Env {
        Env::alloc(heap, parent, n, |_| Value::Null)
    }

    pub fn with_values(heap: &Heap, parent: Option<Env>, values: Vec<Value>) -> Env {
        let mut it = values.into_iter();
        let n = it.len();
        Env::alloc(heap, parent, n, |_| it.next().expect("length checked"))
    }

    /// The slots, borrowed (for walks over the heap, during which nothing
    /// writes to an env).
    pub(crate) fn slots(&self) -> &[Value] {
        // SAFETY: `len` slots follow the header; `UnsafeCell<Value>` has the
        // layout of `Value`; the caller does not write to the env meanwhile.
        unsafe {
            std::slice::from_raw_parts(slots_ptr(self.0.as_ptr()) as *const Value, self.len())
        }
    }

    /// A new handle to the env whose block is at `p`.
    ///
    /// # Safety
    /// `p` is a live env block.
    pub(crate) unsafe fn from_block(p: *mut u8) -> Env {
        (*Env::view_block(p)).clone()
    }

    /// A handle to the env at `p` that owns no count (never dropped).
    ///
    /// # Safety
    /// `p` is a live env block, and stays live while the view is used.
    pub(crate) unsafe fn view_block(p: *mut u8) -> std::mem::ManuallyDrop<Env> {
        std::mem::ManuallyDrop::new(Env(NonNull::new_unchecked(p as *mut Header)))
    }

    /// How many handles there are.
    pub(crate) fn count(&self) -> u32 {
        self.header().count.get()
    }

    /// Whether this handle is the only one.
    pub(crate) fn is_unique(&self) -> bool {
        self.header().count.get() == 1
    }

    /// Drop what the env holds (slots become null, the parent goes): the
    /// cycle collector does this to garbage, to break its cycles.
    ///
    /// # Safety
    /// Nothing may be borrowing the env's slots or parent.
    pub(crate) unsafe fn clear(&self) {
        for i in 0..self.len() {
            self.set(i, Value::Null);
        }
        let parent = std::ptr::replace(&mut (*self.0.as_ptr()).parent, None);
        drop(parent);
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the block lives while this handle does.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn slot(&self, i: usize) -> &UnsafeCell<Value> {
        assert!(i < self.len(), "env slot out of range");
        // SAFETY: in bounds, checked above; the block lives while `self` does.
        unsafe { &*slots_ptr(self.0.as_ptr()).add(i) }
    }

    #[inline]
    pub fn parent(&self) -> Option<&Env> {
        self.header().parent.as_ref()
    }

    #[inline]
    pub fn get(&self, i: usize) -> Value {
        // SAFETY: single-threaded, and no reference into the slot outlives this call.
        unsafe { (*self.slot(i).get()).clone() }
    }

    #[inline]
    pub fn set(&self, i: usize, v: Value) {
        // SAFETY: as in `get`; the old value is dropped after the write, so code its
        // drop runs cannot see the slot half-updated.
        let old = unsafe { std::mem::replace(&mut *self.slot(i).get(), v) };
        drop(old);
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.header().len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn ptr_eq(a: &Env, b: &Env) -> bool {
        a.0 == b.0
    }

    pub fn as_ptr(&self) -> *const () {
        self.0.as_ptr() as *const ()
    }
}

/// Where the slots start: right after the header (its size is a multiple of
/// the slots' alignment).
#[inline]
unsafe fn slots_ptr(p: *mut Header) -> *mut UnsafeCell<Value> {
    (p as *mut u8).add(std::mem::size_of::<Header>()) as *mut UnsafeCell<Value>
}

impl Clone for Env {
    #[inline]
    fn clone(&self) -> Env {
        let c = &self.header().count;
        if cfg!(feature = "measure-no-counts") {
            c.set(c.get().max(1 << 30));
            return Env(self.0);
        }
        let n = c
            .get()
            .checked_add(1)
            .unwrap_or_else(|| std::process::abort());
        c.set(n);
        Env(self.0)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Free the chain of parents that die with this env in a loop, not by
        // recursion, so a long chain of scopes cannot exhaust the Rust stack.
        if cfg!(feature = "measure-no-counts") {
            return;
        }
        let mut p = self.0;
        loop {
            // SAFETY: `p` is a live block whose count we own one unit of.
            unsafe {
                let h = p.as_ptr();
                let n = (*h).count.get() - 1;
                (*h).count.set(n);
                if n != 0 {
                    return;
                }
                let len = (*h).len as usize;
                let slots = slots_ptr(h);
                for i in 0..len {
                    std::ptr::drop_in_place(slots.add(i));
                }
                let parent = std::ptr::read(&(*h).parent);
                crate::heap::free(h as *mut u8, block_size(len));
                match parent {
                    Some(e) => {
                        p = e.0;
                        std::mem::forget(e);
                    }
                    None => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::View;

    #[test]
    fn slots_parents_and_sharing() {
        let heap = Heap::new();
        let root = Env::with_values(&heap, None, vec![Value::Int(1), Value::Int(2)]);
        let child = Env::new(&heap, Some(root.clone()), 1);
        child.set(0, Value::Int(3));
        assert_eq!(child.len(), 1);
        assert!(matches!(child.get(0).view(), View::Int(3)));
        assert!(matches!(
            child.parent().unwrap().get(1).view(),
            View::Int(2)
        ));
        let again = child.clone();
        assert!(Env::ptr_eq(&again, &child));
        drop(root);
        assert!(matches!(
            again.parent().unwrap().get(0).view(),
            View::Int(1)
        ));
        assert!(Env::new(&heap, None, 0).is_empty());
    }

    #[test]
    fn a_deep_chain_drops_without_recursion() {
        let heap = Heap::new();
        let mut e = Env::new(&heap, None, 1);
        for _ in 0..1_000_000 {
            e = Env::new(&heap, Some(e), 1);
        }
        drop(e);
        assert_eq!(heap.live_bytes(), 0);
    }
}
