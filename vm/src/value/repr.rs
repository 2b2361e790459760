//! The 8-byte encoding of `Value`. Every attribute, list element and env
//! slot is one `Value`, so its size is paid tens of millions of times on
//! NixOS (an enum with an 8-byte payload took 16). The top 16 bits are the
//! type tag, the low 48 the payload: a pointer (user-space addresses fit in
//! 48 bits on x86-64 and AArch64, checked when a value is made), an integer
//! that fits in 48 bits, or a Boolean. Integers beyond 48 bits and floats are
//! boxed (both are rare in Nix code). A thunk's tag is 0, so a thunk value
//! has exactly the bits of its `Thunk` handle and can be borrowed as one;
//! sets and strings are handles that carry their tag in their own bits
//! (`set.rs`, `string.rs`), borrowed the same way.
//!
//! Nothing matches on the encoding outside this module: `Value::view`
//! borrows a value as the [`View`] enum (scalars copied out, thunks, sets
//! and strings as [`Handle`]s, the other pointers as [`Ref`]s that deref to
//! the `Rc` they stand for), `Value::unpack` turns an
//! owned value into the [`Owned`] enum, and constructors keep the variant
//! names (`Value::Int(3)`, `Value::Null`).

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::num::NonZeroU64;
use std::ops::Deref;
use std::rc::Rc;

use super::{Attrs, Closure, List, NixStr, PrimOp, PrimOpApp, Thunk};

/// A Nix value (see the module header for its encoding).
#[repr(transparent)]
pub struct Value {
    bits: NonZeroU64,
    /// Values share `Rc`s: not `Send`, not `Sync`.
    _not_send: PhantomData<*const ()>,
}

pub(super) const SHIFT: u32 = 48;
pub(super) const PAYLOAD: u64 = (1 << SHIFT) - 1;

/// The bits of a pointer `p` under `tag` (user-space addresses fit in 48
/// bits on x86-64 and AArch64; checked here, once for every kind).
#[inline]
pub(super) fn tagged(tag: u64, p: *const u8) -> u64 {
    let a = p as u64;
    assert!(a & !PAYLOAD == 0, "heap address beyond 48 bits");
    tag << SHIFT | a
}

// Tags below `INT` carry a pointer. `THUNK` must be 0 (see the header).
const THUNK: u64 = 0;
const ATTRS: u64 = 1;
const LIST: u64 = 2;
const STRING: u64 = 3;
const LAMBDA: u64 = 4;
const PATH: u64 = 5;
const PRIMOP: u64 = 6;
const PRIMOPAPP: u64 = 7;
const FLOAT: u64 = 8;
const BIGINT: u64 = 9;
const INT: u64 = 10;
const NULL: u64 = 11;
const BOOL: u64 = 12;
/// A set's tag in place: `Attrs` handles carry it in their own bits.
pub(super) const ATTRS_BITS: u64 = ATTRS << SHIFT;
/// A string's tag in place, as for sets.
pub(super) const STRING_BITS: u64 = STRING << SHIFT;
/// A list's tag in place, as for sets.
pub(super) const LIST_BITS: u64 = LIST << SHIFT;

const _: () = {
    assert!(std::mem::size_of::<Value>() == 8);
    assert!(std::mem::size_of::<Option<Value>>() == 8);
    assert!(std::mem::size_of::<Thunk>() == 8);
};

