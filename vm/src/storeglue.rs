//! Where the VM meets the store: copying sources into the store, and turning store paths
//! that evaluation reads into real files (building them if needed: import-from-derivation).

use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use crate::StoreBackend;
use std::rc::Rc;

/// The evaluator's store, if it has one that evaluation may write to.
pub fn writable_store(vm: &Vm) -> Option<Rc<dyn StoreBackend>> {
    vm.store.clone().filter(|s| s.writable())
}

pub(crate) fn store_error(e: nixvm_store::Error) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other, e.to_string())
}

/// The store path a source path gets when interpolated into a string (copied into the
/// store when the store is writable).
pub fn copy_path_to_store(vm: &mut Vm, path: &str) -> EvalResult<String> {
    if let Some(p) = vm.store_cache.get(path) {
        return Ok(p.clone());
    }
    let name = base_name(path).to_string();
    if name.ends_with(".drv") {
        return err("file names are not allowed to end in '.drv'");
    }
    check_access(vm, path)?;
    let real = physical_path(vm, path);
    let real = real.as_path();
    if std::fs::symlink_metadata(real).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return err(format!("path '{}' does not exist", path));
    }
    if let Some(st) = writable_store(vm) {
        let printed = st
            .add_path(
                &name,
                real,
                nixvm_store::path::ContentAddressMethod::Recursive,
                None,
            )
            .map_err(|e| EvalError::new(ErrorKind::Io, e.to_string()))?;
        vm.store_cache.insert(path.to_string(), printed.clone());
        return Ok(printed);
    }
    let (hash, _size) = nixvm_store::nar::nar_hash_path(real)
        .map_err(|e| EvalError::new(ErrorKind::Io, e.to_string()))?;
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    let ca = nixvm_store::path::ContentAddress {
        method: nixvm_store::path::ContentAddressMethod::Recursive,
        hash,
    };
    let sp = store
        .make_fixed_output_path(&name, &ca, std::iter::empty::<&str>(), false)
        .map_err(|e| EvalError::new(ErrorKind::Other, e.to_string()))?;
    let printed = store.print(&sp);
    vm.store_cache.insert(path.to_string(), printed.clone());
    Ok(printed)
}

/// Pure and restricted evaluation: reading a file outside the store (and, in
/// restricted mode, outside the search path's directories) is refused, with
/// CppNix's words. This is a safety boundary: every read of a path goes
/// through here (`realise_for_read`, `import`, copying a path to the store).
pub fn check_access(vm: &Vm, path: &str) -> EvalResult<()> {
    let s = &vm.settings;
    if !s.pure_eval && !s.restrict_eval {
        return Ok(());
    }
    let under = |dir: &str| {
        let dir = dir.trim_end_matches('/');
        path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/')) || dir.is_empty()
    };
    if path.starts_with("«nix-internal»") || under(&s.store_dir) {
        return Ok(());
    }
    if !s.pure_eval {
        for (_, entry) in &s.search_path {
            if entry.starts_with('/') && under(entry) {
                return Ok(());
            }
        }
    }
    let mode = if s.pure_eval {
        "pure evaluation mode (use '--impure' to override)"
    } else {
        "restricted mode"
    };
    // No position of its own, as CppNix raises it.
    Err(EvalError::new(
        ErrorKind::Restricted,
        format!("access to absolute path '{path}' is forbidden in {mode}"),
    )
    .with_pos(None))
}

/// A URI that a fetcher is about to download: in restricted mode it must be
/// one of `allowed-uris` or under one (CppNix's prefix rule). Pure evaluation
/// asks for hashes instead (the fetchers check that).
pub fn check_uri(vm: &Vm, uri: &str) -> EvalResult<()> {
    let s = &vm.settings;
    if !s.restrict_eval {
        return Ok(());
    }
    let allowed = s.allowed_uris.iter().any(|prefix| {
        uri == prefix
            || uri.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                prefix.ends_with('/') || rest.starts_with('/') || rest.starts_with('?')
            })
    });
    if allowed || uri.starts_with("file://") && check_access(vm, &uri[7..]).is_ok() {
        return Ok(());
    }
    Err(EvalError::new(
        ErrorKind::Restricted,
        format!("access to URI '{uri}' is forbidden in restricted mode"),
    ))
}

