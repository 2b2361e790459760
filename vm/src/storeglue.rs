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
    let name = crate::builtins::core::base_name(path).to_string();
    if name.ends_with(".drv") {
        return err("file names are not allowed to end in '.drv'");
    }
    let real = std::path::Path::new(path);
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

/// A path that evaluation is about to read, turned into the file to read. Paths outside the
/// store are returned as they are. A store path is looked up in the evaluator's store (and
/// mapped to where its files physically are); an output that is not valid yet is built
/// through the store when the derivation producing it is known (import-from-derivation),
/// unless `allow-import-from-derivation` is off.
pub fn realise_for_read(vm: &mut Vm, path: &str) -> EvalResult<String> {
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    if !store.is_in_store(path) {
        return Ok(path.to_string());
    }
    let Ok((sp, _)) = store.to_store_path(path) else {
        return Ok(path.to_string());
    };
    let printed = store.print(&sp);
    realise_store_path(vm, path, &printed).map_err(|mut e| {
        if e.trace.len() < 64 {
            e.trace.push(TraceEntry {
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
    let mut deriver = crate::builtins::derivations::deriver_of(printed);
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
    let refs = match crate::builtins::derivations::known_references(&printed) {
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