/// A value borrowed as an enum, for `match`. Scalars are copied out; the
/// thunk, set and string are [`Handle`]s, the other pointers [`Ref`]s to
/// their `Rc`.
pub enum View<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(Handle<'a, NixStr>),
    Path(Ref<'a, String>),
    Attrs(Handle<'a, Attrs>),
    List(Handle<'a, List>),
    Lambda(Ref<'a, Closure>),
    PrimOp(Ref<'a, PrimOp>),
    PrimOpApp(Ref<'a, PrimOpApp>),
    Thunk(Handle<'a, Thunk>),
}

/// An owned value taken apart (see `Value::unpack`).
pub enum Owned {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(NixStr),
    Path(Rc<String>),
    Attrs(Attrs),
    List(List),
    Lambda(Rc<Closure>),
    PrimOp(Rc<PrimOp>),
    PrimOpApp(Rc<PrimOpApp>),
    Thunk(Thunk),
}

/// The `Rc` inside a value, borrowed for as long as the value: it derefs to
/// `Rc<T>` (so `Rc::ptr_eq` and method calls work as on the `Rc`), and
/// `clone` makes a new `Rc`.
pub struct Ref<'a, T> {
    rc: ManuallyDrop<Rc<T>>,
    _value: PhantomData<&'a T>,
}

impl<'a, T> Ref<'a, T> {
    /// # Safety
    /// `p` came from `Rc::into_raw` and a value holding it lives for `'a`.
    #[inline]
    pub(super) unsafe fn new(p: *const T) -> Ref<'a, T> {
        Ref {
            rc: ManuallyDrop::new(Rc::from_raw(p)),
            _value: PhantomData,
        }
    }
    /// A new `Rc` to the same object (not a copy of the `Ref`, which
    /// `Clone::clone` would give).
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn clone(&self) -> Rc<T> {
        Rc::clone(&self.rc)
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Ref<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self.rc).fmt(f)
    }
}

impl View<'_> {
    /// Whether it is `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, View::Null)
    }
    /// The value this view borrows, as a new handle.
    pub fn to_value(&self) -> Value {
        match self {
            View::Null => Value::Null,
            View::Bool(b) => Value::Bool(*b),
            View::Int(n) => Value::Int(*n),
            View::Float(x) => Value::Float(*x),
            View::String(s) => Value::String(s.clone()),
            View::Path(p) => Value::Path(p.clone()),
            View::Attrs(a) => Value::Attrs(a.clone()),
            View::List(l) => Value::List(l.clone()),
            View::Lambda(c) => Value::Lambda(c.clone()),
            View::PrimOp(p) => Value::PrimOp(p.clone()),
            View::PrimOpApp(p) => Value::PrimOpApp(p.clone()),
            View::Thunk(t) => Value::Thunk(t.clone()),
        }
    }
}

/// A thunk, set, list or string inside a value (their handles have the value's bits),
/// borrowed for as long as the value: it derefs to the handle, and `clone`
/// makes a new one.
pub struct Handle<'a, T>(&'a T);

impl<'a, T: Clone> Handle<'a, T> {
    /// A counted reference of the object.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn clone(&self) -> T {
        T::clone(self.0)
    }
    /// The object.
    #[inline]
    pub fn obj(&self) -> &'a T {
        self.0
    }
}

impl<T> Deref for Handle<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.0
    }
}

impl<'a, T> Ref<'a, T> {
    /// The object, borrowed for as long as the value holding it.
    #[inline]
    pub fn obj(&self) -> &'a T {
        // SAFETY: the value that holds this `Rc` lives for `'a` (see `new`),
        // and with it the object.
        unsafe { &*Rc::as_ptr(&self.rc) }
    }
}

impl<T> Deref for Ref<'_, T> {
    type Target = Rc<T>;
    #[inline]
    fn deref(&self) -> &Rc<T> {
        &self.rc
    }
}

impl Value {
    /// The value's bits, its count handed over with them (`from_raw_bits`
    /// takes it back).
    pub(super) fn into_bits(self) -> u64 {
        std::mem::ManuallyDrop::new(self).bits.get()
    }
    /// # Safety
    /// `bits` came from `into_bits`, once.
    pub(super) unsafe fn from_raw_bits(bits: u64) -> Value {
        Value::from_bits(bits)
    }
    #[inline]
    const fn from_bits(bits: u64) -> Value {
        match NonZeroU64::new(bits) {
            Some(bits) => Value {
                bits,
                _not_send: PhantomData,
            },
            None => panic!("a value's bits are never 0"),
        }
    }
    #[inline]
    fn tag(&self) -> u64 {
        self.bits.get() >> SHIFT
    }
    #[inline]
    fn ptr<T>(&self) -> *const T {
        (self.bits.get() & PAYLOAD) as *const T
    }
    #[inline]
    fn boxed<T>(tag: u64, rc: Rc<T>) -> Value {
        Value::from_bits(tagged(tag, Rc::into_raw(rc) as *const u8))
    }

    /// `null`.
    #[allow(non_upper_case_globals)]
    pub const Null: Value = Value::from_bits(NULL << SHIFT);

