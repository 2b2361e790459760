//! Fetching over the network, below the builtins: the persistent cache of
//! what was downloaded ([`cache`]), trees and archives ([`archive`]) and
//! the settings CppNix has for fetching ([`FetchSettings`]); downloads
//! themselves are the store crate's ([`nixvm_store::transfer`], as the
//! builder's `builtin:fetchurl` needs them too). The fetcher builtins
//! (builtins/fetchers.rs) decide what to fetch and how the result enters
//! the store; this layer knows nothing of Nix values.

pub mod archive;
pub mod cache;

pub use nixvm_store::transfer as http;
pub use nixvm_store::transfer::TransferSettings;

use std::path::PathBuf;

/// CppNix's fetcher settings.
#[derive(Clone, Debug)]
pub struct FetchSettings {
    /// `tarball-ttl`: seconds a cached download is used without asking the
    /// server again (CppNix's default: an hour). 0 revalidates every time.
    pub tarball_ttl: u64,
    /// How downloads are made (attempts, timeouts, certificates, netrc).
    pub transfer: TransferSettings,
    /// Where the persistent cache lives; `None` keeps nothing between runs.
    pub cache_dir: Option<PathBuf>,
    /// `access-tokens`: (host, token) for the forges' APIs and tarballs.
    pub access_tokens: Vec<(String, String)>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            tarball_ttl: 3600,
            transfer: TransferSettings::default(),
            cache_dir: default_cache_dir(),
            access_tokens: Vec::new(),
        }
    }
}

/// `$XDG_CACHE_HOME/nixvm/fetcher-v1`, else `~/.cache/nixvm/fetcher-v1`.
fn default_cache_dir() -> Option<PathBuf> {
    Some(crate::state::cache_home()?.join("nixvm/fetcher-v1"))
}
