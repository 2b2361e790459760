//! Hashes: algorithms, streaming computation, textual encodings and parsing.
//!
//! This module owns everything about a hash value as CppNix sees it:
//!
//! * [`HashAlgo`]: md5, sha1, sha256, sha512 (blake3 is an experimental feature in CppNix and is
//!   reported as disabled).
//! * [`Hash`](struct@Hash): an algorithm plus its digest bytes, computed with [`Hash::of`] or a streaming
//!   [`Hasher`] (which also implements [`std::io::Write`]).
//! * The encodings [`HashFormat`]: lowercase base16, Nix's base-32 ("nix32", alphabet
//!   `0123456789abcdfghijklmnpqrsvwxyz`, digits emitted from the most significant 5-bit group of
//!   the little-endian bit string), standard padded base64, and SRI (`<algo>-<base64>`).
//! * Parsing hash strings the way CppNix's `Hash::parseAny`, `parseAnyPrefixed`,
//!   `parseNonSRIUnprefixed` and `parseSRI` do, including their quirks: the encoding of an
//!   unprefixed hash is guessed from its length, and a decoding failure surfaces as a
//!   "length 0" mismatch.
//! * [`compress_hash`]: XOR-folding of a digest to a shorter length, used for store paths.

use std::fmt;
use std::io;
use std::path::Path;

use sha2::Digest;

/// A hash algorithm supported by the evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HashAlgo {
    Md5,
    Sha1,
    Sha256,
    Sha512,
}

impl HashAlgo {
    /// All algorithms, in CppNix's enum order.
    pub const ALL: [HashAlgo; 4] = [
        HashAlgo::Md5,
        HashAlgo::Sha1,
        HashAlgo::Sha256,
        HashAlgo::Sha512,
    ];

    /// The algorithm's name as printed in hashes ("md5", "sha1", "sha256", "sha512").
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Md5 => "md5",
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Sha256 => "sha256",
            HashAlgo::Sha512 => "sha512",
        }
    }

    /// Digest size in bytes.
    pub fn size(self) -> usize {
        match self {
            HashAlgo::Md5 => 16,
            HashAlgo::Sha1 => 20,
            HashAlgo::Sha256 => 32,
            HashAlgo::Sha512 => 64,
        }
    }

    /// Look up an algorithm by exact name; `None` for anything unknown (including "blake3").
    pub fn from_name(s: &str) -> Option<HashAlgo> {
        match s {
            "md5" => Some(HashAlgo::Md5),
            "sha1" => Some(HashAlgo::Sha1),
            "sha256" => Some(HashAlgo::Sha256),
            "sha512" => Some(HashAlgo::Sha512),
            _ => None,
        }
    }

    /// Like CppNix's `parseHashAlgoOpt`: unknown names give `Ok(None)`, but "blake3" is an
    /// error because its experimental feature is disabled.
    pub fn parse_opt(s: &str) -> Result<Option<HashAlgo>, HashError> {
        if s == "blake3" {
            return Err(HashError::Blake3Disabled);
        }
        Ok(HashAlgo::from_name(s))
    }

    /// Like CppNix's `parseHashAlgo`: unknown names are an error
    /// ([`HashError::UnknownAlgo`], a usage error in CppNix).
    pub fn parse(s: &str) -> Result<HashAlgo, HashError> {
        HashAlgo::parse_opt(s)?.ok_or_else(|| HashError::UnknownAlgo(s.to_string()))
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A textual encoding of a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFormat {
    Base16,
    Nix32,
    Base64,
    /// `<algo>-<base64>`; always carries the algorithm.
    Sri,
}

/// The warning CppNix prints when the hash format "base32" is used.
pub const BASE32_DEPRECATION_WARNING: &str =
    "\"base32\" is a deprecated alias for hash format \"nix32\".";

impl HashFormat {
    /// Like CppNix's `parseHashFormatOpt`. "base32" is accepted as an alias of "nix32"; callers
    /// should then print [`BASE32_DEPRECATION_WARNING`].
    pub fn parse_opt(s: &str) -> Option<HashFormat> {
        match s {
            "base16" => Some(HashFormat::Base16),
            "nix32" | "base32" => Some(HashFormat::Nix32),
            "base64" => Some(HashFormat::Base64),
            "sri" => Some(HashFormat::Sri),
            _ => None,
        }
    }

    /// Like CppNix's `parseHashFormat` (a usage error for unknown names).
    pub fn parse(s: &str) -> Result<HashFormat, HashError> {
        HashFormat::parse_opt(s).ok_or_else(|| HashError::UnknownFormat(s.to_string()))
    }

    /// The format's canonical name.
    pub fn name(self) -> &'static str {
        match self {
            HashFormat::Base16 => "base16",
            HashFormat::Nix32 => "nix32",
            HashFormat::Base64 => "base64",
            HashFormat::Sri => "sri",
        }
    }

    /// Length of the encoding of `size` bytes (no algorithm prefix).
    pub fn encoded_len(self, size: usize) -> usize {
        match self {
            HashFormat::Base16 => size * 2,
            HashFormat::Nix32 => nix32_encoded_len(size),
            HashFormat::Base64 | HashFormat::Sri => ((4 * size / 3) + 3) & !3,
        }
    }
}

