//! Large lists that died as a builtin's argument, kept instead of freed
//! until memory is wanted.
//!
//! Freeing a list of a million elements touches every element and what only
//! it held (each a thunk, most with a forced value): in `foldl'` over
//! `genList` or `concatStringsSep` over `map` that was a tenth of the run,
//! spent after the builtin had its answer. Kept here, such a list is freed
//! when the kept lists pass a budget, at a cycle collection (when one is
//! asked for), with the `Vm`, or never, when the process ends first
//! (`nixvm instantiate` exits without freeing its evaluator). CppNix's
//! collector leaves dead values alone the same way until it needs memory.

use crate::value::{Value, View};

/// Shorter lists are freed at once: their freeing costs little.
const MIN_LEN: usize = 4096;
/// At most this many elements are kept (a few tens of MB at worst).
const BUDGET: usize = 2 << 20;

#[derive(Default)]
pub struct Graveyard {
    kept: Vec<Value>,
    elements: usize,
}

impl Graveyard {
    /// Keep `v` (leaving null in its place) if it is the last handle of a
    /// large list, directly or as a forced thunk held only here.
    #[inline]
    pub fn offer(&mut self, v: &mut Value) {
        let len = match v.view() {
            View::List(l) if l.strong_count() == 1 => l.len(),
            View::Thunk(t) if t.is_unique() => match t.obj().done_ref().map(Value::view) {
                Some(View::List(l)) if l.strong_count() == 1 => l.len(),
                _ => return,
            },
            _ => return,
        };
        if len < MIN_LEN {
            return;
        }
        if self.elements + len > BUDGET {
            self.flush();
        }
        self.elements += len;
        self.kept.push(std::mem::replace(v, Value::Null));
    }

    /// Free everything kept.
    pub fn flush(&mut self) {
        self.elements = 0;
        // Dropped one by one from a vector taken out first: freeing may
        // drop values that offer nothing back, but keep `self` consistent.
        drop(std::mem::take(&mut self.kept));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heap::Heap;
    use crate::thunk::Thunk;

    fn ints(n: usize) -> Value {
        Value::list((0..n as i64).map(Value::Int).collect())
    }

    #[test]
    fn keeps_the_last_handle_of_a_large_list() {
        let mut g = Graveyard::default();
        let mut v = ints(MIN_LEN);
        g.offer(&mut v);
        assert!(matches!(v.view(), View::Null));
        assert_eq!((g.kept.len(), g.elements), (1, MIN_LEN));
        g.flush();
        assert_eq!((g.kept.len(), g.elements), (0, 0));
    }

    #[test]
    fn leaves_shared_and_short_lists() {
        let mut g = Graveyard::default();
        let mut shared = ints(MIN_LEN);
        let other = shared.clone();
        g.offer(&mut shared);
        let mut short = ints(MIN_LEN - 1);
        g.offer(&mut short);
        assert!(matches!(shared.view(), View::List(_)));
        assert!(matches!(short.view(), View::List(_)));
        assert!(g.kept.is_empty());
        drop(other);
    }

    #[test]
    fn keeps_a_forced_thunk_only_if_nothing_else_holds_its_list() {
        let heap = Heap::new();
        let mut g = Graveyard::default();
        let list = ints(MIN_LEN);
        let mut held = Value::Thunk(Thunk::evaluated(&heap, list.clone()));
        g.offer(&mut held);
        assert!(
            matches!(held.view(), View::Thunk(_)),
            "the list has another handle"
        );
        drop(list);
        g.offer(&mut held);
        assert!(matches!(held.view(), View::Null));
        g.flush();
    }

    #[test]
    fn frees_what_it_kept_when_the_budget_is_passed() {
        let mut g = Graveyard::default();
        for _ in 0..BUDGET / MIN_LEN + 1 {
            let mut v = ints(MIN_LEN);
            g.offer(&mut v);
        }
        assert_eq!(g.elements, MIN_LEN);
        assert_eq!(g.kept.len(), 1);
    }
}
