//! Attribute sets: one allocation each, a 16-byte header (count, length,
//! room, layers) followed by the attributes; a layer over another set has
//! 16 more bytes before the header (the set below, the total length). As
//! `Attrs` over a `Vec` every set was two allocations and 56 bytes of
//! overhead; NixOS minimal keeps 800,000 sets alive, nearly all of them one
//! layer.
//!
//! An `Attrs` is a counted handle whose bits are those of the `Value` that
//! holds it (the set tag above the address), so a `&Value` of a set can be
//! read as a `&Attrs`. Changing a set (`insert`) copies it first unless the
//! handle is the only one, like `Rc::make_mut`.
//!
//! `a // b` with a small `b` does not copy `a`: the result is a layer
//! holding `b`'s attributes on top of `a` (as CppNix 2.34 does, with its
//! limits: a right side of at most 16 attributes, at most 8 layers).
//! nixpkgs' overlays otherwise copied its 20,000-attribute package set over
//! and over. Lookups search the layers top down; iteration merges them in
//! symbol order, upper layers shadowing lower ones.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::Cell;

use nixvm_compiler::Symbol;

use super::counted::Counted;
use super::repr::ATTRS_BITS;
use super::{PosIdx, Value};

/// One attribute: 16 bytes, CppNix's `Attr` with the value inline instead
/// of a pointer to it.
#[derive(Clone)]
pub struct Attr {
    /// The attribute's name.
    pub name: Symbol,
    /// Where it was defined.
    pub pos: PosIdx,
    /// Its value.
    pub value: Value,
}

impl Attr {
    /// An attribute with no position.
    pub fn new(name: Symbol, value: Value) -> Attr {
        Attr {
            name,
            pos: PosIdx::NONE,
            value,
        }
    }
}

#[repr(C)]
struct Header {
    count: Cell<u32>,
    /// This layer's attributes, sorted by symbol id.
    len: u32,
    /// Room for attributes in this allocation.
    cap: u32,
    /// Layers in the chain, this one included: above 1, a `Below` precedes
    /// the header.
    layers: u32,
}

/// What a layer over another set keeps before its header.
#[repr(C)]
struct Below {
    /// The layer below, whose attributes this one's shadow.
    base: Attrs,
    /// Distinct names over all layers.
    total: u32,
}

const _: () = {
    // `Value`'s clone and drop read the count here (`repr.rs`, `COUNTED_FIRST`).
    assert!(std::mem::offset_of!(Header, count) == 0);
    assert!(std::mem::size_of::<Header>() == 16);
    assert!(std::mem::size_of::<Below>() == 16);
    assert!(std::mem::size_of::<Attr>() == 16);
    assert!(std::mem::size_of::<Attrs>() == 8);
};

/// CppNix's `bindingsUpdateLayerRhsSizeThreshold` default.
const LAYER_RHS_MAX: usize = 16;
/// A larger right side becomes a layer too when the left side is at least
/// this large and as large as the right side (see `update`).
const LAYER_LHS_MIN: usize = 64;
/// CppNix's `Bindings::maxLayers`.
const MAX_LAYERS: u32 = 8;

/// The allocation of a set with room for `cap` attributes, with or without
/// a `Below`.
fn layout(cap: usize, layered: bool) -> Layout {
    let below = if layered {
        std::mem::size_of::<Below>()
    } else {
        0
    };
    Layout::from_size_align(
        below + std::mem::size_of::<Header>() + cap * std::mem::size_of::<Attr>(),
        8,
    )
    .expect("set layout")
}

/// A shared attribute set (see the module header).
#[repr(transparent)]
pub struct Attrs(Counted);

/// Iterates a set's attributes in symbol order.
#[derive(Clone)]
pub enum AttrsIter<'a> {
    Flat(std::slice::Iter<'a, Attr>),
    Merged(std::vec::IntoIter<&'a Attr>),
}

impl<'a> Iterator for AttrsIter<'a> {
    type Item = &'a Attr;
    #[inline]
    fn next(&mut self) -> Option<&'a Attr> {
        match self {
            AttrsIter::Flat(i) => i.next(),
            AttrsIter::Merged(i) => i.next(),
        }
    }
}

impl Default for Attrs {
    fn default() -> Attrs {
        Attrs::new()
    }
}

