//! Store directory, store paths, and the content-addressing recipes that produce them.
//!
//! This module owns:
//!
//! * [`StoreDir`]: the logical store directory (default `/nix/store`), printing and parsing of
//!   absolute store paths.
//! * [`StorePath`]: a validated `<32-char nix32 hash>-<name>` base name, with CppNix's name
//!   rules ([`check_name`]) and error texts.
//! * The store path recipe `makeStorePath`: the path of `(type, inner hash, name)` is the nix32
//!   of the 20-byte XOR-fold of `sha256("<type>:<algo>:<hex>:<storedir>:<name>")`.
//! * [`ContentAddressMethod`] / [`ContentAddress`] and the derived recipes: text files
//!   (`builtins.toFile`, `.drv` files), fixed outputs (`builtins.path`, fixed-output
//!   derivations) and input-addressed derivation outputs.

use std::collections::BTreeSet;
use std::fmt;

use crate::hash::{compress_hash, encode_nix32, Hash, HashAlgo, HashFormat};

/// Length of the hash part of a store path, in nix32 characters.
pub const HASH_PART_LEN: usize = 32;

/// Longest allowed store path name.
pub const MAX_NAME_LEN: usize = 211;

/// The extension of derivation files.
pub const DRV_EXTENSION: &str = ".drv";

/// Why a store path name is invalid (CppNix's `BadStorePathName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(String),
    /// The name is exactly "." or "..".
    Invalid(String),
    /// The first dash-separated component is "." or ".." (the second field).
    DotComponent(String, &'static str),
    /// The name contains a byte outside `[0-9a-zA-Z+\-._?=]`.
    IllegalChar(String, u8),
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("name must not be empty"),
            NameError::TooLong(n) => write!(
                f,
                "name '{n}' must be no longer than {MAX_NAME_LEN} characters"
            ),
            NameError::Invalid(n) => write!(f, "name '{n}' is not valid"),
            NameError::DotComponent(n, c) => write!(
                f,
                "name '{n}' is not valid: first dash-separated component must not be '{c}'"
            ),
            NameError::IllegalChar(n, c) => write!(
                f,
                "name '{n}' contains illegal character '{}'",
                String::from_utf8_lossy(&[*c])
            ),
        }
    }
}

impl std::error::Error for NameError {}

/// Errors about store paths and content addresses. `Display` gives CppNix's texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathError {
    /// A base name's name part is invalid: "path '<base>' is not a valid store path: ...".
    BadName { path: String, error: NameError },
    /// "'<base>' is too short to be a valid store path".
    TooShort(String),
    /// The 33rd character of a base name is not '-'.
    NoDash(String),
    /// The hash part contains a character that is not nix32.
    IllegalHashChar(String, u8),
    /// "empty path is not a valid store path".
    EmptyPath,
    /// From `parseStorePath` (path printed in double quotes).
    NotInStore(String),
    /// From `parseStorePathCanonical`/`toStorePath` (path printed in single quotes).
    NotInStoreCanonical(String),
    /// `parseStorePath` needs an absolute path.
    NotAbsolute(String),
    /// A fixed output that is not NAR+sha256 cannot have references.
    FixedOutputWithReferences(String),
    /// Text hashing cannot express self references.
    TextSelfReference,
    /// Text hashing is only defined for sha256.
    TextNotSha256(HashAlgo),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::BadName { path, error } => {
                write!(f, "path '{path}' is not a valid store path: {error}")
            }
            PathError::TooShort(p) => write!(f, "'{p}' is too short to be a valid store path"),
            PathError::NoDash(p) => write!(
                f,
                "'{p}' can't name a store path because the hash part is not followed by a '-'"
            ),
            PathError::IllegalHashChar(p, c) => write!(
                f,
                "store path '{p}' contains illegal base-32 character '{}'",
                String::from_utf8_lossy(&[*c])
            ),
            PathError::EmptyPath => f.write_str("empty path is not a valid store path"),
            PathError::NotInStore(p) => write!(f, "path \"{p}\" is not in the Nix store"),
            PathError::NotInStoreCanonical(p) => write!(f, "path '{p}' is not in the Nix store"),
            PathError::NotAbsolute(p) => write!(f, "not an absolute path: \"{p}\""),
            PathError::FixedOutputWithReferences(name) => write!(
                f,
                "fixed output derivation '{name}' is not allowed to refer to other store paths.\nYou may need to use the 'unsafeDiscardReferences' derivation attribute, see the manual for more details."
            ),
            PathError::TextSelfReference => f.write_str("self-reference not allowed with text hashing"),
            PathError::TextNotSha256(a) => write!(
                f,
                "text hashing requires a sha256 hash, but instead using: {a}"
            ),
        }
    }
}

