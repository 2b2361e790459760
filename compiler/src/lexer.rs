//! Tokens and the moded lexer. The default mode is a logos automaton; the
//! string, indented-string and path-continuation modes are small scanners
//! driven by a mode stack, mirroring the start conditions of CppNix's flex
//! lexer (`{`/`${` push, `}` pops, strings and paths have their own modes).

mod paths;

use crate::symbol::Symbol;
use logos::Logos;
use paths::{count_while, is_path_char, path_family, path_segments, PathKind};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Id(Symbol),
    Int(i64),
    Float(f64),
    /// Unescaped text inside `"..."` or a path continuation.
    Str(String),
    /// Text inside `''...''`; the flag says whether it counts for indentation.
    IndStr(String, bool),
    Path(String),
    HPath(String),
    SPath(String),
    Uri(String),
    PathEnd,
    If,
    Then,
    Else,
    Assert,
    With,
    Let,
    In,
    Rec,
    Inherit,
    OrKw,
    Ellipsis,
    Eq,
    Neq,
    Leq,
    Geq,
    And,
    Or,
    Impl,
    Update,
    Concat,
    PipeFrom,
    PipeInto,
    DollarCurly,
    Quote,
    IndOpen,
    IndClose,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Semi,
    Colon,
    Comma,
    At,
    Question,
    Assign,
    Dot,
    Plus,
    Minus,
    Star,
    Slash,
    Lt,
    Gt,
    Bang,
}

impl Tok {
    /// How bison names the token in "unexpected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Id(_) => "identifier".into(),
            Tok::Int(_) => "integer".into(),
            Tok::Float(_) => "floating-point literal".into(),
            Tok::Str(_) => "string".into(),
            Tok::IndStr(..) => "indented string".into(),
            Tok::Path(_) => "path".into(),
            Tok::HPath(_) => "'~/…' path".into(),
            Tok::SPath(_) => "'<…>' path".into(),
            Tok::Uri(_) => "URI".into(),
            Tok::PathEnd => "end of path".into(),
            Tok::If => "'if'".into(),
            Tok::Then => "'then'".into(),
            Tok::Else => "'else'".into(),
            Tok::Assert => "'assert'".into(),
            Tok::With => "'with'".into(),
            Tok::Let => "'let'".into(),
            Tok::In => "'in'".into(),
            Tok::Rec => "'rec'".into(),
            Tok::Inherit => "'inherit'".into(),
            Tok::OrKw => "'or'".into(),
            Tok::Ellipsis => "'...'".into(),
            Tok::Eq => "'=='".into(),
            Tok::Neq => "'!='".into(),
            Tok::Leq => "'<='".into(),
            Tok::Geq => "'>='".into(),
            Tok::And => "'&&'".into(),
            Tok::Or => "'||'".into(),
            Tok::Impl => "'->'".into(),
            Tok::Update => "'//'".into(),
            Tok::Concat => "'++'".into(),
            Tok::PipeFrom => "'<|'".into(),
            Tok::PipeInto => "'|>'".into(),
            Tok::DollarCurly => "'${'".into(),
            Tok::Quote => "'\"'".into(),
            Tok::IndOpen => "start of an indented string".into(),
            Tok::IndClose => "end of an indented string".into(),
            Tok::LBrace => "'{'".into(),
            Tok::RBrace => "'}'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Semi => "';'".into(),
            Tok::Colon => "':'".into(),
            Tok::Comma => "','".into(),
            Tok::At => "'@'".into(),
            Tok::Question => "'?'".into(),
            Tok::Assign => "'='".into(),
            Tok::Dot => "'.'".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Lt => "'<'".into(),
            Tok::Gt => "'>'".into(),
            Tok::Bang => "'!'".into(),
        }
    }
}

