//! `--check-cache-status`: whether a job's outputs are in the store
//! already, and what would be built otherwise, as nix-eval-jobs reports it
//! (`cacheStatus` `local` or `notBuilt`, `isCached`, `neededBuilds` with
//! dependencies first, `neededSubstitutes`). There are no substituters
//! here, so nothing is `cached` and nothing is to be substituted.

use nixvm::StoreBackend;
use nixvm_store::derivation::Derivation;
use nixvm_store::StoreDir;
use serde_json::{Map, Value as J};
use std::collections::{BTreeMap, BTreeSet};

/// The derivations of `drv`'s closure that would be built to get `outputs`
/// of it: a derivation whose wanted outputs are not all valid, and so on
/// down its inputs. In nix-eval-jobs's order: CppNix's `topoSortPaths`
/// reversed (a depth-first walk over the set in path order, each path
/// after the ones it refers to).
pub fn needed_builds(
    store: &dyn StoreBackend,
    store_dir: &StoreDir,
    drv: &str,
    outputs: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    let mut will_build: BTreeMap<String, Derivation> = BTreeMap::new();
    let mut seen: BTreeSet<(String, BTreeSet<String>)> = BTreeSet::new();
    let mut todo = vec![(drv.to_string(), outputs.clone())];
    while let Some((path, wanted)) = todo.pop() {
        if !seen.insert((path.clone(), wanted.clone())) {
            continue;
        }
        let d = store.read_derivation(&path).map_err(|e| e.to_string())?;
        let mut missing = false;
        for (name, out) in &d.outputs {
            if !wanted.is_empty() && !wanted.contains(name) {
                continue;
            }
            let valid = match out
                .path(store_dir, &d.name, name)
                .map_err(|e| e.to_string())?
            {
                Some(p) => store.is_valid(&p).map_err(|e| e.to_string())?,
                None => false,
            };
            if !valid {
                missing = true;
            }
        }
        if missing && !will_build.contains_key(&path) {
            for (input, outs) in &d.input_drvs {
                todo.push((input.clone(), outs.clone()));
            }
            will_build.insert(path, d);
        }
    }
    // Post-order over the set (its `BTreeMap` is in path order, as
    // CppNix's `StorePathSet`), children among the set first.
    let mut order = Vec::new();
    let mut visited = BTreeSet::new();
    fn visit(
        p: &str,
        set: &BTreeMap<String, Derivation>,
        visited: &mut BTreeSet<String>,
        order: &mut Vec<String>,
    ) {
        if !visited.insert(p.to_string()) {
            return;
        }
        let refs: BTreeSet<&String> = set[p].input_drvs.keys().chain(&set[p].input_srcs).collect();
        for r in refs {
            if r != p && set.contains_key(r.as_str()) {
                visit(r, set, visited, order);
            }
        }
        order.push(p.to_string());
    }
    for p in will_build.keys() {
        visit(p, &will_build, &mut visited, &mut order);
    }
    Ok(order)
}

/// The fields `--check-cache-status` adds to a job's line.
pub fn fields(needed: Vec<String>, reply: &mut Map<String, J>) {
    let local = needed.is_empty();
    reply.insert("isCached".into(), J::Bool(local));
    reply.insert(
        "cacheStatus".into(),
        J::from(if local { "local" } else { "notBuilt" }),
    );
    reply.insert(
        "neededBuilds".into(),
        J::Array(needed.into_iter().map(J::from).collect()),
    );
    reply.insert("neededSubstitutes".into(), J::Array(Vec::new()));
}
