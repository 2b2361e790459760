//! Compiling a POSIX extended regular expression into the NFA that
//! libstdc++'s `std::regex(re, std::regex::extended)` builds (GCC 15/16,
//! what CppNix 2.34 is linked against), plus the same pattern in the `regex`
//! crate's syntax for the fast path.
//!
//! The executor's answers depend on the exact shape of the automaton (which
//! node a repeat loops back to, which branch an alternation tries first,
//! that `{m,n}` is m copies followed by n nested optional copies), so the
//! construction follows libstdc++ step by step: the same tokens with the same
//! one-token lookahead (a scanner error can come before an error of the
//! construction that precedes it), the same node kinds, the same insertion
//! order (so the 100000-state limit trips at the same point), and the same
//! copy-the-fragment construction for bounded repeats. Unlike libstdc++ the
//! parser keeps its nesting on the heap, so a deeply nested pattern cannot
//! overflow the stack.

use rustc_hash::FxHashMap;

pub type StateId = u32;
pub const NONE: StateId = u32::MAX;

/// libstdc++'s `_GLIBCXX_REGEX_STATE_LIMIT`.
const STATE_LIMIT: usize = 100_000;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum CompileError {
    /// Any `regex_error` but `error_space`: "invalid regular expression".
    Invalid,
    /// `error_space` (too many NFA states): "memory limit exceeded".
    Space,
}

type CResult<T> = Result<T, CompileError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Epsilon node, skipped once construction is done.
    Dummy,
    /// `|`: the `alt` branch (left alternative) is explored, then `next`;
    /// the longer solution wins.
    Alt,
    /// A greedy repeat: `alt` goes round once more, `next` leaves.
    Repeat,
    SubBegin(u32),
    SubEnd(u32),
    LineBegin,
    LineEnd,
    Byte(u8),
    /// A bracket expression: index into `Nfa::sets`.
    Set(u32),
    /// POSIX `.`: any byte but NUL.
    Any,
    Accept,
}

#[derive(Debug, Clone, Copy)]
pub struct State {
    pub op: Op,
    pub next: StateId,
    pub alt: StateId,
}

impl State {
    fn new(op: Op) -> State {
        State {
            op,
            next: NONE,
            alt: NONE,
        }
    }
    fn has_alt(&self) -> bool {
        matches!(self.op, Op::Alt | Op::Repeat)
    }
}

/// A 256-bit byte set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSet(pub [u64; 4]);

impl ByteSet {
    #[inline]
    pub fn contains(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] >> (b & 63) & 1 != 0
    }
    fn insert(&mut self, b: u8) {
        self.0[(b >> 6) as usize] |= 1 << (b & 63);
    }
}

#[derive(Debug)]
pub struct Nfa {
    pub states: Vec<State>,
    pub sets: Vec<ByteSet>,
    /// Number of capture groups, group 0 (the whole match) included.
    pub groups: usize,
    /// The pattern in `regex` crate syntax (to be compiled with `(?s-u)`),
    /// with the same groups, or `None` if it has no faithful equivalent
    /// there (huge repeat counts).
    pub translated: Option<String>,
    /// The pattern has a `|`.
    pub has_alternation: bool,
}

// ---- scanner ---------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Eof,
    Ord(u8),
    AnyChar,
    LineBegin,
    LineEnd,
    Star,
    Plus,
    Opt,
    Or,
    GroupBegin,
    GroupEnd,
    BracketBegin,
    BracketNegBegin,
    BracketEnd,
    BracketDash,
    CollSymbol,
    EquivClass,
    CharClass,
    IntervalBegin,
    DupCount,
    Comma,
    IntervalEnd,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ScanState {
    Normal,
    InBracket,
    InBrace,
}

/// The characters with a meaning in an ERE; only these may be escaped.
const SPECIAL: &[u8] = b".[\\()*+?{|^$";

