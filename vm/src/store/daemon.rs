//! [`DaemonBackend`]: evaluation against a store that a nix-daemon owns, as
//! on any machine with a multi-user Nix installation.
//!
//! Paths are computed here, as for the local store, and sent to the daemon
//! in batches (`AddMultipleToStore`): an evaluation writes its `.drv` files
//! and `toFile`s in dependency order, so a batch sent in the order it was
//! queued always has references before referrers. A batch goes out when it
//! is large, before anything asks the daemon about a queued path or builds,
//! and at [`StoreBackend::flush`]. Whatever the daemon adds for us it also
//! pins with a temporary root for as long as our connection lives, so its
//! garbage collector cannot take an evaluation's results from under it.
//!
//! The store's files are read where the daemon keeps them: the logical path,
//! or under `root` for a daemon serving a store in another directory.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use nixvm_store::daemon::{self, BuildMode, ClientOptions, Connection, DerivedPath, Logger};

use nixvm_store::db::PathInfo;
use nixvm_store::derivation::Derivation;
use nixvm_store::path::{ContentAddress, ContentAddressMethod};
use nixvm_store::{nar, Error, Hash, HashAlgo, StoreDir};

use super::{PathFilter, StoreBackend};

/// The store path `path` is in (`/nix/store/HASH-NAME` of
/// `/nix/store/HASH-NAME/sub/file`), if it is in the store.
fn top_store_path<'a>(store_dir: &StoreDir, path: &'a str) -> Option<&'a str> {
    let rest = path.strip_prefix(store_dir.as_str())?.strip_prefix('/')?;
    let len = store_dir.as_str().len() + 1 + rest.find('/').unwrap_or(rest.len());
    Some(&path[..len])
}

/// Send a batch when it holds this many paths or bytes.
const BATCH_PATHS: usize = 2000;
const BATCH_BYTES: usize = 16 << 20;

/// Where the daemon is and how to talk to it.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub socket: PathBuf,
    /// Where the store's files are, when not where their paths say.
    pub root: Option<PathBuf>,
    pub store_dir: StoreDir,
    pub options: ClientOptions,
    /// The client's verbosity and whether build logs are shown.
    pub verbosity: u64,
    pub print_build_logs: bool,
}

impl DaemonConfig {
    /// CppNix's socket: `NIX_DAEMON_SOCKET_PATH`, else
    /// `$NIX_STATE_DIR/daemon-socket/socket`, else /nix/var/nix's.
    pub fn default_socket() -> PathBuf {
        if let Some(p) = std::env::var_os("NIX_DAEMON_SOCKET_PATH").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let state = std::env::var_os("NIX_STATE_DIR")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/nix/var/nix"));
        state.join("daemon-socket/socket")
    }
}

#[derive(Default)]
struct Pending {
    items: Vec<(PathInfo, Vec<u8>)>,
    index: HashMap<String, usize>,
    bytes: usize,
}

pub struct DaemonBackend {
    config: DaemonConfig,
    writable: bool,
    conn: RefCell<Option<Connection>>,
    pending: RefCell<Pending>,
    /// Paths this evaluation added or found valid (validity only grows
    /// while our temporary roots hold).
    valid: RefCell<BTreeSet<String>>,
}

impl DaemonBackend {
    pub fn new(config: DaemonConfig, writable: bool) -> DaemonBackend {
        DaemonBackend {
            config,
            writable,
            conn: RefCell::new(None),
            pending: RefCell::new(Pending::default()),
            valid: RefCell::new(BTreeSet::new()),
        }
    }

    pub fn config(&self) -> &DaemonConfig {
        &self.config
    }

