//! Where the VM meets the store crate: copying sources into the store,
//! and turning store paths that evaluation reads into real files.

use crate::error::*;
use crate::value::*;
use crate::vm::Vm;

/// The store path a source path gets when interpolated into a string.
pub fn copy_path_to_store(vm: &mut Vm, path: &str) -> EvalResult<String> {
    if let Some(p) = vm.store_cache.get(path) {
        return Ok(p.clone());
    }
    let name = crate::builtins::core::base_name(path).to_string();
    if name.ends_with(".drv") {
        return err("file names are not allowed to end in '.drv'");
    }
    let real = std::path::Path::new(path);
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

/// A path that evaluation is about to read. Nothing is built yet: a store
/// path is read where it is, and one that does not exist (an output that
/// was never built, or a `.drv`/`toFile` text that exists only in memory)
/// is reported as CppNix reports an unrealised path.
pub fn realise_for_read(vm: &mut Vm, path: &str) -> EvalResult<String> {
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    if store.is_in_store(path) && std::fs::symlink_metadata(path).is_err() {
        if let Ok((sp, _)) = store.to_store_path(path) {
            let printed = store.print(&sp);
            if std::fs::symlink_metadata(&printed).is_err() {
                return err(format!(
                    "path '{printed}' is not valid (building is not supported yet)"
                ));
            }
        }
    }
    Ok(path.to_string())
}

/// Context for the contents of a file read from the store: the references of
/// the store object it belongs to, when they are known (none otherwise).
pub fn context_for_store_file(vm: &mut Vm, path: &str) -> Option<Box<Context>> {
    let store = nixvm_store::path::StoreDir::new(&vm.settings.store_dir);
    if !store.is_in_store(path) {
        return None;
    }
    let (sp, _) = store.to_store_path(path).ok()?;
    let printed = store.print(&sp);
    let refs = crate::builtins::derivations::known_references(&printed)?;
    if refs.is_empty() {
        return None;
    }
    Some(Box::new(
        refs.iter().map(|r| std::rc::Rc::from(r.as_str())).collect(),
    ))
}
