//! `builtins.match` and `builtins.split`, with CppNix 2.34's answers.
//!
//! CppNix compiles the pattern with `std::regex(re, std::regex::extended)`
//! and runs libstdc++'s backtracking executor: `std::regex_match` for
//! `match`, `std::cregex_iterator` for `split`. That executor has its own
//! semantics (POSIX-ish "longest" only at alternations, a twice-per-position
//! limit on empty repeat iterations, captures never reset), which no regex
//! library reproduces, so this module owns a reimplementation:
//! `compile.rs` builds libstdc++'s automaton, `exec.rs` runs it.
//!
//! The `regex` crate still does most of the work, where it provably gives
//! the same answer (see `Regex::new`): as the whole engine for patterns in
//! the "fast class", and elsewhere to find where a match starts, or that
//! there is none, before the backtracker runs.

mod compile;
mod exec;

use super::Registry;
use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use std::cell::{OnceCell, RefCell};
use std::ops::Range;
use std::rc::Rc;

pub use compile::CompileError;
use exec::{Flags, Prefilter, Scratch};

pub fn register(r: &mut Registry) {
    r.prim("match", 2, prim_match);
    r.prim("split", 2, prim_split);
}

/// Which machinery answers; `Auto` is what the builtins use, the others
/// exist so tests can compare them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Engine {
    /// The `regex` crate where that is exact, else the backtracker helped
    /// by the `regex` crate.
    #[default]
    Auto,
    /// The backtracker alone, exactly as libstdc++ runs.
    Backtrack,
    /// The `regex` crate alone: only meaningful in the fast class.
    Crate,
}

/// The regexes an evaluation has compiled, by pattern, and the engine its
/// builtins use.
#[derive(Default)]
struct RegexState {
    cache: rustc_hash::FxHashMap<Vec<u8>, Rc<Regex>>,
    engine: Engine,
}

impl crate::state::Extension for RegexState {}

/// Make the builtins of this evaluator use `engine` (`Auto` or `Backtrack`),
/// so tests can run whole expressions through either.
pub fn set_builtin_engine(vm: &mut Vm, engine: Engine) {
    assert!(engine != Engine::Crate, "the crate alone is not exact");
    vm.ext.get::<RegexState>().engine = engine;
}

/// One match of `split`: its span and its groups (1..).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMatch {
    pub span: Range<usize>,
    pub groups: Vec<Option<Range<usize>>>,
}

/// A compiled pattern.
pub struct Regex {
    nfa: compile::Nfa,
    prefilter: Prefilter,
    /// `match` may use the `regex` crate alone.
    fast_match: bool,
    /// `split` may use the `regex` crate alone.
    fast_split: bool,
    /// The translation, anchored at both ends (for `match`) and not (for
    /// `split`); compiled on first use, `None` if the crate refuses it.
    anchored: OnceCell<Option<regex::bytes::Regex>>,
    unanchored: OnceCell<Option<regex::bytes::Regex>>,
    scratch: RefCell<Scratch>,
}

impl Regex {
    /// Compile `re` as libstdc++ does (same accept/reject decision).
    ///
    /// Deciding the fast class. Without an empty loop (a `*`, `+` or `{m,}`
    /// over something that can match "") no path revisits a node at the same
    /// input position, so the twice-per-position rule never fires, and
    /// libstdc++'s DFS is then an ordinary backtracker that tries the
    /// alternatives of each choice in priority order (left branch first,
    /// greedy "once more" before "leave"), with captures from the path
    /// taken — the order the `regex` crate's leftmost-first semantics is
    /// defined by:
    ///
    /// - `match` (`regex_match`): every solution ends at the end of the
    ///   input, so the "longer solution replaces" rule at alternations never
    ///   replaces, and the answer is the first accepting path in priority
    ///   order — the crate's match of `\A(?:re)\z`.
    /// - `split` (`regex_search` per position): without `|`, the first
    ///   accepting path from the leftmost position where one exists is the
    ///   answer, as for the crate. The iterator's retry after an empty match
    ///   (same position, `match_not_null | match_continuous`) never succeeds
    ///   there: if the best path from a position is empty, at the first
    ///   choice where it differs from a non-empty one it took "once more"
    ///   into an optional body that matched "" and rejoined the same
    ///   continuation at the same position, so by induction over the
    ///   (acyclic at one position) automaton the non-empty one cannot
    ///   exist; so stepping one byte, as the crate loop does, is right.
    /// - `.` is `[^\x00]` on both sides, `^` matches only at offset 0
    ///   (libstdc++ sets `match_prev_avail` for every later start), `$` only
    ///   at the end.
    ///
    /// Outside the fast class the crate still knows whether and where a
    /// match exists: the rules above only choose between accepting paths
    /// (an empty-iteration-free path is never cut by the twice rule), so the
    /// set of strings matched and of positions where a search succeeds are
    /// the same. `tests/regex.rs` checks both claims differentially.
    pub fn new(re: &[u8]) -> Result<Regex, CompileError> {
        let nfa = compile::compile(re)?;
        let plain = nfa.translated.is_some() && !nfa.has_empty_loop();
        Ok(Regex {
            prefilter: Prefilter::new(&nfa),
            fast_match: plain,
            fast_split: plain && !nfa.has_alternation,
            nfa,
            anchored: OnceCell::new(),
            unanchored: OnceCell::new(),
            scratch: RefCell::new(Scratch::default()),
        })
    }