/// A path that evaluation is about to read, turned into the file to read. Paths outside the
/// store are returned as they are. A store path is looked up in the evaluator's store (and
/// mapped to where its files physically are); an output that is not valid yet is built
/// through the store when the derivation producing it is known (import-from-derivation),
/// unless `allow-import-from-derivation` is off.
pub fn realise_for_read(vm: &mut Vm, path: &str) -> EvalResult<String> {
    check_access(vm, path)?;
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    if !store.is_in_store(path) {
        return Ok(path.to_string());
    }
    let Ok((sp, _)) = store.to_store_path(path) else {
        return Ok(path.to_string());
    };
    let printed = store.print(&sp);
    if is_fetched(vm, &printed) {
        // Fetched in this evaluation: its bytes are in the scratch area.
        return Ok(physical_path(vm, path).to_string_lossy().into_owned());
    }
    realise_store_path(vm, path, &printed).map_err(|mut e| {
        if e.trace.len() < 64 {
            e.trace.push(TraceEntry {
                always: false,
                msg: format!("while realising the context of path '{path}'"),
                pos: None,
            });
        }
        e
    })
}

fn realise_store_path(vm: &mut Vm, path: &str, printed: &str) -> EvalResult<String> {
    let backend = vm.store.clone();
    let real = |b: &Option<Rc<dyn StoreBackend>>| match b {
        Some(b) => b.real_path(path).to_string_lossy().into_owned(),
        None => path.to_string(),
    };
    if let Some(b) = &backend {
        if b.is_valid(printed).map_err(store_error)? {
            return Ok(real(&backend));
        }
    }
    // Which derivation makes this path: one instantiated in this evaluation, or one the
    // store knows.
    let mut deriver = vm.registry.outputs.get(printed).cloned();
    if deriver.is_none() {
        if let Some(b) = &backend {
            deriver = b
                .derivers_of(printed)
                .map_err(store_error)?
                .into_iter()
                .next();
        }
    }
    if let Some((drv, output)) = deriver {
        if std::fs::symlink_metadata(printed).is_ok() && backend.is_none() {
            // Built by some other store that shares our store directory.
            return Ok(path.to_string());
        }
        if !vm.settings.allow_ifd {
            return err(format!(
                "cannot build '{drv}^{output}' during evaluation because the option 'allow-import-from-derivation' is disabled"
            ));
        }
        let Some(b) = &backend else {
            let base = drv.rsplit('/').next().unwrap_or(&drv);
            return err(format!("path '{base}' is not valid"));
        };
        b.realise(&drv, std::slice::from_ref(&output))
            .map_err(store_error)?;
        return Ok(real(&backend));
    }
    if std::fs::symlink_metadata(printed).is_ok() {
        // A path of the machine's own store, read where it is.
        return Ok(path.to_string());
    }
    if let Some(b) = &backend {
        let r = b.real_path(printed);
        if std::fs::symlink_metadata(&r).is_ok() && b.is_valid(printed).unwrap_or(false) {
            return Ok(real(&backend));
        }
    }
    let base = printed.rsplit('/').next().unwrap_or(printed);
    err(format!("path '{base}' is not valid"))
}

/// Context for the contents of a file read from the store: the references of the store
/// object it belongs to (known from this evaluation or from the store) that occur in the
/// contents, as CppNix's `readFile` gives.
pub fn context_for_store_file(vm: &mut Vm, path: &str, contents: &[u8]) -> Option<Box<Context>> {
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    if !store.is_in_store(path) {
        return None;
    }
    let (sp, _) = store.to_store_path(path).ok()?;
    let printed = store.print(&sp);
    let refs = match vm.registry.refs.get(&printed).cloned() {
        Some(r) => r,
        None => vm.store.as_ref()?.references(&printed).ok()?,
    };
    if refs.is_empty() {
        return None;
    }
    let mut scanner = nixvm_store::refscan::RefScanner::new(refs.iter());
    std::io::Write::write_all(&mut scanner, contents).ok()?;
    let found = scanner.found();
    if found.is_empty() {
        return None;
    }
    Some(Box::new(
        found
            .iter()
            .map(|r| std::rc::Rc::from(r.as_str()))
            .collect(),
    ))
}

