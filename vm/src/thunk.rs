//! Thunks: suspended computations, shared and updated in place. A thunk is
//! one heap block of 16 bytes: a 4-byte head (the reference count, and above
//! it the state and how many values follow the block), then 12 bytes of the
//! state's data. Code waiting to run keeps its two 48-bit addresses (the
//! chunk and the env) packed into those 12 bytes; a value, or a failure's
//! boxed error, sits in the last 8. A lazy builtin application (`map f xs`
//! makes one per element) keeps its function and arguments inline, in one or
//! two more values after the block, instead of behind a second allocation.
//! NixOS minimal keeps 3.5 million thunks alive at its peak: as
//! `Rc<UnsafeCell<enum>>` each took 48 bytes, with a separate 4-byte tag 24.

use crate::env::Env;
use crate::error::EvalError;
use crate::heap::{Heap, Kind};
use crate::value::{Proto, Value, COUNT_MASK};
use std::cell::{Cell, UnsafeCell};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::ptr::NonNull;
use std::rc::Rc;

/// A thunk's state, moved in and out of the block whole.
enum State {
    Pending(Rc<Proto>, Env),
    /// Being forced (the blackhole). It keeps nothing: the force that
    /// started owns the work, and ends in `Done` or `Failed`.
    Running,
    /// A lazy application made by a builtin: `f x` (`map f xs`) or `f x y`
    /// (`mapAttrs`), stored from the block's last word on.
    App(Value, Value, Option<Value>),
    Done(Value),
    /// Forcing failed with this error. CppNix 2.34 memoizes failures: forcing
    /// the thunk again throws the same error without evaluating anything.
    Failed(Box<EvalError>),
}

const PENDING: u32 = 0;
const RUNNING: u32 = 1;
const APP: u32 = 2;
const DONE: u32 = 3;
const FAILED: u32 = 4;
/// The head: the count in its low 27 bits (`COUNT_MASK`, shared with every
/// counted kind), then the number of values after the block (0, or 1 and 2
/// for an application of one and two arguments), then the state.
const EXTRA_SHIFT: u32 = 27;
const STATE_SHIFT: u32 = 29;
const _: () = assert!(COUNT_MASK == (1 << EXTRA_SHIFT) - 1);
/// The low 48 bits: an address.
const ADDR: u64 = (1 << 48) - 1;

#[repr(C)]
struct Block {
    head: Cell<u32>,
    /// Pending: the low 32 bits of the chunk's address.
    lo: Cell<u32>,
    /// Pending: the env's address, the chunk's upper 16 bits above it.
    /// Done: the value. Failed: the boxed error. App: the function, its
    /// arguments in the values after the block.
    word: UnsafeCell<MaybeUninit<u64>>,
}

const _: () = {
    // `Value`'s clone and drop read the count here (`repr.rs`, `COUNTED_FIRST`).
    assert!(std::mem::offset_of!(Block, head) == 0);
    assert!(std::mem::size_of::<Block>() == 16);
    assert!(std::mem::size_of::<Value>() == 8);
    assert!(std::mem::size_of::<Box<EvalError>>() == 8);
};

/// The bytes of a block with `extra` values after it (plain arithmetic:
/// it is inlined into every drop of a value).
#[inline]
fn block_bytes(extra: u32) -> usize {
    std::mem::size_of::<Block>() + extra as usize * std::mem::size_of::<Value>()
}

/// What forcing a thunk has to do next, as handed out by [`Thunk::begin`].
pub enum Begin {
    Done(Value),
    Code(Rc<Proto>, Env),
    /// Apply the function to one argument, or to two in turn.
    App(Value, Value, Option<Value>),
    /// Already being forced: infinite recursion.
    Blackhole,
    /// An earlier force failed: this error again.
    Failed(Box<EvalError>),
}

/// A borrowed view of a thunk's state (see [`Thunk::parts`]). The code and
/// env are views that own no count, valid while the thunk is unchanged.
pub(crate) enum Parts<'a> {
    Code(ManuallyDrop<Rc<Proto>>, ManuallyDrop<Env>),
    /// An application's function and arguments.
    App(&'a Value, &'a [Value]),
    Value(&'a Value),
    /// Being forced, or failed: no values.
    Nothing,
}

/// A shared handle to a thunk. Transparent: a thunk `Value` has its bits.
#[repr(transparent)]
pub struct Thunk(NonNull<Block>);

