//! Fetching over the network, below the builtins: HTTP(S) downloads
//! ([`http`]) and the persistent cache of what was downloaded ([`cache`]),
//! with the settings CppNix has for them ([`FetchSettings`]). The fetcher
//! builtins (builtins/fetchers.rs) decide what to fetch and how the result
//! enters the store; this layer knows nothing of Nix values.

pub mod archive;
pub mod cache;
pub mod http;

use std::path::PathBuf;

/// CppNix's fetcher settings.
#[derive(Clone, Debug)]
pub struct FetchSettings {
    /// `tarball-ttl`: seconds a cached download is used without asking the
    /// server again (CppNix's default: an hour). 0 revalidates every time.
    pub tarball_ttl: u64,
    /// `download-attempts`: tries of a download that fails transiently.
    pub download_attempts: u32,
    /// `connect-timeout` in seconds; 0 means the client's own default.
    pub connect_timeout: u64,
    /// `netrc-file`: credentials by host.
    pub netrc_file: Option<PathBuf>,
    /// `ssl-cert-file`: the trusted certificates (PEM); `None` for the
    /// built-in Mozilla roots.
    pub ssl_cert_file: Option<PathBuf>,
    /// Where the persistent cache lives; `None` keeps nothing between runs.
    pub cache_dir: Option<PathBuf>,
}

impl Default for FetchSettings {
    fn default() -> Self {
        FetchSettings {
            tarball_ttl: 3600,
            download_attempts: 5,
            connect_timeout: 0,
            netrc_file: Some(nix_conf_dir().join("netrc")),
            ssl_cert_file: default_cert_file(),
            cache_dir: default_cache_dir(),
        }
    }
}

fn nix_conf_dir() -> PathBuf {
    std::env::var_os("NIX_CONF_DIR")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/nix"))
}

/// CppNix's `ssl-cert-file` default: `NIX_SSL_CERT_FILE`, `SSL_CERT_FILE`,
/// else the system bundle when there is one.
fn default_cert_file() -> Option<PathBuf> {
    for var in ["NIX_SSL_CERT_FILE", "SSL_CERT_FILE"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            return Some(PathBuf::from(v));
        }
    }
    [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// `$XDG_CACHE_HOME/nixvm/fetcher-v1`, else `~/.cache/nixvm/fetcher-v1`.
fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("nixvm/fetcher-v1"))
}