/// Tokens of the default mode that logos matches. Path-like tokens are
/// matched by hand (`path_family`): logos cannot backtrack out of a failed
/// path prefix such as `x.y` (which must lex as `x`, `.`, `y`).
#[derive(Logos, Debug, Clone, Copy, PartialEq)]
enum Raw {
    #[token("if")]
    If,
    #[token("then")]
    Then,
    #[token("else")]
    Else,
    #[token("assert")]
    Assert,
    #[token("with")]
    With,
    #[token("let")]
    Let,
    #[token("in")]
    In,
    #[token("rec")]
    Rec,
    #[token("inherit")]
    Inherit,
    #[token("or")]
    OrKw,
    #[token("...")]
    Ellipsis,
    #[token("==")]
    Eq,
    #[token("!=")]
    Neq,
    #[token("<=")]
    Leq,
    #[token(">=")]
    Geq,
    #[token("&&")]
    And,
    #[token("||")]
    Or,
    #[token("->")]
    Impl,
    #[token("//")]
    Update,
    #[token("++")]
    Concat,
    #[token("<|")]
    PipeFrom,
    #[token("|>")]
    PipeInto,
    #[regex(r"[a-zA-Z_][a-zA-Z0-9_'\-]*")]
    Id,
    #[regex(r"[0-9]+")]
    Int,
    #[regex(r"(([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+\-]?[0-9]+)?")]
    Float,
    #[token("${")]
    DollarCurly,
    #[token("}")]
    RBrace,
    #[token("{")]
    LBrace,
    #[token("\"")]
    Quote,
    #[regex(r"''( *\n)?")]
    IndOpen,
    #[token("[")]
    LBracket,
    #[token("]")]
    RBracket,
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token(";")]
    Semi,
    #[token(":")]
    Colon,
    #[token(",")]
    Comma,
    #[token("@")]
    At,
    #[token("?")]
    Question,
    #[token("=")]
    Assign,
    #[token(".")]
    Dot,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("<")]
    Lt,
    #[token(">")]
    Gt,
    #[token("!")]
    Bang,
}

#[derive(Clone, Debug, PartialEq)]
pub struct LexError {
    pub msg: String,
    pub start: usize,
    pub end: usize,
}

#[derive(Copy, Clone, Debug, PartialEq)]
enum Mode {
    Normal,
    Str,
    IndStr,
    InPath,
    InPathSlash,
}

pub type Spanned = (usize, Tok, usize);

pub struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    modes: Vec<Mode>,
    done: bool,
    /// Where the run of path characters last scanned ends: every token
    /// inside one run (`a.b.c…`, each identifier and dot a token) shares its
    /// end, and rescanning it per token would be quadratic in its length.
    path_run_end: usize,
    /// Whether `|>` and `<|` are enabled (experimental feature).
    pub pipe_operators: bool,
}

