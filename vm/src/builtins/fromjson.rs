//! `fromJSON`'s reader: nlohmann::json's lexer and parser, as CppNix drives
//! them through its SAX handler, so that both what is accepted and every
//! error message are CppNix's.
//!
//! Written here rather than taken from serde_json because the differences
//! are in the details an evaluator promising CppNix's answers must keep:
//! nlohmann's messages ("syntax error while parsing object key - unexpected
//! end of input; expected string literal", with its line and column and the
//! "last read" text), `-0` read as the integer 0, integers too large for
//! 64 bits read as floats, values handed over as they are read (so an
//! unsigned number out of Nix's range fails before a later syntax error), no
//! nesting limit, and an object's last duplicate key winning.
//!
//! The parser is iterative (a stack of open arrays and objects), so any
//! nesting depth costs heap, never native stack.

use crate::error::*;
use crate::value::*;
use nixvm_compiler::Symbol;

/// nlohmann's token types (only those the parser distinguishes).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tok {
    True,
    False,
    Null,
    Str,
    Unsigned,
    Integer,
    Float,
    BeginArray,
    BeginObject,
    EndArray,
    EndObject,
    NameSep,
    ValueSep,
    ParseError,
    EndOfInput,
    /// Only named in messages: what a value may begin with.
    LiteralOrValue,
    /// Only in messages: "expected nothing in particular".
    Uninitialized,
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::Uninitialized => "<uninitialized>",
            Tok::True => "true literal",
            Tok::False => "false literal",
            Tok::Null => "null literal",
            Tok::Str => "string literal",
            Tok::Unsigned | Tok::Integer | Tok::Float => "number literal",
            Tok::BeginArray => "'['",
            Tok::BeginObject => "'{'",
            Tok::EndArray => "']'",
            Tok::EndObject => "'}'",
            Tok::NameSep => "':'",
            Tok::ValueSep => "','",
            Tok::ParseError => "<parse error>",
            Tok::EndOfInput => "end of input",
            Tok::LiteralOrValue => "'[', '{', or a literal",
        }
    }
}

const EOF: i32 = -1;