impl std::error::Error for PathError {}

/// CppNix's `checkName`: validate a store path name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    let b = name.as_bytes();
    if b.is_empty() {
        return Err(NameError::Empty);
    }
    if b.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.to_string()));
    }
    if b[0] == b'.' {
        if b.len() == 1 {
            return Err(NameError::Invalid(name.to_string()));
        }
        if b[1] == b'-' {
            return Err(NameError::DotComponent(name.to_string(), "."));
        }
        if b[1] == b'.' {
            if b.len() == 2 {
                return Err(NameError::Invalid(name.to_string()));
            }
            if b[2] == b'-' {
                return Err(NameError::DotComponent(name.to_string(), ".."));
            }
        }
    }
    for &c in b {
        let ok = c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.' | b'_' | b'?' | b'=');
        if !ok {
            return Err(NameError::IllegalChar(name.to_string(), c));
        }
    }
    Ok(())
}

/// A store path's base name, `<hash part>-<name>`, validated. Ordered by base name, which is
/// also the order of the printed absolute paths.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    base_name: String,
}

impl StorePath {
    /// Parse and validate a base name (CppNix's `StorePath(std::string_view)`).
    pub fn from_base_name(base_name: &str) -> Result<StorePath, PathError> {
        let b = base_name.as_bytes();
        if b.len() < HASH_PART_LEN + 1 {
            return Err(PathError::TooShort(base_name.to_string()));
        }
        if b[HASH_PART_LEN] != b'-' {
            return Err(PathError::NoDash(base_name.to_string()));
        }
        for &c in &b[..HASH_PART_LEN] {
            let ok = (c.is_ascii_digit() || c.is_ascii_lowercase())
                && !matches!(c, b'e' | b'o' | b'u' | b't');
            if !ok {
                return Err(PathError::IllegalHashChar(base_name.to_string(), c));
            }
        }
        check_path_name(base_name, &base_name[HASH_PART_LEN + 1..])?;
        Ok(StorePath {
            base_name: base_name.to_string(),
        })
    }

    /// Build `<nix32(hash_bytes)>-<name>`, validating the name (CppNix's
    /// `StorePath(const Hash &, std::string_view)`).
    pub fn from_hash_and_name(hash_bytes: &[u8], name: &str) -> Result<StorePath, PathError> {
        let base_name = format!("{}-{}", encode_nix32(hash_bytes), name);
        check_path_name(&base_name, name)?;
        Ok(StorePath { base_name })
    }

    /// `<hash part>-<name>`.
    pub fn base_name(&self) -> &str {
        &self.base_name
    }

    /// The 32-character nix32 hash part.
    pub fn hash_part(&self) -> &str {
        &self.base_name[..HASH_PART_LEN]
    }

    /// The name after the hash part and dash.
    pub fn name(&self) -> &str {
        &self.base_name[HASH_PART_LEN + 1..]
    }

    /// Whether the name ends in `.drv`.
    pub fn is_derivation(&self) -> bool {
        self.name().ends_with(DRV_EXTENSION)
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.base_name)
    }
}

fn check_path_name(base_name: &str, name: &str) -> Result<(), PathError> {
    check_name(name).map_err(|error| PathError::BadName {
        path: base_name.to_string(),
        error,
    })
}

/// How file system content is turned into a content address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContentAddressMethod {
    /// The hash of a single regular file's contents.
    Flat,
    /// The hash of the NAR serialisation ("nar", or "recursive" in derivation attributes).
    Recursive,
    /// Text hashing: a flat file that may refer to other store paths (`toFile`, `.drv`).
    Text,
}

