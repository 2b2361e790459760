//! A chunk's error contexts (`nixvm_compiler::chunk::ErrCtx`) and the
//! positions of its `+`/interpolation operands, packed into bytes kept in
//! the chunk's `Body` after its spans. They are read only to build an
//! error's trace, so they are packed like the spans: varints, positions
//! relative to the span of an op nearby (1–2 bytes where 8 would do).
//!
//! A record: zigzag start delta (from the previous record's start), then
//! for an error context its length (never 0: an empty range matches no op),
//! message, flags and the optional parts; for operand positions a length of
//! 0, the count and the spans.

use nixvm_compiler::ast::Span;
use nixvm_compiler::chunk::{CtxMsg, ErrCtx};

// The spans' varints (`proto.rs`), one codec for both.
use super::proto::{get_varint as get, put_varint as put};

const F_FORCED: u8 = 1;
const F_EXCEPT: u8 = 2;
const F_AT: u8 = 4;

/// A decoded record.
pub enum Record {
    Ctx(ErrCtx),
    /// The op's index and where each of its operands begins.
    Parts(u32, Vec<Span>),
}

fn zig(d: i64) -> u32 {
    let d = d as i32;
    ((d << 1) ^ (d >> 31)) as u32
}

fn unzig(z: u32) -> i64 {
    (((z >> 1) as i32) ^ -((z & 1) as i32)) as i64
}

/// A span relative to `base` (an op's span start).
fn put_span(out: &mut Vec<u8>, s: Span, base: u32) {
    put(out, zig(s.start as i64 - base as i64));
    put(out, s.end.saturating_sub(s.start));
}

fn get_span(b: &[u8], at: &mut usize, base: u32) -> Span {
    let start = (base as i64 + unzig(get(b, at))) as u32;
    Span {
        start,
        end: start + get(b, at),
    }
}

/// Pack the records; `parts` lists each operand's span after its op's index
/// (one op's operands together, in order); `spans` are the chunk's op spans.
pub fn encode(ctxs: &[ErrCtx], parts: &[(u32, Span)], spans: &[Span]) -> Vec<u8> {
    if ctxs.is_empty() && parts.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(ctxs.len() * 5 + parts.len() * 3);
    let mut prev = 0i64;
    let base_of = |op: u32| spans.get(op as usize).map_or(0, |s| s.start);
    for c in ctxs.iter().filter(|c| c.end > c.start) {
        put(&mut out, zig(c.start as i64 - prev));
        prev = c.start as i64;
        put(&mut out, c.end - c.start);
        out.push(c.msg as u8);
        let flags = if c.forced.is_some() { F_FORCED } else { 0 }
            | if c.except_forced.is_some() {
                F_EXCEPT
            } else {
                0
            }
            | if c.at.is_some() { F_AT } else { 0 };
        out.push(flags);
        if let Some(k) = c.forced {
            out.push(k);
        }
        if let Some((op, k)) = c.except_forced {
            put(&mut out, zig(op as i64 - c.start as i64));
            out.push(k);
        }
        if let Some(s) = c.at {
            put_span(&mut out, s, base_of(c.end.saturating_sub(1)));
        }
    }
    for ss in parts.chunk_by(|a, b| a.0 == b.0) {
        let op = ss[0].0;
        put(&mut out, zig(op as i64 - prev));
        prev = op as i64;
        put(&mut out, 0);
        put(&mut out, ss.len() as u32);
        for (_, s) in ss {
            put_span(&mut out, *s, base_of(op));
        }
    }
    out
}

/// Unpack the records; `span_of` gives an op's span.
pub fn decode(b: &[u8], span_of: impl Fn(u32) -> Option<Span>) -> Vec<Record> {
    let mut out = Vec::new();
    let (mut at, mut prev) = (0usize, 0i64);
    let base_of = |op: u32| span_of(op).map_or(0, |s| s.start);
    while at < b.len() {
        let start = (prev + unzig(get(b, &mut at))) as u32;
        prev = start as i64;
        let len = get(b, &mut at);
        if len == 0 {
            let n = get(b, &mut at);
            let base = base_of(start);
            let ss = (0..n).map(|_| get_span(b, &mut at, base)).collect();
            out.push(Record::Parts(start, ss));
            continue;
        }
        let end = start + len;
        let msg = CtxMsg::from_u8(b[at]).unwrap_or(CtxMsg::Attribute);
        let flags = b[at + 1];
        at += 2;
        let forced = (flags & F_FORCED != 0).then(|| {
            at += 1;
            b[at - 1]
        });
        let except_forced = (flags & F_EXCEPT != 0).then(|| {
            let op = (start as i64 + unzig(get(b, &mut at))) as u32;
            at += 1;
            (op, b[at - 1])
        });
        let at_span =
            (flags & F_AT != 0).then(|| get_span(b, &mut at, base_of(end.saturating_sub(1))));
        out.push(Record::Ctx(ErrCtx {
            start,
            end,
            msg,
            forced,
            except_forced,
            at: at_span,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_as_they_went() {
        let spans: Vec<Span> = (0..40).map(|i| Span::new(i * 10, i * 10 + 3)).collect();
        let ctxs = vec![
            ErrCtx {
                start: 3,
                end: 9,
                msg: CtxMsg::EqLeft,
                forced: None,
                except_forced: None,
                at: Some(Span::new(31, 35)),
            },
            ErrCtx {
                start: 0,
                end: 1,
                msg: CtxMsg::Attribute,
                forced: Some(1),
                except_forced: Some((30, 0)),
                at: None,
            },
            ErrCtx {
                start: 39,
                end: 40,
                msg: CtxMsg::AddOperand,
                forced: Some(200),
                except_forced: None,
                at: Some(Span::new(0, 100_000)),
            },
        ];
        let parts = vec![
            (12, Span::new(5, 6)),
            (12, Span::new(500, 900)),
            (2, Span::new(7, 7)),
        ];
        let b = encode(&ctxs, &parts, &spans);
        let back = decode(&b, |i| spans.get(i as usize).copied());
        let (mut cs, mut ps) = (Vec::new(), Vec::new());
        for r in back {
            match r {
                Record::Ctx(c) => cs.push(c),
                Record::Parts(op, ss) => ps.push((op, ss)),
            }
        }
        assert_eq!(cs, ctxs);
        assert_eq!(
            ps,
            vec![
                (12, vec![Span::new(5, 6), Span::new(500, 900)]),
                (2, vec![Span::new(7, 7)])
            ]
        );
    }
}
