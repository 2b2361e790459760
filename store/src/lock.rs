//! Per-path lock files, so that several processes can add to or build into one store safely.
//!
//! A lock on store path `X` is an exclusive `flock` on the file `X.lock` next to it in the
//! physical store directory (the layout CppNix uses). Locks are advisory: they order writers
//! of the same path; readers never lock, because a path only becomes visible to them when it
//! is registered in the database, after its files are complete.
//!
//! Lock files are removed on release. Removing a lock file races with a process that opened
//! it and is waiting for the lock: when that process gets the lock, the file it holds is no
//! longer the one at the path. So after acquiring, a locker compares the device and inode of
//! the file it locked with those of the file now at the path, and starts again when they
//! differ (or when the path is gone). The holder unlinks the file *before* unlocking, so a
//! waiter always sees the unlink once it wins.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::Error;

/// An exclusive lock on one lock file, released (and the file removed) on drop.
#[derive(Debug)]
pub struct PathLock {
    path: PathBuf,
    file: Option<File>,
}

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

fn flock(file: &File, op: libc::c_int) -> std::io::Result<bool> {
    loop {
        // SAFETY: flock on a file descriptor we own; no memory is passed.
        let r = unsafe { libc::flock(file.as_raw_fd(), op) };
        if r == 0 {
            return Ok(true);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EWOULDBLOCK) if op & libc::LOCK_NB != 0 => return Ok(false),
            _ => return Err(e),
        }
    }
}

impl PathLock {
    /// Wait until the lock file `lock_path` is ours.
    pub fn lock(lock_path: &Path) -> Result<PathLock, Error> {
        Self::acquire(lock_path, true).map(|l| l.expect("blocking lock always returns a lock"))
    }

    /// Take the lock if nobody holds it; `None` otherwise.
    pub fn try_lock(lock_path: &Path) -> Result<Option<PathLock>, Error> {
        Self::acquire(lock_path, false)
    }

    fn acquire(lock_path: &Path, wait: bool) -> Result<Option<PathLock>, Error> {
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(lock_path)
                .map_err(|e| io_err("opening lock file", lock_path, e))?;
            let op = if wait {
                libc::LOCK_EX
            } else {
                libc::LOCK_EX | libc::LOCK_NB
            };
            if !flock(&file, op).map_err(|e| io_err("acquiring lock on", lock_path, e))? {
                return Ok(None);
            }
            let held = file
                .metadata()
                .map_err(|e| io_err("getting status of", lock_path, e))?;
            match std::fs::metadata(lock_path) {
                Ok(now) if now.dev() == held.dev() && now.ino() == held.ino() => {
                    return Ok(Some(PathLock {
                        path: lock_path.to_path_buf(),
                        file: Some(file),
                    }));
                }
                // The previous holder removed the file while we waited: try again.
                _ => continue,
            }
        }
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // Unlink while still holding the lock (see the module comment), then unlock by
        // closing.
        if let Ok(c) = CString::new(self.path.as_os_str().as_bytes()) {
            // SAFETY: `c` is a valid NUL-terminated path.
            unsafe {
                libc::unlink(c.as_ptr());
            }
        }
        drop(self.file.take());
    }
}

/// Locks on several paths, taken in sorted order so that two processes locking overlapping
/// sets cannot deadlock.
#[derive(Debug, Default)]
pub struct PathLocks {
    locks: Vec<PathLock>,
}

impl PathLocks {
    pub fn lock_all(paths: impl IntoIterator<Item = PathBuf>) -> Result<PathLocks, Error> {
        let mut sorted: Vec<PathBuf> = paths.into_iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut locks = Vec::with_capacity(sorted.len());
        for p in sorted {
            locks.push(PathLock::lock(&p)?);
        }
        Ok(PathLocks { locks })
    }

    pub fn len(&self) -> usize {
        self.locks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.locks.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nixvm-lock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn exclusive_and_removed_on_release() {
        let d = scratch("excl");
        let p = d.join("x.lock");
        let l = PathLock::lock(&p).unwrap();
        assert!(p.exists());
        assert!(PathLock::try_lock(&p).unwrap().is_none());
        drop(l);
        assert!(!p.exists());
        let l2 = PathLock::try_lock(&p).unwrap();
        assert!(l2.is_some());
    }

    #[test]
    fn mutual_exclusion_across_threads() {
        let d = scratch("threads");
        let p = Arc::new(d.join("y.lock"));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let (p, inside, max) = (p.clone(), inside.clone(), max.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        let _l = PathLock::lock(&p).unwrap();
                        let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max.fetch_max(n, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(max.load(Ordering::SeqCst), 1);
    }
}
