//! Interned identifiers. Attribute names and variables are compared and
//! hashed as `u32`s everywhere after parsing; the interner lives for the
//! thread (evaluation is single-threaded), and strings are leaked once so
//! that `as_str` can hand out `&'static str` without borrowing the table.

use rustc_hash::FxHashMap;
use std::cell::RefCell;
use std::fmt;

/// Serialized as its id, which means something only in this thread's
/// interner: the bytecode cache writes a table of names beside it.
#[derive(
    Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Symbol(pub u32);

struct Interner {
    map: FxHashMap<&'static str, Symbol>,
    names: Vec<&'static str>,
    /// While `recording` runs: every symbol interned, once, in order.
    record: Option<(Vec<Symbol>, rustc_hash::FxHashSet<Symbol>)>,
}

thread_local! {
    static INTERNER: RefCell<Interner> = RefCell::new(Interner::new());
}

impl Interner {
    fn new() -> Self {
        let mut i = Interner {
            map: FxHashMap::default(),
            names: Vec::new(),
            record: None,
        };
        for s in PREDEFINED {
            i.intern(s);
        }
        i
    }
    fn intern(&mut self, s: &str) -> Symbol {
        let sym = self.intern_quiet(s);
        if let Some((order, seen)) = &mut self.record {
            if seen.insert(sym) {
                order.push(sym);
            }
        }
        sym
    }
    fn intern_quiet(&mut self, s: &str) -> Symbol {
        if let Some(&sym) = self.map.get(s) {
            return sym;
        }
        let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
        let sym = Symbol(self.names.len() as u32);
        self.names.push(leaked);
        self.map.insert(leaked, sym);
        sym
    }
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

/// Run `f` and say which symbols it interned, in the order it first did.
/// Ids are handed out in interning order and sets are ordered by id, which
/// `==` and `deepSeq` walk: the bytecode cache interns a cached file's
/// names in this order so that ids come out as a fresh parse would make
/// them. A recording inside another also counts for the outer one.
pub fn recording<R>(f: impl FnOnce() -> R) -> (R, Vec<Symbol>) {
    type Record = Option<(Vec<Symbol>, rustc_hash::FxHashSet<Symbol>)>;
    /// Puts the outer recording back, also if `f` unwinds.
    struct Restore(Option<Record>);
    impl Restore {
        fn finish(&mut self) -> Vec<Symbol> {
            let Some(outer) = self.0.take() else {
                return Vec::new();
            };
            INTERNER.with(|i| {
                let mut i = i.borrow_mut();
                let mine = std::mem::replace(&mut i.record, outer);
                let order = mine.map(|(order, _)| order).unwrap_or_default();
                if let Some((o, seen)) = &mut i.record {
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
    let outer = INTERNER.with(|i| i.borrow_mut().record.replace(Default::default()));
    let mut restore = Restore(Some(outer));
    let r = f();
    let order = restore.finish();
    (r, order)
}

impl Symbol {
    pub fn intern(s: &str) -> Symbol {
        INTERNER.with(|i| i.borrow_mut().intern(s))
    }
    pub fn as_str(self) -> &'static str {
        INTERNER.with(|i| i.borrow().names[self.0 as usize])
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