/// Errors from parsing hash algorithms, formats and hash strings. The `Display` texts are
/// CppNix's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashError {
    /// An unknown algorithm name (a usage error in CppNix).
    UnknownAlgo(String),
    /// "blake3" was requested; it needs the disabled `blake3-hashes` experimental feature.
    Blake3Disabled,
    /// An unknown hash format name (a usage error in CppNix).
    UnknownFormat(String),
    /// The hash text's length matches no encoding of the algorithm's digest size.
    WrongLength { hash: String, algo: HashAlgo },
    /// Decoding gave the wrong number of bytes. `encoding` is the name CppNix uses in the
    /// message ("base16", "nix32", "Base64" or "SRI"); an invalid character gives `got == 0`.
    BadLength {
        encoding: &'static str,
        hash: String,
        got: usize,
        expected: usize,
    },
    /// `parseSRI` was given a string without a `-`.
    NotSri(String),
    /// `parseAnyPrefixed` was given a string without an algorithm.
    NoType(String),
    /// `parseAny` without an algorithm in the string or from the caller.
    NoTypeNorContext(String),
    /// The algorithm in the string differs from the one the caller expects.
    TypeMismatch { hash: String, expected: HashAlgo },
    /// An empty hash without a known algorithm.
    EmptyNeedsAlgo,
}

impl HashError {
    /// Whether CppNix raises this as a `UsageError` (which the CLI follows with a
    /// "Try '... --help' for more information." line).
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            HashError::UnknownAlgo(_) | HashError::UnknownFormat(_)
        )
    }
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashError::UnknownAlgo(s) => write!(
                f,
                "unknown hash algorithm '{s}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
            ),
            HashError::Blake3Disabled => f.write_str(
                "experimental Nix feature 'blake3-hashes' is disabled; add '--extra-experimental-features blake3-hashes' to enable it",
            ),
            HashError::UnknownFormat(s) => write!(
                f,
                "unknown hash format '{s}', expect 'base16', 'base32', 'base64', or 'sri'"
            ),
            HashError::WrongLength { hash, algo } => write!(
                f,
                "hash '{hash}' has wrong length for hash algorithm '{algo}'"
            ),
            HashError::BadLength {
                encoding,
                hash,
                got,
                expected,
            } => write!(
                f,
                "invalid {encoding} hash '{hash}', length {got} != expected length {expected}"
            ),
            HashError::NotSri(s) => write!(f, "hash '{s}' is not SRI"),
            HashError::NoType(s) => write!(f, "hash '{s}' does not include a type"),
            HashError::NoTypeNorContext(s) => write!(
                f,
                "hash '{s}' does not include a type, nor is the type otherwise known from context"
            ),
            HashError::TypeMismatch { hash, expected } => {
                write!(f, "hash '{hash}' should have type '{expected}'")
            }
            HashError::EmptyNeedsAlgo => f.write_str("empty hash requires explicit hash algorithm"),
        }
    }
}

impl std::error::Error for HashError {}

