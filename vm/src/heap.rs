//! Pages of same-sized blocks for the objects that can close reference
//! cycles: envs and thunks (an env slot or a thunk's value is the only thing
//! written after its object exists, so every cycle passes through one).
//! Keeping them in pages, rather than one `malloc` each, lets the cycle
//! collector (`cycles.rs`) enumerate every live one, and allocation is a
//! free-list pop or a bump in the current page.
//!
//! A page is `PAGE` bytes, aligned to its size, so a block finds its page
//! (and the size class that owns its free list) by masking its address: no
//! heap handle is needed to free. A free block has 0 where a live object
//! keeps its reference count (the first `u32`; live objects count at
//! least one) and the next free block after it. Blocks larger than
//! `MAX_SMALL` (envs of many slots) are allocated one by one behind a
//! prefix naming their heap, and listed so they can be enumerated too.
//!
//! This module knows sizes and addresses only; what a block holds is the
//! business of `env.rs` and `thunk.rs`.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::{Cell, RefCell};
use std::ptr::null_mut;

pub const PAGE: usize = 256 * 1024;
/// Pages are taken from the system in chunks of this size (and alignment):
/// one `mmap` per eight pages. They are not advised to be transparent huge
/// pages: with the kernel's usual `defrag=madvise`, a fault on an advised
/// region compacts memory first, which cost NixOS minimal 1-2 s of system
/// time per run on this VM (3.7 s without the advice, 4.8-5.7 s with it;
/// the micro workloads did not move).
const CHUNK: usize = 2 * 1024 * 1024;
/// Where a page's first block starts (the page header lives before it).
const FIRST: usize = 64;
/// The largest block kept in pages.
pub const MAX_SMALL: usize = 256;
/// Large blocks carry this many bytes of prefix (heap pointer, size).
const PREFIX: usize = 16;

/// What a size class holds, so an enumeration knows how to read its blocks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Env = 0,
    Thunk = 1,
}

#[repr(C)]
struct PageHeader {
    class: *const Class,
    /// This page's position in its class's page list.
    index: u32,
    /// Blocks handed out at least once (the rest was never touched).
    bump: Cell<u32>,
    /// This page's free blocks. Allocation takes from one page until it is
    /// full, so objects made together sit together (a free list shared by
    /// all pages scattered them: 10-20% slower call-heavy runs).
    free: Cell<*mut u8>,
    /// The page is its class's current page or on its `partial` list.
    listed: Cell<bool>,
}

struct Class {
    size: usize,
    kind: Kind,
    /// The page allocation takes from (null before the first).
    current: Cell<*mut PageHeader>,
    /// Pages that got free blocks back since they were last current.
    partial: RefCell<Vec<*mut PageHeader>>,
    pages: RefCell<Vec<*mut PageHeader>>,
    core: *const Core,
}

/// The heap's state, boxed so its classes keep their addresses.
struct Core {
    classes: Vec<Class>,
    /// Live large blocks (their object addresses) and their kinds.
    large: RefCell<rustc_hash::FxHashMap<usize, Kind>>,
    large_live: Cell<usize>,
    /// Pages taken from a chunk but not given to a class yet.
    spare: RefCell<Vec<*mut PageHeader>>,
    /// Every chunk, to give back when the heap goes.
    chunks: RefCell<Vec<*mut u8>>,
}

/// The blocks of one evaluation. Dropped while blocks are still live (an
/// embedder kept a value after dropping its evaluator), it leaks its pages
/// instead of freeing memory that is in use.
pub struct Heap {
    core: *mut Core,
    /// The core's classes and allocation total, kept beside the pointer so
    /// the allocation fast path loads no more than it must.
    classes: *const Class,
    allocated: Cell<u64>,
}

/// Size classes per kind: one per 8 bytes from 16 to `MAX_SMALL`.
const CLASSES_PER_KIND: usize = (MAX_SMALL - 16) / 8 + 1;

/// Each kind has its own classes: envs (16 + 8n bytes) and thunks (24 or
/// 32) share sizes, and an enumeration must know what a block holds.
#[inline]
fn class_index(size: usize, kind: Kind) -> usize {
    debug_assert!((16..=MAX_SMALL).contains(&size) && size.is_multiple_of(8));
    kind as usize * CLASSES_PER_KIND + size / 8 - 2
}

