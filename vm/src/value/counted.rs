//! The handle that sets, strings and lists share: the bits of the `Value`
//! holding it (the kind's tag above the address of a block whose first field
//! is a `Cell<u32>` count). Each kind wraps one and frees its own block when
//! `release` says the last count went.

use std::cell::Cell;
use std::marker::PhantomData;
use std::num::NonZeroU64;

use super::repr::PAYLOAD;

/// The count's bits in the first `u32` of a counted block (thunks keep
/// their state above them). A count that reaches the mask saturates: its
/// object then lives until the process ends, instead of the count wrapping
/// (134 million references to one object take a gigabyte of pointers).
pub(crate) const COUNT_MASK: u32 = (1 << 27) - 1;

/// One more reference, in the count of the block whose first `u32` is `c`.
#[inline]
pub(crate) fn count_up(c: &Cell<u32>) {
    let v = c.get();
    if v & COUNT_MASK != COUNT_MASK {
        // Under the measurement, a shared object becomes immortal at once,
        // so no "held alone" fast path mistakes it for unshared.
        c.set(if cfg!(feature = "measure-no-counts") {
            v | COUNT_MASK
        } else {
            v + 1
        });
    }
}

/// One reference fewer; true if it was the last (the caller then drops the
/// block's contents and frees it).
#[inline]
pub(crate) fn count_down(c: &Cell<u32>) -> bool {
    if cfg!(feature = "measure-no-counts") {
        return false;
    }
    let v = c.get();
    let n = v & COUNT_MASK;
    if n != COUNT_MASK {
        c.set(v - 1);
    }
    n == 1
}

#[repr(transparent)]
pub(super) struct Counted {
    bits: NonZeroU64,
    /// Handles share blocks without atomics: not `Send`, not `Sync`.
    _not_send: PhantomData<*const ()>,
}

impl Counted {
    /// A handle to the fresh block at `p`, tagged with `tag_bits`.
    ///
    /// # Safety
    /// `p` is a block whose first field is a `Cell<u32>` count of 1.
    #[inline]
    pub(super) unsafe fn new(tag_bits: u64, p: *mut u8) -> Counted {
        let a = p as u64;
        assert!(a & !PAYLOAD == 0, "heap address beyond 48 bits");
        Counted {
            bits: NonZeroU64::new_unchecked(tag_bits | a),
            _not_send: PhantomData,
        }
    }
    /// The handle whose bits are `bits`, owning no count of its own: the
    /// caller keeps the kind's handle around it in a `ManuallyDrop`.
    ///
    /// # Safety
    /// `bits` came from `bits()` of a block that is still alive.
    #[inline]
    pub(super) unsafe fn from_bits(bits: u64) -> Counted {
        Counted {
            bits: NonZeroU64::new_unchecked(bits),
            _not_send: PhantomData,
        }
    }
    #[inline]
    pub(super) fn bits(&self) -> u64 {
        self.bits.get()
    }
    /// The block's address.
    #[inline]
    pub(super) fn base(&self) -> *mut u8 {
        (self.bits.get() & PAYLOAD) as *mut u8
    }
    #[inline]
    fn count(&self) -> &Cell<u32> {
        // SAFETY: the block lives while this handle does and starts with its count.
        unsafe { &*(self.base() as *const Cell<u32>) }
    }
    pub(super) fn strong_count(&self) -> usize {
        (self.count().get() & COUNT_MASK) as usize
    }
    /// A new handle: one more count.
    #[inline]
    pub(super) fn retain(&self) -> Counted {
        count_up(self.count());
        Counted {
            bits: self.bits,
            _not_send: PhantomData,
        }
    }
    /// Give this handle's count back; true if it was the last (the caller
    /// then drops the block's contents and frees it).
    #[inline]
    pub(super) fn release(&self) -> bool {
        count_down(self.count())
    }
}