/// The lexer, counting what nlohmann counts: every `get` (even at the end
/// of input) advances the position, a newline starts a new line, and the
/// "token string" shown as "last read" runs from the start of the last
/// string or number (or of the input) to the last byte read.
struct Lexer<'a> {
    s: &'a [u8],
    /// Index of the next byte the input gives.
    next: usize,
    current: i32,
    next_unget: bool,
    chars_total: usize,
    chars_line: usize,
    lines: usize,
    token_start: usize,
    token_end: usize,
    buf: Vec<u8>,
    error: &'static str,
    unsigned: u64,
    integer: i64,
    float: f64,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        Lexer {
            s,
            next: 0,
            current: EOF,
            next_unget: false,
            chars_total: 0,
            chars_line: 0,
            lines: 0,
            token_start: 0,
            token_end: 0,
            buf: Vec::new(),
            error: "",
            unsigned: 0,
            integer: 0,
            float: 0.0,
        }
    }

    fn get(&mut self) -> i32 {
        self.chars_total += 1;
        self.chars_line += 1;
        if self.next_unget {
            self.next_unget = false;
        } else {
            self.current = match self.s.get(self.next) {
                Some(&c) => {
                    self.next += 1;
                    i32::from(c)
                }
                None => EOF,
            };
        }
        if self.current != EOF {
            self.token_end = self.next;
        }
        if self.current == i32::from(b'\n') {
            self.lines += 1;
            self.chars_line = 0;
        }
        self.current
    }

    fn unget(&mut self) {
        self.next_unget = true;
        self.chars_total -= 1;
        if self.chars_line == 0 {
            self.lines = self.lines.saturating_sub(1);
        } else {
            self.chars_line -= 1;
        }
        if self.current != EOF {
            self.token_end -= 1;
        }
    }

    /// A new string or number token begins at the current byte.
    fn reset(&mut self) {
        self.buf.clear();
        self.token_start = self.next - 1;
        self.token_end = self.next;
    }

    fn add(&mut self) {
        self.buf.push(self.current as u8);
    }

    /// "last read": control characters as `<U+00XX>`.
    fn token_string(&self) -> String {
        let mut out = String::new();
        let raw = &self.s[self.token_start..self.token_end.max(self.token_start)];
        for chunk in raw.utf8_chunks() {
            for c in chunk.valid().chars() {
                if (c as u32) <= 0x1f {
                    out.push_str(&format!("<U+{:04X}>", c as u32));
                } else {
                    out.push(c);
                }
            }
            if !chunk.invalid().is_empty() {
                out.push('\u{fffd}');
            }
        }
        out
    }

    fn scan(&mut self) -> Tok {
        if self.chars_total == 0 && !self.skip_bom() {
            self.error = "invalid BOM; must be 0xEF 0xBB 0xBF if given";
            return Tok::ParseError;
        }
        loop {
            self.get();
            if !matches!(self.current, 0x20 | 0x09 | 0x0a | 0x0d) {
                break;
            }
        }
        match self.current {
            EOF | 0 => Tok::EndOfInput,
            c => match c as u8 {
                b'[' => Tok::BeginArray,
                b']' => Tok::EndArray,
                b'{' => Tok::BeginObject,
                b'}' => Tok::EndObject,
                b':' => Tok::NameSep,
                b',' => Tok::ValueSep,
                b't' => self.literal(b"true", Tok::True),
                b'f' => self.literal(b"false", Tok::False),
                b'n' => self.literal(b"null", Tok::Null),
                b'"' => self.string(),
                b'-' | b'0'..=b'9' => self.number(),
                _ => {
                    self.error = "invalid literal";
                    Tok::ParseError
                }
            },
        }
    }

    fn skip_bom(&mut self) -> bool {
        if self.get() == 0xef {
            return self.get() == 0xbb && self.get() == 0xbf;
        }
        self.unget();
        true
    }

    fn literal(&mut self, text: &[u8], tok: Tok) -> Tok {
        for &want in &text[1..] {
            if self.get() != i32::from(want) {
                self.error = "invalid literal";
                return Tok::ParseError;
            }
        }
        tok
    }

    /// Adds the current byte, then checks that each following byte is in
    /// its range (`ranges` holds inclusive pairs).
    fn utf8_tail(&mut self, ranges: &[(u8, u8)]) -> bool {
        self.add();
        for &(lo, hi) in ranges {
            let c = self.get();
            if (i32::from(lo)..=i32::from(hi)).contains(&c) {
                self.add();
            } else {
                self.error = "invalid string: ill-formed UTF-8 byte";
                return false;
            }
        }
        true
    }

    fn string(&mut self) -> Tok {
        self.reset();
        loop {
            // A run of plain ASCII, taken at once (no newline can be in it,
            // so only the counters move).
            let rest = &self.s[self.next..];
            let run = if self.next_unget {
                0
            } else {
                rest.iter()
                    .position(|&c| !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\')
                    .unwrap_or(rest.len())
            };
            if run > 0 {
                self.buf.extend_from_slice(&rest[..run]);
                self.next += run;
                self.chars_total += run;
                self.chars_line += run;
                self.current = i32::from(self.s[self.next - 1]);
                self.token_end = self.next;
            }
            let c = self.get();
            match c {
                EOF => {
                    self.error = "invalid string: missing closing quote";
                    return Tok::ParseError;
                }
                0x22 => return Tok::Str,
                0x5c => {
                    if !self.escape() {
                        return Tok::ParseError;
                    }
                }
                0x00..=0x1f => {
                    self.error = CONTROL_MESSAGES[c as usize];
                    return Tok::ParseError;
                }
                0x20..=0x7f => self.add(),
                0xc2..=0xdf => {
                    if !self.utf8_tail(&[(0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                0xe0 => {
                    if !self.utf8_tail(&[(0xa0, 0xbf), (0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                0xe1..=0xec | 0xee | 0xef => {
                    if !self.utf8_tail(&[(0x80, 0xbf), (0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                0xed => {
                    if !self.utf8_tail(&[(0x80, 0x9f), (0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                0xf0 => {
                    if !self.utf8_tail(&[(0x90, 0xbf), (0x80, 0xbf), (0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                0xf1..=0xf3 => {
                    if !self.utf8_tail(&[(0x80, 0xbf), (0x80, 0xbf), (0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                0xf4 => {
                    if !self.utf8_tail(&[(0x80, 0x8f), (0x80, 0xbf), (0x80, 0xbf)]) {
                        return Tok::ParseError;
                    }
                }
                _ => {
                    self.error = "invalid string: ill-formed UTF-8 byte";
                    return Tok::ParseError;
                }
            }
        }
    }

    /// After a backslash in a string.
    fn escape(&mut self) -> bool {
        let c = self.get();
        let plain = match c {
            0x22 => b'"',
            0x5c => b'\\',
            0x2f => b'/',
            0x62 => 0x08,
            0x66 => 0x0c,
            0x6e => b'\n',
            0x72 => b'\r',
            0x74 => b'\t',
            0x75 => return self.unicode_escape(),
            _ => {
                self.error = "invalid string: forbidden character after backslash";
                return false;
            }
        };
        self.buf.push(plain);
        true
    }

    fn unicode_escape(&mut self) -> bool {
        const HEX: &str = "invalid string: '\\u' must be followed by 4 hex digits";
        const HIGH: &str =
            "invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF";
        let Some(first) = self.codepoint() else {
            self.error = HEX;
            return false;
        };
        let cp = if (0xd800..=0xdbff).contains(&first) {
            if !(self.get() == 0x5c && self.get() == 0x75) {
                self.error = HIGH;
                return false;
            }
            let Some(second) = self.codepoint() else {
                self.error = HEX;
                return false;
            };
            if !(0xdc00..=0xdfff).contains(&second) {
                self.error = HIGH;
                return false;
            }
            ((first - 0xd800) << 10) + (second - 0xdc00) + 0x10000
        } else if (0xdc00..=0xdfff).contains(&first) {
            self.error = "invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF";
            return false;
        } else {
            first
        };
        let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
        let mut tmp = [0u8; 4];
        self.buf
            .extend_from_slice(ch.encode_utf8(&mut tmp).as_bytes());
        true
    }

    /// Four hex digits after `\u`.
    fn codepoint(&mut self) -> Option<u32> {
        let mut cp = 0;
        for _ in 0..4 {
            let c = self.get();
            let d = u8::try_from(c)
                .ok()
                .and_then(|c| (c as char).to_digit(16))?;
            cp = cp * 16 + d;
        }
        Some(cp)
    }

    fn number(&mut self) -> Tok {
        self.reset();
        let is_digit = |c: i32| (0x30..=0x39).contains(&c);
        let mut ty = Tok::Unsigned;
        self.add();
        let mut c = self.current;
        if c == i32::from(b'-') {
            ty = Tok::Integer;
            c = self.get();
            if !is_digit(c) {
                self.error = "invalid number; expected digit after '-'";
                return Tok::ParseError;
            }
            self.add();
        }
        // The integer part: a single 0, or digits not starting with 0.
        let mut c = if c == i32::from(b'0') {
            self.get()
        } else {
            loop {
                let d = self.get();
                if !is_digit(d) {
                    break d;
                }
                self.add();
            }
        };
        if c == i32::from(b'.') {
            ty = Tok::Float;
            self.add();
            if !is_digit(self.get()) {
                self.error = "invalid number; expected digit after '.'";
                return Tok::ParseError;
            }
            self.add();
            c = loop {
                let d = self.get();
                if !is_digit(d) {
                    break d;
                }
                self.add();
            };
        }
        if c == i32::from(b'e') || c == i32::from(b'E') {
            ty = Tok::Float;
            self.add();
            let mut d = self.get();
            if d == i32::from(b'+') || d == i32::from(b'-') {
                self.add();
                d = self.get();
                if !is_digit(d) {
                    self.error = "invalid number; expected digit after exponent sign";
                    return Tok::ParseError;
                }
            } else if !is_digit(d) {
                self.error = "invalid number; expected '+', '-', or digit after exponent";
                return Tok::ParseError;
            }
            self.add();
            while is_digit(self.get()) {
                self.add();
            }
        }
        self.unget();
        // SAFETY of the unwrap-free conversions: the buffer holds only
        // ASCII digits, signs, '.', 'e' and 'E'.
        let text = std::str::from_utf8(&self.buf).unwrap_or("");
        // Integers that do not fit are read as floats, as strtoull/strtoll
        // failing with ERANGE makes nlohmann do.
        match ty {
            Tok::Unsigned => {
                if let Ok(u) = text.parse::<u64>() {
                    self.unsigned = u;
                    return Tok::Unsigned;
                }
            }
            Tok::Integer => {
                if let Ok(i) = text.parse::<i64>() {
                    self.integer = i;
                    return Tok::Integer;
                }
            }
            _ => {}
        }
        self.float = text.parse::<f64>().unwrap_or(f64::NAN);
        Tok::Float
    }
}

static CONTROL_MESSAGES: [&str; 32] = [
    "invalid string: control character U+0000 (NUL) must be escaped to \\u0000",
    "invalid string: control character U+0001 (SOH) must be escaped to \\u0001",
    "invalid string: control character U+0002 (STX) must be escaped to \\u0002",
    "invalid string: control character U+0003 (ETX) must be escaped to \\u0003",
    "invalid string: control character U+0004 (EOT) must be escaped to \\u0004",
    "invalid string: control character U+0005 (ENQ) must be escaped to \\u0005",
    "invalid string: control character U+0006 (ACK) must be escaped to \\u0006",
    "invalid string: control character U+0007 (BEL) must be escaped to \\u0007",
    "invalid string: control character U+0008 (BS) must be escaped to \\u0008 or \\b",
    "invalid string: control character U+0009 (HT) must be escaped to \\u0009 or \\t",
    "invalid string: control character U+000A (LF) must be escaped to \\u000A or \\n",
    "invalid string: control character U+000B (VT) must be escaped to \\u000B",
    "invalid string: control character U+000C (FF) must be escaped to \\u000C or \\f",
    "invalid string: control character U+000D (CR) must be escaped to \\u000D or \\r",
    "invalid string: control character U+000E (SO) must be escaped to \\u000E",
    "invalid string: control character U+000F (SI) must be escaped to \\u000F",
    "invalid string: control character U+0010 (DLE) must be escaped to \\u0010",
    "invalid string: control character U+0011 (DC1) must be escaped to \\u0011",
    "invalid string: control character U+0012 (DC2) must be escaped to \\u0012",
    "invalid string: control character U+0013 (DC3) must be escaped to \\u0013",
    "invalid string: control character U+0014 (DC4) must be escaped to \\u0014",
    "invalid string: control character U+0015 (NAK) must be escaped to \\u0015",
    "invalid string: control character U+0016 (SYN) must be escaped to \\u0016",
    "invalid string: control character U+0017 (ETB) must be escaped to \\u0017",
    "invalid string: control character U+0018 (CAN) must be escaped to \\u0018",
    "invalid string: control character U+0019 (EM) must be escaped to \\u0019",
    "invalid string: control character U+001A (SUB) must be escaped to \\u001A",
    "invalid string: control character U+001B (ESC) must be escaped to \\u001B",
    "invalid string: control character U+001C (FS) must be escaped to \\u001C",
    "invalid string: control character U+001D (GS) must be escaped to \\u001D",
    "invalid string: control character U+001E (RS) must be escaped to \\u001E",
    "invalid string: control character U+001F (US) must be escaped to \\u001F",
];

/// An open array or object.
enum Open {
    List(Vec<Value>),
    /// The members so far and the key whose value comes next.
    Object(Vec<(Symbol, Value)>, Symbol),
}

struct Parser<'a> {
    lx: Lexer<'a>,
    last: Tok,
}

/// A JSON document as Nix values, or CppNix's error for it.
pub fn parse(s: &[u8]) -> EvalResult<Value> {
    let mut p = Parser {
        lx: Lexer::new(s),
        last: Tok::Uninitialized,
    };
    p.get();
    let v = p.document()?;
    if p.get() != Tok::EndOfInput {
        return Err(p.syntax(Tok::EndOfInput, "value"));
    }
    Ok(v)
}

impl Parser<'_> {
    fn get(&mut self) -> Tok {
        self.last = self.lx.scan();
        self.last
    }

    fn document(&mut self) -> EvalResult<Value> {
        let mut stack: Vec<Open> = Vec::new();
        loop {
            // A value begins at `self.last`.
            let mut value = match self.last {
                Tok::BeginObject => {
                    if self.get() == Tok::EndObject {
                        Value::attrs(Attrs::from_unsorted(Vec::new()))
                    } else {
                        let key = self.key()?;
                        stack.push(Open::Object(Vec::new(), key));
                        self.get();
                        continue;
                    }
                }
                Tok::BeginArray => {
                    if self.get() == Tok::EndArray {
                        Value::list(Vec::new())
                    } else {
                        stack.push(Open::List(Vec::new()));
                        continue;
                    }
                }
                Tok::Float => {
                    let f = self.lx.float;
                    if !f.is_finite() {
                        return Err(decoding(format!(
                            "[json.exception.out_of_range.406] number overflow parsing '{}'",
                            self.lx.token_string()
                        )));
                    }
                    Value::Float(f)
                }
                Tok::False => Value::Bool(false),
                Tok::True => Value::Bool(true),
                Tok::Null => Value::Null,
                Tok::Integer => Value::Int(self.lx.integer),
                Tok::Unsigned => {
                    let u = self.lx.unsigned;
                    let Ok(i) = i64::try_from(u) else {
                        return err(format!(
                            "unsigned json number {u} outside of Nix integer range"
                        ));
                    };
                    Value::Int(i)
                }
                Tok::Str => {
                    let s = std::mem::take(&mut self.lx.buf);
                    no_nul(&s)?;
                    Value::bytes(s, None)
                }
                Tok::ParseError => return Err(self.syntax(Tok::Uninitialized, "value")),
                Tok::EndOfInput if self.lx.chars_total == 1 => {
                    return Err(self.error(
                        "attempting to parse an empty input; check that your input string or stream contains the expected JSON",
                    ))
                }
                _ => return Err(self.syntax(Tok::LiteralOrValue, "value")),
            };
            // A value is complete: it goes into what is open, closing as
            // many arrays and objects as end here.
            loop {
                match stack.last_mut() {
                    None => return Ok(value),
                    Some(Open::List(items)) => {
                        items.push(value);
                        if self.get() == Tok::ValueSep {
                            self.get();
                            break;
                        }
                        if self.last != Tok::EndArray {
                            return Err(self.syntax(Tok::EndArray, "array"));
                        }
                    }
                    Some(Open::Object(members, key)) => {
                        members.push((*key, value));
                        if self.get() == Tok::ValueSep {
                            self.get();
                            let k = self.key()?;
                            if let Some(Open::Object(_, key)) = stack.last_mut() {
                                *key = k;
                            }
                            self.get();
                            break;
                        }
                        if self.last != Tok::EndObject {
                            return Err(self.syntax(Tok::EndObject, "object"));
                        }
                    }
                }
                value = match stack.pop() {
                    Some(Open::List(items)) => Value::list(items),
                    Some(Open::Object(members, _)) => Value::attrs(Attrs::from_unsorted(members)),
                    None => unreachable!("checked above"),
                };
            }
        }
    }

    /// An object's key at `self.last`, then its `:`.
    fn key(&mut self) -> EvalResult<Symbol> {
        if self.last != Tok::Str {
            return Err(self.syntax(Tok::Str, "object key"));
        }
        no_nul(&self.lx.buf)?;
        let key = Symbol::intern(&String::from_utf8_lossy(&self.lx.buf));
        if self.get() != Tok::NameSep {
            return Err(self.syntax(Tok::NameSep, "object separator"));
        }
        Ok(key)
    }

    /// nlohmann's "syntax error while parsing CONTEXT - …; expected …".
    fn syntax(&self, expected: Tok, context: &str) -> Box<EvalError> {
        let mut msg = format!("syntax error while parsing {context} - ");
        if self.last == Tok::ParseError {
            msg.push_str(&format!(
                "{}; last read: '{}'",
                self.lx.error,
                self.lx.token_string()
            ));
        } else {
            msg.push_str(&format!("unexpected {}", self.last.name()));
        }
        if expected != Tok::Uninitialized {
            msg.push_str(&format!("; expected {}", expected.name()));
        }
        self.error(&msg)
    }

    fn error(&self, what: &str) -> Box<EvalError> {
        decoding(format!(
            "[json.exception.parse_error.101] parse error at line {}, column {}: {what}",
            self.lx.lines + 1,
            self.lx.chars_line
        ))
    }
}

/// CppNix's JSONParseError, with the frame its fromJSON adds.
fn decoding(msg: String) -> Box<EvalError> {
    let mut e = EvalError::new(ErrorKind::Other, msg);
    e.add_trace("while decoding a JSON string", None);
    e
}

fn no_nul(s: &[u8]) -> EvalResult<()> {
    if s.contains(&0) {
        return err(format!(
            "input string '{}' cannot be represented as Nix string because it contains null bytes",
            String::from_utf8_lossy(s).replace('\0', "\u{2400}")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(s: &str) -> String {
        match parse(s.as_bytes()) {
            Ok(_) => panic!("{s:?} parsed"),
            Err(e) => e.msg,
        }
    }

    #[test]
    fn numbers_as_nlohmann_reads_them() {
        assert!(matches!(parse(b"-0").unwrap().unpack(), Owned::Int(0)));
        let v = parse(b"[-0.0]").unwrap();
        match v.unpack() {
            Owned::List(l) => {
                assert!(matches!(l[0].view(), View::Float(f) if f.is_sign_negative()))
            }
            _ => panic!(),
        }
        assert!(matches!(
            parse(b"9223372036854775807").unwrap().unpack(),
            Owned::Int(i64::MAX)
        ));
        assert!(matches!(
            parse(b"-9223372036854775809").unwrap().unpack(),
            Owned::Float(_)
        ));
        assert!(matches!(
            parse(b"18446744073709551616").unwrap().unpack(),
            Owned::Float(_)
        ));
        assert_eq!(
            message("18446744073709551615"),
            "unsigned json number 18446744073709551615 outside of Nix integer range"
        );
        assert_eq!(
            message("[1e999]"),
            "[json.exception.out_of_range.406] number overflow parsing '1e999'"
        );
    }

    #[test]
    fn deep_nesting_costs_no_stack() {
        let s = "[".repeat(200_000) + &"]".repeat(200_000);
        assert!(parse(s.as_bytes()).is_ok());
    }

    #[test]
    fn last_duplicate_key_wins() {
        let v = parse(br#"{"a": 1, "a": 2}"#).unwrap();
        let Owned::Attrs(a) = v.unpack() else {
            panic!()
        };
        assert_eq!(a.len(), 1);
        assert!(matches!(
            a.get(Symbol::intern("a")).map(|v| v.view()),
            Some(View::Int(2))
        ));
    }
}