/// A fresh `CHUNK`, aligned to its size, straight from the kernel.
fn map_chunk() -> *mut u8 {
    // SAFETY: an anonymous private mapping; the excess around the aligned
    // chunk is unmapped again and never used.
    unsafe {
        let len = 2 * CHUNK;
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            handle_alloc_error(Layout::from_size_align(CHUNK, CHUNK).expect("chunk layout"));
        }
        let start = p as usize;
        let aligned = (start + CHUNK - 1) & !(CHUNK - 1);
        if aligned > start {
            libc::munmap(p, aligned - start);
        }
        let end = aligned + CHUNK;
        if start + len > end {
            libc::munmap(end as *mut libc::c_void, start + len - end);
        }
        aligned as *mut u8
    }
}

impl Core {
    /// A fresh page, from a new chunk if no spare page is left.
    fn page(&self) -> *mut PageHeader {
        let mut spare = self.spare.borrow_mut();
        if spare.is_empty() {
            let chunk = map_chunk();
            self.chunks.borrow_mut().push(chunk);
            // Hand out the chunk's pages from its start.
            for i in (0..CHUNK / PAGE).rev() {
                // SAFETY: inside the chunk.
                spare.push(unsafe { chunk.add(i * PAGE) } as *mut PageHeader);
            }
        }
        spare.pop().expect("a spare page")
    }
}

impl Default for Heap {
    fn default() -> Self {
        Heap::new()
    }
}

impl Heap {
    pub fn new() -> Heap {
        let core = Box::into_raw(Box::new(Core {
            classes: Vec::new(),
            large: RefCell::default(),
            large_live: Cell::new(0),
            spare: RefCell::default(),
            chunks: RefCell::default(),
        }));
        // SAFETY: `core` was just made and is not shared yet.
        unsafe {
            for (kind, size) in [Kind::Env, Kind::Thunk]
                .into_iter()
                .flat_map(|k| (16..=MAX_SMALL).step_by(8).map(move |s| (k, s)))
            {
                debug_assert_eq!((*core).classes.len(), class_index(size, kind));
                (*core).classes.push(Class {
                    size,
                    kind,
                    current: Cell::new(null_mut()),
                    partial: RefCell::default(),
                    pages: RefCell::default(),
                    core,
                });
            }
        }
        // SAFETY: the classes are all pushed; the vector never changes again.
        let classes = unsafe { (*core).classes.as_ptr() };
        Heap {
            core,
            classes,
            allocated: Cell::new(0),
        }
    }

    fn core(&self) -> &Core {
        // SAFETY: the core lives as long as the heap (or forever, if leaked).
        unsafe { &*self.core }
    }

    /// A block of `size` bytes (a multiple of 8, at least 16) for an object
    /// of `kind`, uninitialised. Its first `u32` must become non-zero (the
    /// object's count) before the next enumeration.
    #[inline]
    pub fn alloc(&self, size: usize, kind: Kind) -> *mut u8 {
        self.allocated.set(self.allocated.get() + size as u64);
        if size > MAX_SMALL {
            return self.alloc_large(size, kind);
        }
        // SAFETY: `class_index` of a small size is below the class count.
        let class = unsafe { &*self.classes.add(class_index(size, kind)) };
        debug_assert_eq!(class.kind, kind);
        let page = class.current.get();
        if !page.is_null() {
            // SAFETY: the current page is mapped; a free block keeps the next
            // free block at offset 8; a block below the page's end is inside it.
            unsafe {
                let f = (*page).free.get();
                if !f.is_null() {
                    (*page).free.set(*(f.add(8) as *const *mut u8));
                    return f;
                }
                let n = (*page).bump.get() as usize;
                if FIRST + (n + 1) * size <= PAGE {
                    (*page).bump.set(n as u32 + 1);
                    return (page as *mut u8).add(FIRST + n * size);
                }
            }
        }
        class.refill()
    }

    fn alloc_large(&self, size: usize, kind: Kind) -> *mut u8 {
        let layout = Layout::from_size_align(size + PREFIX, 16).expect("large layout");
        // SAFETY: non-zero size; the prefix is written before the block escapes.
        unsafe {
            let base = alloc(layout);
            if base.is_null() {
                handle_alloc_error(layout);
            }
            *(base as *mut *const Core) = self.core;
            *(base.add(8) as *mut usize) = size;
            let p = base.add(PREFIX);
            let core = self.core();
            core.large.borrow_mut().insert(p as usize, kind);
            core.large_live.set(core.large_live.get() + size);
            p
        }
    }

