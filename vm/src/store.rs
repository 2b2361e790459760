//! The store an evaluation talks to.
//!
//! [`StoreBackend`] is what the VM needs from a store: validity and physical locations of
//! paths, adding sources/texts/derivations, and realising derivation outputs that evaluation
//! reads (import-from-derivation). Without a backend the VM computes every path in memory and
//! writes nothing. [`LocalBackend`] is the implementation over `nixvm_store::LocalStore`; it
//! opens the store lazily, on the first request that needs it, so an evaluation that never
//! touches the store never creates one.

pub mod daemon;

use std::cell::OnceCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use nixvm_store::build::{BuildSettings, Builder, DerivedPath};
use nixvm_store::derivation::Derivation;
use nixvm_store::path::ContentAddressMethod;
use nixvm_store::{Error, FileType, LocalStore, StoreConfig};

/// A filter for [`StoreBackend::add_path`]: `(path, type) -> include?`.
pub type PathFilter<'a> = dyn FnMut(&Path, FileType) -> Result<bool, Error> + 'a;

/// What evaluation asks of a store. Methods take `&self` so that a filter function running
/// Nix code may itself use the store; implementations use interior mutability.
pub trait StoreBackend {
    /// Whether evaluation may write (sources, `toFile`, `.drv` files). CppNix's
    /// `nix-instantiate --eval` is read-only unless `--read-write-mode` is given.
    fn writable(&self) -> bool;
    /// Whether a printed store path is valid.
    fn is_valid(&self, path: &str) -> Result<bool, Error>;
    /// Where the files of a logical path are.
    fn real_path(&self, path: &str) -> PathBuf;
    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<String>,
    ) -> Result<String, Error>;
    /// Add a file or tree (see `LocalStore::add_path`); returns the printed path.
    fn add_path(
        &self,
        name: &str,
        src: &Path,
        method: ContentAddressMethod,
        filter: Option<&mut PathFilter<'_>>,
    ) -> Result<String, Error>;
    /// Write a `.drv` file; returns its printed path.
    fn add_derivation(&self, drv: &Derivation) -> Result<String, Error>;
    /// Read a valid `.drv` file.
    fn read_derivation(&self, drv_path: &str) -> Result<Derivation, Error>;
    /// The references of a valid path (empty when it is not valid).
    fn references(&self, path: &str) -> Result<BTreeSet<String>, Error>;
    /// Valid derivations that produce `path`: (drv path, output name).
    fn derivers_of(&self, path: &str) -> Result<Vec<(String, String)>, Error>;
    /// Make the given outputs of a valid derivation valid, building as needed.
    fn realise(&self, drv_path: &str, outputs: &[String]) -> Result<(), Error>;
    /// Make everything written so far durable and registered (writes may be batched).
    fn flush(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// A local on-disk store, opened on first use.
pub struct LocalBackend {
    config: StoreConfig,
    writable: bool,
    build: BuildSettings,
    store: OnceCell<Option<LocalStore>>,
    /// Batch text objects (see `LocalStore::set_batch_writes`).
    batch: std::cell::Cell<bool>,
}

impl LocalBackend {
    pub fn new(config: StoreConfig, writable: bool, build: BuildSettings) -> LocalBackend {
        LocalBackend {
            config,
            writable,
            build,
            store: OnceCell::new(),
            batch: std::cell::Cell::new(true),
        }
    }

    /// Whether to batch writes (the default). Processes that write the
    /// same store at once (eval-jobs's workers) must not: a batched path's
    /// lock is held until the batch is flushed, so two such processes could
    /// each wait for a path the other holds.
    pub fn set_batching(&self, on: bool) {
        self.batch.set(on);
        if let Some(Some(s)) = self.store.get() {
            let _ = s.set_batch_writes(on);
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    pub fn build_settings(&self) -> &BuildSettings {
        &self.build
    }

    /// The open store; `None` for a read-only backend whose store does not exist.
    pub fn store(&self) -> Result<Option<&LocalStore>, Error> {
        if let Some(s) = self.store.get() {
            return Ok(s.as_ref());
        }
        let opened = if self.writable {
            let s = LocalStore::open(self.config.clone())?;
            // Evaluation writes many small texts; batch them (see LocalStore).
            s.set_batch_writes(self.batch.get())?;
            Some(s)
        } else if LocalStore::exists(&self.config) {
            Some(LocalStore::open_read_only(self.config.clone())?)
        } else {
            None
        };
        Ok(self.store.get_or_init(|| opened).as_ref())
    }

    fn store_rw(&self) -> Result<&LocalStore, Error> {
        if !self.writable {
            return Err(Error::Msg(
                "cannot write to the store in read-only mode".into(),
            ));
        }
        self.store()?
            .ok_or_else(|| Error::Msg("the store could not be opened".into()))
    }
}

impl StoreBackend for LocalBackend {
    fn writable(&self) -> bool {
        self.writable
    }

    fn is_valid(&self, path: &str) -> Result<bool, Error> {
        match self.store()? {
            Some(s) => s.is_valid(path),
            None => Ok(false),
        }
    }

    fn real_path(&self, path: &str) -> PathBuf {
        let real = self
            .config
            .real_store_dir()
            .into_os_string()
            .into_string()
            .unwrap_or_default();
        match path.strip_prefix(self.config.store_dir.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                PathBuf::from(format!("{real}{rest}"))
            }
            _ => PathBuf::from(path),
        }
    }

    fn add_text(
        &self,
        name: &str,
        contents: &[u8],
        references: &BTreeSet<String>,
    ) -> Result<String, Error> {
        self.store_rw()?.add_text(name, contents, references)
    }

    fn add_path(
        &self,
        name: &str,
        src: &Path,
        method: ContentAddressMethod,
        filter: Option<&mut PathFilter<'_>>,
    ) -> Result<String, Error> {
        let s = self.store_rw()?;
        Ok(s.add_path::<Error, _>(name, src, method, filter)?.0)
    }

    fn add_derivation(&self, drv: &Derivation) -> Result<String, Error> {
        self.store_rw()?.add_derivation(drv)
    }

    fn read_derivation(&self, drv_path: &str) -> Result<Derivation, Error> {
        match self.store()? {
            Some(s) => s.read_derivation(drv_path),
            None => {
                let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
                Err(Error::Msg(format!("path '{base}' is not valid")))
            }
        }
    }

    fn references(&self, path: &str) -> Result<BTreeSet<String>, Error> {
        match self.store()? {
            Some(s) => s.query_references(path),
            None => Ok(BTreeSet::new()),
        }
    }

    fn derivers_of(&self, path: &str) -> Result<Vec<(String, String)>, Error> {
        match self.store()? {
            Some(s) => s.query_valid_derivers(path),
            None => Ok(Vec::new()),
        }
    }

    fn realise(&self, drv_path: &str, outputs: &[String]) -> Result<(), Error> {
        let Some(s) = self.store()? else {
            let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
            return Err(Error::Msg(format!("path '{base}' is not valid")));
        };
        if !s.is_valid(drv_path)? {
            let base = drv_path.rsplit('/').next().unwrap_or(drv_path);
            return Err(Error::Msg(format!("path '{base}' is not valid")));
        }
        if !self.writable {
            // Read-only evaluation can use outputs that exist but builds nothing.
            let drv = s.read_derivation(drv_path)?;
            for o in outputs {
                let p = drv
                    .outputs
                    .get(o)
                    .and_then(|out| out.path(s.store_dir(), &drv.name, o).ok().flatten());
                match p {
                    Some(p) if s.is_valid(&p)? => {}
                    _ => {
                        return Err(Error::Msg(format!(
                            "cannot build '{drv_path}^{o}' in read-only mode"
                        )))
                    }
                }
            }
            return Ok(());
        }
        let builder = Builder::new(s, self.build.clone());
        builder.realise(&[DerivedPath {
            drv_path: drv_path.to_string(),
            outputs: outputs.iter().cloned().collect(),
        }])?;
        Ok(())
    }

    fn flush(&self) -> Result<(), Error> {
        match self.store.get() {
            Some(Some(s)) => s.flush(),
            _ => Ok(()),
        }
    }
}