// ---- fetched store objects -------------------------------------------------
//
// The fetchers (`builtins/fetchers.rs`, `getFlake`) produce content in a
// private staging location and hand it to `add_fetched_path`, which computes
// the content-addressed store path exactly as CppNix does. With a writable
// store the content is added to it under that path (the staging copy is then
// deleted), so a fetched path can be an input of a derivation and be built
// with. Without one (`nixvm eval`, `instantiate --eval`: read-only mode opens
// an existing store but never writes to it) the content is moved into a
// per-thread scratch directory and remembered in a map from printed store path
// to that physical location. CppNix's `--eval` does write fetched paths to its
// store; ours keeps read-only mode read-only and fetches again next time
// (unless the store already has the path). Every read of a store path goes
// through `physical_path`, which maps `<storeDir>/<hash>-<name>/rest` to the
// scratch copy or to where the store keeps the object.

/// What this evaluation knows about the store objects it made in memory (in
/// `derivationStrict` and `toFile`), so that derivations depending on them,
/// reads of their paths and the CLI find them again without a store.
#[derive(Default)]
pub struct Registry {
    /// Hash modulo of every derivation instantiated so far, keyed by `.drv` path.
    pub modulo: nixvm_store::derivation::ModuloCache,
    /// The output names of every derivation instantiated so far, keyed by `.drv` path
    /// (for `=drv` contexts). The derivations themselves are not kept: their hash
    /// modulo is all that later derivations need, and keeping them took 27 MB on
    /// NixOS minimal.
    pub drv_outputs: std::collections::HashMap<String, Box<[String]>>,
    /// References of text files created by `toFile` (and of `.drv` files).
    pub refs: std::collections::HashMap<String, std::collections::BTreeSet<String>>,
    /// Output path -> (`.drv` path, output name), for import-from-derivation.
    pub outputs: std::collections::HashMap<String, (String, String)>,
}

/// The last component of a path (`baseNameOf`'s rule: a trailing slash is ignored).
pub fn base_name(s: &str) -> &str {
    let s = s.strip_suffix('/').unwrap_or(s);
    match s.rfind('/') {
        Some(i) => &s[i + 1..],
        None => s,
    }
}

/// A store object added by a fetcher.
#[derive(Clone, Debug)]
pub struct FetchedPath {
    /// The printed store path (`/nix/store/<hash>-<name>`).
    pub path: String,
    /// sha256 of the NAR serialisation of the content (what `narHash` reports).
    pub nar_hash: nixvm_store::hash::Hash,
    /// The content-address hash: the NAR hash for `Recursive`, the sha256 of
    /// the file's bytes for `Flat`.
    pub ca_hash: nixvm_store::hash::Hash,
}

/// Fetched store objects kept outside the store (read-only evaluation).
#[derive(Default)]
pub struct FetchArea {
    /// The scratch directory (created on first use, removed with the `Vm`).
    root: Option<std::path::PathBuf>,
    /// Printed store path -> where its content physically is.
    map: rustc_hash::FxHashMap<String, std::path::PathBuf>,
    counter: u64,
}

impl Drop for FetchArea {
    fn drop(&mut self) {
        if let Some(root) = &self.root {
            make_writable(root);
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

fn make_writable(p: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if md.is_dir() {
            let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    make_writable(&e.path());
                }
            }
        }
    }
}

fn io_error(what: &str, p: &std::path::Path, e: std::io::Error) -> Box<EvalError> {
    EvalError::new(
        ErrorKind::Io,
        format!("{what} '{}': {}", p.display(), crate::vm::io_msg(&e)),
    )
}

/// A fresh, empty, private path (not yet created) where a fetcher may put
/// content before calling [`add_fetched_path`].
pub fn fetch_staging_path(vm: &mut Vm) -> EvalResult<std::path::PathBuf> {
    let a = &mut vm.fetch_area;
    if a.root.is_none() {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let root = std::env::temp_dir().join(format!("nixvm-fetch-{}-{}", std::process::id(), n));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).map_err(|e| io_error("creating directory", &root, e))?;
        a.root = Some(root);
    }
    a.counter += 1;
    let root = a.root.clone().unwrap_or_default();
    Ok(root.join(format!("staging-{}", a.counter)))
}

