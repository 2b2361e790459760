//! The interpreter. Nix-to-Nix calls and thunk forcing push heap frames
//! on `frames` instead of recursing on the Rust stack: an instruction that
//! needs a value which is still a thunk pushes the thunk's frame and is
//! re-executed when that frame returns. Builtins that call back into Nix
//! (`force`, `call`) re-enter `run` with a stop depth; those entries are
//! guarded by `stacker` so deep data never overflows the native stack.

use crate::error::*;
use crate::force::type_mismatch;
pub use crate::state::{default_system, Settings, SourceFile, Stats};
use crate::state::{Extensions, Positions};
use crate::value::*;
use crate::value::{Owned, View};
use nixvm_compiler::chunk::{Chunk, ChunkKind, Const, Op};
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub enum FrameKind {
    Call,
    Thunk(Thunk),
}

pub struct Frame {
    /// `proto`'s ops, read at every op without going through the `Proto`.
    code: CodeRef,
    /// Private, and never assigned after the frame is made: `code` points
    /// into it (`Frame::proto` reads it).
    proto: Rc<Proto>,
    pub ip: usize,
    pub env: Env,
    pub base: usize,
    pub kind: FrameKind,
    /// A lambda call, counted against `max-call-depth`.
    pub counted: bool,
    /// Called by native code (a builtin, `Vm::call`), not by a call
    /// instruction: its error trace names no call site.
    pub native_caller: bool,
    /// Where the attribute this frame selected last was defined: a failing
    /// selection's trace names that definition (CppNix's "from the
    /// definition of …").
    pub attr_pos: PosIdx,
}

/// A frame's ops: a pointer into the body of the frame's own `proto`
/// (which lives as long as the frame) and their number. Fetching an op was
/// a chain of four loads (frame, `Proto`, body, its constant count to find
/// the ops) and a third of the loop's samples; from here it is two.
#[derive(Clone, Copy)]
struct CodeRef {
    ops: *const Op,
    len: usize,
}

impl CodeRef {
    fn of(p: &Proto) -> CodeRef {
        let code = p.code();
        CodeRef {
            ops: code.as_ptr(),
            len: code.len(),
        }
    }

    #[inline(always)]
    fn get(self, ip: usize) -> Op {
        assert!(ip < self.len, "an op past the chunk's end");
        // SAFETY: in bounds, and the frame holding this keeps the `Proto`
        // whose ops these are.
        unsafe { *self.ops.add(ip) }
    }
}

/// Push a frame, writing its fields into the vector's slot one by one.
/// `Vec::push` built the frame on the stack with 8-byte stores and copied
/// it with 16-byte loads, which cannot be forwarded from those stores: the
/// copy stalled (65% of `enter_lambda`'s samples on filter/map).
#[inline(always)]
fn push_frame(frames: &mut Vec<Frame>, f: Frame) {
    frames.reserve(1);
    let len = frames.len();
    let Frame {
        code,
        proto,
        ip,
        env,
        base,
        kind,
        counted,
        native_caller,
        attr_pos,
    } = f;
    // SAFETY: `reserve` made room for one more; every field is written
    // before the length covers the slot.
    unsafe {
        let p = frames.as_mut_ptr().add(len);
        std::ptr::addr_of_mut!((*p).code).write(code);
        std::ptr::addr_of_mut!((*p).proto).write(proto);
        std::ptr::addr_of_mut!((*p).ip).write(ip);
        std::ptr::addr_of_mut!((*p).env).write(env);
        std::ptr::addr_of_mut!((*p).base).write(base);
        std::ptr::addr_of_mut!((*p).kind).write(kind);
        std::ptr::addr_of_mut!((*p).counted).write(counted);
        std::ptr::addr_of_mut!((*p).native_caller).write(native_caller);
        std::ptr::addr_of_mut!((*p).attr_pos).write(attr_pos);
        frames.set_len(len + 1);
    }
}

/// How much native stack `run_nested` keeps in hand before growing it.
const RED_ZONE: usize = 256 * 1024;
/// A segment no stack pointer is in: measure first.
const NO_SEGMENT: (usize, usize) = (usize::MAX, 0);

/// About where the native stack pointer is (a local's address).
#[inline(always)]
fn stack_address() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// The current native stack segment as `(lowest usable address, here)`,
/// from what `stacker` knows of it; `NO_SEGMENT` if it knows nothing.
fn stack_segment() -> (usize, usize) {
    let sp = stack_address();
    match stacker::remaining_stack() {
        Some(left) => (sp.saturating_sub(left), sp),
        None => NO_SEGMENT,
    }
}

/// What `Return` needs of the frame it pops.
struct Popped {
    _proto: Rc<Proto>,
    env: Env,
    base: usize,
    kind: FrameKind,
    counted: bool,
}

/// Pop the last frame for `Return`, reading only the fields it needs, one
/// by one: the same stall as `push_frame`'s, the other way. A short frame
/// (`x: x`, a thunk's selection) is popped soon after its fields were
/// written (`ip` at every op), and `Vec::pop` read them back with 16-byte
/// loads (10% of `run_inner`'s samples on foldl', on the load after the
/// pop; reading `proto` and `ip` together was 7% more).
#[inline(always)]
fn pop_return(frames: &mut Vec<Frame>) -> Popped {
    let len = frames.len().checked_sub(1).expect("a frame to pop");
    // SAFETY: the slot at `len` holds a frame; shortening first hands its
    // ownership to the fields read out (each owning field exactly once; the
    // rest are `Copy`).
    unsafe {
        frames.set_len(len);
        let p = frames.as_ptr().add(len);
        Popped {
            _proto: std::ptr::addr_of!((*p).proto).read(),
            env: std::ptr::addr_of!((*p).env).read(),
            base: std::ptr::addr_of!((*p).base).read(),
            kind: std::ptr::addr_of!((*p).kind).read(),
            counted: std::ptr::addr_of!((*p).counted).read(),
        }
    }
}

impl Frame {
    /// The code this frame runs.
    pub fn proto(&self) -> &Rc<Proto> {
        &self.proto
    }

    /// The position of the instruction this frame executed last (the call
    /// it is waiting in, or the one that failed).
    pub fn current_pos(&self) -> Option<Pos> {
        let at = self
            .ip
            .saturating_sub(1)
            .min(self.proto.op_count().saturating_sub(1));
        self.proto.span_at(at).map(|span| Pos {
            file: self.proto.file(),
            span,
        })
    }
    /// Where the frame's function (or file) begins.
    pub fn lambda_pos(&self) -> Pos {
        Pos {
            file: self.proto.file(),
            span: self.proto.span,
        }
    }
}

pub struct Vm {
    pub stack: Vec<Value>,
    pub frames: Vec<Frame>,
    pub files: Vec<Rc<SourceFile>>,
    /// Attribute definition positions (`PosIdx`).
    pub positions: Positions,
    pub globals: Env,
    pub global_names: FxHashMap<Symbol, u16>,
    pub builtins: Value,
    pub import_cache: FxHashMap<PathBuf, Value>,
    pub settings: Settings,
    pub stats: Stats,
    pub(crate) call_depth: usize,
    /// The native stack segment `run_nested` last measured, as the lowest
    /// address it may run down to and the highest it was measured at (see
    /// `run_nested`).
    stack_seg: (usize, usize),
    pub warnings: Vec<String>,
    /// What builtin families keep between calls (fetch caches, helpers).
    pub ext: Extensions,
    /// Store objects this evaluation made in memory (`.drv`s, `toFile` texts).
    pub registry: crate::storeglue::Registry,
    /// Fetched paths kept outside the store in read-only evaluation.
    pub fetch_area: crate::storeglue::FetchArea,
    /// `builtins.path`/`toFile` results already computed, by input key.
    pub store_cache: FxHashMap<String, String>,
    pub store: Option<std::rc::Rc<dyn crate::StoreBackend>>,
    /// Attribute names as Nix strings, by symbol id: `mapAttrs` and friends
    /// hand the same name to many calls, and one shared string serves them all.
    name_strings: Vec<Option<Value>>,
    /// Search-path entries found missing (CppNix warns once for each).
    pub(crate) missing_search_paths: rustc_hash::FxHashSet<String>,
    /// Heap censuses taken during evaluation (`--heap-census`), if asked for.
    pub census: crate::census::Schedule,
    /// One `[]` and one `{}` shared by every literal that makes them.
    empty_list: Value,
    empty_attrs: Value,
    /// When the cycle collector runs next, and what it has done.
    pub gc: crate::cycles::GcState,
    /// Who watches the interpreter run, if anyone (`--stats`, `--trace-ops`).
    pub observer: Option<Box<dyn crate::observe::Observer>>,
    /// What evaluation reads files through (see `io`).
    pub fs: Rc<dyn crate::io::FileSystem>,
    /// Set from another thread to stop the evaluation (see `check_depth`).
    pub interrupt: crate::error::Interrupt,
    /// Where `trace`, `warn` and warnings go; stderr when unset.
    pub logger: Option<crate::error::Logger>,
    /// Writes the bytecode cache's new entries (see `codecache`).
    pub code_cache: crate::codecache::Writer,
    /// The part of cache keys that is the same for every file, once made
    /// (made again when the root env's names are set).
    pub(crate) cache_key: Option<crate::codecache::KeyBase>,
    /// The chunks of files read from (or written to) the cache, by file:
    /// nested chunks are decoded and linked when first used (`link_stored`).
    stored: FxHashMap<u32, (nixvm_compiler::bytecode::Stored, PathBuf)>,
    /// Large lists that died as builtins' arguments, not freed yet.
    pub graveyard: crate::graveyard::Graveyard,
    /// The blocks of envs and thunks. Declared last: it is dropped after
    /// everything that may hold them.
    pub heap: crate::heap::Heap,
}

macro_rules! force_slot {
    ($self:ident, $fi:expr, $idx:expr) => {{
        let idx = $idx;
        if let View::Thunk(t) = &$self.stack[idx].view() {
            let t = t.clone();
            match $self.demand(&t) {
                Ok(Some(v)) => $self.stack[idx] = v,
                Ok(None) => {
                    $self.frames[$fi].ip -= 1;
                    continue;
                }
                Err(e) => return Err(forced_error(e, $self.stack.len() - 1 - idx)),
            }
        }
    }};
}

