//! `builtins.match` and `builtins.split`: POSIX extended regular expressions
//! (as libstdc++'s `std::regex::extended` reads them, which is what CppNix
//! uses), translated to the syntax of the `regex` crate.

use super::Registry;
use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use std::rc::Rc;

pub fn register(r: &mut Registry) {
    r.prim("match", 2, prim_match);
    r.prim("split", 2, prim_split);
}

/// Attach a "while evaluating ..." line to an error from an argument.
fn arg_ctx<T>(r: EvalResult<T>, msg: impl FnOnce() -> String) -> EvalResult<T> {
    r.map_err(|mut e| {
        e.trace.push(TraceEntry {
            msg: msg(),
            pos: None,
        });
        e
    })
}

fn compile(vm: &mut Vm, re: &str, whole: bool) -> EvalResult<Rc<regex::bytes::Regex>> {
    let key = format!("{}{}", if whole { 'm' } else { 's' }, re);
    if let Some(r) = vm.regex_cache.get(&key) {
        return Ok(r.clone());
    }
    let invalid = || err(format!("invalid regular expression '{}'", re));
    let Ok(body) = translate_ere(re.as_bytes()) else {
        return invalid();
    };
    let full = if whole {
        format!("(?s-u)\\A(?:{})\\z", body)
    } else {
        format!("(?s-u){}", body)
    };
    let compiled = match regex::bytes::RegexBuilder::new(&full)
        .size_limit(1 << 26)
        .build()
    {
        Ok(r) => Rc::new(r),
        Err(_) => return invalid(),
    };
    vm.regex_cache.insert(key, compiled.clone());
    Ok(compiled)
}

fn group_values(caps: &regex::bytes::Captures) -> Vec<Value> {
    (1..caps.len())
        .map(|i| match caps.get(i) {
            Some(m) => Value::bytes(m.as_bytes().to_vec(), None),
            None => Value::Null,
        })
        .collect()
}

fn prim_match(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let re = arg_ctx(vm.force_str_no_ctx(&a[0]), || {
        "while evaluating the first argument passed to builtins.match".into()
    })?;
    let regex = compile(vm, &re, true)?;
    let s = arg_ctx(vm.force_string(&a[1]), || {
        "while evaluating the second argument passed to builtins.match".into()
    })?;
    match regex.captures(s.as_bytes()) {
        None => Ok(Value::Null),
        Some(caps) => Ok(Value::list(group_values(&caps))),
    }
}

fn prim_split(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let re = arg_ctx(vm.force_str_no_ctx(&a[0]), || {
        "while evaluating the first argument passed to builtins.split".into()
    })?;
    let regex = compile(vm, &re, false)?;
    let s = arg_ctx(vm.force_string(&a[1]), || {
        "while evaluating the second argument passed to builtins.split".into()
    })?;
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0usize; // where the next search starts
    let mut last_end = 0usize; // end of the previous match
    while pos <= bytes.len() {
        let Some(caps) = regex.captures_at(bytes, pos) else {
            break;
        };
        let m = caps.get(0).expect("group 0 always participates");
        out.push(Value::bytes(bytes[last_end..m.start()].to_vec(), None));
        out.push(Value::list(group_values(&caps)));
        last_end = m.end();
        if m.start() == m.end() {
            // Like std::regex_iterator: after an empty match, step one
            // character before searching again.
            pos = m.end() + 1;
        } else {
            pos = m.end();
        }
    }
    if out.is_empty() {
        // No match: the input itself (context included), as CppNix does.
        return Ok(Value::list(vec![Value::String(s)]));
    }
    out.push(Value::bytes(bytes[last_end..].to_vec(), None));
    Ok(Value::list(out))
}

// ---- POSIX ERE -> regex crate ------------------------------------------

#[derive(Debug, PartialEq, Eq)]
pub struct BadRegex;

fn push_byte_lit(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || b == b'_' || b == b' ' {
        out.push(b as char);
    } else {
        out.push_str(&format!("\\x{:02X}", b));
    }
}

