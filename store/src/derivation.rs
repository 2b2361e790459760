//! Derivations: the data model, the ATerm text form, hash modulo, and output/`.drv` paths.
//!
//! This module owns what `derivationStrict` needs once the evaluator has turned the attribute
//! set into strings:
//!
//! * [`Derivation`] and its [`Output`] kinds, with store paths kept as printed absolute path
//!   strings (sorted bytewise, which is CppNix's order too).
//! * [`Derivation::unparse`]: the ATerm form `Derive([outputs],[inputDrvs],[inputSrcs],
//!   "platform","builder",[args],[env])` byte-identical to CppNix. Builder, args and env are
//!   escaped (`"`, `\`, newline, carriage return, tab); output names, paths, hashes and the
//!   platform are printed verbatim, as CppNix does.
//! * [`Derivation::parse`]: the inverse, with CppNix's error texts.
//! * Hash modulo ([`ModuloCache`]): the identity of a derivation that does not depend on the
//!   paths of its input derivations' `.drv` files. Fixed-output derivations hash to
//!   `sha256("fixed:out:<method><algo>:<hex>:<out path>")` per output; other derivations are
//!   printed with each input derivation path replaced by the hex of its own hash modulo and
//!   hashed. For computing a derivation's *own* output paths, its outputs and the environment
//!   variables named after them are blanked first ("masked").
//! * [`Derivation::fill_in_output_paths`] and [`Derivation::compute_drv_path`]: the last steps
//!   of `derivationStrict`.
//!
//! Structured attributes are represented by an ordinary `__json` entry in `env`, which is
//! where CppNix prints them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use crate::hash::{encode_nix32, Hash, HashAlgo, HashFormat};
use crate::path::{ContentAddress, ContentAddressMethod, StoreDir, DRV_EXTENSION};
use crate::Error;

/// One output of a derivation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Input-addressed, with its (printed) store path known.
    InputAddressed { path: String },
    /// Fixed-output: the content address is known in advance; the path follows from it.
    CAFixed(ContentAddress),
    /// Content-addressed with the hash only known after building (experimental in CppNix).
    CAFloating {
        method: ContentAddressMethod,
        algo: HashAlgo,
    },
    /// Input-addressed, path not yet computed.
    Deferred,
    /// Impure derivation output (experimental in CppNix).
    Impure {
        method: ContentAddressMethod,
        algo: HashAlgo,
    },
}

impl Output {
    /// The output's printed store path, if known without building (CppNix's
    /// `DerivationOutput::path`).
    pub fn path(
        &self,
        store: &StoreDir,
        drv_name: &str,
        output_name: &str,
    ) -> Result<Option<String>, Error> {
        match self {
            Output::InputAddressed { path } => Ok(Some(path.clone())),
            Output::CAFixed(ca) => Ok(Some(ca_fixed_path(store, ca, drv_name, output_name)?)),
            Output::CAFloating { .. } | Output::Deferred | Output::Impure { .. } => Ok(None),
        }
    }
}

fn ca_fixed_path(
    store: &StoreDir,
    ca: &ContentAddress,
    drv_name: &str,
    output_name: &str,
) -> Result<String, Error> {
    let name = output_path_name(drv_name, output_name);
    let p = store.make_fixed_output_path(&name, ca, [""; 0], false)?;
    Ok(store.print(&p))
}

/// The name of an output's store path: the derivation name, plus `-<output>` unless the
/// output is "out".
pub fn output_path_name(drv_name: &str, output_name: &str) -> String {
    if output_name == "out" {
        drv_name.to_string()
    } else {
        format!("{drv_name}-{output_name}")
    }
}

/// The placeholder `builtins.placeholder` returns and content-addressed derivations use for
/// their outputs: `/` + nix32(sha256(`"nix-output:<output>"`)).
pub fn hash_placeholder(output_name: &str) -> String {
    let h = Hash::of(
        HashAlgo::Sha256,
        format!("nix-output:{output_name}").as_bytes(),
    );
    format!("/{}", encode_nix32(h.bytes()))
}

/// The kind of a derivation, determined by its outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DerivationType {
    InputAddressed { deferred: bool },
    ContentAddressed { sandboxed: bool, fixed: bool },
    Impure,
}

impl DerivationType {
    pub fn is_fixed(self) -> bool {
        matches!(self, DerivationType::ContentAddressed { fixed: true, .. })
    }
}

/// Malformed or inconsistent derivations. `Display` gives CppNix's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DerivationError {
    /// ATerm syntax: `expected string '<s>'`.
    Expected(String),
    UnterminatedString,
    BadStart,
    UnknownVersion(String),
    InputDrvWithoutOutputs(String),
    CaFixedPathMismatch {
        output: String,
        path: String,
    },
    ImpureWithPath,
    FloatingWithPath,
    // Consistency of outputs.
    MixedOutputTypes,
    OnlyOneFixedOutput,
    FixedOutputNotOut,
    FloatingAlgoMismatch,
    NoOutputs,
    NoHashForOutput {
        output: String,
        drv_name: String,
    },
    IncorrectOutput {
        path: String,
        expected: String,
    },
    IncorrectOutputShouldBeDeferred(String),
    MissingEnv {
        name: String,
        expected: String,
    },
    IncorrectEnv {
        name: String,
        expected: String,
        actual: String,
    },
    /// Hash modulo was asked of a derivation that is not input-addressed.
    NotInputAddressed,
    /// The reader supplied by the caller could not provide an input derivation.
    InputNotFound(String),
}

impl fmt::Display for DerivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DerivationError::*;
        match self {
            Expected(s) => write!(f, "expected string '{s}'"),
            UnterminatedString => f.write_str("unterminated string in derivation"),
            BadStart => f.write_str("derivation does not start with 'Derive' or 'DrvWithVersion'"),
            UnknownVersion(v) => write!(f, "Unknown derivation ATerm format version '{v}'"),
            InputDrvWithoutOutputs(p) => write!(f, "inputDrvs entry for '{p}' specifies no outputs"),
            CaFixedPathMismatch { output, path } => write!(
                f,
                "derivation output '{output}' has path '{path}', which does not match its content address"
            ),
            ImpureWithPath => f.write_str("impure derivation output should not specify output path"),
            FloatingWithPath => f.write_str(
                "content-addressing derivation output should not specify output path",
            ),
            MixedOutputTypes => f.write_str("can't mix derivation output types"),
            OnlyOneFixedOutput => f.write_str("only one fixed output is allowed for now"),
            FixedOutputNotOut => f.write_str("single fixed output must be named \"out\""),
            FloatingAlgoMismatch => {
                f.write_str("all floating outputs must use the same hash algorithm")
            }
            NoOutputs => f.write_str("must have at least one output"),
            NoHashForOutput { output, drv_name } => {
                write!(f, "no hash for output '{output}' of derivation '{drv_name}'")
            }
            IncorrectOutput { path, expected } => write!(
                f,
                "derivation has incorrect output '{path}', should be '{expected}'"
            ),
            IncorrectOutputShouldBeDeferred(p) => write!(
                f,
                "derivation has incorrect output '{p}', should be deferred"
            ),
            MissingEnv { name, expected } => write!(
                f,
                "derivation has missing environment variable '{name}', should be '{expected}' but is not present"
            ),
            IncorrectEnv {
                name,
                expected,
                actual,
            } => write!(
                f,
                "derivation has incorrect environment variable '{name}', should be '{expected}' but is actually '{actual}'"
            ),
            NotInputAddressed => f.write_str(
                "hash: unexpected output type, these derivation types are not input addressed",
            ),
            InputNotFound(p) => write!(f, "derivation '{p}' could not be read"),
        }
    }
}

