//! The on-disk local store.
//!
//! Layout, for a store with root `ROOT` and logical store directory `/nix/store` (a CppNix
//! "chroot store"; with `ROOT = /` it is the ordinary store):
//!
//! ```text
//! ROOT/nix/store/<hash>-<name>        store objects (the logical path /nix/store/<hash>-<name>)
//! ROOT/nix/store/<hash>-<name>.lock   lock files while a process adds or builds that path
//! ROOT/nix/store/.nixvm-tmp/          work area: objects are written here, then renamed
//! ROOT/nix/var/nixvm/db/db.sqlite     metadata (see `db`)
//! ROOT/nix/var/nixvm/log/<base>.log   build logs
//! ```
//!
//! Paths are named by their logical location everywhere (hashes depend on it), and
//! [`LocalStore::to_real_path`] gives where the files physically are.
//!
//! Adding an object is atomic: its files are written under the work area, synced, renamed
//! into place, the store directory is synced, and only then is the path registered in one
//! database transaction. A path is valid only once registered. Writers of one path take its
//! lock file first; whoever finds the files present but the path unregistered (a process was
//! killed before registering) deletes them and writes them again.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::db::{Db, PathInfo};
use crate::derivation::Derivation;
use crate::hash::{Hash, HashAlgo, Hasher};
use crate::lock::{PathLock, PathLocks};
use crate::nar::{self, FileType};
use crate::path::{ContentAddress, ContentAddressMethod, StoreDir, StorePath};
use crate::refscan::{RefScanner, Tee};
use crate::Error;

/// Where a local store is and what it calls itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The root directory; files of `/nix/store/X` are at `root/nix/store/X`.
    pub root: PathBuf,
    /// The logical store directory.
    pub store_dir: StoreDir,
    /// Database and logs: `root/nix/var/nixvm`, or `$NIXVM_STATE_DIR`.
    pub state_dir: PathBuf,
}

fn default_state_dir(root: &Path) -> PathBuf {
    match std::env::var_os("NIXVM_STATE_DIR").filter(|v| !v.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => root.join("nix/var/nixvm"),
    }
}

impl StoreConfig {
    /// The default store for this user: the chroot store rooted at
    /// `$XDG_DATA_HOME/nixvm/root` (or `~/.local/share/nixvm/root`), logical directory
    /// `NIX_STORE_DIR` or `/nix/store`. Needs neither root nor a daemon.
    pub fn default_for_user() -> Result<StoreConfig, Error> {
        let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
                Some(h) => PathBuf::from(h).join(".local/share"),
                None => {
                    return Err(Error::Msg(
                        "cannot find a place for the store: neither XDG_DATA_HOME nor HOME is set; use --store DIR"
                            .into(),
                    ))
                }
            },
        };
        Ok(StoreConfig::at_root(data.join("nixvm/root")))
    }

    /// A chroot store at `root` with the default logical store directory.
    pub fn at_root(root: impl Into<PathBuf>) -> StoreConfig {
        let root = root.into();
        StoreConfig {
            state_dir: default_state_dir(&root),
            root,
            store_dir: StoreDir::new(default_store_dir()),
        }
    }

    /// A store at `root` with an explicit logical store directory.
    pub fn new(root: impl Into<PathBuf>, store_dir: StoreDir) -> StoreConfig {
        let root = root.into();
        StoreConfig {
            state_dir: default_state_dir(&root),
            root,
            store_dir,
        }
    }

    /// Where the logical store directory physically is.
    pub fn real_store_dir(&self) -> PathBuf {
        self.root
            .join(self.store_dir.as_str().trim_start_matches('/'))
    }

    /// The directory holding the database and logs.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir.clone()
    }

    pub fn db_path(&self) -> PathBuf {
        self.state_dir().join("db/db.sqlite")
    }

    /// Whether builders can use the store's paths where they physically are (the logical
    /// and physical store directories coincide).
    pub fn is_direct(&self) -> bool {
        let real = self.real_store_dir();
        real == Path::new(self.store_dir.as_str())
            || fs::canonicalize(&real).ok()
                == fs::canonicalize(self.store_dir.as_str())
                    .ok()
                    .filter(|_| real.exists())
    }
}