/// A dynamic attribute name of a selection (the one op `op` takes, among the
/// chunk's error contexts `ctxs`) as CppNix shows one it cannot name:
/// `"${e}"`, with `e` as written.
fn dynamic_name_text(proto: &Proto, ctxs: &[nixvm_compiler::chunk::ErrCtx], op: u32) -> String {
    use nixvm_compiler::chunk::CtxMsg;
    let span = ctxs
        .iter()
        .find(|c| c.msg == CtxMsg::AttrName && c.forced == Some(0) && c.start == op)
        .and_then(|c| c.at);
    let text = span.and_then(|s| {
        let t = proto.source.text();
        t.get(s.start as usize..s.end as usize).map(str::to_string)
    });
    format!("\"${{{}}}\"", text.unwrap_or_default())
}

/// An error of forcing the operand `from_top` places below the top of the
/// stack: that operand's error contexts apply to it.
#[cold]
fn forced_error(mut e: Box<EvalError>, from_top: usize) -> Box<EvalError> {
    e.forced = u8::try_from(from_top).ok();
    e
}

impl Vm {
    /// A machine with no global names: `builtins::install` (which the
    /// `Evaluator` builder calls) defines them.
    pub fn new(settings: Settings) -> Vm {
        let heap = crate::heap::Heap::new();
        let gc = crate::cycles::GcState::new(&settings);
        Vm {
            stack: Vec::with_capacity(1024),
            frames: Vec::with_capacity(256),
            files: Vec::new(),
            positions: Positions::default(),
            globals: Env::new(&heap, None, 0),
            global_names: FxHashMap::default(),
            builtins: Value::Null,
            import_cache: FxHashMap::default(),
            settings,
            stats: Stats::default(),
            call_depth: 0,
            stack_seg: NO_SEGMENT,
            warnings: Vec::new(),
            ext: Extensions::default(),
            registry: Default::default(),
            fetch_area: Default::default(),
            store_cache: FxHashMap::default(),
            store: None,
            name_strings: Vec::new(),
            missing_search_paths: Default::default(),
            census: Default::default(),
            empty_list: Value::list(Vec::new()),
            empty_attrs: Value::attrs(Attrs::new()),
            gc,
            observer: None,
            interrupt: crate::error::Interrupt::default(),
            fs: Rc::new(crate::io::RealFs),
            logger: None,
            code_cache: Default::default(),
            cache_key: None,
            stored: FxHashMap::default(),
            graveyard: Default::default(),
            heap,
        }
    }

    /// Every value the machine holds outside its frames and its globals env:
    /// the value stack, `builtins`, the import cache, shared name strings and
    /// empties, and what builtin families keep (`Extensions`).
    pub fn roots(&self, f: &mut dyn FnMut(&Value)) {
        self.stack.iter().for_each(&mut *f);
        f(&self.builtins);
        self.import_cache.values().for_each(&mut *f);
        self.name_strings.iter().flatten().for_each(&mut *f);
        f(&self.empty_list);
        f(&self.empty_attrs);
        self.ext.roots(f);
    }

    /// The bytecode cache entries whose chunks are linked as they are used.
    pub(crate) fn stored_entries(&self) -> impl Iterator<Item = &nixvm_compiler::bytecode::Stored> {
        self.stored.values().map(|(s, _)| s)
    }

    /// Where a `PosIdx` points.
    pub fn pos(&self, p: PosIdx) -> Option<Pos> {
        self.positions.get(p)
    }

    /// The name of `sym` as a (shared) string value.
    pub fn name_string(&mut self, sym: Symbol) -> Value {
        let i = sym.id() as usize;
        if i >= self.name_strings.len() {
            self.name_strings.resize(i + 1, None);
        }
        self.name_strings[i]
            .get_or_insert_with(|| Value::str(sym.as_str()))
            .clone()
    }

    pub fn add_file(&mut self, name: String, src: Rc<str>) -> u32 {
        self.add_file_raw(name, src, false)
    }

    /// `add_file` for a text decoded by `rawsrc::decode_source` (`raw` = it had invalid bytes).
    pub fn add_file_raw(&mut self, name: String, src: Rc<str>, raw: bool) -> u32 {
        self.push_file(SourceFile::new(name, src, raw))
    }

    fn push_file(&mut self, mut f: SourceFile) -> u32 {
        f.index = self.files.len() as u32;
        self.files.push(Rc::new(f));
        (self.files.len() - 1) as u32
    }

    // ---- linking -------------------------------------------------------

    /// Turn a compiled chunk (and the chunks nested in its constants) into a
    /// `Proto`. Chunks nest as deeply as the source, so a deep tree moves to
    /// a fresh stack segment rather than overflow.
    pub fn link(&mut self, chunk: &Chunk) -> Rc<Proto> {
        stacker::maybe_grow(256 * 1024, 4 * 1024 * 1024, || self.link_inner(chunk))
    }

    /// Link the nested chunk that constant `c` of `owner` names, if it is
    /// still in its file's cache entry, and put it in the constant's place.
    #[cold]
    #[inline(never)]
    fn link_stored(&mut self, owner: &Rc<Proto>, c: u32) -> EvalResult<()> {
        let k = &owner.consts()[c as usize];
        let CView::Stored(at) = k.view() else {
            return Ok(());
        };
        let file = owner.file();
        let t = std::time::Instant::now();
        let entry = self.stored.get(&file);
        let Some(chunk) = entry.and_then(|(s, _)| s.chunk(at, file)) else {
            let path = entry.map(|(_, p)| p.display().to_string());
            return Err(EvalError::new(
                ErrorKind::Other,
                format!(
                    "the bytecode cache's entry '{}' for '{}' does not decode (remove it, or \
                     set NIXVM_BYTECODE_CACHE=0)",
                    path.unwrap_or_default(),
                    owner.source.name
                ),
            ));
        };
        let p = self.link(&chunk);
        k.link(p);
        self.stats.link_time += t.elapsed();
        Ok(())
    }

    fn link_inner(&mut self, chunk: &Chunk) -> Rc<Proto> {
        self.stats.chunks_linked += 1;
        let source = self.files[chunk.file as usize].clone();
        let raw = source.raw;
        let consts: Vec<Constant> = chunk
            .consts
            .iter()
            .map(|c| match c {
                Const::Int(n) => PConst::Value(Value::Int(*n)),
                Const::Float(f) => PConst::Value(Value::Float(*f)),
                Const::Str(s) if raw => PConst::Value(Value::bytes(
                    nixvm_compiler::rawsrc::to_raw_bytes(s).into_owned(),
                    None,
                )),
                Const::Str(s) => PConst::Value(Value::str(s)),
                Const::Path(p) => PConst::Value(Value::path(p)),
                Const::Chunk(c) => PConst::Proto(self.link(c)),
                Const::Stored(at) => PConst::Stored(*at),
                Const::Syms(s) => PConst::Syms(s.clone()),
                Const::AttrNames(s, sp) => {
                    let names: Vec<_> = (s.iter().zip(sp.iter()))
                        .map(|(&name, &sp)| (name, self.positions.push(chunk.file, sp)))
                        .collect();
                    // Sorted by the ids of the compiling process (see PConst).
                    if s.is_sorted() {
                        PConst::AttrNames(names)
                    } else {
                        PConst::AttrNamesUnsorted(names)
                    }
                }
                Const::Withs(w) => PConst::Withs(w.clone()),
                Const::Formals(f) => PConst::Formals(Rc::new(f.clone())),
                Const::Text(t) => PConst::Text(t.clone()),
            })
            .map(Constant::new)
            .collect();
        Rc::new(Proto::new(
            chunk.kind,
            chunk.name,
            source,
            chunk.span,
            Body::new(
                &chunk.code,
                &chunk.spans,
                &crate::value::errctx::encode(&chunk.ctxs, &chunk.part_spans, &chunk.spans),
                consts,
            ),
            chunk.nslots,
            chunk.kind == ChunkKind::Thunk && crate::speculate::eligible(&chunk.code),
        ))
    }

    pub fn parse_options_pub(&self) -> nixvm_compiler::ParseOptions {
        self.parse_options()
    }

    fn parse_options(&self) -> nixvm_compiler::ParseOptions {
        nixvm_compiler::ParseOptions {
            pipe_operators: self.settings.pipe_operators,
            lint_absolute_path: self.settings.lint_absolute_path,
            lint_short_path: self.settings.lint_short_path,
            lint_url: self.settings.lint_url,
            pure_eval: self.settings.pure_eval,
            home: std::env::var("HOME").ok(),
        }
    }

    /// Parse and compile source text into a thunk of its value.
    pub fn compile_source(&mut self, src: &str, name: &str, base_dir: &str) -> EvalResult<Value> {
        self.compile_text(src, false, name, base_dir, None)
    }

    /// `compile_source` for source bytes, which need not be UTF-8: string literals keep
    /// the file's raw bytes, as in CppNix (see `nixvm_compiler::rawsrc`).
    pub fn compile_bytes(
        &mut self,
        bytes: Vec<u8>,
        name: &str,
        base_dir: &str,
    ) -> EvalResult<Value> {
        let (src, raw) = nixvm_compiler::rawsrc::decode_source(bytes);
        self.compile_text(&src, raw, name, base_dir, None)
    }