/// Undo `\` escapes and fold CR/CRLF to LF, as CppNix does for `"..."`.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b'\\' && i < b.len() {
            let e = b[i];
            i += 1;
            out.push(match e {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                other => other,
            });
        } else if c == b'\r' {
            out.push(b'\n');
            if i < b.len() && b[i] == b'\n' {
                i += 1;
            }
        } else {
            out.push(c);
        }
    }
    // Escapes only ever drop ASCII bytes, so UTF-8 stays valid unless a
    // backslash precedes a multi-byte char, which keeps the whole char.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            modes: vec![Mode::Normal],
            done: false,
            path_run_end: 0,
            pipe_operators: false,
        }
    }

    fn err<T>(&self, msg: impl Into<String>, start: usize, end: usize) -> Result<T, LexError> {
        Err(LexError {
            msg: msg.into(),
            start,
            end,
        })
    }

    fn mode(&self) -> Mode {
        *self.modes.last().unwrap_or(&Mode::Normal)
    }

    fn set_mode(&mut self, m: Mode) {
        if let Some(top) = self.modes.last_mut() {
            *top = m;
        }
    }

    fn next_token(&mut self) -> Option<Result<Spanned, LexError>> {
        match self.mode() {
            Mode::Normal => self.lex_normal(),
            Mode::Str => self.lex_string(),
            Mode::IndStr => self.lex_ind_string(),
            Mode::InPath | Mode::InPathSlash => self.lex_in_path(),
        }
    }

    fn skip_trivia(&mut self) {
        let b = self.src.as_bytes();
        loop {
            let i = self.pos;
            match b.get(i) {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.pos += 1,
                Some(b'#') => {
                    while self.pos < b.len() && b[self.pos] != b'\n' && b[self.pos] != b'\r' {
                        self.pos += 1;
                    }
                }
                Some(b'/') if b.get(i + 1) == Some(&b'*') => match self.src[i + 2..].find("*/") {
                    Some(k) => self.pos = i + 2 + k + 2,
                    None => return,
                },
                _ => return,
            }
        }
    }

    fn lex_normal(&mut self) -> Option<Result<Spanned, LexError>> {
        self.skip_trivia();
        let rest = &self.src[self.pos..];
        if rest.is_empty() {
            return None;
        }
        if rest.starts_with("''") {
            // `''( *\n)?`: logos cannot backtrack out of the optional part.
            let start = self.pos;
            let b = rest.as_bytes();
            let spaces = b[2..].iter().take_while(|&&c| c == b' ').count();
            let len = if b.get(2 + spaces) == Some(&b'\n') {
                3 + spaces
            } else {
                2
            };
            self.pos += len;
            self.modes.push(Mode::IndStr);
            return Some(Ok((start, Tok::IndOpen, self.pos)));
        }
        let mut lx = Raw::lexer(rest);
        let raw = lx.next()?;
        let span = lx.span();
        if self.pos >= self.path_run_end {
            self.path_run_end = self.pos + count_while(rest.as_bytes(), is_path_char);
        }
        let run = self.path_run_end - self.pos;
        if let Some((len, kind)) = path_family(rest.as_bytes(), run) {
            let logos_len = if raw.is_ok() { span.end } else { 0 };
            if len > logos_len {
                return Some(Ok(self.path_token(kind, len)));
            }
        }
        let start = self.pos + span.start;
        let end = self.pos + span.end;
        let text = &rest[span.clone()];
        self.pos = end;
        let raw = match raw {
            Ok(r) => r,
            Err(()) => {
                let ch = rest[span.start..].chars().next().unwrap_or('?');
                let cend = start + ch.len_utf8();
                self.pos = cend;
                return Some(self.err(format!("syntax error, unexpected '{}'", ch), start, cend));
            }
        };
        let tok = match raw {
            Raw::If => Tok::If,
            Raw::Then => Tok::Then,
            Raw::Else => Tok::Else,
            Raw::Assert => Tok::Assert,
            Raw::With => Tok::With,
            Raw::Let => Tok::Let,
            Raw::In => Tok::In,
            Raw::Rec => Tok::Rec,
            Raw::Inherit => Tok::Inherit,
            Raw::OrKw => Tok::OrKw,
            Raw::Ellipsis => Tok::Ellipsis,
            Raw::Eq => Tok::Eq,
            Raw::Neq => Tok::Neq,
            Raw::Leq => Tok::Leq,
            Raw::Geq => Tok::Geq,
            Raw::And => Tok::And,
            Raw::Or => Tok::Or,
            Raw::Impl => Tok::Impl,
            Raw::Update => Tok::Update,
            Raw::Concat => Tok::Concat,
            Raw::PipeFrom | Raw::PipeInto => {
                if !self.pipe_operators {
                    return Some(self.err(
                        "experimental Nix feature 'pipe-operators' is disabled; add '--extra-experimental-features pipe-operators' to enable it",
                        start,
                        end,
                    ));
                }
                if raw == Raw::PipeFrom {
                    Tok::PipeFrom
                } else {
                    Tok::PipeInto
                }
            }
            Raw::Id => Tok::Id(Symbol::intern(text)),
            Raw::Int => {
                // logos can over-extend an integer when a float pattern fails
                // part-way (`2e3`); flex would stop at the digits.
                let digits = text.bytes().take_while(u8::is_ascii_digit).count();
                let text = &text[..digits];
                self.pos = start + digits;
                match text.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => {
                        return Some(self.err(
                            format!("invalid integer '{}'", text),
                            start,
                            start + digits,
                        ))
                    }
                }
            }
            // CppNix's strtod check: out of range (infinite, or so small it
            // is subnormal) is as invalid as malformed.
            Raw::Float => match text.parse::<f64>() {
                Ok(f) if f.is_finite() && (f == 0.0 || f.abs() >= f64::MIN_POSITIVE) => {
                    Tok::Float(f)
                }
                _ => return Some(self.err(format!("invalid float '{}'", text), start, end)),
            },
            Raw::DollarCurly => {
                self.modes.push(Mode::Normal);
                Tok::DollarCurly
            }
            Raw::LBrace => {
                self.modes.push(Mode::Normal);
                Tok::LBrace
            }
            Raw::RBrace => {
                if self.modes.len() > 1 {
                    self.modes.pop();
                }
                Tok::RBrace
            }
            Raw::Quote => {
                self.modes.push(Mode::Str);
                Tok::Quote
            }
            Raw::IndOpen => {
                self.modes.push(Mode::IndStr);
                Tok::IndOpen
            }
            Raw::LBracket => Tok::LBracket,
            Raw::RBracket => Tok::RBracket,
            Raw::LParen => Tok::LParen,
            Raw::RParen => Tok::RParen,
            Raw::Semi => Tok::Semi,
            Raw::Colon => Tok::Colon,
            Raw::Comma => Tok::Comma,
            Raw::At => Tok::At,
            Raw::Question => Tok::Question,
            Raw::Assign => Tok::Assign,
            Raw::Dot => Tok::Dot,
            Raw::Plus => Tok::Plus,
            Raw::Minus => Tok::Minus,
            Raw::Star => Tok::Star,
            Raw::Slash => Tok::Slash,
            Raw::Lt => Tok::Lt,
            Raw::Gt => Tok::Gt,
            Raw::Bang => Tok::Bang,
        };
        Some(Ok((start, tok, self.pos)))
    }

    fn path_token(&mut self, kind: PathKind, len: usize) -> Spanned {
        let start = self.pos;
        let text = &self.src[start..start + len];
        self.pos = start + len;
        let tok = match kind {
            PathKind::Interp => {
                // Emit the leading segment; `${` is lexed again in path mode.
                self.pos -= 2;
                self.modes.push(Mode::InPathSlash);
                let seg = &text[..len - 2];
                if seg == "~/" {
                    Tok::HPath(seg.into())
                } else {
                    Tok::Path(seg.into())
                }
            }
            PathKind::Path | PathKind::HPath => {
                self.modes.push(if text.ends_with('/') {
                    Mode::InPathSlash
                } else {
                    Mode::InPath
                });
                if kind == PathKind::Path {
                    Tok::Path(text.into())
                } else {
                    Tok::HPath(text.into())
                }
            }
            PathKind::SPath => Tok::SPath(text.into()),
            PathKind::Uri => Tok::Uri(text.into()),
        };
        (start, tok, self.pos)
    }

    fn lex_string(&mut self) -> Option<Result<Spanned, LexError>> {
        let b = self.src.as_bytes();
        let start = self.pos;
        if start >= b.len() {
            return None;
        }
        if b[start] == b'"' {
            self.pos += 1;
            self.modes.pop();
            return Some(Ok((start, Tok::Quote, start + 1)));
        }
        if b[start] == b'$' && b.get(start + 1) == Some(&b'{') {
            self.pos += 2;
            self.modes.push(Mode::Normal);
            return Some(Ok((start, Tok::DollarCurly, start + 2)));
        }
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'"' => break,
                b'\\' => {
                    if i + 1 >= b.len() {
                        // A lone trailing backslash: the parser reports EOF.
                        self.pos = b.len();
                        return None;
                    }
                    i += 1 + utf8_len(b[i + 1]);
                }
                b'$' => match b.get(i + 1) {
                    Some(b'{') => break,
                    Some(b'"') => i += 1,
                    Some(b'\\') => {
                        if i + 2 >= b.len() {
                            self.pos = b.len();
                            return None;
                        }
                        i += 2 + utf8_len(b[i + 2]);
                    }
                    Some(&c) => i += 1 + utf8_len(c),
                    None => {
                        self.pos = b.len();
                        return None;
                    }
                },
                c => i += utf8_len(c),
            }
        }
        let i = i.min(b.len());
        self.pos = i;
        let text = unescape(&self.src[start..i]);
        if text.contains('\0') {
            return Some(self.err(nul_message(&text), start, i));
        }
        Some(Ok((start, Tok::Str(text), i)))
    }

    fn lex_ind_string(&mut self) -> Option<Result<Spanned, LexError>> {
        let b = self.src.as_bytes();
        let start = self.pos;
        if start >= b.len() {
            return None;
        }
        let at = |k: usize| b.get(start + k).copied();
        if at(0) == Some(b'\'') && at(1) == Some(b'\'') {
            match at(2) {
                Some(b'\\') if start + 3 < b.len() => {
                    let n = utf8_len(b[start + 3]);
                    let end = start + 3 + n;
                    self.pos = end;
                    let text = unescape(&self.src[start + 2..end]);
                    return Some(Ok((start, Tok::IndStr(text, false), end)));
                }
                Some(b'\'') => {
                    self.pos = start + 3;
                    return Some(Ok((start, Tok::IndStr("''".into(), false), start + 3)));
                }
                Some(b'$') => {
                    self.pos = start + 3;
                    return Some(Ok((start, Tok::IndStr("$".into(), false), start + 3)));
                }
                _ => {
                    self.pos = start + 2;
                    self.modes.pop();
                    return Some(Ok((start, Tok::IndClose, start + 2)));
                }
            }
        }
        if at(0) == Some(b'$') {
            if at(1) == Some(b'{') {
                self.pos = start + 2;
                self.modes.push(Mode::Normal);
                return Some(Ok((start, Tok::DollarCurly, start + 2)));
            }
            if matches!(at(1), None | Some(b'\'')) {
                self.pos = start + 1;
                return Some(Ok((start, Tok::IndStr("$".into(), false), start + 1)));
            }
        }
        if at(0) == Some(b'\'') && matches!(at(1), None | Some(b'$')) {
            self.pos = start + 1;
            return Some(Ok((start, Tok::IndStr("'".into(), false), start + 1)));
        }
        let mut i = start;
        while i < b.len() {
            match b[i] {
                b'$' => match b.get(i + 1) {
                    None | Some(b'{') | Some(b'\'') => break,
                    Some(&c) => i += 1 + utf8_len(c),
                },
                b'\'' => match b.get(i + 1) {
                    None | Some(b'\'') | Some(b'$') => break,
                    Some(&c) => i += 1 + utf8_len(c),
                },
                c => i += utf8_len(c),
            }
        }
        let i = i.min(b.len());
        self.pos = i;
        let text = &self.src[start..i];
        if text.contains('\0') {
            // CppNix's opening `''` token swallows the rest of its line.
            let mut from = start;
            if self.src[..start].ends_with("''") {
                let blank = text.bytes().take_while(|&c| c == b' ').count();
                if text.as_bytes().get(blank) == Some(&b'\n') {
                    from = start + blank + 1;
                }
            }
            return Some(self.err(nul_message(&self.src[from..i]), from, i));
        }
        Some(Ok((start, Tok::IndStr(text.into(), true), i)))
    }

    fn lex_in_path(&mut self) -> Option<Result<Spanned, LexError>> {
        let b = self.src.as_bytes();
        let start = self.pos;
        if b.get(start) == Some(&b'$') && b.get(start + 1) == Some(&b'{') {
            self.pos += 2;
            self.set_mode(Mode::InPath);
            self.modes.push(Mode::Normal);
            return Some(Ok((start, Tok::DollarCurly, start + 2)));
        }
        // `{PATH}|{PATH_SEG}|{PATH_CHAR}+`, longest match.
        let rest = &b[start..];
        let pc = count_while(rest, is_path_char);
        let mut len = pc;
        if rest.get(pc) == Some(&b'/') {
            len = len.max(pc + 1);
        }
        let segs = path_segments(&rest[pc..]);
        if segs > 0 && rest[pc..pc + segs].iter().any(|&c| c != b'/') {
            len = len.max(pc + segs);
        }
        if len > 0 {
            let text = &self.src[start..start + len];
            self.pos = start + len;
            self.set_mode(if text.ends_with('/') {
                Mode::InPathSlash
            } else {
                Mode::InPath
            });
            return Some(Ok((start, Tok::Str(text.into()), start + len)));
        }
        if self.mode() == Mode::InPathSlash {
            return Some(self.err("path has a trailing slash", start, start));
        }
        self.modes.pop();
        Some(Ok((start, Tok::PathEnd, start)))
    }
}

