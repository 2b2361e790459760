//! NAR (Nix ARchive) serialisation and hashing of file system trees.
//!
//! This module owns the byte format CppNix's `dumpPath`/`dumpString` produce, which is what
//! `builtins.path`, `filterSource` and recursive fixed outputs hash:
//!
//! * every string is a little-endian u64 length, the bytes, and zero padding to 8 bytes;
//! * the archive is `"nix-archive-1"` followed by one node;
//! * a node is `( type regular [executable ""] contents <data> )`,
//!   `( type symlink target <target> )`, or
//!   `( type directory entry ( name <n> node <node> ) ... )` with entries sorted bytewise;
//! * a file is executable when its owner-execute bit is set.
//!
//! An optional filter decides, for every entry below the root, whether it is included; it gets
//! the entry's full path and its [`FileType`]. Directory nesting is limited to
//! [`MAX_DEPTH`] levels as in CppNix.

use std::ffi::OsString;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::hash::{Hash, HashAlgo, Hasher};
use crate::path::ContentAddressMethod;
use crate::{Error, NarError};

/// The NAR magic string.
pub const NAR_MAGIC: &str = "nix-archive-1";

/// Maximum directory depth CppNix serialises.
pub const MAX_DEPTH: usize = 64;

/// The type of a file system entry, as a path filter sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    /// Sockets, FIFOs, devices.
    Unknown,
}

impl FileType {
    /// The name `filterSource` filters receive: "regular", "directory", "symlink", "unknown".
    pub fn as_str(self) -> &'static str {
        match self {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Unknown => "unknown",
        }
    }

    fn of(meta: &fs::Metadata) -> FileType {
        FileType::from_std(meta.file_type())
    }

    /// The type std reports (from metadata, or a directory entry's d_type).
    pub fn from_std(ft: fs::FileType) -> FileType {
        if ft.is_file() {
            FileType::Regular
        } else if ft.is_dir() {
            FileType::Directory
        } else if ft.is_symlink() {
            FileType::Symlink
        } else {
            FileType::Unknown
        }
    }
}

/// Write one NAR string: length, bytes, padding.
fn write_str<W: Write + ?Sized>(w: &mut W, s: &[u8]) -> io::Result<()> {
    w.write_all(&(s.len() as u64).to_le_bytes())?;
    w.write_all(s)?;
    write_padding(w, s.len() as u64)
}

fn write_padding<W: Write + ?Sized>(w: &mut W, len: u64) -> io::Result<()> {
    let pad = ((8 - len % 8) % 8) as usize;
    w.write_all(&[0u8; 8][..pad])
}

fn write_strs<W: Write + ?Sized>(w: &mut W, ss: &[&str]) -> io::Result<()> {
    for s in ss {
        write_str(w, s.as_bytes())?;
    }
    Ok(())
}

/// The NAR of a single regular, non-executable file with the given contents (CppNix's
/// `dumpString`).
pub fn dump_bytes<W: Write + ?Sized>(contents: &[u8], sink: &mut W) -> io::Result<()> {
    write_strs(sink, &[NAR_MAGIC, "(", "type", "regular", "contents"])?;
    write_str(sink, contents)?;
    write_str(sink, b")")
}

/// (sha256 of the NAR, NAR size) of a single regular file with the given contents.
pub fn nar_hash_bytes(contents: &[u8]) -> (Hash, u64) {
    let mut h = Hasher::new(HashAlgo::Sha256);
    dump_bytes(contents, &mut h).expect("hashing does not fail");
    let size = h.bytes_hashed();
    (h.finish(), size)
}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

fn sink_err(source: io::Error) -> Error {
    Error::Io {
        action: "writing NAR to",
        path: "sink".to_string(),
        source,
    }
}

/// Serialise the tree at `path` (not following a symlink at the root) as a NAR.
pub fn dump_path<W: Write + ?Sized>(path: &Path, sink: &mut W) -> Result<(), Error> {
    dump_path_filtered(path, sink, &mut |_: &Path, _: FileType| {
        Ok::<bool, Error>(true)
    })
}