/// `NIX_STORE_DIR`, or `/nix/store`.
pub fn default_store_dir() -> String {
    std::env::var("NIX_STORE_DIR")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| {
            let t = s.trim_end_matches('/');
            if t.is_empty() {
                "/".to_string()
            } else {
                t.to_string()
            }
        })
        .unwrap_or_else(|| "/nix/store".to_string())
}

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// An open local store. Cheap to share between threads (`&LocalStore` / `Arc`).
pub struct LocalStore {
    config: StoreConfig,
    real_store: PathBuf,
    db: Mutex<Db>,
    /// Whether text objects are registered in batches (see [`LocalStore::set_batch_writes`]).
    batch: std::sync::atomic::AtomicBool,
    pending: Mutex<Pending>,
}

/// Text objects written and in place, waiting for one file-system sync and one transaction.
/// Their locks are held until then, so other processes wait instead of redoing them.
#[derive(Default)]
struct Pending {
    infos: Vec<PathInfo>,
    drv_outputs: BTreeMap<String, BTreeMap<String, String>>,
    by_path: std::collections::HashMap<String, usize>,
    locks: Vec<PathLock>,
}

/// How many text objects wait at most before they are synced and registered.
const BATCH_LIMIT: usize = 256;

/// A work directory entry that is removed on drop unless it was renamed away.
struct TempEntry {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempEntry {
    fn drop(&mut self) {
        if !self.keep {
            let _ = delete_path(&self.path);
        }
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl LocalStore {
    /// Open the store, creating its directories and database if needed.
    pub fn open(config: StoreConfig) -> Result<LocalStore, Error> {
        let real_store = config.real_store_dir();
        for d in [
            real_store.clone(),
            real_store.join(".nixvm-tmp"),
            config.state_dir().join("db"),
            config.state_dir().join("log"),
        ] {
            fs::create_dir_all(&d).map_err(|e| io_err("creating directory", &d, e))?;
        }
        let db = {
            // Switching a fresh database to WAL and creating the schema can fail with
            // "database is locked" without waiting for the busy timeout when two processes
            // race: one opener at a time.
            let _init = crate::lock::PathLock::lock(&config.state_dir().join("db/init.lock"))?;
            Db::open(&config.db_path())?
        };
        let store = LocalStore {
            config,
            real_store,
            db: Mutex::new(db),
            batch: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
        };
        store.clean_stale_temp();
        Ok(store)
    }

    /// Open an existing store for queries only: nothing is created, cleaned or migrated
    /// (read-only evaluation must leave the disk alone).
    pub fn open_read_only(config: StoreConfig) -> Result<LocalStore, Error> {
        let real_store = config.real_store_dir();
        let db = Db::open_read_only(&config.db_path())?;
        Ok(LocalStore {
            config,
            real_store,
            db: Mutex::new(db),
            batch: std::sync::atomic::AtomicBool::new(false),
            pending: Mutex::new(Pending::default()),
        })
    }

    /// Whether a store exists at `config` (without creating anything).
    pub fn exists(config: &StoreConfig) -> bool {
        config.db_path().exists()
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn store_dir(&self) -> &StoreDir {
        &self.config.store_dir
    }

    /// The physical store directory.
    pub fn real_store_dir(&self) -> &Path {
        &self.real_store
    }

    fn db(&self) -> MutexGuard<'_, Db> {
        // A panic while holding the lock cannot leave the connection in a bad state that
        // SQLite itself would not catch; keep going.
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The physical location of a logical path inside the store directory (unchanged for
    /// paths outside it).
    pub fn to_real_path(&self, logical: &str) -> PathBuf {
        let dir = self.config.store_dir.as_str();
        match logical.strip_prefix(dir) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let mut p = self.real_store.clone().into_os_string();
                p.push(rest);
                PathBuf::from(p)
            }
            _ => PathBuf::from(logical),
        }
    }

    fn real_of(&self, sp: &StorePath) -> PathBuf {
        self.real_store.join(sp.base_name())
    }

    fn lock_file_of(&self, sp: &StorePath) -> PathBuf {
        self.real_store.join(format!("{}.lock", sp.base_name()))
    }

    /// Take the lock of every given store path (printed), in a deadlock-free order.
    pub fn lock_paths<'a>(
        &self,
        printed: impl IntoIterator<Item = &'a String>,
    ) -> Result<PathLocks, Error> {
        let mut files = Vec::new();
        for p in printed {
            let sp = self.config.store_dir.parse(p)?;
            files.push(self.lock_file_of(&sp));
        }
        PathLocks::lock_all(files)
    }

    /// Lock a path we are about to add. Batched objects keep their locks until flushed, so
    /// before waiting for a lock someone else holds, flush ours: a process that waits then
    /// holds no lock, and two processes cannot wait for each other.
    fn lock_for_add(&self, sp: &StorePath) -> Result<PathLock, Error> {
        let file = self.lock_file_of(sp);
        if let Some(l) = PathLock::try_lock(&file)? {
            return Ok(l);
        }
        self.flush()?;
        PathLock::lock(&file)
    }

    /// Build-log file of a derivation.
    pub fn log_path(&self, drv_path: &str) -> PathBuf {
        let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
        self.config
            .state_dir()
            .join("log")
            .join(format!("{base}.log"))
    }

    /// A fresh, unused name in the work area.
    pub fn temp_path(&self, tag: &str) -> PathBuf {
        let n = TMP_SEQ.fetch_add(1, Ordering::Relaxed);
        self.real_store
            .join(".nixvm-tmp")
            .join(format!("{}-{n}-{tag}", std::process::id()))
    }

    /// Remove work-area entries left behind by processes that no longer run.
    fn clean_stale_temp(&self) {
        let dir = self.real_store.join(".nixvm-tmp");
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let Some(pid) = name.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
                continue;
            };
            // SAFETY: kill with signal 0 only checks for existence.
            let alive = unsafe { libc::kill(pid, 0) } == 0
                || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
            if !alive {
                let _ = delete_path(&e.path());
            }
        }
    }