fn class_set(name: &[u8]) -> Result<[bool; 256], BadRegex> {
    let mut set = [false; 256];
    let pred: fn(u8) -> bool = match name {
        b"alpha" => |c| c.is_ascii_alphabetic(),
        b"digit" | b"d" => |c| c.is_ascii_digit(),
        b"alnum" => |c| c.is_ascii_alphanumeric(),
        b"upper" => |c| c.is_ascii_uppercase(),
        b"lower" => |c| c.is_ascii_lowercase(),
        b"space" | b"s" => |c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'),
        b"blank" => |c| c == b' ' || c == b'\t',
        b"punct" => |c| c.is_ascii_punctuation(),
        b"xdigit" => |c| c.is_ascii_hexdigit(),
        b"cntrl" => |c| c < 32 || c == 127,
        b"print" => |c| (32..127).contains(&c),
        b"graph" => |c| (33..127).contains(&c),
        b"w" => |c| c.is_ascii_alphanumeric() || c == b'_',
        _ => return Err(BadRegex),
    };
    for (c, slot) in set.iter_mut().enumerate() {
        *slot = pred(c as u8);
    }
    Ok(set)
}

/// Parse a bracket expression starting just after `[`; returns the class in
/// regex-crate syntax and the index just past the closing `]`.
fn translate_bracket(re: &[u8], mut i: usize) -> Result<(String, usize), BadRegex> {
    let mut set = [false; 256];
    let negate = re.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut first = true;
    // One "end point": a plain byte, `[.c.]` or `[=c=]`.
    let end_point = |i: usize| -> Result<(u8, usize), BadRegex> {
        let c = *re.get(i).ok_or(BadRegex)?;
        if c == b'[' && matches!(re.get(i + 1), Some(b'.') | Some(b'=')) {
            let delim = re[i + 1];
            let c2 = *re.get(i + 2).ok_or(BadRegex)?;
            if re.get(i + 3) == Some(&delim) && re.get(i + 4) == Some(&b']') {
                return Ok((c2, i + 5));
            }
            return Err(BadRegex);
        }
        Ok((c, i + 1))
    };
    loop {
        let c = *re.get(i).ok_or(BadRegex)?;
        if c == b']' && !first {
            i += 1;
            break;
        }
        first = false;
        if c == b'[' && re.get(i + 1) == Some(&b':') {
            let start = i + 2;
            let mut j = start;
            while j + 1 < re.len() && !(re[j] == b':' && re[j + 1] == b']') {
                j += 1;
            }
            if j + 1 >= re.len() {
                return Err(BadRegex);
            }
            let cls = class_set(&re[start..j])?;
            for (k, v) in cls.iter().enumerate() {
                if *v {
                    set[k] = true;
                }
            }
            i = j + 2;
            continue;
        }
        let (lo, next) = end_point(i)?;
        i = next;
        if re.get(i) == Some(&b'-') && re.get(i + 1).is_some_and(|&c| c != b']') {
            let (hi, next) = end_point(i + 1)?;
            i = next;
            if lo > hi {
                return Err(BadRegex);
            }
            for slot in &mut set[lo as usize..=hi as usize] {
                *slot = true;
            }
        } else {
            set[lo as usize] = true;
        }
    }
    if negate {
        for slot in set.iter_mut() {
            *slot = !*slot;
        }
    }
    let mut out = String::from("[");
    let mut k = 0usize;
    let mut any = false;
    while k < 256 {
        if !set[k] {
            k += 1;
            continue;
        }
        let lo = k;
        while k + 1 < 256 && set[k + 1] {
            k += 1;
        }
        any = true;
        if lo == k {
            out.push_str(&format!("\\x{:02X}", lo));
        } else {
            out.push_str(&format!("\\x{:02X}-\\x{:02X}", lo, k));
        }
        k += 1;
    }
    if !any {
        // Matches nothing.
        return Ok((String::from("[^\\x00-\\xFF]"), i));
    }
    out.push(']');
    Ok((out, i))
}

