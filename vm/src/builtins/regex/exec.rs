//! Running the NFA of `compile.rs` the way libstdc++'s DFS `_Executor`
//! does in POSIX mode, so that `regex_match` and `regex_search` (and thus
//! `cregex_iterator`) give CppNix's answers, quirks included:
//!
//! - an alternation explores both branches and keeps a later solution only
//!   if it ends strictly further (POSIX "longest"), but that comparison is
//!   made only where both branches are tried: a greedy repeat takes its exit
//!   only while no solution has been found yet;
//! - a repeat node goes round again at most twice at one input position on
//!   the current path (which is why `(a*)*` on "aa" captures "");
//! - a capture's start is set on entering the group and its end and
//!   "matched" on leaving, each restored on backtracking, and nothing resets
//!   a group between iterations of an enclosing repeat.
//!
//! libstdc++ recurses once per node; here the recursion is an explicit stack
//! of undo records on the heap, so long inputs cannot overflow the stack.

use super::compile::{Nfa, Op, StateId, NONE};

/// A capture: byte offsets, and whether the group took part.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cap {
    pub start: usize,
    pub end: usize,
    pub matched: bool,
}

const UNMATCHED: Cap = Cap {
    start: 0,
    end: 0,
    matched: false,
};

/// The `match_flag_type` bits `regex_iterator` uses.
#[derive(Clone, Copy, Default, Debug)]
pub struct Flags {
    /// `match_not_null`: an empty match does not count.
    pub not_null: bool,
    /// `match_continuous`: only a match starting at the first position.
    pub continuous: bool,
    /// `match_prev_avail`: the first position is not the start of the
    /// input, so `^` cannot match there.
    pub prev_avail: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `regex_match`: a solution must end at the end of the input.
    Exact,
    /// `regex_search` from one position: any end will do.
    Prefix,
}

/// What to undo (or try next) when the current path fails.
#[derive(Clone, Copy)]
enum Frame {
    /// A greedy repeat's exit, tried only if no solution was found.
    FallbackNext {
        state: StateId,
        pos: usize,
    },
    /// The right branch of an alternation.
    PosixAlt {
        state: StateId,
        pos: usize,
    },
    /// After the right branch: whether the left one had found a solution.
    MergeSol(bool),
    RestoreStart {
        group: u32,
        pos: usize,
    },
    RestoreEnd {
        group: u32,
        pos: usize,
        matched: bool,
    },
    RestoreRep {
        state: StateId,
        pos: usize,
        count: u8,
    },
    DecRep {
        state: StateId,
    },
}

/// Buffers kept between runs of one pattern, and its step budget.
pub struct Scratch {
    cur: Vec<Cap>,
    best: Vec<Cap>,
    /// Per node: the position and count of the last "once more".
    rep: Vec<(usize, u8)>,
    frames: Vec<Frame>,
    /// Nodes one attempt may visit: unlimited unless a test lowers it
    /// (CppNix has no limit: a pattern that makes libstdc++ run forever
    /// makes the builtins run forever too).
    pub(super) budget: u64,
    /// An attempt ran out of steps (its answer is then meaningless).
    pub(super) exhausted: bool,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            cur: Vec::new(),
            best: Vec::new(),
            rep: Vec::new(),
            frames: Vec::new(),
            budget: u64::MAX,
            exhausted: false,
        }
    }
}

/// Which bytes can start a match, for skipping hopeless start positions.
pub struct Prefilter {
    first: [bool; 256],
    /// The pattern can match without consuming anything (anchors are
    /// assumed to pass): no position can be skipped.
    nullable: bool,
}

impl Prefilter {
    pub fn new(nfa: &Nfa) -> Prefilter {
        let mut first = [false; 256];
        let mut nullable = false;
        let mut seen = vec![false; nfa.states.len()];
        let mut stack = vec![0 as StateId];
        while let Some(i) = stack.pop() {
            if i == NONE || seen[i as usize] {
                continue;
            }
            seen[i as usize] = true;
            let s = &nfa.states[i as usize];
            match s.op {
                Op::Alt | Op::Repeat => {
                    stack.push(s.alt);
                    stack.push(s.next);
                }
                Op::SubBegin(_) | Op::SubEnd(_) | Op::LineBegin | Op::LineEnd | Op::Dummy => {
                    stack.push(s.next)
                }
                Op::Byte(b) => first[b as usize] = true,
                Op::Set(k) => {
                    let set = &nfa.sets[k as usize];
                    for (b, f) in first.iter_mut().enumerate() {
                        *f |= set.contains(b as u8);
                    }
                }
                Op::Any => {
                    for f in first.iter_mut().skip(1) {
                        *f = true;
                    }
                }
                Op::Accept => nullable = true,
            }
        }
        Prefilter { first, nullable }
    }
}