    /// Compile source text. With `reread` (where the text's file is), the
    /// text is not kept once compiled (see `SourceFile`).
    fn compile_text(
        &mut self,
        src: &str,
        raw: bool,
        name: &str,
        base_dir: &str,
        reread: Option<std::path::PathBuf>,
    ) -> EvalResult<Value> {
        let (name_s, text) = (name.to_string(), Rc::from(src));
        let from_disk = reread.is_some();
        let file = self.push_file(match reread {
            Some(p) => SourceFile::from_disk(name_s, text, raw, p),
            None => SourceFile::new(name_s, text, raw),
        });
        self.stats.files_compiled += from_disk as u64;
        // Only files (not strings, whose text is all there is) go to the cache.
        let t0 = std::time::Instant::now();
        let cache_entry = match (from_disk, &self.settings.bytecode_cache) {
            (true, Some(dir)) => {
                if self.cache_key.is_none() {
                    let opts = self.parse_options();
                    let base = crate::codecache::KeyBase::new(&opts, &self.global_names);
                    self.cache_key = Some(base);
                }
                let base = self.cache_key.as_ref().expect("made above");
                let inputs = crate::codecache::Inputs {
                    src,
                    raw,
                    name,
                    base_dir,
                };
                Some(crate::codecache::entry_path(dir, base, &inputs))
            }
            _ => None,
        };
        let cached = cache_entry
            .as_deref()
            .and_then(|p| crate::codecache::load(p, file));
        self.stats.cache_time += t0.elapsed();
        let (chunk, stored) = match cached {
            Some((stored, chunk, warnings)) => {
                self.stats.cache_hits += 1;
                self.parse_warnings(file, &warnings);
                (Rc::new(chunk), Some(stored))
            }
            None => {
                // What the parse interns, in order, goes with the entry (see
                // `symbol::recording`).
                let (r, interned) = match cache_entry {
                    Some(_) => nixvm_compiler::symbol::recording(|| {
                        self.parse_and_compile(file, src, name, base_dir)
                    }),
                    None => (
                        self.parse_and_compile(file, src, name, base_dir),
                        Vec::new(),
                    ),
                };
                let (chunk, warnings) = r?;
                match &cache_entry {
                    // The entry just made serves this evaluation as a read
                    // one would: chunks are linked as they are used.
                    Some(p) => {
                        let t = std::time::Instant::now();
                        let bytes = crate::codecache::entry_bytes(p, &chunk, &warnings, &interned);
                        self.code_cache.store(p, bytes.clone());
                        let back = crate::codecache::decode(p, bytes, file);
                        self.stats.cache_time += t.elapsed();
                        match back {
                            Some((stored, root, _)) => (Rc::new(root), Some(stored)),
                            None => (chunk, None),
                        }
                    }
                    None => (chunk, None),
                }
            }
        };
        if let (Some(stored), Some(path)) = (stored, cache_entry) {
            self.stored.insert(file, (stored, path));
        }
        let t2 = std::time::Instant::now();
        let proto = self.link(&chunk);
        self.stats.link_time += t2.elapsed();
        if self.fs.rereadable() {
            self.files[file as usize].forget_text();
        }
        self.stats.thunks_created += 1;
        Ok(Value::Thunk(Thunk::pending(
            &self.heap,
            proto,
            self.globals.clone(),
        )))
    }

    /// Parse and compile a file's text (see `compile_text`), printing the
    /// parser's warnings; the chunk tree and those warnings.
    fn parse_and_compile(
        &mut self,
        file: u32,
        src: &str,
        name: &str,
        base_dir: &str,
    ) -> EvalResult<(Rc<Chunk>, Vec<nixvm_compiler::ParseErr>)> {
        let t0 = std::time::Instant::now();
        let (ast, warnings) = nixvm_compiler::parse(src, name, base_dir, self.parse_options())
            .map_err(|e| {
                EvalError::located(ErrorKind::Parse, e.msg, Some(Pos { file, span: e.span }))
            })?;
        self.parse_warnings(file, &warnings);
        let t1 = std::time::Instant::now();
        self.stats.parse_time += t1 - t0;
        let chunk = nixvm_compiler::compile_file(&ast, &self.global_names, file, src, name)
            .map_err(|e| {
                let kind = if e.msg.starts_with("undefined variable") {
                    ErrorKind::UndefinedVar
                } else {
                    ErrorKind::Parse
                };
                EvalError::located(kind, e.msg, Some(Pos { file, span: e.span }))
            })?;
        drop(ast);
        self.stats.compile_time += t1.elapsed();
        Ok((chunk, warnings))
    }

    fn parse_warnings(&mut self, file: u32, warnings: &[nixvm_compiler::ParseErr]) {
        for w in warnings {
            let pos = Pos { file, span: w.span };
            if w.plain {
                let at = self.show_pos(pos);
                let _ = self.warn(format!("at {at}: {}", w.msg));
            } else {
                self.warn_at(w.msg.clone(), Some(pos));
            }
        }
    }

    /// A plain warning, as CppNix's logger prints one (`warning: MSG`).
    pub fn warn(&mut self, msg: String) -> EvalResult<()> {
        let text = format!("warning: {}\n", msg);
        self.log(crate::error::LogLevel::Warning, msg, text);
        Ok(())
    }

    /// A progress message (CppNix's `printInfo`), as a line.
    pub fn info(&mut self, msg: String) {
        let text = format!("{}\n", msg);
        self.log(crate::error::LogLevel::Info, msg, text);
    }

    /// A message for the embedder's logger, or for stderr as `rendered`
    /// (CppNix's layout, ending in a newline).
    pub fn log(&mut self, level: crate::error::LogLevel, message: String, rendered: String) {
        match self.logger.as_mut() {
            Some(f) => f(&crate::error::LogMessage {
                level,
                message,
                rendered,
            }),
            None => crate::report::stderr_text(&rendered),
        }
    }

    /// A warning with CppNix's error layout: its position and source excerpt
    /// under the message (a parser lint).
    pub fn warn_at(&mut self, msg: String, pos: Option<Pos>) {
        let e = EvalError::located(ErrorKind::Other, msg, pos);
        let text = crate::report::render_level(self, "warning", &e, false, false);
        self.log(crate::error::LogLevel::Warning, e.msg, text);
    }

    /// `builtins.warn`: "evaluation warning:", not indented under the prefix
    /// when the message starts on a new line; with abort-on-warn the
    /// evaluation then stops (an error `tryEval` does not catch).
    pub fn eval_warn(&mut self, msg: String) -> EvalResult<()> {
        let no_indent = msg.starts_with('\n');
        let e = EvalError::new(ErrorKind::Other, msg);
        let text = crate::report::render_level(self, "evaluation warning", &e, false, no_indent);
        self.log(crate::error::LogLevel::EvalWarning, e.msg, text);
        if self.settings.abort_on_warn {
            return Err(EvalError::new(
                ErrorKind::Abort,
                "aborting to reveal stack trace of warning, as abort-on-warn is set",
            ));
        }
        Ok(())
    }

    pub fn line_col(&self, pos: Pos) -> (usize, usize) {
        self.files[pos.file as usize].line_col(pos.span.start)
    }

    pub fn show_pos(&self, pos: Pos) -> String {
        self.files[pos.file as usize].describe(pos.span)
    }

    /// Whether `path` (a logical path, which may be in the store) is a
    /// directory, following symbolic links.
    pub fn is_dir(&self, path: &Path) -> bool {
        let physical = crate::storeglue::physical_path(self, &path.to_string_lossy());
        matches!(
            self.fs.kind(&physical, true),
            Ok(crate::io::FileKind::Directory)
        )
    }

    /// Evaluate a file (memoised per path, as `import` requires).
    pub fn import_path(&mut self, path: &Path) -> EvalResult<Value> {
        let mut path = path.to_path_buf();
        if self.is_dir(&path) {
            path.push("default.nix");
        }
        if let Some(v) = self.import_cache.get(&path) {
            return Ok(v.clone());
        }
        if let Some(src) = crate::corepkgs::source(&path.to_string_lossy()) {
            let v = self.compile_source(src, &format!("«nix-internal»{}", path.display()), "/")?;
            self.import_cache.insert(path, v.clone());
            return Ok(v);
        }
        let (bytes, base, physical) = self.read_source_file(&path)?;
        let name = path.to_string_lossy().into_owned();
        let (src, raw) = nixvm_compiler::rawsrc::decode_source(bytes);
        let v = self.compile_text(&src, raw, &name, &base, Some(physical))?;
        self.import_cache.insert(path, v.clone());
        Ok(v)
    }

    /// The bytes of a Nix file to import (fetched store paths are read where their bytes
    /// are) and the directory its relative paths resolve against.
    fn read_source_file(&self, path: &Path) -> EvalResult<(Vec<u8>, String, PathBuf)> {
        crate::storeglue::check_access(self, &path.to_string_lossy())?;
        let physical = crate::storeglue::physical_path(self, &path.to_string_lossy());
        let bytes = (self.fs.read(&physical))
            .map_err(|e| EvalError::new(ErrorKind::Io, read_error(&path.to_string_lossy(), &e)))?;
        let base = path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        Ok((bytes, base, physical))
    }

    /// `scopedImport`: the file sees the attributes of `scope` as
    /// variables that shadow the builtins. Not cached, as in CppNix.
    pub fn scoped_import(&mut self, scope: &Attrs, path: &Path) -> EvalResult<Value> {
        let mut path = path.to_path_buf();
        if self.is_dir(&path) {
            path.push("default.nix");
        }
        let (bytes, base, _) = self.read_source_file(&path)?;
        let (src, raw) = nixvm_compiler::rawsrc::decode_source(bytes);
        let name = path.to_string_lossy().into_owned();
        let mut names = self.global_names.clone();
        let mut values: Vec<Value> = (0..self.globals.len())
            .map(|i| self.globals.get(i))
            .collect();
        for (k, v) in scope.iter() {
            match names.get(&k) {
                Some(&i) => values[i as usize] = v.clone(),
                None => {
                    names.insert(k, values.len() as u16);
                    values.push(v.clone());
                }
            }
        }
        let file = self.add_file_raw(name.clone(), Rc::from(src.as_str()), raw);
        let (ast, _) =
            nixvm_compiler::parse(&src, &name, &base, self.parse_options()).map_err(|e| {
                EvalError::located(ErrorKind::Parse, e.msg, Some(Pos { file, span: e.span }))
            })?;
        let chunk = nixvm_compiler::compile_file(&ast, &names, file, &src, &name).map_err(|e| {
            EvalError::located(
                ErrorKind::UndefinedVar,
                e.msg,
                Some(Pos { file, span: e.span }),
            )
        })?;
        let proto = self.link(&chunk);
        Ok(Value::Thunk(Thunk::pending(
            &self.heap,
            proto,
            Env::with_values(&self.heap, None, values),
        )))
    }

