//! HTTP(S) downloads as CppNix's file transfer makes them: proxies from the
//! environment (`http_proxy`, `https_proxy`, `all_proxy`, `no_proxy`), the
//! trusted certificates of `ssl-cert-file`, credentials from `netrc-file`,
//! redirects followed, transient failures retried with a growing delay
//! (`download-attempts`), a conditional request when an ETag is known, and
//! CppNix's messages for what fails (libcurl's words where CppNix shows
//! them, e.g. "HTTP error 404" with the response body).
//!
//! Built on ureq (pure Rust, rustls): an evaluator downloads one thing at a
//! time, so a blocking client is the simple and right shape. It lives in
//! the store crate, as CppNix's file transfer lives in libstore, because
//! the builder's `builtin:fetchurl` downloads too.

use std::path::PathBuf;

/// CppNix's file-transfer settings.
#[derive(Clone, Debug)]
pub struct TransferSettings {
    /// `download-attempts`: tries of a download that fails transiently.
    pub download_attempts: u32,
    /// `connect-timeout` in seconds; 0 means the client's own default.
    pub connect_timeout: u64,
    /// `netrc-file`: credentials by host.
    pub netrc_file: Option<PathBuf>,
    /// `ssl-cert-file`: the trusted certificates (PEM); `None` for the
    /// built-in Mozilla roots.
    pub ssl_cert_file: Option<PathBuf>,
}

