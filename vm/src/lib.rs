//! nixvm: a lazy bytecode VM for the Nix language.
//!
//! Embedders use [`Evaluator`]: build one with [`Evaluator::builder`],
//! evaluate a string or a file to a [`Value`], then force it deeply,
//! print it or convert it to JSON. Everything the `nixvm` binary does goes
//! through this API.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod builtins;
#[doc(hidden)]
pub mod census;
#[doc(hidden)]
pub mod codecache;
pub mod convert;
#[doc(hidden)]
pub mod corepkgs;
#[doc(hidden)]
pub mod cycles;
#[doc(hidden)]
pub mod env;
pub mod error;
#[doc(hidden)]
pub mod fetch;
#[doc(hidden)]
pub mod force;
#[doc(hidden)]
pub mod graveyard;
#[doc(hidden)]
pub mod heap;
pub mod io;
#[doc(hidden)]
pub mod observe;
#[doc(hidden)]
pub mod ops;
#[doc(hidden)]
pub mod print;
#[doc(hidden)]
pub mod report;
#[doc(hidden)]
pub mod speculate;
#[doc(hidden)]
pub mod state;
#[doc(hidden)]
pub mod store;
#[doc(hidden)]
pub mod storeglue;
#[doc(hidden)]
pub mod thunk;
#[doc(hidden)]
pub mod value;
#[doc(hidden)]
pub mod vm;

pub use error::{
    Detail, ErrCtx, ErrorKind, EvalError, EvalResult, Interrupt, LogLevel, LogMessage, Pos,
};
/// Interned attribute names, as `Attrs` keys them.
pub use nixvm_compiler::Symbol;

/// How [`Evaluator::render_error_as`] lays an error out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// CppNix's: `error:`, the trace outermost first with three lines of
    /// source around a caret per frame, then the message and its position.
    CppNix,
    /// codespan-reporting's: the message, the source excerpt with the span
    /// underlined, then the trace as notes.
    Codespan,
}
pub use store::daemon::{DaemonBackend, DaemonConfig};
pub use store::{LocalBackend, StoreBackend};
pub use value::{Owned, Value, View};
pub use vm::Settings;
#[doc(hidden)]
pub use vm::Vm;

use std::path::Path;
use std::rc::Rc;

/// The most arguments a builtin an embedder defines may take.
pub const MAX_ARITY: usize = 8;

/// A builtin supplied by an embedder: it gets the evaluator that calls it
/// and its arguments, unevaluated (force what you use).
pub type ExtraBuiltin = Rc<dyn Fn(&mut Evaluator, &mut [Value]) -> EvalResult<Value>>;

/// How an [`Evaluator`] is made: its search path, purity, store, settings,
/// file system, logger and extra builtins.
///
/// ```
/// let mut ev = nixvm::Evaluator::builder()
///     .pure(true)
///     .constant("answer", nixvm::Value::Int(42))
///     .build();
/// let v = ev.eval_str("builtins.answer + 1", std::path::Path::new("/")).unwrap();
/// assert_eq!(v.as_int(), Some(43));
/// ```
#[derive(Default)]
pub struct EvaluatorBuilder {
    settings: Settings,
    extra: Vec<(String, Value)>,
    store: Option<Rc<dyn StoreBackend>>,
    logger: Option<error::Logger>,
    fs: Option<Rc<dyn io::FileSystem>>,
    /// The first registration that was not valid.
    invalid: Option<String>,
}