impl ContentAddressMethod {
    /// The prefix in front of the algorithm in derivation outputs and fixed-output hashes:
    /// "" for flat, "r:" for recursive, "text:" for text.
    pub fn prefix(self) -> &'static str {
        match self {
            ContentAddressMethod::Flat => "",
            ContentAddressMethod::Recursive => "r:",
            ContentAddressMethod::Text => "text:",
        }
    }

    /// Interpret an `outputHashMode` value as `derivationStrict` does: "recursive" and "nar"
    /// are NAR hashing, "flat" and "text" are themselves. Returns `Ok(None)` for unknown values
    /// (CppNix: `invalid value '<s>' for 'outputHashMode' attribute`). "text" and "git" need
    /// experimental features that are reported as disabled (`drv_name` is used in the message
    /// for "text").
    pub fn from_output_hash_mode(
        s: &str,
        drv_name: &str,
    ) -> Result<Option<ContentAddressMethod>, crate::Error> {
        match s {
            "recursive" | "nar" => Ok(Some(ContentAddressMethod::Recursive)),
            "flat" => Ok(Some(ContentAddressMethod::Flat)),
            "text" => Err(crate::Error::MissingExperimentalFeature {
                feature: "dynamic-derivations",
                reason: format!("text-hashed derivation '{drv_name}', outputHashMode = \"text\""),
            }),
            "git" => Err(crate::Error::MissingExperimentalFeature {
                feature: "git-hashing",
                reason: String::new(),
            }),
            _ => Ok(None),
        }
    }

    /// Split a method prefix off a derivation output's hash algorithm field, e.g. "r:sha256"
    /// gives `(Recursive, "sha256")` (CppNix's `ContentAddressMethod::parsePrefix`).
    /// `None` for the "git:" prefix (unsupported experimental feature).
    pub fn split_prefix(s: &str) -> Option<(ContentAddressMethod, &str)> {
        if let Some(rest) = s.strip_prefix("r:") {
            Some((ContentAddressMethod::Recursive, rest))
        } else if s.starts_with("git:") {
            None
        } else if let Some(rest) = s.strip_prefix("text:") {
            Some((ContentAddressMethod::Text, rest))
        } else {
            Some((ContentAddressMethod::Flat, s))
        }
    }
}

/// A content address: a method and a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentAddress {
    pub method: ContentAddressMethod,
    pub hash: Hash,
}

impl ContentAddress {
    /// `<method prefix><algo>`, e.g. "r:sha256" (CppNix's `printMethodAlgo`).
    pub fn print_method_algo(&self) -> String {
        format!("{}{}", self.method.prefix(), self.hash.algo().name())
    }

    /// The form path metadata records (CppNix's `renderContentAddress`):
    /// `text:sha256:<nix32>`, or `fixed:` with the method's prefix and hash.
    pub fn render(&self) -> String {
        let hash = self.hash.to_string(crate::hash::HashFormat::Nix32, true);
        match self.method {
            ContentAddressMethod::Text => format!("text:{hash}"),
            m => format!("fixed:{}{hash}", m.prefix()),
        }
    }
}

/// The logical store directory, e.g. `/nix/store`, with the path recipes that depend on it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreDir {
    dir: String,
}

impl Default for StoreDir {
    fn default() -> Self {
        StoreDir::new("/nix/store")
    }
}

impl StoreDir {
    /// A store directory. It should be absolute and without trailing slash.
    pub fn new(dir: impl Into<String>) -> StoreDir {
        StoreDir { dir: dir.into() }
    }

    pub fn as_str(&self) -> &str {
        &self.dir
    }

    /// `<store dir>/<base name>`.
    pub fn print(&self, path: &StorePath) -> String {
        format!("{}/{}", self.dir, path.base_name)
    }

    /// CppNix's `parseStorePath`: an absolute path, lexically canonicalised, whose parent is
    /// the store directory.
    pub fn parse(&self, path: &str) -> Result<StorePath, PathError> {
        if path.is_empty() {
            return Err(PathError::EmptyPath);
        }
        if !path.starts_with('/') {
            return Err(PathError::NotAbsolute(path.to_string()));
        }
        let canon = canon_path(path);
        let (parent, base) = match canon.rfind('/') {
            Some(0) => ("/", &canon[1..]),
            Some(i) => (&canon[..i], &canon[i + 1..]),
            None => ("", canon.as_str()),
        };
        if parent != self.dir {
            return Err(PathError::NotInStore(canon.clone()));
        }
        StorePath::from_base_name(base)
    }

