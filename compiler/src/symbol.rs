//! Interned identifiers. Attribute names and variables are compared and
//! hashed as `u32`s everywhere after parsing.
//!
//! The table is one per process and shared by every thread, so a `Symbol`
//! names the same string wherever it goes: values (whose sets are keyed by
//! symbols) outlive evaluators and may be sent between threads, and a
//! per-thread or per-evaluator table would let a symbol name another string
//! there. Strings are leaked once, so `as_str` hands out `&'static str`.
//!
//! Looking a symbol up (`as_str`, hot when sets are sorted by name) takes
//! no lock: a slot in segments that never move points to the leaked name,
//! written once before its symbol is handed out. Interning takes a mutex. No crate fits:
//! `lasso`'s threaded table resolves through a sharded map, and none gives
//! the predefined names fixed ids.
//!
//! Ids are handed out in interning order and sets are ordered by id, which
//! `==` and `deepSeq` walk (as CppNix's are): in a process that evaluates
//! several things, or on several threads at once, which of two failing
//! attributes reports first can depend on what was interned before. A fresh
//! process gives CppNix's order.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

/// Serialized as its id, which means something only in this process: the
/// bytecode cache writes a table of names beside it.
#[derive(
    Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Symbol(u32);

/// Segment `k` holds `FIRST << k` names: 23 segments hold more than 2^32.
const FIRST: u32 = 1024;
const SEGMENTS: usize = 23;

/// Name to symbol, `None` until the predefined names are in.
static MAP: Mutex<Option<FxHashMap<&'static str, Symbol>>> = Mutex::new(None);

/// Id to name: segment `k` is leaked when it is first needed (under `MAP`'s
/// lock). A slot holds a leaked name (its length as 4 bytes, then its
/// bytes), written once before its id is handed out.
static SEGMENTS_AT: [AtomicPtr<AtomicPtr<u8>>; SEGMENTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SEGMENTS];

/// Where id `i` lives: its segment and the slot in it.
#[inline]
fn locate(i: u32) -> (usize, usize) {
    let j = i as u64 + FIRST as u64;
    let k = (63 - j.leading_zeros()) as usize - FIRST.trailing_zeros() as usize;
    (k, (j - ((FIRST as u64) << k)) as usize)
}

/// `s`'s symbol, made if it is new.
fn insert(s: &str) -> Symbol {
    let mut guard = MAP.lock().unwrap_or_else(|e| e.into_inner());
    let map = match &mut *guard {
        Some(map) => map,
        none => {
            let mut map = FxHashMap::default();
            for p in PREDEFINED {
                insert_new(&mut map, p);
            }
            none.insert(map)
        }
    };
    match map.get(s) {
        Some(&sym) => sym,
        None => insert_new(map, s),
    }
}

fn insert_new(map: &mut FxHashMap<&'static str, Symbol>, s: &str) -> Symbol {
    let id = u32::try_from(map.len()).expect("fewer than 2^32 symbols");
    let (k, slot) = locate(id);
    let mut seg = SEGMENTS_AT[k].load(Ordering::Acquire);
    if seg.is_null() {
        let slots: Box<[AtomicPtr<u8>]> = (0..(FIRST as usize) << k)
            .map(|_| AtomicPtr::new(std::ptr::null_mut()))
            .collect();
        seg = Box::leak(slots).as_mut_ptr();
        SEGMENTS_AT[k].store(seg, Ordering::Release);
    }
    let len = u32::try_from(s.len()).expect("a name shorter than 4 GiB");
    let mut bytes = Vec::with_capacity(4 + s.len());
    bytes.extend_from_slice(&len.to_ne_bytes());
    bytes.extend_from_slice(s.as_bytes());
    let leaked: &'static mut [u8] = Box::leak(bytes.into_boxed_slice());
    let p = leaked.as_mut_ptr();
    // SAFETY: the bytes after the length are `s`'s, valid UTF-8, leaked.
    let name: &'static str = unsafe { name_at(p) };
    // SAFETY: `slot` is within segment `k`'s `FIRST << k` slots, which are
    // leaked and never move.
    unsafe { &*seg.add(slot) }.store(p, Ordering::Release);
    let sym = Symbol(id);
    map.insert(name, sym);
    sym
}

/// # Safety
/// `p` is a name `insert_new` leaked.
#[inline]
unsafe fn name_at(p: *const u8) -> &'static str {
    let len = u32::from_ne_bytes(std::ptr::read_unaligned(p as *const [u8; 4])) as usize;
    std::str::from_utf8_unchecked(std::slice::from_raw_parts(p.add(4), len))
}