impl EvaluatorBuilder {
    /// Add a search-path entry (`-I prefix=path` or `-I path`).
    pub fn search_path(mut self, entry: &str) -> Self {
        self.settings.search_path.push(split_search_entry(entry));
        self
    }
    /// Add the entries of a `NIX_PATH`-style colon-separated list.
    pub fn nix_path(mut self, list: &str) -> Self {
        for e in list.split(':').filter(|e| !e.is_empty()) {
            self.settings.search_path.push(split_search_entry(e));
        }
        self
    }
    /// Pure evaluation (`--pure-eval`): no `getEnv`, `currentTime`, or
    /// paths outside the store and the search path's.
    pub fn pure(mut self, pure: bool) -> Self {
        self.settings.pure_eval = pure;
        self
    }
    /// The store directory paths are computed for (`/nix/store` unless set).
    pub fn store_dir(mut self, dir: &str) -> Self {
        self.settings.store_dir = dir.to_string();
        self
    }
    /// Give the evaluator a store: sources, `toFile` results and `.drv` files are written to
    /// it when it is writable, and store paths that evaluation reads are realised through it
    /// (import-from-derivation). Without one, paths are computed and nothing is written.
    pub fn store(mut self, store: Rc<dyn StoreBackend>) -> Self {
        self.store = Some(store);
        self
    }
    /// Change any other setting (CppNix's `nix.conf` options that apply to
    /// evaluation: `max-call-depth`, `abort-on-warn`, `restrict-eval`, …).
    pub fn settings(mut self, f: impl FnOnce(&mut Settings)) -> Self {
        f(&mut self.settings);
        self
    }
    /// Read files through `fs` instead of the real file system (see
    /// [`io::Overlay`] for unsaved buffers).
    pub fn filesystem(mut self, fs: Rc<dyn io::FileSystem>) -> Self {
        self.fs = Some(fs);
        self
    }
    /// Send `trace`, `warn` and the evaluator's warnings to `f` instead of
    /// stderr.
    ///
    /// ```
    /// use std::{cell::RefCell, rc::Rc};
    /// let seen = Rc::new(RefCell::new(Vec::new()));
    /// let log = seen.clone();
    /// let mut ev = nixvm::Evaluator::builder()
    ///     .logger(move |m| log.borrow_mut().push(m.message.clone()))
    ///     .build();
    /// let v = ev.eval_str("builtins.trace \"hi\" 1", std::path::Path::new("/")).unwrap();
    /// assert_eq!(ev.force(v).unwrap().as_int(), Some(1));
    /// assert_eq!(*seen.borrow(), ["hi"]);
    /// ```
    pub fn logger(mut self, f: impl FnMut(&LogMessage) + 'static) -> Self {
        self.logger = Some(Box::new(f));
        self
    }
    /// Define `builtins.<name>` as a function of `arity` arguments (1 to
    /// 8). A name must be an identifier not taken by a builtin; `build`
    /// panics (and `try_build` fails) on one that is not.
    pub fn builtin(mut self, name: &str, arity: usize, f: ExtraBuiltin) -> Self {
        if !(1..=MAX_ARITY).contains(&arity) {
            self.invalid.get_or_insert(format!(
                "builtin '{name}' has arity {arity}; builtins take 1 to {MAX_ARITY} arguments"
            ));
        }
        self.check_name(name);
        let imp: value::DynPrimFn = Rc::new(move |vm, args| f(Evaluator::from_vm(vm), args));
        let p = value::PrimOp {
            name: Rc::from(name),
            arity,
            imp: value::PrimImpl::Dyn(imp),
        };
        self.extra
            .push((name.to_string(), Value::PrimOp(Rc::new(p))));
        self
    }
    /// Define `builtins.<name>` as a constant (the same rules for names).
    pub fn constant(mut self, name: &str, v: Value) -> Self {
        self.check_name(name);
        self.extra.push((name.to_string(), v));
        self
    }

    fn check_name(&mut self, name: &str) {
        // `or` is no keyword to the printer, but it is one to the parser.
        let ident = nixvm_compiler::printer::is_plain_identifier(name) && name != "or";
        let why = if !ident {
            "is not an identifier"
        } else if self.extra.iter().any(|(n, _)| n == name) {
            "is already a builtin"
        } else {
            return;
        };
        self.invalid
            .get_or_insert(format!("cannot define builtin '{name}': the name {why}"));
    }

    /// The evaluator. Panics if a `builtin` or `constant` was not valid
    /// (see `try_build`).
    pub fn build(self) -> Evaluator {
        match self.try_build() {
            Ok(ev) => ev,
            Err(e) => panic!("{}", e.msg),
        }
    }

