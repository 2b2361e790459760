//! `nixvm build` (nix-build): instantiate, realise, link `./result`.

use crate::args::InstArgs;
use crate::config::*;
use crate::diag::report;
use crate::instantiate::instantiate_inner;
use crate::storeuri::Store;
use nixvm::EvalError;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// `nixvm build`: instantiate like nix-instantiate, realise the derivations, print their
/// output paths and link `./result` (and `result-<output>`, `result-2`, ...) to them. In a
/// chroot store the links point where the files physically are.
pub fn build(a: InstArgs) -> ExitCode {
    let store = match make_store(&a, true) {
        Ok(Some(b)) => b,
        Ok(None) => {
            nixvm::report::stderr_line(
                "error: operation 'buildPaths' is not supported by store 'dummy://'",
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            nixvm::report::stderr_line(&format!("error: {e}"));
            return ExitCode::from(1);
        }
    };
    let mut ev = build_evaluator_with(&a, Some(store.clone()));
    let mut drvs = Vec::new();
    let result = instantiate_inner(&a, &mut ev, Some(&store), Some(&mut drvs))
        .map_err(|e| (e, 1))
        .and_then(|()| match &store {
            Store::Local(backend) => realise_and_link(&a, backend, &drvs),
            Store::Daemon(d) => crate::daemonbuild::realise_and_link(&a, d, &drvs)
                .map_err(|(e, s)| (EvalError::new(nixvm::ErrorKind::Other, e), s)),
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err((e, status)) => {
            report(&ev, &a, &e);
            ExitCode::from(status)
        }
    }
}

pub fn realise_and_link(
    a: &InstArgs,
    backend: &nixvm::LocalBackend,
    drvs: &[String],
) -> Result<(), (Box<EvalError>, u8)> {
    use nixvm_store::build::{Builder, DerivedPath};
    // A build failure ends nix-build with its own status (100 and up).
    let store_err = |e: nixvm_store::Error| {
        let status = e.exit_status();
        (
            EvalError::new(nixvm::ErrorKind::Other, e.to_string()),
            status,
        )
    };
    let store = backend.store().map_err(store_err)?.ok_or_else(|| {
        (
            EvalError::new(nixvm::ErrorKind::Other, "the store could not be opened"),
            1,
        )
    })?;
    let targets: Vec<DerivedPath> = drvs
        .iter()
        .map(|l| match l.split_once('!') {
            Some((d, o)) => DerivedPath {
                drv_path: d.to_string(),
                outputs: o.split(',').map(str::to_string).collect(),
            },
            None => DerivedPath {
                drv_path: l.clone(),
                outputs: Default::default(),
            },
        })
        .collect();
    let builder = Builder::new(store, backend.build_settings().clone());
    if a.check {
        return Err((
            EvalError::new(
                nixvm::ErrorKind::Other,
                "'--check' is not supported yet: nixvm cannot rebuild and compare outputs",
            ),
            1,
        ));
    }
    if a.dry_run {
        // nix-build --dry-run: say what would be built, build nothing.
        let plan = builder.plan(&targets).map_err(store_err)?;
        builder.announce(&plan.needed);
        return Ok(());
    }
    let report = builder.realise(&targets).map_err(store_err)?;
    let mut out = std::io::stdout().lock();
    let base = a.out_link.clone().unwrap_or_else(|| "result".to_string());
    for (i, t) in targets.iter().enumerate() {
        let Some(outs) = report.outputs.get(&t.drv_path) else {
            continue;
        };
        for (name, path) in outs {
            let _ = writeln!(out, "{path}");
            if a.no_out_link {
                continue;
            }
            let link = link_name(&base, i, name);
            let target = store.to_real_path(path);
            replace_symlink(Path::new(&link), &target)
                .map_err(|e| (EvalError::new(nixvm::ErrorKind::Io, e), 1))?;
        }
    }
    Ok(())
}

/// nix-build's output links: `BASE`, then `BASE-2`..., with `-OUTPUT` for
/// outputs other than `out`.
pub fn link_name(base: &str, i: usize, output: &str) -> String {
    let mut link = base.to_string();
    if i > 0 {
        link.push_str(&format!("-{}", i + 1));
    }
    if output != "out" {
        link.push_str(&format!("-{output}"));
    }
    link
}

/// Point `link` at `target`, replacing an older symlink (never a file).
pub fn replace_symlink(link: &Path, target: &Path) -> Result<(), String> {
    if let Ok(m) = std::fs::symlink_metadata(link) {
        if !m.file_type().is_symlink() {
            return Err(format!(
                "cannot create symlink '{}': a file that is not a symlink is in the way",
                link.display()
            ));
        }
        let _ = std::fs::remove_file(link);
    }
    std::os::unix::fs::symlink(target, link).map_err(|e| {
        format!(
            "creating symlink '{}': {}",
            link.display(),
            nixvm::vm::io_msg(&e)
        )
    })
}