thread_local! {
    /// While `recording` runs on this thread: what it interned, once each,
    /// in order. Only the calls `recording` wraps add to it; the table
    /// itself is shared.
    static RECORD: RefCell<Option<(Vec<Symbol>, rustc_hash::FxHashSet<Symbol>)>> =
        const { RefCell::new(None) };
}

/// Names the evaluator refers to by constant; their order fixes their ids.
const PREDEFINED: &[&str] = &[
    "outPath",
    "type",
    "derivation",
    "__functor",
    "__toString",
    "name",
    "value",
    "drvPath",
    "outputName",
    "body",
    "or",
    "__sub",
    "__mul",
    "__div",
    "__lessThan",
    "__findFile",
    "__nixPath",
    "file",
    "line",
    "column",
    "key",
    "operator",
    "startSet",
    "right",
    "wrong",
    "prefix",
    "path",
    "outputs",
    "system",
    "builder",
    "args",
    "__ignoreNulls",
    "__structuredAttrs",
    "allowedReferences",
    "__contentAddressed",
    "outputHash",
    "outputHashAlgo",
    "outputHashMode",
    "passAsFile",
    "meta",
    "__impure",
    "__overrideArgs",
    "_type",
    "",
];

pub mod known {
    use super::Symbol;
    pub const OUT_PATH: Symbol = Symbol(0);
    pub const TYPE: Symbol = Symbol(1);
    pub const DERIVATION: Symbol = Symbol(2);
    pub const FUNCTOR: Symbol = Symbol(3);
    pub const TO_STRING: Symbol = Symbol(4);
    pub const NAME: Symbol = Symbol(5);
    pub const VALUE: Symbol = Symbol(6);
    pub const DRV_PATH: Symbol = Symbol(7);
    pub const OUTPUT_NAME: Symbol = Symbol(8);
    pub const BODY: Symbol = Symbol(9);
    pub const OR: Symbol = Symbol(10);
    pub const SUB: Symbol = Symbol(11);
    pub const MUL: Symbol = Symbol(12);
    pub const DIV: Symbol = Symbol(13);
    pub const LESS_THAN: Symbol = Symbol(14);
    pub const FIND_FILE: Symbol = Symbol(15);
    pub const NIX_PATH: Symbol = Symbol(16);
    pub const FILE: Symbol = Symbol(17);
    pub const LINE: Symbol = Symbol(18);
    pub const COLUMN: Symbol = Symbol(19);
    pub const KEY: Symbol = Symbol(20);
    pub const OPERATOR: Symbol = Symbol(21);
    pub const START_SET: Symbol = Symbol(22);
    pub const RIGHT: Symbol = Symbol(23);
    pub const WRONG: Symbol = Symbol(24);
    pub const PREFIX: Symbol = Symbol(25);
    pub const PATH: Symbol = Symbol(26);
    pub const OUTPUTS: Symbol = Symbol(27);
}

/// Run `f` and say which symbols it interned on this thread, in the order
/// it first did: the bytecode cache interns a cached file's names in this
/// order so that ids come out as a fresh parse would make them. A recording
/// inside another also counts for the outer one.
pub fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<Symbol>) {
    type Record = Option<(Vec<Symbol>, rustc_hash::FxHashSet<Symbol>)>;
    /// Puts the outer recording back, also if `f` unwinds.
    struct Restore(Option<Record>);
    impl Restore {
        fn finish(&mut self) -> Vec<Symbol> {
            let Some(outer) = self.0.take() else {
                return Vec::new();
            };
            RECORD.with(|r| {
                let mut r = r.borrow_mut();
                let mine = std::mem::replace(&mut *r, outer);
                let order = mine.map(|(order, _)| order).unwrap_or_default();
                if let Some((o, seen)) = &mut *r {
                    o.extend(order.iter().copied().filter(|s| seen.insert(*s)));
                }
                order
            })
        }
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            self.finish();
        }
    }
    let outer = RECORD.with(|r| r.borrow_mut().replace(Default::default()));
    let mut restore = Restore(Some(outer));
    let r = f();
    let order = restore.finish();
    (r, order)
}

impl Symbol {
    /// The symbol's id: its place in the table (see the module header).
    #[inline]
    pub fn id(self) -> u32 {
        self.0
    }

    /// The symbol with id `id`, as `id` gave it (compact storage keeps ids).
    /// An id no `intern` handed out makes `as_str` panic.
    #[inline]
    pub fn from_id(id: u32) -> Symbol {
        Symbol(id)
    }