    /// Bytes in live blocks, counted by a walk over the pages (freeing keeps
    /// no running total: it is the hottest path there is).
    pub fn live_bytes(&self) -> usize {
        let mut n = 0;
        self.for_each_live(|b| n += b.size);
        n
    }

    /// Bytes allocated since the heap was made.
    #[inline]
    pub fn allocated_bytes(&self) -> u64 {
        self.allocated.get()
    }

    /// Bytes of the pages that hold blocks (plus large blocks): what the
    /// heap keeps resident. Spare pages (never touched, or released) are
    /// not counted.
    pub fn heap_bytes(&self) -> usize {
        let core = self.core();
        let pages: usize = core.classes.iter().map(|c| c.pages.borrow().len()).sum();
        pages * PAGE + core.large_live.get()
    }

    /// Bytes mapped from the system, resident or not.
    pub fn mapped_bytes(&self) -> usize {
        self.core().chunks.borrow().len() * CHUNK
    }

    /// Give every page without a live block back to the system (its memory
    /// is returned with `MADV_DONTNEED`, its address kept as a spare page
    /// for the next class that needs one). Meant for after a collection,
    /// which frees in bulk; returns the bytes released. It walks every page,
    /// so the allocation and free paths keep no per-page counts.
    pub fn release_empty_pages(&self) -> usize {
        let core = self.core();
        let mut released = 0;
        for class in &core.classes {
            let mut pages = class.pages.borrow_mut();
            let mut i = 0;
            while i < pages.len() {
                let page = pages[i];
                // SAFETY: pages of the heap's classes stay mapped while it lives.
                if unsafe { live_blocks(page, class.size) }.next().is_some() {
                    i += 1;
                    continue;
                }
                // Forget the page everywhere its class lists it; the last page
                // takes its index (side tables are rebuilt per collection).
                pages.swap_remove(i);
                // SAFETY: as above; `pages[i]` (if any) is a live page of this class.
                unsafe {
                    if let Some(&moved) = pages.get(i) {
                        (*moved).index = i as u32;
                    }
                    if class.current.get() == page {
                        class.current.set(null_mut());
                    }
                    class.partial.borrow_mut().retain(|&p| p != page);
                    // Advice: the kernel frees the memory and gives zeroed
                    // pages on the next touch; the mapping stays.
                    libc::madvise(page as *mut libc::c_void, PAGE, libc::MADV_DONTNEED);
                }
                core.spare.borrow_mut().push(page);
                released += PAGE;
            }
        }
        released
    }

    /// Every live block, with its kind, and (for blocks in pages) its page's
    /// class, page index and slot, which `cycles.rs` uses to index its side
    /// tables. The blocks must not be freed while the callback runs.
    pub fn for_each_live(&self, mut f: impl FnMut(Live)) {
        let core = self.core();
        for (ci, class) in core.classes.iter().enumerate() {
            for (pi, &page) in class.pages.borrow().iter().enumerate() {
                // SAFETY: pages of the heap's classes stay mapped while it lives.
                for (i, b) in unsafe { live_blocks(page, class.size) } {
                    f(Live {
                        ptr: b,
                        kind: class.kind,
                        size: class.size,
                        slot: Slot::Small {
                            class: ci as u32,
                            page: pi as u32,
                            index: i as u32,
                        },
                    });
                }
            }
        }
        let large: Vec<(usize, Kind)> = core.large.borrow().iter().map(|(&p, &k)| (p, k)).collect();
        for (p, kind) in large {
            let ptr = p as *mut u8;
            // SAFETY: a live large block keeps its size in its prefix.
            let size = unsafe { *(ptr.sub(PREFIX).add(8) as *const usize) };
            f(Live {
                ptr,
                kind,
                size,
                slot: Slot::Large,
            });
        }
    }

    /// For side tables: the page count of each class and the blocks each
    /// page has handed out.
    pub fn shape(&self) -> Vec<Vec<u32>> {
        self.core()
            .classes
            .iter()
            .map(|c| {
                c.pages
                    .borrow()
                    .iter()
                    // SAFETY: pages stay mapped while the heap lives.
                    .map(|&p| unsafe { (*p).bump.get() })
                    .collect()
            })
            .collect()
    }