    /// CppNix's `parseStorePathCanonical`: `<store dir>/<base name>` exactly, as used in
    /// derivation files.
    pub fn parse_canonical(&self, path: &str) -> Result<StorePath, PathError> {
        let rest = path
            .strip_prefix(self.dir.as_str())
            .ok_or_else(|| PathError::NotInStoreCanonical(path.to_string()))?;
        let base = rest
            .strip_prefix('/')
            .ok_or_else(|| PathError::NotInStoreCanonical(rest.to_string()))?;
        StorePath::from_base_name(base)
    }

    /// Whether `path` parses as a store path (CppNix's `isStorePath`).
    pub fn is_store_path(&self, path: &str) -> bool {
        self.parse(path).is_ok()
    }

    /// Whether `path` lies strictly inside the store directory (CppNix's `isInStore`).
    pub fn is_in_store(&self, path: &str) -> bool {
        path.starts_with('/')
            && path.len() > self.dir.len() + 1
            && path.starts_with(self.dir.as_str())
            && path.as_bytes()[self.dir.len()] == b'/'
            && {
                let first = path[self.dir.len() + 1..].split('/').next().unwrap_or("");
                !first.is_empty() && first != "." && first != ".."
            }
    }

    /// CppNix's `toStorePath`: the store path containing `path`, and the rest of `path` after
    /// it ("" when `path` is the store path itself, else starting with '/').
    pub fn to_store_path<'a>(&self, path: &'a str) -> Result<(StorePath, &'a str), PathError> {
        if !self.is_in_store(path) {
            return Err(PathError::NotInStoreCanonical(path.to_string()));
        }
        match path[self.dir.len() + 1..].find('/') {
            None => Ok((self.parse(path)?, "")),
            Some(i) => {
                let split = self.dir.len() + 1 + i;
                Ok((self.parse(&path[..split])?, &path[split..]))
            }
        }
    }

    /// CppNix's `makeStorePath` with the inner hash given as text (normally
    /// `<algo>:<base16>`): hashes `"<type>:<hash>:<store dir>:<name>"`.
    pub fn make_store_path_raw(
        &self,
        type_: &str,
        hash: &str,
        name: &str,
    ) -> Result<StorePath, PathError> {
        let s = format!("{type_}:{hash}:{}:{name}", self.dir);
        let h = Hash::of(HashAlgo::Sha256, s.as_bytes());
        StorePath::from_hash_and_name(&compress_hash(&h, 20), name)
    }

    /// CppNix's `makeStorePath(type, Hash, name)`.
    pub fn make_store_path(
        &self,
        type_: &str,
        hash: &Hash,
        name: &str,
    ) -> Result<StorePath, PathError> {
        self.make_store_path_raw(type_, &hash.to_string(HashFormat::Base16, true), name)
    }

    /// Append `:<path>` for each reference (sorted) and `:self` to a path type.
    fn make_type<I, S>(&self, mut type_: String, references: I, self_ref: bool) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let refs: BTreeSet<String> = references
            .into_iter()
            .map(|r| r.as_ref().to_string())
            .collect();
        for r in refs {
            type_.push(':');
            type_.push_str(&r);
        }
        if self_ref {
            type_.push_str(":self");
        }
        type_
    }

    /// The path of a text file (`builtins.toFile`, `.drv` files): type "text" plus a
    /// `:<path>` per reference. `content_hash` must be the sha256 of the contents;
    /// `references` are printed absolute store paths (any order).
    pub fn make_text_path<I, S>(
        &self,
        name: &str,
        content_hash: &Hash,
        references: I,
    ) -> Result<StorePath, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        if content_hash.algo() != HashAlgo::Sha256 {
            return Err(PathError::TextNotSha256(content_hash.algo()));
        }
        let type_ = self.make_type("text".to_string(), references, false);
        self.make_store_path(&type_, content_hash, name)
    }

    /// The path of content-addressed data (CppNix's `makeFixedOutputPathFromCA`):
    ///
    /// * `Text`: as [`StoreDir::make_text_path`] (no self reference allowed).
    /// * `Recursive` with sha256: type "source" plus references (and `:self`).
    /// * otherwise: no references allowed; type "output:out" over the sha256 of
    ///   `"fixed:out:<prefix><algo>:<hex>:"`.
    pub fn make_fixed_output_path<I, S>(
        &self,
        name: &str,
        ca: &ContentAddress,
        references: I,
        self_ref: bool,
    ) -> Result<StorePath, PathError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let hash = &ca.hash;
        match ca.method {
            ContentAddressMethod::Text => {
                if self_ref {
                    return Err(PathError::TextSelfReference);
                }
                self.make_text_path(name, hash, references)
            }
            ContentAddressMethod::Recursive if hash.algo() == HashAlgo::Sha256 => {
                let type_ = self.make_type("source".to_string(), references, self_ref);
                self.make_store_path(&type_, hash, name)
            }
            method => {
                if self_ref || references.into_iter().next().is_some() {
                    return Err(PathError::FixedOutputWithReferences(name.to_string()));
                }
                let payload = format!(
                    "fixed:out:{}{}:",
                    method.prefix(),
                    hash.to_string(HashFormat::Base16, true)
                );
                let digest = Hash::of(HashAlgo::Sha256, payload.as_bytes());
                self.make_store_path("output:out", &digest, name)
            }
        }
    }

    /// The path of output `output_name` of an input-addressed derivation named `drv_name`
    /// whose (masked) hash modulo is `drv_hash`: type `output:<output>`, name
    /// [`crate::output_path_name`].
    pub fn make_output_path(
        &self,
        output_name: &str,
        drv_hash: &Hash,
        drv_name: &str,
    ) -> Result<StorePath, PathError> {
        self.make_store_path(
            &format!("output:{output_name}"),
            drv_hash,
            &crate::derivation::output_path_name(drv_name, output_name),
        )
    }
}