/// libstdc++'s `_Scanner`: always holds the next token, so scanning errors
/// surface one token early, exactly as there.
struct Scanner<'a> {
    re: &'a [u8],
    pos: usize,
    state: ScanState,
    at_bracket_start: bool,
    tok: Tok,
    /// The text of the current token: a name for classes and collating
    /// elements, the digits of a count.
    value: Vec<u8>,
}

impl<'a> Scanner<'a> {
    fn new(re: &'a [u8]) -> CResult<Scanner<'a>> {
        let mut s = Scanner {
            re,
            pos: 0,
            state: ScanState::Normal,
            at_bracket_start: false,
            tok: Tok::Eof,
            value: Vec::new(),
        };
        s.advance()?;
        Ok(s)
    }

    fn advance(&mut self) -> CResult<()> {
        if self.pos == self.re.len() {
            self.tok = Tok::Eof;
            return Ok(());
        }
        match self.state {
            ScanState::Normal => self.scan_normal(),
            ScanState::InBracket => self.scan_in_bracket(),
            ScanState::InBrace => self.scan_in_brace(),
        }
    }

    fn scan_normal(&mut self) -> CResult<()> {
        let c = self.re[self.pos];
        self.pos += 1;
        if c != 0 && !SPECIAL.contains(&c) {
            self.tok = Tok::Ord(c);
            return Ok(());
        }
        self.tok = match c {
            b'\\' => {
                // Strict mode (CppNix builds with -std=c++2a): escaping an
                // ordinary character is an error.
                let n = *self.re.get(self.pos).ok_or(CompileError::Invalid)?;
                if n == 0 || !SPECIAL.contains(&n) {
                    return Err(CompileError::Invalid);
                }
                self.pos += 1;
                Tok::Ord(n)
            }
            b'(' => Tok::GroupBegin,
            b')' => Tok::GroupEnd,
            b'[' => {
                self.state = ScanState::InBracket;
                self.at_bracket_start = true;
                if self.re.get(self.pos) == Some(&b'^') {
                    self.pos += 1;
                    Tok::BracketNegBegin
                } else {
                    Tok::BracketBegin
                }
            }
            b'{' => {
                self.state = ScanState::InBrace;
                Tok::IntervalBegin
            }
            b'^' => Tok::LineBegin,
            b'$' => Tok::LineEnd,
            b'.' => Tok::AnyChar,
            b'*' => Tok::Star,
            b'+' => Tok::Plus,
            b'?' => Tok::Opt,
            b'|' => Tok::Or,
            // A NUL in the pattern is an error outside ECMAScript.
            _ => return Err(CompileError::Invalid),
        };
        Ok(())
    }

    fn scan_in_bracket(&mut self) -> CResult<()> {
        let c = self.re[self.pos];
        self.pos += 1;
        if c == b'-' {
            self.tok = Tok::BracketDash;
        } else if c == b'[' {
            let Some(&n) = self.re.get(self.pos) else {
                return Err(CompileError::Invalid);
            };
            match n {
                b'.' | b':' | b'=' => {
                    self.pos += 1;
                    self.tok = match n {
                        b'.' => Tok::CollSymbol,
                        b':' => Tok::CharClass,
                        _ => Tok::EquivClass,
                    };
                    self.eat_class(n)?;
                }
                _ => self.tok = Tok::Ord(b'['),
            }
        } else if c == b']' && !self.at_bracket_start {
            self.tok = Tok::BracketEnd;
            self.state = ScanState::Normal;
        } else {
            // A backslash is an ordinary character here.
            self.tok = Tok::Ord(c);
        }
        self.at_bracket_start = false;
        Ok(())
    }

    /// The name of `[:name:]`, `[.name.]` or `[=name=]`.
    fn eat_class(&mut self, delim: u8) -> CResult<()> {
        self.value.clear();
        while self.pos < self.re.len() && self.re[self.pos] != delim {
            self.value.push(self.re[self.pos]);
            self.pos += 1;
        }
        if self.re.get(self.pos) != Some(&delim) || self.re.get(self.pos + 1) != Some(&b']') {
            return Err(CompileError::Invalid);
        }
        self.pos += 2;
        Ok(())
    }

    fn scan_in_brace(&mut self) -> CResult<()> {
        let c = self.re[self.pos];
        self.pos += 1;
        if c.is_ascii_digit() {
            self.tok = Tok::DupCount;
            self.value.clear();
            self.value.push(c);
            while self.pos < self.re.len() && self.re[self.pos].is_ascii_digit() {
                self.value.push(self.re[self.pos]);
                self.pos += 1;
            }
        } else if c == b',' {
            self.tok = Tok::Comma;
        } else if c == b'}' {
            self.state = ScanState::Normal;
            self.tok = Tok::IntervalEnd;
        } else {
            return Err(CompileError::Invalid);
        }
        Ok(())
    }
}

// ---- bracket expressions ---------------------------------------------------

/// libstdc++'s collating element names (`[.name.]`, `[=name=]`), indexed by
/// the character they stand for.
#[rustfmt::skip]
const COLLATE_NAMES: [&str; 128] = [
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "alert", "backspace", "tab", "newline",
    "vertical-tab", "form-feed", "carriage-return", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4",
    "NAK", "SYN", "ETB", "CAN", "EM", "SUB", "ESC", "IS4", "IS3", "IS2", "IS1", "space",
    "exclamation-mark", "quotation-mark", "number-sign", "dollar-sign", "percent-sign",
    "ampersand", "apostrophe", "left-parenthesis", "right-parenthesis", "asterisk", "plus-sign",
    "comma", "hyphen", "period", "slash", "zero", "one", "two", "three", "four", "five", "six",
    "seven", "eight", "nine", "colon", "semicolon", "less-than-sign", "equals-sign",
    "greater-than-sign", "question-mark", "commercial-at", "A", "B", "C", "D", "E", "F", "G", "H",
    "I", "J", "K", "L", "M", "N", "O", "P", "Q", "R", "S", "T", "U", "V", "W", "X", "Y", "Z",
    "left-square-bracket", "backslash", "right-square-bracket", "circumflex", "underscore",
    "grave-accent", "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p",
    "q", "r", "s", "t", "u", "v", "w", "x", "y", "z", "left-curly-bracket", "vertical-line",
    "right-curly-bracket", "tilde", "DEL",
];

fn lookup_collate(name: &[u8]) -> CResult<u8> {
    COLLATE_NAMES
        .iter()
        .position(|n| n.as_bytes() == name)
        .map(|i| i as u8)
        .ok_or(CompileError::Invalid)
}

/// A character class of the "C" locale (std::regex uses the global C++
/// locale, which CppNix leaves classic): bytes >= 0x80 are in none.
/// Names are matched case-insensitively, as `lookup_classname` does.
fn class_pred(name: &[u8]) -> CResult<fn(u8) -> bool> {
    let lower: Vec<u8> = name.iter().map(|c| c.to_ascii_lowercase()).collect();
    Ok(match &lower[..] {
        b"d" | b"digit" => |c| c.is_ascii_digit(),
        b"w" => |c| c.is_ascii_alphanumeric() || c == b'_',
        b"s" | b"space" => |c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"alnum" => |c| c.is_ascii_alphanumeric(),
        b"alpha" => |c| c.is_ascii_alphabetic(),
        b"blank" => |c| c == b' ' || c == b'\t',
        b"cntrl" => |c| c < 32 || c == 127,
        b"graph" => |c| (33..127).contains(&c),
        b"lower" => |c| c.is_ascii_lowercase(),
        b"print" => |c| (32..127).contains(&c),
        b"punct" => |c| c.is_ascii_punctuation(),
        b"upper" => |c| c.is_ascii_uppercase(),
        b"xdigit" => |c| c.is_ascii_hexdigit(),
        _ => return Err(CompileError::Invalid),
    })
}

/// What libstdc++'s `_BracketMatcher` collects.
#[derive(Default)]
struct Bracket {
    chars: Vec<u8>,
    /// Ranges compare `char`s, which are signed on the platforms CppNix
    /// runs on: `[a-\xff]` is an invalid (descending) range there.
    ranges: Vec<(i8, i8)>,
    classes: Vec<fn(u8) -> bool>,
    /// Equivalence classes: the C locale's primary key is the lowercased
    /// character.
    equiv: Vec<u8>,
}

impl Bracket {
    fn make_range(&mut self, lo: u8, hi: u8) -> CResult<()> {
        if (lo as i8) > (hi as i8) {
            return Err(CompileError::Invalid);
        }
        self.ranges.push((lo as i8, hi as i8));
        Ok(())
    }

