//! `fromTOML`, with CppNix's value mapping: integers, floats, strings,
//! tables and arrays; dates and times only with `parse-toml-timestamps`
//! (as `{ _type = "timestamp"; value = "..."; }`, formatted the way
//! toml11 3.x printed them).

use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;

pub fn register(r: &mut super::Registry) {
    r.prim("fromTOML", 1, prim_from_toml);
}

fn prim_from_toml(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = vm
        .force_string_no_ctx(&a[0])
        .ctx("while evaluating the argument passed to builtins.fromTOML")?;
    let s = s.to_str();
    let timestamps = vm.settings.parse_toml_timestamps;
    let table: toml::Table = match toml::from_str(&s) {
        Ok(t) => t,
        Err(e) => return err(format!("while parsing TOML: {}", toml_error(&s, &e))),
    };
    table_to_value(&table, timestamps)
        .map_err(|msg| EvalError::new(ErrorKind::Other, format!("while parsing TOML: {}", msg)))
}

/// The parser's message, or toml11's (CppNix's parser) for an integer out of
/// range, which the tests pin down.
fn toml_error(src: &str, e: &toml::de::Error) -> String {
    let msg = e.message();
    let out_of_range = msg.contains("number too large") || msg.contains("number too small");
    match e.span() {
        Some(span) if out_of_range => {
            let line_start = src[..span.start].rfind('\n').map_or(0, |i| i + 1);
            let line_no = src[..span.start].matches('\n').count() + 1;
            let mut end = span.start;
            let b = src.as_bytes();
            while end < b.len()
                && !b[end].is_ascii_whitespace()
                && b[end] != b','
                && b[end] != b']'
                && b[end] != b'}'
            {
                end += 1;
            }
            let line_end = src[line_start..]
                .find('\n')
                .map_or(src.len(), |i| line_start + i);
            let width = line_no.to_string().len();
            format!(
                "[error] toml::parse_dec_integer: too large integer: current max digits = 2^63\n --> fromTOML\n {:w$} |\n {} | {}\n {:w$} | {}^-- must be < 2^63\n\x1b[0m",
                "",
                line_no,
                &src[line_start..line_end],
                "",
                " ".repeat(end - line_start),
                w = width
            )
        }
        _ => e.to_string().trim_end().to_string(),
    }
}

fn no_nul(s: &str) -> Result<(), String> {
    if s.contains('\0') {
        return Err(format!(
            "error: input string '{}' cannot be represented as Nix string because it contains null bytes",
            s.replace('\0', "\u{2400}")
        ));
    }
    Ok(())
}

fn table_to_value(t: &toml::Table, ts: bool) -> Result<Value, String> {
    let mut out = Vec::with_capacity(t.len());
    for (k, v) in t {
        no_nul(k)?;
        out.push((Symbol::intern(k), to_value(v, ts)?));
    }
    Ok(Value::attrs(Attrs::from_unsorted(out)))
}

fn to_value(v: &toml::Value, ts: bool) -> Result<Value, String> {
    use toml::Value as T;
    Ok(match v {
        T::String(s) => {
            no_nul(s)?;
            Value::str(s)
        }
        T::Integer(n) => Value::Int(*n),
        T::Float(f) => Value::Float(*f),
        T::Boolean(b) => Value::Bool(*b),
        T::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for x in items {
                out.push(to_value(x, ts)?);
            }
            Value::list(out)
        }
        T::Table(t) => table_to_value(t, ts)?,
        T::Datetime(d) => {
            if !ts {
                return Err("Dates and times are not supported".into());
            }
            Value::attrs(Attrs::from_unsorted(vec![
                (Symbol::intern("_type"), Value::str("timestamp")),
                (Symbol::intern("value"), Value::string(format_datetime(d))),
            ]))
        }
    })
}

/// Sub-second digits as toml11 3.x chose them: none, or 3, 6 or 9 digits.
fn subsecond(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{:09}", nanos)
    }
}

fn format_datetime(d: &toml::value::Datetime) -> String {
    let mut out = String::new();
    if let Some(date) = &d.date {
        out.push_str(&format!(
            "{:04}-{:02}-{:02}",
            date.year, date.month, date.day
        ));
    }
    if let Some(t) = &d.time {
        if d.date.is_some() {
            out.push('T');
        }
        out.push_str(&format!(
            "{:02}:{:02}:{:02}{}",
            t.hour,
            t.minute,
            t.second,
            subsecond(t.nanosecond)
        ));
    }
    if let Some(off) = &d.offset {
        match off {
            toml::value::Offset::Z => out.push('Z'),
            toml::value::Offset::Custom { minutes } => {
                if *minutes == 0 {
                    out.push('Z');
                } else {
                    let sign = if *minutes < 0 { '-' } else { '+' };
                    let m = minutes.unsigned_abs();
                    out.push_str(&format!("{}{:02}:{:02}", sign, m / 60, m % 60));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsecond_precision() {
        assert_eq!(subsecond(0), "");
        assert_eq!(subsecond(100_000_000), ".100");
        assert_eq!(subsecond(123_400_000), ".123400");
        assert_eq!(subsecond(123_456_700), ".123456700");
    }

    #[test]
    fn datetimes() {
        let t: toml::Table = toml::from_str(
            "a = 1979-05-27T00:32:00.999999-07:00\nb = 07:32:00\nc = 1979-05-27 07:32:00.1Z",
        )
        .unwrap();
        let f = |k: &str| match &t[k] {
            toml::Value::Datetime(d) => format_datetime(d),
            _ => panic!(),
        };
        assert_eq!(f("a"), "1979-05-27T00:32:00.999999-07:00");
        assert_eq!(f("b"), "07:32:00");
        assert_eq!(f("c"), "1979-05-27T07:32:00.100Z");
    }
}
