//! Which store a command uses, chosen as CppNix chooses: `--store URI`,
//! else `$NIXVM_STORE`, else the `store` setting, else `$NIX_REMOTE`, else
//! `auto`; and the opened store, local (our chroot store) or a daemon's.
//!
//! The URIs: `daemon` and `unix://PATH[?root=DIR]` (a nix-daemon's socket;
//! `root` says where that store's files are when they are not where their
//! paths say), `local?root=DIR` or a plain directory (our chroot store under
//! DIR), and `auto`: the daemon when its socket exists, else our chroot
//! store under `~/.local/share/nixvm`; `dummy://` no store at all (paths
//! computed, nothing written). `local` alone (writing a Nix
//! installation's /nix/store and its database directly) is refused: we keep
//! our own database and would leave paths CppNix's does not know.

use crate::args::InstArgs;
use crate::config::{build_settings, option_value};
use nixvm::{DaemonBackend, DaemonConfig, LocalBackend, StoreBackend};
use nixvm_store::daemon::{ClientOptions, LVL_INFO};
use nixvm_store::{StoreConfig, StoreDir};
use std::path::PathBuf;
use std::rc::Rc;

/// A store URI, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreUri {
    /// Our chroot store at a root directory (`None`: the per-user default).
    Chroot(Option<PathBuf>),
    Daemon {
        socket: PathBuf,
        root: Option<PathBuf>,
    },
    /// CppNix's `dummy://`: paths are computed, nothing is written or read
    /// (the conformance suite evaluates so).
    Dummy,
}

/// The URI the command line, the environment and the settings give.
pub fn store_spec(a: &InstArgs) -> String {
    a.store
        .clone()
        .or_else(|| std::env::var("NIXVM_STORE").ok().filter(|s| !s.is_empty()))
        .or_else(|| option_value(a, "store").map(str::to_string))
        .or_else(|| std::env::var("NIX_REMOTE").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "auto".to_string())
}

fn absolute(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    let p = if p.is_absolute() {
        p
    } else {
        std::env::current_dir().unwrap_or_default().join(p)
    };
    std::fs::canonicalize(&p).unwrap_or(p)
}

/// `?a=b&c=d` parameters.
fn params(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

pub fn parse(spec: &str) -> Result<StoreUri, String> {
    let (base, query) = match spec.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (spec, None),
    };
    let ps = params(query);
    let root = ps
        .iter()
        .find(|(k, _)| k == "root")
        .map(|(_, v)| absolute(v));
    match base {
        "auto" | "" => {
            let socket = DaemonConfig::default_socket();
            if socket.exists() {
                Ok(StoreUri::Daemon { socket, root })
            } else {
                Ok(StoreUri::Chroot(root))
            }
        }
        "dummy" | "dummy://" => Ok(StoreUri::Dummy),
        "daemon" => Ok(StoreUri::Daemon {
            socket: DaemonConfig::default_socket(),
            root,
        }),
        "local" => match root {
            Some(r) => Ok(StoreUri::Chroot(Some(r))),
            None => Err(
                "nixvm cannot write a Nix installation's own store database: use '--store daemon' to write through its nix-daemon, or '--store DIR' for a store of nixvm's own"
                    .to_string(),
            ),
        },
        _ => {
            if let Some(path) = base.strip_prefix("unix://") {
                let socket = if path.is_empty() {
                    DaemonConfig::default_socket()
                } else {
                    PathBuf::from(path)
                };
                return Ok(StoreUri::Daemon { socket, root });
            }
            if base.contains('/') && !base.contains("://") {
                return Ok(StoreUri::Chroot(Some(absolute(base))));
            }
            if !base.contains("://") {
                return Err(format!("Cannot parse Nix store '{spec}'"));
            }
            let scheme = base.split("://").next().unwrap_or(base);
            Err(format!(
                "don't know how to open Nix store with scheme '{scheme}'"
            ))
        }
    }
}

/// An opened store: ours, or a daemon's.
#[derive(Clone)]
pub enum Store {
    Local(Rc<LocalBackend>),
    Daemon(Rc<DaemonBackend>),
}

impl Store {
    pub fn backend(&self) -> Rc<dyn StoreBackend> {
        match self {
            Store::Local(l) => l.clone(),
            Store::Daemon(d) => d.clone(),
        }
    }