    // ---- forcing and calling -------------------------------------------

    /// Start forcing `t`: its value if already known, otherwise push its
    /// frame and return None (the caller retries once the frame returns).
    #[inline]
    fn demand(&mut self, t: &Thunk) -> EvalResult<Option<Value>> {
        match t.begin() {
            Begin::Done(v) => Ok(Some(v)),
            Begin::Code(p, env) => {
                self.stats.thunks_forced += 1;
                let base = self.stack.len();
                push_frame(
                    &mut self.frames,
                    Frame {
                        code: CodeRef::of(&p),
                        proto: p,
                        ip: 0,
                        env,
                        base,
                        kind: FrameKind::Thunk(t.clone()),
                        counted: false,
                        native_caller: false,
                        attr_pos: PosIdx::NONE,
                    },
                );
                Ok(None)
            }
            Begin::App(f, x, y) => {
                self.stats.thunks_forced += 1;
                self.begin_app(t, f, x, y).map_err(|mut e| {
                    t.fail(&e);
                    if e.memo.len() < MAX_TRACE {
                        e.memo.push(Value::Thunk(t.clone()));
                    }
                    e
                })
            }
            Begin::Failed(e) => Err(e),
            Begin::Blackhole => {
                let mut e = EvalError::new(
                    ErrorKind::InfiniteRecursion,
                    "infinite recursion encountered",
                );
                e.blackhole = t.as_ptr() as usize;
                Err(e)
            }
        }
    }

    fn begin_app(
        &mut self,
        t: &Thunk,
        f: Value,
        x: Value,
        y: Option<Value>,
    ) -> EvalResult<Option<Value>> {
        // CppNix applies a builtin's lazy application at the position of the
        // function it began with (a lambda's): an application of what is not
        // a function is reported there.
        let root = match &f.view() {
            View::Lambda(c) => Some(Pos {
                file: c.proto.file(),
                span: c.proto.span,
            }),
            _ => None,
        };
        let two = y.is_some();
        let (f, x) = match y {
            None => (self.force(f)?, x),
            Some(y) => (self.call(f, x)?, y),
        };
        let f = self.force(f)?;
        let frames = self.frames.len();
        let r = self.apply(f, x, FrameKind::Thunk(t.clone())).map_err(|e| {
            let at_call = matches!(e.kind, ErrorKind::Type | ErrorKind::StackOverflow);
            if e.pos.is_none() && at_call && e.trace.is_empty() {
                e.with_pos(root)
            } else {
                e
            }
        });
        let r = r?;
        if two && self.frames.len() > frames {
            // The second application's frame names no call site (see the
            // unwinder).
            self.frames.last_mut().expect("pushed").native_caller = true;
        }
        match r {
            Some(v) => {
                let v = self.force(v)?;
                t.set(v.clone());
                Ok(Some(v))
            }
            None => Ok(None),
        }
    }

    /// Force a value to weak head normal form.
    #[inline]
    pub fn force(&mut self, v: Value) -> EvalResult<Value> {
        // A tag test, not `unpack`: most values are not thunks, and taking
        // one apart and packing it again was a switch each way.
        if let Some(t) = v.as_thunk() {
            if let Some(done) = t.done() {
                return Ok(done);
            }
            return self.force_thunk(t);
        }
        Ok(v)
    }

    fn force_thunk(&mut self, t: &Thunk) -> EvalResult<Value> {
        let stop = self.frames.len();
        match self.demand(t)? {
            Some(v) => Ok(v),
            None => {
                self.run_nested(stop)?;
                Ok(t.done().expect("thunk frame stored its value"))
            }
        }
    }

    /// Run the loop again from native code (a builtin forcing or calling),
    /// on a stack grown first if less than `RED_ZONE` is left. Asking
    /// `stacker` each time (a thread-local and a call to read the stack
    /// pointer) was a few percent of `map`/`foldl'` over a million items,
    /// so the segment it measured is kept: while the stack pointer is in
    /// it, with the red zone to spare, the loop is entered directly. Any
    /// other stack (a segment that `stacker` switched to elsewhere, such
    /// as under `==`) lies outside it and is measured again; whatever grows
    /// the stack around code that may come back here does so through
    /// `grow_stack`, which puts the kept segment back afterwards.
    #[inline]
    fn run_nested(&mut self, stop: usize) -> EvalResult<()> {
        let sp = stack_address();
        let (floor, top) = self.stack_seg;
        if sp <= top && sp >= floor.saturating_add(RED_ZONE) {
            return self.run(stop);
        }
        self.run_nested_slow(stop)
    }

    /// `stacker::maybe_grow` for native recursion that may re-enter the
    /// loop (equality, coercion, printing, `deepSeq`, JSON, XML). The
    /// segment `run_nested` keeps is put back afterwards: one measured on a
    /// segment grown here would outlive it, and a later segment mapped over
    /// part of the range could pass for one with room to spare.
    pub(crate) fn grow_stack<R>(
        &mut self,
        red_zone: usize,
        size: usize,
        f: impl FnOnce(&mut Vm) -> R,
    ) -> R {
        let saved = self.stack_seg;
        let r = stacker::maybe_grow(red_zone, size, || f(self));
        self.stack_seg = saved;
        r
    }

    #[inline(never)]
    fn run_nested_slow(&mut self, stop: usize) -> EvalResult<()> {
        let here = stack_segment();
        let r = stacker::maybe_grow(RED_ZONE, 4 * 1024 * 1024, || {
            // On the stack `stacker` chose: this one, or a new segment.
            self.stack_seg = stack_segment();
            self.run(stop)
        });
        self.stack_seg = here;
        r
    }

    /// Call `f` with one argument and return the result in WHNF.
    pub fn call(&mut self, f: Value, arg: Value) -> EvalResult<Value> {
        let f = self.force(f)?;
        let stop = self.frames.len();
        match self.apply(f, arg, FrameKind::Call)? {
            Some(v) => self.force(v),
            None => {
                if let Some(f) = self.frames.last_mut() {
                    f.native_caller = true;
                }
                self.run_nested(stop)?;
                Ok(self.stack.pop().expect("call result"))
            }
        }
    }

    /// `f a b`. A curried lambda `a: b: body` (`foldl'`'s and `sort`'s
    /// usual argument), whose outer body only makes the inner closure, gets
    /// its first argument's env and then the inner call at once: the same
    /// calls, envs and depth checks as two calls, without making and
    /// dropping the intermediate closure or running the loop for it.
    pub fn call2(&mut self, f: Value, a: Value, b: Value) -> EvalResult<Value> {
        let f = self.force(f)?;
        if let View::Lambda(cl) = &f.view() {
            if let (false, &[Op::Closure(c), Op::Return]) =
                (cl.proto.has_formals(), cl.proto.code())
            {
                if cl.proto.consts()[c as usize].is_stored() {
                    self.link_stored(&cl.proto, c)?;
                }
                let CView::Proto(inner) = cl.proto.consts()[c as usize].view() else {
                    unreachable!("proto constant")
                };
                let inner = inner.clone();
                crate::cycles::maybe_collect(self);
                self.check_depth()?;
                self.stats.calls += 1;
                self.stats.envs += 1;
                let env = Env::new(&self.heap, Some(cl.env.clone()), cl.proto.nslots as usize);
                env.set(0, a);
                let stop = self.frames.len();
                self.enter_lambda(inner, &env, b, FrameKind::Call)?;
                drop(env);
                self.frames.last_mut().expect("pushed").native_caller = true;
                self.run_nested(stop)?;
                return Ok(self.stack.pop().expect("call result"));
            }
        }
        let g = self.call(f, a)?;
        self.call(g, b)
    }