impl Attrs {
    /// A new set with room for `cap` attributes in this layer, over the set
    /// `below` with `total` distinct names over all layers, if any.
    fn alloc(cap: usize, below: Option<(Attrs, u32)>) -> Attrs {
        let cap32 = u32::try_from(cap).expect("attribute count fits in u32");
        let l = layout(cap, below.is_some());
        let layers = below.as_ref().map_or(1, |(b, _)| b.header().layers + 1);
        // SAFETY: a non-zero size; the header (and `Below`) are written
        // before use.
        unsafe {
            let mut p = alloc(l);
            if p.is_null() {
                handle_alloc_error(l);
            }
            if let Some((base, total)) = below {
                (p as *mut Below).write(Below { base, total });
                p = p.add(std::mem::size_of::<Below>());
            }
            (p as *mut Header).write(Header {
                count: Cell::new(1),
                len: 0,
                cap: cap32,
                layers,
            });
            Attrs(Counted::new(ATTRS_BITS, p))
        }
    }

    /// What a layer over another set keeps (none for one layer).
    #[inline]
    fn below(&self) -> Option<&Below> {
        if self.header().layers > 1 {
            // SAFETY: a layered set's `Below` precedes its header.
            Some(unsafe { &*(self.0.base().sub(std::mem::size_of::<Below>()) as *const Below) })
        } else {
            None
        }
    }

    /// The layer below, whose attributes this one's shadow.
    #[inline]
    fn base_layer(&self) -> Option<&Attrs> {
        self.below().map(|b| &b.base)
    }

    /// The set's bits (for `Value`), owning its count.
    pub(super) fn into_bits(self) -> u64 {
        std::mem::ManuallyDrop::new(self).0.bits()
    }

    /// The header, to write (the caller knows the handle is unique, or the
    /// set is still being built); writes never go through `header()`'s `&`.
    #[inline]
    fn header_ptr(&self) -> *mut Header {
        self.0.base() as *mut Header
    }

    #[inline]
    fn header(&self) -> &Header {
        // SAFETY: the allocation lives while this handle does.
        unsafe { &*(self.0.base() as *const Header) }
    }

    #[inline]
    fn slots(&self) -> *mut Attr {
        // SAFETY: the attributes follow the header in the allocation.
        unsafe { self.0.base().add(std::mem::size_of::<Header>()) as *mut Attr }
    }

    /// This layer's attributes.
    #[inline]
    fn entries(&self) -> &[Attr] {
        // SAFETY: the first `len` slots are initialised.
        unsafe { std::slice::from_raw_parts(self.slots(), self.header().len as usize) }
    }

    /// Build from attributes already sorted by symbol with no duplicates.
    fn flat(entries: Vec<Attr>) -> Attrs {
        let n = entries.len();
        let a = Attrs::alloc(n, None);
        let mut entries = std::mem::ManuallyDrop::new(entries);
        // SAFETY: `n` attributes move from the vector into room for `n`; the
        // vector's buffer is then freed without dropping them.
        unsafe {
            std::ptr::copy_nonoverlapping(entries.as_ptr(), a.slots(), n);
            let hdr = a.header_ptr();
            (*hdr).len = n as u32;
            entries.set_len(0);
            std::mem::ManuallyDrop::drop(&mut entries);
        }
        a
    }

    /// An empty set.
    pub fn new() -> Attrs {
        Attrs::alloc(0, None)
    }
    /// An empty set with room for `n` attributes.
    pub fn with_capacity(n: usize) -> Attrs {
        Attrs::alloc(n, None)
    }
    /// Build from entries already sorted by symbol with no duplicates.
    pub fn from_sorted(entries: Vec<(Symbol, Value)>) -> Attrs {
        Attrs::from_sorted_attrs(
            entries
                .into_iter()
                .map(|(name, value)| Attr::new(name, value))
                .collect(),
        )
    }
    /// Build from attributes already sorted by symbol with no duplicates.
    pub fn from_sorted_attrs(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs::flat(entries)
    }
    /// Build from arbitrary entries; a later duplicate wins.
    pub fn from_unsorted(entries: Vec<(Symbol, Value)>) -> Attrs {
        Attrs::from_unsorted_attrs(
            entries
                .into_iter()
                .map(|(name, value)| Attr::new(name, value))
                .collect(),
        )
    }
    /// `from_unsorted` for attributes with their positions.
    pub fn from_unsorted_attrs(mut entries: Vec<Attr>) -> Attrs {
        entries.reverse();
        entries.sort_by_key(|e| e.name);
        entries.dedup_by_key(|e| e.name);
        Attrs::flat(entries)
    }

