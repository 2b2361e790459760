//! A census of the heap: every object reachable from the `Vm`'s roots,
//! counted and sized by kind. It exists to decide memory layouts by
//! measurement (which kinds hold the bytes at the peak of a NixOS
//! evaluation) and to show how much of what the process holds is
//! unreachable: under reference counting, cycles are never freed, and the
//! difference between the heap in use and the reachable bytes is what a
//! tracing collector would give back.
//!
//! The walk uses an explicit work list (no native recursion at any depth)
//! and a visited set by address. Sizes are those of today's representation,
//! including the 16-byte counts of an `Rc` and the spare capacity of
//! vectors, but not the allocator's own rounding.

use crate::env::Env;
use crate::thunk::Parts;
use crate::value::View;
use crate::value::*;
use crate::vm::{FrameKind, Vm};
use rustc_hash::FxHashSet;
use std::mem::size_of;
use std::rc::Rc;

/// The kinds the census tells apart.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Thunk,
    Env,
    Attrs,
    List,
    String,
    Path,
    Closure,
    PrimOpApp,
    PrimOp,
    /// Linked code: ops, spans, constants.
    Code,
}

pub const KINDS: [Kind; 10] = [
    Kind::Thunk,
    Kind::Env,
    Kind::Attrs,
    Kind::List,
    Kind::String,
    Kind::Path,
    Kind::Closure,
    Kind::PrimOpApp,
    Kind::PrimOp,
    Kind::Code,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Thunk => "thunk",
            Kind::Env => "env",
            Kind::Attrs => "attrset",
            Kind::List => "list",
            Kind::String => "string",
            Kind::Path => "path",
            Kind::Closure => "closure",
            Kind::PrimOpApp => "primop application",
            Kind::PrimOp => "primop",
            Kind::Code => "code",
        }
    }
}

/// Objects and bytes per kind, plus details that layouts depend on.
#[derive(Default, Clone, Debug)]
pub struct Census {
    pub objects: [u64; KINDS.len()],
    pub bytes: [u64; KINDS.len()],
    /// Attributes over all reachable layers.
    pub attrs: u64,
    /// Env slots, list elements.
    pub env_slots: u64,
    pub list_items: u64,
    /// String bytes, and strings that carry a context.
    pub string_bytes: u64,
    pub strings_with_context: u64,
    /// Strings of at most 7 bytes without context (candidates for inline storage).
    pub short_strings: u64,
    /// Instructions and constants over all reachable code.
    pub code_ops: u64,
    pub code_consts: u64,
    /// Lazy builtin applications not yet forced (their arguments are inline).
    pub thunk_apps: u64,
    /// Thunks already evaluated (a done thunk only forwards its value).
    pub thunks_done: u64,
    /// Of those, the ones with one reference (which replacing that
    /// reference by the value would free).
    pub thunks_done_once: u64,
    /// References to done thunks from attributes, env slots and list items.
    pub done_refs: [u64; 3],
}

