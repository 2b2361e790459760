//! The cycle collector. Reference counts free everything except cycles,
//! and Nix makes cycles everywhere (a scope whose thunks or closures
//! captured it; `rec`; every fixpoint). Every cycle passes through an env or
//! a thunk (only an env slot or a thunk's value is written after its object
//! exists), and those live in the `Heap`'s pages, so all of them can be
//! enumerated. A collection, as CPython's:
//!
//! 1. gives every env and thunk a copy of its reference count;
//! 2. walks the children of each (and of every set, list, closure and
//!    partial application reachable from them) and subtracts one from the
//!    copy of each child it finds: what is left counts the references from
//!    outside this graph: the `Vm`'s stack and fields, a builtin's locals or
//!    `Vec`s, an embedder's handles. Nothing has to be registered as a root,
//!    so nothing can be forgotten;
//! 3. marks everything reachable from objects with references left;
//! 4. the envs and thunks left unmarked are garbage: it holds each, clears
//!    its slots or state (which frees, by counting, the sets, lists and
//!    strings only the garbage held), then lets go, freeing it.
//!
//! Missing a child in step 2 only keeps an object alive; the walk reports
//! only references that own a count, so it never frees anything in use.
//! The collector runs at the interpreter's safe points (calls and thunk
//! creation) when the envs and thunks have grown by a factor since the last
//! collection left them.
//!
//! `leave_scope` runs the same test on one scope as the interpreter leaves
//! it (a call returning, a `let` ending), over only the objects its slots
//! hold alone: the cycle a `let` of local functions makes is freed there,
//! at the cost of a look at the slots of scopes still referenced.

use crate::env::{self, Env};
use crate::heap::{Heap, Kind, Slot};
use crate::thunk::Parts;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use rustc_hash::FxHashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// When to collect, and what collections did.
#[derive(Clone, Debug)]
pub struct GcState {
    /// Collect when the heap's allocated-bytes total reaches this.
    pub next: u64,
    initial: usize,
    growth: f64,
    stress: bool,
    pub collections: u64,
    pub time: Duration,
    /// Env and thunk bytes freed by collections.
    pub freed_bytes: u64,
    /// Bytes of emptied pages given back to the system after collections.
    pub released_bytes: u64,
    /// Live env and thunk bytes after the last collection.
    pub live_after: usize,
    /// Containers the last collection walked (to size the next one's table).
    others: usize,
}

impl GcState {
    pub fn new(s: &crate::state::Settings) -> GcState {
        GcState {
            next: if s.gc_stress {
                0
            } else {
                s.gc_initial_heap as u64
            },
            initial: s.gc_initial_heap,
            growth: s.gc_growth.max(1.1),
            stress: s.gc_stress,
            collections: 0,
            time: Duration::ZERO,
            freed_bytes: 0,
            released_bytes: 0,
            live_after: 0,
            others: 0,
        }
    }
}

/// Let go of a scope the interpreter leaves (a call returning, a `let`
/// ending). If the only other references to it come from closures and
/// thunks (and the sets and lists holding them) that its own slots hold
/// alone, which is what a `let` of local functions leaves behind, the scope
/// is garbage that counting alone would never free: its slots are cleared,
/// which frees them and then it.
///
/// This is trial deletion (as in `collect`) on the scope and the objects
/// below its slots only (`refs_alone`): each of those has one reference,
/// from its parent, so nothing outside can reach them; if the scope's count
/// is its own handle plus their references to it, nothing outside can reach
/// it either.
#[inline]
pub fn leave_scope(e: Env) {
    if !cfg!(feature = "measure-no-counts") && e.count() > 1 {
        leave_shared_scope(&e);
    }
}

#[inline(never)]
fn leave_shared_scope(e: &Env) {
    let mut inside = 0;
    for v in e.slots() {
        inside += refs_alone(v, e, SCOPE_DEPTH);
    }
    if inside + 1 == e.count() {
        // SAFETY: `e` is borrowed by nothing else: its other handles are in
        // the objects this clears.
        unsafe { e.clear() }
    }
}