    // ---- queries ---------------------------------------------------------------------------

    /// Batch text objects (`toFile`, `.drv`): instead of two `fsync`s and a transaction
    /// each, they are written and renamed into place, and every [`BATCH_LIMIT`] objects (and
    /// on [`LocalStore::flush`], before any build, and on drop) one `syncfs` makes them all
    /// durable and one transaction registers them. Until then this process sees them as
    /// valid and holds their locks, so other processes wait for them; a crash leaves them
    /// unregistered, to be redone. Instantiating thousands of derivations is then bounded by
    /// evaluation, not by the disk.
    pub fn set_batch_writes(&self, on: bool) -> Result<(), Error> {
        self.batch.store(on, Ordering::SeqCst);
        if !on {
            self.flush()?;
        }
        Ok(())
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Make batched objects durable and register them.
    pub fn flush(&self) -> Result<(), Error> {
        let mut p = self.pending();
        if p.infos.is_empty() {
            return Ok(());
        }
        syncfs(&self.real_store)?;
        self.db().register(&p.infos, &p.drv_outputs)?;
        *p = Pending::default();
        Ok(())
    }

    /// Whether the printed store path is valid.
    pub fn is_valid(&self, printed: &str) -> Result<bool, Error> {
        if self.pending().by_path.contains_key(printed) {
            return Ok(true);
        }
        self.db().is_valid(printed)
    }

    pub fn query_path_info(&self, printed: &str) -> Result<Option<PathInfo>, Error> {
        {
            let p = self.pending();
            if let Some(&i) = p.by_path.get(printed) {
                return Ok(Some(p.infos[i].clone()));
            }
        }
        self.db().query_path_info(printed)
    }

    pub fn query_references(&self, printed: &str) -> Result<BTreeSet<String>, Error> {
        Ok(self
            .query_path_info(printed)?
            .map(|i| i.references)
            .unwrap_or_default())
    }

    /// Output paths recorded for a valid `.drv`.
    pub fn query_derivation_outputs(&self, drv: &str) -> Result<BTreeMap<String, String>, Error> {
        if let Some(o) = self.pending().drv_outputs.get(drv) {
            return Ok(o.clone());
        }
        self.db().query_derivation_outputs(drv)
    }

    /// Valid derivations that have `path` as an output: (drv, output name).
    pub fn query_valid_derivers(&self, path: &str) -> Result<Vec<(String, String)>, Error> {
        let mut found: Vec<(String, String)> = self
            .pending()
            .drv_outputs
            .iter()
            .flat_map(|(d, outs)| {
                outs.iter()
                    .filter(|(_, p)| p.as_str() == path)
                    .map(|(o, _)| (d.clone(), o.clone()))
                    .collect::<Vec<_>>()
            })
            .collect();
        found.extend(self.db().query_valid_derivers(path)?);
        Ok(found)
    }

    /// The closure of `paths` under references (including the paths themselves). Every
    /// path must be valid.
    pub fn compute_closure<'a>(
        &self,
        paths: impl IntoIterator<Item = &'a String>,
    ) -> Result<BTreeSet<String>, Error> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = paths.into_iter().cloned().collect();
        let db = self.db();
        while let Some(p) = todo.pop() {
            if seen.contains(&p) {
                continue;
            }
            let info = db
                .query_path_info(&p)?
                .ok_or_else(|| Error::Msg(format!("path '{p}' is not valid")))?;
            for r in info.references {
                if !seen.contains(&r) {
                    todo.push(r);
                }
            }
            seen.insert(p);
        }
        Ok(seen)
    }

    /// Read and parse a valid `.drv` file.
    pub fn read_derivation(&self, drv_path: &str) -> Result<Derivation, Error> {
        if !self.is_valid(drv_path)? {
            let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
            return Err(Error::Msg(format!("path '{base}' is not valid")));
        }
        let real = self.to_real_path(drv_path);
        let text = fs::read_to_string(&real).map_err(|e| io_err("reading derivation", &real, e))?;
        Derivation::parse_at_path(&self.config.store_dir, drv_path, &text)
    }

    // ---- adding ----------------------------------------------------------------------------

    /// Add a text object (`builtins.toFile`, `.drv` files): a regular file whose path is
    /// computed from its contents and references. Returns the printed path.
    pub fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<String>,
    ) -> Result<String, Error> {
        self.add_text_with_outputs(name, contents, references, &BTreeMap::new())
    }

    fn add_text_with_outputs(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<String>,
        drv_outputs: &BTreeMap<String, String>,
    ) -> Result<String, Error> {
        let sd = &self.config.store_dir;
        let hash = Hash::of(HashAlgo::Sha256, contents);
        let sp = sd.make_text_path(name, &hash, references)?;
        let printed = sd.print(&sp);
        if self.is_valid(&printed)? {
            return Ok(printed);
        }
        let lock = self.lock_for_add(&sp)?;
        if self.is_valid(&printed)? {
            return Ok(printed);
        }
        let batch = self.batch.load(Ordering::SeqCst);
        let tmp = TempEntry {
            path: self.temp_path(sp.base_name()),
            keep: false,
        };
        write_file(&tmp.path, contents, !batch)?;
        canonicalise(&tmp.path)?;
        let (nar_hash, nar_size) = nar::nar_hash_bytes(contents);
        let info = PathInfo {
            path: printed.clone(),
            nar_hash,
            nar_size,
            references: references.clone(),
            deriver: None,
            ca: Some(
                ContentAddress {
                    method: ContentAddressMethod::Text,
                    hash,
                }
                .render(),
            ),
            registration_time: now(),
        };
        let mut outs = BTreeMap::new();
        if !drv_outputs.is_empty() {
            outs.insert(printed.clone(), drv_outputs.clone());
        }
        if batch {
            self.move_into_place_unsynced(tmp, &sp)?;
            let full = {
                let mut p = self.pending();
                let n = p.infos.len();
                p.by_path.insert(printed.clone(), n);
                p.infos.push(info);
                p.drv_outputs.extend(outs);
                p.locks.push(lock);
                p.infos.len() >= BATCH_LIMIT
            };
            if full {
                self.flush()?;
            }
            return Ok(printed);
        }
        self.move_into_place(tmp, &sp)?;
        self.db().register(&[info], &outs)?;
        drop(lock);
        Ok(printed)
    }

    /// Write a derivation's `.drv` file, whose references are its input sources and input
    /// derivations (all of which must be valid), and record its output paths.
    pub fn add_derivation(&self, drv: &Derivation) -> Result<String, Error> {
        let sd = &self.config.store_dir;
        let contents = drv.unparse(sd)?;
        let refs = drv.references();
        let mut outputs = BTreeMap::new();
        for (name, out) in &drv.outputs {
            if let Some(p) = out.path(sd, &drv.name, name)? {
                outputs.insert(name.clone(), p);
            }
        }
        self.add_text_with_outputs(
            &format!("{}{}", drv.name, crate::path::DRV_EXTENSION),
            contents.as_bytes(),
            &refs,
            &outputs,
        )
    }

    /// Add a file or tree from the file system as `builtins.path`/`filterSource`/path
    /// interpolation do: content-addressed with `method` (flat: a single regular file; or
    /// recursive: the NAR, with sha256), no references. `filter` sees every entry below the
    /// root once, in NAR order. Returns the printed path and the content hash.
    pub fn add_path<E, F>(
        &self,
        name: &str,
        src: &Path,
        method: ContentAddressMethod,
        filter: Option<&mut F>,
    ) -> Result<(String, Hash), E>
    where
        E: From<Error>,
        F: FnMut(&Path, FileType) -> Result<bool, E> + ?Sized,
    {
        let sd = &self.config.store_dir;
        let make = |h: &Hash| -> Result<StorePath, Error> {
            let ca = ContentAddress { method, hash: *h };
            Ok(sd.make_fixed_output_path(name, &ca, [""; 0], false)?)
        };
        let filtered = filter.is_some() && method == ContentAddressMethod::Recursive;
        if !filtered {
            // Hash first: a valid path is then found without copying anything.
            let (hash, _) = nar::hash_path(src, method, HashAlgo::Sha256, &mut |_: &Path, _| {
                Ok::<bool, Error>(true)
            })?;
            let sp = make(&hash)?;
            let printed = sd.print(&sp);
            if self.is_valid(&printed)? {
                return Ok((printed, hash));
            }
            let tmp = TempEntry {
                path: self.temp_path(sp.base_name()),
                keep: false,
            };
            copy_in(src, &tmp.path, method, &mut |_: &Path, _| {
                Ok::<bool, E>(true)
            })?;
            self.finish_add(tmp, method, &hash, &sp)?;
            return Ok((printed, hash));
        }
        // With a filter: copy once (calling the filter once per entry), then hash the copy.
        let tmp = TempEntry {
            path: self.temp_path("add"),
            keep: false,
        };
        let filter = filter.expect("filtered implies a filter");
        copy_in(src, &tmp.path, method, filter)?;
        let (hash, _) = nar::hash_path(&tmp.path, method, HashAlgo::Sha256, &mut |_: &Path, _| {
            Ok::<bool, Error>(true)
        })?;
        let sp = make(&hash)?;
        let printed = sd.print(&sp);
        if self.is_valid(&printed)? {
            return Ok((printed, hash));
        }
        self.finish_add(tmp, method, &hash, &sp)?;
        Ok((printed, hash))
    }

    /// Check a copied content-addressed object, move it into place and register it.
    fn finish_add(
        &self,
        tmp: TempEntry,
        method: ContentAddressMethod,
        expected: &Hash,
        sp: &StorePath,
    ) -> Result<(), Error> {
        let sd = &self.config.store_dir;
        let printed = sd.print(sp);
        let (hash, _) = nar::hash_path(&tmp.path, method, HashAlgo::Sha256, &mut |_: &Path, _| {
            Ok::<bool, Error>(true)
        })?;
        if hash != *expected {
            return Err(Error::Msg(format!(
                "files changed while they were being added to the store as '{printed}'"
            )));
        }
        let (nar_hash, nar_size) = nar::nar_hash_path(&tmp.path)?;
        canonicalise(&tmp.path)?;
        sync_tree(&tmp.path)?;
        let _lock = self.lock_for_add(sp)?;
        if self.is_valid(&printed)? {
            return Ok(());
        }
        let info = PathInfo {
            path: printed,
            nar_hash,
            nar_size,
            references: BTreeSet::new(),
            deriver: None,
            ca: Some(
                ContentAddress {
                    method,
                    hash: *expected,
                }
                .render(),
            ),
            registration_time: now(),
        };
        self.move_into_place(tmp, sp)?;
        self.db().register(&[info], &BTreeMap::new())
    }

    /// Rename a finished work entry to its store location (the caller holds the path's
    /// lock), replacing stale unregistered files, and sync the store directory.
    fn move_into_place(&self, tmp: TempEntry, sp: &StorePath) -> Result<(), Error> {
        self.move_into_place_unsynced(tmp, sp)?;
        sync_dir(&self.real_store)
    }

    fn move_into_place_unsynced(&self, mut tmp: TempEntry, sp: &StorePath) -> Result<(), Error> {
        let dest = self.real_of(sp);
        if fs::symlink_metadata(&dest).is_ok() {
            delete_path(&dest)?;
        }
        fs::rename(&tmp.path, &dest).map_err(|e| io_err("moving into place", &dest, e))?;
        tmp.keep = true;
        Ok(())
    }

    /// Register paths that a builder produced in place: `outputs` are (printed path,
    /// deriver, candidates for references, content address). Computes NAR hashes and
    /// references, makes the files read-only, syncs, and registers all in one transaction.
    pub fn register_outputs(&self, outputs: &[OutputToRegister]) -> Result<Vec<PathInfo>, Error> {
        let infos = self.prepare_outputs(outputs)?;
        self.register_infos(&infos)?;
        Ok(infos)
    }

    /// The first half of [`LocalStore::register_outputs`]: canonicalise, hash, scan and sync,
    /// without registering (so that the caller can check the result first).
    pub fn prepare_outputs(&self, outputs: &[OutputToRegister]) -> Result<Vec<PathInfo>, Error> {
        let mut infos = Vec::new();
        for o in outputs {
            let real = self.to_real_path(&o.path);
            canonicalise(&real)?;
            let (nar_hash, nar_size, references) = scan_path(&real, &o.candidates)?;
            sync_tree(&real)?;
            infos.push(PathInfo {
                path: o.path.clone(),
                nar_hash,
                nar_size,
                references,
                deriver: Some(o.deriver.clone()),
                ca: o.ca.clone(),
                registration_time: now(),
            });
        }
        Ok(infos)
    }

    /// Register prepared paths in one transaction.
    pub fn register_infos(&self, infos: &[PathInfo]) -> Result<(), Error> {
        self.flush()?;
        sync_dir(&self.real_store)?;
        self.db().register(infos, &BTreeMap::new())
    }

    /// Remove the files of a path that is not valid (a leftover of an interrupted build).
    /// The caller holds the path's lock.
    pub fn delete_invalid(&self, printed: &str) -> Result<(), Error> {
        if self.is_valid(printed)? {
            return Err(Error::Msg(format!(
                "refusing to delete valid path '{printed}'"
            )));
        }
        let real = self.to_real_path(printed);
        if fs::symlink_metadata(&real).is_ok() {
            delete_path(&real)?;
        }
        Ok(())
    }

    /// Number of valid paths.
    pub fn count_valid(&self) -> Result<u64, Error> {
        self.db().count_valid()
    }
}

