//! Prints an AST exactly as `nix-instantiate --parse` does: fully
//! parenthesised, attributes sorted by name, operators CppNix desugars
//! (`-`, `*`, `/`, `<`, ...) shown as the calls it makes of them.

use crate::ast::*;
use std::fmt::Write;

pub fn show(e: &Expr) -> String {
    let mut s = String::new();
    write_expr(&mut s, e);
    s
}

/// A string literal with Nix escapes (`"`, `\`, newline, CR, tab, `${`).
pub fn literal_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let b = s.as_bytes();
    for (i, c) in s.char_indices() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if b.get(i + 1) == Some(&b'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const KEYWORDS: &[&str] = &[
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit",
];

/// Whether `s` is written bare, as an identifier (CppNix's `printIdentifier`
/// quotes everything else): not a keyword, a letter or `_`, then letters,
/// digits, `_`, `'` and `-`.
pub fn is_plain_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    let first_ok = b
        .first()
        .is_some_and(|&c| c.is_ascii_alphabetic() || c == b'_');
    let rest_ok = b
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'\'' || c == b'-');
    first_ok && rest_ok && !KEYWORDS.contains(&s)
}

/// An identifier as CppNix's `printIdentifier` writes it (quoted if needed).
pub fn identifier(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    if KEYWORDS.contains(&s) {
        return format!("\"{}\"", s);
    }
    if is_plain_identifier(s) {
        s.to_string()
    } else {
        literal_string(s)
    }
}

/// Floats as C++'s default `ostream <<` prints them (`%g`, 6 digits).
pub fn format_float_g(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let precision = 6i32;
    let exp = f.abs().log10().floor() as i32;
    // Round to 6 significant digits first; rounding can bump the exponent.
    let formatted = format!("{:.*e}", (precision - 1) as usize, f);
    let (mant, e) = formatted.split_once('e').expect("exponent form");
    let e: i32 = e.parse().unwrap_or(exp);
    if e < -4 || e >= precision {
        let mant = trim_zeros(mant);
        let sign = if e < 0 { '-' } else { '+' };
        format!("{}e{}{:02}", mant, sign, e.abs())
    } else {
        let decimals = (precision - 1 - e).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, f)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn write_attr_path(s: &mut String, path: &[AttrName]) {
    for (i, a) in path.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        match a {
            AttrName::Static(sym) => s.push_str(&identifier(sym.as_str())),
            AttrName::Dynamic(e) => {
                s.push_str("\"${");
                write_expr(s, e);
                s.push_str("}\"");
            }
        }
    }
}

fn write_bindings(s: &mut String, a: &AttrsExpr) {
    let mut sorted: Vec<&AttrDef> = a.attrs.iter().collect();
    sorted.sort_by(|x, y| x.name.as_str().cmp(y.name.as_str()));
    let inherits: Vec<&AttrDef> = sorted
        .iter()
        .copied()
        .filter(|d| d.kind == AttrKind::Inherited)
        .collect();
    if !inherits.is_empty() {
        s.push_str("inherit");
        for d in inherits {
            s.push(' ');
            s.push_str(&identifier(d.name.as_str()));
        }
        s.push_str("; ");
    }
    for (k, from) in a.inherit_from.iter().enumerate() {
        let names: Vec<&AttrDef> = sorted
            .iter()
            .copied()
            .filter(|d| d.kind == AttrKind::InheritedFrom(k))
            .collect();
        if names.is_empty() {
            continue;
        }
        s.push_str("inherit (");
        write_expr(s, from);
        s.push(')');
        for d in names {
            s.push(' ');
            s.push_str(&identifier(d.name.as_str()));
        }
        s.push_str("; ");
    }
    for d in sorted.iter().filter(|d| d.kind == AttrKind::Plain) {
        s.push_str(&identifier(d.name.as_str()));
        s.push_str(" = ");
        write_expr(s, &d.value);
        s.push_str("; ");
    }
    for d in &a.dynamic {
        s.push_str("\"${");
        write_expr(s, &d.name);
        s.push_str("}\" = ");
        write_expr(s, &d.value);
        s.push_str("; ");
    }
}