/// How deep `leave_scope` looks through objects its slots hold alone.
const SCOPE_DEPTH: u32 = 4;

/// The references to `e` from `v` and the objects below it that are held
/// alone (one reference each, from their parent), `depth` levels down.
/// Objects held more than once may be reachable from outside: their
/// references are not counted, which only keeps `e` alive.
fn refs_alone(v: &Value, e: &Env, depth: u32) -> u32 {
    if depth == 0 {
        return 0;
    }
    let d = depth - 1;
    match v.view() {
        View::Lambda(cl) if Rc::strong_count(&cl) == 1 => Env::ptr_eq(&cl.env, e) as u32,
        View::Thunk(t) if t.strong_count() == 1 => match t.parts() {
            Parts::Code(_, te) => Env::ptr_eq(&te, e) as u32,
            Parts::Value(v) => refs_alone(v, e, d),
            Parts::App(f, xs) => {
                refs_alone(f, e, d) + xs.iter().map(|x| refs_alone(x, e, d)).sum::<u32>()
            }
            Parts::Nothing => 0,
        },
        View::Attrs(a) if a.strong_count() == 1 => {
            let (entries, base) = a.layer();
            if base.is_some() {
                return 0;
            }
            entries.iter().map(|x| refs_alone(&x.value, e, d)).sum()
        }
        View::List(l) if l.strong_count() == 1 => l.iter().map(|x| refs_alone(x, e, d)).sum(),
        _ => 0,
    }
}

/// Collect if the heap has grown enough since the last collection.
#[inline]
pub fn maybe_collect(vm: &mut Vm) {
    if vm.heap.allocated_bytes() >= vm.gc.next {
        collect(vm);
    }
}

/// Free every env and thunk that only cycles keep alive (and, by counting,
/// everything only they held).
pub fn collect(vm: &mut Vm) {
    let start = Instant::now();
    // Memory is wanted: what was kept to be freed later goes first.
    vm.graveyard.flush();
    let r = free_garbage(&vm.heap, vm.gc.others);
    let after = r.live - r.garbage;
    let g = &mut vm.gc;
    g.others = r.others;
    g.collections += 1;
    g.freed_bytes += r.garbage as u64;
    g.live_after = after;
    // A collection frees in bulk: give the pages it emptied back.
    g.released_bytes += vm.heap.release_empty_pages() as u64;
    // Grown by the factor: allocate (growth - 1) times what survived first
    // (at least the initial size; frees in between only help).
    g.next = if g.stress {
        0
    } else {
        let budget = ((after as f64 * (g.growth - 1.0)) as u64).max(g.initial as u64);
        vm.heap.allocated_bytes().saturating_add(budget)
    };
    g.time += start.elapsed();
}

const MARKED: i32 = i32::MIN;

/// A set, list, closure or partial application reached from an env or thunk.
#[derive(Clone, Copy)]
enum Other {
    /// A set handle's bits (`Attrs::bits`).
    Attrs(u64),
    /// A list handle's bits (`List::bits`).
    List(u64),
    Closure(*const Closure),
    App(*const PrimOpApp),
}

#[derive(Clone, Copy)]
enum Node {
    Env(*mut u8),
    Thunk(*mut u8),
    Other(Other),
}

/// The copies of the counts: envs and thunks by slot, large envs and the
/// other containers by address.
struct Tables {
    small: Vec<Vec<Vec<i32>>>,
    large: FxHashMap<usize, i32>,
    other: FxHashMap<usize, (i32, Other)>,
    /// Containers seen for the first time, whose children are still to walk.
    fresh: Vec<Other>,
}

impl Tables {
    fn tracked(&mut self, p: *const u8, size: usize) -> &mut i32 {
        // SAFETY: `p` is a live block of `size` bytes of this heap.
        match unsafe { Heap::slot_of(p, size) } {
            Slot::Small { class, page, index } => {
                &mut self.small[class as usize][page as usize][index as usize]
            }
            Slot::Large => self.large.entry(p as usize).or_insert(0),
        }
    }