/// A build output to register.
#[derive(Debug, Clone)]
pub struct OutputToRegister {
    pub path: String,
    pub deriver: String,
    /// Printed paths whose hash parts are looked for in the output.
    pub candidates: BTreeSet<String>,
    pub ca: Option<String>,
}

/// NAR hash, NAR size and the candidates referred to, of the tree at `real`.
pub fn scan_path(
    real: &Path,
    candidates: &BTreeSet<String>,
) -> Result<(Hash, u64, BTreeSet<String>), Error> {
    let mut hasher = Hasher::new(HashAlgo::Sha256);
    let mut scanner = RefScanner::new(candidates);
    {
        let mut tee = Tee(&mut hasher, &mut scanner);
        nar::dump_path(real, &mut tee)?;
    }
    let size = hasher.bytes_hashed();
    Ok((hasher.finish(), size, scanner.found()))
}

// ---- file system helpers ------------------------------------------------------------------

impl Drop for LocalStore {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "error: could not register store paths: {e}"
            );
        }
    }
}

/// Flush every dirty file and directory of the file system holding `dir`.
fn syncfs(dir: &Path) -> Result<(), Error> {
    let f = fs::File::open(dir).map_err(|e| io_err("opening directory", dir, e))?;
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(std::os::unix::io::AsRawFd::as_raw_fd(&f)) } != 0 {
        return Err(io_err(
            "syncing the file system of",
            dir,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Create `path` (it must not exist) holding `contents`, optionally executable, and fsync
/// it when `sync` (batched writers sync the whole filesystem once instead).
fn write_file(path: &Path, contents: &[u8], sync: bool) -> Result<(), Error> {
    write_new_file(path, contents, false, sync)
}

fn write_file_synced(path: &Path, contents: &[u8], executable: bool) -> Result<(), Error> {
    write_new_file(path, contents, executable, true)
}

fn write_new_file(path: &Path, contents: &[u8], executable: bool, sync: bool) -> Result<(), Error> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| io_err("creating file", path, e))?;
    f.write_all(contents)
        .map_err(|e| io_err("writing to file", path, e))?;
    if executable {
        f.set_permissions(fs::Permissions::from_mode(0o755))
            .map_err(|e| io_err("changing permissions of", path, e))?;
    }
    if sync {
        f.sync_all().map_err(|e| io_err("syncing file", path, e))?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    let f = fs::File::open(dir).map_err(|e| io_err("opening directory", dir, e))?;
    f.sync_all()
        .map_err(|e| io_err("syncing directory", dir, e))
}

/// fsync every file and directory of a tree (symlinks need no sync of their own: their
/// directory's sync covers them).
pub fn sync_tree(path: &Path) -> Result<(), Error> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_err("getting status of", path, e))?;
    if meta.is_dir() {
        let rd = fs::read_dir(path).map_err(|e| io_err("opening directory", path, e))?;
        for e in rd {
            let e = e.map_err(|e| io_err("reading directory", path, e))?;
            sync_tree(&e.path())?;
        }
        sync_dir(path)
    } else if meta.is_file() {
        let f = fs::File::open(path).map_err(|e| io_err("opening file", path, e))?;
        f.sync_all().map_err(|e| io_err("syncing file", path, e))
    } else {
        Ok(())
    }
}