fn write_call(s: &mut String, f: &str, args: &[&Expr]) {
    s.push('(');
    s.push_str(f);
    for a in args {
        s.push(' ');
        write_expr(s, a);
    }
    s.push(')');
}

fn write_expr(s: &mut String, e: &Expr) {
    match e {
        Expr::Int(n) => {
            let _ = write!(s, "{}", n);
        }
        Expr::Float(f) => s.push_str(&format_float_g(*f)),
        Expr::Str(t) => s.push_str(&literal_string(t)),
        Expr::Path(p) => s.push_str(p),
        Expr::Var(v, _) => s.push_str(&identifier(v.as_str())),
        Expr::CurPos(_) => s.push_str("__curPos"),
        Expr::Select {
            e, path, default, ..
        } => {
            s.push('(');
            write_expr(s, e);
            s.push_str(").");
            write_attr_path(s, path);
            if let Some(d) = default {
                s.push_str(" or (");
                write_expr(s, d);
                s.push(')');
            }
        }
        Expr::HasAttr { e, path, .. } => {
            s.push_str("((");
            write_expr(s, e);
            s.push_str(") ? ");
            write_attr_path(s, path);
            s.push(')');
        }
        Expr::Attrs(a) => {
            if a.rec {
                s.push_str("rec ");
            }
            s.push_str("{ ");
            write_bindings(s, a);
            s.push('}');
        }
        Expr::List(items, _) => {
            s.push_str("[ ");
            for i in items {
                s.push('(');
                write_expr(s, i);
                s.push_str(") ");
            }
            s.push(']');
        }
        Expr::Lambda(l) => {
            s.push('(');
            if let Some(f) = &l.formals {
                s.push_str("{ ");
                let mut sorted: Vec<&Formal> = f.formals.iter().collect();
                sorted.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
                let mut first = true;
                for fm in sorted {
                    if !first {
                        s.push_str(", ");
                    }
                    first = false;
                    s.push_str(&identifier(fm.name.as_str()));
                    if let Some(d) = &fm.default {
                        s.push_str(" ? ");
                        write_expr(s, d);
                    }
                }
                if f.ellipsis {
                    if !first {
                        s.push_str(", ");
                    }
                    s.push_str("...");
                }
                s.push_str(" }");
                if l.arg.is_some() {
                    s.push_str(" @ ");
                }
            }
            if let Some(a) = l.arg {
                s.push_str(&identifier(a.as_str()));
            }
            s.push_str(": ");
            write_expr(s, &l.body);
            s.push(')');
        }
        Expr::Call { f, args, .. } => {
            s.push('(');
            write_callee(s, f);
            for a in args {
                s.push(' ');
                write_expr(s, a);
            }
            s.push(')');
        }
        Expr::Let(a, body) => {
            s.push_str("(let ");
            write_bindings(s, a);
            s.push_str("in ");
            write_expr(s, body);
            s.push(')');
        }
        Expr::With { env, body, .. } => {
            s.push_str("(with ");
            write_expr(s, env);
            s.push_str("; ");
            write_expr(s, body);
            s.push(')');
        }
        Expr::If {
            cond, then, els, ..
        } => {
            s.push_str("(if ");
            write_expr(s, cond);
            s.push_str(" then ");
            write_expr(s, then);
            s.push_str(" else ");
            write_expr(s, els);
            s.push(')');
        }
        Expr::Assert { cond, body, .. } => {
            s.push_str("assert ");
            write_expr(s, cond);
            s.push_str("; ");
            write_expr(s, body);
        }
        Expr::Not(e, _) => {
            s.push_str("(! ");
            write_expr(s, e);
            s.push(')');
        }
        Expr::Neg(e, _) => write_call(s, "__sub", &[&Expr::Int(0), e]),
        Expr::BinOp { op, l, r, .. } => {
            let infix = match op {
                BinOp::Eq => "==",
                BinOp::Neq => "!=",
                BinOp::And => "&&",
                BinOp::Or => "||",
                BinOp::Impl => "->",
                BinOp::Update => "//",
                BinOp::Concat => "++",
                BinOp::Sub => return write_call(s, "__sub", &[l, r]),
                BinOp::Mul => return write_call(s, "__mul", &[l, r]),
                BinOp::Div => return write_call(s, "__div", &[l, r]),
                BinOp::Lt => return write_call(s, "__lessThan", &[l, r]),
                BinOp::Gt => return write_call(s, "__lessThan", &[r, l]),
                BinOp::Le => {
                    s.push_str("(! ");
                    write_call(s, "__lessThan", &[r, l]);
                    s.push(')');
                    return;
                }
                BinOp::Ge => {
                    s.push_str("(! ");
                    write_call(s, "__lessThan", &[l, r]);
                    s.push(')');
                    return;
                }
                BinOp::PipeInto => return write_call_expr(s, r, l),
                BinOp::PipeFrom => return write_call_expr(s, l, r),
            };
            s.push('(');
            write_expr(s, l);
            s.push(' ');
            s.push_str(infix);
            s.push(' ');
            write_expr(s, r);
            s.push(')');
        }
        Expr::ConcatStrings { parts, .. } => {
            s.push('(');
            for (i, (_, p)) in parts.iter().enumerate() {
                if i > 0 {
                    s.push_str(" + ");
                }
                write_expr(s, p);
            }
            s.push(')');
        }
        Expr::InheritFrom(..) => s.push_str("<inherit-from>"),
        Expr::SearchPath(p, _) => {
            s.push_str("(__findFile __nixPath ");
            s.push_str(&literal_string(p));
            s.push(')');
        }
    }
}