    /// The count copy of a child, entering a container the first time.
    fn entry(&mut self, child: Child) -> Option<&mut i32> {
        match child {
            Child::Env(e) => Some(self.tracked(e.as_ptr() as *const u8, env::block_size(e.len()))),
            Child::Thunk(t) => Some(self.tracked(t.as_ptr() as *const u8, t.block_size())),
            Child::Other(key, count, o) => {
                let fresh = &mut self.fresh;
                let e = self.other.entry(key).or_insert_with(|| {
                    fresh.push(o);
                    (count as i32, o)
                });
                Some(&mut e.0)
            }
        }
    }
}

/// A counted reference found in an object.
enum Child<'a> {
    Env(&'a Env),
    Thunk(&'a Thunk),
    /// Address, reference count, and the container.
    Other(usize, usize, Other),
}

fn value_child(v: &Value) -> Option<Child<'_>> {
    Some(match v.view() {
        View::Thunk(t) => Child::Thunk(t.obj()),
        View::Attrs(a) => other_attrs(&a),
        View::List(l) => Child::Other(l.as_ptr() as usize, l.strong_count(), Other::List(l.bits())),
        View::Lambda(c) => Child::Other(
            Rc::as_ptr(&c) as usize,
            Rc::strong_count(&c),
            Other::Closure(Rc::as_ptr(&c)),
        ),
        View::PrimOpApp(p) => Child::Other(
            Rc::as_ptr(&p) as usize,
            Rc::strong_count(&p),
            Other::App(Rc::as_ptr(&p)),
        ),
        _ => return None,
    })
}

fn other_attrs<'a>(a: &Attrs) -> Child<'a> {
    Child::Other(
        a.as_ptr() as usize,
        a.strong_count(),
        Other::Attrs(a.bits()),
    )
}