/// Serialise the tree at `path` as a NAR, including only the entries below the root for
/// which `filter(full path, type)` returns `true` (a directory that is filtered out is not
/// descended into). The filter's error type is the caller's, so that an evaluator can
/// propagate errors from a user-supplied filter function.
pub fn dump_path_filtered<W, E, F>(path: &Path, sink: &mut W, filter: &mut F) -> Result<(), E>
where
    W: Write + ?Sized,
    E: From<Error>,
    F: FnMut(&Path, FileType) -> Result<bool, E>,
{
    write_str(sink, NAR_MAGIC.as_bytes()).map_err(|e| E::from(sink_err(e)))?;
    let meta = fs::symlink_metadata(path).map_err(|e| io_err("getting status of", path, e))?;
    dump_node(path, &meta, sink, filter, 0)
}

fn dump_node<W, E, F>(
    path: &Path,
    meta: &fs::Metadata,
    sink: &mut W,
    filter: &mut F,
    depth: usize,
) -> Result<(), E>
where
    W: Write + ?Sized,
    E: From<Error>,
    F: FnMut(&Path, FileType) -> Result<bool, E>,
{
    if depth >= MAX_DEPTH {
        return Err(E::from(Error::Nar(NarError::TooDeep {
            path: path.display().to_string(),
        })));
    }
    let w = |r: io::Result<()>| r.map_err(|e| E::from(sink_err(e)));
    w(write_str(sink, b"("))?;
    match FileType::of(meta) {
        FileType::Regular => {
            w(write_strs(sink, &["type", "regular"]))?;
            if meta.permissions().mode() & 0o100 != 0 {
                w(write_strs(sink, &["executable", ""]))?;
            }
            w(write_str(sink, b"contents"))?;
            dump_file_contents(path, sink)?;
        }
        FileType::Directory => {
            w(write_strs(sink, &["type", "directory"]))?;
            let mut names: Vec<OsString> = Vec::new();
            let rd = fs::read_dir(path).map_err(|e| io_err("opening directory", path, e))?;
            for entry in rd {
                let entry = entry.map_err(|e| io_err("reading directory", path, e))?;
                names.push(entry.file_name());
            }
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                let child: PathBuf = path.join(&name);
                let child_meta = fs::symlink_metadata(&child)
                    .map_err(|e| io_err("getting status of", &child, e))?;
                if !filter(&child, FileType::of(&child_meta))? {
                    continue;
                }
                w(write_strs(sink, &["entry", "(", "name"]))?;
                w(write_str(sink, name.as_bytes()))?;
                w(write_str(sink, b"node"))?;
                dump_node(&child, &child_meta, sink, filter, depth + 1)?;
                w(write_str(sink, b")"))?;
            }
        }
        FileType::Symlink => {
            let target =
                fs::read_link(path).map_err(|e| io_err("reading symbolic link", path, e))?;
            w(write_strs(sink, &["type", "symlink", "target"]))?;
            w(write_str(sink, target.as_os_str().as_bytes()))?;
        }
        FileType::Unknown => {
            return Err(E::from(Error::Nar(NarError::UnsupportedType {
                path: path.display().to_string(),
            })));
        }
    }
    w(write_str(sink, b")"))
}

/// Write `<size> <bytes> <padding>` for a regular file, streaming its contents.
fn dump_file_contents<W, E>(path: &Path, sink: &mut W) -> Result<(), E>
where
    W: Write + ?Sized,
    E: From<Error>,
{
    let file = fs::File::open(path).map_err(|e| io_err("opening file", path, e))?;
    let size = file
        .metadata()
        .map_err(|e| io_err("getting status of", path, e))?
        .len();
    sink.write_all(&size.to_le_bytes())
        .map_err(|e| E::from(sink_err(e)))?;
    let mut limited = file.take(size);
    let mut buf = vec![0u8; 64 * 1024];
    let mut copied: u64 = 0;
    loop {
        let n = match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(E::from(io_err("reading file", path, e))),
        };
        sink.write_all(&buf[..n])
            .map_err(|e| E::from(sink_err(e)))?;
        copied += n as u64;
    }
    if copied != size {
        return Err(E::from(Error::Nar(NarError::FileChanged {
            path: path.display().to_string(),
        })));
    }
    write_padding(sink, size).map_err(|e| E::from(sink_err(e)))
}

/// (sha256 of the NAR, NAR size) of the tree at `path`.
pub fn nar_hash_path(path: &Path) -> Result<(Hash, u64), Error> {
    nar_hash_path_filtered(path, &mut |_: &Path, _: FileType| Ok::<bool, Error>(true))
}