/// The function of a call. CppNix desugars `-`, `*`, `/`, `<`, `>`, unary
/// minus and `<p>` into calls while parsing, so applying one of them appends
/// to that call: `(a - b) c` prints `(__sub a b c)`.
fn write_callee(s: &mut String, f: &Expr) {
    let (name, args): (&str, [&Expr; 2]) = match f {
        Expr::BinOp { op, l, r, .. } => match op {
            BinOp::Sub => ("__sub", [l, r]),
            BinOp::Mul => ("__mul", [l, r]),
            BinOp::Div => ("__div", [l, r]),
            BinOp::Lt => ("__lessThan", [l, r]),
            BinOp::Gt => ("__lessThan", [r, l]),
            _ => return write_expr(s, f),
        },
        Expr::Neg(e, _) => ("__sub", [&Expr::Int(0), e]),
        Expr::SearchPath(p, _) => {
            s.push_str("__findFile __nixPath ");
            s.push_str(&literal_string(p));
            return;
        }
        _ => return write_expr(s, f),
    };
    s.push_str(name);
    for a in args {
        s.push(' ');
        write_expr(s, a);
    }
}

fn write_call_expr(s: &mut String, f: &Expr, a: &Expr) {
    s.push('(');
    write_expr(s, f);
    s.push(' ');
    write_expr(s, a);
    s.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_cpp_ostream() {
        assert_eq!(format_float_g(1.5), "1.5");
        assert_eq!(format_float_g(100.0), "100");
        assert_eq!(format_float_g(1e6), "1e+06");
        assert_eq!(format_float_g(123456.7), "123457");
        assert_eq!(format_float_g(0.0001), "0.0001");
        assert_eq!(format_float_g(0.00001), "1e-05");
        assert_eq!(format_float_g(1.23456789), "1.23457");
        assert_eq!(format_float_g(-2.5e-10), "-2.5e-10");
    }

    #[test]
    fn identifiers() {
        assert_eq!(identifier("foo-bar'"), "foo-bar'");
        assert_eq!(identifier("a b"), "\"a b\"");
        assert_eq!(identifier("if"), "\"if\"");
        assert_eq!(identifier(""), "\"\"");
    }
}