impl Thunk {
    pub fn pending(heap: &Heap, p: Rc<Proto>, env: Env) -> Thunk {
        // SAFETY: `put` writes the code and env (and the state) at once.
        unsafe {
            let t = Thunk::raw(heap, 0, RUNNING);
            t.put(State::Pending(p, env));
            t
        }
    }
    /// A fresh block of `extra` values after it in `state`, its data to be
    /// written by the caller before the handle is used.
    ///
    /// # Safety
    /// The caller writes the data that `state` says the block holds.
    #[inline]
    unsafe fn raw(heap: &Heap, extra: u32, state: u32) -> Thunk {
        let p = heap.alloc(block_bytes(extra), Kind::Thunk) as *mut Block;
        p.write(Block {
            head: Cell::new(1 | (extra << EXTRA_SHIFT) | (state << STATE_SHIFT)),
            lo: Cell::new(0),
            word: UnsafeCell::new(MaybeUninit::uninit()),
        });
        Thunk(NonNull::new_unchecked(p))
    }
    // The makers below write their state's fields directly rather than
    // through `State` (`map`, `genList` and `mapAttrs` make one per element,
    // and moving the enum through memory showed in their profiles).
    #[inline]
    pub fn app(heap: &Heap, f: Value, x: Value) -> Thunk {
        // SAFETY: an application of one argument: the function and it.
        unsafe {
            let t = Thunk::raw(heap, 1, APP);
            let a = t.app_ptr();
            a.write(f);
            a.add(1).write(x);
            t
        }
    }
    /// `f x y`, as one thunk.
    #[inline]
    pub fn app2(heap: &Heap, f: Value, x: Value, y: Value) -> Thunk {
        // SAFETY: an application of two arguments: the function and them.
        unsafe {
            let t = Thunk::raw(heap, 2, APP);
            let a = t.app_ptr();
            a.write(f);
            a.add(1).write(x);
            a.add(2).write(y);
            t
        }
    }
    #[inline]
    pub fn evaluated(heap: &Heap, v: Value) -> Thunk {
        // SAFETY: a done thunk holds its value in the last word.
        unsafe {
            let t = Thunk::raw(heap, 0, DONE);
            (t.word_ptr() as *mut Value).write(v);
            t
        }
    }

    /// Overwrite the state bits only.
    #[inline]
    fn set_state(&self, state: u32) {
        let b = self.block();
        let keep = (1 << STATE_SHIFT) - 1;
        b.head.set((b.head.get() & keep) | (state << STATE_SHIFT));
    }

    /// A handle to the thunk at `p` that owns no count (never dropped).
    ///
    /// # Safety
    /// `p` is a live thunk block, and stays live while the view is used.
    pub(crate) unsafe fn view_block(p: *mut u8) -> ManuallyDrop<Thunk> {
        ManuallyDrop::new(Thunk(NonNull::new_unchecked(p as *mut Block)))
    }

    /// A new handle to the thunk whose block is at `p`.
    ///
    /// # Safety
    /// `p` is a live thunk block.
    pub(crate) unsafe fn from_block(p: *mut u8) -> Thunk {
        (*Thunk::view_block(p)).clone()
    }

    #[inline]
    fn block(&self) -> &Block {
        // SAFETY: the block lives while this handle does.
        unsafe { self.0.as_ref() }
    }

    #[inline]
    fn state(&self) -> u32 {
        self.block().head.get() >> STATE_SHIFT
    }

    #[inline]
    fn extra(&self) -> u32 {
        (self.block().head.get() >> EXTRA_SHIFT) & 3
    }

    /// The block's last word, where a value or an application's function is.
    #[inline]
    fn word_ptr(&self) -> *mut u64 {
        self.block().word.get() as *mut u64
    }

    /// An application's values: its function, then its arguments (in the
    /// block's extra values after `word`).
    #[inline]
    fn app_ptr(&self) -> *mut Value {
        // From the block's raw pointer, not a `&Block`: the arguments lie
        // past the end of `Block`, in the same allocation.
        // SAFETY: a field projection of a live block.
        unsafe { std::ptr::addr_of_mut!((*self.0.as_ptr()).word) as *mut Value }
    }

