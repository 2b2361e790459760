//! What evaluation reads from the file system, behind a trait an embedder
//! can replace: `import` and `scopedImport`, `readFile`, `readDir`,
//! `readFileType`, `pathExists`, `hashFile` and the search path's lookups
//! (`findFile`, `<nixpkgs>`) go through the evaluator's [`FileSystem`].
//! [`RealFs`] is the default; [`Overlay`] puts unsaved buffers over another
//! one, as a language server needs.
//!
//! Copying a path into the store (`"${./dir}"`, `builtins.path`,
//! `filterSource`) and the fetchers read the real file system: the store
//! hashes and stores what is on disk, so an overlay cannot change it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The type of a file, as `builtins.readFileType`, `readDir` and path
/// filters name it (`as_str`: "regular", "directory", "symlink",
/// "unknown"). The store's NAR code has the same notion.
pub use nixvm_store::FileType as FileKind;

/// The reads evaluation makes. Errors are `std::io::Error`s, whose kind
/// (`NotFound`, `NotADirectory`, …) chooses CppNix's wording of the error.
pub trait FileSystem {
    /// The bytes of the file at `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// The type of `path`; `follow`: through a final symbolic link (a
    /// dangling link is then `NotFound`), else the link itself.
    fn kind(&self, path: &Path, follow: bool) -> io::Result<FileKind>;
    /// The entries of the directory at `path`, with their types (a
    /// symbolic link is `Symlink`), in any order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileKind)>>;
    /// Whether `path` exists, following symbolic links (a dangling one does
    /// not).
    fn exists(&self, path: &Path) -> bool {
        self.kind(path, true).is_ok()
    }
    /// `path` with every symbolic link resolved (for messages that name a
    /// link's target).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(path.to_path_buf())
    }
    /// Whether a file read through this reads the same from the real file
    /// system later: the evaluator then drops a file's text once compiled
    /// and reads it again for an error message.
    fn rereadable(&self) -> bool {
        false
    }
}

/// The real file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealFs;

impl FileSystem for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn kind(&self, path: &Path, follow: bool) -> io::Result<FileKind> {
        let md = if follow {
            std::fs::metadata(path)
        } else {
            std::fs::symlink_metadata(path)
        }?;
        Ok(FileKind::from_std(md.file_type()))
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileKind)>> {
        let mut out = Vec::new();
        for ent in std::fs::read_dir(path)? {
            let ent = ent?;
            // The type the directory entry carries (d_type), as CppNix reads
            // it: std falls back to lstat only where the file system has none.
            let kind = FileKind::from_std(ent.file_type()?);
            out.push((ent.file_name().to_string_lossy().into_owned(), kind));
        }
        Ok(out)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
    fn rereadable(&self) -> bool {
        true
    }
}

/// Files held in memory over another file system: a file set here is read
/// instead of the one below (or as well, if there is none), and the
/// directories above it exist. For a language server's unsaved buffers.
///
/// ```
/// use nixvm::io::{Overlay, RealFs};
/// use std::{path::Path, rc::Rc};
/// let fs = Rc::new(Overlay::new(Rc::new(RealFs)));
/// fs.set("/unsaved/default.nix", "{ x = import ./x.nix; }");
/// fs.set("/unsaved/x.nix", "40 + 2");
/// let mut ev = nixvm::Evaluator::builder().filesystem(fs.clone()).build();
/// let v = ev.eval_file(Path::new("/unsaved")).unwrap();
/// assert_eq!(ev.get(&v, "x").unwrap().as_int(), Some(42));
/// ```
pub struct Overlay {
    below: Rc<dyn FileSystem>,
    files: RefCell<BTreeMap<PathBuf, Vec<u8>>>,
}

impl Overlay {
    /// An overlay with no files yet over `below`.
    pub fn new(below: Rc<dyn FileSystem>) -> Overlay {
        Overlay {
            below,
            files: RefCell::new(BTreeMap::new()),
        }
    }
    /// Hold `bytes` as the file at `path` (an absolute path).
    pub fn set(&self, path: impl Into<PathBuf>, bytes: impl Into<Vec<u8>>) {
        self.files.borrow_mut().insert(path.into(), bytes.into());
    }
    /// Forget the file at `path`: the one below shows again.
    pub fn remove(&self, path: &Path) {
        self.files.borrow_mut().remove(path);
    }
    /// Whether some held file is inside `dir`.
    fn holds_under(&self, dir: &Path) -> bool {
        let files = self.files.borrow();
        let after = files.range(dir.to_path_buf()..);
        after
            .take_while(|(p, _)| p.starts_with(dir))
            .any(|(p, _)| p != dir)
    }
}

impl FileSystem for Overlay {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.files.borrow().get(path) {
            Some(b) => Ok(b.clone()),
            None => self.below.read(path),
        }
    }
    fn kind(&self, path: &Path, follow: bool) -> io::Result<FileKind> {
        if self.files.borrow().contains_key(path) {
            return Ok(FileKind::Regular);
        }
        match self.below.kind(path, follow) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.holds_under(path) => {
                Ok(FileKind::Directory)
            }
            r => r,
        }
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileKind)>> {
        let mut out = match self.below.read_dir(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && self.holds_under(path) => Vec::new(),
            r => r?,
        };
        let files = self.files.borrow();
        for (p, _) in files.range(path.to_path_buf()..) {
            let Ok(rest) = p.strip_prefix(path) else {
                break;
            };
            let mut parts = rest.components();
            let Some(first) = parts.next() else { continue };
            let name = first.as_os_str().to_string_lossy().into_owned();
            let kind = match parts.next() {
                None => FileKind::Regular,
                Some(_) => FileKind::Directory,
            };
            match out.iter_mut().find(|(n, _)| *n == name) {
                Some(e) => e.1 = kind,
                None => out.push((name, kind)),
            }
        }
        Ok(out)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        self.below.canonicalize(path)
    }
}