/// Make a tree look like every store object: read-only (files keep only their execute
/// bit), modification time 1 second after the epoch.
pub fn canonicalise(path: &Path) -> Result<(), Error> {
    let meta = fs::symlink_metadata(path).map_err(|e| io_err("getting status of", path, e))?;
    let ft = meta.file_type();
    if ft.is_dir() {
        let rd = fs::read_dir(path).map_err(|e| io_err("opening directory", path, e))?;
        for e in rd {
            let e = e.map_err(|e| io_err("reading directory", path, e))?;
            canonicalise(&e.path())?;
        }
    }
    if !ft.is_symlink() {
        let mode = if ft.is_dir() || meta.permissions().mode() & 0o100 != 0 {
            0o555
        } else {
            0o444
        };
        if meta.permissions().mode() & 0o7777 != mode {
            fs::set_permissions(path, fs::Permissions::from_mode(mode))
                .map_err(|e| io_err("changing permissions of", path, e))?;
        }
    }
    set_mtime_one(path)
}

fn set_mtime_one(path: &Path) -> Result<(), Error> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Msg(format!("path '{}' contains a NUL byte", path.display())))?;
    let times = [
        libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: 1,
            tv_nsec: 0,
        },
    ];
    // SAFETY: valid C string and a two-element timespec array, as utimensat requires.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r != 0 {
        return Err(io_err(
            "changing modification time of",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Delete a file or tree, making read-only directories writable first.
pub fn delete_path(path: &Path) -> Result<(), Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("getting status of", path, e)),
    };
    if meta.is_dir() {
        if meta.permissions().mode() & 0o700 != 0o700 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755))
                .map_err(|e| io_err("changing permissions of", path, e))?;
        }
        let rd = fs::read_dir(path).map_err(|e| io_err("opening directory", path, e))?;
        for e in rd {
            let e = e.map_err(|e| io_err("reading directory", path, e))?;
            delete_path(&e.path())?;
        }
        fs::remove_dir(path).map_err(|e| io_err("removing directory", path, e))
    } else {
        fs::remove_file(path).map_err(|e| io_err("removing file", path, e))
    }
}