impl std::error::Error for DerivationError {}

/// A derivation, as written to a `.drv` file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derivation {
    /// The derivation name (the `.drv` file's name without the extension). Not part of the
    /// ATerm, but needed for output paths.
    pub name: String,
    pub outputs: BTreeMap<String, Output>,
    /// Printed store paths of source inputs.
    pub input_srcs: BTreeSet<String>,
    /// Printed `.drv` paths of input derivations, with the outputs used from each.
    pub input_drvs: BTreeMap<String, BTreeSet<String>>,
    pub platform: String,
    pub builder: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// The hash modulo of a derivation as an input to others (CppNix's `DrvHashModulo`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashModulo {
    /// An input-addressed derivation: the hash of its ATerm with input derivations replaced.
    DrvHash(Hash),
    /// A fixed-output derivation: a hash per output.
    CaOutputHashes(BTreeMap<String, Hash>),
    /// Not computable before building (floating CA, impure, or deferred inputs).
    Deferred,
}

// ---------------------------------------------------------------------------------------------
// ATerm printing
// ---------------------------------------------------------------------------------------------

fn print_string(out: &mut String, s: &str) {
    // Copy the runs between escaped bytes whole (derivations carry long
    // scripts and environments; pushing them char by char was 7% of hello).
    // Every escaped byte is ASCII, so each run ends on a char boundary.
    out.reserve(s.len() + 2);
    out.push('"');
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            _ => continue,
        };
        out.push_str(&s[run..i]);
        out.push_str(esc);
        run = i + 1;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

fn print_unquoted(out: &mut String, s: &str) {
    out.push('"');
    out.push_str(s);
    out.push('"');
}

fn print_unquoted_list<'a>(out: &mut String, items: impl IntoIterator<Item = &'a String>) {
    out.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        print_unquoted(out, s);
    }
    out.push(']');
}

/// How outputs are printed: as they are, or masked (all fields empty) for hashing.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OutputsMode {
    AsIs,
    Masked,
}

impl Derivation {
    /// The ATerm text of this derivation, as written to its `.drv` file.
    /// What a `.drv` file refers to: its input sources and input derivations.
    pub fn references(&self) -> BTreeSet<String> {
        self.input_srcs
            .iter()
            .chain(self.input_drvs.keys())
            .cloned()
            .collect()
    }

    pub fn unparse(&self, store: &StoreDir) -> Result<String, Error> {
        self.unparse_with(store, OutputsMode::AsIs, &self.input_drvs, false)
    }

    fn unparse_with(
        &self,
        store: &StoreDir,
        outputs_mode: OutputsMode,
        input_drvs: &BTreeMap<String, BTreeSet<String>>,
        mask_env: bool,
    ) -> Result<String, Error> {
        let mut s = String::with_capacity(1024);
        s.push_str("Derive([");
        for (i, (name, output)) in self.outputs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('(');
            print_unquoted(&mut s, name);
            let (path, algo, hash) = match (outputs_mode, output) {
                (OutputsMode::Masked, _) | (_, Output::Deferred) => {
                    (String::new(), String::new(), String::new())
                }
                (_, Output::InputAddressed { path }) => {
                    (path.clone(), String::new(), String::new())
                }
                (_, Output::CAFixed(ca)) => (
                    ca_fixed_path(store, ca, &self.name, name)?,
                    ca.print_method_algo(),
                    ca.hash.to_string(HashFormat::Base16, false),
                ),
                (_, Output::CAFloating { method, algo }) => (
                    String::new(),
                    format!("{}{}", method.prefix(), algo.name()),
                    String::new(),
                ),
                (_, Output::Impure { method, algo }) => (
                    String::new(),
                    format!("{}{}", method.prefix(), algo.name()),
                    "impure".to_string(),
                ),
            };
            for field in [&path, &algo, &hash] {
                s.push(',');
                print_unquoted(&mut s, field);
            }
            s.push(')');
        }
        s.push_str("],[");
        for (i, (path, outs)) in input_drvs.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('(');
            print_unquoted(&mut s, path);
            s.push(',');
            print_unquoted_list(&mut s, outs);
            s.push(')');
        }
        s.push_str("],");
        print_unquoted_list(&mut s, &self.input_srcs);
        s.push(',');
        print_unquoted(&mut s, &self.platform);
        s.push(',');
        print_string(&mut s, &self.builder);
        s.push_str(",[");
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            print_string(&mut s, a);
        }
        s.push_str("],[");
        for (i, (k, v)) in self.env.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            s.push('(');
            print_string(&mut s, k);
            s.push(',');
            let blank = mask_env && self.outputs.contains_key(k);
            print_string(&mut s, if blank { "" } else { v });
            s.push(')');
        }
        s.push_str("])");
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// ATerm parsing
// ---------------------------------------------------------------------------------------------

struct Parser<'a> {
    rest: &'a str,
}

impl<'a> Parser<'a> {
    fn expect(&mut self, s: &str) -> Result<(), DerivationError> {
        match self.rest.strip_prefix(s) {
            Some(r) => {
                self.rest = r;
                Ok(())
            }
            None => Err(DerivationError::Expected(s.to_string())),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.rest.as_bytes().first().copied()
    }

    /// A C-style string: the closing quote is the first one preceded by an even number of
    /// backslashes; `\n`, `\r`, `\t` are control characters and `\x` is `x` otherwise.
    fn string(&mut self) -> Result<String, DerivationError> {
        self.expect("\"")?;
        let b = self.rest.as_bytes();
        let mut start = 0;
        let mut end = None;
        while let Some(off) = b[start..].iter().position(|&c| c == b'"') {
            let idx = start + off;
            let backslashes = b[..idx].iter().rev().take_while(|&&c| c == b'\\').count();
            if backslashes % 2 == 0 {
                end = Some(idx);
                break;
            }
            start = idx + 1;
        }
        let end = end.ok_or(DerivationError::UnterminatedString)?;
        let content = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        if !content.contains('\\') {
            return Ok(content.to_string());
        }
        let mut res = String::with_capacity(content.len());
        let mut chars = content.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => res.push('\n'),
                    Some('r') => res.push('\r'),
                    Some('t') => res.push('\t'),
                    Some(c) => res.push(c),
                    None => return Err(DerivationError::UnterminatedString),
                }
            } else {
                res.push(c);
            }
        }
        Ok(res)
    }

    /// After an element (or the opening bracket): consume ',' (more) or ']' (done).
    fn end_of_list(&mut self) -> bool {
        match self.peek() {
            Some(b',') => {
                self.rest = &self.rest[1..];
                false
            }
            Some(b']') => {
                self.rest = &self.rest[1..];
                true
            }
            _ => false,
        }
    }

    fn strings(&mut self) -> Result<BTreeSet<String>, DerivationError> {
        let mut res = BTreeSet::new();
        self.expect("[")?;
        while !self.end_of_list() {
            res.insert(self.string()?);
        }
        Ok(res)
    }

    fn store_path(&mut self, store: &StoreDir) -> Result<String, Error> {
        let s = self.string()?;
        store.parse_canonical(&s)?;
        Ok(s)
    }
}

