//! `toJSON` / `fromJSON`.
//!
//! Output follows CppNix, which builds an nlohmann::json tree and dumps it
//! compactly: strings escaped the nlohmann way, floats in the shortest
//! round-trip form with nlohmann's layout rules, objects ordered by key.

use crate::error::*;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use std::rc::Rc;

pub fn register(r: &mut super::Registry) {
    r.prim("toJSON", 1, prim_to_json);
    r.prim("fromJSON", 1, prim_from_json);
}

fn prim_to_json(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let (s, ctx) = render(vm, a[0].clone(), true)?;
    Ok(Value::bytes(s.into_bytes(), ctx_box(ctx)))
}

/// `v` as JSON. `strict`: force what is not evaluated yet (as `toJSON` and
/// `nix-instantiate --eval --strict --json` do); otherwise a value not yet
/// evaluated is an error, as in `nix-instantiate --eval --json`.
pub fn to_json_string(vm: &mut Vm, v: Value, strict: bool) -> EvalResult<String> {
    Ok(render(vm, v, strict)?.0)
}

fn render(vm: &mut Vm, v: Value, strict: bool) -> EvalResult<(String, Context)> {
    let mut w = JsonWriter {
        strict,
        out: Vec::new(),
        ctx: Context::new(),
        depth: 0,
        utf8_error: None,
    };
    w.value(vm, v, None, true)?;
    if let Some(msg) = w.utf8_error {
        return err(format!("JSON serialization error: {}", msg));
    }
    // Every string written was checked to be UTF-8.
    let s = String::from_utf8(w.out).map_err(|_| {
        EvalError::new(
            ErrorKind::Other,
            "JSON serialization error: invalid UTF-8 in output",
        )
    })?;
    Ok((s, w.ctx))
}

struct JsonWriter {
    strict: bool,
    out: Vec<u8>,
    ctx: Context,
    depth: usize,
    /// nlohmann only complains about bad UTF-8 when dumping the finished
    /// tree, i.e. after all evaluation errors had their chance.
    utf8_error: Option<String>,
}

fn with_trace<T>(
    r: EvalResult<T>,
    msg: impl FnOnce() -> String,
    pos: Option<(u32, nixvm_compiler::ast::Span)>,
) -> EvalResult<T> {
    r.ctx_at(pos.map(|(file, span)| Pos { file, span }), msg)
}

impl JsonWriter {
    fn value(
        &mut self,
        vm: &mut Vm,
        v: Value,
        pos: Option<(u32, nixvm_compiler::ast::Span)>,
        copy_to_store: bool,
    ) -> EvalResult<()> {
        self.depth += 1;
        if vm.call_depth + self.depth > vm.settings.max_call_depth {
            self.depth -= 1;
            return Err(EvalError::new(
                ErrorKind::StackOverflow,
                "stack overflow; max-call-depth exceeded",
            )
            .with_pos(pos.map(|(file, span)| Pos { file, span })));
        }
        let r = vm.grow_stack(256 * 1024, 4 * 1024 * 1024, |vm| {
            self.value_inner(vm, v, pos, copy_to_store)
        });
        self.depth -= 1;
        r
    }