    /// Before a change in place: make this handle the only one, with one
    /// layer and room for `more` attributes (copying as needed).
    fn own(&mut self, more: usize) -> &mut Header {
        let h = self.header();
        let need = h.len as usize + more;
        let flat = h.layers == 1;
        if h.count.get() != 1 || !flat || (h.cap as usize) < need {
            let unique_flat = h.count.get() == 1 && flat;
            let len = self.len();
            let cap = if unique_flat {
                need.max(h.cap as usize * 2)
            } else {
                len + more
            };
            let new = Attrs::alloc(cap, None);
            // SAFETY: room for `len` attributes; moved out of a unique flat
            // set (whose slots are then forgotten), cloned out of any other.
            unsafe {
                let hdr = new.header_ptr();
                if unique_flat {
                    std::ptr::copy_nonoverlapping(self.slots(), new.slots(), len);
                    (*self.header_ptr()).len = 0;
                } else {
                    for (i, a) in self.attr_iter().enumerate() {
                        new.slots().add(i).write(a.clone());
                    }
                }
                (*hdr).len = len as u32;
            }
            *self = new;
        }
        // SAFETY: unique now: nothing else reads the header.
        unsafe { &mut *self.header_ptr() }
    }

    /// Give every attribute the same definition position.
    pub fn set_all_positions(&mut self, pos: PosIdx) {
        let n = self.own(0).len as usize;
        for i in 0..n {
            // SAFETY: unique, and `i` is below the length.
            unsafe { (*self.slots().add(i)).pos = pos }
        }
    }
    fn find(&self, name: Symbol) -> Result<usize, usize> {
        self.entries().binary_search_by_key(&name, |e| e.name)
    }
    /// The attribute called `name`, from the uppermost layer that has it.
    #[inline]
    fn lookup(&self, name: Symbol) -> Option<&Attr> {
        let mut layer = self;
        loop {
            if let Ok(i) = layer.find(name) {
                return Some(&layer.entries()[i]);
            }
            layer = layer.base_layer()?;
        }
    }
    /// This layer's attributes and the layer below (for walks over the heap).
    pub(crate) fn layer(&self) -> (&[Attr], Option<&Attrs>) {
        (self.entries(), self.base_layer())
    }
    /// The bytes of this layer's allocation.
    pub(crate) fn layer_bytes(&self) -> usize {
        layout(self.header().cap as usize, self.header().layers > 1).size()
    }
    /// Where attribute `name` was defined (resolve it with `Vm::pos`).
    pub fn position(&self, name: Symbol) -> PosIdx {
        self.lookup(name).map_or(PosIdx::NONE, |a| a.pos)
    }
    /// How many attributes it has.
    #[inline]
    pub fn len(&self) -> usize {
        match self.below() {
            Some(b) => b.total as usize,
            None => self.header().len as usize,
        }
    }
    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The value of attribute `name`.
    #[inline]
    pub fn get(&self, name: Symbol) -> Option<&Value> {
        self.lookup(name).map(|a| &a.value)
    }
    /// Whether it has attribute `name`.
    pub fn contains(&self, name: Symbol) -> bool {
        self.lookup(name).is_some()
    }
    /// The attribute called `name` with its position.
    pub fn get_attr(&self, name: Symbol) -> Option<&Attr> {
        self.lookup(name)
    }
    /// Insert; returns false (and changes nothing) if the name exists.
    pub fn insert_new(&mut self, name: Symbol, value: Value, pos: PosIdx) -> bool {
        if self.contains(name) {
            return false;
        }
        // Flatten first: the index is into the one layer that remains.
        self.own(1);
        let i = self.find(name).expect_err("absent");
        self.put_at(i, Attr { name, pos, value });
        true
    }
    /// Add or replace attribute `name`.
    pub fn insert(&mut self, name: Symbol, v: Value) {
        match self.find(name) {
            Ok(i) if self.header().layers == 1 => {
                self.own(0);
                // SAFETY: unique, and `i` is below the length.
                unsafe { (*self.slots().add(i)).value = v }
            }
            _ => {
                self.own(1);
                match self.find(name) {
                    // SAFETY: unique, and `i` is below the length.
                    Ok(i) => unsafe { (*self.slots().add(i)).value = v },
                    Err(i) => self.put_at(i, Attr::new(name, v)),
                }
            }
        }
    }
    /// Insert a new attribute at index `i` of a set already made flat and
    /// unique (`own`), so `i` stays valid.
    fn put_at(&mut self, i: usize, a: Attr) {
        let h = self.own(1);
        let len = h.len as usize;
        h.len += 1;
        // SAFETY: unique, with room for one more; the tail moves up one slot.
        unsafe {
            let p = self.slots().add(i);
            std::ptr::copy(p, p.add(1), len - i);
            p.write(a);
        }
    }
    /// The attributes with their positions, in symbol order.
    pub fn attr_iter(&self) -> AttrsIter<'_> {
        let Some(base) = self.base_layer() else {
            return AttrsIter::Flat(self.entries().iter());
        };
        // Merge upward from the bottom layer; each layer shadows what is below.
        let mut layers: Vec<&[Attr]> = vec![self.entries()];
        let mut l = base;
        loop {
            layers.push(l.entries());
            match l.base_layer() {
                Some(b) => l = b,
                None => break,
            }
        }
        let mut merged: Vec<&Attr> = layers.pop().expect("bottom layer").iter().collect();
        while let Some(upper) = layers.pop() {
            let mut out = Vec::with_capacity(merged.len() + upper.len());
            let (mut i, mut j) = (0, 0);
            while i < merged.len() && j < upper.len() {
                match merged[i].name.cmp(&upper[j].name) {
                    std::cmp::Ordering::Less => {
                        out.push(merged[i]);
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        out.push(&upper[j]);
                        j += 1;
                    }
                    std::cmp::Ordering::Equal => {
                        out.push(&upper[j]);
                        i += 1;
                        j += 1;
                    }
                }
            }
            out.extend_from_slice(&merged[i..]);
            out.extend(upper[j..].iter());
            merged = out;
        }
        debug_assert_eq!(merged.len(), self.len());
        AttrsIter::Merged(merged.into_iter())
    }
    /// The attributes, in the set's own order (by symbol; see `sorted_by_name` for Nix's order).
    pub fn iter(&self) -> impl Iterator<Item = (Symbol, &Value)> {
        self.attr_iter().map(|a| (a.name, &a.value))
    }
    /// Entries ordered by name, as Nix shows and iterates them.
    pub fn sorted_by_name(&self) -> Vec<(Symbol, &Value)> {
        let mut v: Vec<(Symbol, &Value)> = self.iter().collect();
        v.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
        v
    }
    /// `a // b`: `b` wins. A small `b` becomes a layer on top of `a` (as in
    /// CppNix), and so does a larger `b` over an `a` at least as large:
    /// copying `a` then made 76 MB of NixOS minimal's peak and 1.3 GB of
    /// all packages' (module and overlay fixpoints keep every
    /// intermediate `//` alive), for lookups that search a few more layers.
    pub fn update(a: &Attrs, b: &Attrs) -> Attrs {
        let layers = a.header().layers;
        let n = b.len();
        let small = n <= LAYER_RHS_MAX;
        let big_left = a.len() >= LAYER_LHS_MIN && a.len() >= n;
        if (small || big_left) && layers < MAX_LAYERS {
            // `b`'s attributes (all its layers' merged, when it is a layer
            // itself: `drv // passthru` over a derivation's own `//` layers
            // was half a million flat copies of a on all of nixpkgs).
            // Merged once: a copy of the iterator counts, the original writes.
            let be = b.attr_iter();
            let shadowed = be.clone().filter(|e| a.contains(e.name)).count();
            let total = a.len() + n - shadowed;
            let out = Attrs::alloc(n, Some((a.clone(), total as u32)));
            // SAFETY: room for `n` attributes; `attr_iter` yields exactly `n`.
            unsafe {
                for (i, e) in be.enumerate() {
                    out.slots().add(i).write(e.clone());
                }
                (*out.header_ptr()).len = n as u32;
            }
            return out;
        }
        let av: Vec<&Attr> = a.attr_iter().collect();
        let bv: Vec<&Attr> = b.attr_iter().collect();
        // Size the result exactly: overlays update huge sets with mostly shared names.
        let (mut i, mut j, mut shared) = (0, 0, 0);
        while i < av.len() && j < bv.len() {
            match av[i].name.cmp(&bv[j].name) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    shared += 1;
                    i += 1;
                    j += 1;
                }
            }
        }
        let mut out = Vec::with_capacity(av.len() + bv.len() - shared);
        let (mut i, mut j) = (0, 0);
        while i < av.len() && j < bv.len() {
            match av[i].name.cmp(&bv[j].name) {
                std::cmp::Ordering::Less => {
                    out.push(av[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(bv[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(bv[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend(av[i..].iter().map(|&x| x.clone()));
        out.extend(bv[j..].iter().map(|&x| x.clone()));
        Attrs::flat(out)
    }

    /// The handle's bits, for a walk that keeps sets by address.
    pub(crate) fn bits(&self) -> u64 {
        self.0.bits()
    }
    /// A handle that owns no count, from `bits`.
    ///
    /// # Safety
    /// `bits` came from `Attrs::bits` of a set that is still alive.
    pub(crate) unsafe fn view_bits(bits: u64) -> std::mem::ManuallyDrop<Attrs> {
        std::mem::ManuallyDrop::new(Attrs(Counted::from_bits(bits)))
    }
    /// Whether the two are the same set object.
    pub fn ptr_eq(a: &Attrs, b: &Attrs) -> bool {
        a.0.bits() == b.0.bits()
    }
    /// The allocation's address (for walks over the heap).
    pub fn as_ptr(&self) -> *const () {
        self.0.base() as *const ()
    }
    /// How many handles share this set.
    pub fn strong_count(&self) -> usize {
        self.0.strong_count()
    }
    /// Layers in the chain (tests).
    #[cfg(test)]
    pub(crate) fn layers(&self) -> u32 {
        self.header().layers
    }
}

impl Clone for Attrs {
    #[inline]
    fn clone(&self) -> Attrs {
        Attrs(self.0.retain())
    }
}

impl Drop for Attrs {
    #[inline]
    fn drop(&mut self) {
        if self.0.release() {
            // SAFETY: the last handle: drop the attributes and the layer
            // below, then free the allocation.
            unsafe {
                let p = self.0.base();
                let h = &*(p as *const Header);
                let (len, cap, layered) = (h.len as usize, h.cap as usize, h.layers > 1);
                std::ptr::drop_in_place(std::ptr::slice_from_raw_parts_mut(self.slots(), len));
                let start = if layered {
                    let b = p.sub(std::mem::size_of::<Below>()) as *mut Below;
                    std::ptr::drop_in_place(b);
                    b as *mut u8
                } else {
                    p
                };
                dealloc(start, layout(cap, layered));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::View;

    fn int(v: Option<&Value>) -> Option<i64> {
        v.and_then(Value::as_int)
    }

    #[test]
    fn update_merges_and_right_wins() {
        let a = Attrs::from_unsorted(vec![
            (Symbol::intern("a"), Value::Int(1)),
            (Symbol::intern("b"), Value::Int(2)),
        ]);
        let b = Attrs::from_unsorted(vec![
            (Symbol::intern("b"), Value::Int(3)),
            (Symbol::intern("c"), Value::Int(4)),
        ]);
        let u = Attrs::update(&a, &b);
        assert_eq!(u.len(), 3);
        assert_eq!(int(u.get(Symbol::intern("b"))), Some(3));
        let names: Vec<Symbol> = u.iter().map(|(n, _)| n).collect();
        assert_eq!(names.len(), 3);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_change_copies_a_shared_set_and_grows_a_unique_one() {
        let sym = |i: usize| Symbol::intern(&format!("set-cow-{i}"));
        let mut a = Attrs::new();
        for i in (0..50).rev() {
            assert!(a.insert_new(sym(i), Value::Int(i as i64), PosIdx::NONE));
        }
        assert!(!a.insert_new(sym(7), Value::Null, PosIdx::NONE));
        assert_eq!(a.len(), 50);
        let before = a.clone();
        assert_eq!(a.strong_count(), 2);
        a.insert(sym(7), Value::Int(-7));
        a.insert(sym(99), Value::Int(99));
        assert_eq!(before.strong_count(), 1);
        assert_eq!((int(before.get(sym(7))), before.len()), (Some(7), 50));
        assert_eq!(
            (int(a.get(sym(7))), int(a.get(sym(99))), a.len()),
            (Some(-7), Some(99), 51)
        );
        let names: Vec<Symbol> = a.iter().map(|(n, _)| n).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        // Values inside are counted like any others: dropping the sets frees them.
        let s = Value::str("kept");
        let mut b = Attrs::new();
        b.insert(sym(0), s.clone());
        let c = b.clone();
        drop((b, c));
        match s.view() {
            View::String(r) => assert_eq!(r.strong_count(), 1),
            _ => panic!("a string"),
        }
    }

    #[test]
    fn a_large_right_side_over_a_larger_set_is_a_layer() {
        let sym = |i: usize| Symbol::intern(&format!("big-layer-test-{i}"));
        let set = |r: std::ops::Range<usize>, add: i64| {
            Attrs::from_unsorted(r.map(|i| (sym(i), Value::Int(i as i64 + add))).collect())
        };
        // 100 names updated by 40 (half of them new): a layer, not a copy.
        let (a, b) = (set(0..100, 0), set(80..120, 1000));
        let u = Attrs::update(&a, &b);
        assert_eq!(u.layers(), 2);
        assert_eq!(u.len(), 120);
        for i in 0..120 {
            let want = if i < 80 { i as i64 } else { i as i64 + 1000 };
            assert_eq!(int(u.get(sym(i))), Some(want), "{i}");
        }
        let names: Vec<Symbol> = u.iter().map(|(n, _)| n).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(names.len(), 120);
        // A right side larger than the left is copied into one layer.
        let c = Attrs::update(&set(0..70, 0), &set(0..100, 5));
        assert_eq!((c.layers(), c.len()), (1, 100));
    }

    #[test]
    fn a_layered_right_side_is_a_layer_of_its_merged_attributes() {
        let sym = |i: usize| Symbol::intern(&format!("layered-rhs-{i}"));
        let set = |r: std::ops::Range<usize>, add: i64| {
            Attrs::from_unsorted(r.map(|i| (sym(i), Value::Int(i as i64 + add))).collect())
        };
        // b = 10 names over a layer of 3 (one shadowing, two new): 12 names.
        let b = Attrs::update(&set(0..10, 100), &set(9..12, 200));
        assert_eq!((b.layers(), b.len()), (2, 12));
        // a // b with a of 70 names: one layer of b's 12 over a, not a copy of 82.
        let a = set(5..75, 0);
        let u = Attrs::update(&a, &b);
        assert_eq!((u.layers(), u.len()), (2, 75));
        for i in 0..75 {
            let want = match i {
                0..=8 => i as i64 + 100,
                9..=11 => i as i64 + 200,
                _ => i as i64,
            };
            assert_eq!(int(u.get(sym(i))), Some(want), "{i}");
        }
        let names: Vec<Symbol> = u.iter().map(|(n, _)| n).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(names.len(), 75);
    }

    #[test]
    fn layers_shadow_and_merge_like_a_copy() {
        let sym = |i: usize| Symbol::intern(&format!("layer-test-{i}"));
        let mut big =
            Attrs::from_unsorted((0..100).map(|i| (sym(i), Value::Int(i as i64))).collect());
        let mut copy: std::collections::BTreeMap<Symbol, i64> =
            (0..100).map(|i| (sym(i), i as i64)).collect();
        // More updates than the layer limit, each shadowing one name and adding one.
        for round in 0..20usize {
            let small = Attrs::from_unsorted(vec![
                (sym(round * 3), Value::Int(1000 + round as i64)),
                (sym(100 + round), Value::Int(2000 + round as i64)),
            ]);
            big = Attrs::update(&big, &small);
            copy.insert(sym(round * 3), 1000 + round as i64);
            copy.insert(sym(100 + round), 2000 + round as i64);
            assert!(big.layers() <= MAX_LAYERS);
            assert_eq!(big.len(), copy.len());
            let got: Vec<(Symbol, i64)> = big
                .iter()
                .map(|(n, v)| (n, v.as_int().expect("int")))
                .collect();
            let want: Vec<(Symbol, i64)> = copy.iter().map(|(k, v)| (*k, *v)).collect();
            assert_eq!(got, want);
            for (k, v) in &copy {
                assert_eq!(int(big.get(*k)), Some(*v));
            }
        }
        // Changing a layered set in place first copies it into one layer.
        let mut flat = big.clone();
        flat.insert(sym(999), Value::Null);
        assert_eq!(flat.len(), copy.len() + 1);
        assert_eq!(flat.layers(), 1);
        assert_eq!(big.len(), copy.len());
        // So does adding a name to one, which must land in symbol order.
        let mut added = big.clone();
        assert!(!added.insert_new(sym(1), Value::Null, PosIdx::NONE));
        assert!(added.insert_new(sym(998), Value::Int(998), PosIdx::NONE));
        assert_eq!(int(added.get(sym(998))), Some(998));
        let names: Vec<Symbol> = added.iter().map(|(n, _)| n).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(added.len(), copy.len() + 1);
    }
}