/// A digest together with its algorithm.
///
/// Ordering follows CppNix: by digest length, then bytes, then algorithm.
#[derive(Clone, Copy)]
pub struct Hash {
    algo: HashAlgo,
    bytes: [u8; 64],
}

impl PartialEq for Hash {
    fn eq(&self, other: &Self) -> bool {
        self.algo == other.algo && self.bytes() == other.bytes()
    }
}

impl Eq for Hash {}

impl std::hash::Hash for Hash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.algo.hash(state);
        self.bytes().hash(state);
    }
}

impl PartialOrd for Hash {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Hash {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.algo
            .size()
            .cmp(&other.algo.size())
            .then_with(|| self.bytes().cmp(other.bytes()))
            .then_with(|| self.algo.cmp(&other.algo))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.to_string(HashFormat::Sri, true))
    }
}

impl Hash {
    /// A hash from raw digest bytes; `None` if the length does not fit the algorithm.
    pub fn from_bytes(algo: HashAlgo, digest: &[u8]) -> Option<Hash> {
        if digest.len() != algo.size() {
            return None;
        }
        let mut bytes = [0u8; 64];
        bytes[..digest.len()].copy_from_slice(digest);
        Some(Hash { algo, bytes })
    }

    /// The all-zero hash of an algorithm (what CppNix assumes for an empty `outputHash`).
    pub fn zero(algo: HashAlgo) -> Hash {
        Hash {
            algo,
            bytes: [0u8; 64],
        }
    }

    /// Hash a byte string.
    pub fn of(algo: HashAlgo, data: &[u8]) -> Hash {
        let mut h = Hasher::new(algo);
        h.update(data);
        h.finish()
    }

    /// Hash the contents of a file (CppNix's `hashFile`, used by `builtins.hashFile`).
    pub fn of_file(algo: HashAlgo, path: &Path) -> crate::Result<Hash> {
        let mut file = std::fs::File::open(path).map_err(|source| crate::Error::Io {
            action: "opening file",
            path: path.display().to_string(),
            source,
        })?;
        let mut h = Hasher::new(algo);
        io::copy(&mut file, &mut h).map_err(|source| crate::Error::Io {
            action: "reading file",
            path: path.display().to_string(),
            source,
        })?;
        Ok(h.finish())
    }

    /// The algorithm.
    pub fn algo(&self) -> HashAlgo {
        self.algo
    }

