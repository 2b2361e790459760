//! `toXML` and `--xml` output, in the layout of CppNix's XMLWriter:
//! two-space indentation, element attributes sorted by name.

use crate::error::*;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::ast::Span;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use std::collections::BTreeSet;

pub fn register(r: &mut super::Registry) {
    r.prim("toXML", 1, prim_to_xml);
}

fn prim_to_xml(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let (s, ctx) = render(vm, a[0].clone(), true, false)?;
    Ok(Value::bytes(s, ctx_box(ctx)))
}

pub fn to_xml_string(vm: &mut Vm, v: Value, strict: bool, location: bool) -> EvalResult<String> {
    let (s, _) = render(vm, v, strict, location)?;
    Ok(String::from_utf8_lossy(&s).into_owned())
}

fn render(vm: &mut Vm, v: Value, strict: bool, location: bool) -> EvalResult<(Vec<u8>, Context)> {
    let mut w = XmlWriter {
        out: Vec::new(),
        open: Vec::new(),
        strict,
        location,
        ctx: Context::new(),
        drvs_seen: BTreeSet::new(),
        depth: 0,
    };
    w.out
        .extend_from_slice(b"<?xml version='1.0' encoding='utf-8'?>\n");
    w.open_element("expr", &[]);
    w.value(vm, v)?;
    w.close_element();
    Ok((w.out, w.ctx))
}

type XmlAttrs<'a> = [(&'a str, Vec<u8>)];

struct XmlWriter {
    out: Vec<u8>,
    open: Vec<&'static str>,
    strict: bool,
    location: bool,
    ctx: Context,
    drvs_seen: BTreeSet<Vec<u8>>,
    depth: usize,
}

impl XmlWriter {
    fn indent(&mut self) {
        for _ in 0..self.open.len() {
            self.out.extend_from_slice(b"  ");
        }
    }

    fn attrs(&mut self, attrs: &XmlAttrs) {
        // XMLAttrs is an ordered map: attributes come out sorted by name.
        let mut sorted: Vec<&(&str, Vec<u8>)> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (name, value) in sorted {
            self.out.push(b' ');
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(b"=\"");
            for &c in value {
                match c {
                    b'"' => self.out.extend_from_slice(b"&quot;"),
                    b'<' => self.out.extend_from_slice(b"&lt;"),
                    b'>' => self.out.extend_from_slice(b"&gt;"),
                    b'&' => self.out.extend_from_slice(b"&amp;"),
                    b'\n' => self.out.extend_from_slice(b"&#xA;"),
                    c => self.out.push(c),
                }
            }
            self.out.push(b'"');
        }
    }

    fn open_element(&mut self, name: &'static str, attrs: &XmlAttrs) {
        self.indent();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.attrs(attrs);
        self.out.extend_from_slice(b">\n");
        self.open.push(name);
    }

    fn close_element(&mut self) {
        let name = self.open.pop().unwrap_or("expr");
        self.indent();
        self.out.extend_from_slice(b"</");
        self.out.extend_from_slice(name.as_bytes());
        self.out.extend_from_slice(b">\n");
    }

    fn empty_element(&mut self, name: &str, attrs: &XmlAttrs) {
        self.indent();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.attrs(attrs);
        self.out.extend_from_slice(b" />\n");
    }