    /// Run `f` on the open connection (opened on first use).
    pub fn with_conn<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut slot = self.conn.borrow_mut();
        if slot.is_none() {
            let log: Logger =
                daemon::stderr_logger(self.config.verbosity, self.config.print_build_logs);
            let mut c = Connection::open(&self.config.socket, log)?;
            if !self.config.options.overrides.is_empty()
                || self.config.options.max_build_jobs != ClientOptions::default().max_build_jobs
                || self.config.options.keep_failed
            {
                c.set_options(&self.config.options)?;
            }
            *slot = Some(c);
        }
        f(slot.as_mut().expect("opened above"))
    }

    fn read_only(&self) -> Result<(), Error> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::Msg(
                "cannot write to the store in read-only mode".into(),
            ))
        }
    }

    /// Queue a content-addressed path with its NAR; send the batch when full.
    fn queue(&self, info: PathInfo, nar: Vec<u8>) -> Result<String, Error> {
        let path = info.path.clone();
        let full = {
            let mut p = self.pending.borrow_mut();
            if p.index.contains_key(&path) || self.valid.borrow().contains(&path) {
                return Ok(path);
            }
            p.bytes += nar.len();
            let n = p.items.len();
            p.index.insert(path.clone(), n);
            p.items.push((info, nar));
            p.items.len() >= BATCH_PATHS || p.bytes >= BATCH_BYTES
        };
        if full {
            self.send_pending()?;
        }
        Ok(path)
    }

    fn send_pending(&self) -> Result<(), Error> {
        let batch = std::mem::take(&mut *self.pending.borrow_mut());
        if batch.items.is_empty() {
            return Ok(());
        }
        // Only what the daemon lacks: older daemons (Nix 2.8) leave the NAR
        // of a path they already have unread, and the stream goes astray.
        // What it has already is pinned with a temporary root, as adding it
        // would have.
        let paths: BTreeSet<String> = batch.items.iter().map(|(i, _)| i.path.clone()).collect();
        let have = self.with_conn(|c| c.query_valid_paths(&paths))?;
        let missing: Vec<(PathInfo, Vec<u8>)> = batch
            .items
            .into_iter()
            .filter(|(i, _)| !have.contains(&i.path))
            .collect();
        self.with_conn(|c| {
            for p in &have {
                c.add_temp_root(p)?;
            }
            c.add_multiple(&missing)
        })?;
        let mut valid = self.valid.borrow_mut();
        valid.extend(paths);
        Ok(())
    }

    fn pending_info(&self, path: &str) -> Option<PathInfo> {
        let p = self.pending.borrow();
        p.index.get(path).map(|&i| p.items[i].0.clone())
    }

    /// A content-addressed path's metadata; `nar_hash` is the NAR's sha256
    /// when the caller has it already (a recursive add's content hash).
    fn ca_info(
        &self,
        path: String,
        nar: &[u8],
        nar_hash: Option<Hash>,
        references: BTreeSet<String>,
        ca: String,
    ) -> PathInfo {
        PathInfo {
            path,
            nar_hash: nar_hash.unwrap_or_else(|| Hash::of(HashAlgo::Sha256, nar)),
            nar_size: nar.len() as u64,
            references,
            deriver: None,
            ca: Some(ca),
            registration_time: 0,
        }
    }

    /// Build `targets` through the daemon (after sending what is queued).
    pub fn build(&self, targets: &[DerivedPath]) -> Result<(), Error> {
        self.send_pending()?;
        self.with_conn(|c| c.build_paths(targets, BuildMode::Normal))
    }
}

impl StoreBackend for DaemonBackend {
    fn writable(&self) -> bool {
        self.writable
    }

    fn is_valid(&self, path: &str) -> Result<bool, Error> {
        if self.valid.borrow().contains(path) || self.pending.borrow().index.contains_key(path) {
            return Ok(true);
        }
        let v = self.with_conn(|c| c.is_valid_path(path))?;
        if v {
            self.valid.borrow_mut().insert(path.to_string());
        }
        Ok(v)
    }