/// Translate a POSIX extended regular expression into the `regex` crate's
/// syntax (to be compiled with `(?s-u)`, i.e. bytewise and with `.`
/// matching newlines). Capture group numbering is preserved.
pub fn translate_ere(re: &[u8]) -> Result<String, BadRegex> {
    let mut out = String::new();
    // Output offsets of open groups.
    let mut groups: Vec<usize> = Vec::new();
    // Output offset where the last quantifiable atom starts.
    let mut atom: Option<usize> = None;
    let mut quantified = false;
    let mut i = 0;
    while i < re.len() {
        let c = re[i];
        match c {
            b'\\' => {
                let n = *re.get(i + 1).ok_or(BadRegex)?;
                // Only the ERE special characters may be escaped (libstdc++
                // in strict mode rejects escaped ordinary characters).
                if !b".[\\()*+?{|^$".contains(&n) {
                    return Err(BadRegex);
                }
                atom = Some(out.len());
                quantified = false;
                push_byte_lit(&mut out, n);
                i += 2;
            }
            b'.' => {
                atom = Some(out.len());
                quantified = false;
                out.push('.');
                i += 1;
            }
            b'[' => {
                let (cls, next) = translate_bracket(re, i + 1)?;
                atom = Some(out.len());
                quantified = false;
                out.push_str(&cls);
                i = next;
            }
            b'(' => {
                groups.push(out.len());
                out.push('(');
                atom = None;
                i += 1;
            }
            b')' => {
                let start = groups.pop().ok_or(BadRegex)?;
                out.push(')');
                atom = Some(start);
                quantified = false;
                i += 1;
            }
            b'|' => {
                out.push('|');
                atom = None;
                i += 1;
            }
            b'^' | b'$' => {
                out.push(c as char);
                atom = None;
                i += 1;
            }
            b'*' | b'+' | b'?' | b'{' => {
                let start = atom.ok_or(BadRegex)?;
                let q = if c == b'{' {
                    let mut j = i + 1;
                    let num = |j: &mut usize| -> Option<u32> {
                        let s = *j;
                        while *j < re.len() && re[*j].is_ascii_digit() {
                            *j += 1;
                        }
                        if s == *j {
                            None
                        } else {
                            std::str::from_utf8(&re[s..*j]).ok()?.parse().ok()
                        }
                    };
                    let lo = num(&mut j).ok_or(BadRegex)?;
                    let q = if re.get(j) == Some(&b',') {
                        j += 1;
                        match num(&mut j) {
                            Some(hi) => {
                                if hi < lo {
                                    return Err(BadRegex);
                                }
                                format!("{{{},{}}}", lo, hi)
                            }
                            None => format!("{{{},}}", lo),
                        }
                    } else {
                        format!("{{{}}}", lo)
                    };
                    if re.get(j) != Some(&b'}') {
                        return Err(BadRegex);
                    }
                    i = j + 1;
                    q
                } else {
                    i += 1;
                    (c as char).to_string()
                };
                if quantified {
                    // POSIX applies a second quantifier to the quantified
                    // atom (`a*?` is `(a*)?`, not a lazy star).
                    out.insert_str(start, "(?:");
                    out.push(')');
                }
                out.push_str(&q);
                quantified = true;
            }
            _ => {
                atom = Some(out.len());
                quantified = false;
                push_byte_lit(&mut out, c);
                i += 1;
            }
        }
    }
    if !groups.is_empty() {
        return Err(BadRegex);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::translate_ere;

    fn rx(re: &str) -> regex::bytes::Regex {
        let t = translate_ere(re.as_bytes()).unwrap();
        regex::bytes::Regex::new(&format!("(?s-u)\\A(?:{})\\z", t)).unwrap()
    }

    #[test]
    fn classes_and_brackets() {
        assert!(rx("[[:space:]]+([[:upper:]]+)").is_match(b" \tFOO"));
        assert!(rx("[]a]+").is_match(b"]a]"));
        assert!(rx("[^a]").is_match(b"\n"));
        assert!(rx("[0-9\\.]+").is_match(b"1.\\2"));
        assert!(rx("[a-]+").is_match(b"-a"));
        assert!(!rx("[^[:alnum:]]").is_match(b"x"));
    }

    #[test]
    fn escapes_and_quantifiers() {
        assert!(rx("\\{}").is_match(b"{}"));
        assert!(rx("\\.\\[\\\\\\(\\)\\*\\+\\?\\|\\^\\$").is_match(b".[\\()*+?|^$"));
        assert!(rx("fo{1,2}").is_match(b"foo"));
        assert!(!rx("fo{1,2}").is_match(b"fooo"));
        assert!(rx("a*?").is_match(b"aaa"));
        assert!(rx(".").is_match(b"\n"));
        assert!(rx("é").is_match("é".as_bytes()));
    }

    #[test]
    fn errors() {
        assert!(translate_ere(b"(.*").is_err());
        assert!(translate_ere(b"a)").is_err());
        assert!(translate_ere(b"*a").is_err());
        assert!(translate_ere(b"[a").is_err());
        assert!(translate_ere(b"[[:foo:]]").is_err());
        assert!(translate_ere(b"a{2,1}").is_err());
        assert!(translate_ere(b"a{").is_err());
        assert!(translate_ere(b"\\d").is_err());
        assert!(translate_ere(b"\\}").is_err());
        assert!(translate_ere(b"\\/").is_err());
    }
}