    /// The code and env of a pending thunk, as raw addresses.
    ///
    /// # Safety
    /// The state is `PENDING`.
    #[inline]
    unsafe fn code_addrs(&self) -> (*const Proto, *mut u8) {
        let w = *self.word_ptr();
        let lo = self.block().lo.get() as u64;
        (
            (lo | (w >> 48) << 32) as *const Proto,
            (w & ADDR) as *mut u8,
        )
    }

    /// Move the state out. The data is logically uninitialised until `put`.
    ///
    /// # Safety
    /// Must be followed by `put` before anything else reads the thunk.
    #[inline]
    unsafe fn take(&self) -> State {
        let w = self.word_ptr();
        match self.state() {
            PENDING => {
                let (p, e) = self.code_addrs();
                State::Pending(
                    Rc::from_raw(p),
                    ManuallyDrop::into_inner(Env::view_block(e)),
                )
            }
            RUNNING => State::Running,
            APP => {
                let a = self.app_ptr();
                let f = std::ptr::read(a);
                let x = std::ptr::read(a.add(1));
                let y = (self.extra() > 1).then(|| std::ptr::read(a.add(2)));
                State::App(f, x, y)
            }
            FAILED => State::Failed(std::ptr::read(w as *const Box<EvalError>)),
            _ => State::Done(std::ptr::read(w as *const Value)),
        }
    }

    /// Move a state in, over data that `take` moved out (or never held any).
    #[inline]
    unsafe fn put(&self, st: State) {
        let b = self.block();
        let w = self.word_ptr();
        let state = match st {
            State::Pending(p, e) => {
                let p = Rc::into_raw(p) as u64;
                let e = ManuallyDrop::new(e).as_ptr() as u64;
                // Checked when made: a `Value` has the same 48-bit limit.
                assert!((p | e) & !ADDR == 0, "heap address beyond 48 bits");
                b.lo.set(p as u32);
                w.write(e | (p >> 32) << 48);
                PENDING
            }
            State::Running => RUNNING,
            State::App(f, x, y) => {
                // Only `replace` puts an application back (after `take`), into the block sized
                // for it; `begin` takes it out for good.
                debug_assert_eq!(self.extra(), 1 + y.is_some() as u32);
                let a = self.app_ptr();
                std::ptr::write(a, f);
                std::ptr::write(a.add(1), x);
                if let Some(y) = y {
                    std::ptr::write(a.add(2), y);
                }
                APP
            }
            State::Done(v) => {
                std::ptr::write(w as *mut Value, v);
                DONE
            }
            State::Failed(e) => {
                std::ptr::write(w as *mut Box<EvalError>, e);
                FAILED
            }
        };
        self.set_state(state);
    }

    /// Swap in a new state; the old one is returned to be dropped by the
    /// caller once the thunk is consistent again (its drop may run code that
    /// looks at this thunk).
    #[inline]
    fn replace(&self, st: State) -> State {
        // SAFETY: `take` is immediately followed by `put`; nothing runs between.
        unsafe {
            let old = self.take();
            self.put(st);
            old
        }
    }

    #[inline]
    pub fn done(&self) -> Option<Value> {
        if self.state() == DONE {
            // SAFETY: the state says the word is a `Value`; it is only read.
            Some(unsafe { (*(self.word_ptr() as *const Value)).clone() })
        } else {
            None
        }
    }

    /// The value of a forced thunk, borrowed from the thunk itself (which
    /// this handle keeps alive). A forced thunk's value is final: `set`
    /// replaces a value only while the crate ties a knot (`builtins`, whose
    /// thunks get theirs before any handle leaves the crate), so the borrow
    /// stays valid as long as the handle does.
    #[inline]
    pub fn done_ref(&self) -> Option<&Value> {
        if self.state() == DONE {
            // SAFETY: the state says the word is a `Value`; see above for
            // why it outlives the borrow.
            Some(unsafe { &*(self.word_ptr() as *const Value) })
        } else {
            None
        }
    }

    /// How many handles there are.
    pub(crate) fn strong_count(&self) -> u32 {
        self.block().head.get() & COUNT_MASK
    }

    /// Whether this handle is the only one.
    pub(crate) fn is_unique(&self) -> bool {
        self.strong_count() == 1
    }

    pub fn is_running(&self) -> bool {
        self.state() == RUNNING
    }

    pub(crate) fn set(&self, v: Value) {
        if self.state() == RUNNING {
            // The usual case, a forced thunk getting its value: nothing to
            // move out. SAFETY: a running thunk's word holds nothing.
            unsafe { (self.word_ptr() as *mut Value).write(v) };
            self.set_state(DONE);
            return;
        }
        drop(self.replace(State::Done(v)));
    }