    /// The evaluator, or the first registration that was not valid (a
    /// taken or malformed name, an arity out of range).
    pub fn try_build(self) -> EvalResult<Evaluator> {
        if let Some(msg) = self.invalid {
            return Err(EvalError::new(ErrorKind::Usage, msg));
        }
        let mut vm = Vm::new(self.settings);
        vm.store = self.store;
        vm.logger = self.logger;
        if let Some(fs) = self.fs {
            vm.fs = fs;
        }
        builtins::install(&mut vm, self.extra).map_err(|m| EvalError::new(ErrorKind::Usage, m))?;
        Ok(Evaluator { vm })
    }
}

/// The components of an attribute path as CppNix's `-A` takes them:
/// split at dots, double quotes protecting dots (`a."b.c"`); an
/// unterminated quote is an error.
pub fn split_attr_path(path: &str) -> EvalResult<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = path.chars();
    while let Some(c) = chars.next() {
        match c {
            '.' => out.push(std::mem::take(&mut cur)),
            '"' => loop {
                match chars.next() {
                    None => {
                        return Err(EvalError::new(
                            ErrorKind::Parse,
                            format!("missing closing quote in selection path '{path}'"),
                        ))
                    }
                    Some('"') => break,
                    Some(c) => cur.push(c),
                }
            },
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn split_search_entry(e: &str) -> (String, String) {
    match e.split_once('=') {
        Some((p, path)) => (p.to_string(), path.to_string()),
        None => (String::new(), e.to_string()),
    }
}

/// A Nix evaluator: it evaluates strings and files to [`Value`]s, forces
/// them, reads them and reports errors as CppNix does.
///
/// An evaluator and its values belong to one thread (`Value` is not `Send`:
/// values share counted references). Evaluators are independent: each has
/// its own heap, files and caches; only the table of attribute names is
/// shared by the process, and it is safe to share. Deep evaluations grow
/// their own stack segments as they go, so any thread's stack will do.
///
/// ```
/// let mut ev = nixvm::Evaluator::new();
/// let v = ev.eval_str("{ a = 1 + 2; b = [ \"x\" ]; }", std::path::Path::new("/")).unwrap();
/// assert_eq!(ev.get(&v, "a").unwrap().as_int(), Some(3));
/// assert_eq!(ev.to_json(v, true).unwrap(), r#"{"a":3,"b":["x"]}"#);
/// ```
#[repr(transparent)]
pub struct Evaluator {
    /// The machine itself, for what the API above does not cover (the
    /// `nixvm` binary uses it; its items are not a stable interface).
    #[doc(hidden)]
    pub vm: Vm,
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator::new()
    }
}

impl Evaluator {
    /// An evaluator with CppNix's default settings, no search path and no
    /// store (paths are computed, nothing is written).
    pub fn new() -> Evaluator {
        Evaluator::builder().build()
    }

    /// The evaluator whose machine `vm` is (an embedder's builtin is
    /// called with the machine).
    fn from_vm(vm: &mut Vm) -> &mut Evaluator {
        // SAFETY: `Evaluator` is `repr(transparent)` over `Vm`.
        unsafe { &mut *(vm as *mut Vm).cast::<Evaluator>() }
    }

    /// A builder for an evaluator with other settings.
    pub fn builder() -> EvaluatorBuilder {
        EvaluatorBuilder::default()
    }

    /// Read a `T` out of `v` with serde, forcing only what `T` needs (see
    /// [`convert`]).
    ///
    /// ```
    /// #[derive(serde::Deserialize)]
    /// struct Server { host: String, port: u16, tags: Vec<String> }
    /// let mut ev = nixvm::Evaluator::new();
    /// let src = r#"{ host = "example.org"; port = 80 + 363; tags = [ "a" ]; unused = throw "lazy"; }"#;
    /// let v = ev.eval_str(src, std::path::Path::new("/")).unwrap();
    /// let s: Server = ev.deserialize(&v).unwrap();
    /// assert_eq!((s.host.as_str(), s.port, s.tags.len()), ("example.org", 443, 1));
    /// ```
    pub fn deserialize<T: serde::de::DeserializeOwned>(&mut self, v: &Value) -> EvalResult<T> {
        convert::from_value(&mut self.vm, v)
    }

    /// A Nix value made from Rust data with serde (see [`convert`]).
    pub fn serialize<T: serde::Serialize + ?Sized>(&self, data: &T) -> EvalResult<Value> {
        convert::to_value(data)
    }

    /// A handle another thread can use to stop this evaluator's work: the
    /// running evaluation fails with [`ErrorKind::Interrupted`] at its next
    /// function call, and so does every later one until
    /// [`Interrupt::reset`]. A thunk that was being forced keeps that error
    /// (CppNix 2.34 keeps a thunk's failure too).
    ///
    /// ```
    /// let mut ev = nixvm::Evaluator::new();
    /// let stop = ev.interrupt_handle();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(std::time::Duration::from_millis(50));
    ///     stop.interrupt();
    /// });
    /// // Ten billion steps, unless stopped.
    /// let forever = "let l = builtins.genList (x: x) 100000; in \
    ///     builtins.foldl' (a: _: builtins.foldl' (b: _: b + 1) a l) 0 l";
    /// let e = ev.eval_str(forever, std::path::Path::new("/"))
    ///     .and_then(|v| ev.force(v)).unwrap_err();
    /// assert_eq!(e.kind, nixvm::ErrorKind::Interrupted);
    /// ```
    pub fn interrupt_handle(&self) -> Interrupt {
        self.vm.interrupt.clone()
    }

    /// Evaluate an expression to weak head normal form. Relative paths in
    /// it resolve against `base_dir`.
    pub fn eval_str(&mut self, src: &str, base_dir: &Path) -> EvalResult<Value> {
        let v = self
            .vm
            .compile_source(src, "«string»", &base_dir.to_string_lossy())?;
        self.vm.force(v)
    }

    /// `eval_str` for source bytes that need not be UTF-8 (stdin): string literals keep
    /// the raw bytes, as in CppNix.
    pub fn eval_bytes(&mut self, src: Vec<u8>, name: &str, base_dir: &Path) -> EvalResult<Value> {
        let v = self
            .vm
            .compile_bytes(src, name, &base_dir.to_string_lossy())?;
        self.vm.force(v)
    }

    /// Evaluate a file (a directory means its `default.nix`) to weak head
    /// normal form, as `import` does.
    pub fn eval_file(&mut self, path: &Path) -> EvalResult<Value> {
        let abs = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|d| d.join(path))
                .unwrap_or_else(|_| path.to_path_buf())
        };
        let abs =
            Path::new(&nixvm_compiler::parser::canon_path(&abs.to_string_lossy())).to_path_buf();
        let v = self.vm.import_path(&abs)?;
        self.vm.force(v)
    }

    /// Evaluate a value to weak head normal form (a thunk to what it
    /// stands for; the insides of sets and lists stay lazy).
    pub fn force(&mut self, v: Value) -> EvalResult<Value> {
        self.vm.force(v)
    }

    /// Evaluate a value and everything inside it (`builtins.deepSeq`).
    pub fn force_deep(&mut self, v: Value) -> EvalResult<Value> {
        self.vm.force_deep(v)
    }

    /// Apply a Nix function (lambda, builtin, or set with `__functor`) to
    /// one argument; the result is forced to weak head normal form.
    pub fn call(&mut self, f: Value, arg: Value) -> EvalResult<Value> {
        let r = self.vm.call(f, arg)?;
        self.vm.force(r)
    }

    /// Print as `nix-instantiate --eval` does.
    /// The value as `nix eval` prints it (forcing as it goes).
    pub fn print_forced(&mut self, v: &Value) -> EvalResult<String> {
        crate::print::print_forced(&mut self.vm, v)
    }

    /// A value as `nix-instantiate --eval` prints it, without evaluating
    /// anything (what is not evaluated yet is `<CODE>`).
    pub fn print(&self, v: &Value) -> String {
        print::print_ambiguous(v)
    }

    /// Render an error as CppNix prints it with `--show-trace`: the trace
    /// (outermost first, each frame with its position and source lines),
    /// then the message and its position. No colours; ends in a newline.
    /// Lambda-call frames are in the trace only when `Settings::show_trace`
    /// was set while evaluating (recording them costs), as in CppNix.
    pub fn render_error(&self, e: &EvalError) -> String {
        report::render(&self.vm, e, true)
    }

    /// Render an error in either layout. Without `show_trace` only the
    /// frames CppNix shows without `--show-trace` are included (the first
    /// few, and those it always shows).
    ///
    /// ```
    /// # use nixvm::{Evaluator, Layout};
    /// let mut ev = Evaluator::builder().build();
    /// let e = ev.eval_str("1 + \"a\"", std::path::Path::new("/")).unwrap_err();
    /// let text = ev.render_error_as(&e, Layout::Codespan, false);
    /// assert!(text.starts_with("error: cannot add a string to an integer"));
    /// assert!(text.contains("1 + \"a\""));
    /// ```
    pub fn render_error_as(&self, e: &EvalError, layout: Layout, show_trace: bool) -> String {
        match layout {
            Layout::CppNix => report::render(&self.vm, e, show_trace),
            Layout::Codespan => report::render_codespan(&self.vm, e, show_trace),
        }
    }

    /// The value at the attribute path `path` under `v` (`a.b."c.d".0`:
    /// names split at dots, quotes protecting dots, a number selecting a
    /// list element), forced to weak head normal form, as is everything on
    /// the way. The thunks forced stay forced in their sets and lists.
    ///
    /// ```
    /// # use nixvm::Evaluator;
    /// let mut ev = Evaluator::builder().build();
    /// let v = ev.eval_str("{ a.b = [ 1 (1 + 1) ]; }", std::path::Path::new("/")).unwrap();
    /// let two = ev.get(&v, "a.b.1").unwrap();
    /// assert_eq!(two.as_int(), Some(2));
    /// // Read again without forcing: the list element was forced in place.
    /// assert_eq!(v.attr("a").unwrap().attr("b").unwrap().as_list().unwrap()[1].as_int(), Some(2));
    /// ```
    pub fn get(&mut self, v: &Value, path: &str) -> EvalResult<Value> {
        let mut cur = self.vm.force(v.clone())?;
        for comp in split_attr_path(path)? {
            let next = match (cur.view(), comp.parse::<usize>()) {
                (View::List(l), Ok(i)) => match l.get(i) {
                    Some(x) => x.clone(),
                    None => {
                        let e = EvalError::new(
                            ErrorKind::IndexOutOfRange,
                            format!(
                                "list index {i} in '{path}' is out of bounds ({} elements)",
                                l.len()
                            ),
                        );
                        return Err(e.with_detail(error::Detail::IndexOutOfRange {
                            index: i as i64,
                            len: l.len(),
                        }));
                    }
                },
                (View::Attrs(a), _) => match a.get(Symbol::intern(&comp)) {
                    Some(x) => x.clone(),
                    None => {
                        let names: Vec<String> = a
                            .sorted_by_name()
                            .into_iter()
                            .map(|(n, _)| n.as_str().to_string())
                            .collect();
                        let mut e = EvalError::new(
                            ErrorKind::MissingAttr,
                            format!("attribute '{comp}' in selection path '{path}' not found"),
                        );
                        e.suggestions = report::best_matches(&names, &comp);
                        return Err(e.with_detail(error::Detail::MissingAttr { name: comp }));
                    }
                },
                _ => {
                    return Err(EvalError::new(
                        ErrorKind::Type,
                        format!(
                        "'{comp}' in '{path}' selects from {}, which is neither a set nor a list",
                        cur.show_type()
                    ),
                    ))
                }
            };
            cur = self.vm.force(next)?;
        }
        Ok(cur)
    }

    /// Apply a Nix function to several arguments in turn (`f a b c`); the
    /// result is forced to weak head normal form.
    pub fn call_with(
        &mut self,
        f: Value,
        args: impl IntoIterator<Item = Value>,
    ) -> EvalResult<Value> {
        let mut r = self.vm.force(f)?;
        for a in args {
            r = self.call(r, a)?;
        }
        Ok(r)
    }
}