impl Census {
    fn add(&mut self, k: Kind, bytes: usize) {
        let i = KINDS.iter().position(|&x| x == k).expect("kind listed");
        self.objects[i] += 1;
        self.bytes[i] += bytes as u64;
    }
    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }
    pub fn total_objects(&self) -> u64 {
        self.objects.iter().sum()
    }
    /// Objects and bytes per kind as a JSON object, for `--stats`
    /// (`{"thunk":{"objects":N,"bytes":B},...}`, kinds with no objects left out).
    pub fn json(&self) -> String {
        let kinds: Vec<String> = (0..KINDS.len())
            .filter(|&i| self.objects[i] > 0)
            .map(|i| {
                format!(
                    "\"{}\":{{\"objects\":{},\"bytes\":{}}}",
                    KINDS[i].name(),
                    self.objects[i],
                    self.bytes[i]
                )
            })
            .collect();
        format!("{{{}}}", kinds.join(","))
    }
    /// A Markdown table, largest kind first.
    pub fn table(&self) -> String {
        let mut rows: Vec<usize> = (0..KINDS.len()).collect();
        rows.sort_by_key(|&i| std::cmp::Reverse(self.bytes[i]));
        let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut out = String::from("| kind | objects | MiB | bytes/object |\n|---|---|---|---|\n");
        for i in rows {
            if self.objects[i] == 0 {
                continue;
            }
            out.push_str(&format!(
                "| {} | {} | {:.1} | {:.1} |\n",
                KINDS[i].name(),
                self.objects[i],
                mb(self.bytes[i]),
                self.bytes[i] as f64 / self.objects[i] as f64
            ));
        }
        out.push_str(&format!(
            "| total | {} | {:.1} | |\n",
            self.total_objects(),
            mb(self.total_bytes())
        ));
        out.push_str(&format!(
            "\nattributes {}, env slots {}, list items {}, string bytes {}, strings with context {}, short strings (<= 7 bytes, no context) {}, done thunks {} ({} with one reference; referenced from {} attributes, {} env slots, {} list items), unforced applications {}\ncode: {} ops of {} bytes with packed spans, {} constants of {} bytes, {}-byte chunk headers\n",
            self.attrs,
            self.env_slots,
            self.list_items,
            self.string_bytes,
            self.strings_with_context,
            self.short_strings,
            self.thunks_done,
            self.thunks_done_once,
            self.done_refs[0],
            self.done_refs[1],
            self.done_refs[2],
            self.thunk_apps,
            self.code_ops,
            size_of::<nixvm_compiler::chunk::Op>(),
            self.code_consts,
            size_of::<Constant>(),
            RC + size_of::<Proto>()
        ));
        out
    }
}

const RC: usize = 2 * size_of::<usize>();

enum Item {
    V(Value),
    E(Env),
    P(Rc<Proto>),
    A(Attrs),
}

struct Walk {
    seen: FxHashSet<usize>,
    todo: Vec<Item>,
    c: Census,
}

impl Walk {
    fn first(&mut self, p: *const ()) -> bool {
        self.seen.insert(p as usize)
    }

    /// Count a reference to a done thunk from container kind `k` (see
    /// `Census::done_refs`).
    fn count_done(&mut self, v: &Value, k: usize) {
        if let View::Thunk(t) = v.view() {
            if matches!(t.parts(), Parts::Value(_)) {
                self.c.done_refs[k] += 1;
            }
        }
    }

    fn value(&mut self, v: &Value) {
        match &v.view() {
            View::Null | View::Bool(_) | View::Int(_) | View::Float(_) => {}
            _ => self.todo.push(Item::V(v.clone())),
        }
    }

