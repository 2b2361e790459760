//! The parser's semantic side: everything the grammar actions delegate to
//! (attribute-path merging with CppNix's duplicate rules, formals checks,
//! indented-string stripping, path literal resolution, lints), plus the
//! entry point that runs the lexer and the generated LR parser.

use crate::ast::*;
use crate::lexer::{LexError, Lexer, Tok};

use crate::symbol::Symbol;
use lalrpop_util::ParseError;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, unused_parens, dead_code)]
    grammar
);

/// A parse (or lex) error with the span it is about.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ParseErr {
    pub msg: String,
    pub span: Span,
    /// A warning printed as CppNix's logger prints one, "at FILE:L:C: msg",
    /// not in the error layout.
    pub plain: bool,
}

impl ParseErr {
    pub fn new(msg: impl Into<String>, span: Span) -> ParseErr {
        ParseErr {
            msg: msg.into(),
            span,
            plain: false,
        }
    }
}

type PResult<T> = Result<T, ParseError<usize, Tok, ParseErr>>;

fn user<T>(msg: impl Into<String>, span: Span) -> PResult<T> {
    Err(ParseError::User {
        error: ParseErr::new(msg, span),
    })
}

/// What the lints (`--lint-*-literals`) ask for.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum LintLevel {
    #[default]
    Ignore,
    Warn,
    Fatal,
}

#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    pub pipe_operators: bool,
    pub lint_absolute_path: LintLevel,
    pub lint_short_path: LintLevel,
    pub lint_url: LintLevel,
    pub pure_eval: bool,
    pub home: Option<String>,
}

pub struct ParseState<'a> {
    pub src: &'a str,
    /// How positions are named in messages (`«stdin»`, a file path).
    pub origin: String,
    /// Directory that relative path literals are resolved against.
    pub base_dir: String,
    pub opts: ParseOptions,
    pub warnings: Vec<ParseErr>,
    /// The spans of `e or` calls not yet used (see `cursed_or`).
    pub cursed: Vec<Span>,
}

pub enum StrParts {
    Plain(String),
    Interp(Vec<(Span, Expr)>),
}

impl StrParts {
    pub fn into_expr(self, span: Span) -> Expr {
        match self {
            StrParts::Plain(s) => Expr::Str(s),
            StrParts::Interp(parts) => Expr::ConcatStrings {
                force_string: true,
                parts,
                span,
            },
        }
    }
}

pub enum IndPart {
    Text(String, bool, Span),
    Interp(Expr, Span),
}

pub fn bin(op: BinOp, l: Expr, r: Expr, lo: usize, hi: usize) -> Expr {
    Expr::BinOp {
        op,
        l: Box::new(l),
        r: Box::new(r),
        span: Span::new(lo, hi),
    }
}

/// Lexically normalise an absolute path: collapse `//`, drop `.`, resolve `..`.
pub fn canon_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    if out.is_empty() {
        "/".to_string()
    } else {
        let mut s = String::with_capacity(p.len());
        for seg in out {
            s.push('/');
            s.push_str(seg);
        }
        s
    }
}

