//! Evaluation state that is not the interpreter's machinery: settings,
//! counters, source files, attribute positions, and the state that builtin
//! families keep between calls (`Extensions`). All of it is owned by one
//! `Vm`: nothing lives in thread-local storage, so two evaluators on one thread
//! share nothing, and every value this state holds is visible to whoever
//! walks the `Vm`'s roots (see `Extension::roots`).

use crate::value::Value;
use nixvm_compiler::ast::Span;
use rustc_hash::FxHashMap;
use std::any::{Any, TypeId};
use std::rc::Rc;

/// A source text the evaluator has read. Compiled code keeps an `Rc` to its
/// file, so a position can be shown without the `Vm` at hand.
///
/// A file read from disk does not keep its text once it is compiled: NixOS
/// minimal reads 3,300 files (21 MB) and needs the text of one of them only
/// to show an error. Positions need only where lines start; the text is read
/// again when something asks for it (as CppNix does to show an error).
pub struct SourceFile {
    pub name: String,
    /// The file was not UTF-8: its text maps invalid bytes to private-use code points
    /// (`nixvm_compiler::rawsrc`), which string literals turn back into the raw bytes.
    pub raw: bool,
    /// The text, while it is kept (always for text that has no file behind it).
    text: std::cell::RefCell<Option<Rc<str>>>,
    /// Where to read the text again (the file's physical path), if anywhere.
    reread: Option<std::path::PathBuf>,
    /// Offsets of the starts of the lines after the first.
    lines: Box<[u32]>,
    len: u32,
    /// Where it is in the `Vm`'s file table (set when it is added there).
    pub index: u32,
}

impl SourceFile {
    pub fn new(name: String, src: Rc<str>, raw: bool) -> SourceFile {
        let lines = (src.bytes().enumerate())
            .filter(|&(_, b)| b == b'\n')
            .map(|(i, _)| i as u32 + 1)
            .collect();
        SourceFile {
            name,
            raw,
            len: src.len() as u32,
            text: std::cell::RefCell::new(Some(src)),
            reread: None,
            lines,
            index: 0,
        }
    }

    /// A file whose text can be read again from `path` after `forget_text`.
    pub fn from_disk(name: String, src: Rc<str>, raw: bool, path: std::path::PathBuf) -> Self {
        SourceFile {
            reread: Some(path),
            ..SourceFile::new(name, src, raw)
        }
    }

    /// Drop the text if it can be read again.
    pub fn forget_text(&self) {
        if self.reread.is_some() {
            *self.text.borrow_mut() = None;
        }
    }

    /// The text: kept, or read again (an empty text if the file is gone or
    /// no longer has the length it had).
    pub fn text(&self) -> Rc<str> {
        if let Some(t) = &*self.text.borrow() {
            return t.clone();
        }
        let t: Rc<str> = self
            .reread
            .as_ref()
            .and_then(|p| std::fs::read(p).ok())
            .map(|b| Rc::from(nixvm_compiler::rawsrc::decode_source(b).0))
            .filter(|t: &Rc<str>| t.len() == self.len as usize)
            .unwrap_or_else(|| Rc::from(""));
        *self.text.borrow_mut() = Some(t.clone());
        t
    }

    /// The text's length in bytes.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// 1-based line and column (in bytes) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let off = offset.min(self.len);
        let k = self.lines.partition_point(|&s| s <= off);
        let start = if k == 0 { 0 } else { self.lines[k - 1] };
        (k + 1, (off - start) as usize + 1)
    }
    /// `file:line:col` of a span.
    pub fn describe(&self, span: Span) -> String {
        let (l, c) = self.line_col(span.start);
        format!("{}:{}:{}", self.name, l, c)
    }
}

/// Where an attribute was defined: an index into the `Vm`'s [`Positions`],
/// so an attribute carries its position in the 4 bytes of padding next to
/// its name instead of a parallel vector. 0 = unknown.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct PosIdx(pub(crate) u32);

impl PosIdx {
    pub const NONE: PosIdx = PosIdx(0);
}

/// The interned (file, span) pairs that `PosIdx`es name.
pub struct Positions {
    list: Vec<(u32, Span)>,
    index: FxHashMap<(u32, Span), u32>,
}

impl Default for Positions {
    fn default() -> Self {
        Positions {
            list: vec![(0, Span::default())],
            index: FxHashMap::default(),
        }
    }
}

impl Positions {
    /// The index of a position; the same (file, span) always gets the same index.
    pub fn intern(&mut self, file: u32, span: Span) -> PosIdx {
        if let Some(&i) = self.index.get(&(file, span)) {
            return PosIdx(i);
        }
        let i = self.push(file, span);
        self.index.insert((file, span), i.0);
        i
    }
    /// A new index for a position, without looking for an equal one: for the
    /// positions code carries, which linking makes once per chunk (the lookup
    /// table for those cost 12 MB on NixOS minimal). Only positions made while
    /// evaluating, as often as the code runs, go through `intern`.
    pub fn push(&mut self, file: u32, span: Span) -> PosIdx {
        let i = self.list.len() as u32;
        self.list.push((file, span));
        PosIdx(i)
    }
    pub fn get(&self, p: PosIdx) -> Option<crate::error::Pos> {
        if p.0 == 0 {
            return None;
        }
        let &(file, span) = self.list.get(p.0 as usize)?;
        Some(crate::error::Pos { file, span })
    }
}

/// State a family of builtins keeps for the whole evaluation (a fetch
/// cache, a compiled helper function). The interpreter does not know these
/// types; it owns them through [`Extensions`].
pub trait Extension: Any {
    /// Every value the state holds, so a walk over the heap from the `Vm`'s
    /// roots sees them.
    fn roots(&self, _f: &mut dyn FnMut(&Value)) {}
}