    /// Limit the nodes one attempt of this pattern may visit (`None`: no
    /// limit). For tests, which must not wait for an exponential run to end.
    pub fn set_step_budget(&self, steps: Option<u64>) {
        self.scratch.borrow_mut().budget = steps.unwrap_or(u64::MAX);
    }

    /// Whether an attempt ran out of steps since the last query (its answer
    /// is then meaningless).
    pub fn take_exhausted(&self) -> bool {
        std::mem::take(&mut self.scratch.borrow_mut().exhausted)
    }

    /// Number of groups, not counting the whole match.
    pub fn groups(&self) -> usize {
        self.nfa.groups - 1
    }

    /// Whether the `regex` crate alone answers `match` / `split`.
    pub fn fast_class(&self) -> (bool, bool) {
        (self.fast_match, self.fast_split)
    }

    fn crate_regex(&self, anchored: bool) -> Option<&regex::bytes::Regex> {
        let cell = if anchored {
            &self.anchored
        } else {
            &self.unanchored
        };
        cell.get_or_init(|| {
            let body = self.nfa.translated.as_ref()?;
            let full = if anchored {
                format!("(?s-u)\\A(?:{})\\z", body)
            } else {
                format!("(?s-u){}", body)
            };
            let re = regex::bytes::RegexBuilder::new(&full)
                .size_limit(1 << 26)
                .build()
                .ok()?;
            // Same groups, or no use.
            (re.captures_len() == self.nfa.groups).then_some(re)
        })
        .as_ref()
    }

    /// `builtins.match`: the groups if the whole input matches.
    pub fn match_groups(&self, input: &[u8], engine: Engine) -> Option<Vec<Option<Range<usize>>>> {
        let crate_re = match engine {
            Engine::Backtrack => None,
            _ => self.crate_regex(true),
        };
        if let Some(re) = crate_re {
            if engine == Engine::Crate || self.fast_match {
                let caps = re.captures(input)?;
                return Some(
                    (1..caps.len())
                        .map(|i| caps.get(i).map(|m| m.range()))
                        .collect(),
                );
            }
            if !re.is_match(input) {
                return None;
            }
        }
        let mut scratch = self.scratch.borrow_mut();
        let caps = exec::match_exact(&self.nfa, input, &mut scratch)?;
        Some(cap_ranges(caps))
    }

    /// `builtins.split`: the matches `std::cregex_iterator` visits.
    pub fn split_matches(&self, input: &[u8], engine: Engine) -> Vec<SplitMatch> {
        let crate_re = match engine {
            Engine::Backtrack => None,
            _ => self.crate_regex(false),
        };
        if let Some(re) = crate_re {
            if engine == Engine::Crate || self.fast_split {
                return crate_split(re, input);
            }
        }
        let mut out = Vec::new();
        let mut scratch = self.scratch.borrow_mut();
        let end = input.len();
        // The iterator's flags: `prev_avail` sticks once set.
        let mut flags = Flags::default();
        let mut m = self.search(crate_re, input, 0, flags, &mut scratch);
        while let Some(cur) = m {
            let span = cur.span.clone();
            out.push(cur);
            let mut start = span.end;
            if span.is_empty() {
                if start == end {
                    break;
                }
                // First try a non-empty match at the same position.
                let retry = Flags {
                    not_null: true,
                    continuous: true,
                    ..flags
                };
                if let Some(r) = self.search(crate_re, input, start, retry, &mut scratch) {
                    m = Some(r);
                    continue;
                }
                start += 1;
            }
            flags.prev_avail = true;
            m = self.search(crate_re, input, start, flags, &mut scratch);
        }
        out
    }

