//! Lossless decoding of source files that are not valid UTF-8.
//!
//! CppNix reads Nix sources as bytes, so a string literal keeps whatever bytes the file
//! holds (`"\xff"` written raw is a one-byte string that `toJSON` rejects). Our lexer and
//! parser work on `&str`, so a non-UTF-8 file is decoded with this scheme:
//!
//! * every valid UTF-8 sequence is kept as is;
//! * every byte `b` that is not part of a valid sequence (always `b >= 0x80`) becomes the
//!   private-use code point `U+10FD00 + b`, i.e. one of `U+10FD80..=U+10FDFF`
//!   (Supplementary Private Use Area-B, which Unicode never assigns).
//!
//! The VM remembers which files were decoded this way and maps those code points back
//! to the raw bytes ([`to_raw_bytes`]) when a string literal of such a file becomes a
//! value. Valid UTF-8 files are never touched, so a file that really contains these
//! code points keeps them. Diagnostics show the code points as they are.

use std::borrow::Cow;

/// `U+10FD00 + b` stands for the raw byte `b` (`0x80..=0xFF`).
pub const RAW_BYTE_BASE: u32 = 0x10FD00;

fn raw_char(b: u8) -> char {
    char::from_u32(RAW_BYTE_BASE + b as u32).expect("U+10FD80..U+10FDFF are valid chars")
}

/// Decode source bytes; the flag says whether any byte needed the private-use mapping.
pub fn decode_source(bytes: Vec<u8>) -> (String, bool) {
    let bytes = match String::from_utf8(bytes) {
        Ok(s) => return (s, false),
        Err(e) => e.into_bytes(),
    };
    let mut out = String::with_capacity(bytes.len() + 8);
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.push_str(std::str::from_utf8(&rest[..good]).expect("checked prefix"));
                let bad = e.error_len().unwrap_or(rest.len() - good);
                for &b in &rest[good..good + bad] {
                    out.push(raw_char(b));
                }
                rest = &rest[good + bad..];
            }
        }
    }
    (out, true)
}

/// The bytes `s` stands for in a file decoded by [`decode_source`]: the reserved code
/// points become their raw bytes again, everything else stays UTF-8.
pub fn to_raw_bytes(s: &str) -> Cow<'_, [u8]> {
    let is_raw = |c: char| (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xFF).contains(&(c as u32));
    if !s.chars().any(is_raw) {
        return Cow::Borrowed(s.as_bytes());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut buf = [0u8; 4];
    for c in s.chars() {
        if is_raw(c) {
            out.push((c as u32 - RAW_BYTE_BASE) as u8);
        } else {
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for bytes in [
            &b"plain"[..],
            b"a\xffb",
            b"\xc3\xa9 \xc3 x \xe2\x82 \xf0\x9f\x98\x80 \x80\xbf",
            b"trailing \xe2\x82",
            b"\xff\xfe",
        ] {
            let (s, raw) = decode_source(bytes.to_vec());
            assert_eq!(raw, std::str::from_utf8(bytes).is_err());
            assert_eq!(&*to_raw_bytes(&s), bytes);
        }
    }

    #[test]
    fn valid_files_are_untouched() {
        let s = "\u{10FDFF}".to_string();
        assert_eq!(decode_source(s.clone().into_bytes()), (s, false));
    }
}