fn parse_output(
    store: &StoreDir,
    drv_name: &str,
    output_name: &str,
    path: &str,
    algo: &str,
    hash: &str,
) -> Result<Output, Error> {
    if algo.is_empty() {
        if path.is_empty() {
            return Ok(Output::Deferred);
        }
        store.parse_canonical(path)?;
        return Ok(Output::InputAddressed {
            path: path.to_string(),
        });
    }
    let (method, algo) = ContentAddressMethod::split_prefix(algo).ok_or_else(|| {
        Error::MissingExperimentalFeature {
            feature: "git-hashing",
            reason: String::new(),
        }
    })?;
    if method == ContentAddressMethod::Text {
        return Err(Error::MissingExperimentalFeature {
            feature: "dynamic-derivations",
            reason: "text-hashed derivation output".to_string(),
        });
    }
    let algo = HashAlgo::parse(algo)?;
    if hash == "impure" {
        return Err(Error::MissingExperimentalFeature {
            feature: "impure-derivations",
            reason: String::new(),
        });
    }
    if hash.is_empty() {
        return Err(Error::MissingExperimentalFeature {
            feature: "ca-derivations",
            reason: String::new(),
        });
    }
    store.parse_canonical(path)?;
    let hash = Hash::parse_non_sri_unprefixed(hash, algo)?;
    let ca = ContentAddress { method, hash };
    if ca_fixed_path(store, &ca, drv_name, output_name)? != path {
        return Err(DerivationError::CaFixedPathMismatch {
            output: output_name.to_string(),
            path: path.to_string(),
        }
        .into());
    }
    Ok(Output::CAFixed(ca))
}

impl Derivation {
    /// Parse the ATerm text of a `.drv` file. `name` is the derivation name (the file name
    /// without hash part and `.drv`). Experimental output kinds (floating/impure/text
    /// content addressing) and the `DrvWithVersion` form are rejected as CppNix does with
    /// those features disabled.
    pub fn parse(store: &StoreDir, s: &str, name: &str) -> Result<Derivation, Error> {
        let mut p = Parser { rest: s };
        let mut drv = Derivation {
            name: name.to_string(),
            ..Default::default()
        };
        p.expect("D")?;
        match p.peek() {
            Some(b'e') => p.expect("erive(")?,
            Some(b'r') => {
                p.expect("rvWithVersion(")?;
                let version = p.string()?;
                if version == "xp-dyn-drv" {
                    return Err(Error::MissingExperimentalFeature {
                        feature: "dynamic-derivations",
                        reason: format!("derivation '{name}', ATerm format version 'xp-dyn-drv'"),
                    });
                }
                return Err(DerivationError::UnknownVersion(version).into());
            }
            _ => return Err(DerivationError::BadStart.into()),
        }

        p.expect("[")?;
        while !p.end_of_list() {
            p.expect("(")?;
            let id = p.string()?;
            p.expect(",")?;
            let path = p.string()?;
            p.expect(",")?;
            let algo = p.string()?;
            p.expect(",")?;
            let hash = p.string()?;
            p.expect(")")?;
            let output = parse_output(store, name, &id, &path, &algo, &hash)?;
            drv.outputs.insert(id, output);
        }

        p.expect(",[")?;
        while !p.end_of_list() {
            p.expect("(")?;
            let drv_path = p.store_path(store)?;
            p.expect(",")?;
            let outs = p.strings()?;
            if outs.is_empty() {
                return Err(DerivationError::InputDrvWithoutOutputs(drv_path).into());
            }
            drv.input_drvs.insert(drv_path, outs);
            p.expect(")")?;
        }

        p.expect(",")?;
        p.expect("[")?;
        while !p.end_of_list() {
            let src = p.store_path(store)?;
            drv.input_srcs.insert(src);
        }
        p.expect(",")?;
        drv.platform = p.string()?;
        p.expect(",")?;
        drv.builder = p.string()?;

        p.expect(",[")?;
        while !p.end_of_list() {
            drv.args.push(p.string()?);
        }

        p.expect(",[")?;
        while !p.end_of_list() {
            p.expect("(")?;
            let k = p.string()?;
            p.expect(",")?;
            let v = p.string()?;
            drv.env.insert(k, v);
            p.expect(")")?;
        }
        p.expect(")")?;
        Ok(drv)
    }

    /// Parse a `.drv` file's text given its printed store path (the name is taken from it).
    pub fn parse_at_path(store: &StoreDir, drv_path: &str, s: &str) -> Result<Derivation, Error> {
        let sp = store.parse(drv_path)?;
        let name = sp
            .name()
            .strip_suffix(DRV_EXTENSION)
            .unwrap_or(sp.name())
            .to_string();
        Derivation::parse(store, s, &name)
    }
}

// ---------------------------------------------------------------------------------------------
// Types, hash modulo, output paths
// ---------------------------------------------------------------------------------------------

impl Derivation {
    /// The derivation's kind; errors for inconsistent outputs (CppNix's `Derivation::type`).
    pub fn drv_type(&self) -> Result<DerivationType, DerivationError> {
        let mut ty: Option<DerivationType> = None;
        let mut floating_algo: Option<HashAlgo> = None;
        let mut decide = |new: DerivationType| -> Result<(), DerivationError> {
            match ty {
                None => {
                    ty = Some(new);
                    Ok(())
                }
                Some(t) if t != new => Err(DerivationError::MixedOutputTypes),
                Some(DerivationType::ContentAddressed {
                    sandboxed: false,
                    fixed: true,
                }) => Err(DerivationError::OnlyOneFixedOutput),
                Some(_) => Ok(()),
            }
        };
        for (name, output) in &self.outputs {
            match output {
                Output::InputAddressed { .. } => {
                    decide(DerivationType::InputAddressed { deferred: false })?
                }
                Output::CAFixed(_) => {
                    decide(DerivationType::ContentAddressed {
                        sandboxed: false,
                        fixed: true,
                    })?;
                    if name != "out" {
                        return Err(DerivationError::FixedOutputNotOut);
                    }
                }
                Output::CAFloating { algo, .. } => {
                    decide(DerivationType::ContentAddressed {
                        sandboxed: true,
                        fixed: false,
                    })?;
                    match floating_algo {
                        None => floating_algo = Some(*algo),
                        Some(a) if a != *algo => return Err(DerivationError::FloatingAlgoMismatch),
                        Some(_) => {}
                    }
                }
                Output::Deferred => decide(DerivationType::InputAddressed { deferred: true })?,
                Output::Impure { .. } => decide(DerivationType::Impure)?,
            }
        }
        ty.ok_or(DerivationError::NoOutputs)
    }

    /// The printed `.drv` path and the ATerm contents of this derivation: a text path named
    /// `<name>.drv` whose references are the input sources and input derivations.
    pub fn compute_drv_path(&self, store: &StoreDir) -> Result<(String, String), Error> {
        let contents = self.unparse(store)?;
        let hash = Hash::of(HashAlgo::Sha256, contents.as_bytes());
        let refs: BTreeSet<&String> = self
            .input_srcs
            .iter()
            .chain(self.input_drvs.keys())
            .collect();
        let p = store.make_text_path(&format!("{}{DRV_EXTENSION}", self.name), &hash, refs)?;
        Ok((store.print(&p), contents))
    }
}

/// A way to obtain an input derivation from its printed `.drv` path, used by [`ModuloCache`]
/// when a hash modulo is not cached yet.
pub type ReadDerivation<'a> = dyn FnMut(&str) -> Result<Derivation, Error> + 'a;

