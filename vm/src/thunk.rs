//! Thunks: suspended computations, shared and updated in place. A thunk is
//! one heap block: a 4-byte reference count, a 4-byte tag and 16 bytes
//! holding the state's data (none while it is being forced). A lazy builtin
//! application (`map f xs` makes one per element) keeps its function and
//! argument inline in those 16 bytes (a second argument in one more value
//! after them), instead of behind a second allocation: on NixOS a million of
//! them held 45 MiB of boxes. NixOS
//! evaluation keeps millions of thunks alive; as `Rc<UnsafeCell<enum>>` each
//! took 48 bytes.

use crate::env::Env;
use crate::error::EvalError;
use crate::heap::{Heap, Kind};
use crate::value::{Proto, Value};
use std::cell::{Cell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::rc::Rc;

/// A thunk's state, moved in and out of the block whole.
enum State {
    Pending(Rc<Proto>, Env),
    /// Being forced (the blackhole). It keeps nothing: the force that
    /// started owns the work, and ends in `Done` or `Failed`.
    Running,
    /// A lazy application made by a builtin: `f x` (`map f xs`) or `f x y`
    /// (`mapAttrs`), stored in the block's data and its extra values.
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
/// The tag's low byte is the state; the bits above count the block's extra
/// values after `data` (0 for most thunks, 1 for an application of two
/// arguments).
const STATE_MASK: u32 = 0xff;
const EXTRA_SHIFT: u32 = 8;

#[repr(C)]
struct Block {
    count: Cell<u32>,
    tag: Cell<u32>,
    /// The data of the state `tag` names: `(Rc<Proto>, Env)`, `Value`, an
    /// application's function and first argument, or `Box<EvalError>`.
    data: UnsafeCell<MaybeUninit<[u64; 2]>>,
}

const _: () = {
    // `Value`'s clone and drop read the count here (`repr.rs`, `COUNTED_FIRST`).
    assert!(std::mem::offset_of!(Block, count) == 0);
    assert!(std::mem::size_of::<Block>() == 24);
    assert!(std::mem::size_of::<(Rc<Proto>, Env)>() == 16);
    assert!(std::mem::size_of::<Value>() == 8);
    assert!(std::mem::size_of::<Box<EvalError>>() <= 16);
};

/// The bytes of a block with `extra` values after `data` (plain arithmetic:
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

/// A borrowed view of a thunk's state (see [`Thunk::parts`]).
pub(crate) enum Parts<'a> {
    Code(&'a Rc<Proto>, &'a Env),
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
    fn with_extra(heap: &Heap, extra: u32, st: State) -> Thunk {
        // An application's block has room for exactly its arguments (checked
        // before anything is moved: `put` trusts it).
        if let State::App(_, _, y) = &st {
            assert_eq!(extra, y.is_some() as u32, "application fits its block");
        }
        // SAFETY: the block has the layout's size; the state is written before use.
        unsafe {
            let p = heap.alloc(block_bytes(extra), Kind::Thunk) as *mut Block;
            p.write(Block {
                count: Cell::new(1),
                tag: Cell::new(DONE | (extra << EXTRA_SHIFT)),
                data: UnsafeCell::new(MaybeUninit::uninit()),
            });
            let t = Thunk(NonNull::new_unchecked(p));
            t.put(st);
            t
        }
    }
    pub fn pending(heap: &Heap, p: Rc<Proto>, env: Env) -> Thunk {
        Thunk::with_extra(heap, 0, State::Pending(p, env))
    }
    pub fn app(heap: &Heap, f: Value, x: Value) -> Thunk {
        Thunk::with_extra(heap, 0, State::App(f, x, None))
    }
    /// `f x y`, as one thunk.
    pub fn app2(heap: &Heap, f: Value, x: Value, y: Value) -> Thunk {
        Thunk::with_extra(heap, 1, State::App(f, x, Some(y)))
    }
    pub fn evaluated(heap: &Heap, v: Value) -> Thunk {
        Thunk::with_extra(heap, 0, State::Done(v))
    }

    /// A handle to the thunk at `p` that owns no count (never dropped).
    ///
    /// # Safety
    /// `p` is a live thunk block, and stays live while the view is used.
    pub(crate) unsafe fn view_block(p: *mut u8) -> std::mem::ManuallyDrop<Thunk> {
        std::mem::ManuallyDrop::new(Thunk(NonNull::new_unchecked(p as *mut Block)))
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
        self.block().tag.get() & STATE_MASK
    }

    #[inline]
    fn extra(&self) -> u32 {
        self.block().tag.get() >> EXTRA_SHIFT
    }

    /// An application's values: its function, then its arguments (the
    /// second, if any, in the block's extra value after `data`).
    #[inline]
    fn app_ptr(&self) -> *mut Value {
        // From the block's raw pointer, not a `&Block`: the second argument
        // lies past the end of `Block`, in the same allocation.
        // SAFETY: a field projection of a live block.
        unsafe { std::ptr::addr_of_mut!((*self.0.as_ptr()).data) as *mut Value }
    }

    /// Move the state out. The data is logically uninitialised until `put`.
    ///
    /// # Safety
    /// Must be followed by `put` before anything else reads the thunk.
    #[inline]
    unsafe fn take(&self) -> State {
        let b = self.block();
        let d = b.data.get() as *const u8;
        match self.state() {
            PENDING => {
                let (p, e) = std::ptr::read(d as *const (Rc<Proto>, Env));
                State::Pending(p, e)
            }
            RUNNING => State::Running,
            APP => {
                let a = self.app_ptr();
                let f = std::ptr::read(a);
                let x = std::ptr::read(a.add(1));
                let y = (self.extra() > 0).then(|| std::ptr::read(a.add(2)));
                State::App(f, x, y)
            }
            FAILED => State::Failed(std::ptr::read(d as *const Box<EvalError>)),
            _ => State::Done(std::ptr::read(d as *const Value)),
        }
    }

    /// Move a state in, over data that `take` moved out (or never held any).
    #[inline]
    unsafe fn put(&self, st: State) {
        let b = self.block();
        let d = b.data.get() as *mut u8;
        let state = match st {
            State::Pending(p, e) => {
                std::ptr::write(d as *mut (Rc<Proto>, Env), (p, e));
                PENDING
            }
            State::Running => RUNNING,
            State::App(f, x, y) => {
                // Only `with_extra` puts an application, into a block sized
                // for it; `begin` takes it out for good.
                debug_assert_eq!(self.extra(), y.is_some() as u32);
                let a = self.app_ptr();
                std::ptr::write(a, f);
                std::ptr::write(a.add(1), x);
                if let Some(y) = y {
                    std::ptr::write(a.add(2), y);
                }
                APP
            }
            State::Done(v) => {
                std::ptr::write(d as *mut Value, v);
                DONE
            }
            State::Failed(e) => {
                std::ptr::write(d as *mut Box<EvalError>, e);
                FAILED
            }
        };
        b.tag.set(state | (b.tag.get() & !STATE_MASK));
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
            // SAFETY: the tag says the data is a `Value`; it is only read.
            Some(unsafe { (*(self.block().data.get() as *const Value)).clone() })
        } else {
            None
        }
    }

    /// How many handles there are.
    pub(crate) fn strong_count(&self) -> u32 {
        self.block().count.get()
    }

    /// Whether this handle is the only one.
    pub(crate) fn is_unique(&self) -> bool {
        self.block().count.get() == 1
    }

    pub fn is_running(&self) -> bool {
        self.state() == RUNNING
    }

    pub fn set(&self, v: Value) {
        drop(self.replace(State::Done(v)));
    }

    /// Start forcing: blackhole a pending thunk and hand out its work.
    #[inline]
    pub fn begin(&self) -> Begin {
        match self.state() {
            DONE => Begin::Done(self.done().expect("done")),
            RUNNING => Begin::Blackhole,
            FAILED => {
                // SAFETY: the tag says the data is the boxed error; it is only read.
                let e = unsafe { &*(self.block().data.get() as *const Box<EvalError>) };
                Begin::Failed(e.clone())
            }
            _ => match self.replace(State::Running) {
                State::Pending(p, e) => Begin::Code(p, e),
                State::App(f, x, y) => Begin::App(f, x, y),
                _ => unreachable!("tag checked above"),
            },
        }
    }

    /// Record that forcing failed with `e` (a blackholed thunk only): later
    /// forces throw it again, as CppNix 2.34 does.
    pub fn fail(&self, e: &EvalError) {
        if self.is_running() {
            drop(self.replace(State::Failed(Box::new(e.clone()))));
        }
    }

    /// What the thunk holds now, for walks over the heap (`census`): its
    /// code and env, its application's values, or its value.
    pub(crate) fn parts(&self) -> Parts<'_> {
        let d = self.block().data.get() as *const u8;
        // SAFETY: the tag says what the data is; it is only borrowed, for as
        // long as `self` (nothing changes a thunk during a walk).
        unsafe {
            match self.state() {
                PENDING => {
                    let pe = &*(d as *const (Rc<Proto>, Env));
                    Parts::Code(&pe.0, &pe.1)
                }
                APP => Parts::App(
                    &*self.app_ptr(),
                    std::slice::from_raw_parts(self.app_ptr().add(1), 1 + self.extra() as usize),
                ),
                DONE => Parts::Value(&*(d as *const Value)),
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
        let c = &self.block().count;
        let n = c
            .get()
            .checked_add(1)
            .unwrap_or_else(|| std::process::abort());
        c.set(n);
        Thunk(self.0)
    }
}

impl Drop for Thunk {
    #[inline]
    fn drop(&mut self) {
        let c = &self.block().count;
        let n = c.get() - 1;
        c.set(n);
        if n == 0 {
            // SAFETY: the last handle: move the state out, free the block, then
            // drop the state (which may free more).
            unsafe {
                let extra = self.extra();
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
}
