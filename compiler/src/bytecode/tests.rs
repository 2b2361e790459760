//! The format's round trip and its refusals.

use super::*;
use crate::parser::{parse, ParseOptions};
use std::rc::Rc;

fn compile(src: &str) -> (Rc<Chunk>, Vec<ParseErr>) {
    let opts = ParseOptions {
        lint_url: crate::parser::LintLevel::Warn,
        ..Default::default()
    };
    let (ast, warnings) = parse(src, "t.nix", "/d", opts).expect("parses");
    let mut globals = FxHashMap::default();
    globals.insert(Symbol::intern("toString"), 0);
    let chunk = crate::compile_file(&ast, &globals, 7, src, "t.nix").unwrap();
    (chunk, warnings)
}

fn without_slot_names(c: &Chunk) -> Chunk {
    let mut c = c.clone();
    c.env_names.clear();
    for k in &mut c.consts {
        if let Const::Chunk(i) = k {
            *i = Rc::new(without_slot_names(i));
        }
    }
    c
}

/// The whole tree of a decoded entry, every stored chunk decoded.
fn whole(stored: &Stored, mut c: Chunk) -> Chunk {
    for k in &mut c.consts {
        if let Const::Stored(at) = *k {
            let inner = stored.chunk(at, c.file).expect("a nested record decodes");
            *k = Const::Chunk(Rc::new(whole(stored, inner)));
        }
    }
    c
}

fn listing(c: &Chunk) -> String {
    crate::disasm::disassemble(c)
}