    /// A Boolean.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Bool(b: bool) -> Value {
        Value::from_bits(BOOL << SHIFT | b as u64)
    }
    /// An integer.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Int(n: i64) -> Value {
        if (n << (64 - SHIFT)) >> (64 - SHIFT) == n {
            Value::from_bits(INT << SHIFT | (n as u64 & PAYLOAD))
        } else {
            Value::boxed(BIGINT, Rc::new(n))
        }
    }
    /// A float.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Float(x: f64) -> Value {
        Value::boxed(FLOAT, Rc::new(x))
    }
    /// A string.
    #[allow(non_snake_case)]
    #[inline]
    pub fn String(s: NixStr) -> Value {
        Value::from_bits(s.into_bits())
    }
    /// A path.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Path(p: Rc<String>) -> Value {
        Value::boxed(PATH, p)
    }
    /// A set.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Attrs(a: Attrs) -> Value {
        Value::from_bits(a.into_bits())
    }
    /// A list.
    #[allow(non_snake_case)]
    #[inline]
    pub fn List(l: List) -> Value {
        Value::from_bits(l.into_bits())
    }
    /// A lambda.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Lambda(c: Rc<Closure>) -> Value {
        Value::boxed(LAMBDA, c)
    }
    /// A builtin.
    #[allow(non_snake_case)]
    #[inline]
    pub fn PrimOp(p: Rc<PrimOp>) -> Value {
        Value::boxed(PRIMOP, p)
    }
    /// A builtin applied to some of its arguments.
    #[allow(non_snake_case)]
    #[inline]
    pub fn PrimOpApp(p: Rc<PrimOpApp>) -> Value {
        Value::boxed(PRIMOPAPP, p)
    }
    /// A thunk.
    #[allow(non_snake_case)]
    #[inline]
    pub fn Thunk(t: Thunk) -> Value {
        Value::from_bits(tagged(THUNK, ManuallyDrop::new(t).as_ptr() as *const u8))
    }

    /// Borrow the value as an enum to match on.
    #[inline]
    pub fn view(&self) -> View<'_> {
        // SAFETY: the tag says what the payload is; the `Ref`s borrow `self`.
        unsafe {
            match self.tag() {
                THUNK => View::Thunk(Handle(&*(self as *const Value as *const Thunk))),
                ATTRS => View::Attrs(Handle(&*(self as *const Value as *const Attrs))),
                LIST => View::List(Handle(&*(self as *const Value as *const List))),
                STRING => View::String(Handle(&*(self as *const Value as *const NixStr))),
                LAMBDA => View::Lambda(Ref::new(self.ptr())),
                PATH => View::Path(Ref::new(self.ptr())),
                PRIMOP => View::PrimOp(Ref::new(self.ptr())),
                PRIMOPAPP => View::PrimOpApp(Ref::new(self.ptr())),
                FLOAT => View::Float(*self.ptr::<f64>()),
                BIGINT => View::Int(*self.ptr::<i64>()),
                INT => View::Int(((self.bits.get() << (64 - SHIFT)) as i64) >> (64 - SHIFT)),
                NULL => View::Null,
                _ => View::Bool(self.bits.get() & 1 != 0),
            }
        }
    }

    /// Take an owned value apart.
    #[inline]
    pub fn unpack(self) -> Owned {
        let me = ManuallyDrop::new(self);
        // SAFETY: the tag says what the payload is; its ownership moves into
        // the result (`me` is not dropped).
        unsafe {
            match me.tag() {
                THUNK => Owned::Thunk(std::ptr::read(&*me as *const Value as *const Thunk)),
                ATTRS => Owned::Attrs(std::ptr::read(&*me as *const Value as *const Attrs)),
                LIST => Owned::List(std::ptr::read(&*me as *const Value as *const List)),
                STRING => Owned::String(std::ptr::read(&*me as *const Value as *const NixStr)),
                LAMBDA => Owned::Lambda(Rc::from_raw(me.ptr())),
                PATH => Owned::Path(Rc::from_raw(me.ptr())),
                PRIMOP => Owned::PrimOp(Rc::from_raw(me.ptr())),
                PRIMOPAPP => Owned::PrimOpApp(Rc::from_raw(me.ptr())),
                _ => match ManuallyDrop::into_inner(me).view() {
                    View::Null => Owned::Null,
                    View::Bool(b) => Owned::Bool(b),
                    View::Int(n) => Owned::Int(n),
                    View::Float(x) => Owned::Float(x),
                    _ => unreachable!("pointer tags handled above"),
                },
            }
        }
    }

    /// The thunk this value is, borrowed.
    #[inline]
    pub fn as_thunk(&self) -> Option<&Thunk> {
        match self.tag() {
            // SAFETY: a thunk value has the bits of its handle.
            THUNK => Some(unsafe { &*(self as *const Value as *const Thunk) }),
            _ => None,
        }
    }

    /// The set this value is, to change in place (`Attrs::insert` copies
    /// it first if it is shared).
    pub fn make_attrs_mut(&mut self) -> Option<&mut Attrs> {
        match self.tag() {
            // SAFETY: a set value has the bits of its handle, and a handle
            // changed in place keeps the set tag.
            ATTRS => Some(unsafe { &mut *(self as *mut Value as *mut Attrs) }),
            _ => None,
        }
    }
}