impl<'a> ParseState<'a> {
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        crate::ast::line_col(self.src, offset)
    }

    pub fn show_pos(&self, span: Span) -> String {
        let (l, c) = self.line_col(span.start);
        format!("{}:{}:{}", self.origin, l, c)
    }

    pub fn make_call(f: Expr, arg: Expr, span: Span) -> Expr {
        match f {
            Expr::Call {
                f,
                mut args,
                span: s,
            } => {
                args.push(arg);
                Expr::Call { f, args, span: s }
            }
            f => Expr::Call {
                f: Box::new(f),
                args: vec![arg],
                span,
            },
        }
    }

    pub fn lambda(
        &mut self,
        arg: Option<Symbol>,
        formals: Option<Formals>,
        body: Expr,
        span: Span,
    ) -> Expr {
        Expr::Lambda(Box::new(Lambda {
            arg,
            formals,
            body,
            span,
            name: None,
        }))
    }

    pub fn validate_formals(
        &mut self,
        f: &Formals,
        arg: Option<Symbol>,
        span: Span,
    ) -> PResult<()> {
        for (i, a) in f.formals.iter().enumerate() {
            if f.formals[..i].iter().any(|b| b.name == a.name) {
                return user(
                    format!("duplicate formal function argument '{}'", a.name),
                    a.span,
                );
            }
        }
        if let Some(arg) = arg {
            if f.formals.iter().any(|b| b.name == arg) {
                return user(
                    format!("duplicate formal function argument '{}'", arg),
                    span,
                );
            }
        }
        Ok(())
    }

    fn show_attr_path(path: &[AttrName]) -> String {
        let mut s = String::new();
        for (i, a) in path.iter().enumerate() {
            if i > 0 {
                s.push('.');
            }
            match a {
                AttrName::Static(sym) => s.push_str(&crate::printer::identifier(sym.as_str())),
                AttrName::Dynamic(e) => {
                    s.push_str("\"${");
                    s.push_str(&crate::printer::show(e));
                    s.push_str("}\"");
                }
            }
        }
        s
    }

    fn dup_attr(
        &self,
        path: &[AttrName],
        span: Span,
        prev: Span,
    ) -> ParseError<usize, Tok, ParseErr> {
        ParseError::User {
            error: ParseErr::new(
                format!(
                    "attribute '{}' already defined at {}",
                    Self::show_attr_path(path),
                    self.show_pos(prev)
                ),
                span,
            ),
        }
    }

    pub fn add_attr(
        &mut self,
        attrs: &mut AttrsExpr,
        path: Vec<AttrName>,
        span: Span,
        e: Expr,
    ) -> PResult<()> {
        let mut cur: &mut AttrsExpr = attrs;
        let n = path.len();
        for i in 0..n - 1 {
            match &path[i] {
                AttrName::Static(sym) => {
                    let idx = match cur.find(*sym) {
                        Some(j) => {
                            if !matches!(cur.attrs[j].value, Expr::Attrs(_))
                                || cur.attrs[j].kind != AttrKind::Plain
                            {
                                return Err(self.dup_attr(&path[..=i], span, cur.attrs[j].span));
                            }
                            j
                        }
                        None => cur.push(AttrDef {
                            name: *sym,
                            kind: AttrKind::Plain,
                            value: Expr::Attrs(Box::new(AttrsExpr {
                                span,
                                ..Default::default()
                            })),
                            span,
                        }),
                    };
                    cur = match &mut cur.attrs[idx].value {
                        Expr::Attrs(a) => a,
                        _ => unreachable!("checked above"),
                    };
                }
                AttrName::Dynamic(name) => {
                    cur.dynamic.push(DynAttrDef {
                        name: (**name).clone(),
                        value: Expr::Attrs(Box::new(AttrsExpr {
                            span,
                            ..Default::default()
                        })),
                        span,
                    });
                    cur = match &mut cur.dynamic.last_mut().expect("just pushed").value {
                        Expr::Attrs(a) => a,
                        _ => unreachable!("just pushed"),
                    };
                }
            }
        }
        match &path[n - 1] {
            AttrName::Static(sym) => {
                let mut p = path.clone();
                self.add_attr_def(
                    cur,
                    &mut p,
                    AttrDef {
                        name: *sym,
                        kind: AttrKind::Plain,
                        value: e,
                        span,
                    },
                )
            }
            AttrName::Dynamic(name) => {
                cur.dynamic.push(DynAttrDef {
                    name: (**name).clone(),
                    value: e,
                    span,
                });
                Ok(())
            }
        }
    }

    fn add_attr_def(
        &mut self,
        attrs: &mut AttrsExpr,
        path: &mut Vec<AttrName>,
        mut def: AttrDef,
    ) -> PResult<()> {
        if let Some(j) = attrs.find(def.name) {
            let both_sets = matches!(def.value, Expr::Attrs(_))
                && matches!(attrs.attrs[j].value, Expr::Attrs(_))
                && def.kind == AttrKind::Plain
                && attrs.attrs[j].kind == AttrKind::Plain;
            if !both_sets {
                return Err(self.dup_attr(path, def.span, attrs.attrs[j].span));
            }
            let ae = match std::mem::replace(&mut def.value, Expr::Int(0)) {
                Expr::Attrs(a) => *a,
                _ => unreachable!("checked above"),
            };
            let target = match &mut attrs.attrs[j].value {
                Expr::Attrs(a) => a,
                _ => unreachable!("checked above"),
            };
            let shift = target.inherit_from.len();
            for mut ad in ae.attrs {
                if let AttrKind::InheritedFrom(k) = ad.kind {
                    ad.kind = AttrKind::InheritedFrom(k + shift);
                    ad.value = Expr::InheritFrom(k + shift, ad.span);
                }
                path.push(AttrName::Static(ad.name));
                self.add_attr_def(target, path, ad)?;
                path.pop();
            }
            target.dynamic.extend(ae.dynamic);
            target.inherit_from.extend(ae.inherit_from);
            Ok(())
        } else {
            // CppNix names the lambda and, through its body, every lambda
            // it returns (`f = a: b: …` names both).
            let mut e = &mut def.value;
            while let Expr::Lambda(l) = e {
                l.name = Some(def.name);
                e = &mut l.body;
            }
            attrs.push(def);
            Ok(())
        }
    }

    pub fn add_inherit(
        &mut self,
        attrs: &mut AttrsExpr,
        from: Option<Expr>,
        names: Vec<(Symbol, Span)>,
    ) -> PResult<()> {
        let kind = match from {
            Some(e) => {
                attrs.inherit_from.push(e);
                AttrKind::InheritedFrom(attrs.inherit_from.len() - 1)
            }
            None => AttrKind::Inherited,
        };
        for (name, span) in names {
            if let Some(j) = attrs.find(name) {
                return Err(self.dup_attr(&[AttrName::Static(name)], span, attrs.attrs[j].span));
            }
            let value = match kind {
                AttrKind::InheritedFrom(k) => Expr::InheritFrom(k, span),
                _ => Expr::Var(name, span),
            };
            attrs.push(AttrDef {
                name,
                kind,
                value,
                span,
            });
        }
        Ok(())
    }

    /// Report a lint finding at `level`; like CppNix, the message ends with the
    /// setting that controls it.
    fn lint(
        &mut self,
        level: LintLevel,
        setting: &str,
        msg: impl FnOnce(bool) -> String,
        span: Span,
    ) -> PResult<()> {
        let msg = |fatal| format!("{} ({})", msg(fatal), setting);
        match level {
            LintLevel::Ignore => Ok(()),
            LintLevel::Warn => {
                self.warnings.push(ParseErr::new(msg(false), span));
                Ok(())
            }
            LintLevel::Fatal => user(msg(true), span),
        }
    }

    /// The expression of a selection, warning (as CppNix) when it is a
    /// "cursed or" in a place where `or` as an identifier will change its
    /// meaning (an argument, a list element, a selection's default).
    /// `warn`: the selection is where the meaning changes (else it is only
    /// no longer cursed). Cursed ones are known by their spans (`cursed`),
    /// which keeps the grammar's selections plain expressions.
    pub fn cursed_or(&mut self, e: Expr, warn: bool) -> Expr {
        let Expr::Call { span, .. } = &e else {
            return e;
        };
        let Some(i) = self.cursed.iter().rposition(|s| s == span) else {
            return e;
        };
        self.cursed.swap_remove(i);
        if warn {
            let snippet = self
                .src
                .get(span.start as usize..span.end as usize)
                .unwrap_or("");
            self.warnings.push(ParseErr {
                msg: format!(
                    "This expression uses `or` as an identifier in a way that will change in a future Nix release.\n\
                     Wrap this entire expression in parentheses to preserve its current meaning:\n    ({snippet})\n\
                     Give feedback at https://github.com/NixOS/nix/pull/11121"
                ),
                span: *span,
                plain: true,
            });
        }
        e
    }

    pub fn uri(&mut self, u: String, span: Span) -> PResult<Expr> {
        self.lint(
            self.opts.lint_url,
            "lint-url-literals",
            |fatal| {
                format!(
                    "URL literals are {}. Consider using a string literal \"{}\" instead",
                    if fatal { "disallowed" } else { "discouraged" },
                    u
                )
            },
            span,
        )?;
        Ok(Expr::Str(u))
    }

    pub fn path(&mut self, lit: String, span: Span) -> PResult<Expr> {
        let mut p = if lit.starts_with('/') {
            self.lint(
                self.opts.lint_absolute_path,
                "lint-absolute-path-literals",
                |_| format!("absolute path literals are not portable. Consider replacing path literal '{}' by a string, relative path, or parameter", lit),
                span,
            )?;
            canon_path(&lit)
        } else {
            if !lit.starts_with('.') {
                self.lint(
                    self.opts.lint_short_path,
                    "lint-short-path-literals",
                    |_| format!("relative path literal '{}' should be prefixed with '.' for clarity: './{}'", lit, lit),
                    span,
                )?;
            }
            canon_path(&format!("{}/{}", self.base_dir, lit))
        };
        if lit.len() > 1 && lit.ends_with('/') {
            p.push('/');
        }
        Ok(Expr::Path(p))
    }

    pub fn home_path(&mut self, lit: String, span: Span) -> PResult<Expr> {
        if self.opts.pure_eval {
            return user(
                format!("the path '{}' can not be resolved in pure mode", lit),
                span,
            );
        }
        self.lint(
            self.opts.lint_absolute_path,
            "lint-absolute-path-literals",
            |_| format!("home path literals are not portable. Consider replacing path literal '{}' by a string, relative path, or parameter", lit),
            span,
        )?;
        let home = self.opts.home.clone().unwrap_or_default();
        Ok(Expr::Path(format!("{}{}", home, &lit[1..])))
    }

    pub fn strip_indentation(&mut self, parts: Vec<IndPart>, span: Span) -> Expr {
        if parts.is_empty() {
            return Expr::Str(String::new());
        }
        let mut at_start = true;
        let mut min_indent = usize::MAX;
        let mut cur_indent = 0;
        for p in &parts {
            match p {
                IndPart::Text(s, true, _) => {
                    for c in s.bytes() {
                        if at_start {
                            if c == b' ' {
                                cur_indent += 1;
                            } else if c == b'\n' {
                                cur_indent = 0;
                            } else {
                                at_start = false;
                                min_indent = min_indent.min(cur_indent);
                            }
                        } else if c == b'\n' {
                            at_start = true;
                            cur_indent = 0;
                        }
                    }
                }
                _ => {
                    if at_start {
                        at_start = false;
                        min_indent = min_indent.min(cur_indent);
                    }
                }
            }
        }
        let mut out: Vec<(Span, Expr)> = Vec::new();
        at_start = true;
        let mut dropped = 0;
        let n = parts.len();
        for (k, p) in parts.into_iter().enumerate() {
            match p {
                IndPart::Interp(e, s) => {
                    at_start = false;
                    dropped = 0;
                    out.push((s, e));
                }
                IndPart::Text(t, _, s) => {
                    let mut s2 = String::with_capacity(t.len());
                    for c in t.chars() {
                        if at_start {
                            if c == ' ' {
                                if dropped >= min_indent {
                                    s2.push(c);
                                }
                                dropped += 1;
                            } else if c == '\n' {
                                dropped = 0;
                                s2.push(c);
                            } else {
                                at_start = false;
                                dropped = 0;
                                s2.push(c);
                            }
                        } else {
                            s2.push(c);
                            if c == '\n' {
                                at_start = true;
                            }
                        }
                    }
                    if k == n - 1 {
                        if let Some(p) = s2.rfind('\n') {
                            if s2[p + 1..].bytes().all(|c| c == b' ') {
                                s2.truncate(p + 1);
                            }
                        }
                    }
                    if !s2.is_empty() {
                        out.push((s, Expr::Str(s2)));
                    }
                }
            }
        }
        if out.is_empty() {
            return Expr::Str(String::new());
        }
        if out.len() == 1 && matches!(out[0].1, Expr::Str(_)) {
            return out.pop().expect("len is 1").1;
        }
        Expr::ConcatStrings {
            force_string: true,
            parts: out,
            span,
        }
    }
}