/// CppNix's error for a string literal that contains a NUL byte, which it
/// shows as `␀`.
fn nul_message(text: &str) -> String {
    format!(
        "input string '{}' cannot be represented as Nix string because it contains null bytes",
        text.replace('\0', "\u{2400}")
    )
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xff => 4,
        _ => 1,
    }
}

impl<'a> Iterator for Lexer<'a> {
    type Item = Result<Spanned, LexError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let t = self.next_token();
        match &t {
            None | Some(Err(_)) => self.done = true,
            _ => {}
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        Lexer::new(s).map(|r| r.expect("lex error").1).collect()
    }

    #[test]
    fn numbers() {
        assert_eq!(
            toks("1 1.5 .5 1. 2e3"),
            vec![
                Tok::Int(1),
                Tok::Float(1.5),
                Tok::Float(0.5),
                Tok::Float(1.0),
                Tok::Int(2),
                Tok::Id(Symbol::intern("e3"))
            ]
        );
        assert!(Lexer::new("9223372036854775808").next().unwrap().is_err());
    }

    #[test]
    fn strings_with_interpolation() {
        let t = toks(r#""a${b}c\n$$x""#);
        assert_eq!(t[0], Tok::Quote);
        assert_eq!(t[1], Tok::Str("a".into()));
        assert_eq!(t[2], Tok::DollarCurly);
        assert_eq!(t[4], Tok::RBrace);
        assert_eq!(t[5], Tok::Str("c\n$$x".into()));
        assert_eq!(t[6], Tok::Quote);
    }

    #[test]
    fn paths() {
        assert_eq!(toks("./a/b"), vec![Tok::Path("./a/b".into()), Tok::PathEnd]);
        let t = toks("./a/${x}.nix");
        assert_eq!(t[0], Tok::Path("./a/".into()));
        assert_eq!(t[1], Tok::DollarCurly);
        assert_eq!(t[4], Tok::Str(".nix".into()));
        assert_eq!(t[5], Tok::PathEnd);
        assert!(Lexer::new("./a/ ").any(|r| r.is_err()));
        assert_eq!(
            toks("<nixpkgs/lib>"),
            vec![Tok::SPath("<nixpkgs/lib>".into())]
        );
        assert_eq!(
            toks("http://x.org/a"),
            vec![Tok::Uri("http://x.org/a".into())]
        );
    }

    #[test]
    fn indented_strings() {
        let t = toks("''\n  a ''$ ''' ''\\n ${x}''");
        assert_eq!(t[0], Tok::IndOpen);
        assert_eq!(t[1], Tok::IndStr("  a ".into(), true));
        assert_eq!(t[2], Tok::IndStr("$".into(), false));
        assert_eq!(t[4], Tok::IndStr("''".into(), false));
        assert_eq!(t[6], Tok::IndStr("\n".into(), false));
        assert_eq!(*t.last().unwrap(), Tok::IndClose);
    }
}