impl From<Owned> for Value {
    #[inline]
    fn from(o: Owned) -> Value {
        match o {
            Owned::Null => Value::Null,
            Owned::Bool(b) => Value::Bool(b),
            Owned::Int(n) => Value::Int(n),
            Owned::Float(x) => Value::Float(x),
            Owned::String(s) => Value::String(s),
            Owned::Path(p) => Value::Path(p),
            Owned::Attrs(a) => Value::Attrs(a),
            Owned::List(l) => Value::List(l),
            Owned::Lambda(c) => Value::Lambda(c),
            Owned::PrimOp(p) => Value::PrimOp(p),
            Owned::PrimOpApp(p) => Value::PrimOpApp(p),
            Owned::Thunk(t) => Value::Thunk(t),
        }
    }
}

/// Thunks, sets, lists and strings (the tags up to `STRING`) keep a `u32`
/// count first in their block, so copying or dropping one needs no switch:
/// `clone` and `drop` stay small enough to inline everywhere (as a switch
/// over every kind, `clone` was 6% of NixOS minimal's time, out of line).
const COUNTED_FIRST: u64 = STRING;

const _: () = assert!(THUNK == 0 && ATTRS <= COUNTED_FIRST && LIST <= COUNTED_FIRST);

impl Value {
    /// The count at the start of a thunk's, set's, list's or string's block.
    ///
    /// # Safety
    /// `self.tag() <= COUNTED_FIRST`.
    #[inline]
    unsafe fn first_count(&self) -> &std::cell::Cell<u32> {
        &*self.ptr::<std::cell::Cell<u32>>()
    }

    /// `clone` of the kinds behind an `Rc`.
    #[inline(never)]
    fn clone_rc(&self) {
        // SAFETY: the tag says what the payload is; each arm adds the count
        // the new value owns.
        unsafe {
            match self.tag() {
                LAMBDA => Rc::increment_strong_count(self.ptr::<Closure>()),
                PATH => Rc::increment_strong_count(self.ptr::<String>()),
                PRIMOP => Rc::increment_strong_count(self.ptr::<PrimOp>()),
                PRIMOPAPP => Rc::increment_strong_count(self.ptr::<PrimOpApp>()),
                FLOAT => Rc::increment_strong_count(self.ptr::<f64>()),
                BIGINT => Rc::increment_strong_count(self.ptr::<i64>()),
                _ => {}
            }
        }
    }

    /// `drop` of the last count of a counted-first kind, or of any `Rc` kind.
    /// Freeing a container frees what only it held, by recursion as deep as
    /// the data nests: containers free on a stack that grows rather than
    /// overflows (a 100,000-deep list must not kill the process when it goes).
    #[inline(never)]
    fn drop_slow(&mut self) {
        match self.tag() {
            THUNK | ATTRS | LIST | LAMBDA | PRIMOPAPP => {
                stacker::maybe_grow(64 * 1024, 1024 * 1024, || self.free_now())
            }
            _ => self.free_now(),
        }
    }