impl Evaluator {
    /// Parse (and resolve) a source text, returning CppNix's `--parse` rendering.
    pub fn parse_to_string(&mut self, src: &str, name: &str, dir: &Path) -> EvalResult<String> {
        let opts = self.vm.parse_options_pub();
        let file = self.vm.add_file(name.to_string(), Rc::from(src));
        let to_err =
            |msg: String, span, kind| EvalError::located(kind, msg, Some(Pos { file, span }));
        let (ast, _) = nixvm_compiler::parse(src, name, &dir.to_string_lossy(), opts)
            .map_err(|e| to_err(e.msg, e.span, ErrorKind::Parse))?;
        nixvm_compiler::compile_file(&ast, &self.vm.global_names, file, src, name)
            .map_err(|e| to_err(e.msg, e.span, ErrorKind::UndefinedVar))?;
        Ok(nixvm_compiler::printer::show(&ast))
    }

    /// The bytecode of a source text, with source lines (for debugging).
    pub fn disassemble(&mut self, src: &str, name: &str, dir: &Path) -> EvalResult<String> {
        let opts = self.vm.parse_options_pub();
        let file = self.vm.add_file(name.to_string(), Rc::from(src));
        let to_err =
            |msg: String, span| EvalError::located(ErrorKind::Parse, msg, Some(Pos { file, span }));
        let (ast, _) = nixvm_compiler::parse(src, name, &dir.to_string_lossy(), opts)
            .map_err(|e| to_err(e.msg, e.span))?;
        let chunk = nixvm_compiler::compile_file(&ast, &self.vm.global_names, file, src, name)
            .map_err(|e| to_err(e.msg, e.span))?;
        let source = self.vm.files[file as usize].clone();
        let line = |offset: u32| source.line_col(offset).0;
        let cx = nixvm_compiler::disasm::Context {
            line: Some(&line),
            globals: Some(&self.vm.global_names),
        };
        Ok(nixvm_compiler::disasm::disassemble_with(&chunk, &cx))
    }