    /// Start forcing: blackhole a pending thunk and hand out its work.
    #[inline]
    pub fn begin(&self) -> Begin {
        match self.state() {
            DONE => Begin::Done(self.done().expect("done")),
            RUNNING => Begin::Blackhole,
            FAILED => {
                // SAFETY: the state says the word is the boxed error; it is only read.
                let e = unsafe { &*(self.word_ptr() as *const Box<EvalError>) };
                Begin::Failed(e.clone())
            }
            APP => {
                // SAFETY: the state says the function and arguments are
                // there; they are moved out as the state becomes running
                // (which holds nothing).
                unsafe {
                    let a = self.app_ptr();
                    let f = std::ptr::read(a);
                    let x = std::ptr::read(a.add(1));
                    let y = (self.extra() > 1).then(|| std::ptr::read(a.add(2)));
                    self.set_state(RUNNING);
                    Begin::App(f, x, y)
                }
            }
            _ => {
                // SAFETY: pending: the code and env move out, and running
                // holds nothing.
                unsafe {
                    let (p, e) = self.code_addrs();
                    self.set_state(RUNNING);
                    Begin::Code(
                        Rc::from_raw(p),
                        ManuallyDrop::into_inner(Env::view_block(e)),
                    )
                }
            }
        }
    }

    /// Record that forcing failed with `e` (a blackholed thunk only): later
    /// forces throw it again, as CppNix 2.34 does.
    pub fn fail(&self, e: &EvalError) {
        if self.is_running() {
            drop(self.replace(State::Failed(Box::new(e.memo_copy()))));
        }
    }

    /// Replace the error a failed thunk holds (`tryEval` stores the error
    /// as it was caught, see `EvalError::memo`).
    pub fn refail(&self, e: &EvalError) {
        if self.state() == FAILED {
            drop(self.replace(State::Failed(Box::new(e.memo_copy()))));
        }
    }