    /// `regex_search` from `start`.
    fn search(
        &self,
        crate_re: Option<&regex::bytes::Regex>,
        input: &[u8],
        mut start: usize,
        mut flags: Flags,
        scratch: &mut Scratch,
    ) -> Option<SplitMatch> {
        if let (Some(re), false) = (crate_re, flags.continuous) {
            // Jump to where the first attempt will succeed (see `new`).
            let at = re.find_at(input, start)?.start();
            if at != start {
                start = at;
                flags.prev_avail = true;
            }
            flags.continuous = true;
        }
        let caps = exec::search(&self.nfa, &self.prefilter, input, start, flags, scratch)?;
        let whole = &caps[0];
        Some(SplitMatch {
            span: whole.start..whole.end,
            groups: cap_ranges(caps),
        })
    }
}

/// Groups 1.. of a backtracker result.
fn cap_ranges(caps: &[exec::Cap]) -> Vec<Option<Range<usize>>> {
    caps[1..]
        .iter()
        .map(|c| c.matched.then_some(c.start..c.end))
        .collect()
}

/// `split` by the `regex` crate (fast class only).
fn crate_split(re: &regex::bytes::Regex, input: &[u8]) -> Vec<SplitMatch> {
    let mut out = Vec::new();
    let mut locs = re.capture_locations();
    let mut pos = 0usize;
    while pos <= input.len() {
        let Some(m) = re.captures_read_at(&mut locs, input, pos) else {
            break;
        };
        let groups = (1..locs.len())
            .map(|i| locs.get(i).map(|(s, e)| s..e))
            .collect();
        out.push(SplitMatch {
            span: m.range(),
            groups,
        });
        // After an empty match, step one byte (the retry at the same
        // position cannot succeed in the fast class).
        pos = if m.is_empty() { m.end() + 1 } else { m.end() };
    }
    out
}

/// Attach a "while evaluating ..." line to an error from an argument.
fn arg_ctx<T>(r: EvalResult<T>, msg: impl FnOnce() -> String) -> EvalResult<T> {
    r.map_err(|mut e| {
        e.trace.push(TraceEntry {
            always: false,
            msg: msg(),
            pos: None,
        });
        e
    })
}

fn compile(vm: &mut Vm, re: &[u8]) -> EvalResult<Rc<Regex>> {
    if let Some(r) = vm.ext.get::<RegexState>().cache.get(re) {
        return Ok(r.clone());
    }
    match Regex::new(re) {
        Ok(r) => {
            let r = Rc::new(r);
            vm.ext
                .get::<RegexState>()
                .cache
                .insert(re.to_vec(), r.clone());
            Ok(r)
        }
        Err(CompileError::Space) => err(format!(
            "memory limit exceeded by regular expression '{}'",
            String::from_utf8_lossy(re)
        )),
        Err(CompileError::Invalid) => err(format!(
            "invalid regular expression '{}'",
            String::from_utf8_lossy(re)
        )),
    }
}

fn group_values(s: &[u8], groups: &[Option<Range<usize>>]) -> Vec<Value> {
    groups
        .iter()
        .map(|g| match g {
            Some(r) => Value::bytes(s[r.clone()].to_vec(), None),
            None => Value::Null,
        })
        .collect()
}

fn prim_match(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let re = arg_ctx(vm.force_string_no_ctx(&a[0]), || {
        "while evaluating the first argument passed to builtins.match".into()
    })?;
    let regex = compile(vm, re.as_bytes())?;
    let s = arg_ctx(vm.force_string(&a[1]), || {
        "while evaluating the second argument passed to builtins.match".into()
    })?;
    let bytes = s.as_bytes();
    match regex.match_groups(bytes, vm.ext.get::<RegexState>().engine) {
        None => Ok(Value::Null),
        Some(groups) => Ok(Value::list(group_values(bytes, &groups))),
    }
}

fn prim_split(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let re = arg_ctx(vm.force_string_no_ctx(&a[0]), || {
        "while evaluating the first argument passed to builtins.split".into()
    })?;
    let regex = compile(vm, re.as_bytes())?;
    let s = arg_ctx(vm.force_string(&a[1]), || {
        "while evaluating the second argument passed to builtins.split".into()
    })?;
    let bytes = s.as_bytes();
    let matches = regex.split_matches(bytes, vm.ext.get::<RegexState>().engine);
    if matches.is_empty() {
        // No match: the input itself (context included), as CppNix does.
        return Ok(Value::list(vec![Value::String(s)]));
    }
    let mut out = Vec::with_capacity(2 * matches.len() + 1);
    let mut last_end = 0usize;
    for m in &matches {
        out.push(Value::bytes(bytes[last_end..m.span.start].to_vec(), None));
        out.push(Value::list(group_values(bytes, &m.groups)));
        last_end = m.span.end;
    }
    out.push(Value::bytes(bytes[last_end..].to_vec(), None));
    Ok(Value::list(out))
}