    /// A lazy value for an expression (as `--arg` passes them).
    pub fn lazy_str(&mut self, src: &str, base_dir: &Path) -> EvalResult<Value> {
        self.vm
            .compile_source(src, "«string»", &base_dir.to_string_lossy())
    }

    /// A value as string interpolation makes it a string (`"${v}"`): a
    /// derivation's output path, a path copied to the store, a number.
    pub fn coerce_to_string(&mut self, v: &Value) -> EvalResult<Vec<u8>> {
        let mut ctx = value::Context::new();
        ops::coerce_to_string(&mut self.vm, v, &mut ctx, false, true)
    }

    /// `v` as JSON, as `nix-instantiate --eval --json` prints it. `strict`:
    /// force what is not evaluated yet (`--strict`); otherwise a value not
    /// evaluated yet is an error ("cannot convert a thunk to JSON"), as in
    /// CppNix.
    pub fn to_json(&mut self, v: Value, strict: bool) -> EvalResult<String> {
        builtins::json::to_json_string(&mut self.vm, v, strict)
    }

    /// A value as `nix-instantiate --eval --xml` writes it.
    pub fn to_xml(&mut self, v: Value, strict: bool, location: bool) -> EvalResult<String> {
        builtins::xml::to_xml_string(&mut self.vm, v, strict, location)
    }