/// Memoised hash modulo of derivations, keyed by printed `.drv` path (CppNix's global
/// `drvHashes`). After instantiating a derivation, record its [`HashModulo`] with
/// [`ModuloCache::insert`] (via [`ModuloCache::hash_input`]) so that derivations depending on
/// it never need to read it back.
#[derive(Debug, Default, Clone)]
pub struct ModuloCache {
    map: HashMap<String, HashModulo>,
}

impl ModuloCache {
    pub fn new() -> ModuloCache {
        ModuloCache::default()
    }

    pub fn get(&self, drv_path: &str) -> Option<&HashModulo> {
        self.map.get(drv_path)
    }

    pub fn insert(&mut self, drv_path: impl Into<String>, h: HashModulo) {
        self.map.insert(drv_path.into(), h);
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The hash modulo of the derivation at `drv_path`, from the cache or by reading it
    /// with `read` (and caching the result).
    pub fn path_modulo(
        &mut self,
        store: &StoreDir,
        drv_path: &str,
        read: &mut ReadDerivation<'_>,
    ) -> Result<HashModulo, Error> {
        if let Some(h) = self.map.get(drv_path) {
            return Ok(h.clone());
        }
        let drv = read(drv_path)?;
        let h = self.hash_input(store, &drv, read)?;
        self.map.insert(drv_path.to_string(), h.clone());
        Ok(h)
    }

    /// The hash modulo of `drv` as an input of other derivations, with its outputs as they
    /// are (CppNix's `hashDerivationModulo(..., maskOutputs = false)`).
    pub fn hash_input(
        &mut self,
        store: &StoreDir,
        drv: &Derivation,
        read: &mut ReadDerivation<'_>,
    ) -> Result<HashModulo, Error> {
        if drv.drv_type()?.is_fixed() {
            let mut hashes = BTreeMap::new();
            for (name, output) in &drv.outputs {
                let Output::CAFixed(ca) = output else {
                    unreachable!("a fixed derivation has only fixed outputs")
                };
                let s = format!(
                    "fixed:out:{}:{}:{}",
                    ca.print_method_algo(),
                    ca.hash.to_string(HashFormat::Base16, false),
                    ca_fixed_path(store, ca, &drv.name, name)?
                );
                hashes.insert(name.clone(), Hash::of(HashAlgo::Sha256, s.as_bytes()));
            }
            return Ok(HashModulo::CaOutputHashes(hashes));
        }
        if drv
            .outputs
            .values()
            .any(|o| !matches!(o, Output::InputAddressed { .. }))
        {
            return Ok(HashModulo::Deferred);
        }
        let Some(inputs) = self.modulo_inputs(store, drv, read)? else {
            return Ok(HashModulo::Deferred);
        };
        let text = drv.unparse_with(store, OutputsMode::AsIs, &inputs, false)?;
        Ok(HashModulo::DrvHash(Hash::of(
            HashAlgo::Sha256,
            text.as_bytes(),
        )))
    }

    /// The masked ATerm used to compute `drv`'s own output paths: outputs blanked, the
    /// environment variables named after outputs blanked, input derivations replaced by their
    /// hash modulo. `None` when an input's hash is deferred. Only for input-addressed
    /// (possibly deferred) derivations.
    pub fn unparse_masked(
        &mut self,
        store: &StoreDir,
        drv: &Derivation,
        read: &mut ReadDerivation<'_>,
    ) -> Result<Option<String>, Error> {
        if drv
            .outputs
            .values()
            .any(|o| !matches!(o, Output::InputAddressed { .. } | Output::Deferred))
        {
            return Err(DerivationError::NotInputAddressed.into());
        }
        let Some(inputs) = self.modulo_inputs(store, drv, read)? else {
            return Ok(None);
        };
        Ok(Some(drv.unparse_with(
            store,
            OutputsMode::Masked,
            &inputs,
            true,
        )?))
    }

    /// sha256 of [`ModuloCache::unparse_masked`]: the hash that input-addressed output paths
    /// are made from.
    pub fn hash_masked(
        &mut self,
        store: &StoreDir,
        drv: &Derivation,
        read: &mut ReadDerivation<'_>,
    ) -> Result<Option<Hash>, Error> {
        Ok(self
            .unparse_masked(store, drv, read)?
            .map(|s| Hash::of(HashAlgo::Sha256, s.as_bytes())))
    }

    /// Input derivations keyed by the hex of their hash modulo. A fixed-output input
    /// contributes one entry per used output, each with the single output "out"; inputs with
    /// equal hashes are merged.
    fn modulo_inputs(
        &mut self,
        store: &StoreDir,
        drv: &Derivation,
        read: &mut ReadDerivation<'_>,
    ) -> Result<Option<BTreeMap<String, BTreeSet<String>>>, Error> {
        let mut res: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (path, outputs) in &drv.input_drvs {
            match self.path_modulo(store, path, read)? {
                HashModulo::Deferred => return Ok(None),
                HashModulo::DrvHash(h) => {
                    res.entry(h.to_base16())
                        .or_default()
                        .extend(outputs.iter().cloned());
                }
                HashModulo::CaOutputHashes(hashes) => {
                    for o in outputs {
                        let h = hashes
                            .get(o)
                            .ok_or_else(|| DerivationError::NoHashForOutput {
                                output: o.clone(),
                                drv_name: drv.name.clone(),
                            })?;
                        res.entry(h.to_base16())
                            .or_default()
                            .insert("out".to_string());
                    }
                }
            }
        }
        Ok(Some(res))
    }
}

impl Derivation {
    /// The final step of `derivationStrict` for input-addressed and fixed-output
    /// derivations (CppNix's `fillInOutputPaths`): computes the paths of `Deferred` outputs
    /// from the masked hash modulo, makes them `InputAddressed`, and sets missing or empty
    /// environment variables named after outputs to the output paths (including a fixed
    /// output's). Then checks that everything agrees. Returns warnings to print.
    ///
    /// The order of operations in `derivationStrict` is: build `env`/`args`/inputs; for a
    /// fixed output set `outputs = {out: CAFixed}` and `env.out` to its path; otherwise for
    /// every output set `env.<o> = ""` and `outputs.<o> = Deferred`; then call this; then
    /// [`Derivation::compute_drv_path`]; then record [`ModuloCache::hash_input`] of the
    /// result under the `.drv` path.
    pub fn fill_in_output_paths(
        &mut self,
        store: &StoreDir,
        cache: &mut ModuloCache,
        read: &mut ReadDerivation<'_>,
    ) -> Result<Vec<String>, Error> {
        self.process_output_paths(store, cache, read, true)
    }

    /// Check that output paths and their environment variables are what they should be
    /// (CppNix's `checkInvariants`). Returns warnings to print.
    pub fn check_invariants(
        &self,
        store: &StoreDir,
        cache: &mut ModuloCache,
        read: &mut ReadDerivation<'_>,
    ) -> Result<Vec<String>, Error> {
        let mut copy = self.clone();
        copy.process_output_paths(store, cache, read, false)
    }