/// (sha256 of the NAR, NAR size) of the tree at `path`, with a filter as in
/// [`dump_path_filtered`].
pub fn nar_hash_path_filtered<E, F>(path: &Path, filter: &mut F) -> Result<(Hash, u64), E>
where
    E: From<Error>,
    F: FnMut(&Path, FileType) -> Result<bool, E>,
{
    let mut h = Hasher::new(HashAlgo::Sha256);
    dump_path_filtered(path, &mut h, filter)?;
    let size = h.bytes_hashed();
    Ok((h.finish(), size))
}

/// CppNix's `hashPath`: the `algo` hash of the file's contents (`Flat`) or of the NAR of the
/// tree (`Recursive`), and the number of bytes hashed. `Text` is hashed like `Flat`. The
/// filter only matters for `Recursive`.
pub fn hash_path<E, F>(
    path: &Path,
    method: ContentAddressMethod,
    algo: HashAlgo,
    filter: &mut F,
) -> Result<(Hash, u64), E>
where
    E: From<Error>,
    F: FnMut(&Path, FileType) -> Result<bool, E>,
{
    let mut h = Hasher::new(algo);
    match method {
        ContentAddressMethod::Recursive => dump_path_filtered(path, &mut h, filter)?,
        ContentAddressMethod::Flat | ContentAddressMethod::Text => {
            let mut file = fs::File::open(path).map_err(|e| io_err("opening file", path, e))?;
            io::copy(&mut file, &mut h).map_err(|e| io_err("reading file", path, e))?;
        }
    }
    let size = h.bytes_hashed();
    Ok((h.finish(), size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::{ContentAddress, StoreDir};
    use std::os::unix::fs::symlink;

    /// A fresh empty directory under the system temp dir.
    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nixvm-store-nar-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(path: &Path, data: &[u8], mode: u32) {
        fs::write(path, data).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The tree whose hashes were taken from CppNix 2.34 (`nix-store --dump`, `nix-hash`,
    /// `builtins.path`).
    fn make_tree(root: &Path) -> PathBuf {
        let t = root.join("t");
        fs::create_dir_all(t.join("sub/deeper")).unwrap();
        fs::create_dir_all(t.join("emptydir")).unwrap();
        write(&t.join("a.txt"), b"hello\n", 0o644);
        write(&t.join("empty"), b"", 0o644);
        write(&t.join("eight"), b"12345678", 0o644);
        write(&t.join("run.sh"), b"#!/bin/sh\necho hi\n", 0o755);
        symlink("a.txt", t.join("link")).unwrap();
        symlink("/nonexistent/target", t.join("dangling")).unwrap();
        write(&t.join("B"), b"B", 0o644);
        write(&t.join("_u"), b"u", 0o644);
        write(&t.join("sub/deeper/f"), b"deep", 0o644);
        write(&t.join("sub/x"), b"x", 0o600);
        t
    }

    #[test]
    fn tree_matches_cppnix() {
        let root = scratch("tree");
        let t = make_tree(&root);
        let (h, size) = nar_hash_path(&t).unwrap();
        assert_eq!(
            h.to_base16(),
            "68adb169ad2e96824ea5f411bed6cddba56b369567343b3f0585246438c670d6"
        );
        assert_eq!(
            h.to_nix32(),
            "1mkhqqw689450lzknd37jlv6p9fvrpbbw4gllm7855ifmmlv3bb8"
        );
        assert_eq!(size, 2576);

        let s = StoreDir::default();
        let ca = ContentAddress {
            method: ContentAddressMethod::Recursive,
            hash: h,
        };
        let p = s.make_fixed_output_path("t", &ca, [""; 0], false).unwrap();
        assert_eq!(s.print(&p), "/nix/store/pmy4nxibr8fzr9qyd6w9xs3zkbz0dkqi-t");

        // builtins.path { path = ./t; name = "foo";
        //   filter = p: t: t != "symlink" && baseNameOf p != "deeper"; }
        let mut seen = Vec::new();
        let (fh, _) = nar_hash_path_filtered(&t, &mut |p: &Path, ty: FileType| {
            seen.push(p.to_path_buf());
            Ok::<bool, Error>(ty != FileType::Symlink && p.file_name().unwrap() != "deeper")
        })
        .unwrap();
        let ca = ContentAddress {
            method: ContentAddressMethod::Recursive,
            hash: fh,
        };
        let p = s
            .make_fixed_output_path("foo", &ca, [""; 0], false)
            .unwrap();
        assert_eq!(
            s.print(&p),
            "/nix/store/z27x9110bh0jp6balc6r814g0ynag0d3-foo"
        );
        // The filter sees full paths, is not asked about the root, and is not asked about
        // the contents of excluded directories.
        assert!(seen.contains(&t.join("sub/deeper")));
        assert!(!seen.contains(&t.join("sub/deeper/f")));
        assert!(!seen.contains(&t));

        // Single files.
        let (fh, _) = nar_hash_path(&t.join("a.txt")).unwrap();
        assert_eq!(
            fh.to_base16(),
            "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
        );
        assert_eq!(nar_hash_bytes(b"hello\n").0, fh);
        let (lh, _) = nar_hash_path(&t.join("link")).unwrap();
        assert_eq!(
            lh.to_base16(),
            "8d3c00cfa866e4d1b809772afeac240786246221eb2c574d69c4bba168834e81"
        );
        let (xh, _) = nar_hash_path(&t.join("run.sh")).unwrap();
        let ca = ContentAddress {
            method: ContentAddressMethod::Recursive,
            hash: xh,
        };
        assert_eq!(
            s.print(
                &s.make_fixed_output_path("run.sh", &ca, [""; 0], false)
                    .unwrap()
            ),
            "/nix/store/hgl6cwhlhzpznapan2nfnls2nyyv4lqb-run.sh"
        );
        let never = &mut |_: &Path, _: FileType| Ok::<bool, Error>(true);
        let (flat, n) = hash_path(
            &t.join("a.txt"),
            ContentAddressMethod::Flat,
            HashAlgo::Sha256,
            never,
        )
        .unwrap();
        assert_eq!(
            flat.to_base16(),
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert_eq!(n, 6);
        assert_eq!(
            Hash::of_file(HashAlgo::Sha256, &t.join("a.txt")).unwrap(),
            flat
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn nar_layout_of_a_small_file() {
        let mut out = Vec::new();
        dump_bytes(b"abc", &mut out).unwrap();
        let mut expect = Vec::new();
        for s in [
            &b"nix-archive-1"[..],
            b"(",
            b"type",
            b"regular",
            b"contents",
            b"abc",
            b")",
        ] {
            expect.extend_from_slice(&(s.len() as u64).to_le_bytes());
            expect.extend_from_slice(s);
            expect.resize(expect.len().div_ceil(8) * 8, 0);
        }
        assert_eq!(out, expect);
        assert_eq!(nar_hash_bytes(b"abc").1, expect.len() as u64);
    }

    #[test]
    fn filter_errors_propagate_and_missing_paths_fail() {
        let root = scratch("err");
        write(&root.join("f"), b"x", 0o644);
        #[derive(Debug)]
        enum MyErr {
            Store(String),
            Filter,
        }
        impl From<Error> for MyErr {
            fn from(e: Error) -> Self {
                MyErr::Store(e.to_string())
            }
        }
        let r = nar_hash_path_filtered(&root, &mut |_: &Path, _: FileType| {
            Err::<bool, MyErr>(MyErr::Filter)
        });
        assert!(matches!(r, Err(MyErr::Filter)));
        let r = nar_hash_path_filtered(&root.join("missing"), &mut |_: &Path, _: FileType| {
            Ok::<bool, MyErr>(true)
        });
        assert!(matches!(r, Err(MyErr::Store(m)) if m.ends_with("No such file or directory")));
        let missing = root.join("missing");
        let e = nar_hash_path(&missing).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "getting status of '{}': No such file or directory",
                missing.display()
            )
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn depth_limit() {
        let root = scratch("deep");
        let mut p = root.join("d");
        for _ in 0..MAX_DEPTH {
            p = p.join("d");
        }
        fs::create_dir_all(&p).unwrap();
        let e = nar_hash_path(&root.join("d")).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("exceeds maximum NAR directory depth of 64"));
        // One level less is fine.
        let mut q = root.join("ok");
        for _ in 0..MAX_DEPTH - 1 {
            q = q.join("d");
        }
        fs::create_dir_all(&q).unwrap();
        // CppNix 2.34: nix-hash --type sha256 of 63 nested empty directories.
        assert_eq!(
            nar_hash_path(&root.join("ok")).unwrap().0.to_base16(),
            "e1db5553b5d37f2fbc624394e7c7d027719c4dc7bedc364569c75ba449db614c"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