/// Add the file or directory at `src` (a staging path the caller owns and
/// gives up) to the store as a fixed-output object named `name`, hashed with
/// `method` (`Flat`: a regular file's bytes; `Recursive`: its NAR), and make
/// it readable under the returned store path: in the evaluator's store when it
/// is writable (or already has the path), else in the scratch area.
pub fn add_fetched_path(
    vm: &mut Vm,
    name: &str,
    src: &std::path::Path,
    method: nixvm_store::path::ContentAddressMethod,
) -> EvalResult<FetchedPath> {
    use nixvm_store::hash::{Hash, HashAlgo};
    use nixvm_store::path::{ContentAddress, ContentAddressMethod, StoreDir};
    fn store_err(e: impl std::fmt::Display) -> Box<EvalError> {
        EvalError::new(ErrorKind::Other, e.to_string())
    }
    let (nar_hash, _) = nixvm_store::nar::nar_hash_path(src).map_err(store_err)?;
    let ca_hash = match method {
        ContentAddressMethod::Recursive => nar_hash,
        _ => Hash::of_file(HashAlgo::Sha256, src).map_err(store_err)?,
    };
    let store = StoreDir::new(&vm.settings.store_dir);
    let ca = ContentAddress {
        method,
        hash: ca_hash,
    };
    let sp = store
        .make_fixed_output_path(name, &ca, std::iter::empty::<&str>(), false)
        .map_err(store_err)?;
    let printed = store.print(&sp);
    let fetched = FetchedPath {
        path: printed.clone(),
        nar_hash,
        ca_hash,
    };
    let discard = |src: &std::path::Path| {
        make_writable(src);
        let _ = std::fs::remove_dir_all(src).or_else(|_| std::fs::remove_file(src));
    };
    if let Some(st) = writable_store(vm) {
        let added = st.add_path(name, src, method, None).map_err(|e| {
            EvalError::new(
                ErrorKind::Io,
                format!("adding fetched path '{printed}' to the store: {e}"),
            )
        })?;
        discard(src);
        if added != printed {
            return err(format!(
                "the store added the fetched content as '{added}', but its content address is '{printed}'"
            ));
        }
        return Ok(fetched);
    }
    let in_scratch = vm.fetch_area.map.contains_key(&printed);
    if in_scratch || store_has(vm, &printed) {
        discard(src);
    } else {
        let dest = src.with_file_name(sp.base_name());
        std::fs::rename(src, &dest).map_err(|e| io_error("moving", src, e))?;
        vm.fetch_area.map.insert(printed, dest);
    }
    Ok(fetched)
}

/// Whether the evaluator's store (writable or not) has a valid `store_path` (printed).
fn store_has(vm: &Vm, store_path: &str) -> bool {
    match &vm.store {
        Some(b) => b.is_valid(store_path).unwrap_or(false),
        None => false,
    }
}

/// Whether a store path (printed) was added by a fetcher to the scratch area.
fn is_fetched(vm: &Vm, store_path: &str) -> bool {
    vm.fetch_area.map.contains_key(store_path)
}

/// Whether a store path (printed) that a fetcher would produce is already
/// there, so that it need not be fetched again: in the scratch area, valid in
/// the evaluator's store, or (without a writable store, whose derivations
/// need their inputs registered in it) present on disk.
pub fn fetched_path_exists(vm: &Vm, store_path: &str) -> bool {
    is_fetched(vm, store_path)
        || store_has(vm, store_path)
        || (writable_store(vm).is_none() && std::fs::symlink_metadata(store_path).is_ok())
}

/// Where the bytes of `path` physically are: inside a fetched store object,
/// its scratch location; inside a path valid in the evaluator's store, where
/// the store keeps it; anything else is itself.
pub fn physical_path(vm: &Vm, path: &str) -> std::path::PathBuf {
    let dir = vm.settings.store_dir.as_str();
    if let Some(rest) = path.strip_prefix(dir).and_then(|r| r.strip_prefix('/')) {
        let (base, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let key = format!("{dir}/{base}");
        if let Some(p) = vm.fetch_area.map.get(&key).cloned() {
            return if tail.is_empty() { p } else { p.join(tail) };
        }
        if !base.is_empty() && store_has(vm, &key) {
            if let Some(b) = &vm.store {
                return b.real_path(path);
            }
        }
    }
    std::path::PathBuf::from(path)
}