    fn process_output_paths(
        &mut self,
        store: &StoreDir,
        cache: &mut ModuloCache,
        read: &mut ReadDerivation<'_>,
        fill_in: bool,
    ) -> Result<Vec<String>, Error> {
        let ty = self.drv_type()?;
        let mut warnings = Vec::new();
        // Every output is input-addressed or deferred exactly when the type is; the masked
        // hash is computed before any output is changed, as CppNix's lazy computation is.
        let drv_hash = match ty {
            DerivationType::InputAddressed { .. } => Some(cache.hash_masked(store, self, read)?),
            _ => None,
        };
        let names: Vec<String> = self.outputs.keys().cloned().collect();
        for name in names {
            let output = self.outputs[&name].clone();
            match output {
                Output::InputAddressed { .. } | Output::Deferred => {
                    let Some(Some(h)) = drv_hash else {
                        if let Output::InputAddressed { path } = output {
                            return Err(
                                DerivationError::IncorrectOutputShouldBeDeferred(path).into()
                            );
                        }
                        continue;
                    };
                    let out_path = store.print(&store.make_output_path(&name, &h, &self.name)?);
                    match output {
                        Output::InputAddressed { path } => {
                            if path != out_path {
                                return Err(DerivationError::IncorrectOutput {
                                    path,
                                    expected: out_path,
                                }
                                .into());
                            }
                            self.check_env(&name, &out_path, false, fill_in, &mut warnings)?;
                        }
                        _ => {
                            if fill_in {
                                self.outputs.insert(
                                    name.clone(),
                                    Output::InputAddressed {
                                        path: out_path.clone(),
                                    },
                                );
                                self.check_env(&name, &out_path, true, fill_in, &mut warnings)?;
                            } else {
                                warnings.push(format!(
                                    "derivation has incorrect deferred output, should be '{out_path}'.\nThis will be an error in future versions of Nix; compatibility of CA derivations will be broken."
                                ));
                            }
                        }
                    }
                }
                Output::CAFixed(ca) => {
                    let p = ca_fixed_path(store, &ca, &self.name, &name)?;
                    self.check_env(&name, &p, false, fill_in, &mut warnings)?;
                }
                Output::CAFloating { .. } | Output::Impure { .. } => {}
            }
        }
        Ok(warnings)
    }