    fn free_now(&mut self) {
        // SAFETY: the tag says what the payload is; this value owns one count.
        unsafe {
            match self.tag() {
                THUNK => std::ptr::drop_in_place(self as *mut Value as *mut Thunk),
                ATTRS => std::ptr::drop_in_place(self as *mut Value as *mut Attrs),
                LIST => std::ptr::drop_in_place(self as *mut Value as *mut List),
                STRING => std::ptr::drop_in_place(self as *mut Value as *mut NixStr),
                LAMBDA => Rc::decrement_strong_count(self.ptr::<Closure>()),
                PATH => Rc::decrement_strong_count(self.ptr::<String>()),
                PRIMOP => Rc::decrement_strong_count(self.ptr::<PrimOp>()),
                PRIMOPAPP => Rc::decrement_strong_count(self.ptr::<PrimOpApp>()),
                FLOAT => Rc::decrement_strong_count(self.ptr::<f64>()),
                BIGINT => Rc::decrement_strong_count(self.ptr::<i64>()),
                _ => {}
            }
        }
    }
}

impl Clone for Value {
    #[inline]
    fn clone(&self) -> Value {
        let tag = self.tag();
        if tag <= COUNTED_FIRST {
            // SAFETY: the tag says the block starts with its count.
            super::counted::count_up(unsafe { self.first_count() });
        } else if tag < INT {
            self.clone_rc();
        }
        Value {
            bits: self.bits,
            _not_send: PhantomData,
        }
    }
}

impl Drop for Value {
    #[inline]
    fn drop(&mut self) {
        if cfg!(feature = "measure-no-counts") {
            return;
        }
        let tag = self.tag();
        if tag <= COUNTED_FIRST {
            // SAFETY: the tag says the block starts with its count.
            let c = unsafe { self.first_count() };
            let v = c.get();
            let n = v & super::counted::COUNT_MASK;
            if n > 1 {
                if n != super::counted::COUNT_MASK {
                    c.set(v - 1);
                }
                return;
            }
        } else if tag >= INT {
            return;
        }
        self.drop_slow();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_inline_and_boxed() {
        for n in [
            0,
            1,
            -1,
            (1 << 47) - 1,
            -(1 << 47),
            1 << 47,
            -(1 << 47) - 1,
            i64::MAX,
            i64::MIN,
        ] {
            let v = Value::Int(n);
            assert!(matches!(v.view(), View::Int(m) if m == n), "{n}");
            assert_eq!(v.tag() == BIGINT, !(-(1 << 47)..1 << 47).contains(&n));
            let w = v.clone();
            drop(v);
            assert!(matches!(w.view(), View::Int(m) if m == n));
        }
    }

    #[test]
    fn scalars_and_pointers_keep_their_kind() {
        assert!(matches!(Value::Null.view(), View::Null));
        assert!(matches!(Value::Bool(true).view(), View::Bool(true)));
        assert!(matches!(Value::Bool(false).view(), View::Bool(false)));
        assert!(matches!(Value::Float(-0.5).view(), View::Float(x) if x == -0.5));
        let s = NixStr::new(b"x", None);
        let v = Value::String(s.clone());
        assert_eq!(s.strong_count(), 2);
        let w = v.clone();
        assert_eq!(s.strong_count(), 3);
        match w.view() {
            View::String(r) => assert!(NixStr::ptr_eq(&r, &s)),
            _ => panic!("a string"),
        }
        drop((v, w));
        assert_eq!(s.strong_count(), 1);
        let p = Rc::new(String::from("/p"));
        let v = Value::Path(p.clone());
        assert_eq!(Rc::strong_count(&p), 2);
        match v.view() {
            View::Path(r) => assert!(Rc::ptr_eq(&r, &p)),
            _ => panic!("a path"),
        }
        drop(v);
        assert_eq!(Rc::strong_count(&p), 1);
    }

    #[test]
    fn make_attrs_mut_copies_a_shared_set() {
        let a = Attrs::new();
        let mut v = Value::Attrs(a.clone());
        v.make_attrs_mut()
            .expect("a set")
            .insert(nixvm_compiler::Symbol::intern("x"), Value::Int(1));
        assert!(a.is_empty());
        match v.view() {
            View::Attrs(b) => assert_eq!(b.len(), 1),
            _ => panic!("a set"),
        }
        assert!(Value::Null.clone().make_attrs_mut().is_none());
    }
}