/// Lexically canonicalise an absolute path: collapse repeated slashes, drop "." components,
/// resolve ".." against the preceding component, and drop a trailing slash.
fn canon_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut s = String::new();
    for p in &parts {
        s.push('/');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('/');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_addresses_render_as_cppnix() {
        let h = crate::hash::Hash::of(crate::hash::HashAlgo::Sha256, b"x");
        let n = h.to_string(crate::hash::HashFormat::Nix32, true);
        let ca = |method| ContentAddress { method, hash: h }.render();
        assert_eq!(ca(ContentAddressMethod::Text), format!("text:{n}"));
        assert_eq!(ca(ContentAddressMethod::Flat), format!("fixed:{n}"));
        assert_eq!(ca(ContentAddressMethod::Recursive), format!("fixed:r:{n}"));
    }

    fn store() -> StoreDir {
        StoreDir::default()
    }

    fn sha256(s: &str) -> Hash {
        Hash::of(HashAlgo::Sha256, s.as_bytes())
    }

    // CppNix 2.34: builtins.toFile "foo" "bar".
    #[test]
    fn to_file_path() {
        let p = store()
            .make_text_path("foo", &sha256("bar"), Vec::<String>::new())
            .unwrap();
        assert_eq!(
            store().print(&p),
            "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo"
        );
        assert_eq!(p.hash_part(), "vxjiwkjkn7x4079qvh1jkl5pn05j2aw0");
        assert_eq!(p.name(), "foo");
    }

    // CppNix 2.34: let a = toFile "a" "x"; b = toFile "b" "y"; in toFile "c" "${b} ${a}".
    #[test]
    fn to_file_with_references() {
        let s = store();
        let a = s.print(&s.make_text_path("a", &sha256("x"), [""; 0]).unwrap());
        let b = s.print(&s.make_text_path("b", &sha256("y"), [""; 0]).unwrap());
        assert_eq!(a, "/nix/store/12wigjpizrn8axaqxj288q1b751qmwya-a");
        assert_eq!(b, "/nix/store/qg27jl1a4rz2d537q07bkmvx015ynlls-b");
        let content = format!("{b} {a}");
        // Reference order given does not matter.
        let c = s
            .make_text_path("c", &sha256(&content), [b.as_str(), a.as_str()])
            .unwrap();
        assert_eq!(s.print(&c), "/nix/store/bnid42kps00h16k831kgy1v6vcvvr9cl-c");
    }

    // CppNix 2.34: builtins.path { path = ./t/a.txt; recursive = false; } and { path = ./t/a.txt; }
    // where a.txt contains "hello\n".
    #[test]
    fn fixed_output_paths() {
        let s = store();
        let flat = ContentAddress {
            method: ContentAddressMethod::Flat,
            hash: sha256("hello\n"),
        };
        assert_eq!(
            s.print(
                &s.make_fixed_output_path("a.txt", &flat, [""; 0], false)
                    .unwrap()
            ),
            "/nix/store/fdwm55r4skpypx1gwzb7x69ckav1rv09-a.txt"
        );
        let nar = ContentAddress {
            method: ContentAddressMethod::Recursive,
            hash: Hash::parse_any(
                "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13",
                Some(HashAlgo::Sha256),
            )
            .unwrap(),
        };
        assert_eq!(
            s.print(
                &s.make_fixed_output_path("a.txt", &nar, [""; 0], false)
                    .unwrap()
            ),
            "/nix/store/z3n6ml62lc6l9glpaz6fq7fvi2rks9vq-a.txt"
        );
        // Fixed-output derivation paths (CppNix 2.34 .drv files).
        let hello = sha256("hello");
        let fod = |method, hash, name: &str| {
            s.print(
                &s.make_fixed_output_path(name, &ContentAddress { method, hash }, [""; 0], false)
                    .unwrap(),
            )
        };
        assert_eq!(
            fod(ContentAddressMethod::Recursive, hello, "fod"),
            "/nix/store/38kzy8h3fl0q6bf72hzbhwsbwmrssdk7-fod"
        );
        assert_eq!(
            fod(ContentAddressMethod::Flat, hello, "f"),
            "/nix/store/4c6wsvi6cnq8h7ibg70pv68bi43y92xs-f"
        );
        assert_eq!(
            fod(
                ContentAddressMethod::Flat,
                Hash::of(HashAlgo::Sha1, b"hello"),
                "fodflat"
            ),
            "/nix/store/qqh13lzw1jghqw1j0rkibdhph24yian4-fodflat"
        );
        assert_eq!(
            fod(
                ContentAddressMethod::Flat,
                Hash::zero(HashAlgo::Sha256),
                "emptyhash"
            ),
            "/nix/store/lrk666zddfch5a6pbvbvzqbjpvmbzs93-emptyhash"
        );
    }

    #[test]
    fn fixed_output_reference_rules() {
        let s = store();
        let flat = ContentAddress {
            method: ContentAddressMethod::Flat,
            hash: sha256("x"),
        };
        assert_eq!(
            s.make_fixed_output_path("n", &flat, ["/nix/store/x"], false)
                .unwrap_err()
                .to_string(),
            "fixed output derivation 'n' is not allowed to refer to other store paths.\nYou may need to use the 'unsafeDiscardReferences' derivation attribute, see the manual for more details."
        );
        let text = ContentAddress {
            method: ContentAddressMethod::Text,
            hash: sha256("x"),
        };
        assert_eq!(
            s.make_fixed_output_path("n", &text, [""; 0], true),
            Err(PathError::TextSelfReference)
        );
        // Recursive sha256 with references: type is "source:<ref>...:self".
        let nar = ContentAddress {
            method: ContentAddressMethod::Recursive,
            hash: sha256("x"),
        };
        let with_refs = s
            .make_fixed_output_path("n", &nar, ["/nix/store/b", "/nix/store/a"], true)
            .unwrap();
        let expect = s
            .make_store_path("source:/nix/store/a:/nix/store/b:self", &sha256("x"), "n")
            .unwrap();
        assert_eq!(with_refs, expect);
    }

    // CppNix 2.34: error texts of builtins.toFile with bad names (the hash is computed first).
    #[test]
    fn name_errors() {
        let s = store();
        let err = |n: &str| {
            s.make_text_path(n, &sha256("x"), [""; 0])
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(""),
            "path '9r1mh2rc3s3i33vpdw86kqqyvy9i1y4w-' is not a valid store path: name must not be empty"
        );
        assert_eq!(
            err("."),
            "path '1ka9gw6ddkrf0b8k65q7p46xbgb9wdr8-.' is not a valid store path: name '.' is not valid"
        );
        assert_eq!(
            err(".."),
            "path 'hv29bhyiqgqrrvfwnrc9gg9g9cw83k4b-..' is not a valid store path: name '..' is not valid"
        );
        assert_eq!(
            err(".-a"),
            "path 'g7wasvn73490h0wf91fi01lavjcr2ira-.-a' is not a valid store path: name '.-a' is not valid: first dash-separated component must not be '.'"
        );
        assert_eq!(
            err("..-a"),
            "path 'rwf19106d4i8i8ip3adrwm5wwcs8gvbj-..-a' is not a valid store path: name '..-a' is not valid: first dash-separated component must not be '..'"
        );
        assert_eq!(
            err("a b"),
            "path 'dm85kbl5cy82j2dzvy1874s14y3salv3-a b' is not a valid store path: name 'a b' contains illegal character ' '"
        );
        assert_eq!(
            err("a/b"),
            "path '9d0sm13c3pj0msx6gd27izjkbmdnpbf2-a/b' is not a valid store path: name 'a/b' contains illegal character '/'"
        );
        assert_eq!(
            err("ä"),
            "path 'qzk4z8fw94zrwln51d699aplrzysa5ay-ä' is not a valid store path: name 'ä' contains illegal character '\u{FFFD}'"
        );
        let long = "a".repeat(212);
        assert_eq!(
            err(&long),
            format!("path 'sk7z62nqxdj2sb8x397my8i4803lhvai-{long}' is not a valid store path: name '{long}' must be no longer than 211 characters")
        );
        assert_eq!(
            s.print(&s.make_text_path("...a", &sha256("x"), [""; 0]).unwrap()),
            "/nix/store/lnwf41q82r5jk9jpdfrliip69q8j03rm-...a"
        );
        assert!(check_name(&"a".repeat(211)).is_ok());
    }

    #[test]
    fn parsing_store_paths() {
        let s = store();
        let p = s
            .parse("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")
            .unwrap();
        assert_eq!(p.name(), "foo");
        assert_eq!(
            s.parse("/nix//store/./vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo/")
                .unwrap(),
            p
        );
        assert_eq!(
            s.parse("/nix/store/../foo").unwrap_err().to_string(),
            "path \"/nix/foo\" is not in the Nix store"
        );
        assert_eq!(
            s.parse("/nix/store/abc-foo").unwrap_err().to_string(),
            "'abc-foo' is too short to be a valid store path"
        );
        assert_eq!(s.parse("").unwrap_err(), PathError::EmptyPath);
        assert_eq!(
            StorePath::from_base_name("vxjiwkjkn7x4079qvh1jkl5pn05j2aw0_foo")
                .unwrap_err()
                .to_string(),
            "'vxjiwkjkn7x4079qvh1jkl5pn05j2aw0_foo' can't name a store path because the hash part is not followed by a '-'"
        );
        assert_eq!(
            StorePath::from_base_name("exjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo")
                .unwrap_err()
                .to_string(),
            "store path 'exjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo' contains illegal base-32 character 'e'"
        );
        assert_eq!(
            s.parse_canonical("/nix/store/x").unwrap_err().to_string(),
            "'x' is too short to be a valid store path"
        );
        assert_eq!(
            s.parse_canonical("/nix/storex").unwrap_err().to_string(),
            "path 'x' is not in the Nix store"
        );
        let (sp, rest) = s
            .to_store_path("/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo/bin/sh")
            .unwrap();
        assert_eq!(sp, p);
        assert_eq!(rest, "/bin/sh");
        assert!(!s.is_in_store("/nix/store"));
        assert!(!s.is_in_store("/nix/store/"));
        assert!(s.is_in_store("/nix/store/x"));
        assert!(p.to_string() == p.base_name());
    }

    #[test]
    fn custom_store_dir() {
        let s = StoreDir::new("/foo/store");
        let p = s.make_text_path("foo", &sha256("bar"), [""; 0]).unwrap();
        assert!(s.print(&p).starts_with("/foo/store/"));
        assert_ne!(
            p,
            store()
                .make_text_path("foo", &sha256("bar"), [""; 0])
                .unwrap()
        );
    }
}