    fn visit_value(&mut self, v: Value) {
        match &v.view() {
            View::Null | View::Bool(_) | View::Int(_) | View::Float(_) => {}
            View::String(s) => {
                if self.first(s.as_ptr()) {
                    let n = s.len();
                    let mut bytes = s.alloc_bytes();
                    if let Some(ctx) = s.context() {
                        self.c.strings_with_context += 1;
                        // A BTreeSet node per few elements; count each element's Rc<str>.
                        bytes += size_of::<Context>()
                            + ctx.iter().map(|e| RC + e.len() + 16).sum::<usize>();
                    } else if n <= 7 {
                        self.c.short_strings += 1;
                    }
                    self.c.string_bytes += n as u64;
                    self.c.add(Kind::String, bytes);
                }
            }
            View::Path(p) => {
                if self.first(Rc::as_ptr(p) as *const ()) {
                    self.c
                        .add(Kind::Path, RC + size_of::<String>() + p.capacity());
                }
            }
            View::Attrs(a) => self.todo.push(Item::A(a.clone())),
            View::List(l) => {
                if self.first(l.as_ptr()) {
                    self.c.list_items += l.len() as u64;
                    self.c.add(Kind::List, l.alloc_bytes());
                    for x in l.iter() {
                        self.count_done(x, 2);
                        self.value(x);
                    }
                }
            }
            View::Lambda(cl) => {
                if self.first(Rc::as_ptr(cl) as *const ()) {
                    self.c.add(Kind::Closure, RC + size_of::<Closure>());
                    self.todo.push(Item::P(cl.proto.clone()));
                    self.todo.push(Item::E(cl.env.clone()));
                }
            }
            View::PrimOp(p) => {
                if self.first(Rc::as_ptr(p) as *const ()) {
                    self.c
                        .add(Kind::PrimOp, RC + size_of::<PrimOp>() + p.name.len());
                }
            }
            View::PrimOpApp(app) => {
                if self.first(Rc::as_ptr(app) as *const ()) {
                    self.c.add(
                        Kind::PrimOpApp,
                        RC + size_of::<PrimOpApp>() + app.args.capacity() * size_of::<Value>(),
                    );
                    self.value(&Value::PrimOp(app.prim.clone()));
                    for x in &app.args {
                        self.value(x);
                    }
                }
            }
            View::Thunk(t) => {
                if self.first(t.as_ptr()) {
                    self.c.add(Kind::Thunk, t.block_size());
                    match t.parts() {
                        Parts::Code(p, e) => {
                            self.todo.push(Item::P(Rc::clone(&p)));
                            self.todo.push(Item::E(Env::clone(&e)));
                        }
                        Parts::App(f, xs) => {
                            self.c.thunk_apps += 1;
                            self.value(f);
                            for x in xs {
                                self.value(x);
                            }
                        }
                        Parts::Value(v) => {
                            self.c.thunks_done += 1;
                            // One reference besides the walk's own.
                            if t.strong_count() == 2 {
                                self.c.thunks_done_once += 1;
                            }
                            self.value(v);
                        }
                        Parts::Nothing => {}
                    }
                }
            }
        }
    }

    fn visit_env(&mut self, e: Env) {
        let mut e = e;
        loop {
            if !self.first(e.as_ptr()) {
                return;
            }
            self.c.env_slots += e.len() as u64;
            self.c.add(Kind::Env, 16 + e.len() * size_of::<Value>());
            for i in 0..e.len() {
                let v = e.get(i);
                self.count_done(&v, 1);
                self.value(&v);
            }
            match e.parent() {
                Some(p) => e = p.clone(),
                None => return,
            }
        }
    }

    fn visit_attrs(&mut self, a: Attrs) {
        let mut a = a;
        loop {
            if !self.first(a.as_ptr()) {
                return;
            }
            let (entries, base) = a.layer();
            self.c.attrs += entries.len() as u64;
            self.c.add(Kind::Attrs, a.layer_bytes());
            for e in entries {
                self.count_done(&e.value, 0);
                self.value(&e.value);
            }
            match base.cloned() {
                Some(b) => a = b,
                None => return,
            }
        }
    }

    fn visit_proto(&mut self, p: Rc<Proto>) {
        if !self.first(Rc::as_ptr(&p) as *const ()) {
            return;
        }
        let bytes = RC + size_of::<Proto>() + p.body.alloc_bytes();
        self.c.add(Kind::Code, bytes);
        self.c.code_ops += p.code().len() as u64;
        self.c.code_consts += p.consts().len() as u64;
        for c in p.consts().iter() {
            match c.view() {
                CView::Value(v) => self.value(v),
                CView::Proto(q) => self.todo.push(Item::P(q.clone())),
                _ => {}
            }
        }
    }
}