/// Call `f` on every counted reference `n` holds.
///
/// # Safety
/// `n` is live, and nothing changes the heap while this runs.
unsafe fn children(n: Node, f: &mut dyn FnMut(Child<'_>)) {
    let each = |v: &Value, f: &mut dyn FnMut(Child<'_>)| {
        if let Some(c) = value_child(v) {
            f(c)
        }
    };
    match n {
        Node::Env(p) => {
            let e = Env::view_block(p);
            if let Some(parent) = e.parent() {
                f(Child::Env(parent));
            }
            for v in e.slots() {
                each(v, f);
            }
        }
        Node::Thunk(p) => {
            let t = Thunk::view_block(p);
            match t.parts() {
                Parts::Code(_, env) => f(Child::Env(&env)),
                Parts::App(g, xs) => {
                    each(g, f);
                    for x in xs {
                        each(x, f);
                    }
                }
                Parts::Value(v) => each(v, f),
                Parts::Nothing => {}
            }
        }
        Node::Other(Other::Attrs(a)) => {
            let a = Attrs::view_bits(a);
            let (entries, base) = a.layer();
            if let Some(b) = base {
                f(other_attrs(b));
            }
            for e in entries {
                each(&e.value, f);
            }
        }
        Node::Other(Other::List(l)) => {
            let l = List::view_bits(l);
            for x in l.iter() {
                each(x, f);
            }
        }
        Node::Other(Other::Closure(c)) => f(Child::Env(&(*c).env)),
        Node::Other(Other::App(a)) => {
            for x in (*a).args.iter() {
                each(x, f);
            }
        }
    }
}

fn node_of(p: *mut u8, k: Kind) -> Node {
    match k {
        Kind::Env => Node::Env(p),
        Kind::Thunk => Node::Thunk(p),
    }
}

/// What a collection found.
struct Found {
    /// Bytes of envs and thunks before, and of the garbage freed.
    live: usize,
    garbage: usize,
    /// Containers walked (to size the next collection's table).
    others: usize,
}

fn free_garbage(heap: &Heap, expect_others: usize) -> Found {
    let mut t = Tables {
        small: heap
            .shape()
            .into_iter()
            .map(|pages| pages.into_iter().map(|n| vec![0; n as usize]).collect())
            .collect(),
        large: FxHashMap::default(),
        other: FxHashMap::with_capacity_and_hasher(expect_others, Default::default()),
        fresh: Vec::new(),
    };
    fn copy(t: &mut Tables, p: *mut u8, s: Slot) -> &mut i32 {
        match s {
            Slot::Small { class, page, index } => {
                &mut t.small[class as usize][page as usize][index as usize]
            }
            Slot::Large => t.large.entry(p as usize).or_insert(0),
        }
    }
    // 1. Copy the counts.
    let mut live = 0;
    heap.for_each_live(|b| {
        live += b.size;
        // SAFETY: a live block starts with its count.
        *copy(&mut t, b.ptr, b.slot) = (unsafe { *(b.ptr as *const u32) } & COUNT_MASK) as i32;
    });
    // 2. Subtract the references found inside the graph.
    let dec = |t: &mut Tables, c: Child<'_>| {
        if let Some(e) = t.entry(c) {
            *e -= 1;
        }
    };
    heap.for_each_live(|b| {
        // SAFETY: the block is live; nothing changes the heap meanwhile.
        unsafe { children(node_of(b.ptr, b.kind), &mut |c| dec(&mut t, c)) };
        while let Some(o) = t.fresh.pop() {
            // SAFETY: a container reached from a live object is live.
            unsafe { children(Node::Other(o), &mut |c| dec(&mut t, c)) };
        }
    });
    // 3. Mark what objects with references from outside reach.
    let mut todo: Vec<Node> = Vec::new();
    let mark_from = |t: &mut Tables, todo: &mut Vec<Node>| {
        while let Some(n) = todo.pop() {
            // SAFETY: as above.
            unsafe {
                children(n, &mut |c| {
                    let node = match &c {
                        Child::Env(e) => Node::Env(e.as_ptr() as *mut u8),
                        Child::Thunk(th) => Node::Thunk(th.as_ptr() as *mut u8),
                        Child::Other(_, _, o) => Node::Other(*o),
                    };
                    if let Some(e) = t.entry(c) {
                        if *e != MARKED {
                            *e = MARKED;
                            todo.push(node);
                        }
                    }
                })
            };
        }
    };
    heap.for_each_live(|b| {
        let e = copy(&mut t, b.ptr, b.slot);
        if *e > 0 {
            *e = MARKED;
            todo.push(node_of(b.ptr, b.kind));
            mark_from(&mut t, &mut todo);
        }
    });
    let roots: Vec<Other> = t
        .other
        .values_mut()
        .filter(|(e, _)| *e > 0)
        .map(|(e, o)| {
            *e = MARKED;
            *o
        })
        .collect();
    for o in roots {
        todo.push(Node::Other(o));
        mark_from(&mut t, &mut todo);
    }
    // 4. Hold the unmarked envs and thunks, clear them, let go.
    let mut held_envs: Vec<(Env, usize)> = Vec::new();
    let mut held_thunks: Vec<(Thunk, usize)> = Vec::new();
    heap.for_each_live(|b| {
        if *copy(&mut t, b.ptr, b.slot) != MARKED {
            // SAFETY: the block is live (garbage is freed only below).
            unsafe {
                match b.kind {
                    Kind::Env => held_envs.push((Env::from_block(b.ptr), b.size)),
                    Kind::Thunk => held_thunks.push((Thunk::from_block(b.ptr), b.size)),
                }
            }
        }
    });
    let others = t.other.len();
    drop(t);
    for (e, _) in &held_envs {
        // SAFETY: garbage: nothing outside the garbage refers to it, so
        // nothing borrows its slots.
        unsafe { e.clear() };
    }
    for (th, _) in &held_thunks {
        th.set(Value::Null);
    }
    // Once cleared, only our hold should be left on each: letting go frees it.
    let mut garbage = 0;
    for (e, size) in held_envs {
        garbage += if e.is_unique() { size } else { 0 };
    }
    for (th, size) in held_thunks {
        garbage += if th.is_unique() { size } else { 0 };
    }
    Found {
        live,
        garbage,
        others,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nixvm_compiler::Symbol;

    fn proto() -> Rc<Proto> {
        crate::value::test_proto()
    }

    #[test]
    fn frees_a_cycle_and_keeps_what_is_held_from_outside() {
        let mut vm = Vm::new(Default::default());
        let base = vm.heap.live_bytes();
        {
            // let x = { a = x; }: the env holds a thunk whose value holds it back.
            let env = Env::new(&vm.heap, None, 1);
            let t = Thunk::pending(&vm.heap, proto(), env.clone());
            env.set(0, Value::Thunk(t.clone()));
            let set = Value::attrs(Attrs::from_unsorted(vec![(
                Symbol::intern("cycles-a"),
                Value::Thunk(t.clone()),
            )]));
            t.set(set);
        }
        assert!(vm.heap.live_bytes() > base);
        // A second cycle, still held by a local (as a builtin would).
        let kept = Env::new(&vm.heap, None, 1);
        let cl = Value::Lambda(Rc::new(Closure {
            proto: proto(),
            env: kept.clone(),
        }));
        kept.set(0, cl);
        collect(&mut vm);
        assert_eq!(vm.heap.live_bytes() - base, env::block_size(1));
        assert!(matches!(kept.get(0).unpack(), Owned::Lambda(_)));
        drop(kept);
        collect(&mut vm);
        assert_eq!(vm.heap.live_bytes(), base);
    }

    #[test]
    fn a_million_element_chain_and_a_big_cycle() {
        let mut vm = Vm::new(Default::default());
        let base = vm.heap.live_bytes();
        // A linked list of thunks, 1,000,000 long, closed into a ring.
        let first = Thunk::evaluated(&vm.heap, Value::Null);
        let mut last = first.clone();
        for i in 0..1_000_000 {
            let next = Thunk::evaluated(&vm.heap, Value::Null);
            last.set(Value::list(vec![Value::Int(i), Value::Thunk(next.clone())]));
            last = next;
        }
        last.set(Value::Thunk(first.clone()));
        drop(last);
        let size = first.block_size();
        let head = Value::Thunk(first);
        collect(&mut vm);
        // Held by `head`: nothing freed.
        assert!(vm.heap.live_bytes() - base >= 1_000_000 * size);
        let held = vm.heap.heap_bytes();
        drop(head);
        collect(&mut vm);
        assert_eq!(vm.heap.live_bytes(), base);
        // The ring's pages went back to the system.
        assert!(vm.gc.released_bytes >= (1_000_000 * size - 2 * crate::heap::PAGE) as u64);
        assert!(vm.heap.heap_bytes() <= held - vm.gc.released_bytes as usize);
    }

    #[test]
    fn leaving_a_scope_of_local_functions_frees_it() {
        let mut ev = crate::Evaluator::builder().build();
        let dir = std::path::Path::new("/");
        // Warm up whatever the first evaluation leaves behind (globals).
        ev.eval_str("1", dir).expect("eval");
        let base = ev.vm.heap.live_bytes();
        // Each call's `let` holds functions over itself (one forced and
        // called recursively, one never forced): a cycle per call.
        let src = "builtins.foldl' (acc: i: acc + (let f = x: if x == 0 then i else f (x - 1); g = y: f y; in f 3)) 0 (builtins.genList (i: i) 10000)";
        let v = ev.eval_str(src, dir).expect("eval");
        let v = ev.vm.force(v).expect("force");
        assert_eq!(v.as_int(), Some(49995000));
        drop(v);
        // The genList list died as foldl''s argument and waits in the
        // graveyard (freed at the next collection); free it now.
        ev.vm.graveyard.flush();
        let grown = ev.vm.heap.live_bytes() - base;
        // Leaked, 10,000 scopes would hold at least 10,000 * 32 bytes of envs.
        assert!(grown < 10_000 * 8, "{grown} bytes left");
        // A scope whose function escapes stays.
        let v = ev.eval_str("let k = x: k; in k", dir).expect("eval");
        let v = ev.vm.force(v).expect("force");
        assert!(matches!(v.view(), View::Lambda(_)));
    }
}