    /// The digest bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.algo.size()]
    }

    /// CppNix's `Hash::to_string(format, includeAlgo)`: SRI always includes the algorithm
    /// (`sha256-...`); otherwise `include_algo` prefixes `<algo>:`.
    pub fn to_string(&self, format: HashFormat, include_algo: bool) -> String {
        let mut s = String::new();
        if format == HashFormat::Sri || include_algo {
            s.push_str(self.algo.name());
            s.push(if format == HashFormat::Sri { '-' } else { ':' });
        }
        match format {
            HashFormat::Base16 => s.push_str(&encode_base16(self.bytes())),
            HashFormat::Nix32 => s.push_str(&encode_nix32(self.bytes())),
            HashFormat::Base64 | HashFormat::Sri => s.push_str(&encode_base64(self.bytes())),
        }
        s
    }

    /// Lowercase hex digest, without algorithm.
    pub fn to_base16(&self) -> String {
        encode_base16(self.bytes())
    }

    /// nix32 digest, without algorithm.
    pub fn to_nix32(&self) -> String {
        encode_nix32(self.bytes())
    }

    /// Padded base64 digest, without algorithm.
    pub fn to_base64(&self) -> String {
        encode_base64(self.bytes())
    }

    /// `<algo>-<base64>`.
    pub fn to_sri(&self) -> String {
        self.to_string(HashFormat::Sri, true)
    }

    /// CppNix's `Hash::parseAny`: the algorithm may be given by a `<algo>:` or SRI `<algo>-`
    /// prefix, by `algo`, or both (then they must agree).
    pub fn parse_any(s: &str, algo: Option<HashAlgo>) -> Result<Hash, HashError> {
        Hash::parse_any_returning_format(s, algo).map(|(h, _)| h)
    }

    /// Like [`Hash::parse_any`], also telling which encoding the string used.
    pub fn parse_any_returning_format(
        s: &str,
        algo: Option<HashAlgo>,
    ) -> Result<(Hash, HashFormat), HashError> {
        parse_any_helper(s, |parsed| match (parsed, algo) {
            (None, None) => Err(HashError::NoTypeNorContext(s.to_string())),
            (Some(p), Some(a)) if p != a => Err(HashError::TypeMismatch {
                hash: s.to_string(),
                expected: a,
            }),
            (Some(p), _) => Ok(p),
            (None, Some(a)) => Ok(a),
        })
    }

    /// CppNix's `Hash::parseAnyPrefixed`: the string itself must name the algorithm.
    pub fn parse_any_prefixed(s: &str) -> Result<Hash, HashError> {
        parse_any_helper(s, |parsed| {
            parsed.ok_or_else(|| HashError::NoType(s.to_string()))
        })
        .map(|(h, _)| h)
    }

    /// CppNix's `Hash::parseNonSRIUnprefixed`: a bare base16/nix32/base64 digest of `algo`,
    /// the encoding chosen by length.
    pub fn parse_non_sri_unprefixed(s: &str, algo: HashAlgo) -> Result<Hash, HashError> {
        let format = format_from_len(s, algo)?;
        Hash::parse_explicit_format_unprefixed(s, algo, format)
    }

    /// CppNix's `Hash::parseExplicitFormatUnprefixed`. `HashFormat::Sri` is treated as plain
    /// base64 (CppNix does not allow it here).
    pub fn parse_explicit_format_unprefixed(
        s: &str,
        algo: HashAlgo,
        format: HashFormat,
    ) -> Result<Hash, HashError> {
        let (decode, name) = decoder_for(format);
        decode_checked(s, algo, decode, name)
    }

    /// CppNix's `Hash::parseSRI`: `<algo>-<base64>`.
    pub fn parse_sri(s: &str) -> Result<Hash, HashError> {
        let Some((algo, rest)) = s.split_once('-') else {
            return Err(HashError::NotSri(s.to_string()));
        };
        let algo = HashAlgo::parse(algo)?;
        decode_checked(rest, algo, decode_base64, "SRI")
    }

    /// CppNix's `newHashAllowEmpty`: an empty string yields the all-zero hash of `algo`
    /// (CppNix then warns `found empty hash, assuming '<sri>'`; see
    /// [`empty_hash_warning`]); anything else is [`Hash::parse_any`].
    pub fn parse_allow_empty(s: &str, algo: Option<HashAlgo>) -> Result<Hash, HashError> {
        if s.is_empty() {
            match algo {
                None => Err(HashError::EmptyNeedsAlgo),
                Some(a) => Ok(Hash::zero(a)),
            }
        } else {
            Hash::parse_any(s, algo)
        }
    }
}

/// The warning CppNix prints when [`Hash::parse_allow_empty`] accepts an empty hash.
pub fn empty_hash_warning(hash: &Hash) -> String {
    format!("found empty hash, assuming '{}'", hash.to_sri())
}

type DecodeFn = fn(&str) -> Option<Vec<u8>>;

fn decoder_for(format: HashFormat) -> (DecodeFn, &'static str) {
    match format {
        HashFormat::Base16 => (decode_base16, "base16"),
        HashFormat::Nix32 => (decode_nix32, "nix32"),
        HashFormat::Base64 | HashFormat::Sri => (decode_base64, "Base64"),
    }
}

/// Pick the encoding of an unprefixed hash from its length.
fn format_from_len(s: &str, algo: HashAlgo) -> Result<HashFormat, HashError> {
    let size = algo.size();
    for format in [HashFormat::Base16, HashFormat::Nix32, HashFormat::Base64] {
        if s.len() == format.encoded_len(size) {
            return Ok(format);
        }
    }
    Err(HashError::WrongLength {
        hash: s.to_string(),
        algo,
    })
}

