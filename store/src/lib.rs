//! `nixvm-store`: the store-side computations of a Nix evaluator, byte-compatible with CppNix.
//!
//! This crate knows nothing about the Nix language. It owns the parts of an evaluation that
//! have to agree bit for bit with CppNix so that `outPath`s, `drvPath`s and hashes come out the
//! same:
//!
//! * [`hash`]: the hash algorithms (md5, sha1, sha256, sha512), streaming hashing, the four
//!   textual encodings (base16, Nix's own base-32 "nix32", base64, SRI), parsing of hash strings
//!   with CppNix's rules and error messages, and `compress_hash`.
//! * [`path`]: the store directory, store paths and their name rules, and the content-addressing
//!   recipes that turn a hash into a store path (text files, fixed outputs, derivation outputs).
//! * [`nar`]: the Nix ARchive serialisation of files, directories and symlinks (with the filter
//!   used by `builtins.path`/`filterSource`), and NAR hashing.
//! * [`derivation`]: the derivation data model, its ATerm form (printing and parsing), the
//!   "hash modulo" of derivations, and output/`.drv` path computation for `derivationStrict`.
//!
//! * [`local`]: the on-disk store ([`LocalStore`]): files under a root directory ("chroot
//!   store"), metadata in SQLite ([`db`]), per-path lock files ([`lock`]), atomic adds.
//! * [`build`]: realising derivations into a local store (scheduling, builder processes, the
//!   builder environment, output checks, reference scanning with [`refscan`]), in a
//!   namespace [`sandbox`] where the machine allows one.
//!
//! The modules above `local` are pure computation except reading files for NAR/file hashing.
//!
//! Errors are reported through the crate-wide [`Error`] type, whose `Display` texts match the
//! messages CppNix prints (without CppNix's "error:" prefix and traces).

pub mod build;
pub mod daemon;
pub mod db;
pub mod derivation;
pub mod hash;
pub mod local;
pub mod lock;
pub mod nar;
pub mod path;
pub mod refscan;
pub mod sandbox;
pub mod transfer;

pub use derivation::{
    hash_placeholder, output_path_name, Derivation, DerivationError, DerivationType, HashModulo,
    ModuloCache, Output,
};
pub use hash::{compress_hash, Hash, HashAlgo, HashError, HashFormat, Hasher};
pub use local::{LocalStore, StoreConfig};
pub use nar::FileType;
pub use path::{ContentAddress, ContentAddressMethod, PathError, StoreDir, StorePath};

use std::fmt;

/// Every error this crate can report.
#[derive(Debug)]
pub enum Error {
    /// A hash string or algorithm name could not be parsed.
    Hash(HashError),
    /// A store path or store path name is invalid, or a content address cannot name a path.
    Path(PathError),
    /// A derivation is malformed (ATerm syntax, inconsistent outputs, ...).
    Derivation(DerivationError),
    /// A filesystem operation failed. `action` says what was being done, e.g.
    /// "getting status of".
    Io {
        action: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// A NAR could not be produced for a file tree.
    Nar(NarError),
    /// The operation needs an experimental feature that this evaluator treats as disabled.
    MissingExperimentalFeature {
        feature: &'static str,
        reason: String,
    },
    /// The metadata database failed or holds something unexpected.
    Db(String),
    /// Any other store or build failure, with its full message.
    Msg(String),
    /// A builder failed or produced wrong outputs. `exit` is the status
    /// nix-build ends with: 100, plus 2 for a fixed-output hash mismatch
    /// (CppNix's codes).
    BuildFailed { msg: String, exit: u8 },
}

impl Error {
    /// The exit status a command ends with for this error: a build failure's
    /// own (100 and up), 1 for everything else.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::BuildFailed { exit, .. } => *exit,
            _ => 1,
        }
    }
}

/// Problems specific to serialising a file tree as a NAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NarError {
    /// Directory nesting deeper than CppNix's limit of 64 levels.
    TooDeep { path: String },
    /// A file that is neither a regular file, a directory nor a symlink.
    UnsupportedType { path: String },
    /// A regular file changed size while it was being read.
    FileChanged { path: String },
}

impl fmt::Display for NarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NarError::TooDeep { path } => write!(
                f,
                "path '{path}' exceeds maximum NAR directory depth of {}",
                nar::MAX_DEPTH
            ),
            NarError::UnsupportedType { path } => {
                write!(f, "file '{path}' has an unsupported type")
            }
            NarError::FileChanged { path } => {
                write!(f, "file '{path}' changed while it was being read")
            }
        }
    }
}

/// Render an I/O error the way `strerror` does, without Rust's " (os error N)" suffix.
/// An I/O error's text as CppNix shows it (`strerror`, without Rust's
/// " (os error N)").
pub fn io_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_string(),
        _ => s,
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Hash(e) => e.fmt(f),
            Error::Path(e) => e.fmt(f),
            Error::Derivation(e) => e.fmt(f),
            Error::Io {
                action,
                path,
                source,
            } => write!(f, "{action} '{path}': {}", io_message(source)),
            Error::Nar(e) => e.fmt(f),
            Error::Db(m) | Error::Msg(m) | Error::BuildFailed { msg: m, .. } => f.write_str(m),
            Error::MissingExperimentalFeature { feature, reason } => {
                write!(f, "experimental Nix feature '{feature}' is disabled")?;
                if !reason.is_empty() {
                    write!(f, " ({reason})")?;
                }
                write!(
                    f,
                    "; add '--extra-experimental-features {feature}' to enable it"
                )
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Hash(e) => Some(e),
            Error::Path(e) => Some(e),
            Error::Derivation(e) => Some(e),
            Error::Io { source, .. } => Some(source),
            Error::Nar(_)
            | Error::MissingExperimentalFeature { .. }
            | Error::Db(_)
            | Error::Msg(_)
            | Error::BuildFailed { .. } => None,
        }
    }
}

impl std::error::Error for NarError {}

impl From<HashError> for Error {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Blake3Disabled => Error::MissingExperimentalFeature {
                feature: "blake3-hashes",
                reason: String::new(),
            },
            e => Error::Hash(e),
        }
    }
}

impl From<PathError> for Error {
    fn from(e: PathError) -> Self {
        Error::Path(e)
    }
}

impl From<DerivationError> for Error {
    fn from(e: DerivationError) -> Self {
        Error::Derivation(e)
    }
}

impl From<NarError> for Error {
    fn from(e: NarError) -> Self {
        Error::Nar(e)
    }
}

/// Shorthand for results whose error is the crate-wide [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn experimental_feature_message() {
        let e = Error::MissingExperimentalFeature {
            feature: "dynamic-derivations",
            reason: "text-hashed derivation 't', outputHashMode = \"text\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "experimental Nix feature 'dynamic-derivations' is disabled (text-hashed derivation 't', outputHashMode = \"text\"); add '--extra-experimental-features dynamic-derivations' to enable it"
        );
        let e: Error = HashError::Blake3Disabled.into();
        assert_eq!(
            e.to_string(),
            "experimental Nix feature 'blake3-hashes' is disabled; add '--extra-experimental-features blake3-hashes' to enable it"
        );
    }

    #[test]
    fn io_message_strips_os_error_suffix() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(io_message(&e), "No such file or directory");
    }
}
