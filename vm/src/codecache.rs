//! The on-disk bytecode cache: a file's compiled chunk tree, kept under a
//! directory (`Settings::bytecode_cache`) so that a second evaluation does
//! not lex, parse or compile an unchanged file again.
//!
//! An entry's name is the SHA-256 of everything its compilation depends on:
//! the compiler's fingerprint, the source text, its name and directory (paths
//! are resolved when parsed), the parse options and the names of the root
//! env. So a changed file, a changed compiler or other settings make another
//! key, and an entry, once written, is never out of date: it is read or
//! never looked at. Entries are written to a temporary file and renamed, so
//! a reader sees a whole entry or none; one that fails its digest or decode
//! (a damaged disk, a truncated copy) is ignored and written again. Errors
//! of the cache itself are not errors of the evaluation, with one exception:
//! an entry's nested chunks are decoded when first used (see
//! `bytecode`), long after the file's digest was checked, and one that
//! then does not decode (an entry made by hand with a valid digest, or a
//! bug) fails the evaluation with an error that names the entry, rather
//! than be guessed at. Decoding checks what a chunk's ops name (constants,
//! jump targets, error contexts), not what they do to the stack and the
//! envs: a hand-made entry that decodes can still make the run loop panic.
//! Whoever can write the cache can already make it give any answer.

use nixvm_compiler::bytecode::{self, Stored};
use nixvm_compiler::{Chunk, ParseErr, ParseOptions, Symbol};
use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// `$XDG_CACHE_HOME/nixvm/bytecode`, else `~/.cache/nixvm/bytecode`.
pub fn default_dir() -> Option<PathBuf> {
    Some(crate::state::cache_home()?.join("nixvm/bytecode"))
}

/// The part of every key that is the same for all files of an evaluation:
/// the compiler, the parse options and the root env's names (hashed once,
/// not once per file: sorting and writing the globals was 2% of NixOS
/// minimal).
#[derive(Clone)]
pub struct KeyBase(Sha256);

fn field(h: &mut Sha256, b: &[u8]) {
    h.update((b.len() as u64).to_le_bytes());
    h.update(b);
}

impl KeyBase {
    pub fn new(opts: &ParseOptions, globals: &FxHashMap<Symbol, u16>) -> KeyBase {
        let mut h = Sha256::new();
        field(&mut h, bytecode::FINGERPRINT.as_bytes());
        field(&mut h, format!("{opts:?}").as_bytes());
        let mut globals: Vec<(u16, &str)> = globals.iter().map(|(s, &i)| (i, s.as_str())).collect();
        globals.sort_unstable();
        field(&mut h, &(globals.len() as u64).to_le_bytes());
        for (i, name) in globals {
            field(&mut h, &i.to_le_bytes());
            field(&mut h, name.as_bytes());
        }
        KeyBase(h)
    }
}

/// What a file's compilation depends on besides the `KeyBase`.
pub struct Inputs<'a> {
    pub src: &'a str,
    pub raw: bool,
    pub name: &'a str,
    pub base_dir: &'a str,
}

/// Where an entry for `inputs` lives under `dir`.
pub fn entry_path(dir: &Path, base: &KeyBase, inputs: &Inputs) -> PathBuf {
    let mut h = base.0.clone();
    field(&mut h, inputs.src.as_bytes());
    field(&mut h, &[inputs.raw as u8]);
    field(&mut h, inputs.name.as_bytes());
    field(&mut h, inputs.base_dir.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    // One directory: making a directory costs here as much as writing
    // several entries, and ext4 indexes large directories.
    dir.join(hex)
}

/// An entry starts with its own key: one copied or renamed to another
/// key's name is not that key's.
fn key(path: &Path) -> &[u8] {
    path.file_name()
        .map(|k| k.as_encoded_bytes())
        .unwrap_or_default()
}

/// The entry at `path`: its chunks, its root chunk (its `file` set to
/// `file`) and its parse's warnings; `None` when there is none or it does
/// not check out.
pub fn load(path: &Path, file: u32) -> Option<(Stored, Chunk, Vec<ParseErr>)> {
    decode(path, std::fs::read(path).ok()?, file)
}

/// `load` for bytes already read (or just made by `entry_bytes`).
pub fn decode(path: &Path, bytes: Vec<u8>, file: u32) -> Option<(Stored, Chunk, Vec<ParseErr>)> {
    let k = key(path);
    if !bytes.starts_with(k) || k.is_empty() {
        return None;
    }
    bytecode::decode(bytes, k.len(), file)
}

/// The bytes of the entry at `path` for a compiled file.
pub fn entry_bytes(
    path: &Path,
    chunk: &Chunk,
    warnings: &[ParseErr],
    interned: &[Symbol],
) -> Vec<u8> {
    let mut bytes = key(path).to_vec();
    bytes.extend_from_slice(&bytecode::encode(chunk, warnings, interned));
    bytes
}

/// Writes entries on a thread of its own, so that an evaluation that fills
/// the cache does not wait for the file system (creating 3,300 files costs
/// NixOS minimal 0.5 s here). Encoding stays on the evaluating thread (a
/// chunk tree is not `Send`); `finish`, or dropping it, waits for what was
/// queued. An entry not written when the process dies is written by a later
/// run: a reader only ever sees whole entries.
#[derive(Default)]
pub struct Writer {
    queue: Option<std::sync::mpsc::Sender<(PathBuf, Vec<u8>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Queue `bytes` (`entry_bytes`) to be written at `path` (written at
    /// once if no thread can be started).
    pub fn store(&mut self, path: &Path, bytes: Vec<u8>) {
        if self.queue.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<(PathBuf, Vec<u8>)>();
            let spawned = std::thread::Builder::new()
                .name("nixvm-bytecode-cache".into())
                .spawn(move || rx.into_iter().for_each(|(p, b)| write_entry(&p, &b)));
            match spawned {
                Ok(t) => (self.queue, self.thread) = (Some(tx), Some(t)),
                Err(_) => return write_entry(path, &bytes),
            }
        }
        if let Some(q) = &self.queue {
            if let Err(e) = q.send((path.to_path_buf(), bytes)) {
                let (p, b) = e.0;
                write_entry(&p, &b);
            }
        }
    }

    /// Wait until every queued entry is written.
    pub fn finish(&mut self) {
        self.queue = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Write an entry (best effort: a cache that cannot be written is a cache
/// that misses).
fn write_entry(path: &Path, bytes: &[u8]) {
    let Some(dir) = path.parent() else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    // A temporary name in the entry's own directory (so that the rename
    // stays on one file system), created exclusively: two writers never
    // share one, even with the same pid in two PID namespaces.
    use std::io::Write;
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    for _ in 0..4 {
        let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".tmp-{}-{nanos:x}-{seq}", std::process::id()));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp);
        let Ok(mut f) = f else {
            continue;
        };
        if f.write_all(bytes).is_ok() && std::fs::rename(&tmp, path).is_ok() {
            return;
        }
        let _ = std::fs::remove_file(&tmp);
        return;
    }
}
