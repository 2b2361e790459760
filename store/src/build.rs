//! Realising derivations in a [`LocalStore`].
//!
//! [`Builder::realise`] takes derivations (valid `.drv` paths) and makes their outputs valid:
//!
//! 1. It walks the input derivations of every derivation whose outputs are not all valid yet,
//!    reading `.drv` files from the store, so that only missing work is scheduled. A second
//!    run over built outputs does nothing at all.
//! 2. Derivations are built in dependency order, up to `jobs` at a time on threads; a failure
//!    stops new builds, lets running ones finish, and is reported.
//! 3. One build: lock the output paths (another process may be building them; if they are
//!    valid once the locks are ours, nothing is left to do), remove stale unregistered output
//!    files, create a private build directory, set up the environment as CppNix does (see
//!    [`Builder::environment`]), run the builder (in a namespace sandbox, or not, see
//!    [`crate::sandbox`]) with its output streamed to stderr and kept in a log file, then check
//!    the outputs (present; fixed-output hashes), scan them for references to the input closure
//!    and to each other, make them read-only and register them in one transaction.
//!
//! `builtin:fetchurl` is run in-process (http, https and file URLs, through [`crate::transfer`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};

use crate::derivation::{Derivation, Output};
use crate::hash::{encode_nix32, Hash, HashAlgo};
use crate::local::{delete_path, LocalStore, OutputToRegister};
use crate::nar;
use crate::path::ContentAddressMethod;
use crate::sandbox::{self, NsPlan, SandboxRoot};
use crate::Error;

/// Whether builds run in a namespace sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxMode {
    /// Never: builders see the whole machine.
    Off,
    /// When this machine allows unprivileged user namespaces; otherwise warn and build
    /// without (when the store makes that possible).
    Auto,
    /// Always; fail when namespaces are not available.
    On,
}

/// How builds are run.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// Derivations built at the same time.
    pub jobs: usize,
    /// `NIX_BUILD_CORES` (0 means "all").
    pub cores: usize,
    pub sandbox: SandboxMode,
    /// The system type this machine builds for (e.g. `x86_64-linux`).
    pub system: String,
    /// Where private build directories are made.
    pub build_dir_parent: PathBuf,
    /// Copy builder output to our stderr as it comes.
    pub print_build_logs: bool,
    /// Keep the build directory of a failed build.
    pub keep_failed: bool,
    /// How `builtin:fetchurl` downloads.
    pub transfer: crate::transfer::TransferSettings,
}

impl Default for BuildSettings {
    fn default() -> Self {
        BuildSettings {
            jobs: 1,
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            sandbox: SandboxMode::Auto,
            system: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            build_dir_parent: std::env::temp_dir(),
            print_build_logs: true,
            keep_failed: false,
            transfer: Default::default(),
        }
    }
}

/// What to realise: a `.drv` path and the outputs wanted (empty: all).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DerivedPath {
    pub drv_path: String,
    pub outputs: BTreeSet<String>,
}

/// What happened during [`Builder::realise`].
#[derive(Debug, Default, Clone)]
pub struct BuildReport {
    /// `.drv` paths that were built, in completion order.
    pub built: Vec<String>,
    /// For every requested derivation: output name -> printed output path.
    pub outputs: BTreeMap<String, BTreeMap<String, String>>,
}

/// Realises derivations into one store.
pub struct Builder<'a> {
    store: &'a LocalStore,
    settings: BuildSettings,
    /// Serialises writes to our stderr so that lines of parallel builds do not mix.
    stderr: Mutex<()>,
}

static BUILD_SEQ: AtomicU64 = AtomicU64::new(0);

fn io_err(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// How one build is isolated, decided once per process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Isolation {
    /// Run the builder as it is; the store is where its paths say.
    None,
    /// Bind the physical store on the logical store directory (chroot store, no sandbox).
    StoreView,
    Sandbox,
}

/// What a set of targets needs: their derivations, those to build, and which
/// of those each waits for.
pub struct Plan {
    pub drvs: BTreeMap<String, Derivation>,
    pub needed: BTreeSet<String>,
    pub deps: BTreeMap<String, BTreeSet<String>>,
}