    fn to_set(&self, negate: bool) -> ByteSet {
        let mut set = ByteSet::default();
        for b in 0..=255u8 {
            let s = b as i8;
            let hit = self.chars.contains(&b)
                || self.ranges.iter().any(|&(lo, hi)| lo <= s && s <= hi)
                || self.classes.iter().any(|p| p(b))
                || self.equiv.contains(&b.to_ascii_lowercase());
            if hit != negate {
                set.insert(b);
            }
        }
        set
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    Char(u8),
    Class,
}

// ---- construction ----------------------------------------------------------

/// A fragment under construction: entry and exit node.
#[derive(Clone, Copy, Debug)]
struct Seq {
    start: StateId,
    end: StateId,
}

/// An open group (or the whole pattern) while its inside is parsed.
struct Frame {
    /// The group's `SubBegin` node; `None` for the whole pattern.
    begin: Option<StateId>,
    /// Alternatives seen so far, already joined.
    disj: Option<Seq>,
    /// Terms of the current alternative, already linked.
    alt: Option<Seq>,
    /// Where the group starts in the translated pattern.
    out_start: usize,
}

struct Builder<'a> {
    sc: Scanner<'a>,
    states: Vec<State>,
    sets: Vec<ByteSet>,
    groups: u32,
    /// Translation to the `regex` crate; `None` once impossible.
    out: Option<String>,
    has_alternation: bool,
}

impl Builder<'_> {
    fn insert(&mut self, s: State) -> CResult<StateId> {
        self.states.push(s);
        if self.states.len() > STATE_LIMIT {
            return Err(CompileError::Space);
        }
        Ok((self.states.len() - 1) as StateId)
    }