const SRC: &str = r#"
    let f = { a, b ? a.x or 1, ... }@args: with args; a.y.z + b + c;
        s = rec { p = ./p; q = "s${toString p}"; inherit (s) t; r = 2.5; };
    in [ (f { a = { y.z = 1; }; c = 3; }) s.q (s ? r) http://u (assert s.r == 2.5; -1) ]
"#;

#[test]
fn a_decoded_tree_lists_as_the_compiled_one() {
    let (chunk, warnings) = compile(SRC);
    let bytes = encode(&chunk, &warnings, &[]);
    let (stored, root, w2) = decode(bytes, 0, 7).expect("decodes");
    assert!(
        root.consts.iter().any(|k| matches!(k, Const::Stored(_))),
        "nested chunks stay stored until asked for"
    );
    let back = whole(&stored, root);
    // The same ops, spans, error contexts and constants (symbols print as
    // their names); not the slot names of listings, which the cache does
    // not keep.
    let chunk = without_slot_names(&chunk);
    assert_eq!(listing(&back), listing(&chunk));
    assert_eq!(format!("{back:?}"), format!("{chunk:?}"));
    assert_eq!(w2, warnings);
    assert!(!warnings.is_empty(), "the URL literal warns");
}

#[test]
fn an_entry_may_start_after_a_prefix() {
    let (chunk, warnings) = compile(SRC);
    let mut bytes = b"key".to_vec();
    bytes.extend(encode(&chunk, &warnings, &[]));
    assert!(decode(bytes.clone(), 3, 0).is_some());
    assert!(decode(bytes, 2, 0).is_none());
}

/// `bytes` with its header replaced by `edit`'s, the digest made valid.
fn with_header<'a>(bytes: &'a [u8], edit: impl FnOnce(&mut Header<'a>)) -> Vec<u8> {
    let body = &bytes[MAGIC.len() + 4..];
    let (mut header, recs) = postcard::take_from_bytes::<Header>(body).unwrap();
    edit(&mut header);
    let mut body = postcard::to_allocvec(&header).unwrap();
    body.extend_from_slice(recs);
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn symbols_are_renumbered_by_name_and_files_set() {
    let (chunk, warnings) = compile(SRC);
    let bytes = encode(&chunk, &warnings, &[]);
    // Another interner: names this thread has not seen.
    let renamed: Vec<String> = {
        let body = &bytes[MAGIC.len() + 4..];
        let (h, _) = postcard::take_from_bytes::<Header>(body).unwrap();
        h.names.iter().map(|n| format!("zz_{n}")).collect()
    };
    let bytes = with_header(&bytes, |h| {
        h.names = renamed.iter().map(|s| &s[..]).collect()
    });
    let (stored, root, _) = decode(bytes, 0, 3).unwrap();
    let back = whole(&stored, root);
    assert_eq!(back.file, 3);
    let mut seen = Vec::new();
    each_symbol(&back, &mut |s| seen.push(s.as_str()));
    assert!(seen.iter().all(|n| n.starts_with("zz_")), "{seen:?}");
    assert!(seen.contains(&"zz_a") && seen.contains(&"zz_y"), "{seen:?}");
}

#[test]
fn names_keep_the_order_the_parse_interned_them() {
    let (chunk, warnings) = compile(SRC);
    let order = [
        Symbol::intern("s"),
        Symbol::intern("f"),
        Symbol::intern("a"),
    ];
    let bytes = encode(&chunk, &warnings, &order);
    let (h, _) = postcard::take_from_bytes::<Header>(&bytes[MAGIC.len() + 4..]).unwrap();
    assert_eq!(h.names[..3], ["s", "f", "a"]);
    let mut rest = h.names[3..].to_vec();
    assert!(!rest.contains(&"a"), "each name once");
    rest.dedup();
    assert_eq!(rest.len(), h.names.len() - 3);
}

#[test]
fn damaged_bytes_are_refused_not_trusted() {
    let (chunk, warnings) = compile(SRC);
    let bytes = encode(&chunk, &warnings, &[]);
    assert!(
        decode(bytes[..bytes.len() - 1].to_vec(), 0, 0).is_none(),
        "truncated"
    );
    assert!(
        decode(bytes[..20].to_vec(), 0, 0).is_none(),
        "cut in the digest"
    );
    assert!(decode(Vec::new(), 0, 0).is_none());
    assert!(decode(bytes.clone(), bytes.len() + 1, 0).is_none());
    for i in [0, 9, 45, bytes.len() / 2, bytes.len() - 1] {
        let mut b = bytes.clone();
        b[i] ^= 0x40;
        assert!(decode(b, 0, 0).is_none(), "byte {i} flipped");
    }
    // A valid digest over a header that names a root past the records, or
    // a table too short for the chunks' symbols.
    let b = with_header(&bytes, |h| h.root = u32::MAX);
    assert!(decode(b, 0, 0).is_none(), "root out of range");
    // Symbols are checked as each chunk is decoded.
    let b = with_header(&bytes, |h| h.names.truncate(1));
    let every_chunk = |b| {
        let (stored, root, _) = decode(b, 0, 0)?;
        fn walk(s: &Stored, c: &Chunk) -> Option<()> {
            for k in &c.consts {
                if let Const::Stored(at) = *k {
                    walk(s, &s.chunk(at, 0)?)?;
                }
            }
            Some(())
        }
        walk(&stored, &root)
    };
    assert!(every_chunk(bytes.clone()).is_some());
    assert!(every_chunk(b).is_none(), "symbol out of range");
}

#[test]
fn a_record_may_name_only_earlier_records() {
    // Records with a valid digest, but the root names itself as nested.
    let mut c = Chunk::new(ChunkKind::File, 0, Span::default());
    c.code = vec![Op::Thunk(0), Op::Return];
    c.spans = vec![Span::default(); 2];
    let index = FxHashMap::default();
    let mut enc = Encoder {
        index: &index,
        out: Vec::new(),
    };
    c.consts = vec![Const::Chunk(Rc::new(Chunk::new(
        ChunkKind::Thunk,
        0,
        Span::default(),
    )))];
    let good = enc.chunk(&c);
    let ok = Stored {
        bytes: enc.out.clone(),
        records: 0,
        syms: Box::new([]),
    };
    assert!(ok.chunk(good, 0).is_some());
    // The same record again, now at an offset its constant does not precede.
    let rec = ok.chunk(good, 0).unwrap();
    assert!(matches!(rec.consts[0], Const::Stored(0)));
    let bad = Stored {
        bytes: enc.out[good as usize..].to_vec(),
        records: 0,
        syms: Box::new([]),
    };
    assert!(bad.chunk(0, 0).is_none(), "a record naming itself");
}

#[test]
fn operands_are_checked_against_the_constants() {
    let stored = Const::Stored(0);
    let ok = |code: &[Op], consts: &[Const]| ops::operands_ok(code, consts);
    let r = Op::Return;
    assert!(ok(&[Op::Const(0), r], &[Const::Int(1)]));
    assert!(
        !ok(&[Op::Const(0)], &[Const::Int(1)]),
        "no Return at the end"
    );
    assert!(!ok(&[], &[]), "no ops at all");
    assert!(
        !ok(&[Op::Const(1), r], &[Const::Int(1)]),
        "index out of range"
    );
    let just_stored = std::slice::from_ref(&stored);
    assert!(!ok(&[Op::Const(0), r], just_stored), "a chunk is no value");
    assert!(ok(&[Op::Thunk(0), r], just_stored));
    assert!(!ok(&[Op::Closure(0), r], &[Const::Int(1)]));
    assert!(ok(&[Op::Jump(1), r], &[]), "a jump to the Return");
    assert!(!ok(&[Op::Jump(2), r], &[]), "a jump past the end");
    let u = |n| crate::chunk::U24::new(n).unwrap();
    assert!(!ok(&[Op::AssertEq(0, u(5)), r], &[Const::Text("t".into())]));
    let formals = |default| {
        Const::Formals(FormalsInfo {
            formals: vec![FormalSpec {
                name: Symbol::intern("a"),
                default,
                span: Span::default(),
            }],
            ellipsis: false,
            at_slot: None,
        })
    };
    assert!(ok(&[Op::BindFormals(0), r], &[formals(Some(1)), stored]));
    assert!(!ok(&[Op::BindFormals(0), r], &[formals(Some(2))]));
}

#[test]
fn error_contexts_and_operand_spans_name_ops_of_their_chunk() {
    let decodes = |c: &Chunk| {
        let index = FxHashMap::default();
        let mut enc = Encoder {
            index: &index,
            out: Vec::new(),
        };
        let at = enc.chunk(c);
        let s = Stored {
            bytes: enc.out,
            records: 0,
            syms: Box::new([]),
        };
        s.chunk(at, 0).is_some()
    };
    let mut c = Chunk::new(ChunkKind::File, 0, Span::default());
    c.code = vec![Op::Null, Op::Return];
    c.spans = vec![Span { start: 9, end: 3 }, Span::default()];
    assert!(decodes(&c), "a span that ends before it starts reads back");
    let ctx = |start, end| crate::chunk::ErrCtx {
        start,
        end,
        msg: crate::chunk::CtxMsg::NotArg,
        forced: None,
        except_forced: None,
        at: None,
    };
    c.ctxs = vec![ctx(0, 2)];
    assert!(decodes(&c));
    c.ctxs = vec![ctx(0, 3)];
    assert!(!decodes(&c), "a context past the last op");
    c.ctxs = vec![ctx(2, 1)];
    assert!(!decodes(&c), "a context that ends before it starts");
    c.ctxs.clear();
    c.part_spans = vec![(2, Span::default())];
    assert!(!decodes(&c), "an operand span of no op");
}