    /// Make everything evaluation wrote to the store durable and registered (the store may
    /// batch small writes).
    pub fn flush_store(&self) -> EvalResult<()> {
        if let Some(s) = &self.vm.store {
            s.flush()
                .map_err(|e| EvalError::new(ErrorKind::Other, e.to_string()))?;
        }
        Ok(())
    }

    /// nix-instantiate without `--eval`: the derivations in `v`, as printed paths.
    pub fn instantiate(
        &mut self,
        v: Value,
        auto_args: &[(nixvm_compiler::Symbol, Value)],
    ) -> EvalResult<Vec<String>> {
        let _ = auto_args;
        builtins::derivations::instantiate(&mut self.vm, v)
    }
}

#[cfg(test)]
mod tests {
    use super::split_attr_path as parse;

    #[test]
    fn components_as_cppnix_splits_them() {
        assert_eq!(parse("a.b").unwrap(), vec!["a", "b"]);
        assert_eq!(
            parse(r#"services.nginx.virtualHosts."example.com".root"#).unwrap(),
            vec!["services", "nginx", "virtualHosts", "example.com", "root"]
        );
        assert_eq!(parse("a..b").unwrap(), vec!["a", "", "b"]);
        assert_eq!(parse("").unwrap(), Vec::<String>::new());
        assert_eq!(parse("x.0").unwrap(), vec!["x", "0"]);
        assert!(parse(r#"a."b"#).is_err());
    }
}