impl Default for TransferSettings {
    fn default() -> Self {
        TransferSettings {
            download_attempts: 5,
            connect_timeout: 0,
            netrc_file: Some(nix_conf_dir().join("netrc")),
            ssl_cert_file: default_cert_file(),
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
use std::io::{IsTerminal, Read, Write};
use std::time::{Duration, Instant};

/// A completed download.
#[derive(Debug)]
pub struct Download {
    pub data: Vec<u8>,
    /// The server's ETag, to revalidate a cached copy later.
    pub etag: Option<String>,
    /// The URL after redirects.
    pub effective_url: String,
}

#[derive(Debug)]
pub enum Outcome {
    Fresh(Download),
    /// The server says the copy with the ETag we sent is still current.
    NotModified,
}

/// A failure, with whether trying again could help.
struct Failure {
    msg: String,
    transient: bool,
}

/// Download `url` (http or https), sending `etag` as If-None-Match and
/// `headers` besides. `warn` receives CppNix's "retrying" warnings.
pub fn get(
    s: &TransferSettings,
    url: &str,
    etag: Option<&str>,
    headers: &[(String, String)],
    warn: &mut dyn FnMut(String),
) -> Result<Outcome, String> {
    let attempts = s.download_attempts.max(1);
    let agent = agent(s)?;
    let mut attempt = 1;
    loop {
        match get_once(&agent, s, url, etag, headers) {
            Ok(o) => return Ok(o),
            Err(f) if f.transient && attempt < attempts => {
                let base = 250u64 << (attempt - 1).min(16);
                let delay = base + jitter(base);
                warn(format!(
                    "unable to download '{url}': {}; retrying in {delay} ms (attempt {attempt}/{attempts})",
                    f.msg
                ));
                std::thread::sleep(Duration::from_millis(delay));
                attempt += 1;
            }
            Err(f) => return Err(format!("unable to download '{url}': {}", f.msg)),
        }
    }
}

/// Some milliseconds below `bound`, different from run to run.
fn jitter(bound: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    nanos % bound.max(1)
}

fn agent(s: &TransferSettings) -> Result<ureq::Agent, String> {
    use ureq::tls::{RootCerts, TlsConfig};
    let roots = match &s.ssl_cert_file {
        Some(f) => {
            let pem = std::fs::read(f).map_err(|e| {
                format!(
                    "cannot read the certificates in '{}': {}",
                    f.display(),
                    crate::io_message(&e)
                )
            })?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            RootCerts::Specific(std::sync::Arc::new(certs))
        }
        None => RootCerts::WebPki,
    };
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(ureq::Proxy::try_from_env())
        .user_agent(format!(
            "curl/8 Nix/2.34 nixvm/{}",
            env!("CARGO_PKG_VERSION")
        ))
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .max_redirects(10)
        .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
        // CppNix's stalled-download-timeout: no answer for 300 s is a failure.
        .timeout_recv_response(Some(Duration::from_secs(300)));
    if s.connect_timeout > 0 {
        b = b.timeout_connect(Some(Duration::from_secs(s.connect_timeout)));
    }
    Ok(b.build().into())
}

fn host_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let auth = rest.split(['/', '?', '#']).next()?;
    let auth = auth.rsplit('@').next()?;
    Some(match auth.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => auth.split(':').next().unwrap_or(auth),
    })
}

fn get_once(
    agent: &ureq::Agent,
    s: &TransferSettings,
    url: &str,
    etag: Option<&str>,
    headers: &[(String, String)],
) -> Result<Outcome, Failure> {
    let mut req = agent.get(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    // netrc only when the caller sent no credentials of its own (curl's rule).
    let has_auth = headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if let Some((login, password)) = host_of(url)
        .filter(|_| !has_auth)
        .and_then(|h| netrc_login(s, h))
    {
        let token = crate::hash::encode_base64(format!("{login}:{password}").as_bytes());
        req = req.header("Authorization", format!("Basic {token}"));
    }
    let started = Instant::now();
    let mut resp = req.call().map_err(|e| failure(url, e, started))?;
    let status = resp.status().as_u16();
    if status == 304 && etag.is_some() {
        return Ok(Outcome::NotModified);
    }
    let effective_url = {
        use ureq::ResponseExt;
        resp.get_uri().to_string()
    };
    let new_etag = resp
        .headers()
        .get("ETag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let len = resp
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut reader = resp.body_mut().with_config().limit(u64::MAX).reader();
    let data = read_with_progress(&mut reader, url, len).map_err(|e| Failure {
        msg: format!("reading the response: {e}"),
        transient: true,
    })?;
    // CppNix takes these statuses as success and everything else as an
    // error; it shows a body that is short or HTML, and retries server
    // errors but those that will not change (501, 505, 511), 408 and 429.
    if !matches!(status, 200 | 201 | 204 | 206 | 304) {
        let mut msg = format!("HTTP error {status}");
        let text = String::from_utf8_lossy(&data);
        if !data.is_empty() && (data.len() < 1024 || text.contains("<html>")) {
            msg.push_str("\n\nresponse body:\n\n");
            msg.push_str(text.trim_end());
        }
        let transient = matches!(status, 408 | 429)
            || ((500..600).contains(&status) && !matches!(status, 501 | 505 | 511));
        return Err(Failure { msg, transient });
    }
    Ok(Outcome::Fresh(Download {
        data,
        etag: new_etag,
        effective_url,
    }))
}

/// The body, with a progress line on stderr when it is a terminal and the
/// download takes a while.
fn read_with_progress(r: &mut dyn Read, url: &str, len: Option<u64>) -> std::io::Result<Vec<u8>> {
    let tty = std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut last = started;
    let mut shown = false;
    let mut out = Vec::with_capacity(len.unwrap_or(0).min(1 << 30) as usize);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if tty
            && started.elapsed() > Duration::from_secs(1)
            && last.elapsed() > Duration::from_millis(200)
        {
            last = Instant::now();
            shown = true;
            let mib = out.len() as f64 / 1048576.0;
            let line = match len {
                Some(l) => format!(
                    "downloading '{url}': {mib:.1}/{:.1} MiB",
                    l as f64 / 1048576.0
                ),
                None => format!("downloading '{url}': {mib:.1} MiB"),
            };
            let _ = write!(std::io::stderr(), "\r\x1b[K{line}");
        }
    }
    if shown {
        let _ = write!(std::io::stderr(), "\r\x1b[K");
    }
    Ok(out)
}

/// libcurl's words for a failed transfer, as CppNix prints them.
fn failure(url: &str, e: ureq::Error, started: Instant) -> Failure {
    let host = host_of(url).unwrap_or("");
    let ms = started.elapsed().as_millis();
    let port = url
        .split_once("://")
        .and_then(|(scheme, rest)| {
            let auth = rest.split(['/', '?', '#']).next()?;
            auth.rsplit_once(':')
                .map(|(_, p)| p.to_string())
                .or_else(|| Some(if scheme == "https" { "443" } else { "80" }.to_string()))
        })
        .unwrap_or_default();
    let (msg, transient) = match &e {
        ureq::Error::Io(io) if io.to_string().contains("failed to lookup address") => (
            format!("Couldn't resolve host name (6) Could not resolve host: {host}"),
            true,
        ),
        ureq::Error::HostNotFound => (
            format!("Couldn't resolve host name (6) Could not resolve host: {host}"),
            true,
        ),
        ureq::Error::ConnectionFailed => (
            format!("Could not connect to server (7) Failed to connect to {host}:{port} after {ms} ms: Could not connect to server"),
            true,
        ),
        ureq::Error::Io(io) if matches!(io.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => (
            format!("Could not connect to server (7) Failed to connect to {host}:{port} after {ms} ms: Could not connect to server"),
            true,
        ),
        ureq::Error::Timeout(_) => (
            format!("Timeout was reached (28) Connection timed out after {ms} milliseconds"),
            true,
        ),
        ureq::Error::Io(io) if io.to_string().contains("invalid peer certificate") => (
            format!("SSL peer certificate or SSH remote key was not OK (60) {io}"),
            false,
        ),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) => (
            format!("SSL peer certificate or SSH remote key was not OK (60) {e}"),
            false,
        ),
        ureq::Error::TooManyRedirects => (
            "Number of redirects hit maximum amount (47) Maximum (10) redirects followed".to_string(),
            false,
        ),
        ureq::Error::Io(io) => (format!("{io}"), true),
        other => (format!("{other}"), false),
    };
    Failure { msg, transient }
}

/// The login and password `netrc-file` has for `host` (or its `default`).
fn netrc_login(s: &TransferSettings, host: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(s.netrc_file.as_ref()?).ok()?;
    netrc_lookup(&text, host)
}

fn netrc_lookup(text: &str, host: &str) -> Option<(String, String)> {
    // Entries: (machine, or None for `default`), login, password.
    let mut entries: Vec<(Option<&str>, Option<&str>, Option<&str>)> = Vec::new();
    let mut toks = text.split_whitespace();
    while let Some(t) = toks.next() {
        match t {
            "machine" => entries.push((Some(toks.next().unwrap_or("")), None, None)),
            "default" => entries.push((None, None, None)),
            "login" | "password" => {
                let v = toks.next();
                if let Some(e) = entries.last_mut() {
                    if t == "login" {
                        e.1 = v;
                    } else {
                        e.2 = v;
                    }
                }
            }
            _ => {}
        }
    }
    let pick = |want: Option<&str>| {
        entries.iter().find_map(|(m, l, p)| match (m, l, p) {
            (m, Some(l), Some(p)) if *m == want => Some((l.to_string(), p.to_string())),
            _ => None,
        })
    };
    pick(Some(host)).or_else(|| pick(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_entries_by_host() {
        let t = "machine a.example login alice password one\nmachine 127.0.0.1 login bob password two\ndefault login anon password x";
        assert_eq!(
            netrc_lookup(t, "127.0.0.1"),
            Some(("bob".into(), "two".into()))
        );
        assert_eq!(
            netrc_lookup(t, "a.example"),
            Some(("alice".into(), "one".into()))
        );
        assert_eq!(netrc_lookup(t, "other"), Some(("anon".into(), "x".into())));
        assert_eq!(netrc_lookup("machine a login l password p", "b"), None);
    }

    #[test]
    fn hosts_of_urls() {
        assert_eq!(host_of("http://127.0.0.1:8080/x"), Some("127.0.0.1"));
        assert_eq!(
            host_of("https://user@host.example/x?y"),
            Some("host.example")
        );
        assert_eq!(host_of("http://[::1]:80/"), Some("::1"));
    }
}