    /// A call (of a lambda or a builtin) one deeper would pass `max-call-depth`.
    /// Every call (of a lambda or a builtin) passes here: the depth bound,
    /// and an interrupt asked for from another thread (one relaxed load).
    #[inline]
    fn check_depth(&self) -> EvalResult<()> {
        if self.call_depth > self.settings.max_call_depth || self.interrupt.is_set() {
            return Err(self.depth_error());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn depth_error(&self) -> Box<EvalError> {
        if self.interrupt.is_set() {
            // CppNix's `Interrupted`: "interrupted by the user".
            return EvalError::new(ErrorKind::Interrupted, "interrupted by the user");
        }
        EvalError::new(
            ErrorKind::StackOverflow,
            "stack overflow; max-call-depth exceeded",
        )
    }

    /// Push the frame of a call of lambda `proto` closing over `parent`
    /// (the argument in its env, or on the stack for its formals to bind).
    fn enter_lambda(
        &mut self,
        proto: Rc<Proto>,
        parent: &Env,
        arg: Value,
        kind: FrameKind,
    ) -> EvalResult<()> {
        crate::cycles::maybe_collect(self);
        self.check_depth()?;
        self.call_depth += 1;
        self.stats.calls += 1;
        let env = Env::new(&self.heap, Some(parent.clone()), proto.nslots as usize);
        self.stats.envs += 1;
        let base = self.stack.len();
        if proto.has_formals() {
            self.stack.push(arg);
        } else {
            env.set(0, arg);
        }
        push_frame(
            &mut self.frames,
            Frame {
                code: CodeRef::of(&proto),
                proto,
                ip: 0,
                env,
                base,
                kind,
                counted: true,
                native_caller: false,
                attr_pos: PosIdx::NONE,
            },
        );
        Ok(())
    }

    /// Apply a forced function value. Returns the result if it is
    /// available at once, or None after pushing a frame that delivers it
    /// according to `kind`.
    pub fn apply(&mut self, f: Value, arg: Value, kind: FrameKind) -> EvalResult<Option<Value>> {
        match f.unpack() {
            Owned::Lambda(cl) => {
                self.enter_lambda(cl.proto.clone(), &cl.env, arg, kind)?;
                Ok(None)
            }
            Owned::PrimOp(p) => {
                if p.arity == 1 {
                    let mut args = [arg];
                    Ok(Some(self.call_prim(&p, &mut args)?))
                } else {
                    Ok(Some(Value::PrimOpApp(Rc::new(PrimOpApp {
                        prim: p,
                        args: vec![arg],
                    }))))
                }
            }
            Owned::PrimOpApp(app) => {
                // The last handle of a partial application gives its
                // arguments up rather than copying them.
                let (prim, mut args) = match Rc::try_unwrap(app) {
                    Ok(PrimOpApp { prim, args }) => (prim, args),
                    Err(app) => (app.prim.clone(), app.args.clone()),
                };
                args.push(arg);
                if args.len() == prim.arity {
                    Ok(Some(self.call_prim(&prim, &mut args)?))
                } else {
                    Ok(Some(Value::PrimOpApp(Rc::new(PrimOpApp { prim, args }))))
                }
            }
            Owned::Attrs(a) if a.contains(known::FUNCTOR) => {
                let functor = a.get(known::FUNCTOR).expect("checked").clone();
                let partial = self.call(functor, Value::Attrs(a.clone()))?;
                self.apply(partial, arg, kind)
            }
            other => {
                let other = Value::from(other);
                Err(EvalError::new(
                    ErrorKind::Type,
                    format!(
                        "attempt to call something which is not a function but {}: {}",
                        other.show_type(),
                        self.show_value_short(&other)
                    ),
                ))
            }
        }
    }

    fn call_prim(&mut self, p: &Rc<PrimOp>, args: &mut [Value]) -> EvalResult<Value> {
        self.stats.primop_calls += 1;
        if let Some(o) = self.observer.as_mut() {
            o.builtin(&p.name);
        }
        // A builtin's call counts against max-call-depth as a lambda's does
        // (CppNix's callFunction), so what it recurses into runs one deeper.
        self.check_depth()?;
        self.call_depth += 1;
        let r = match &p.imp {
            PrimImpl::Native(f) => f(self, args),
            PrimImpl::Dyn(f) => {
                let f = f.clone();
                f(self, args)
            }
        };
        self.call_depth -= 1;
        if r.is_ok() {
            for a in args.iter_mut() {
                self.graveyard.offer(a);
            }
        }
        r.map_err(|mut e| {
            // CppNix gives a builtin's errors the builtin's position, which is
            // none; the call site goes on this frame (see `call_site`).
            e.settled = true;
            e.site_pending = false;
            // addErrorContext's own frame would only repeat what it adds.
            if &*p.name != "addErrorContext" && e.trace.len() < crate::error::MAX_TRACE {
                e.trace.push(TraceEntry::new(
                    format!("while calling the '{}' builtin", p.name),
                    None,
                ));
                e.site_pending = true;
            }
            e
        })
    }

    /// A builtin called by the call instruction of frame `fi` failed: its
    /// frame is at the position of that call.
    #[cold]
    fn call_site(&self, fi: usize, mut e: Box<EvalError>) -> Box<EvalError> {
        if e.site_pending {
            e.site_pending = false;
            if let Some(t) = e.trace.last_mut() {
                t.pos = self.frames[fi].current_pos();
            }
        }
        e
    }

    /// "while calling 'f'" at the lambda, and "from call site" at the call
    /// instruction of the frame below when an instruction called it.
    #[cold]
    fn lambda_frames(&self, f: &Frame, e: &mut EvalError) {
        let at_lambda = Some(f.lambda_pos());
        e.add_trace(
            format!("while calling {}", self.lambda_title(&f.proto)),
            at_lambda,
        );
        if f.native_caller {
            return;
        }
        if let Some(c) = self.frames.last() {
            let site = c.current_pos();
            if site.is_some() {
                e.add_trace("from call site", site);
            }
        }
    }

    // ---- the loop ------------------------------------------------------

    fn run(&mut self, stop: usize) -> EvalResult<()> {
        let stack_len = if stop < self.frames.len() {
            self.frames[stop].base
        } else {
            self.stack.len()
        };
        let r = if self.observer.is_some() {
            self.run_inner::<true>(stop)
        } else {
            self.run_inner::<false>(stop)
        };
        match r {
            Ok(()) => Ok(()),
            Err(mut e) => {
                // Attach the position of the failing instruction, then unwind,
                // adding each frame's error contexts and call frames.
                let mut first = true;
                // The thunk whose frame went just before: the frame below was
                // forcing it in the op at its `ip` (re-executed once it is done).
                let mut waited: Option<(Thunk, usize)> = None;
                while self.frames.len() > stop {
                    let f = self.frames.pop().expect("frame");
                    let (op_at, forced) = match waited.take() {
                        Some((t, base)) => (f.ip, self.forced_slot(&t, base)),
                        None => (
                            f.ip.saturating_sub(1),
                            if first { e.forced.take() } else { None },
                        ),
                    };
                    let pos = f.current_pos();
                    if first {
                        e.site_pending = false;
                    }
                    if first && e.pos.is_none() && !e.settled {
                        e.pos = pos;
                    }
                    if !f.proto.body.ctx_bytes().is_empty() {
                        self.ctx_frames(&f, op_at, forced, first, &mut e);
                    }
                    first = false;
                    // CppNix records lambda calls only with --show-trace, at the
                    // lambda and at its call site; forcing a thunk adds nothing
                    // (the expression that needed the value adds its context).
                    let in_formals = std::mem::take(&mut e.in_formals);
                    if self.settings.show_trace && !in_formals {
                        match f.kind {
                            FrameKind::Call => self.lambda_frames(&f, &mut e),
                            // A builtin's lazy application of a lambda (`map`,
                            // `genList`: CppNix calls it from the lambda's own
                            // position; `mapAttrs`, `zipAttrsWith`: from none).
                            FrameKind::Thunk(_) if f.proto.kind == ChunkKind::Lambda => {
                                let at = Some(f.lambda_pos());
                                e.add_trace(
                                    format!("while calling {}", self.lambda_title(&f.proto)),
                                    at,
                                );
                                if !f.native_caller {
                                    e.add_trace("from call site", at);
                                }
                            }
                            FrameKind::Thunk(_) => {}
                        }
                    }
                    if f.counted {
                        self.call_depth = self.call_depth.saturating_sub(1);
                    }
                    if let FrameKind::Thunk(t) = &f.kind {
                        if e.kind == ErrorKind::InfiniteRecursion
                            && e.blackhole == t.as_ptr() as usize
                            && e.trace.len() < MAX_TRACE
                        {
                            let mut entering =
                                TraceEntry::new("entering the infinite recursion", None);
                            entering.always = true;
                            e.trace.push(entering);
                        }
                        t.fail(&e);
                        if e.memo.len() < MAX_TRACE {
                            e.memo.push(Value::Thunk(t.clone()));
                        }
                        waited = Some((t.clone(), f.base));
                    }
                }
                self.stack.truncate(stack_len);
                Err(e)
            }
        }
    }

    /// Which operand of the op waiting below a thunk's frame that thunk is
    /// (counted from the top of that frame's stack), if it is one.
    #[cold]
    fn forced_slot(&self, t: &Thunk, base: usize) -> Option<u8> {
        let below = &self.stack[..base.min(self.stack.len())];
        below
            .iter()
            .rev()
            .take(256)
            .position(|v| v.as_thunk().is_some_and(|x| Thunk::ptr_eq(x, t)))
            .map(|i| i as u8)
    }

    /// The frames of the error contexts (CppNix's `errorCtx`) that op `op` of
    /// frame `f` is in, innermost first.
    #[cold]
    fn ctx_frames(&self, f: &Frame, op: usize, forced: Option<u8>, first: bool, e: &mut EvalError) {
        use crate::value::errctx::{decode, Record};
        use nixvm_compiler::chunk::CtxMsg;
        let proto = &f.proto;
        let file = proto.file();
        let op = op as u32;
        let all: Vec<_> = decode(proto.body.ctx_bytes(), |i| proto.span_at(i as usize))
            .into_iter()
            .filter_map(|r| match r {
                Record::Ctx(c) => Some(c),
                Record::Parts(..) => None,
            })
            .collect();
        let mut hits: Vec<_> = all
            .iter()
            .copied()
            .filter(|c| match c.forced {
                Some(k) => c.start == op && forced == Some(k),
                None => {
                    c.start <= op
                        && op < c.end
                        && !(forced.is_some() && c.except_forced == forced.map(|k| (op, k)))
                }
            })
            .collect();
        hits.sort_by_key(|c| (c.end - c.start, c.forced.is_none()));
        let at = |s: Option<nixvm_compiler::ast::Span>| s.map(|span| Pos { file, span });
        // CppNix reports an infinite recursion met while forcing an operand
        // where that operand is, and a name that is not a string at the name.
        if first && forced.is_some() {
            if let Some(c) = hits.iter().find(|c| c.forced.is_some() && c.at.is_some()) {
                if e.kind == ErrorKind::InfiniteRecursion || c.msg == CtxMsg::AttrName {
                    e.pos = at(c.at);
                }
            }
        }
        for c in hits {
            if c.msg != CtxMsg::Attribute {
                e.add_trace(c.msg.text(), at(c.at));
                continue;
            }
            // A selection: its path from the select ops in range (dynamic
            // names as written), and the definition of the last attribute
            // found before the failing op.
            let code = proto.code();
            let mut names = Vec::new();
            let mut found = 0;
            for i in c.start..c.end {
                let name = match code[i as usize] {
                    Op::Select(s) | Op::SelectOr(s, _) => s.to_string(),
                    Op::SelectDyn | Op::SelectDynOr(_) => dynamic_name_text(proto, &all, i),
                    _ => continue,
                };
                if i < op {
                    found += 1;
                }
                names.push(name);
            }
            if found > 0 && f.attr_pos != PosIdx::NONE {
                let def = self.pos(f.attr_pos);
                let internal = def.is_some_and(|p| {
                    self.files[p.file as usize]
                        .name
                        .ends_with("derivation-internal.nix")
                });
                if !internal {
                    e.add_trace(
                        format!(
                            "from the definition of '{}'",
                            names[..found.min(names.len())].join(".")
                        ),
                        def,
                    );
                }
            }
            e.add_trace(
                format!("while evaluating the attribute '{}'", names.join(".")),
                at(c.at),
            );
        }
    }

    fn proto_const(&self, fi: usize, c: u32) -> &Constant {
        &self.frames[fi].proto.consts()[c as usize]
    }

    /// Link nested-chunk constant `c` of frame `fi`'s code if it is still
    /// stored (see `link_stored`): one test on the usual path.
    #[inline(always)]
    fn link_frame_const(&mut self, fi: usize, c: u32) -> EvalResult<()> {
        if self.proto_const(fi, c).is_stored() {
            let owner = self.frames[fi].proto.clone();
            self.link_stored(&owner, c)?;
        }
        Ok(())
    }

    /// The loop; `OBSERVE`: tell `self.observer` each op (see `observe`).
    fn run_inner<const OBSERVE: bool>(&mut self, stop: usize) -> EvalResult<()> {
        loop {
            let fi = self.frames.len() - 1;
            let op = {
                let f = &mut self.frames[fi];
                let op = f.code.get(f.ip);
                f.ip += 1;
                op
            };
            if OBSERVE {
                if let Some(o) = self.observer.as_mut() {
                    let f = &self.frames[fi];
                    o.op(&f.proto, f.ip - 1, op, fi + 1, self.stack.len());
                }
            }
            match op {
                Op::Const(c) => {
                    let Some(v) = self.proto_const(fi, c).value() else {
                        unreachable!("value constant")
                    };
                    let v = v.clone();
                    self.stack.push(v);
                }
                Op::Null => self.stack.push(Value::Null),
                Op::True => self.stack.push(Value::Bool(true)),
                Op::False => self.stack.push(Value::Bool(false)),
                Op::Local(depth, idx) => {
                    let mut env = &self.frames[fi].env;
                    for _ in 0..depth {
                        env = env.parent().expect("env depth");
                    }
                    let mut v = env.get(idx as usize);
                    // A forced thunk is replaced by its value in the slot: later reads
                    // skip the indirection, and the thunk is freed once nothing else
                    // holds it.
                    if let View::Thunk(t) = &v.view() {
                        if let Some(d) = t.done() {
                            env.set(idx as usize, d.clone());
                            v = d;
                        }
                    }
                    self.stack.push(v);
                }
                Op::Dyn(sym, c) => {
                    // The chunk's handle, not a copy of its list of `with` depths
                    // (nixpkgs' `with lib;` makes this a hot path).
                    let proto = self.frames[fi].proto.clone();
                    let CView::Withs(withs) = proto.consts()[c.get() as usize].view() else {
                        unreachable!("withs constant")
                    };
                    let mut found = None;
                    let mut retry = false;
                    for &depth in withs.iter() {
                        let env = {
                            let mut e = &self.frames[fi].env;
                            for _ in 0..depth {
                                e = e.parent().expect("env depth");
                            }
                            e.clone()
                        };
                        let mut scope = env.get(0);
                        if let View::Thunk(t) = &scope.view() {
                            match self.demand(t)? {
                                Some(v) => {
                                    env.set(0, v.clone());
                                    scope = v;
                                }
                                None => {
                                    retry = true;
                                    break;
                                }
                            }
                        }
                        match &scope.view() {
                            View::Attrs(a) => {
                                if let Some(v) = a.get(sym) {
                                    found = Some(v.clone());
                                    break;
                                }
                            }
                            other => return type_mismatch("a set", &other.to_value()),
                        }
                    }
                    if retry {
                        self.frames[fi].ip -= 1;
                        continue;
                    }
                    match found {
                        Some(v) => self.stack.push(v),
                        None => {
                            return Err(EvalError::new(
                                ErrorKind::UndefinedVar,
                                format!("undefined variable '{}'", sym),
                            ))
                        }
                    }
                }
                Op::Thunk(c) => {
                    self.link_frame_const(fi, c)?;
                    let CView::Proto(p) = self.proto_const(fi, c).view() else {
                        unreachable!("proto constant")
                    };
                    if p.speculate() {
                        if let Some(v) = crate::speculate::run(&p, &self.frames[fi].env) {
                            self.stats.thunks_elided += 1;
                            self.stack.push(v);
                            continue;
                        }
                    }
                    let t = Thunk::pending(&self.heap, p.clone(), self.frames[fi].env.clone());
                    self.stats.thunks_created += 1;
                    self.stack.push(Value::Thunk(t));
                    if self.stats.thunks_created >= self.census.next {
                        crate::census::sample(self);
                    }
                    crate::cycles::maybe_collect(self);
                }
                Op::Closure(c) => {
                    self.link_frame_const(fi, c)?;
                    let CView::Proto(p) = self.proto_const(fi, c).view() else {
                        unreachable!("proto constant")
                    };
                    let cl = Closure {
                        proto: p.clone(),
                        env: self.frames[fi].env.clone(),
                    };
                    self.stack.push(Value::Lambda(Rc::new(cl)));
                }
                Op::PushEnv(n) => {
                    let f = &mut self.frames[fi];
                    f.env = Env::new(&self.heap, Some(f.env.clone()), n as usize);
                    self.stats.envs += 1;
                }
                Op::SetLocal(i) => {
                    let v = self.stack.pop().expect("value");
                    self.frames[fi].env.set(i as usize, v);
                }
                Op::PopEnv => {
                    let f = &mut self.frames[fi];
                    let parent = f.env.parent().cloned().expect("parent env");
                    crate::cycles::leave_scope(std::mem::replace(&mut f.env, parent));
                }
                Op::PushWith => {
                    let v = self.stack.pop().expect("with value");
                    let f = &mut self.frames[fi];
                    f.env = Env::with_values(&self.heap, Some(f.env.clone()), vec![v]);
                    self.stats.envs += 1;
                }
                Op::MakeAttrs(c) => {
                    let proto = self.frames[fi].proto.clone();
                    let (names, sorted) = match proto.consts()[c as usize].view() {
                        CView::AttrNames(names) => (names, true),
                        CView::AttrNamesUnsorted(names) => (names, false),
                        _ => unreachable!("attribute names constant"),
                    };
                    let n = names.len();
                    self.stats.attrsets += 1;
                    if n == 0 {
                        self.stack.push(self.empty_attrs.clone());
                        continue;
                    }
                    let at = self.stack.len() - n;
                    let mut entries: Vec<Attr> = names
                        .iter()
                        .zip(self.stack.drain(at..))
                        .map(|(&(name, pos), value)| Attr { name, pos, value })
                        .collect();
                    if !sorted {
                        entries.sort_unstable_by_key(|a| a.name);
                    }
                    let a = Attrs::from_sorted_attrs(entries);
                    self.stack.push(Value::attrs(a));
                }
                Op::AttrsDyn => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 2);
                    let v = self.stack.pop().expect("value");
                    let name = self.stack.pop().expect("name");
                    let name = match name.unpack() {
                        Owned::Null => continue,
                        Owned::String(s) => s,
                        other => return type_mismatch("a string", &Value::from(other)),
                    };
                    let sym = Symbol::intern(&name.to_str());
                    let file = self.frames[fi].proto.file();
                    let span = (self.frames[fi].proto)
                        .span_at(self.frames[fi].ip - 1)
                        .expect("a span per op");
                    let pos = self.positions.intern(file, span);
                    let top = self.stack.last_mut().expect("attrs");
                    let a = top.make_attrs_mut().expect("attrs under dynamic attr");
                    if !a.insert_new(sym, v, pos) {
                        let prev = a.position(sym);
                        let prev = self.pos(prev).map(|p| self.show_pos(p));
                        return Err(EvalError::new(
                            ErrorKind::Other,
                            format!(
                                "dynamic attribute '{}' already defined at {}",
                                sym,
                                prev.unwrap_or_default()
                            ),
                        ));
                    }
                }
                Op::MakeList(n) => {
                    let at = self.stack.len() - n as usize;
                    let items: Vec<Value> = self.stack.drain(at..).collect();
                    self.stats.lists += 1;
                    let v = if items.is_empty() {
                        self.empty_list.clone()
                    } else {
                        Value::list(items)
                    };
                    self.stack.push(v);
                }
                Op::Select(sym) => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    let top = self.stack.pop().expect("set");
                    match &top.view() {
                        View::Attrs(a) => match a.get_attr(sym) {
                            Some(at) => {
                                self.frames[fi].attr_pos = at.pos;
                                self.stack.push(at.value.clone())
                            }
                            None => return Err(self.missing_attr(a, sym)),
                        },
                        other => return Err(self.select_type_error(fi, &other.to_value())),
                    }
                }
                // `a.b or d` and a non-final step of `a ? b.c`: descend or jump.
                Op::SelectOr(sym, target) | Op::HasAttrStep(sym, target) => {
                    let target = target.get();
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    let top = self.stack.pop().expect("set");
                    match &top.view() {
                        View::Attrs(a) if a.contains(sym) => {
                            let at = a.get_attr(sym).expect("checked");
                            self.frames[fi].attr_pos = at.pos;
                            self.stack.push(at.value.clone())
                        }
                        _ => self.frames[fi].ip = target as usize,
                    }
                }
                Op::SelectDyn | Op::SelectDynOr(_) => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 2);
                    force_slot!(self, fi, len - 1);
                    let name = self.stack.pop().expect("name");
                    let set = self.stack.pop().expect("set");
                    // CppNix reports a name that is not a string at the name.
                    let sym = self.attr_name(&name).map_err(|e| forced_error(e, 0))?;
                    let found = match &set.view() {
                        View::Attrs(a) => a.get_attr(sym).map(|at| (at.value.clone(), at.pos)),
                        _ => None,
                    };
                    match (found, op) {
                        (Some((v, pos)), _) => {
                            self.frames[fi].attr_pos = pos;
                            self.stack.push(v)
                        }
                        (None, Op::SelectDynOr(target)) => self.frames[fi].ip = target as usize,
                        (None, _) => match &set.view() {
                            View::Attrs(a) => return Err(self.missing_attr(a, sym)),
                            other => return Err(self.select_type_error(fi, &other.to_value())),
                        },
                    }
                }
                Op::HasAttr(sym) => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    let top = self.stack.pop().expect("set");
                    let b = matches!(&top.view(), View::Attrs(a) if a.contains(sym));
                    self.stack.push(Value::Bool(b));
                }
                Op::HasAttrStepDyn(_) | Op::HasAttrDyn => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 2);
                    force_slot!(self, fi, len - 1);
                    let name = self.stack.pop().expect("name");
                    let set = self.stack.pop().expect("set");
                    let sym = self.attr_name(&name)?;
                    let found = match &set.view() {
                        View::Attrs(a) => a.get(sym).cloned(),
                        _ => None,
                    };
                    match op {
                        Op::HasAttrDyn => self.stack.push(Value::Bool(found.is_some())),
                        Op::HasAttrStepDyn(target) => match found {
                            Some(v) => self.stack.push(v),
                            None => self.frames[fi].ip = target as usize,
                        },
                        _ => unreachable!(),
                    }
                }
                Op::Call => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 2);
                    let arg = self.stack.pop().expect("arg");
                    let f = self.stack.pop().expect("function");
                    let r = self.apply(f, arg, FrameKind::Call);
                    if let Some(v) = r.map_err(|e| self.call_site(fi, e))? {
                        let v = self.force(v)?;
                        self.stack.push(v);
                    }
                }
                Op::Force => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                }
                Op::Return => {
                    let v = self.stack.pop().expect("return value");
                    let f = pop_return(&mut self.frames);
                    self.stack.truncate(f.base);
                    if f.counted {
                        self.call_depth -= 1;
                    }
                    match f.kind {
                        FrameKind::Call => {
                            crate::cycles::leave_scope(f.env);
                            self.stack.push(v)
                        }
                        // A thunk's frame runs in the scope that made the thunk,
                        // which outlives it: nothing is left here.
                        FrameKind::Thunk(t) => {
                            drop(f.env);
                            t.set(v)
                        }
                    }
                    if self.frames.len() == stop {
                        return Ok(());
                    }
                }
                Op::Pop => {
                    self.stack.pop();
                }
                Op::Jump(t) => self.frames[fi].ip = t as usize,
                Op::JumpIfFalse(t) | Op::JumpIfTrue(t) => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    let b = match self.stack.pop().expect("condition").unpack() {
                        Owned::Bool(b) => b,
                        other => return type_mismatch("a Boolean", &Value::from(other)),
                    };
                    let jump_on = matches!(op, Op::JumpIfTrue(_));
                    if b == jump_on {
                        self.frames[fi].ip = t as usize;
                    }
                }
                Op::AssertBool => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    if let Some(other) = self
                        .stack
                        .last()
                        .filter(|v| !matches!(&v.view(), View::Bool(_)))
                    {
                        return type_mismatch("a Boolean", other);
                    }
                }
                Op::Not => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    match self.stack.pop().expect("operand").unpack() {
                        Owned::Bool(b) => self.stack.push(Value::Bool(!b)),
                        other => return type_mismatch("a Boolean", &Value::from(other)),
                    }
                }
                Op::Add
                | Op::Sub
                | Op::Mul
                | Op::Div
                | Op::Eq
                | Op::Neq
                | Op::Lt
                | Op::Concat
                | Op::Update => {
                    // CppNix evaluates both operands of every binary op (to
                    // weak head normal form) before it applies the op. `//`
                    // has its right operand below its left (evaluated first).
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 2);
                    force_slot!(self, fi, len - 1);
                    let mut b = self.stack.pop().expect("rhs");
                    let mut a = self.stack.pop().expect("lhs");
                    if op == Op::Update {
                        std::mem::swap(&mut a, &mut b);
                    }
                    let r = match op {
                        Op::Add => self.add(fi, a, b),
                        Op::Eq => self.equal(&a, &b).map(Value::Bool),
                        Op::Neq => self.equal(&a, &b).map(|x| Value::Bool(!x)),
                        Op::Lt => crate::ops::less_than(self, &a, &b).map(Value::Bool),
                        Op::Sub | Op::Mul | Op::Div | Op::Concat | Op::Update => {
                            let (x, y) = (a.clone(), b.clone());
                            let r = match op {
                                Op::Sub => crate::ops::arith(self, '-', x, y),
                                Op::Mul => crate::ops::arith(self, '*', x, y),
                                Op::Div => crate::ops::arith(self, '/', x, y),
                                Op::Concat => crate::ops::concat_lists(self, x, y),
                                _ => crate::ops::update(self, x, y),
                            };
                            match r {
                                Ok(v) => Ok(v),
                                Err(e) => return Err(self.op_error(fi, op, a, b, e)),
                            }
                        }
                        _ => unreachable!(),
                    };
                    match r {
                        Ok(v) => self.stack.push(v),
                        Err(mut e) => {
                            if op == Op::Lt && e.pos.is_none() {
                                // The `lessThan` builtin's error: no position.
                                e.settled = true;
                            }
                            return Err(e);
                        }
                    }
                }
                Op::ConcatStrings(n, force_string) => {
                    let len = self.stack.len();
                    let base = len - n as usize;
                    let mut pending = false;
                    for i in base..len {
                        if let View::Thunk(t) = &self.stack[i].view() {
                            let t = t.clone();
                            match self.demand(&t)? {
                                Some(v) => self.stack[i] = v,
                                None => {
                                    pending = true;
                                    break;
                                }
                            }
                        }
                    }
                    if pending {
                        self.frames[fi].ip -= 1;
                        continue;
                    }
                    let parts: Vec<Value> = self.stack.drain(base..).collect();
                    let v = crate::ops::concat_strings(self, parts, force_string, fi)?;
                    self.stack.push(v);
                }
                Op::Assert(c) => {
                    let len = self.stack.len();
                    force_slot!(self, fi, len - 1);
                    match self.stack.pop().expect("condition").unpack() {
                        Owned::Bool(true) => {}
                        Owned::Bool(false) => {
                            let CView::Text(t) = self.proto_const(fi, c).view() else {
                                unreachable!("text constant")
                            };
                            return Err(EvalError::new(
                                ErrorKind::Assert,
                                format!("assertion '{}' failed", t),
                            ));
                        }
                        other => return type_mismatch("a Boolean", &Value::from(other)),
                    }
                }
                Op::AssertEq(c, at) => {
                    let b = self.stack.pop().expect("right operand");
                    let a = self.stack.pop().expect("left operand");
                    let proto = &self.frames[fi].proto;
                    let here = self.frames[fi].ip - 1;
                    let place = |i: usize| {
                        proto.span_at(i).map(|span| Pos {
                            file: proto.file(),
                            span,
                        })
                    };
                    let (eq, assert_pos) = (place(here), place(at.get() as usize));
                    let t = match self.proto_const(fi, c).view() {
                        CView::Text(t) => t.to_owned(),
                        _ => unreachable!("text constant"),
                    };
                    if let Err(mut e) = crate::ops::explain_unequal(self, &a, &b, eq) {
                        if e.kind == ErrorKind::Assert {
                            e.trace.push(TraceEntry {
                                always: false,
                                msg: format!(
                                    "while evaluating the condition of the assertion '{}'",
                                    t
                                ),
                                pos: assert_pos,
                            });
                        }
                        return Err(e);
                    }
                    let mut e =
                        EvalError::new(ErrorKind::Assert, format!("assertion '{}' failed", t));
                    e.pos = assert_pos;
                    return Err(e);
                }
                Op::RecOverrides(c) => {
                    let overrides_sym = Symbol::intern("__overrides");
                    let Some(Owned::Attrs(set)) = (self.stack.last().cloned()).map(Value::unpack)
                    else {
                        unreachable!("rec set")
                    };
                    let mut ov = set.get(overrides_sym).cloned().unwrap_or(Value::Null);
                    if let View::Thunk(t) = &ov.view() {
                        match self.demand(t)? {
                            Some(v) => ov = v,
                            None => {
                                self.frames[fi].ip -= 1;
                                continue;
                            }
                        }
                    }
                    let View::Attrs(ov) = ov.view() else {
                        let mut e = type_mismatch::<()>("a set", &ov).expect_err("a mismatch");
                        e.settled = true;
                        e.add_trace("while evaluating the `__overrides` attribute", None);
                        return Err(e);
                    };
                    let proto = self.frames[fi].proto.clone();
                    let CView::Syms(slots) = proto.consts()[c as usize].view() else {
                        unreachable!("syms constant")
                    };
                    let env = self.frames[fi].env.clone();
                    let mut new = set.clone();
                    for (k, v) in ov.iter() {
                        new.insert(k, v.clone());
                        if let Some(i) = slots.iter().position(|s| *s == k) {
                            env.set(i, v.clone());
                        }
                    }
                    *self.stack.last_mut().expect("rec set") = Value::attrs(new);
                }
                Op::BindFormals(c) => {
                    let base = self.frames[fi].base;
                    force_slot!(self, fi, base);
                    self.bind_formals(fi, c)?;
                }
            }
        }
    }

    fn bind_formals(&mut self, fi: usize, c: u32) -> EvalResult<()> {
        let CView::Formals(info) = self.proto_const(fi, c).view() else {
            unreachable!("formals constant")
        };
        let info = info.clone();
        let base = self.frames[fi].base;
        let arg = self.stack[base].clone();
        let View::Attrs(a) = &arg.view() else {
            return type_mismatch("a set", &arg);
        };
        let env = self.frames[fi].env.clone();
        let fname = self.lambda_name(&self.frames[fi].proto);
        let mut used = 0;
        for (i, f) in info.formals.iter().enumerate() {
            match a.get(f.name) {
                Some(v) => {
                    env.set(i, v.clone());
                    used += 1;
                }
                None => match f.default {
                    Some(dc) => {
                        self.link_frame_const(fi, dc)?;
                        let v = match self.frames[fi].proto.consts()[dc as usize].view() {
                            CView::Proto(p) if p.kind == ChunkKind::Thunk => {
                                self.stats.thunks_created += 1;
                                Value::Thunk(Thunk::pending(&self.heap, p.clone(), env.clone()))
                            }
                            CView::Proto(p) => Value::Lambda(Rc::new(Closure {
                                proto: p.clone(),
                                env: env.clone(),
                            })),
                            CView::Value(v) => v.clone(),
                            _ => unreachable!("default constant"),
                        };
                        env.set(i, v);
                    }
                    None => {
                        let e = EvalError::new(
                            ErrorKind::Type,
                            format!(
                                "function '{}' called without required argument '{}'",
                                fname, f.name
                            ),
                        );
                        return Err(self.formals_error(fi, e));
                    }
                },
            }
        }
        if !info.ellipsis && used < a.len() {
            for (k, _) in a.sorted_by_name() {
                if !info.formals.iter().any(|f| f.name == k) {
                    let mut e = EvalError::new(
                        ErrorKind::Type,
                        format!(
                            "function '{}' called with unexpected argument '{}'",
                            fname, k
                        ),
                    );
                    e.suggestions = crate::report::best_matches(
                        info.formals.iter().map(|f| f.name.to_string()),
                        &k.to_string(),
                    );
                    return Err(self.formals_error(fi, e));
                }
            }
        }
        if let Some(s) = info.at_slot {
            env.set(s as usize, arg.clone());
        }
        self.stack.truncate(base);
        Ok(())
    }

    /// How a trace names a lambda: `'f'`, or "anonymous lambda".
    fn lambda_title(&self, p: &Proto) -> String {
        match p.name() {
            Some(n) => format!("'{n}'"),
            None => "anonymous lambda".into(),
        }
    }

    pub fn lambda_name(&self, p: &Proto) -> String {
        match p.name() {
            Some(n) => n.to_string(),
            None => "anonymous lambda".into(),
        }
    }

    /// An argument that does not fit the formals: at the lambda, and "from
    /// call site" when a call instruction called it (as CppNix, with or
    /// without --show-trace, and no "while calling" frame: the body never ran).
    #[cold]
    fn formals_error(&self, fi: usize, e: Box<EvalError>) -> Box<EvalError> {
        let f = &self.frames[fi];
        let mut e = e.with_pos(Some(f.lambda_pos()));
        e.in_formals = true;
        if !f.native_caller && fi > 0 {
            e.add_trace("from call site", self.frames[fi - 1].current_pos());
        }
        e
    }

    /// Selecting from what is not a set: CppNix's `forceAttrs` error, with
    /// the frame at the selection and no position of its own.
    #[cold]
    fn select_type_error(&self, fi: usize, v: &Value) -> Box<EvalError> {
        let mut e = type_mismatch::<()>("a set", v).expect_err("a mismatch");
        e.settled = true;
        e.add_trace(
            "while selecting an attribute",
            self.frames[fi].current_pos(),
        );
        e
    }

    /// An error of a binary op's own (its operands were forced): where
    /// CppNix reports it. `-`, `*`, `/` and `<` are builtins there: the error
    /// is the builtin's, without a position (the call's frame comes from the
    /// op's error context); `//` names the operand that is not a set, `++`
    /// "one of the elements to concatenate".
    #[cold]
    fn op_error(
        &mut self,
        fi: usize,
        op: Op,
        a: Value,
        b: Value,
        e: Box<EvalError>,
    ) -> Box<EvalError> {
        let mut e = match op {
            Op::Sub | Op::Mul | Op::Div => {
                let c = match op {
                    Op::Sub => '-',
                    Op::Mul => '*',
                    _ => '/',
                };
                crate::builtins::core::arith(self, &mut [a, b], c)
                    .err()
                    .unwrap_or(e)
            }
            Op::Update => {
                // The right operand (below the left on the stack) is checked
                // first, as CppNix evaluates it first.
                let slot = if matches!(b.view(), View::Attrs(_)) {
                    0
                } else {
                    1
                };
                forced_error(e, slot)
            }
            Op::Concat if e.kind == ErrorKind::Type => {
                let mut e = e;
                e.add_trace(
                    "while evaluating one of the elements to concatenate",
                    self.frames[fi].current_pos(),
                );
                e
            }
            _ => return e,
        };
        if e.pos.is_none() {
            e.settled = true;
        }
        e
    }

    #[cold]
    fn missing_attr(&self, set: &Attrs, sym: Symbol) -> Box<EvalError> {
        // No position: the selection's frame shows where (CppNix).
        let mut e = EvalError::new(
            ErrorKind::MissingAttr,
            format!("attribute '{}' missing", sym),
        );
        e.settled = true;
        e.suggestions =
            crate::report::best_matches(set.iter().map(|(k, _)| k.to_string()), &sym.to_string());
        e.with_detail(crate::error::Detail::MissingAttr {
            name: sym.to_string(),
        })
    }

    fn attr_name(&mut self, v: &Value) -> EvalResult<Symbol> {
        match &v.view() {
            View::String(s) => Ok(Symbol::intern(&s.to_str())),
            other => type_mismatch("a string", &other.to_value()),
        }
    }

    pub fn show_value_short(&self, v: &Value) -> String {
        crate::print::show_short(v)
    }

    /// `+` by the op of frame `fi` (whose operand positions its errors use).
    fn add(&mut self, fi: usize, a: Value, b: Value) -> EvalResult<Value> {
        match (&a.view(), &b.view()) {
            (View::Int(x), View::Int(y)) => match x.checked_add(*y) {
                Some(r) => Ok(Value::Int(r)),
                None => Err(EvalError::new(
                    ErrorKind::Overflow,
                    format!("integer overflow in adding {} + {}", x, y),
                )
                .with_pos(self.part_pos(fi, 1))),
            },
            (View::Float(x), View::Float(y)) => Ok(Value::Float(x + y)),
            (View::Int(x), View::Float(y)) => Ok(Value::Float(*x as f64 + y)),
            (View::Float(x), View::Int(y)) => Ok(Value::Float(x + *y as f64)),
            _ => crate::ops::concat_strings(self, vec![a, b], false, fi),
        }
    }

    /// Where operand `i` of the `+` or interpolation that frame `fi` runs
    /// begins (CppNix reports the operand's errors there).
    #[cold]
    pub fn part_pos(&self, fi: usize, i: usize) -> Option<Pos> {
        use crate::value::errctx::{decode, Record};
        let f = &self.frames[fi];
        let op = f.ip.checked_sub(1)? as u32;
        let proto = &f.proto;
        decode(proto.body.ctx_bytes(), |k| proto.span_at(k as usize))
            .into_iter()
            .find_map(|r| match r {
                Record::Parts(at, spans) if at == op => spans.get(i).copied(),
                _ => None,
            })
            .map(|span| Pos {
                file: proto.file(),
                span,
            })
    }

    /// Deep equality with CppNix's rules.
    pub fn equal(&mut self, a: &Value, b: &Value) -> EvalResult<bool> {
        crate::ops::equal(self, a, b)
    }

    /// Force a value and everything inside it.
    pub fn force_deep(&mut self, v: Value) -> EvalResult<Value> {
        let mut seen = rustc_hash::FxHashSet::default();
        self.force_deep_inner(&v, &mut seen)?;
        self.force(v)
    }

    /// CppNix's `forceValueDeep`: every value visited counts against
    /// `max-call-depth` (at its position) while what is inside it is
    /// visited, so a very deep structure is a controlled stack overflow
    /// there and here alike.
    fn force_deep_inner(
        &mut self,
        v: &Value,
        seen: &mut rustc_hash::FxHashSet<usize>,
    ) -> EvalResult<()> {
        self.check_depth()
            .map_err(|e| e.with_pos(crate::force::determine_pos(v)))?;
        self.call_depth += 1;
        let r = match self.force(v.clone()) {
            Ok(x) if matches!(&x.view(), View::Attrs(_) | View::List(_)) => {
                self.grow_stack(256 * 1024, 4 * 1024 * 1024, |vm| {
                    vm.force_deep_level(&x, seen)
                })
            }
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        };
        self.call_depth -= 1;
        r
    }

    fn force_deep_level(
        &mut self,
        v: &Value,
        seen: &mut rustc_hash::FxHashSet<usize>,
    ) -> EvalResult<()> {
        match &v.view() {
            View::Attrs(a) => {
                if !seen.insert(a.as_ptr() as usize) {
                    return Ok(());
                }
                // CppNix's forceValueDeep: an error anywhere below an attribute
                // or a list element names it.
                for (name, x) in a.iter() {
                    if let Err(mut e) = self.force_deep_inner(x, seen) {
                        e.add_trace(
                            format!("while evaluating the attribute '{}'", name),
                            self.pos(a.position(name)),
                        );
                        return Err(e);
                    }
                }
            }
            View::List(l) => {
                if !seen.insert(l.as_ptr() as usize) {
                    return Ok(());
                }
                for (i, x) in l.iter().enumerate() {
                    if let Err(mut e) = self.force_deep_inner(x, seen) {
                        e.add_trace(format!("while evaluating list element at index {i}"), None);
                        return Err(e);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

impl Drop for Vm {
    /// Let go of everything the machine holds, then collect the cycles among
    /// it, so a dropped evaluator gives its memory back. What an embedder
    /// still holds stays valid (the heap keeps its pages if anything lives).
    fn drop(&mut self) {
        self.stack.clear();
        self.frames.clear();
        self.import_cache.clear();
        self.name_strings.clear();
        self.builtins = Value::Null;
        self.globals = Env::new(&self.heap, None, 0);
        self.ext = Default::default();
        self.census.peak = None;
        crate::cycles::collect(self);
    }
}

/// Why a file could not be read, in CppNix's words for a missing one.
pub fn read_error(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("path '{path}' does not exist"),
        _ => format!("opening file '{path}': {}", io_msg(e)),
    }
}

pub fn io_msg(e: &std::io::Error) -> String {
    nixvm_store::io_message(e)
}