    /// The function of a pending application (for CppNix's `determinePos`).
    pub fn app_function(&self) -> Option<Value> {
        match self.parts() {
            Parts::App(f, _) => Some(f.clone()),
            Parts::Value(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// What the thunk holds now, for walks over the heap (`census`): its
    /// code and env, its application's values, or its value.
    pub(crate) fn parts(&self) -> Parts<'_> {
        // SAFETY: the state says what the data is; it is only borrowed, for
        // as long as `self` (nothing changes a thunk during a walk), and the
        // code and env views own no count.
        unsafe {
            match self.state() {
                PENDING => {
                    let (p, e) = self.code_addrs();
                    Parts::Code(ManuallyDrop::new(Rc::from_raw(p)), Env::view_block(e))
                }
                APP => Parts::App(
                    &*self.app_ptr(),
                    std::slice::from_raw_parts(self.app_ptr().add(1), self.extra() as usize),
                ),
                DONE => Parts::Value(&*(self.word_ptr() as *const Value)),
                _ => Parts::Nothing,
            }
        }
    }

    /// The bytes of this thunk's block.
    pub(crate) fn block_size(&self) -> usize {
        block_bytes(self.extra())
    }

    pub fn ptr_eq(a: &Thunk, b: &Thunk) -> bool {
        a.0 == b.0
    }

    pub fn as_ptr(&self) -> *const () {
        self.0.as_ptr() as *const ()
    }
}

impl Clone for Thunk {
    #[inline]
    fn clone(&self) -> Thunk {
        crate::value::count_up(&self.block().head);
        Thunk(self.0)
    }
}

impl Drop for Thunk {
    #[inline]
    fn drop(&mut self) {
        if crate::value::count_down(&self.block().head) {
            // SAFETY: the last handle: move the state out, free the block, then
            // drop the state (which may free more).
            unsafe {
                let extra = self.extra();
                if self.state() == DONE {
                    // The usual end: a value, and no extra values (a done
                    // application's block keeps its size, not its arguments).
                    let v = std::ptr::read(self.word_ptr() as *const Value);
                    crate::heap::free(self.0.as_ptr() as *mut u8, block_bytes(extra));
                    drop(v);
                    return;
                }
                let st = self.take();
                crate::heap::free(self.0.as_ptr() as *mut u8, block_bytes(extra));
                drop(st);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: &Value) -> Option<i64> {
        v.as_int()
    }

    #[test]
    fn states_round_trip() {
        let heap = Heap::new();
        let t = Thunk::app(&heap, Value::Int(1), Value::Int(2));
        assert!(t.done().is_none());
        let u = t.clone();
        match u.begin() {
            Begin::App(f, x, None) => assert_eq!((int(&f), int(&x)), (Some(1), Some(2))),
            _ => panic!("expected the application"),
        }
        let t2 = Thunk::app2(&heap, Value::Int(1), Value::str("x"), Value::Int(3));
        assert_eq!(t2.block_size(), 32);
        assert_eq!(t.block_size(), 24);
        assert_eq!(Thunk::evaluated(&heap, Value::Null).block_size(), 16);
        match t2.parts() {
            Parts::App(f, [x, y]) => {
                assert_eq!((int(f), x.as_str(), int(y)), (Some(1), Some("x"), Some(3)))
            }
            _ => panic!("expected the inline arguments"),
        }
        match t2.begin() {
            Begin::App(f, x, Some(y)) => {
                assert_eq!(
                    (int(&f), x.as_str(), int(&y)),
                    (Some(1), Some("x"), Some(3))
                )
            }
            _ => panic!("expected the two-argument application"),
        }
        t2.set(Value::Int(9));
        assert_eq!(t2.done().as_ref().and_then(int), Some(9));
        // An application dropped unforced frees its arguments with it.
        drop(Thunk::app2(
            &heap,
            Value::Null,
            Value::str("y"),
            Value::str("z"),
        ));
        assert!(t.is_running());
        assert!(matches!(t.begin(), Begin::Blackhole));
        t.fail(&EvalError::new(crate::error::ErrorKind::Throw, "nope"));
        assert!(!t.is_running());
        match u.begin() {
            Begin::Failed(e) => assert_eq!(e.msg, "nope"),
            _ => panic!("expected the memoized failure"),
        }
        t.set(Value::Int(7));
        assert_eq!(u.done().as_ref().and_then(int), Some(7));
        assert!(matches!(u.begin(), Begin::Done(v) if int(&v) == Some(7)));
        assert!(Thunk::ptr_eq(&t, &u));
        assert!(Thunk::evaluated(&heap, Value::Null)
            .done()
            .is_some_and(|v| v.view().is_null()));
    }

    #[test]
    fn pending_code_and_env_survive_the_packing() {
        let heap = Heap::new();
        let p = crate::value::test_proto();
        let env = Env::with_values(&heap, None, vec![Value::Int(5)]);
        let t = Thunk::pending(&heap, p.clone(), env.clone());
        assert_eq!((t.block_size(), t.strong_count()), (16, 1));
        assert_eq!((Rc::strong_count(&p), env.count()), (2, 2));
        match t.parts() {
            Parts::Code(q, e) => assert!(Rc::ptr_eq(&q, &p) && Env::ptr_eq(&e, &env)),
            _ => panic!("expected the code"),
        }
        let u = t.clone();
        assert_eq!(u.strong_count(), 2);
        match t.begin() {
            Begin::Code(q, e) => {
                assert!(Rc::ptr_eq(&q, &p) && Env::ptr_eq(&e, &env));
                assert_eq!(e.get(0).as_int(), Some(5));
            }
            _ => panic!("expected the code"),
        }
        assert!(u.is_running());
        // Dropping an unforced thunk gives back its code and env.
        drop(Thunk::pending(&heap, p.clone(), env.clone()));
        assert_eq!((Rc::strong_count(&p), env.count()), (1, 1));
    }

    #[test]
    fn a_saturated_count_stays() {
        let heap = Heap::new();
        let t = Thunk::evaluated(&heap, Value::Int(1));
        let c = &t.block().head;
        c.set((c.get() & !COUNT_MASK) | (COUNT_MASK - 1));
        let extra = t.clone();
        assert_eq!(t.strong_count(), COUNT_MASK);
        let more: Vec<Thunk> = (0..3).map(|_| t.clone()).collect();
        drop((extra, more));
        assert_eq!(t.strong_count(), COUNT_MASK);
        assert_eq!(t.done().and_then(|v| v.as_int()), Some(1));
        // The block now lives for good: reset the count so the test's heap
        // can free it.
        c.set((c.get() & !COUNT_MASK) | 1);
    }
}