    pub fn store_dir(&self) -> String {
        match self {
            Store::Local(l) => l.config().store_dir.as_str().to_string(),
            Store::Daemon(d) => d.config().store_dir.as_str().to_string(),
        }
    }

    /// After making `link` point into the store: tell the daemon's garbage
    /// collector about it (our chroot store has no collector yet).
    pub fn add_indirect_root(&self, link: &str) -> Result<(), String> {
        match self {
            Store::Local(_) => Ok(()),
            Store::Daemon(d) => d
                .with_conn(|c| c.add_indirect_root(link))
                .map_err(|e| e.to_string()),
        }
    }
}

/// The store for a command: writable for instantiation and builds; for
/// `--eval`, a local store is opened only if it exists (`Ok(None)` if not).
pub fn open(a: &InstArgs, writable: bool) -> Result<Option<Store>, String> {
    let uri = parse(&store_spec(a))?;
    match uri {
        StoreUri::Dummy => Ok(None),
        StoreUri::Chroot(root) => {
            let config = match root {
                Some(r) => StoreConfig::at_root(r),
                None => match StoreConfig::default_for_user() {
                    Ok(c) => c,
                    Err(_) if !writable => return Ok(None),
                    Err(e) => return Err(e.to_string()),
                },
            };
            let settings = build_settings(a)?;
            Ok(Some(Store::Local(Rc::new(LocalBackend::new(
                config, writable, settings,
            )))))
        }
        StoreUri::Daemon { socket, root } => {
            let build = build_settings(a)?;
            // What CppNix's client passes: the build options, and every
            // setting given with --option (the daemon decides what an
            // untrusted client may set).
            let options = ClientOptions {
                keep_failed: build.keep_failed,
                keep_going: a.keep_going_short
                    || crate::config::option_bool(a, "keep-going").unwrap_or(false),
                max_build_jobs: build.jobs as u64,
                build_cores: build.cores as u64,
                overrides: crate::config::options(a)
                    .filter(|(n, _)| {
                        !matches!(
                            *n,
                            "keep-failed"
                                | "keep-going"
                                | "fallback"
                                | "max-jobs"
                                | "max-silent-time"
                                | "cores"
                                | "substitute"
                                | "show-trace"
                                | "experimental-features"
                                | "extra-experimental-features"
                                | "use-xdg-base-directories"
                                | "plugin-files"
                                | "store"
                        )
                    })
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                ..ClientOptions::default()
            };
            let config = DaemonConfig {
                socket,
                root,
                store_dir: StoreDir::new(nixvm_store::local::default_store_dir()),
                options,
                verbosity: LVL_INFO,
                print_build_logs: build.print_build_logs,
            };
            Ok(Some(Store::Daemon(Rc::new(DaemonBackend::new(
                config, writable,
            )))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_as_cppnix_names_them() {
        let d = |s: &str, r: Option<&str>| StoreUri::Daemon {
            socket: PathBuf::from(s),
            root: r.map(PathBuf::from),
        };
        assert_eq!(parse("unix:///run/sock").unwrap(), d("/run/sock", None));
        assert_eq!(
            parse("unix:///run/sock?root=/srv/x").unwrap(),
            d("/run/sock", Some("/srv/x"))
        );
        assert_eq!(
            parse("local?root=/srv/y").unwrap(),
            StoreUri::Chroot(Some(PathBuf::from("/srv/y")))
        );
        assert_eq!(
            parse("/srv/z").unwrap(),
            StoreUri::Chroot(Some(PathBuf::from("/srv/z")))
        );
        assert!(parse("local").unwrap_err().contains("--store daemon"));
        assert_eq!(parse("foo").unwrap_err(), "Cannot parse Nix store 'foo'");
        assert_eq!(
            parse("./foo").unwrap(),
            StoreUri::Chroot(Some(std::env::current_dir().unwrap().join("./foo")))
        );
        assert_eq!(parse("dummy://").unwrap(), StoreUri::Dummy);
        assert_eq!(
            parse("s3://bucket").unwrap_err(),
            "don't know how to open Nix store with scheme 's3'"
        );
    }
}