/// Parse one source text. `origin` names it in messages; `base_dir` is the
/// directory relative path literals resolve against.
pub fn parse(
    src: &str,
    origin: &str,
    base_dir: &str,
    opts: ParseOptions,
) -> Result<(Expr, Vec<ParseErr>), ParseErr> {
    let mut lexer = Lexer::new(src);
    lexer.pipe_operators = opts.pipe_operators;
    let mut st = ParseState {
        src,
        origin: origin.to_string(),
        base_dir: base_dir.to_string(),
        opts,
        warnings: Vec::new(),
        cursed: Vec::new(),
    };
    let result =
        grammar::ExprParser::new().parse(&mut st, lexer.map(|r| r.map_err(ParseErr::from)));
    match result {
        Ok(e) => Ok((e, st.warnings)),
        Err(e) => Err(convert_error(e, src.len())),
    }
}

fn expected_list(expected: &[String]) -> String {
    if expected.is_empty() || expected.len() > 4 {
        return String::new();
    }
    let names: Vec<String> = expected.iter().map(|e| describe_terminal(e)).collect();
    format!(", expecting {}", names.join(" or "))
}

fn describe_terminal(t: &str) -> String {
    match t {
        "\"id\"" => "identifier".into(),
        "\"int\"" => "integer".into(),
        "\"float\"" => "floating-point literal".into(),
        "\"str\"" => "string".into(),
        "\"indstr\"" => "indented string".into(),
        "\"path\"" => "path".into(),
        "\"hpath\"" => "'~/…' path".into(),
        "\"spath\"" => "'<…>' path".into(),
        "\"uri\"" => "URI".into(),
        "\"path_end\"" => "end of path".into(),
        "\"ind_open\"" => "start of an indented string".into(),
        "\"ind_close\"" => "end of an indented string".into(),
        "\"\\\"\"" => "'\"'".into(),
        other => format!("'{}'", other.trim_matches('"')),
    }
}