    fn value_inner(
        &mut self,
        vm: &mut Vm,
        v: Value,
        pos: Option<(u32, nixvm_compiler::ast::Span)>,
        copy_to_store: bool,
    ) -> EvalResult<()> {
        let v = if self.strict {
            vm.force(v)?
        } else {
            v.peeled().clone()
        };
        match &v.view() {
            View::Null => self.out.extend_from_slice(b"null"),
            View::Bool(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            View::Int(n) => self.out.extend_from_slice(n.to_string().as_bytes()),
            View::Float(f) => self.out.extend_from_slice(json_float(*f).as_bytes()),
            View::String(s) => {
                if let Some(c) = s.context() {
                    self.ctx.extend(c.iter().cloned());
                }
                self.string(s.as_bytes());
            }
            View::Path(p) => {
                if copy_to_store {
                    let sp = crate::storeglue::copy_path_to_store(vm, p)?;
                    self.ctx.insert(Rc::from(sp.as_str()));
                    self.string(sp.as_bytes());
                } else {
                    self.string(p.as_bytes());
                }
            }
            View::List(l) => {
                self.out.push(b'[');
                for (i, x) in l.iter().enumerate() {
                    if i > 0 {
                        self.out.push(b',');
                    }
                    let r = self.value(vm, x.clone(), pos, copy_to_store);
                    with_trace(
                        r,
                        || format!("while evaluating list element at index {}", i),
                        pos,
                    )?;
                }
                self.out.push(b']');
            }
            View::Attrs(_) => {
                let mut came_through_to_string = false;
                let peeled = peel(vm, v.clone(), &mut came_through_to_string, None)?;
                match &peeled.view() {
                    View::Attrs(a) => {
                        self.out.push(b'{');
                        let mut first = true;
                        for (name, x) in a.sorted_by_name() {
                            if !first {
                                self.out.push(b',');
                            }
                            first = false;
                            self.string(name.as_str().as_bytes());
                            self.out.push(b':');
                            let apos = vm.pos(a.position(name)).map(|p| (p.file, p.span));
                            let r = self.value(vm, x.clone(), apos.or(pos), copy_to_store);
                            with_trace(
                                r,
                                || format!("while evaluating attribute '{}'", name),
                                apos,
                            )?;
                        }
                        self.out.push(b'}');
                    }
                    _ => {
                        let c2 = copy_to_store && !came_through_to_string;
                        self.value(vm, peeled, pos, c2)?;
                    }
                }
            }
            View::PrimOp(p) => {
                return type_err(format!(
                    "cannot convert the built-in function '{}' to JSON",
                    p.name
                ));
            }
            View::PrimOpApp(app) => {
                return type_err(format!(
                    "cannot convert the partially applied built-in function '{}' to JSON",
                    app.prim.name
                ));
            }
            View::Lambda(_) => {
                return type_err(format!("cannot convert {} to JSON", v.show_type()));
            }
            View::Thunk(_) => {
                return type_err::<()>("cannot convert a thunk to JSON".to_string())
                    .map_err(|e| e.with_pos(pos.map(|(file, span)| Pos { file, span })));
            }
        }
        Ok(())
    }

    fn string(&mut self, s: &[u8]) {
        if self.utf8_error.is_none() {
            if let Some(msg) = utf8_problem(s) {
                self.utf8_error = Some(msg);
            }
        }
        escape_json_into(&mut self.out, s);
    }
}

/// Follow `__toString` / `outPath` as CppNix's `peelToStringOutPath` does
/// with the return-type check enabled.
/// A failed return-type check is reported at `at`, the attribute that led
/// to the value.
fn peel(vm: &mut Vm, v: Value, came: &mut bool, at: Option<Pos>) -> EvalResult<Value> {
    let v = vm.force(v)?;
    let a = match &v.view() {
        View::Attrs(a) => a.clone(),
        View::String(_) | View::Path(_) => return Ok(v),
        _ => {
            if *came {
                return type_err(format!(
                    "`__toString` should return a string, but got {}: {}",
                    v.show_type(),
                    crate::print::show_short(&v)
                ))
                .map_err(|e| e.with_pos(at));
            }
            return Ok(v);
        }
    };
    if let Some(f) = a.get(known::TO_STRING) {
        let f = f.clone();
        let fpos = vm
            .pos(a.position(known::TO_STRING))
            .map(|p| (p.file, p.span));
        let r = vm.call(f, v.clone());
        let r = with_trace(
            r,
            || "while calling the `__toString` attribute".into(),
            fpos,
        )?;
        *came = true;
        let r = peel(vm, r, came, fpos.map(|(file, span)| Pos { file, span }));
        return with_trace(
            r,
            || "while using the result of the `__toString` attribute".into(),
            fpos,
        );
    }
    if let Some(o) = a.get(known::OUT_PATH) {
        let o = o.clone();
        let opos = vm
            .pos(a.position(known::OUT_PATH))
            .map(|p| (p.file, p.span));
        let at = opos.map(|(file, span)| Pos { file, span });
        // "evaluating" while the attribute itself fails, "using" after.
        let o = with_trace(
            vm.force(o),
            || "while evaluating the `outPath` attribute".into(),
            opos,
        )?;
        let r = peel(vm, o, came, at);
        return with_trace(r, || "while using the `outPath` attribute".into(), opos);
    }
    if *came {
        return type_err(format!(
            "`__toString` must return a string, but got {}: {}",
            v.show_type(),
            crate::print::show_short(&v)
        ))
        .map_err(|e| e.with_pos(at));
    }
    Ok(v)
}

/// The message nlohmann gives for the first invalid UTF-8 in `s`, if any.
fn utf8_problem(s: &[u8]) -> Option<String> {
    let e = match std::str::from_utf8(s) {
        Ok(_) => return None,
        Err(e) => e,
    };
    let start = e.valid_up_to();
    match e.error_len() {
        None => Some(format!(
            "[json.exception.type_error.316] incomplete UTF-8 string; last byte: 0x{:02X}",
            s[s.len() - 1]
        )),
        Some(n) => {
            let b0 = s[start];
            // A byte that can't start a sequence is rejected where it
            // stands; otherwise the decoder stops at the first byte that
            // doesn't continue the sequence.
            let idx = if (0x80..0xC2).contains(&b0) || b0 > 0xF4 {
                start
            } else {
                start + n
            };
            Some(format!(
                "[json.exception.type_error.316] invalid UTF-8 byte at index {}: 0x{:02X}",
                idx, s[idx]
            ))
        }
    }
}

/// A JSON string literal the way nlohmann's `dump()` writes it
/// (no ASCII forcing; control characters as lower-case `\u00xx`).
pub fn escape_json_into(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 0x20 => out.extend_from_slice(format!("\\u{:04x}", c).as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

/// A double as nlohmann's `dump()` prints it: shortest round-trip digits,
/// plain notation for decimal exponents in (-4, 15], otherwise `d.ddde+XX`;
/// non-finite values become `null`.
pub fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    // Rust's `{:e}` yields the shortest digits that round-trip.
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let k = digits.len() as i32;
    // Position of the decimal point relative to the start of the digits.
    let n = exp + 1;
    const MIN_EXP: i32 = -4;
    const MAX_EXP: i32 = 15;
    if k <= n && n <= MAX_EXP {
        out.push_str(&digits);
        for _ in k..n {
            out.push('0');
        }
        out.push_str(".0");
    } else if 0 < n && n <= MAX_EXP {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if MIN_EXP < n && n <= 0 {
        out.push_str("0.");
        for _ in 0..(-n) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let e = n - 1;
        out.push('e');
        out.push(if e < 0 { '-' } else { '+' });
        let e = e.unsigned_abs();
        if e < 10 {
            out.push('0');
        }
        out.push_str(&e.to_string());
    }
    out
}

// ---- fromJSON ------------------------------------------------------------

fn prim_from_json(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm
        .force_string_no_ctx(&a[0])
        .ctx("while evaluating the first argument passed to builtins.fromJSON")?;
    parse_json(s.as_bytes())
}

/// A JSON document as Nix values: nlohmann's reader (fromjson.rs).
pub fn parse_json(s: &[u8]) -> EvalResult<Value> {
    super::fromjson::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_like_nlohmann() {
        assert_eq!(json_float(1.44), "1.44");
        assert_eq!(json_float(1.0), "1.0");
        assert_eq!(json_float(-0.0), "-0.0");
        assert_eq!(json_float(0.0), "0.0");
        assert_eq!(json_float(100.0), "100.0");
        assert_eq!(json_float(1e14), "100000000000000.0");
        assert_eq!(json_float(123456789012345.6), "123456789012345.6");
        assert_eq!(json_float(1e15), "1e+15");
        assert_eq!(json_float(1e16), "1e+16");
        assert_eq!(json_float(1.5e16), "1.5e+16");
        assert_eq!(json_float(0.001), "0.001");
        assert_eq!(json_float(0.0001), "0.0001");
        assert_eq!(json_float(0.00001), "1e-05");
        assert_eq!(json_float(1.25e-7), "1.25e-07");
        assert_eq!(json_float(6.626e-34), "6.626e-34");
        assert_eq!(json_float(1e100), "1e+100");
        assert_eq!(json_float(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(json_float(f64::INFINITY), "null");
    }

    #[test]
    fn escapes_like_nlohmann() {
        let mut o = Vec::new();
        escape_json_into(&mut o, b"a\"\\\n\x01\x7f\xc3\xa9");
        assert_eq!(o, b"\"a\\\"\\\\\\n\\u0001\x7f\xc3\xa9\"");
    }

    #[test]
    fn utf8_errors() {
        assert_eq!(
            utf8_problem(b"_invalid UTF-8: \xff_").as_deref(),
            Some("[json.exception.type_error.316] invalid UTF-8 byte at index 16: 0xFF")
        );
        assert_eq!(
            utf8_problem(b"\xc3(").as_deref(),
            Some("[json.exception.type_error.316] invalid UTF-8 byte at index 1: 0x28")
        );
        assert!(utf8_problem(b"ok \xc3\xa9").is_none());
    }
}