struct Exec<'a> {
    nfa: &'a Nfa,
    input: &'a [u8],
    /// `_M_begin`: where the current attempt starts.
    begin: usize,
    cur: usize,
    flags: Flags,
    has_sol: bool,
    sol_pos: Option<usize>,
    budget: u64,
    s: &'a mut Scratch,
}

impl Exec<'_> {
    fn new<'a>(
        nfa: &'a Nfa,
        input: &'a [u8],
        start: usize,
        flags: Flags,
        s: &'a mut Scratch,
    ) -> Exec<'a> {
        let n = nfa.groups;
        s.cur.clear();
        s.cur.resize(n, UNMATCHED);
        s.best.clear();
        s.best.resize(n, UNMATCHED);
        if s.rep.len() != nfa.states.len() {
            s.rep.clear();
            s.rep.resize(nfa.states.len(), (usize::MAX, 0));
        }
        s.frames.clear();
        Exec {
            nfa,
            input,
            begin: start,
            cur: start,
            flags,
            has_sol: false,
            sol_pos: None,
            budget: s.budget,
            s,
        }
    }

    /// One attempt from `self.begin` (`_M_main` in DFS mode).
    fn run(&mut self, mode: Mode) -> bool {
        self.has_sol = false;
        self.sol_pos = None;
        self.cur = self.begin;
        self.dfs(mode, 0);
        self.has_sol
    }

    /// `regex_search`: attempts at each position from `begin` on.
    fn search(&mut self, pre: &Prefilter) -> bool {
        if self.run(Mode::Prefix) {
            return true;
        }
        if self.flags.continuous {
            return false;
        }
        self.flags.prev_avail = true;
        let end = self.input.len();
        while self.begin != end {
            self.begin += 1;
            if !pre.nullable {
                // No match can start here: the attempt would fail at once.
                match self.input.get(self.begin) {
                    Some(&b) if pre.first[b as usize] => {}
                    _ => continue,
                }
            }
            if self.run(Mode::Prefix) {
                return true;
            }
            if self.budget == 0 {
                return false;
            }
        }
        false
    }

    fn rep_once_more(&mut self, i: StateId) -> StateId {
        let st = &self.nfa.states[i as usize];
        let rc = &mut self.s.rep[i as usize];
        if rc.1 == 0 || rc.0 != self.cur {
            self.s.frames.push(Frame::RestoreRep {
                state: i,
                pos: rc.0,
                count: rc.1,
            });
            *rc = (self.cur, 1);
            st.alt
        } else if rc.1 < 2 {
            rc.1 += 1;
            self.s.frames.push(Frame::DecRep { state: i });
            st.alt
        } else {
            NONE
        }
    }

    fn accept(&mut self, mode: Mode) {
        let end = self.input.len();
        self.has_sol = match mode {
            Mode::Exact => self.cur == end,
            Mode::Prefix => true,
        };
        if self.cur == self.begin && self.flags.not_null {
            self.has_sol = false;
        }
        if self.has_sol {
            // POSIX: keep the longest; a later one of equal length loses.
            let better = match self.sol_pos {
                None => true,
                Some(p) => p - self.begin < self.cur - self.begin,
            };
            if better {
                self.sol_pos = Some(self.cur);
                let (cur, best) = (&self.s.cur, &mut self.s.best);
                best.copy_from_slice(cur);
            }
        }
    }

    /// Handle node `i`; the node to continue with, or `NONE` to backtrack.
    #[inline]
    fn step(&mut self, mode: Mode, i: StateId) -> StateId {
        let st = self.nfa.states[i as usize];
        match st.op {
            Op::Byte(b) => {
                if self.input.get(self.cur) == Some(&b) {
                    self.cur += 1;
                    st.next
                } else {
                    NONE
                }
            }
            Op::Any => match self.input.get(self.cur) {
                Some(&c) if c != 0 => {
                    self.cur += 1;
                    st.next
                }
                _ => NONE,
            },
            Op::Set(k) => match self.input.get(self.cur) {
                Some(&c) if self.nfa.sets[k as usize].contains(c) => {
                    self.cur += 1;
                    st.next
                }
                _ => NONE,
            },
            Op::Repeat => {
                self.s.frames.push(Frame::FallbackNext {
                    state: st.next,
                    pos: self.cur,
                });
                self.rep_once_more(i)
            }
            Op::Alt => {
                self.s.frames.push(Frame::PosixAlt {
                    state: st.next,
                    pos: self.cur,
                });
                st.alt
            }
            Op::SubBegin(g) => {
                let c = &mut self.s.cur[g as usize];
                self.s.frames.push(Frame::RestoreStart {
                    group: g,
                    pos: c.start,
                });
                c.start = self.cur;
                st.next
            }
            Op::SubEnd(g) => {
                let c = &mut self.s.cur[g as usize];
                self.s.frames.push(Frame::RestoreEnd {
                    group: g,
                    pos: c.end,
                    matched: c.matched,
                });
                c.end = self.cur;
                c.matched = true;
                st.next
            }
            Op::LineBegin => {
                if self.cur == self.begin && !self.flags.prev_avail {
                    st.next
                } else {
                    NONE
                }
            }
            Op::LineEnd => {
                if self.cur == self.input.len() {
                    st.next
                } else {
                    NONE
                }
            }
            Op::Accept => {
                self.accept(mode);
                NONE
            }
            Op::Dummy => st.next,
        }
    }

    fn dfs(&mut self, mode: Mode, start: StateId) {
        let mut next = start;
        loop {
            while next != NONE {
                if self.budget == 0 {
                    // Out of steps: drop the path, leaving the buffers as
                    // a completed run would.
                    self.s.exhausted = true;
                    self.s.frames.clear();
                    self.s.rep.fill((usize::MAX, 0));
                    self.has_sol = false;
                    return;
                }
                self.budget -= 1;
                next = self.step(mode, next);
            }
            let Some(f) = self.s.frames.pop() else {
                break;
            };
            match f {
                Frame::FallbackNext { state, pos } => {
                    if !self.has_sol {
                        self.cur = pos;
                        next = state;
                    }
                }
                Frame::PosixAlt { state, pos } => {
                    self.s.frames.push(Frame::MergeSol(self.has_sol));
                    self.has_sol = false;
                    self.cur = pos;
                    next = state;
                }
                Frame::MergeSol(had) => self.has_sol |= had,
                Frame::RestoreStart { group, pos } => self.s.cur[group as usize].start = pos,
                Frame::RestoreEnd {
                    group,
                    pos,
                    matched,
                } => {
                    let c = &mut self.s.cur[group as usize];
                    c.end = pos;
                    c.matched = matched;
                }
                Frame::RestoreRep { state, pos, count } => {
                    self.s.rep[state as usize] = (pos, count)
                }
                Frame::DecRep { state } => self.s.rep[state as usize].1 -= 1,
            }
        }
    }
}

/// `std::regex_match`: the groups (0 = whole match) if `input` matches as
/// a whole.
pub fn match_exact<'s>(nfa: &Nfa, input: &[u8], scratch: &'s mut Scratch) -> Option<&'s [Cap]> {
    let mut ex = Exec::new(nfa, input, 0, Flags::default(), scratch);
    if ex.run(Mode::Exact) {
        Some(&scratch.best)
    } else {
        None
    }
}

/// `std::regex_search` from `start` with `flags`: the groups of the match.
pub fn search<'s>(
    nfa: &Nfa,
    pre: &Prefilter,
    input: &[u8],
    start: usize,
    flags: Flags,
    scratch: &'s mut Scratch,
) -> Option<&'s [Cap]> {
    let mut ex = Exec::new(nfa, input, start, flags, scratch);
    if ex.search(pre) {
        Some(&scratch.best)
    } else {
        None
    }
}