/// Copy `src` to `dest` (which must not exist) for adding: flat copies one regular file's
/// contents; recursive copies the tree (not following symlinks), keeping only what a NAR
/// keeps, and asking `filter` about each entry below the root in sorted order.
pub fn copy_in<E, F>(
    src: &Path,
    dest: &Path,
    method: ContentAddressMethod,
    filter: &mut F,
) -> Result<(), E>
where
    E: From<Error>,
    F: FnMut(&Path, FileType) -> Result<bool, E> + ?Sized,
{
    match method {
        ContentAddressMethod::Flat | ContentAddressMethod::Text => {
            let data = fs::read(src).map_err(|e| io_err("reading file", src, e))?;
            write_file_synced(dest, &data, false)?;
            Ok(())
        }
        ContentAddressMethod::Recursive => copy_node(src, dest, filter, 0),
    }
}

fn copy_node<E, F>(src: &Path, dest: &Path, filter: &mut F, depth: usize) -> Result<(), E>
where
    E: From<Error>,
    F: FnMut(&Path, FileType) -> Result<bool, E> + ?Sized,
{
    if depth >= nar::MAX_DEPTH {
        return Err(E::from(Error::Nar(crate::NarError::TooDeep {
            path: src.display().to_string(),
        })));
    }
    let meta = fs::symlink_metadata(src).map_err(|e| io_err("getting status of", src, e))?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src).map_err(|e| io_err("reading symbolic link", src, e))?;
        symlink(&target, dest).map_err(|e| io_err("creating symlink", dest, e))?;
    } else if ft.is_file() {
        let data = fs::read(src).map_err(|e| io_err("reading file", src, e))?;
        write_file_synced(dest, &data, meta.permissions().mode() & 0o100 != 0)?;
    } else if ft.is_dir() {
        fs::create_dir(dest).map_err(|e| io_err("creating directory", dest, e))?;
        let mut names = Vec::new();
        let rd = fs::read_dir(src).map_err(|e| io_err("opening directory", src, e))?;
        for e in rd {
            let e = e.map_err(|e| io_err("reading directory", src, e))?;
            names.push(e.file_name());
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for n in names {
            let child = src.join(&n);
            let cm =
                fs::symlink_metadata(&child).map_err(|e| io_err("getting status of", &child, e))?;
            let t = if cm.is_file() {
                FileType::Regular
            } else if cm.is_dir() {
                FileType::Directory
            } else if cm.file_type().is_symlink() {
                FileType::Symlink
            } else {
                FileType::Unknown
            };
            if !filter(&child, t)? {
                continue;
            }
            copy_node(&child, &dest.join(&n), filter, depth + 1)?;
        }
    } else {
        return Err(E::from(Error::Nar(crate::NarError::UnsupportedType {
            path: src.display().to_string(),
        })));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