impl<'a> Builder<'a> {
    pub fn new(store: &'a LocalStore, settings: BuildSettings) -> Builder<'a> {
        Builder {
            store,
            settings,
            stderr: Mutex::new(()),
        }
    }

    fn note(&self, msg: &str) {
        let _g = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
        // Not eprintln!: a closed stderr (`2>&1 | head -1`) must not panic a build thread.
        use std::io::Write;
        let _ = writeln!(std::io::stderr(), "{msg}");
    }

    /// How builds are isolated with these settings on this machine, or why they cannot run.
    fn isolation(&self) -> Result<Isolation, Error> {
        let direct = self.store.config().is_direct();
        let ns = || sandbox::namespaces_available();
        let store_root = self.store.config().root.display().to_string();
        let no_view = |why: String| {
            Error::Msg(format!(
                "cannot build in the store at '{store_root}': builders must see its files at '{}', which needs a mount namespace, and this machine does not allow one ({why}); use a store whose files are where its paths say (NIX_STORE_DIR set to the physical store directory and --store /), or allow unprivileged user namespaces",
                self.store.store_dir().as_str()
            ))
        };
        match self.settings.sandbox {
            SandboxMode::On => match ns() {
                Ok(()) => Ok(Isolation::Sandbox),
                Err(why) => Err(Error::Msg(format!(
                    "sandboxing was requested, but this machine does not allow user and mount namespaces ({why})"
                ))),
            },
            SandboxMode::Auto => match ns() {
                Ok(()) => Ok(Isolation::Sandbox),
                Err(why) if direct => {
                    static WARNED: std::sync::Once = std::sync::Once::new();
                    WARNED.call_once(|| {
                        self.note(&format!(
                            "warning: building without a sandbox: this machine does not allow user and mount namespaces ({why})"
                        ))
                    });
                    Ok(Isolation::None)
                }
                Err(why) => Err(no_view(why)),
            },
            SandboxMode::Off if direct => Ok(Isolation::None),
            SandboxMode::Off => match ns() {
                Ok(()) => {
                    if !Path::new(self.store.store_dir().as_str()).is_dir() {
                        return Err(no_view(format!(
                            "the directory '{}' does not exist on this machine to mount on",
                            self.store.store_dir().as_str()
                        )));
                    }
                    Ok(Isolation::StoreView)
                }
                Err(why) => Err(no_view(why)),
            },
        }
    }

    /// Make the outputs of `targets` valid, building what is missing.
    /// The derivations `targets` need built (theirs or their inputs' outputs are
    /// missing): what `realise` would build, and what `nix-build --dry-run` lists.
    pub fn plan(&self, targets: &[DerivedPath]) -> Result<Plan, Error> {
        // Batched `.drv` files must be registered before builds rely on them.
        self.store.flush()?;
        let mut drvs: BTreeMap<String, Derivation> = BTreeMap::new();
        let mut needed: BTreeSet<String> = BTreeSet::new();
        let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut todo: Vec<String> = targets.iter().map(|t| t.drv_path.clone()).collect();
        while let Some(d) = todo.pop() {
            if drvs.contains_key(&d) {
                continue;
            }
            let drv = self.store.read_derivation(&d)?;
            let complete = self.outputs_valid(&d, &drv)?;
            if !complete {
                needed.insert(d.clone());
                let mut ds = BTreeSet::new();
                for input in drv.input_drvs.keys() {
                    todo.push(input.clone());
                    ds.insert(input.clone());
                }
                deps.insert(d.clone(), ds);
            }
            drvs.insert(d, drv);
        }
        // Only inputs that are themselves incomplete are waited for.
        for ds in deps.values_mut() {
            ds.retain(|x| needed.contains(x));
        }
        Ok(Plan { drvs, needed, deps })
    }

    /// "these N derivations will be built:" and the list, on stderr.
    pub fn announce(&self, needed: &BTreeSet<String>) {
        if let Some(msg) = will_be_built(needed) {
            self.note(&msg);
        }
    }

    pub fn realise(&self, targets: &[DerivedPath]) -> Result<BuildReport, Error> {
        let Plan { drvs, needed, deps } = self.plan(targets)?;
        let mut report = BuildReport::default();
        if !needed.is_empty() {
            let isolation = self.isolation()?;
            self.announce(&needed);
            report.built = self.schedule(&drvs, deps, &isolation)?;
        }
        for t in targets {
            let drv = &drvs[&t.drv_path];
            let mut outs = BTreeMap::new();
            for (name, o) in &drv.outputs {
                if !t.outputs.is_empty() && !t.outputs.contains(name) {
                    continue;
                }
                let p = self.output_path(&drv.name, name, o)?;
                outs.insert(name.clone(), p);
            }
            for w in &t.outputs {
                if !drv.outputs.contains_key(w) {
                    return Err(Error::Msg(format!(
                        "derivation '{}' does not have wanted outputs '{w}'",
                        t.drv_path
                    )));
                }
            }
            report.outputs.insert(t.drv_path.clone(), outs);
        }
        Ok(report)
    }

    fn output_path(&self, drv_name: &str, name: &str, o: &Output) -> Result<String, Error> {
        o.path(self.store.store_dir(), drv_name, name)?.ok_or_else(|| {
            Error::Msg(format!(
                "output '{name}' of derivation '{drv_name}' has no known path (content-addressed derivations are not supported)"
            ))
        })
    }

    fn outputs_valid(&self, _drv_path: &str, drv: &Derivation) -> Result<bool, Error> {
        for (name, o) in &drv.outputs {
            let p = self.output_path(&drv.name, name, o)?;
            if !self.store.is_valid(&p)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Build `deps`' keys in dependency order, in parallel up to `jobs`.
    fn schedule(
        &self,
        drvs: &BTreeMap<String, Derivation>,
        mut deps: BTreeMap<String, BTreeSet<String>>,
        isolation: &Isolation,
    ) -> Result<Vec<String>, Error> {
        let jobs = self.settings.jobs.max(1);
        let mut built = Vec::new();
        let mut first_error: Option<Error> = None;
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel::<(String, Result<bool, Error>)>();
            let mut running = 0usize;
            loop {
                if first_error.is_none() {
                    let ready: Vec<String> = deps
                        .iter()
                        .filter(|(_, ds)| ds.is_empty())
                        .map(|(d, _)| d.clone())
                        .take(jobs - running)
                        .collect();
                    for d in ready {
                        deps.remove(&d);
                        running += 1;
                        let tx = tx.clone();
                        let drv = &drvs[&d];
                        scope.spawn(move || {
                            let r = self.build_one(&d, drv, isolation);
                            let _ = tx.send((d, r));
                        });
                    }
                }
                if running == 0 {
                    break;
                }
                let Ok((d, r)) = rx.recv() else { break };
                running -= 1;
                match r {
                    Ok(did_work) => {
                        for ds in deps.values_mut() {
                            ds.remove(&d);
                        }
                        if did_work {
                            built.push(d);
                        }
                    }
                    Err(e) => {
                        if first_error.is_none() {
                            first_error = Some(e);
                        }
                    }
                }
            }
        });
        if let Some(e) = first_error {
            return Err(e);
        }
        if !deps.is_empty() {
            return Err(Error::Msg(
                "dependency cycle among derivations to build".to_string(),
            ));
        }
        Ok(built)
    }

    /// The printed output paths of a derivation, by output name.
    fn outputs_of(&self, drv: &Derivation) -> Result<BTreeMap<String, String>, Error> {
        let mut m = BTreeMap::new();
        for (name, o) in &drv.outputs {
            m.insert(name.clone(), self.output_path(&drv.name, name, o)?);
        }
        Ok(m)
    }

    /// Build one derivation whose inputs are valid. `Ok(false)` when another process built
    /// it while we waited for the output locks.
    fn build_one(
        &self,
        drv_path: &str,
        drv: &Derivation,
        isolation: &Isolation,
    ) -> Result<bool, Error> {
        let outputs = self.outputs_of(drv)?;
        let _locks = self.store.lock_paths(outputs.values())?;
        let mut all_valid = true;
        for p in outputs.values() {
            if !self.store.is_valid(p)? {
                all_valid = false;
                self.store.delete_invalid(p)?;
            }
        }
        if all_valid {
            return Ok(false);
        }
        if drv.platform != "builtin" && drv.platform != self.settings.system {
            return Err(Error::Msg(format!(
                "Cannot build '{drv_path}'.\nReason: required system or feature not available\nRequired system: '{}' with features {{}}\nCurrent system: '{}' with features {{}}",
                drv.platform, self.settings.system
            )));
        }
        self.note(&format!("building '{drv_path}'..."));

        // Inputs: sources and the outputs used from input derivations, and their closure.
        let mut inputs: BTreeSet<String> = drv.input_srcs.clone();
        for (input, wanted) in &drv.input_drvs {
            let idrv = self.store.read_derivation(input)?;
            let outs = self.outputs_of(&idrv)?;
            for w in wanted {
                let p = outs.get(w).ok_or_else(|| {
                    Error::Msg(format!(
                        "derivation '{input}' does not have an output named '{w}'"
                    ))
                })?;
                inputs.insert(p.clone());
            }
        }
        let closure = self.store.compute_closure(inputs.iter())?;

        let log_path = self.store.log_path(drv_path);
        let result = if drv.builder == "builtin:fetchurl" {
            builtin_fetchurl(
                self.store,
                drv,
                &outputs,
                &log_path,
                &self.settings.transfer,
            )
        } else {
            self.run_builder(drv_path, drv, &outputs, &closure, isolation, &log_path)
        };
        if let Err(e) = result {
            for p in outputs.values() {
                let _ = self.store.delete_invalid(p);
            }
            return Err(match e {
                Error::Msg(msg) => Error::BuildFailed { msg, exit: 100 },
                e => e,
            });
        }

        // Check and register the outputs.
        let fixed = drv.drv_type()?.is_fixed();
        let mut to_register = Vec::new();
        for (name, p) in &outputs {
            let real = self.store.to_real_path(p);
            if fs::symlink_metadata(&real).is_err() {
                for q in outputs.values() {
                    let _ = self.store.delete_invalid(q);
                }
                return Err(Error::BuildFailed {
                    msg: format!(
                        "builder for '{drv_path}' failed to produce output path for output '{name}' at '{p}'"
                    ),
                    exit: 100,
                });
            }
            let mut ca = None;
            let mut candidates: BTreeSet<String> = closure.clone();
            candidates.extend(outputs.values().cloned());
            if let Some(Output::CAFixed(want)) = drv.outputs.get(name) {
                let got = match want.method {
                    ContentAddressMethod::Recursive => {
                        nar::hash_path(&real, want.method, want.hash.algo(), &mut |_: &Path, _| {
                            Ok::<bool, Error>(true)
                        })?
                        .0
                    }
                    _ => {
                        let meta = fs::symlink_metadata(&real)
                            .map_err(|e| io_err("getting status of", &real, e))?;
                        if !meta.is_file() || meta.permissions().mode() & 0o100 != 0 {
                            let _ = self.store.delete_invalid(p);
                            return Err(Error::Msg(format!(
                                "output path '{p}' should be a non-executable regular file since recursive hashing is not enabled (one of outputHashMode or outputHashAlgo is not set)"
                            )));
                        }
                        Hash::of_file(want.hash.algo(), &real)?
                    }
                };
                if got != want.hash {
                    let _ = self.store.delete_invalid(p);
                    return Err(Error::BuildFailed {
                        msg: format!(
                            "hash mismatch in fixed-output derivation '{drv_path}':\n  specified: {}\n     got:    {}",
                            want.hash.to_sri(),
                            got.to_sri()
                        ),
                        exit: 102,
                    });
                }
                ca = Some(want.render());
                candidates.clear();
            }
            to_register.push(OutputToRegister {
                path: p.clone(),
                deriver: drv_path.to_string(),
                candidates,
                ca,
            });
        }
        let infos = self.store.prepare_outputs(&to_register)?;
        if fixed {
            debug_assert!(infos.iter().all(|i| i.references.is_empty()));
        }
        if let Err(e) = self.check_outputs(drv_path, drv, &outputs, &infos) {
            for p in outputs.values() {
                let _ = self.store.delete_invalid(p);
            }
            return Err(e);
        }
        self.store.register_infos(&infos)?;
        Ok(true)
    }

    /// `allowedReferences`, `allowedRequisites`, `disallowedReferences` and
    /// `disallowedRequisites` (top-level attributes, or `outputChecks.<output>` with
    /// structured attributes): each lists store paths or names of this derivation's outputs.
    fn check_outputs(
        &self,
        drv_path: &str,
        drv: &Derivation,
        outputs: &BTreeMap<String, String>,
        infos: &[crate::db::PathInfo],
    ) -> Result<(), Error> {
        const KINDS: [(&str, bool, bool); 4] = [
            ("allowedReferences", true, false),
            ("allowedRequisites", true, true),
            ("disallowedReferences", false, false),
            ("disallowedRequisites", false, true),
        ];
        let structured: Option<serde_json::Value> = drv
            .env
            .get("__json")
            .and_then(|j| serde_json::from_str(j).ok());
        let by_path: BTreeMap<&str, &crate::db::PathInfo> =
            infos.iter().map(|i| (i.path.as_str(), i)).collect();
        for (out_name, out_path) in outputs {
            let Some(info) = by_path.get(out_path.as_str()) else {
                continue;
            };
            for (attr, allowed, recursive) in KINDS {
                let spec: Option<Vec<String>> = match &structured {
                    Some(json) => json
                        .get("outputChecks")
                        .and_then(|c| c.get(out_name))
                        .and_then(|c| c.get(attr))
                        .and_then(|v| v.as_array())
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str().map(str::to_string))
                                .collect()
                        }),
                    None => drv
                        .env
                        .get(attr)
                        .map(|v| v.split_whitespace().map(str::to_string).collect()),
                };
                let Some(spec) = spec else { continue };
                let mut paths = BTreeSet::new();
                for item in spec {
                    if item.starts_with('/') {
                        paths.insert(item);
                    } else if let Some(p) = outputs.get(&item) {
                        paths.insert(p.clone());
                    } else {
                        return Err(Error::Msg(format!(
                            "derivation '{drv_path}' output check for '{out_name}' contains output name '{item}', but this is not a valid output of this derivation. (Valid outputs are [{}].)",
                            outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                    }
                }
                let used: BTreeSet<String> = if recursive {
                    // The closure, following this build's own outputs through their
                    // (not yet registered) infos.
                    let mut seen = BTreeSet::new();
                    let mut todo = vec![out_path.clone()];
                    while let Some(p) = todo.pop() {
                        if !seen.insert(p.clone()) {
                            continue;
                        }
                        let refs = match by_path.get(p.as_str()) {
                            Some(i) => i.references.clone(),
                            None => self.store.query_references(&p)?,
                        };
                        todo.extend(refs);
                    }
                    if structured.is_none() {
                        // Top-level attributes ignore the output's own path (CppNix's legacy
                        // behaviour); outputChecks do not.
                        seen.remove(out_path);
                    }
                    seen
                } else {
                    info.references.clone()
                };
                let bad: Vec<&String> = used
                    .iter()
                    .filter(|u| paths.contains(*u) != allowed)
                    .collect();
                if !bad.is_empty() {
                    let mut msg = format!(
                        "output '{out_path}' is not allowed to refer to the following paths:"
                    );
                    for b in bad {
                        msg.push_str(&format!("\n  {b}"));
                    }
                    return Err(Error::Msg(msg));
                }
            }
        }
        Ok(())
    }

    /// The builder's environment (CppNix's contract), given where the build directory
    /// appears to the builder. Writes `passAsFile` files and, for structured attributes,
    /// `.attrs.json` and `.attrs.sh` into `host_build_dir`.
    pub fn environment(
        &self,
        drv: &Derivation,
        outputs: &BTreeMap<String, String>,
        host_build_dir: &Path,
        build_dir_seen: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), "/path-not-set".into());
        env.insert("HOME".into(), "/homeless-shelter".into());
        env.insert(
            "NIX_STORE".into(),
            self.store.store_dir().as_str().to_string(),
        );
        let cores = if self.settings.cores == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            self.settings.cores
        };
        env.insert("NIX_BUILD_CORES".into(), cores.to_string());

        if let Some(json) = drv.env.get("__json") {
            let mut attrs: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
                .map_err(|e| Error::Msg(format!("cannot parse the structured attributes: {e}")))?;
            let outs: serde_json::Map<String, serde_json::Value> = outputs
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            attrs.insert("outputs".into(), serde_json::Value::Object(outs));
            let json_text = serde_json::Value::Object(attrs.clone()).to_string();
            let jp = host_build_dir.join(".attrs.json");
            fs::write(&jp, json_text).map_err(|e| io_err("writing", &jp, e))?;
            let sp = host_build_dir.join(".attrs.sh");
            fs::write(&sp, attrs_sh(&attrs)).map_err(|e| io_err("writing", &sp, e))?;
            env.insert(
                "NIX_ATTRS_JSON_FILE".into(),
                format!("{build_dir_seen}/.attrs.json"),
            );
            env.insert(
                "NIX_ATTRS_SH_FILE".into(),
                format!("{build_dir_seen}/.attrs.sh"),
            );
        } else {
            let pass_as_file: BTreeSet<&str> = drv
                .env
                .get("passAsFile")
                .map(|s| s.split_whitespace().collect())
                .unwrap_or_default();
            for (k, v) in &drv.env {
                if pass_as_file.contains(k.as_str()) {
                    let h = Hash::of(HashAlgo::Sha256, k.as_bytes());
                    let file = format!(".attr-{}", encode_nix32(h.bytes()));
                    let hp = host_build_dir.join(&file);
                    fs::write(&hp, v).map_err(|e| io_err("writing", &hp, e))?;
                    env.insert(format!("{k}Path"), format!("{build_dir_seen}/{file}"));
                } else {
                    env.insert(k.clone(), v.clone());
                }
            }
        }
        for k in ["NIX_BUILD_TOP", "TMPDIR", "TEMPDIR", "TMP", "TEMP", "PWD"] {
            env.insert(k.into(), build_dir_seen.to_string());
        }
        if drv.drv_type()?.is_fixed() {
            if let Some(vars) = drv.env.get("impureEnvVars") {
                for v in vars.split_whitespace() {
                    if let Ok(val) = std::env::var(v) {
                        env.insert(v.to_string(), val);
                    }
                }
            }
        }
        env.insert("NIX_LOG_FD".into(), "2".into());
        env.insert("TERM".into(), "xterm-256color".into());
        Ok(env)
    }

    fn run_builder(
        &self,
        drv_path: &str,
        drv: &Derivation,
        outputs: &BTreeMap<String, String>,
        closure: &BTreeSet<String>,
        isolation: &Isolation,
        log_path: &Path,
    ) -> Result<(), Error> {
        let n = BUILD_SEQ.fetch_add(1, Ordering::Relaxed);
        let host_build_dir = self.settings.build_dir_parent.join(format!(
            "nixvm-build-{}-{}-{n}",
            drv.name,
            std::process::id()
        ));
        if fs::symlink_metadata(&host_build_dir).is_ok() {
            delete_path(&host_build_dir)?;
        }
        fs::create_dir_all(&host_build_dir)
            .map_err(|e| io_err("creating directory", &host_build_dir, e))?;
        fs::set_permissions(&host_build_dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("changing permissions of", &host_build_dir, e))?;
        let mut sandbox_root: Option<PathBuf> = None;
        let result = (|| {
            let seen_dir = match isolation {
                Isolation::Sandbox => "/build".to_string(),
                _ => host_build_dir.to_string_lossy().into_owned(),
            };
            let env = self.environment(drv, outputs, &host_build_dir, &seen_dir)?;
            let mut cmd = Command::new(&drv.builder);
            cmd.args(&drv.args).env_clear().envs(&env);
            match isolation {
                Isolation::None => {
                    cmd.current_dir(&host_build_dir);
                    // SAFETY: setsid is async-signal-safe.
                    unsafe {
                        std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                            if libc::setsid() < 0 {
                                return Err(std::io::Error::last_os_error());
                            }
                            // Do not outlive us if we are killed.
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                }
                Isolation::StoreView => {
                    // SAFETY: getuid/getgid cannot fail.
                    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
                    let plan = NsPlan {
                        user_ns: true,
                        inner_uid: uid,
                        inner_gid: gid,
                        isolate: false,
                        private_network: false,
                        binds: vec![(
                            self.store.real_store_dir().to_path_buf(),
                            PathBuf::from(self.store.store_dir().as_str()),
                        )],
                        read_only: Vec::new(),
                        chroot: None,
                        cwd: host_build_dir.clone(),
                    };
                    plan.apply(&mut cmd)
                        .map_err(|e| io_err("preparing the builder of", Path::new(drv_path), e))?;
                }
                Isolation::Sandbox => {
                    let root = self.store.temp_path(&format!("{}-chroot", drv.name));
                    sandbox_root = Some(root.clone());
                    let inputs: Vec<(PathBuf, String)> = closure
                        .iter()
                        .map(|p| (self.store.to_real_path(p), p.clone()))
                        .collect();
                    let sb = SandboxRoot::create(
                        &root,
                        self.store.store_dir().as_str(),
                        &inputs,
                        &host_build_dir,
                    )?;
                    let fixed = drv.drv_type()?.is_fixed();
                    let plan = NsPlan {
                        user_ns: true,
                        inner_uid: sandbox::SANDBOX_UID,
                        inner_gid: sandbox::SANDBOX_GID,
                        isolate: true,
                        private_network: !fixed,
                        binds: sb.binds,
                        read_only: sb.read_only,
                        chroot: Some(root.clone()),
                        cwd: PathBuf::from("/build"),
                    };
                    plan.apply(&mut cmd)
                        .map_err(|e| io_err("preparing the builder of", Path::new(drv_path), e))?;
                }
            }
            let status = self.spawn_logged(&mut cmd, drv_path, log_path)?;
            if let Some(root) = &sandbox_root {
                // Move the outputs out of the sandbox's store directory into the store.
                for p in outputs.values() {
                    let inside = root.join(p.trim_start_matches('/'));
                    if fs::symlink_metadata(&inside).is_ok() {
                        let real = self.store.to_real_path(p);
                        fs::rename(&inside, &real)
                            .map_err(|e| io_err("moving build output", &inside, e))?;
                    }
                }
            }
            if !status.success() {
                let reason = match (status.code(), status.signal()) {
                    (Some(c), _) => format!("builder failed with exit code {c}."),
                    (None, Some(s)) => format!("builder was killed by signal {s}."),
                    _ => "builder failed.".to_string(),
                };
                let mut msg =
                    format!("Cannot build '{drv_path}'.\nReason: {reason}\nOutput paths:");
                for p in outputs.values() {
                    msg.push_str(&format!("\n  {p}"));
                }
                if !self.settings.print_build_logs {
                    if let Ok(log) = fs::read_to_string(log_path) {
                        let lines: Vec<&str> = log.lines().collect();
                        let tail = &lines[lines.len().saturating_sub(10)..];
                        msg.push_str(&format!("\nLast {} log lines:", tail.len()));
                        for l in tail {
                            msg.push_str(&format!("\n> {l}"));
                        }
                    }
                }
                return Err(Error::Msg(msg));
            }
            Ok(())
        })();
        if let Some(root) = sandbox_root {
            let _ = delete_path(&root);
        }
        if result.is_ok() || !self.settings.keep_failed {
            let _ = delete_path(&host_build_dir);
        } else {
            self.note(&format!(
                "note: keeping build directory '{}'",
                host_build_dir.display()
            ));
        }
        result
    }

    /// Run the builder with stdout and stderr on one pipe, copied to the log file (and to
    /// our stderr); kill what is left of its process group when it exits.
    fn spawn_logged(
        &self,
        cmd: &mut Command,
        drv_path: &str,
        log_path: &Path,
    ) -> Result<std::process::ExitStatus, Error> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 fills two descriptors, which we then own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io_err(
                "creating a pipe for",
                Path::new(drv_path),
                std::io::Error::last_os_error(),
            ));
        }
        // SAFETY: both descriptors were just created and are owned here only.
        let (read_end, write_end) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let write2 = write_end
            .try_clone()
            .map_err(|e| io_err("duplicating pipe for", Path::new(drv_path), e))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(write_end))
            .stderr(Stdio::from(write2));
        let mut log =
            fs::File::create(log_path).map_err(|e| io_err("creating log file", log_path, e))?;
        let mut child = cmd.spawn().map_err(|e| {
            Error::Msg(format!(
                "Cannot build '{drv_path}'.\nReason: could not start the builder '{}': {}",
                cmd.get_program().to_string_lossy(),
                crate::io_message(&e)
            ))
        })?;
        // Our copies of the write end are gone with `cmd`'s Stdio once spawned; drop the
        // command's handles by replacing them.
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        let pid = child.id() as libc::pid_t;
        let print = self.settings.print_build_logs;
        let reader = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let mut f = fs::File::from(read_end);
                let mut buf = [0u8; 8192];
                loop {
                    match f.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            let _ = log.write_all(&buf[..n]);
                            if print {
                                let _g = self.stderr.lock().unwrap_or_else(|p| p.into_inner());
                                let _ = std::io::stderr().write_all(&buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
            });
            let status = child.wait();
            // SAFETY: signalling the builder's own process group (it called setsid).
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
            let _ = h.join();
            status
        });
        let _ = log.sync_all();
        reader.map_err(|e| io_err("waiting for the builder of", Path::new(drv_path), e))
    }
}