/// Decode and check the length. As in CppNix, a decoding error is not reported as such: the
/// result counts as empty and the length check fails.
fn decode_checked(
    s: &str,
    algo: HashAlgo,
    decode: DecodeFn,
    encoding: &'static str,
) -> Result<Hash, HashError> {
    let bytes = decode(s).unwrap_or_default();
    Hash::from_bytes(algo, &bytes).ok_or(HashError::BadLength {
        encoding,
        hash: s.to_string(),
        got: bytes.len(),
        expected: algo.size(),
    })
}

fn parse_any_helper(
    original: &str,
    resolve: impl FnOnce(Option<HashAlgo>) -> Result<HashAlgo, HashError>,
) -> Result<(Hash, HashFormat), HashError> {
    let mut rest = original;
    let mut is_sri = false;
    let mut parsed = None;
    let prefix = match original.split_once(':') {
        Some(p) => Some(p),
        None => {
            let p = original.split_once('-');
            is_sri = p.is_some();
            p
        }
    };
    if let Some((algo, r)) = prefix {
        parsed = Some(HashAlgo::parse(algo)?);
        rest = r;
    }
    let algo = resolve(parsed)?;
    if is_sri {
        let h = decode_checked(rest, algo, decode_base64, "SRI")?;
        Ok((h, HashFormat::Sri))
    } else {
        let format = format_from_len(rest, algo)?;
        let h = Hash::parse_explicit_format_unprefixed(rest, algo, format)?;
        Ok((h, format))
    }
}

/// CppNix's `compressHash`: XOR-fold the digest into `new_size` bytes.
pub fn compress_hash(hash: &Hash, new_size: usize) -> Vec<u8> {
    let mut out = vec![0u8; new_size];
    if new_size == 0 {
        return out;
    }
    for (i, b) in hash.bytes().iter().enumerate() {
        out[i % new_size] ^= b;
    }
    out
}

/// Streaming hash computation; also a [`std::io::Write`] sink.
#[derive(Clone)]
pub struct Hasher {
    inner: HasherInner,
    len: u64,
}

#[derive(Clone)]
enum HasherInner {
    Md5(md5::Md5),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
}

impl Hasher {
    pub fn new(algo: HashAlgo) -> Hasher {
        let inner = match algo {
            HashAlgo::Md5 => HasherInner::Md5(md5::Md5::new()),
            HashAlgo::Sha1 => HasherInner::Sha1(sha1::Sha1::new()),
            HashAlgo::Sha256 => HasherInner::Sha256(sha2::Sha256::new()),
            HashAlgo::Sha512 => HasherInner::Sha512(sha2::Sha512::new()),
        };
        Hasher { inner, len: 0 }
    }

    pub fn algo(&self) -> HashAlgo {
        match self.inner {
            HasherInner::Md5(_) => HashAlgo::Md5,
            HasherInner::Sha1(_) => HashAlgo::Sha1,
            HasherInner::Sha256(_) => HashAlgo::Sha256,
            HasherInner::Sha512(_) => HashAlgo::Sha512,
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        match &mut self.inner {
            HasherInner::Md5(h) => h.update(data),
            HasherInner::Sha1(h) => h.update(data),
            HasherInner::Sha256(h) => h.update(data),
            HasherInner::Sha512(h) => h.update(data),
        }
    }

    /// Number of bytes hashed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.len
    }

    pub fn finish(self) -> Hash {
        let algo = self.algo();
        let digest: Vec<u8> = match self.inner {
            HasherInner::Md5(h) => h.finalize().to_vec(),
            HasherInner::Sha1(h) => h.finalize().to_vec(),
            HasherInner::Sha256(h) => h.finalize().to_vec(),
            HasherInner::Sha512(h) => h.finalize().to_vec(),
        };
        Hash::from_bytes(algo, &digest).expect("digest size matches algorithm")
    }
}

impl io::Write for Hasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Encodings
// ---------------------------------------------------------------------------------------------

const BASE16_CHARS: &[u8; 16] = b"0123456789abcdef";

/// The nix32 alphabet: digits and lowercase letters without `e`, `o`, `u`, `t`.
pub const NIX32_CHARS: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

const BASE64_CHARS: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Lowercase hexadecimal.
pub fn encode_base16(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(BASE16_CHARS[(b >> 4) as usize] as char);
        s.push(BASE16_CHARS[(b & 0xf) as usize] as char);
    }
    s
}