    fn check_env(
        &mut self,
        name: &str,
        actual: &str,
        deferred: bool,
        fill_in: bool,
        warnings: &mut Vec<String>,
    ) -> Result<(), Error> {
        if fill_in {
            match self.env.get_mut(name) {
                None => {
                    self.env.insert(name.to_string(), actual.to_string());
                }
                Some(v) if v.is_empty() => *v = actual.to_string(),
                Some(_) => {}
            }
        }
        match self.env.get_mut(name) {
            None => Err(DerivationError::MissingEnv {
                name: name.to_string(),
                expected: actual.to_string(),
            }
            .into()),
            Some(v) if v != actual => {
                if deferred {
                    warnings.push(format!(
                        "derivation has incorrect environment variable '{name}', should be '{actual}' but is actually '{v}'\nThis will be an error in future versions of Nix; compatibility of CA derivations will be broken."
                    ));
                    if fill_in {
                        *v = actual.to_string();
                    }
                    Ok(())
                } else {
                    Err(DerivationError::IncorrectEnv {
                        name: name.to_string(),
                        expected: actual.to_string(),
                        actual: v.clone(),
                    }
                    .into())
                }
            }
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> StoreDir {
        StoreDir::default()
    }

    // .drv files written by CppNix 2.34 (nix-instantiate) for:
    //
    //   derivation { name = "x"; system = "x"; builder = "/bin/sh"; }
    const X_DRV_PATH: &str = "/nix/store/safnr1ywsblyl5qfbca0178m104hzxaw-x.drv";
    const X_DRV: &str = r#"Derive([("out","/nix/store/wrjy0zpx12zvynnga8wrzngbbg6yq3vr-x","","")],[],[],"x","/bin/sh",[],[("builder","/bin/sh"),("name","x"),("out","/nix/store/wrjy0zpx12zvynnga8wrzngbbg6yq3vr-x"),("system","x")])"#;

    //   let a = builtins.toFile "a" "x";
    //     fod = derivation { name = "fod"; system = "x86_64-linux"; builder = "/bin/sh";
    //       outputHash = "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="; outputHashMode = "recursive"; };
    //     fodflat = derivation { name = "fodflat"; system = "x86_64-linux"; builder = "/bin/sh";
    //       outputHashAlgo = "sha1"; outputHash = "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"; };
    //     dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh";
    //       outputs = ["out" "dev"]; args = ["-c" "echo \"hi\"\n\ttab\r\\"]; };
    //     top = derivation { name = "top"; system = "x86_64-linux"; builder = "/bin/sh";
    //       args = [ "${a}" "${dep.dev}" "${fod}" "${fodflat}" ]; weird = "q\"\\\n"; out = "preset"; };
    const TOP_DRV_PATH: &str = "/nix/store/709yy6xal9ggh4kygfmpvmkfcn1167gs-top.drv";
    const TOP_DRV: &str = r#"Derive([("out","/nix/store/y0lphfcfikri7cxcs993vjd7n2hncpvb-top","","")],[("/nix/store/g2bac541gi0wv8flgl88hsvzd57yp1xl-dep.drv",["dev"]),("/nix/store/m2a3zhkdzmz5j40pzyfyjdgrnj6z8x9w-fodflat.drv",["out"]),("/nix/store/mfk59j2aclz0mdcrc5k8z8h8mh9f37d2-fod.drv",["out"])],["/nix/store/12wigjpizrn8axaqxj288q1b751qmwya-a"],"x86_64-linux","/bin/sh",["/nix/store/12wigjpizrn8axaqxj288q1b751qmwya-a","/nix/store/m8wwnb9sp15i3z1bkaas6lggws95nvi7-dep-dev","/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-fod","/nix/store/qqh13lzw1jghqw1j0rkibdhph24yian4-fodflat"],[("builder","/bin/sh"),("name","top"),("out","/nix/store/y0lphfcfikri7cxcs993vjd7n2hncpvb-top"),("system","x86_64-linux"),("weird","q\"\\\n")])"#;
    const FOD_DRV_PATH: &str = "/nix/store/mfk59j2aclz0mdcrc5k8z8h8mh9f37d2-fod.drv";
    const FOD_DRV: &str = r#"Derive([("out","/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-fod","r:sha256","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","fod"),("out","/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-fod"),("outputHash","sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),("outputHashMode","recursive"),("system","x86_64-linux")])"#;
    const FODFLAT_DRV_PATH: &str = "/nix/store/m2a3zhkdzmz5j40pzyfyjdgrnj6z8x9w-fodflat.drv";
    const FODFLAT_DRV: &str = r#"Derive([("out","/nix/store/qqh13lzw1jghqw1j0rkibdhph24yian4-fodflat","sha1","aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d")],[],[],"x86_64-linux","/bin/sh",[],[("builder","/bin/sh"),("name","fodflat"),("out","/nix/store/qqh13lzw1jghqw1j0rkibdhph24yian4-fodflat"),("outputHash","aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),("outputHashAlgo","sha1"),("system","x86_64-linux")])"#;
    const DEP_DRV_PATH: &str = "/nix/store/g2bac541gi0wv8flgl88hsvzd57yp1xl-dep.drv";
    const DEP_DRV: &str = r#"Derive([("dev","/nix/store/m8wwnb9sp15i3z1bkaas6lggws95nvi7-dep-dev","",""),("out","/nix/store/wx8ar5x4cwpg86xxhqmra70gfs262qah-dep","","")],[],[],"x86_64-linux","/bin/sh",["-c","echo \"hi\"\n\ttab\r\\"],[("builder","/bin/sh"),("dev","/nix/store/m8wwnb9sp15i3z1bkaas6lggws95nvi7-dep-dev"),("name","dep"),("out","/nix/store/wx8ar5x4cwpg86xxhqmra70gfs262qah-dep"),("outputs","out dev"),("system","x86_64-linux")])"#;

    //   f1 = derivation { name = "f"; system = "s"; builder = "/b1"; outputHash = "sha256-LPJN...="; };
    //   f2 = (the same with builder "/b2");
    //   mid = derivation { name = "mid"; system = "s"; builder = "/b"; outputs = ["lib" "out"]; x = f1; };
    //   top = derivation { name = "chain"; system = "s"; builder = "/b"; a = "${f1}${f2}";
    //     m = mid.lib; n = mid; __structuredAttrs = true; nested = { z = [1 2.5 "s" null true]; }; };
    const F1_DRV_PATH: &str = "/nix/store/700xl9fykkg82jmww6y7i0wcs7rqyqbd-f.drv";
    const F1_DRV: &str = r#"Derive([("out","/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f","sha256","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")],[],[],"s","/b1",[],[("builder","/b1"),("name","f"),("out","/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f"),("outputHash","sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),("system","s")])"#;
    const F2_DRV_PATH: &str = "/nix/store/5yiay42iglpi4pdfsiza26rfbqcx4k28-f.drv";
    const F2_DRV: &str = r#"Derive([("out","/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f","sha256","2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824")],[],[],"s","/b2",[],[("builder","/b2"),("name","f"),("out","/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f"),("outputHash","sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="),("system","s")])"#;
    const MID_DRV_PATH: &str = "/nix/store/k2qjy1mkcxmqgq5gnqd1kzzlqay6z2i1-mid.drv";
    const MID_DRV: &str = r#"Derive([("lib","/nix/store/mghm1rl6z1w0klci77hqq5zpccr3jpy1-mid-lib","",""),("out","/nix/store/1lyj4j61j5nbp8yx8l7d5pqg9iqamn16-mid","","")],[("/nix/store/700xl9fykkg82jmww6y7i0wcs7rqyqbd-f.drv",["out"])],[],"s","/b",[],[("builder","/b"),("lib","/nix/store/mghm1rl6z1w0klci77hqq5zpccr3jpy1-mid-lib"),("name","mid"),("out","/nix/store/1lyj4j61j5nbp8yx8l7d5pqg9iqamn16-mid"),("outputs","lib out"),("system","s"),("x","/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f")])"#;
    const CHAIN_DRV_PATH: &str = "/nix/store/y8df31g9isbgspgny9nsj7l51m5458bk-chain.drv";
    const CHAIN_DRV: &str = r#"Derive([("out","/nix/store/nh48f7aybff429c2dfblk73jjn2y6sia-chain","","")],[("/nix/store/5yiay42iglpi4pdfsiza26rfbqcx4k28-f.drv",["out"]),("/nix/store/700xl9fykkg82jmww6y7i0wcs7rqyqbd-f.drv",["out"]),("/nix/store/k2qjy1mkcxmqgq5gnqd1kzzlqay6z2i1-mid.drv",["lib"])],[],"s","/b",[],[("__json","{\"a\":\"/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f\",\"builder\":\"/b\",\"m\":\"/nix/store/mghm1rl6z1w0klci77hqq5zpccr3jpy1-mid-lib\",\"n\":\"/nix/store/mghm1rl6z1w0klci77hqq5zpccr3jpy1-mid-lib\",\"name\":\"chain\",\"nested\":{\"z\":[1,2.5,\"s\",null,true]},\"system\":\"s\"}"),("out","/nix/store/nh48f7aybff429c2dfblk73jjn2y6sia-chain")])"#;

    //   derivation { name = "emptyhash"; system = "s"; builder = "/b"; outputHash = "";
    //     outputHashAlgo = "sha256"; outputHashMode = "flat"; }
    const EMPTYHASH_DRV_PATH: &str = "/nix/store/nkl6yqy757v1lhkxi3dicdhrqxcrfx6i-emptyhash.drv";
    const EMPTYHASH_DRV: &str = r#"Derive([("out","/nix/store/lrk666zddfch5a6pbvbvzqbjpvmbzs93-emptyhash","sha256","0000000000000000000000000000000000000000000000000000000000000000")],[],[],"s","/b",[],[("builder","/b"),("name","emptyhash"),("out","/nix/store/lrk666zddfch5a6pbvbvzqbjpvmbzs93-emptyhash"),("outputHash",""),("outputHashAlgo","sha256"),("outputHashMode","flat"),("system","s")])"#;

    const ALL: [(&str, &str); 10] = [
        (X_DRV_PATH, X_DRV),
        (TOP_DRV_PATH, TOP_DRV),
        (FOD_DRV_PATH, FOD_DRV),
        (FODFLAT_DRV_PATH, FODFLAT_DRV),
        (DEP_DRV_PATH, DEP_DRV),
        (F1_DRV_PATH, F1_DRV),
        (F2_DRV_PATH, F2_DRV),
        (MID_DRV_PATH, MID_DRV),
        (CHAIN_DRV_PATH, CHAIN_DRV),
        (EMPTYHASH_DRV_PATH, EMPTYHASH_DRV),
    ];

    fn reader() -> impl FnMut(&str) -> Result<Derivation, Error> {
        |p: &str| {
            let (_, text) = ALL
                .iter()
                .find(|(path, _)| *path == p)
                .ok_or_else(|| Error::from(DerivationError::InputNotFound(p.to_string())))?;
            Derivation::parse_at_path(&StoreDir::default(), p, text)
        }
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Do what derivationStrict does for an input-addressed derivation.
    fn instantiate(
        cache: &mut ModuloCache,
        name: &str,
        outputs: &[&str],
        mut drv: Derivation,
    ) -> (String, Derivation) {
        let s = store();
        drv.name = name.to_string();
        for o in outputs {
            drv.env.insert(o.to_string(), String::new());
            drv.outputs.insert(o.to_string(), Output::Deferred);
        }
        let warnings = drv.fill_in_output_paths(&s, cache, &mut reader()).unwrap();
        assert!(warnings.is_empty());
        let (path, _) = drv.compute_drv_path(&s).unwrap();
        let h = cache.hash_input(&s, &drv, &mut reader()).unwrap();
        cache.insert(path.clone(), h);
        (path, drv)
    }

    #[test]
    fn strings_escape_as_cppnix() {
        let mut out = String::new();
        print_string(&mut out, "a\"b\\c\nd\re\tf – ünï\u{0}");
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\re\\tf – ünï\u{0}\"");
        out.clear();
        print_string(&mut out, "");
        assert_eq!(out, "\"\"");
    }

    #[test]
    fn round_trip_cppnix_drvs() {
        let s = store();
        for (path, text) in ALL {
            let drv = Derivation::parse_at_path(&s, path, text).unwrap();
            assert_eq!(drv.unparse(&s).unwrap(), text, "{path}");
            let (computed, contents) = drv.compute_drv_path(&s).unwrap();
            assert_eq!(computed, path);
            assert_eq!(contents, text);
            // The stored derivations are consistent.
            let mut cache = ModuloCache::new();
            drv.check_invariants(&s, &mut cache, &mut reader()).unwrap();
        }
    }

    #[test]
    fn simple_derivation_from_scratch() {
        let mut cache = ModuloCache::new();
        let drv = Derivation {
            platform: "x".into(),
            builder: "/bin/sh".into(),
            env: env(&[("builder", "/bin/sh"), ("name", "x"), ("system", "x")]),
            ..Default::default()
        };
        let (path, drv) = instantiate(&mut cache, "x", &["out"], drv);
        assert_eq!(path, X_DRV_PATH);
        assert_eq!(drv.unparse(&store()).unwrap(), X_DRV);
        assert_eq!(
            drv.outputs["out"]
                .path(&store(), "x", "out")
                .unwrap()
                .unwrap(),
            "/nix/store/wrjy0zpx12zvynnga8wrzngbbg6yq3vr-x"
        );
    }

    #[test]
    fn masked_form() {
        let s = store();
        let drv = Derivation::parse_at_path(&s, X_DRV_PATH, X_DRV).unwrap();
        let masked = ModuloCache::new()
            .unparse_masked(&s, &drv, &mut reader())
            .unwrap()
            .unwrap();
        assert_eq!(
            masked,
            r#"Derive([("out","","","")],[],[],"x","/bin/sh",[],[("builder","/bin/sh"),("name","x"),("out",""),("system","x")])"#
        );
    }

    fn fixed(
        hash: Hash,
        method: ContentAddressMethod,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Derivation {
        let s = store();
        let ca = ContentAddress { method, hash };
        let mut drv = Derivation {
            name: name.to_string(),
            ..Default::default()
        };
        drv.env = env(extra);
        drv.outputs.insert("out".into(), Output::CAFixed(ca));
        drv.fill_in_output_paths(&s, &mut ModuloCache::new(), &mut reader())
            .unwrap();
        drv
    }

    #[test]
    fn fixed_output_derivations_from_scratch() {
        let s = store();
        let mut drv = fixed(
            Hash::of(HashAlgo::Sha256, b"hello"),
            ContentAddressMethod::Recursive,
            "fod",
            &[
                ("builder", "/bin/sh"),
                ("name", "fod"),
                (
                    "outputHash",
                    "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
                ),
                ("outputHashMode", "recursive"),
                ("system", "x86_64-linux"),
            ],
        );
        drv.platform = "x86_64-linux".into();
        drv.builder = "/bin/sh".into();
        assert_eq!(
            drv.compute_drv_path(&s).unwrap(),
            (FOD_DRV_PATH.to_string(), FOD_DRV.to_string())
        );
        let mut cache = ModuloCache::new();
        match cache.hash_input(&s, &drv, &mut reader()).unwrap() {
            HashModulo::CaOutputHashes(m) => {
                let expect = Hash::of(
                    HashAlgo::Sha256,
                    b"fixed:out:r:sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824:/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-fod",
                );
                assert_eq!(m["out"], expect);
            }
            other => panic!("{other:?}"),
        }

        let mut drv = fixed(
            Hash::zero(HashAlgo::Sha256),
            ContentAddressMethod::Flat,
            "emptyhash",
            &[
                ("builder", "/b"),
                ("name", "emptyhash"),
                ("outputHash", ""),
                ("outputHashAlgo", "sha256"),
                ("outputHashMode", "flat"),
                ("system", "s"),
            ],
        );
        drv.platform = "s".into();
        drv.builder = "/b".into();
        assert_eq!(drv.compute_drv_path(&s).unwrap().0, EMPTYHASH_DRV_PATH);
    }

    // CppNix 2.34: derivation { name = "n"; system = "s"; builder = "/b"; outputHashMode = m;
    //   outputHashAlgo = a; outputHash = builtins.hashString a "hello"; } -> [outPath drvPath]
    #[test]
    fn fixed_output_modes_and_algos() {
        let s = store();
        let cases = [
            (
                "recursive",
                HashAlgo::Sha1,
                ContentAddressMethod::Recursive,
                "/nix/store/jgczpk0k1a00bpjzgfsfs3qxfmz4lgjr-n",
                "/nix/store/clivilcicsjiwnk8557679amyxcadlsg-n.drv",
            ),
            (
                "flat",
                HashAlgo::Md5,
                ContentAddressMethod::Flat,
                "/nix/store/0sq39694nz1i4mlm84ignb6phggnhyfd-n",
                "/nix/store/ch5bm2rnyc01zfwbyffc1lwgzahkzyz3-n.drv",
            ),
            (
                "nar",
                HashAlgo::Sha512,
                ContentAddressMethod::Recursive,
                "/nix/store/qq84rbn2k9y14klfd8w996nimmzixxln-n",
                "/nix/store/bif5jnawhzbd7924b8ndky3lv580xkvg-n.drv",
            ),
        ];
        for (mode, algo, method, out, drv_path) in cases {
            assert_eq!(
                ContentAddressMethod::from_output_hash_mode(mode, "n").unwrap(),
                Some(method)
            );
            let hash = Hash::of(algo, b"hello");
            let hex = hash.to_base16();
            let mut drv = fixed(
                hash,
                method,
                "n",
                &[
                    ("builder", "/b"),
                    ("name", "n"),
                    ("outputHash", &hex),
                    ("outputHashAlgo", algo.name()),
                    ("outputHashMode", mode),
                    ("system", "s"),
                ],
            );
            drv.platform = "s".into();
            drv.builder = "/b".into();
            assert_eq!(drv.env["out"], out);
            assert_eq!(drv.compute_drv_path(&s).unwrap().0, drv_path);
        }
        assert_eq!(
            ContentAddressMethod::from_output_hash_mode("foo", "n").unwrap(),
            None
        );
    }

    #[test]
    fn dependent_derivations_from_scratch() {
        let s = store();
        let mut cache = ModuloCache::new();
        // dep, with escapes in args.
        let dep = Derivation {
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec!["-c".into(), "echo \"hi\"\n\ttab\r\\".into()],
            env: env(&[
                ("builder", "/bin/sh"),
                ("name", "dep"),
                ("outputs", "out dev"),
                ("system", "x86_64-linux"),
            ]),
            ..Default::default()
        };
        let (dep_path, dep) = instantiate(&mut cache, "dep", &["out", "dev"], dep);
        assert_eq!(dep_path, DEP_DRV_PATH);
        assert_eq!(dep.unparse(&s).unwrap(), DEP_DRV);

        // The fixed-output inputs are read from their .drv text through the reader, the
        // dep from the cache.
        let a = "/nix/store/12wigjpizrn8axaqxj288q1b751qmwya-a".to_string();
        let top = Derivation {
            platform: "x86_64-linux".into(),
            builder: "/bin/sh".into(),
            args: vec![
                a.clone(),
                "/nix/store/m8wwnb9sp15i3z1bkaas6lggws95nvi7-dep-dev".into(),
                "/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-fod".into(),
                "/nix/store/qqh13lzw1jghqw1j0rkibdhph24yian4-fodflat".into(),
            ],
            env: env(&[
                ("builder", "/bin/sh"),
                ("name", "top"),
                ("out", "preset"),
                ("system", "x86_64-linux"),
                ("weird", "q\"\\\n"),
            ]),
            input_srcs: [a].into_iter().collect(),
            input_drvs: [
                (DEP_DRV_PATH, "dev"),
                (FOD_DRV_PATH, "out"),
                (FODFLAT_DRV_PATH, "out"),
            ]
            .iter()
            .map(|(p, o)| (p.to_string(), [o.to_string()].into_iter().collect()))
            .collect(),
            ..Default::default()
        };
        let (top_path, top) = instantiate(&mut cache, "top", &["out"], top);
        assert_eq!(top.unparse(&s).unwrap(), TOP_DRV);
        assert_eq!(top_path, TOP_DRV_PATH);

        // A chain through a multi-output derivation, with two fixed-output inputs whose
        // hash modulo coincide, and structured attrs.
        let mid = Derivation {
            platform: "s".into(),
            builder: "/b".into(),
            env: env(&[
                ("builder", "/b"),
                ("name", "mid"),
                ("outputs", "lib out"),
                ("system", "s"),
                ("x", "/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f"),
            ]),
            input_drvs: [(
                F1_DRV_PATH.to_string(),
                ["out".to_string()].into_iter().collect(),
            )]
            .into_iter()
            .collect(),
            ..Default::default()
        };
        let (mid_path, _) = instantiate(&mut cache, "mid", &["lib", "out"], mid);
        assert_eq!(mid_path, MID_DRV_PATH);
        let chain_src = Derivation::parse_at_path(&s, CHAIN_DRV_PATH, CHAIN_DRV).unwrap();
        let chain = Derivation {
            platform: "s".into(),
            builder: "/b".into(),
            env: env(&[("__json", &chain_src.env["__json"])]),
            input_drvs: chain_src.input_drvs.clone(),
            ..Default::default()
        };
        let (chain_path, chain) = instantiate(&mut cache, "chain", &["out"], chain);
        assert_eq!(chain.unparse(&s).unwrap(), CHAIN_DRV);
        assert_eq!(chain_path, CHAIN_DRV_PATH);
        let masked = cache
            .unparse_masked(&s, &chain, &mut reader())
            .unwrap()
            .unwrap();
        // f1 and f2 have the same output hash modulo and are merged into one entry.
        assert_eq!(masked.matches("[\"out\"]").count(), 1);
        assert!(masked.starts_with("Derive([(\"out\",\"\",\"\",\"\")],[(\""));
    }

    #[test]
    fn output_type_errors() {
        let s = store();
        let mut drv = Derivation {
            name: "n".into(),
            ..Default::default()
        };
        assert_eq!(drv.drv_type(), Err(DerivationError::NoOutputs));
        drv.outputs.insert("out".into(), Output::Deferred);
        drv.outputs.insert(
            "dev".into(),
            Output::InputAddressed {
                path: "/nix/store/x".into(),
            },
        );
        assert_eq!(drv.drv_type(), Err(DerivationError::MixedOutputTypes));
        let ca = ContentAddress {
            method: ContentAddressMethod::Flat,
            hash: Hash::zero(HashAlgo::Sha256),
        };
        let mut fod = Derivation {
            name: "n".into(),
            ..Default::default()
        };
        fod.outputs.insert("dev".into(), Output::CAFixed(ca));
        assert_eq!(
            fod.drv_type().unwrap_err().to_string(),
            "single fixed output must be named \"out\""
        );
        // An explicitly wrong output path is an error.
        let mut bad = Derivation::parse_at_path(&s, X_DRV_PATH, X_DRV).unwrap();
        bad.outputs.insert(
            "out".into(),
            Output::InputAddressed {
                path: "/nix/store/00000000000000000000000000000000-x".into(),
            },
        );
        assert_eq!(
            bad.check_invariants(&s, &mut ModuloCache::new(), &mut reader())
                .unwrap_err()
                .to_string(),
            "derivation has incorrect output '/nix/store/00000000000000000000000000000000-x', should be '/nix/store/wrjy0zpx12zvynnga8wrzngbbg6yq3vr-x'"
        );
        let mut bad_env = Derivation::parse_at_path(&s, X_DRV_PATH, X_DRV).unwrap();
        bad_env.env.insert("out".into(), "/wrong".into());
        assert_eq!(
            bad_env
                .check_invariants(&s, &mut ModuloCache::new(), &mut reader())
                .unwrap_err()
                .to_string(),
            "derivation has incorrect environment variable 'out', should be '/nix/store/wrjy0zpx12zvynnga8wrzngbbg6yq3vr-x' but is actually '/wrong'"
        );
        // Without the variable the masked hash differs, so the output path does too (this
        // path is computed by this crate; CppNix never instantiates such a derivation).
        bad_env.env.remove("out");
        let h = ModuloCache::new()
            .hash_masked(&s, &bad_env, &mut reader())
            .unwrap()
            .unwrap();
        let p = s.print(&s.make_output_path("out", &h, "x").unwrap());
        assert_eq!(p, "/nix/store/c6ibsk98y3w7bk6rgxb8sikrz2ivxsr9-x");
        bad_env
            .outputs
            .insert("out".into(), Output::InputAddressed { path: p });
        assert_eq!(
            bad_env
                .check_invariants(&s, &mut ModuloCache::new(), &mut reader())
                .unwrap_err()
                .to_string(),
            "derivation has missing environment variable 'out', should be '/nix/store/c6ibsk98y3w7bk6rgxb8sikrz2ivxsr9-x' but is not present"
        );
    }

    #[test]
    fn parse_errors() {
        let s = store();
        let err = |t: &str| Derivation::parse(&s, t, "x").unwrap_err().to_string();
        assert_eq!(err("Foo"), "expected string 'D'");
        assert_eq!(
            err("Dx"),
            "derivation does not start with 'Derive' or 'DrvWithVersion'"
        );
        assert_eq!(err("Derive([(\"out"), "unterminated string in derivation");
        assert_eq!(err("Derive([]"), "expected string ',['");
        let tampered = FOD_DRV.replace("2cf24dba", "2cf24dbb");
        assert_eq!(
            err(&tampered.replace("-fod\"", "-x\"")),
            "derivation output 'out' has path '/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-x', which does not match its content address"
        );
        assert!(
            err(r#"Derive([("out","","sha256","")],[],[],"s","/b",[],[])"#)
                .starts_with("experimental Nix feature 'ca-derivations' is disabled")
        );
        assert_eq!(
            err("DrvWithVersion(\"v2\","),
            "Unknown derivation ATerm format version 'v2'"
        );
    }

    #[test]
    fn string_escapes_round_trip() {
        let s = store();
        let mut drv = Derivation::parse_at_path(&s, X_DRV_PATH, X_DRV).unwrap();
        let nasty = "a\"b\\c\nd\re\tf\\\\\"\u{1}ü";
        drv.args.push(nasty.to_string());
        drv.env.insert("k\"".into(), nasty.to_string());
        let text = drv.unparse(&s).unwrap();
        let expect = format!("\"a\\\"b\\\\c\\nd\\re\\tf\\\\\\\\\\\"{}ü\"", '\u{1}');
        assert!(text.contains(&expect), "{text}");
        let back = Derivation::parse(&s, &text, "x").unwrap();
        assert_eq!(back, drv);
    }

    #[test]
    fn placeholders() {
        // builtins.placeholder "out" (documented in CppNix's primops.cc).
        assert_eq!(
            hash_placeholder("out"),
            "/1rz4g4znpzjwh1xymhjpm42vipw92pr73vdgl6xs1hycac8kf2n9"
        );
        assert_eq!(output_path_name("foo", "out"), "foo");
        assert_eq!(output_path_name("foo", "dev"), "foo-dev");
    }
}