    fn real_path(&self, path: &str) -> PathBuf {
        // A path about to be read must be in the daemon's store: send what
        // is queued if it is among it.
        let top = top_store_path(&self.config.store_dir, path);
        if top.is_some_and(|t| self.pending.borrow().index.contains_key(t)) {
            if let Err(e) = self.send_pending() {
                crate::report::stderr_line(&format!("error: {e}"));
            }
        }
        match &self.config.root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }

    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<String>,
    ) -> Result<String, Error> {
        self.read_only()?;
        let sd = &self.config.store_dir;
        let hash = Hash::of(HashAlgo::Sha256, contents);
        let path = sd.print(&sd.make_text_path(name, &hash, references)?);
        let mut n = Vec::with_capacity(contents.len() + 128);
        nar::dump_bytes(contents, &mut n).map_err(|e| Error::Msg(e.to_string()))?;
        let ca = ContentAddress {
            method: ContentAddressMethod::Text,
            hash,
        };
        let info = self.ca_info(path, &n, None, references.clone(), ca.render());
        self.queue(info, n)
    }

    fn add_path(
        &self,
        name: &str,
        src: &Path,
        method: ContentAddressMethod,
        filter: Option<&mut PathFilter<'_>>,
    ) -> Result<String, Error> {
        self.read_only()?;
        // The NAR is made first, in memory: a filter runs Nix code, which
        // may use this store, so nothing of ours is borrowed meanwhile.
        let mut n = Vec::new();
        let hash = match method {
            ContentAddressMethod::Recursive => {
                match filter {
                    Some(f) => nar::dump_path_filtered(src, &mut n, &mut |p: &Path, t| f(p, t))?,
                    None => nar::dump_path(src, &mut n)?,
                }
                Hash::of(HashAlgo::Sha256, &n)
            }
            ContentAddressMethod::Flat | ContentAddressMethod::Text => {
                let contents = std::fs::read(src).map_err(|e| Error::Io {
                    action: "reading",
                    path: src.display().to_string(),
                    source: e,
                })?;
                nar::dump_bytes(&contents, &mut n).map_err(|e| Error::Msg(e.to_string()))?;
                Hash::of(HashAlgo::Sha256, &contents)
            }
        };
        let sd = &self.config.store_dir;
        let ca = ContentAddress { method, hash };
        let path = sd.print(&sd.make_fixed_output_path(name, &ca, [""; 0], false)?);
        let nar_hash = (method == ContentAddressMethod::Recursive).then_some(hash);
        let info = self.ca_info(path, &n, nar_hash, BTreeSet::new(), ca.render());
        self.queue(info, n)
    }

    fn add_derivation(&self, drv: &Derivation) -> Result<String, Error> {
        let sd = &self.config.store_dir;
        let text = drv.unparse(sd)?;
        let refs = drv.references();
        self.add_text(
            &format!("{}{}", drv.name, nixvm_store::path::DRV_EXTENSION),
            text.as_bytes(),
            &refs,
        )
    }

    fn read_derivation(&self, drv_path: &str) -> Result<Derivation, Error> {
        self.send_pending()?;
        if !self.is_valid(drv_path)? {
            let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
            return Err(Error::Msg(format!("path '{base}' is not valid")));
        }
        let real = self.real_path(drv_path);
        let text = std::fs::read_to_string(&real).map_err(|e| Error::Io {
            action: "reading derivation",
            path: real.display().to_string(),
            source: e,
        })?;
        Derivation::parse_at_path(&self.config.store_dir, drv_path, &text)
    }

    fn references(&self, path: &str) -> Result<BTreeSet<String>, Error> {
        if let Some(info) = self.pending_info(path) {
            return Ok(info.references);
        }
        Ok(self
            .with_conn(|c| c.query_path_info(path))?
            .map(|i| i.references)
            .unwrap_or_default())
    }

    fn derivers_of(&self, path: &str) -> Result<Vec<(String, String)>, Error> {
        self.send_pending()?;
        let drvs = self.with_conn(|c| c.query_valid_derivers(path))?;
        let mut out = Vec::new();
        for d in drvs {
            let outputs = self.with_conn(|c| c.query_derivation_output_map(&d))?;
            for (name, p) in outputs {
                if p.as_deref() == Some(path) {
                    out.push((d.clone(), name));
                }
            }
        }
        Ok(out)
    }

    fn realise(&self, drv_path: &str, outputs: &[String]) -> Result<(), Error> {
        self.send_pending()?;
        if !self.is_valid(drv_path)? {
            let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
            return Err(Error::Msg(format!("path '{base}' is not valid")));
        }
        if !self.writable {
            let map = self.with_conn(|c| c.query_derivation_output_map(drv_path))?;
            for o in outputs {
                match map.get(o) {
                    Some(Some(p)) if self.is_valid(p)? => {}
                    _ => {
                        return Err(Error::Msg(format!(
                            "cannot build '{drv_path}^{o}' in read-only mode"
                        )))
                    }
                }
            }
            return Ok(());
        }
        self.build(&[DerivedPath::Built {
            drv: drv_path.to_string(),
            outputs: outputs.to_vec(),
        }])?;
        // What evaluation reads next stays until it is done.
        let map = self.with_conn(|c| c.query_derivation_output_map(drv_path))?;
        for o in outputs {
            if let Some(Some(p)) = map.get(o) {
                self.with_conn(|c| c.add_temp_root(p))?;
                self.valid.borrow_mut().insert(p.clone());
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        self.send_pending()
    }
}