fn convert_error(e: ParseError<usize, Tok, LexErrorOrParse>, len: usize) -> ParseErr {
    match e {
        ParseError::InvalidToken { location } => {
            ParseErr::new("syntax error, invalid token", Span::new(location, location))
        }
        ParseError::UnrecognizedEof {
            location: _,
            expected,
        } => {
            // CppNix's end of file is where the input ends (past trailing
            // blanks and comments); inside a string literal its parser wants
            // only the quote. (Its lexer then counts one more column, past
            // the end of the text: positions here stay inside the text.)
            let in_string = expected.len() == 3
                && ["\"str\"", "\"${\"", "\"\\\"\""]
                    .iter()
                    .all(|t| expected.iter().any(|e| e == t));
            let (at, expected) = if in_string {
                (len, vec!["\"\\\"\"".to_string()])
            } else {
                (len, expected)
            };
            ParseErr::new(
                format!(
                    "syntax error, unexpected end of file{}",
                    expected_list(&expected)
                ),
                Span::new(at, at),
            )
        }
        ParseError::UnrecognizedToken {
            token: (l, t, r),
            expected,
        } => ParseErr::new(
            format!(
                "syntax error, unexpected {}{}",
                t.describe(),
                expected_list(&expected)
            ),
            Span::new(l, r),
        ),
        ParseError::ExtraToken { token: (l, t, r) } => ParseErr::new(
            format!("syntax error, unexpected {}", t.describe()),
            Span::new(l, r),
        ),
        ParseError::User { error } => error,
    }
}

type LexErrorOrParse = ParseErr;

impl From<LexError> for ParseErr {
    fn from(e: LexError) -> Self {
        ParseErr::new(e.msg, Span::new(e.start, e.end))
    }
}