    /// Where a block allocated by this heap sits (see `for_each_live`).
    ///
    /// # Safety
    /// `p` must be a live block of this heap, of `size` bytes.
    pub unsafe fn slot_of(p: *const u8, size: usize) -> Slot {
        if size > MAX_SMALL {
            return Slot::Large;
        }
        let page = (p as usize & !(PAGE - 1)) as *const PageHeader;
        let class = &*(*page).class;
        let core = &*class.core;
        let ci = (class as *const Class).offset_from(core.classes.as_ptr()) as u32;
        Slot::Small {
            class: ci,
            page: (*page).index,
            index: ((p as usize - page as usize - FIRST) / class.size) as u32,
        }
    }
}

/// The live blocks of a page of `size`-byte blocks, with their indices:
/// those below `bump` were handed out, and a free one has a zero count.
///
/// # Safety
/// `page` is a mapped page of the heap, and no block of it is allocated or
/// freed while the iterator is used.
unsafe fn live_blocks(
    page: *mut PageHeader,
    size: usize,
) -> impl Iterator<Item = (usize, *mut u8)> {
    let n = (*page).bump.get() as usize;
    (0..n)
        .map(move |i| (i, (page as *mut u8).add(FIRST + i * size)))
        .filter(|&(_, b)| *(b as *const u32) != 0)
}

/// A live block, as `Heap::for_each_live` hands it out.
#[derive(Clone, Copy, Debug)]
pub struct Live {
    pub ptr: *mut u8,
    pub kind: Kind,
    pub size: usize,
    pub slot: Slot,
}

/// Where a live block is, for side tables indexed by class, page and slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Small { class: u32, page: u32, index: u32 },
    Large,
}

impl Class {
    /// The current page is full: continue on a page that has free blocks
    /// again, or on a new one.
    #[cold]
    fn refill(&self) -> *mut u8 {
        // SAFETY: pages stay mapped while the heap lives; free blocks keep
        // the next one at offset 8.
        unsafe {
            let old = self.current.get();
            if !old.is_null() {
                (*old).listed.set(false);
            }
            while let Some(page) = self.partial.borrow_mut().pop() {
                let f = (*page).free.get();
                if f.is_null() {
                    (*page).listed.set(false);
                    continue;
                }
                self.current.set(page);
                (*page).free.set(*(f.add(8) as *const *mut u8));
                return f;
            }
            let mut pages = self.pages.borrow_mut();
            let page = (*self.core).page();
            page.write(PageHeader {
                class: self,
                index: pages.len() as u32,
                bump: Cell::new(1),
                free: Cell::new(null_mut()),
                listed: Cell::new(true),
            });
            pages.push(page);
            self.current.set(page);
            (page as *mut u8).add(FIRST)
        }
    }
}

/// Give back a block of `size` bytes that `Heap::alloc` made.
///
/// # Safety
/// `p` is a live block of that size whose object has been dropped; it is
/// not used afterwards.
#[inline]
pub unsafe fn free(p: *mut u8, size: usize) {
    if size > MAX_SMALL {
        let base = p.sub(PREFIX);
        let core = &*(*(base as *const *const Core));
        core.large.borrow_mut().remove(&(p as usize));
        core.large_live.set(core.large_live.get() - size);
        dealloc(
            base,
            Layout::from_size_align(size + PREFIX, 16).expect("large layout"),
        );
        return;
    }
    let page = (p as usize & !(PAGE - 1)) as *mut PageHeader;
    *(p as *mut u32) = 0;
    *(p.add(8) as *mut *mut u8) = (*page).free.get();
    (*page).free.set(p);
    if !(*page).listed.get() {
        (*page).listed.set(true);
        (*(*page).class).partial.borrow_mut().push(page);
    }
}

