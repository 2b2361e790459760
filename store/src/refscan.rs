//! Finding which store paths a build output refers to.
//!
//! A reference is an occurrence of a candidate path's 32-character hash part anywhere in the
//! output's NAR serialisation (file contents, symlink targets and file names alike). The
//! scanner is a [`Write`] sink, so the NAR can be streamed through it (and through a hasher at
//! the same time with [`Tee`]) without being kept in memory.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, Write};

use crate::path::HASH_PART_LEN;

fn is_nix32(c: u8) -> bool {
    (c.is_ascii_digit() || c.is_ascii_lowercase()) && !matches!(c, b'e' | b'o' | b'u' | b't')
}

/// Streams bytes and records which candidate hash parts occur in them.
pub struct RefScanner {
    /// hash part -> printed path
    candidates: HashMap<[u8; HASH_PART_LEN], String>,
    found: BTreeSet<String>,
    /// The last `HASH_PART_LEN - 1` bytes of the previous chunk, so that occurrences that
    /// straddle two writes are seen.
    tail: Vec<u8>,
}

impl RefScanner {
    /// `candidates` are printed store paths (`<store dir>/<hash>-<name>`).
    pub fn new<'a>(candidates: impl IntoIterator<Item = &'a String>) -> RefScanner {
        let mut map = HashMap::new();
        for c in candidates {
            let base = c.rsplit('/').next().unwrap_or(c);
            if base.len() >= HASH_PART_LEN {
                let mut k = [0u8; HASH_PART_LEN];
                k.copy_from_slice(&base.as_bytes()[..HASH_PART_LEN]);
                map.insert(k, c.clone());
            }
        }
        RefScanner {
            candidates: map,
            found: BTreeSet::new(),
            tail: Vec::new(),
        }
    }

    fn scan(&mut self, data: &[u8]) {
        let n = HASH_PART_LEN;
        let mut i = 0;
        while i + n <= data.len() {
            // Find the last byte in the window that cannot be part of a hash; skip past it.
            let mut j = n;
            while j > 0 && is_nix32(data[i + j - 1]) {
                j -= 1;
            }
            if j > 0 {
                i += j;
                continue;
            }
            let mut k = [0u8; HASH_PART_LEN];
            k.copy_from_slice(&data[i..i + n]);
            if let Some(p) = self.candidates.get(&k) {
                if !self.found.contains(p) {
                    self.found.insert(p.clone());
                }
            }
            i += 1;
        }
    }

    /// The candidates seen so far.
    pub fn found(self) -> BTreeSet<String> {
        self.found
    }
}

impl Write for RefScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.candidates.is_empty() || buf.is_empty() {
            return Ok(buf.len());
        }
        // Scan the seam between the previous tail and this chunk, then keep the last
        // `HASH_PART_LEN - 1` bytes seen for the next seam.
        let mut seam = std::mem::take(&mut self.tail);
        let old = seam.len();
        seam.extend_from_slice(&buf[..buf.len().min(HASH_PART_LEN - 1)]);
        if old > 0 {
            self.scan(&seam);
        }
        self.scan(buf);
        if buf.len() >= HASH_PART_LEN - 1 {
            seam.clear();
            seam.extend_from_slice(&buf[buf.len() - (HASH_PART_LEN - 1)..]);
        } else {
            seam.truncate(old);
            seam.extend_from_slice(buf);
            let drop = seam.len().saturating_sub(HASH_PART_LEN - 1);
            seam.drain(..drop);
        }
        self.tail = seam;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes everything to two sinks.
pub struct Tee<'a, A: Write, B: Write>(pub &'a mut A, pub &'a mut B);

impl<A: Write, B: Write> Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_hash_parts_across_writes() {
        let a = "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo".to_string();
        let b = "/nix/store/12wigjpizrn8axaqxj288q1b751qmwya-a".to_string();
        let c = "/nix/store/qg27jl1a4rz2d537q07bkmvx015ynlls-b".to_string();
        let mut s = RefScanner::new([&a, &b, &c]);
        let text = b"xx vxjiwkjkn7x4079qvh1jkl5pn05j2aw0 yy 12wigjpizrn8axaqxj288q1b751qmwya";
        for chunk in text.chunks(7) {
            s.write_all(chunk).unwrap();
        }
        let found = s.found();
        assert!(found.contains(&a));
        assert!(found.contains(&b));
        assert!(!found.contains(&c));
    }

    #[test]
    fn embedded_in_longer_runs() {
        let a = "/nix/store/vxjiwkjkn7x4079qvh1jkl5pn05j2aw0-foo".to_string();
        let mut s = RefScanner::new([&a]);
        s.write_all(b"0000vxjiwkjkn7x4079qvh1jkl5pn05j2aw00000")
            .unwrap();
        assert_eq!(s.found().len(), 1);
    }
}