    fn pos_attrs(&self, vm: &Vm, file: u32, span: Span, attrs: &mut Vec<(&'static str, Vec<u8>)>) {
        let (line, col) = vm.line_col(Pos { file, span });
        if let Some(f) = vm.files.get(file as usize) {
            // Only real files have a path; «string» and friends don't.
            if f.name.starts_with('/') {
                attrs.push(("path", f.name.clone().into_bytes()));
            }
        }
        attrs.push(("line", line.to_string().into_bytes()));
        attrs.push(("column", col.to_string().into_bytes()));
    }

    fn value(&mut self, vm: &mut Vm, v: Value) -> EvalResult<()> {
        self.depth += 1;
        if self.depth > vm.settings.max_call_depth {
            self.depth -= 1;
            return Err(EvalError::new(
                ErrorKind::StackOverflow,
                "stack overflow; max-call-depth exceeded",
            ));
        }
        let r = vm.grow_stack(256 * 1024, 4 * 1024 * 1024, |vm| self.value_inner(vm, v));
        self.depth -= 1;
        r
    }

    fn value_inner(&mut self, vm: &mut Vm, v: Value) -> EvalResult<()> {
        let v = if self.strict {
            vm.force(v)?
        } else {
            // CppNix allocates lambdas inside sets and lists as thunks,
            // which a lazy printout shows as unevaluated.
            if self.depth > 1 && matches!(v.view(), View::Lambda(_)) {
                self.empty_element("unevaluated", &[]);
                return Ok(());
            }
            peek(&v)
        };
        match &v.view() {
            View::Int(n) => self.empty_element("int", &[("value", n.to_string().into_bytes())]),
            View::Bool(b) => self.empty_element(
                "bool",
                &[("value", if *b { "true" } else { "false" }.into())],
            ),
            View::String(s) => {
                if let Some(c) = s.context() {
                    self.ctx.extend(c.iter().cloned());
                }
                self.empty_element("string", &[("value", s.as_bytes().to_vec())]);
            }
            View::Path(p) => self.empty_element("path", &[("value", p.as_bytes().to_vec())]),
            View::Null => self.empty_element("null", &[]),
            View::Float(f) => self.empty_element(
                "float",
                &[(
                    "value",
                    nixvm_compiler::printer::format_float_g(*f).into_bytes(),
                )],
            ),
            View::Attrs(a) => {
                let is_drv = match a.get(known::TYPE) {
                    Some(t) => {
                        let t = vm.force(t.clone())?;
                        matches!(&t.view(), View::String(s) if s.as_bytes() == b"derivation")
                    }
                    None => false,
                };
                if is_drv {
                    let mut xattrs = Vec::new();
                    let mut drv_path = Vec::new();
                    if let Some(d) = a.get(Symbol::intern("drvPath")) {
                        let d = if self.strict {
                            vm.force(d.clone())?
                        } else {
                            peek(d)
                        };
                        if let View::String(s) = &d.view() {
                            drv_path = s.as_bytes().to_vec();
                            xattrs.push(("drvPath", drv_path.clone()));
                        }
                    }
                    if let Some(o) = a.get(known::OUT_PATH) {
                        let o = if self.strict {
                            vm.force(o.clone())?
                        } else {
                            peek(o)
                        };
                        if let View::String(s) = &o.view() {
                            xattrs.push(("outPath", s.as_bytes().to_vec()));
                        }
                    }
                    self.open_element("derivation", &xattrs);
                    if !drv_path.is_empty() && self.drvs_seen.insert(drv_path) {
                        self.show_attrs(vm, a)?;
                    } else {
                        self.empty_element("repeated", &[]);
                    }
                    self.close_element();
                } else {
                    self.open_element("attrs", &[]);
                    self.show_attrs(vm, a)?;
                    self.close_element();
                }
            }
            View::List(l) => {
                self.open_element("list", &[]);
                for x in l.iter() {
                    self.value(vm, x.clone())?;
                }
                self.close_element();
            }
            View::Lambda(c) => {
                let mut xattrs = Vec::new();
                if self.location {
                    self.pos_attrs(vm, c.proto.file(), c.proto.span, &mut xattrs);
                }
                self.open_element("function", &xattrs);
                let (arg, _) = lambda_arg_names(vm, &c.proto);
                match c.proto.formals() {
                    Some(f) => {
                        let mut pattrs = Vec::new();
                        if let Some(name) = arg {
                            pattrs.push(("name", name.into_bytes()));
                        }
                        if f.ellipsis {
                            pattrs.push(("ellipsis", b"1".to_vec()));
                        }
                        let mut names: Vec<&str> =
                            f.formals.iter().map(|x| x.name.as_str()).collect();
                        names.sort();
                        self.open_element("attrspat", &pattrs);
                        for n in names {
                            self.empty_element("attr", &[("name", n.as_bytes().to_vec())]);
                        }
                        self.close_element();
                    }
                    None => {
                        let name = arg.unwrap_or_default();
                        self.empty_element("varpat", &[("name", name.into_bytes())]);
                    }
                }
                self.close_element();
            }
            View::PrimOp(_) | View::PrimOpApp(_) | View::Thunk(_) => {
                self.empty_element("unevaluated", &[]);
            }
        }
        Ok(())
    }

    fn show_attrs(&mut self, vm: &mut Vm, a: &Attrs) -> EvalResult<()> {
        for (name, x) in a.sorted_by_name() {
            let mut xattrs = vec![("name", name.as_str().as_bytes().to_vec())];
            if self.location {
                if let Some(p) = vm.pos(a.position(name)) {
                    self.pos_attrs(vm, p.file, p.span, &mut xattrs);
                }
            }
            self.open_element("attr", &xattrs);
            self.value(vm, x.clone())?;
            self.close_element();
        }
        Ok(())
    }
}

/// A value without forcing: evaluated thunks show their value.
fn peek(v: &Value) -> Value {
    match &v.view() {
        View::Thunk(t) => match t.done() {
            Some(x) => peek(&x),
            None => v.clone(),
        },
        _ => v.clone(),
    }
}

/// The argument name of a lambda (`x` in `x: ...`, `args` in
/// `args@{ ... }: ...` or `{ ... }@args: ...`), recovered by re-parsing the
/// lambda's source text since compiled code keeps only slots. The second
/// component is true if the lambda has a formals pattern.
fn lambda_arg_names(vm: &Vm, p: &Proto) -> (Option<String>, bool) {
    let Some(f) = vm.files.get(p.file() as usize) else {
        return (None, false);
    };
    let text = f.text();
    let src: &str = &text;
    let (s, e) = (p.span.start as usize, p.span.end as usize);
    if s >= e || e > src.len() || !src.is_char_boundary(s) || !src.is_char_boundary(e) {
        return (None, false);
    }
    let text = &src[s..e];
    let opts = vm.parse_options_pub();
    match nixvm_compiler::parser::parse(text, "«lambda»", "/", opts) {
        Ok((nixvm_compiler::ast::Expr::Lambda(l), _)) => {
            (l.arg.map(|a| a.as_str().to_string()), l.formals.is_some())
        }
        _ => (None, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_escaping_and_order() {
        let mut w = XmlWriter {
            out: Vec::new(),
            open: Vec::new(),
            strict: true,
            location: false,
            ctx: Context::new(),
            drvs_seen: BTreeSet::new(),
            depth: 0,
        };
        w.empty_element(
            "x",
            &[("value", b"a\"<>&\nb".to_vec()), ("column", b"1".to_vec())],
        );
        assert_eq!(
            String::from_utf8(w.out).unwrap(),
            "<x column=\"1\" value=\"a&quot;&lt;&gt;&amp;&#xA;b\" />\n"
        );
    }
}