impl Drop for Heap {
    fn drop(&mut self) {
        if self.live_bytes() != 0 {
            // Something outlives the evaluation: keep its memory (and the
            // classes its blocks free into) for good.
            return;
        }
        // SAFETY: no live block refers to the core or its pages any more.
        unsafe {
            let core = Box::from_raw(self.core);
            for &chunk in core.chunks.borrow().iter() {
                libc::munmap(chunk as *mut libc::c_void, CHUNK);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_reused_enumerated_and_found() {
        let h = Heap::new();
        let a = h.alloc(24, Kind::Thunk);
        let b = h.alloc(24, Kind::Thunk);
        let big = h.alloc(1024, Kind::Env);
        unsafe {
            *(a as *mut u32) = 1;
            *(b as *mut u32) = 1;
            *(big as *mut u32) = 1;
        }
        assert_eq!(h.live_bytes(), 24 + 24 + 1024);
        let mut seen = Vec::new();
        h.for_each_live(|b| seen.push((b.ptr, b.kind)));
        assert_eq!(seen.len(), 3);
        assert!(seen.contains(&(a, Kind::Thunk)) && seen.contains(&(big, Kind::Env)));
        assert_eq!(
            unsafe { Heap::slot_of(b, 24) },
            Slot::Small {
                class: class_index(24, Kind::Thunk) as u32,
                page: 0,
                index: 1
            }
        );
        unsafe {
            free(a, 24);
            free(big, 1024);
        }
        let mut n = 0;
        h.for_each_live(|_| n += 1);
        assert_eq!(n, 1);
        // The freed block is handed out again first.
        assert_eq!(h.alloc(24, Kind::Thunk), a);
        unsafe {
            *(a as *mut u32) = 1;
            free(a, 24);
            free(b, 24);
        }
        assert_eq!(h.live_bytes(), 0);
    }

    #[test]
    fn many_pages() {
        let h = Heap::new();
        let n = 3 * PAGE / 40;
        let blocks: Vec<*mut u8> = (0..n).map(|_| h.alloc(40, Kind::Thunk)).collect();
        for &b in &blocks {
            unsafe { *(b as *mut u32) = 1 };
        }
        assert!(h.heap_bytes() >= 3 * PAGE);
        let mut count = 0;
        h.for_each_live(|_| count += 1);
        assert_eq!(count, n);
        for b in blocks {
            unsafe { free(b, 40) };
        }
        assert_eq!(h.live_bytes(), 0);
    }

    #[test]
    fn empty_pages_go_back_and_are_reused() {
        let h = Heap::new();
        // Three pages of 40-byte blocks and three of 24-byte ones.
        let n40 = 3 * PAGE / 40;
        let n24 = 3 * PAGE / 24;
        let b40: Vec<*mut u8> = (0..n40).map(|_| h.alloc(40, Kind::Thunk)).collect();
        let b24: Vec<*mut u8> = (0..n24).map(|_| h.alloc(24, Kind::Thunk)).collect();
        for &b in b40.iter().chain(&b24) {
            unsafe { *(b as *mut u32) = 1 };
        }
        let full = h.heap_bytes();
        assert!(full >= 6 * PAGE);
        // Keep one block of the first 40-byte page and the last 24-byte one.
        let keep = [b40[0], b24[n24 - 1]];
        for &b in &b40[1..] {
            unsafe { free(b, 40) };
        }
        for &b in &b24[..n24 - 1] {
            unsafe { free(b, 24) };
        }
        let released = h.release_empty_pages();
        assert!(released >= 4 * PAGE, "released {released}");
        assert_eq!(h.heap_bytes(), full - released);
        // The survivors are still enumerated, and found at their new indices.
        let mut seen = Vec::new();
        h.for_each_live(|l| seen.push((l.ptr, l.slot)));
        assert_eq!(seen.len(), 2);
        for (p, slot) in seen {
            assert!(keep.contains(&p));
            let size = if p == keep[0] { 40 } else { 24 };
            assert_eq!(unsafe { Heap::slot_of(p, size) }, slot);
        }
        // Released pages are handed out again before new chunks are mapped.
        let mapped = h.mapped_bytes();
        let again: Vec<*mut u8> = (0..n40).map(|_| h.alloc(40, Kind::Thunk)).collect();
        for &b in &again {
            unsafe { *(b as *mut u32) = 1 };
        }
        assert_eq!(h.mapped_bytes(), mapped);
        assert_eq!(h.live_bytes(), (n40 + 1) * 40 + 24);
        for b in again.into_iter().chain([keep[0]]) {
            unsafe { free(b, 40) };
        }
        unsafe { free(keep[1], 24) };
        assert_eq!(h.live_bytes(), 0);
    }
}