    pub fn intern(s: &str) -> Symbol {
        let sym = insert(s);
        RECORD.with(|r| {
            if let Some((order, seen)) = &mut *r.borrow_mut() {
                if seen.insert(sym) {
                    order.push(sym);
                }
            }
        });
        sym
    }

    /// The symbol's name. Panics for an id no `intern` handed out (which
    /// only `from_id` can make).
    #[inline]
    pub fn as_str(self) -> &'static str {
        match self.lookup() {
            Some(name) => name,
            None => self.as_str_cold(),
        }
    }

    /// The name in this symbol's slot, if the slot is filled.
    #[inline]
    fn lookup(self) -> Option<&'static str> {
        let (k, slot) = locate(self.0);
        let seg = SEGMENTS_AT[k].load(Ordering::Acquire);
        if seg.is_null() {
            return None;
        }
        // SAFETY: a non-null segment `k` has `FIRST << k` slots.
        let p = unsafe { &*seg.add(slot) }.load(Ordering::Acquire);
        // SAFETY: a non-null slot holds a name `insert_new` leaked.
        (!p.is_null()).then(|| unsafe { name_at(p) })
    }

    /// `as_str` before anything was interned (a predefined name), or of an
    /// id never handed out.
    #[cold]
    fn as_str_cold(self) -> &'static str {
        insert("");
        self.lookup().expect("a symbol this process interned")
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn predefined_ids_are_stable() {
        assert_eq!(Symbol::intern("outPath"), known::OUT_PATH);
        assert_eq!(Symbol::intern("__functor"), known::FUNCTOR);
        assert_eq!(Symbol::intern("path"), known::PATH);
        assert_eq!(Symbol::intern("outputs"), known::OUTPUTS);
        assert_eq!(known::LESS_THAN.as_str(), "__lessThan");
    }
    #[test]
    fn segments_tile_the_ids() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST - 1), (0, FIRST as usize - 1));
        assert_eq!(locate(FIRST), (1, 0));
        assert_eq!(locate(3 * FIRST - 1), (1, 2 * FIRST as usize - 1));
        assert_eq!(locate(3 * FIRST), (2, 0));
        assert!(locate(u32::MAX).0 < SEGMENTS);
    }

    #[test]
    fn a_symbol_names_one_string_on_every_thread() {
        let here = Symbol::intern("sym_from_main_thread");
        let (there, seen) =
            std::thread::spawn(move || (Symbol::intern("sym_from_other_thread"), here.as_str()))
                .join()
                .expect("thread");
        assert_eq!(seen, "sym_from_main_thread");
        assert_eq!(there.as_str(), "sym_from_other_thread");
        assert_eq!(Symbol::intern("sym_from_other_thread"), there);
    }

    #[test]
    fn threads_interning_at_once_agree() {
        let names: Vec<String> = (0..3000).map(|i| format!("sym_race_{i}")).collect();
        let runs: Vec<Vec<Symbol>> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..4)
                .map(|t| {
                    let names = &names;
                    sc.spawn(move || {
                        // Each thread in its own order, so the ids race.
                        let mut order: Vec<usize> = (0..names.len()).collect();
                        order.rotate_left(t * 700);
                        let mut out = vec![Symbol(0); names.len()];
                        for i in order {
                            out[i] = Symbol::intern(&names[i]);
                        }
                        out
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        for r in &runs[1..] {
            assert_eq!(r, &runs[0]);
        }
        for (sym, name) in runs[0].iter().zip(&names) {
            assert_eq!(sym.as_str(), name);
        }
    }

    #[test]
    fn interning_is_idempotent() {
        let a = Symbol::intern("hello-world");
        assert_eq!(a, Symbol::intern("hello-world"));
        assert_ne!(a, Symbol::intern("hello"));
    }
}

#[cfg(test)]
mod recording_tests {
    use super::*;

    #[test]
    fn a_recording_lists_what_was_interned_first_to_last_once() {
        let ((), outer) = recording(|| {
            Symbol::intern("rec_b");
            let ((), inner) = recording(|| {
                Symbol::intern("rec_a");
                Symbol::intern("rec_b");
                Symbol::intern("outPath");
            });
            let inner: Vec<&str> = inner.iter().map(|s| s.as_str()).collect();
            assert_eq!(inner, ["rec_a", "rec_b", "outPath"]);
            Symbol::intern("rec_c");
        });
        let outer: Vec<&str> = outer.iter().map(|s| s.as_str()).collect();
        assert_eq!(outer, ["rec_b", "rec_a", "outPath", "rec_c"]);
        // Nothing is recorded once it ended.
        let ((), none) = recording(|| ());
        assert!(none.is_empty());
    }
}