/// One instance of each [`Extension`] type, made on first use.
#[derive(Default)]
pub struct Extensions {
    map: FxHashMap<TypeId, Box<dyn Extension>>,
}

impl Extensions {
    /// The state of type `T`, made with `Default` the first time.
    pub fn get<T: Extension + Default>(&mut self) -> &mut T {
        let b = self
            .map
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(T::default()));
        let any: &mut dyn Any = b.as_mut();
        any.downcast_mut::<T>()
            .expect("extension stored under its own type")
    }
    /// Every value held by any extension.
    pub fn roots(&self, f: &mut dyn FnMut(&Value)) {
        for e in self.map.values() {
            e.roots(f);
        }
    }
}

/// The evaluation settings CppNix reads from `nix.conf` and its flags.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `max-call-depth`: calls nested deeper are a stack-overflow error.
    pub max_call_depth: usize,
    /// `--show-trace`: errors also record the lambda calls they unwound
    /// through ("while calling 'f'", "from call site"), as CppNix's do.
    pub show_trace: bool,
    /// `pure-eval`.
    pub pure_eval: bool,
    /// `restrict-eval`: only the search path and allowed URIs may be read.
    pub restrict_eval: bool,
    /// URI prefixes fetchers may use under pure or restricted evaluation.
    pub allowed_uris: Vec<String>,
    /// `-I` entries then `NIX_PATH` entries: (prefix, path); an empty prefix matches anything.
    pub search_path: Vec<(String, String)>,
    /// `store`'s directory (`/nix/store`).
    pub store_dir: String,
    /// `system` (`builtins.currentSystem`).
    pub system: String,
    /// The `pipe-operators` experimental feature (`|>`, `<|`).
    pub pipe_operators: bool,
    /// The `parse-toml-timestamps` experimental feature.
    pub parse_toml_timestamps: bool,
    /// `abort-on-warn`: `builtins.warn` stops the evaluation.
    pub abort_on_warn: bool,
    /// `lint-absolute-path-literals`.
    pub lint_absolute_path: nixvm_compiler::parser::LintLevel,
    /// `lint-short-path-literals`.
    pub lint_short_path: nixvm_compiler::parser::LintLevel,
    /// `lint-url-literals`.
    pub lint_url: nixvm_compiler::parser::LintLevel,
    /// `allow-import-from-derivation`.
    pub allow_ifd: bool,
    /// Experimental features enabled beyond the defaults (`--extra-experimental-features`).
    pub experimental_features: Vec<String>,
    /// The cycle collector first runs when envs and thunks take this many bytes
    /// (default: never during evaluation, only when the `Vm` is dropped: on
    /// nixpkgs and NixOS what the heap holds mid-run is live, see ARCHITECTURE.md)...
    pub gc_initial_heap: usize,
    /// ...and then whenever they have grown by this factor since the last collection left them.
    pub gc_growth: f64,
    /// Collect at every safe point (calls and thunk creation): for tests.
    pub gc_stress: bool,
    /// The fetchers' settings (tarball-ttl, download-attempts, certificates, ...).
    pub fetch: crate::fetch::FetchSettings,
    /// The bytecode cache's directory (see `codecache`); `None`: off.
    pub bytecode_cache: Option<std::path::PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_call_depth: 10000,
            show_trace: false,
            pure_eval: false,
            restrict_eval: false,
            allowed_uris: Vec::new(),
            search_path: Vec::new(),
            store_dir: "/nix/store".into(),
            system: default_system(),
            pipe_operators: false,
            parse_toml_timestamps: false,
            abort_on_warn: false,
            lint_absolute_path: Default::default(),
            lint_short_path: Default::default(),
            lint_url: Default::default(),
            allow_ifd: true,
            experimental_features: Vec::new(),
            gc_initial_heap: usize::MAX,
            gc_growth: 2.0,
            gc_stress: false,
            fetch: Default::default(),
            bytecode_cache: None,
        }
    }
}

/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub fn cache_home() -> Option<std::path::PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| std::path::PathBuf::from(h).join(".cache"))
        })
}

pub fn default_system() -> String {
    let arch = std::env::consts::ARCH;
    let os = std::env::consts::OS;
    format!("{arch}-{os}")
}

#[derive(Default, Clone, Debug)]
pub struct Stats {
    pub thunks_created: u64,
    /// Thunks not made because their value was certain at once (`speculate`).
    pub thunks_elided: u64,
    pub thunks_forced: u64,
    pub calls: u64,
    pub primop_calls: u64,
    pub envs: u64,
    pub attrsets: u64,
    pub lists: u64,
    pub ops: u64,
    /// The front end: files read from disk and compiled (not `-E` strings
    /// nor nixvm's own sources), and the time spent parsing, compiling and
    /// linking everything.
    pub files_compiled: u64,
    /// Files whose chunk tree came from the bytecode cache.
    pub cache_hits: u64,
    /// Time spent keying, reading and writing cache entries.
    pub cache_time: std::time::Duration,
    pub parse_time: std::time::Duration,
    pub compile_time: std::time::Duration,
    pub link_time: std::time::Duration,
    /// Chunks linked (from the cache, a nested chunk only once it is used).
    pub chunks_linked: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_starts_give_the_positions_the_text_gives() {
        for text in [
            "",
            "a",
            "\n",
            "ab\ncd\n\nef",
            "x = 1;\r\n  y = \"é\";\n",
            "\n\nz",
        ] {
            let f = SourceFile::new("t".into(), Rc::from(text), false);
            for off in 0..=text.len() as u32 + 2 {
                assert_eq!(
                    f.line_col(off),
                    nixvm_compiler::ast::line_col(text, off),
                    "{text:?} at {off}"
                );
            }
        }
    }
}