/// Count everything reachable from the `Vm`'s roots and from `extra`.
pub fn census(vm: &Vm, extra: &[Value]) -> Census {
    let mut w = Walk {
        seen: FxHashSet::default(),
        todo: Vec::new(),
        c: Census::default(),
    };
    vm.roots(&mut |v| w.value(v));
    for f in &vm.frames {
        w.todo.push(Item::P(f.proto().clone()));
        w.todo.push(Item::E(f.env.clone()));
        if let FrameKind::Thunk(t) = &f.kind {
            w.value(&Value::Thunk(t.clone()));
        }
    }
    w.todo.push(Item::E(vm.globals.clone()));
    // Cache entries whose chunks are linked as they are used.
    for s in vm.stored_entries() {
        w.c.add(Kind::Code, s.size());
    }
    for v in extra {
        w.value(v);
    }
    while let Some(item) = w.todo.pop() {
        match item {
            Item::V(v) => w.visit_value(v),
            Item::E(e) => w.visit_env(e),
            Item::P(p) => w.visit_proto(p),
            Item::A(a) => w.visit_attrs(a),
        }
    }
    w.c
}

/// When to take censuses during an evaluation, and the largest so far.
pub struct Schedule {
    /// Take one every this many thunks created (0: never).
    every: u64,
    /// The thunk count at which the next is due (`u64::MAX`: never).
    pub(crate) next: u64,
    pub samples: u32,
    pub peak: Option<Census>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            every: 0,
            next: u64::MAX,
            samples: 0,
            peak: None,
        }
    }
}

impl Schedule {
    /// Take a census every `n` thunks created (`n` > 0).
    pub fn every(n: u64) -> Schedule {
        Schedule {
            every: n,
            next: n,
            ..Schedule::default()
        }
    }
}

/// Take a census now (the interpreter calls this when one is due) and keep
/// it if it is the largest. Values that only a builtin's native frame holds
/// at that moment are not seen: the figure is a lower bound.
pub fn sample(vm: &mut Vm) {
    let c = census(vm, &[]);
    let s = &mut vm.census;
    s.samples += 1;
    s.next = s.next.saturating_add(s.every.max(1));
    if s.peak
        .as_ref()
        .is_none_or(|p| p.total_bytes() < c.total_bytes())
    {
        s.peak = Some(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nixvm_compiler::Symbol;

    #[test]
    fn counts_each_object_once_and_follows_cycles() {
        let vm = Vm::new(Default::default());
        let heap = &vm.heap;
        let shared = Value::list(vec![Value::Int(1), Value::str("abc")]);
        let env = Env::new(heap, None, 2);
        env.set(0, shared.clone());
        env.set(1, shared.clone());
        // A cycle: the env holds a thunk whose env is the env itself.
        let t = Thunk::evaluated(heap, Value::Null);
        let cl = Value::Lambda(Rc::new(Closure {
            proto: crate::value::test_proto(),
            env: env.clone(),
        }));
        t.set(cl.clone());
        env.set(1, Value::Thunk(t));
        let set = Value::attrs(Attrs::from_unsorted(vec![
            (Symbol::intern("census-a"), shared.clone()),
            (Symbol::intern("census-b"), cl),
        ]));
        // What a bare Vm holds itself (its globals env, the shared empties).
        let base = census(&vm, &[]);
        let c = census(&vm, &[set]);
        let i = |k: Kind| KINDS.iter().position(|&x| x == k).unwrap();
        let n = |k: Kind| c.objects[i(k)] - base.objects[i(k)];
        assert_eq!(n(Kind::List), 1);
        assert_eq!(n(Kind::String), 1);
        assert_eq!(n(Kind::Closure), 1);
        assert_eq!(n(Kind::Thunk), 1);
        assert_eq!(n(Kind::Attrs), 1);
        assert_eq!(n(Kind::Env), 1);
        assert_eq!(c.list_items - base.list_items, 2);
        assert_eq!(c.attrs - base.attrs, 2);
        assert!(c.table().contains("| list | "));
    }

    #[test]
    fn a_long_chain_needs_no_native_recursion() {
        let vm = Vm::new(Default::default());
        let mut v = Value::Null;
        for i in 0..200_000 {
            v = Value::list(vec![Value::Int(i), v]);
        }
        let c = census(&vm, std::slice::from_ref(&v));
        assert_eq!(c.list_items, 400_000);
        // Dropping nested `Rc`s recurses once per level: leave it to the process.
        std::mem::forget(v);
    }
}