/// Hexadecimal (either case); `None` on an invalid digit or odd length.
pub fn decode_base16(s: &str) -> Option<Vec<u8>> {
    fn digit(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

/// Number of nix32 characters encoding `size` bytes.
pub fn nix32_encoded_len(size: usize) -> usize {
    if size == 0 {
        0
    } else {
        (size * 8 - 1) / 5 + 1
    }
}

/// Nix's base-32. The bytes are read as a little-endian bit string cut into 5-bit groups; the
/// most significant group is printed first.
pub fn encode_nix32(bytes: &[u8]) -> String {
    let len = nix32_encoded_len(bytes.len());
    let mut s = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let low = bytes[i] >> j;
        let high = if i + 1 < bytes.len() {
            ((bytes[i + 1] as u16) << (8 - j)) as u8
        } else {
            0
        };
        s.push(NIX32_CHARS[((low | high) & 0x1f) as usize] as char);
    }
    s
}

/// Inverse of [`encode_nix32`]; `None` on a character outside the alphabet. As in CppNix, bits
/// beyond the last whole byte that are set make the result one byte longer (so the caller's
/// length check rejects them).
pub fn decode_nix32(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    let mut res: Vec<u8> = Vec::with_capacity((s.len() * 5).div_ceil(8));
    for n in 0..s.len() {
        let c = s[s.len() - n - 1];
        let digit = NIX32_CHARS.iter().position(|&x| x == c)? as u8;
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        res.resize(i + 1, 0);
        res[i] |= ((digit as u16) << j) as u8;
        let carry = (digit as u16) >> (8 - j);
        if carry != 0 {
            res.resize(i + 2, 0);
            res[i + 1] |= carry as u8;
        }
    }
    Some(res)
}

/// Standard base64 with `=` padding.
pub fn encode_base64(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let mut data: u32 = 0;
    let mut nbits = 0;
    for &c in bytes {
        data = (data << 8) | c as u32;
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            s.push(BASE64_CHARS[((data >> nbits) & 0x3f) as usize] as char);
        }
        data &= (1 << nbits) - 1;
    }
    if nbits > 0 {
        s.push(BASE64_CHARS[((data << (6 - nbits)) & 0x3f) as usize] as char);
    }
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

/// Base64 as CppNix decodes it: stops at the first `=`, skips newlines, and keeps a trailing
/// partial group's whole bytes. `None` on any other character outside the alphabet.
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut res = Vec::with_capacity(s.len().div_ceil(4) * 3);
    let mut d: u32 = 0;
    let mut bits = 0;
    for &c in s.as_bytes() {
        if c == b'=' {
            break;
        }
        if c == b'\n' {
            continue;
        }
        let digit = BASE64_CHARS.iter().position(|&x| x == c)? as u32;
        bits += 6;
        d = (d << 6) | digit;
        if bits >= 8 {
            res.push(((d >> (bits - 8)) & 0xff) as u8);
            bits -= 8;
        }
        d &= (1 << bits) - 1;
    }
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn empty_string_sha256() {
        let h = Hash::of(HashAlgo::Sha256, b"");
        assert_eq!(
            h.to_base16(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            h.to_nix32(),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
    }

    // Expected values from CppNix 2.34: builtins.hashString / builtins.convertHash on "hello".
    #[test]
    fn hello_all_algos_all_formats() {
        let cases: [(HashAlgo, [&str; 4]); 4] = [
            (
                HashAlgo::Md5,
                [
                    "5d41402abc4b2a76b9719d911017c592",
                    "4jqlbi14cxf6wpcajbphm40hax",
                    "XUFAKrxLKna5cZ2REBfFkg==",
                    "md5-XUFAKrxLKna5cZ2REBfFkg==",
                ],
            ),
            (
                HashAlgo::Sha1,
                [
                    "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
                    "9m1skbnr5i43n3yypvda5s65vhfwdx5a",
                    "qvTGHdzF6KLavt4PO0gs2a6pQ00=",
                    "sha1-qvTGHdzF6KLavt4PO0gs2a6pQ00=",
                ],
            ),
            (
                HashAlgo::Sha256,
                [
                    HELLO_SHA256,
                    "094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic",
                    "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
                    "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=",
                ],
            ),
            (
                HashAlgo::Sha512,
                [
                    "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043",
                    "11w1pmwfdpz9pisbhp5qiv38q6dmidq2ipcqykw3p0sb6yrqcij79rwcwcjbxyzwbdal349qbxrncbk7pmd6snljrfpiwv2pljd4wcv",
                    "m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==",
                    "sha512-m3HSJL1i83hdltRq0+o9czGb+8KJDKra4t/3JRlnPKcjI8PZm6XBHXx6zG4UuMXaDEZjR1wuXDre9G9zvN7AQw==",
                ],
            ),
        ];
        for (algo, [b16, n32, b64, sri]) in cases {
            let h = Hash::of(algo, b"hello");
            assert_eq!(h.to_string(HashFormat::Base16, false), b16);
            assert_eq!(h.to_string(HashFormat::Nix32, false), n32);
            assert_eq!(h.to_string(HashFormat::Base64, false), b64);
            assert_eq!(h.to_string(HashFormat::Sri, false), sri);
            assert_eq!(
                h.to_string(HashFormat::Nix32, true),
                format!("{}:{n32}", algo.name())
            );
            // Every encoding parses back, with and without prefix.
            for s in [b16, n32, b64] {
                assert_eq!(Hash::parse_any(s, Some(algo)).unwrap(), h);
                assert_eq!(Hash::parse_non_sri_unprefixed(s, algo).unwrap(), h);
                let prefixed = format!("{}:{s}", algo.name());
                assert_eq!(Hash::parse_any_prefixed(&prefixed).unwrap(), h);
                assert_eq!(Hash::parse_any(&prefixed, None).unwrap(), h);
            }
            assert_eq!(Hash::parse_any(sri, None).unwrap(), h);
            assert_eq!(Hash::parse_sri(sri).unwrap(), h);
            assert_eq!(
                Hash::parse_any_returning_format(sri, None).unwrap().1,
                HashFormat::Sri
            );
            assert_eq!(
                Hash::parse_any_returning_format(n32, Some(algo)).unwrap().1,
                HashFormat::Nix32
            );
            // Encoded lengths match the formats' predicted lengths.
            assert_eq!(n32.len(), HashFormat::Nix32.encoded_len(algo.size()));
            assert_eq!(b64.len(), HashFormat::Base64.encoded_len(algo.size()));
        }
    }

    #[test]
    fn streaming_matches_one_shot() {
        let mut h = Hasher::new(HashAlgo::Sha256);
        h.update(b"hel");
        io::Write::write_all(&mut h, b"lo").unwrap();
        assert_eq!(h.bytes_hashed(), 5);
        assert_eq!(h.finish().to_base16(), HELLO_SHA256);
    }

    #[test]
    fn parse_quirks() {
        let h = Hash::of(HashAlgo::Sha256, b"hello");
        // Upper-case hex is accepted.
        assert_eq!(
            Hash::parse_any(&HELLO_SHA256.to_uppercase(), Some(HashAlgo::Sha256)).unwrap(),
            h
        );
        // SRI without padding, or with trailing junk after '=', still decodes.
        assert_eq!(
            Hash::parse_any("sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ", None).unwrap(),
            h
        );
        assert_eq!(
            Hash::parse_any(
                "sha256-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=xyz",
                None
            )
            .unwrap(),
            h
        );
    }

    // Error texts as printed by CppNix 2.34 for builtins.convertHash { hash = ...; }.
    #[test]
    fn parse_errors() {
        let err = |s: &str, a: Option<HashAlgo>| Hash::parse_any(s, a).unwrap_err().to_string();
        assert_eq!(
            err("sha256:abc", None),
            "hash 'abc' has wrong length for hash algorithm 'sha256'"
        );
        assert_eq!(
            err("abc", None),
            "hash 'abc' does not include a type, nor is the type otherwise known from context"
        );
        assert_eq!(
            err("foo:abc", None),
            "unknown hash algorithm 'foo', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
        );
        assert!(Hash::parse_any("foo:abc", None)
            .unwrap_err()
            .is_usage_error());
        assert_eq!(
            err("sha256-abc", None),
            "invalid SRI hash 'abc', length 2 != expected length 32"
        );
        assert_eq!(
            err("md5-LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", None),
            "invalid SRI hash 'LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=', length 32 != expected length 16"
        );
        assert_eq!(
            err("sha256:zzzqif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic", None),
            "invalid nix32 hash 'zzzqif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic', length 33 != expected length 32"
        );
        assert_eq!(
            err("sha256:gggJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=", None),
            "hash 'gggJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ=' has wrong length for hash algorithm 'sha256'"
        );
        assert_eq!(
            err(
                "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982g",
                None
            ),
            "invalid base16 hash '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b982g', length 0 != expected length 32"
        );
        assert_eq!(
            err("sha256:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmC==", None),
            "invalid Base64 hash 'LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmC==', length 31 != expected length 32"
        );
        assert_eq!(
            err("sha256:LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpO=====", None),
            "invalid Base64 hash 'LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpO=====', length 29 != expected length 32"
        );
        assert_eq!(
            err(
                "sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
                Some(HashAlgo::Sha256)
            ),
            "hash 'sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d' should have type 'sha256'"
        );
        assert_eq!(
            Hash::parse_any("blake3:abc", None).unwrap_err(),
            HashError::Blake3Disabled
        );
        assert_eq!(
            Hash::parse_any_prefixed(HELLO_SHA256)
                .unwrap_err()
                .to_string(),
            format!("hash '{HELLO_SHA256}' does not include a type")
        );
        assert_eq!(
            Hash::parse_sri(HELLO_SHA256).unwrap_err().to_string(),
            format!("hash '{HELLO_SHA256}' is not SRI")
        );
        assert_eq!(
            Hash::parse_allow_empty("", None).unwrap_err().to_string(),
            "empty hash requires explicit hash algorithm"
        );
        let z = Hash::parse_allow_empty("", Some(HashAlgo::Sha256)).unwrap();
        assert_eq!(
            empty_hash_warning(&z),
            "found empty hash, assuming 'sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='"
        );
    }

    #[test]
    fn algo_and_format_names() {
        for a in HashAlgo::ALL {
            assert_eq!(HashAlgo::parse(a.name()).unwrap(), a);
        }
        assert_eq!(HashAlgo::parse_opt("sha3").unwrap(), None);
        assert_eq!(
            HashAlgo::parse_opt("blake3").unwrap_err(),
            HashError::Blake3Disabled
        );
        assert_eq!(HashFormat::parse("base32").unwrap(), HashFormat::Nix32);
        assert_eq!(
            HashFormat::parse("hex").unwrap_err().to_string(),
            "unknown hash format 'hex', expect 'base16', 'base32', 'base64', or 'sri'"
        );
    }

    #[test]
    fn nix32_round_trip_all_lengths() {
        for len in 0..70usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let s = encode_nix32(&bytes);
            assert_eq!(s.len(), nix32_encoded_len(len));
            assert_eq!(decode_nix32(&s).unwrap(), bytes);
            let b = encode_base64(&bytes);
            assert_eq!(decode_base64(&b).unwrap(), bytes);
            assert_eq!(decode_base16(&encode_base16(&bytes)).unwrap(), bytes);
        }
        assert_eq!(decode_nix32("e"), None);
        assert_eq!(decode_base64("a*"), None);
    }

    #[test]
    fn compress_hash_folds() {
        let h = Hash::of(HashAlgo::Sha256, b"hello");
        let c = compress_hash(&h, 20);
        let mut expect = h.bytes()[..20].to_vec();
        for (i, b) in h.bytes()[20..].iter().enumerate() {
            expect[i] ^= b;
        }
        assert_eq!(c, expect);
    }

    #[test]
    fn ordering_is_by_size_then_bytes() {
        let a = Hash::of(HashAlgo::Sha1, b"x");
        let b = Hash::of(HashAlgo::Sha256, b"x");
        assert!(a < b);
        let z = Hash::zero(HashAlgo::Sha256);
        assert!(z < b);
    }
}