/// Render structured attributes as the bash declarations of `.attrs.sh`.
fn attrs_sh(attrs: &serde_json::Map<String, serde_json::Value>) -> String {
    fn quote(s: &str) -> String {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
    fn simple(v: &serde_json::Value) -> Option<String> {
        match v {
            serde_json::Value::String(s) => Some(quote(s)),
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            serde_json::Value::Bool(b) => Some(if *b { "1".into() } else { String::new() }),
            serde_json::Value::Null => Some(String::new()),
            _ => None,
        }
    }
    fn valid_name(k: &str) -> bool {
        let mut cs = k.chars();
        matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
    }
    let mut out = String::new();
    for (k, v) in attrs {
        if !valid_name(k) {
            continue;
        }
        match v {
            serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => {
                out.push_str(&format!("declare -i {k}={n}\n"));
            }
            serde_json::Value::Array(items) => {
                let vals: Option<Vec<String>> = items
                    .iter()
                    .map(|x| match x {
                        serde_json::Value::String(s) => Some(quote(s)),
                        _ => None,
                    })
                    .collect();
                if let Some(vals) = vals {
                    out.push_str(&format!("declare -a {k}=("));
                    for v in vals {
                        out.push_str(&v);
                        out.push(' ');
                    }
                    out.push_str(")\n");
                }
            }
            serde_json::Value::Object(m) => {
                let vals: Option<Vec<(String, String)>> = m
                    .iter()
                    .map(|(mk, x)| simple(x).map(|s| (mk.clone(), s)))
                    .collect();
                if let Some(vals) = vals {
                    out.push_str(&format!("declare -A {k}=("));
                    for (mk, v) in vals {
                        out.push_str(&format!("[{}]={v} ", quote(&mk)));
                    }
                    out.push_str(")\n");
                }
            }
            v => {
                if let Some(s) = simple(v) {
                    out.push_str(&format!("declare {k}={s}\n"));
                }
            }
        }
    }
    out
}

/// `builtin:fetchurl`: download `url` (http, https or file) to the output;
/// the output check that follows verifies its hash.
fn builtin_fetchurl(
    store: &LocalStore,
    drv: &Derivation,
    outputs: &BTreeMap<String, String>,
    log_path: &Path,
    transfer: &crate::transfer::TransferSettings,
) -> Result<(), Error> {
    let url = drv
        .env
        .get("url")
        .ok_or_else(|| Error::Msg("attribute 'url' missing".into()))?;
    let out = outputs
        .get("out")
        .ok_or_else(|| Error::Msg("builtin:fetchurl needs an output named 'out'".into()))?;
    let _ = fs::write(log_path, format!("fetching '{url}'\n"));
    if drv.env.get("unpack").is_some_and(|v| v == "1") {
        return Err(Error::Msg(format!(
            "builtin:fetchurl: unpacking '{url}' is not supported by nixvm"
        )));
    }
    let data = if let Some(file) = url.strip_prefix("file://") {
        fs::read(Path::new(file)).map_err(|e| {
            Error::Msg(format!(
                "unable to download '{url}': {}",
                crate::io_message(&e)
            ))
        })?
    } else if url.starts_with("http://") || url.starts_with("https://") {
        let mut warn = |w: String| {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "warning: {w}");
        };
        match crate::transfer::get(transfer, url, None, &[], &mut warn).map_err(Error::Msg)? {
            crate::transfer::Outcome::Fresh(d) => d.data,
            crate::transfer::Outcome::NotModified => {
                return Err(Error::Msg(format!(
                    "unable to download '{url}': not modified"
                )))
            }
        }
    } else {
        return Err(Error::Msg(format!(
            "unable to download '{url}': builtin:fetchurl supports http, https and file URLs"
        )));
    };
    let real = store.to_real_path(out);
    fs::write(&real, data).map_err(|e| io_err("writing", &real, e))?;
    if drv.env.get("executable").is_some_and(|v| v == "1") {
        fs::set_permissions(&real, fs::Permissions::from_mode(0o755))
            .map_err(|e| io_err("changing permissions of", &real, e))?;
    }
    Ok(())
}

/// CppNix's announcement of the derivations a build needs ("these 2
/// derivations will be built:" and one indented line each); `None` when
/// nothing is to be built.
pub fn will_be_built(needed: &BTreeSet<String>) -> Option<String> {
    if needed.is_empty() {
        return None;
    }
    let n = needed.len();
    let mut msg = if n == 1 {
        "this derivation will be built:".to_string()
    } else {
        format!("these {n} derivations will be built:")
    };
    for d in needed {
        msg.push_str(&format!("\n  {d}"));
    }
    Some(msg)
}
