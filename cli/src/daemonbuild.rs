//! `nixvm build` on a daemon's store: nix-build's steps with the building
//! done by the nix-daemon (its log lines and activities shown as they come),
//! the output links registered as its indirect garbage collector roots.

use crate::args::InstArgs;
use crate::build::{link_name, replace_symlink};
use nixvm::{DaemonBackend, StoreBackend};
use nixvm_store::daemon::DerivedPath;
use std::io::Write;
use std::path::Path;

/// Realise `drvs` (`DRV` or `DRV!OUT,...` lines) and link the results.
/// Errors carry nix-build's exit status: a build the daemon reports as
/// failed is status 1, as CppNix's client gets no build status over
/// `BuildPaths`.
pub fn realise_and_link(
    a: &InstArgs,
    d: &DaemonBackend,
    drvs: &[String],
) -> Result<(), (String, u8)> {
    let fail = |e: nixvm_store::Error| (e.to_string(), 1u8);
    d.flush().map_err(fail)?;
    let targets: Vec<(String, Vec<String>)> = drvs
        .iter()
        .map(|l| match l.split_once('!') {
            Some((drv, o)) => (drv.to_string(), o.split(',').map(str::to_string).collect()),
            None => (l.clone(), Vec::new()),
        })
        .collect();
    let wanted: Vec<DerivedPath> = targets
        .iter()
        .map(|(drv, outputs)| DerivedPath::Built {
            drv: drv.clone(),
            outputs: outputs.clone(),
        })
        .collect();
    let missing = d.with_conn(|c| c.query_missing(&wanted)).map_err(fail)?;
    if let Some(msg) = nixvm_store::build::will_be_built(&missing.will_build) {
        nixvm::report::stderr_line(&msg);
    }
    if a.dry_run {
        return Ok(());
    }
    if a.check {
        return Err((
            "'--check' is not supported yet: nixvm cannot rebuild and compare outputs".into(),
            1,
        ));
    }
    d.build(&wanted).map_err(fail)?;
    let base = a.out_link.clone().unwrap_or_else(|| "result".to_string());
    let mut out = std::io::stdout().lock();
    for (i, (drv, outputs)) in targets.iter().enumerate() {
        let map = d
            .with_conn(|c| c.query_derivation_output_map(drv))
            .map_err(fail)?;
        for (name, path) in map {
            if !outputs.is_empty() && !outputs.contains(&name) {
                continue;
            }
            let Some(path) = path else { continue };
            if a.no_out_link {
                let _ = writeln!(out, "{path}");
                continue;
            }
            let link = link_name(&base, i, &name);
            let abs = std::env::current_dir().unwrap_or_default().join(&link);
            replace_symlink(&abs, Path::new(&path)).map_err(|e| (e, 1))?;
            d.with_conn(|c| c.add_indirect_root(&abs.to_string_lossy()))
                .map_err(fail)?;
            let _ = writeln!(out, "{path}");
        }
    }
    Ok(())
}