    fn insert_op(&mut self, op: Op) -> CResult<StateId> {
        self.insert(State::new(op))
    }

    fn single(&mut self, op: Op) -> CResult<Seq> {
        let id = self.insert_op(op)?;
        Ok(Seq { start: id, end: id })
    }

    fn append(&mut self, seq: &mut Seq, other: Seq) {
        self.states[seq.end as usize].next = other.start;
        seq.end = other.end;
    }

    fn emit(&mut self, s: &str) {
        if let Some(out) = &mut self.out {
            out.push_str(s);
        }
    }

    fn out_len(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.len())
    }

    /// Consume the current token if it is `t`.
    fn eat(&mut self, t: Tok) -> CResult<bool> {
        if self.sc.tok == t {
            self.sc.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    /// Consume an ordinary character, returning it.
    fn eat_char(&mut self) -> CResult<Option<u8>> {
        if let Tok::Ord(c) = self.sc.tok {
            self.sc.advance()?;
            Ok(Some(c))
        } else {
            Ok(None)
        }
    }

    /// Consume a named token (class, collating element, count), returning
    /// its text.
    fn eat_named(&mut self, t: Tok) -> CResult<Option<Vec<u8>>> {
        if self.sc.tok == t {
            let v = std::mem::take(&mut self.sc.value);
            self.sc.advance()?;
            Ok(Some(v))
        } else {
            Ok(None)
        }
    }

    /// A copy of the fragment `seq`, made as libstdc++'s `_M_clone` does
    /// (including its quirk of copying a node twice when two paths reach it
    /// before it is copied: the spare copy counts towards the state limit).
    fn clone_seq(&mut self, seq: Seq) -> CResult<Seq> {
        let mut map: FxHashMap<StateId, StateId> = FxHashMap::default();
        let mut stack = vec![seq.start];
        while let Some(u) = stack.pop() {
            let dup = self.states[u as usize];
            let id = self.insert(dup)?;
            map.insert(u, id);
            if dup.has_alt() && dup.alt != NONE && !map.contains_key(&dup.alt) {
                stack.push(dup.alt);
            }
            if u == seq.end {
                continue;
            }
            if dup.next != NONE && !map.contains_key(&dup.next) {
                stack.push(dup.next);
            }
        }
        for &new in map.values() {
            let s = &mut self.states[new as usize];
            if s.next != NONE {
                s.next = map[&s.next];
            }
            if s.has_alt() && s.alt != NONE {
                s.alt = map[&s.alt];
            }
        }
        Ok(Seq {
            start: map[&seq.start],
            end: map[&seq.end],
        })
    }

    /// A repeat count, as an `int` (overflow is an error).
    fn count(digits: &[u8]) -> CResult<i32> {
        let mut v: i32 = 0;
        for &d in digits {
            v = v
                .checked_mul(10)
                .and_then(|v| v.checked_add((d - b'0') as i32))
                .ok_or(CompileError::Invalid)?;
        }
        Ok(v)
    }

    /// Apply the quantifiers following an atom. `out_start` is where the
    /// atom starts in the translation.
    fn quantifiers(&mut self, mut e: Seq, out_start: usize) -> CResult<Seq> {
        let mut quantified = false;
        loop {
            let q: String;
            if self.eat(Tok::Star)? {
                let r = self.single(Op::Repeat)?;
                self.states[r.start as usize].alt = e.start;
                self.append(&mut e, r);
                e = r;
                q = "*".into();
            } else if self.eat(Tok::Plus)? {
                let r = self.single(Op::Repeat)?;
                self.states[r.start as usize].alt = e.start;
                self.append(&mut e, r);
                q = "+".into();
            } else if self.eat(Tok::Opt)? {
                let end = self.single(Op::Dummy)?;
                let mut r = self.single(Op::Repeat)?;
                self.states[r.start as usize].alt = e.start;
                self.append(&mut e, end);
                self.append(&mut r, end);
                e = r;
                q = "?".into();
            } else if self.eat(Tok::IntervalBegin)? {
                let Some(lo) = self.eat_named(Tok::DupCount)? else {
                    return Err(CompileError::Invalid);
                };
                let r = e;
                let mut acc = self.single(Op::Dummy)?;
                let min = Self::count(&lo)?;
                let mut infinite = false;
                let mut n: i64 = 0;
                if self.eat(Tok::Comma)? {
                    if let Some(hi) = self.eat_named(Tok::DupCount)? {
                        n = Self::count(&hi)? as i64 - min as i64;
                    } else {
                        infinite = true;
                    }
                }
                if !self.eat(Tok::IntervalEnd)? {
                    return Err(CompileError::Invalid);
                }
                for _ in 0..min {
                    let c = self.clone_seq(r)?;
                    self.append(&mut acc, c);
                }
                if infinite {
                    let mut tmp = self.clone_seq(r)?;
                    let s = self.single(Op::Repeat)?;
                    self.states[s.start as usize].alt = tmp.start;
                    self.append(&mut tmp, s);
                    self.append(&mut acc, s);
                    q = format!("{{{},}}", min);
                } else {
                    if n < 0 {
                        return Err(CompileError::Invalid);
                    }
                    let end = self.single(Op::Dummy)?;
                    // Each optional copy: a repeat whose `alt` takes the copy
                    // and whose `next` skips to the common end.
                    for _ in 0..n {
                        let tmp = self.clone_seq(r)?;
                        let rep = self.insert(State {
                            op: Op::Repeat,
                            next: end.start,
                            alt: tmp.start,
                        })?;
                        self.append(
                            &mut acc,
                            Seq {
                                start: rep,
                                end: tmp.end,
                            },
                        );
                    }
                    self.append(&mut acc, end);
                    q = if n == 0 {
                        format!("{{{}}}", min)
                    } else {
                        format!("{{{},{}}}", min, min as i64 + n)
                    };
                }
                // Counts the regex crate might refuse or blow up on, and
                // `{0}`, which makes it drop the groups inside.
                if min > 1000 || n > 1000 || (min == 0 && n == 0 && !infinite) {
                    self.out = None;
                }
                e = acc;
            } else {
                return Ok(e);
            }
            if let Some(out) = &mut self.out {
                if quantified {
                    // A second quantifier applies to the quantified atom
                    // (`a*?` is `(a*)?`, not a lazy star).
                    out.insert_str(out_start, "(?:");
                    out.push(')');
                }
                out.push_str(&q);
            }
            quantified = true;
        }
    }

    /// A bracket expression, after its opening token.
    fn bracket(&mut self, negate: bool) -> CResult<u32> {
        let mut m = Bracket::default();
        let mut last = Last::None;
        if let Some(c) = self.eat_char()? {
            last = Last::Char(c);
        } else if self.eat(Tok::BracketDash)? {
            last = Last::Char(b'-');
        }
        loop {
            if self.eat(Tok::BracketEnd)? {
                break;
            }
            let push_char = |m: &mut Bracket, last: &mut Last, c: u8| {
                if let Last::Char(p) = *last {
                    m.chars.push(p);
                }
                *last = Last::Char(c);
            };
            let push_class = |m: &mut Bracket, last: &mut Last| {
                if let Last::Char(p) = *last {
                    m.chars.push(p);
                }
                *last = Last::Class;
            };
            if let Some(name) = self.eat_named(Tok::CollSymbol)? {
                let c = lookup_collate(&name)?;
                m.chars.push(c);
                push_char(&mut m, &mut last, c);
            } else if let Some(name) = self.eat_named(Tok::EquivClass)? {
                push_class(&mut m, &mut last);
                let c = lookup_collate(&name)?;
                m.equiv.push(c.to_ascii_lowercase());
            } else if let Some(name) = self.eat_named(Tok::CharClass)? {
                push_class(&mut m, &mut last);
                m.classes.push(class_pred(&name)?);
            } else if let Some(c) = self.eat_char()? {
                push_char(&mut m, &mut last, c);
            } else if self.eat(Tok::BracketDash)? {
                if self.eat(Tok::BracketEnd)? {
                    // `-]`: a literal dash closing the expression.
                    push_char(&mut m, &mut last, b'-');
                    break;
                }
                match last {
                    Last::Class => return Err(CompileError::Invalid),
                    Last::Char(lo) => {
                        if let Some(hi) = self.eat_char()? {
                            m.make_range(lo, hi)?;
                        } else if self.eat(Tok::BracketDash)? {
                            m.make_range(lo, b'-')?;
                        } else {
                            return Err(CompileError::Invalid);
                        }
                        last = Last::None;
                    }
                    // A dash that starts nothing (`[a-c-e]`) is an error in
                    // POSIX grammars.
                    Last::None => return Err(CompileError::Invalid),
                }
            } else {
                return Err(CompileError::Invalid);
            }
        }
        if let Last::Char(c) = last {
            m.chars.push(c);
        }
        let set = m.to_set(negate);
        self.sets.push(set);
        Ok((self.sets.len() - 1) as u32)
    }

    /// Finish the current alternative of `f` and join it to the previous
    /// ones (libstdc++ nests `a|b|c` as `(a|b)|c`).
    fn end_alternative(&mut self, f: &mut Frame) -> CResult<()> {
        let dummy = self.single(Op::Dummy)?;
        let alt2 = match f.alt.take() {
            Some(mut s) => {
                self.append(&mut s, dummy);
                s
            }
            None => dummy,
        };
        f.disj = Some(match f.disj.take() {
            None => alt2,
            Some(mut alt1) => {
                let end = self.single(Op::Dummy)?;
                let mut alt2 = alt2;
                self.append(&mut alt1, end);
                self.append(&mut alt2, end);
                let a = self.insert(State {
                    op: Op::Alt,
                    next: alt2.start,
                    alt: alt1.start,
                })?;
                Seq {
                    start: a,
                    end: end.end,
                }
            }
        });
        Ok(())
    }

    fn add_term(&mut self, f: &mut Frame, t: Seq) {
        match &mut f.alt {
            Some(s) => {
                let mut s2 = *s;
                self.append(&mut s2, t);
                f.alt = Some(s2);
            }
            None => f.alt = Some(t),
        }
    }

    fn push_byte_lit(&mut self, b: u8) {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b' ' {
            self.emit(std::str::from_utf8(&[b]).unwrap());
        } else {
            self.emit(&format!("\\x{:02X}", b));
        }
    }

    fn push_set_lit(&mut self, set: &ByteSet) {
        if self.out.is_none() {
            return;
        }
        let mut s = String::from("[");
        let mut k = 0usize;
        let mut any = false;
        while k < 256 {
            if !set.contains(k as u8) {
                k += 1;
                continue;
            }
            let lo = k;
            while k + 1 < 256 && set.contains((k + 1) as u8) {
                k += 1;
            }
            any = true;
            if lo == k {
                s.push_str(&format!("\\x{:02X}", lo));
            } else {
                s.push_str(&format!("\\x{:02X}-\\x{:02X}", lo, k));
            }
            k += 1;
        }
        if !any {
            s = String::from("[^\\x00-\\xFF");
        }
        s.push(']');
        self.emit(&s);
    }

    fn build(mut self) -> CResult<Nfa> {
        // State 0: the group of the whole match.
        let begin0 = self.insert_op(Op::SubBegin(0))?;
        self.groups = 1;
        let mut stack = vec![Frame {
            begin: None,
            disj: None,
            alt: None,
            out_start: 0,
        }];
        loop {
            let mut f = stack.pop().expect("frame");
            let out_start = self.out_len();
            // One term, or the end of the alternative.
            let assertion = if self.eat(Tok::LineBegin)? {
                Some((Op::LineBegin, "^"))
            } else if self.eat(Tok::LineEnd)? {
                Some((Op::LineEnd, "$"))
            } else {
                None
            };
            if let Some((op, text)) = assertion {
                // An assertion is a term that takes no quantifier.
                self.emit(text);
                let t = self.single(op)?;
                self.add_term(&mut f, t);
                stack.push(f);
                continue;
            }
            let atom = if self.eat(Tok::AnyChar)? {
                self.emit("[^\\x00]");
                Some(self.single(Op::Any)?)
            } else if let Some(c) = self.eat_char()? {
                self.push_byte_lit(c);
                Some(self.single(Op::Byte(c))?)
            } else if self.sc.tok == Tok::BracketBegin || self.sc.tok == Tok::BracketNegBegin {
                let negate = self.sc.tok == Tok::BracketNegBegin;
                self.sc.advance()?;
                let idx = self.bracket(negate)?;
                let set = self.sets[idx as usize];
                self.push_set_lit(&set);
                Some(self.single(Op::Set(idx))?)
            } else if self.eat(Tok::GroupBegin)? {
                let g = self.groups;
                self.groups += 1;
                let b = self.insert_op(Op::SubBegin(g))?;
                self.emit("(");
                stack.push(f);
                stack.push(Frame {
                    begin: Some(b),
                    disj: None,
                    alt: None,
                    out_start,
                });
                continue;
            } else {
                None
            };
            if let Some(a) = atom {
                let t = self.quantifiers(a, out_start)?;
                self.add_term(&mut f, t);
                stack.push(f);
                continue;
            }
            // Not a term: this alternative is complete.
            self.end_alternative(&mut f)?;
            if self.eat(Tok::Or)? {
                self.has_alternation = true;
                self.emit("|");
                stack.push(f);
                continue;
            }
            let disj = f.disj.expect("disjunction");
            match f.begin {
                None => {
                    if self.sc.tok != Tok::Eof {
                        return Err(CompileError::Invalid);
                    }
                    let mut r = Seq {
                        start: begin0,
                        end: begin0,
                    };
                    self.append(&mut r, disj);
                    let e = self.single(Op::SubEnd(0))?;
                    self.append(&mut r, e);
                    let acc = self.single(Op::Accept)?;
                    self.append(&mut r, acc);
                    break;
                }
                Some(b) => {
                    if !self.eat(Tok::GroupEnd)? {
                        return Err(CompileError::Invalid);
                    }
                    let g = match self.states[b as usize].op {
                        Op::SubBegin(g) => g,
                        _ => unreachable!(),
                    };
                    let mut r = Seq { start: b, end: b };
                    self.append(&mut r, disj);
                    let e = self.single(Op::SubEnd(g))?;
                    self.append(&mut r, e);
                    self.emit(")");
                    let t = self.quantifiers(r, f.out_start)?;
                    let mut parent = stack.pop().expect("parent frame");
                    self.add_term(&mut parent, t);
                    stack.push(parent);
                }
            }
        }
        eliminate_dummies(&mut self.states);
        Ok(Nfa {
            states: self.states,
            sets: self.sets,
            groups: self.groups as usize,
            translated: self.out,
            has_alternation: self.has_alternation,
        })
    }
}

/// Point every edge past the `Dummy` nodes it leads to.
fn eliminate_dummies(states: &mut [State]) {
    for i in 0..states.len() {
        let mut n = states[i].next;
        while n != NONE && states[n as usize].op == Op::Dummy {
            n = states[n as usize].next;
        }
        states[i].next = n;
        if states[i].has_alt() {
            let mut a = states[i].alt;
            while a != NONE && states[a as usize].op == Op::Dummy {
                a = states[a as usize].next;
            }
            states[i].alt = a;
        }
    }
}

pub fn compile(re: &[u8]) -> Result<Nfa, CompileError> {
    let b = Builder {
        sc: Scanner::new(re)?,
        states: Vec::new(),
        sets: Vec::new(),
        groups: 0,
        out: Some(String::new()),
        has_alternation: false,
    };
    b.build()
}

impl Nfa {
    /// Whether some path through the automaton can come back to a node
    /// without consuming input, i.e. a `*`, `+` or `{m,}` repeats something
    /// that can match the empty string. Only then does libstdc++'s
    /// "at most twice per position" rule for repeats change an answer.
    pub fn has_empty_loop(&self) -> bool {
        // Iterative depth-first search for a cycle over epsilon edges, from
        // every node (unreachable ones too: being conservative only costs
        // the fast path).
        let n = self.states.len();
        let mut color = vec![0u8; n]; // 0 new, 1 on the path, 2 done
        let eps = |s: &State| -> [StateId; 2] {
            match s.op {
                Op::Alt | Op::Repeat => [s.alt, s.next],
                Op::SubBegin(_) | Op::SubEnd(_) | Op::LineBegin | Op::LineEnd | Op::Dummy => {
                    [s.next, NONE]
                }
                _ => [NONE, NONE],
            }
        };
        let mut stack: Vec<(StateId, usize)> = Vec::new();
        for root in 0..n {
            if color[root] != 0 {
                continue;
            }
            color[root] = 1;
            stack.push((root as StateId, 0));
            while let Some(top) = stack.last_mut() {
                let (u, k) = *top;
                if k == 2 {
                    color[u as usize] = 2;
                    stack.pop();
                    continue;
                }
                top.1 += 1;
                let v = eps(&self.states[u as usize])[k];
                if v == NONE {
                    continue;
                }
                match color[v as usize] {
                    0 => {
                        color[v as usize] = 1;
                        stack.push((v, 0));
                    }
                    1 => return true,
                    _ => {}
                }
            }
        }
        false
    }
}
