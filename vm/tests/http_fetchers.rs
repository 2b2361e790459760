//! The fetchers over HTTP, against a loopback server started by each test
//! (127.0.0.1 only): CppNix 2.34's store paths and messages for the same
//! content, the persistent cache (answers within tarball-ttl with the
//! server gone, ETag revalidation after), retries, netrc credentials.

use nixvm::{Evaluator, LocalBackend};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// What the server answers for a path.
#[derive(Clone)]
struct Route {
    body: Vec<u8>,
    etag: Option<String>,
    /// Fail with 500 this many times first.
    fail_first: usize,
    /// `Authorization` header required.
    auth: Option<String>,
}

#[derive(Default)]
struct Log {
    /// (path, status) of every request answered.
    requests: Vec<(String, u16)>,
}

struct Server {
    port: u16,
    log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(routes: HashMap<String, Route>) -> Server {
        Server::start_with(routes, None)
    }

    /// With `tls`, an https server with that configuration.
    fn start_with(
        routes: HashMap<String, Route>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        Server::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), routes, tls)
    }

    fn start_on(
        listener: TcpListener,
        routes: HashMap<String, Route>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Server {
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (log.clone(), stop.clone());
        let routes = Arc::new(Mutex::new(routes));
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    match &tls {
                        None => serve(c, &routes, &log2),
                        Some(cfg) => {
                            let Ok(sc) = rustls::ServerConnection::new(cfg.clone()) else {
                                continue;
                            };
                            serve(rustls::StreamOwned::new(sc, c), &routes, &log2);
                        }
                    }
                }
            }
        });
        Server {
            port,
            log,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn statuses(&self, path: &str) -> Vec<u16> {
        self.log
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, s)| *s)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve<S: std::io::Read + Write>(c: S, routes: &Mutex<HashMap<String, Route>>, log: &Mutex<Log>) {
    let mut r = BufReader::new(c);
    let mut line = String::new();
    if r.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (status, body, etag) = {
        let mut routes = routes.lock().unwrap();
        match routes.get_mut(&path) {
            None => (404, b"no such thing".to_vec(), None),
            Some(rt) if rt.fail_first > 0 => {
                rt.fail_first -= 1;
                (500, b"try again".to_vec(), None)
            }
            Some(rt) if rt.auth.is_some() && headers.get("authorization") != rt.auth.as_ref() => {
                (401, Vec::new(), None)
            }
            Some(rt) if rt.etag.is_some() && headers.get("if-none-match") == rt.etag.as_ref() => {
                (304, Vec::new(), rt.etag.clone())
            }
            Some(rt) => (200, rt.body.clone(), rt.etag.clone()),
        }
    };
    log.lock().unwrap().requests.push((path, status));
    let reason = match status {
        200 => "OK",
        304 => "Not Modified",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Internal Server Error",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(e) = etag {
        head.push_str(&format!("ETag: {e}\r\n"));
    }
    head.push_str("\r\n");
    let mut c = r.into_inner();
    let _ = c.write_all(head.as_bytes());
    let _ = c.write_all(&body);
    let _ = c.flush();
}

fn route(body: &[u8]) -> Route {
    Route {
        body: body.to_vec(),
        etag: None,
        fail_first: 0,
        auth: None,
    }
}

/// `pkg/default.nix` = `{ x = 1; }`, as a .tar.gz.
fn pkg_tarball() -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let data = b"{ x = 1; }\n";
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    tar.append_data(&mut h, "pkg/default.nix", &data[..])
        .unwrap();
    let raw = tar.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&raw).unwrap();
    gz.finish().unwrap()
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let d = std::env::temp_dir().join(format!("nixvm-http-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chmod")
            .args(["-R", "u+w"])
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An evaluator with a chroot store and a fetcher cache under `dir`.
fn evaluator(dir: &Path, ttl: u64, attempts: u32) -> Evaluator {
    let store = LocalBackend::new(
        nixvm_store::StoreConfig::at_root(dir.join("store")),
        true,
        Default::default(),
    );
    let cache = dir.join("cache");
    let netrc = dir.join("netrc");
    Evaluator::builder()
        .store(Rc::new(store))
        .settings(move |s| {
            s.fetch.cache_dir = Some(cache);
            s.fetch.tarball_ttl = ttl;
            s.fetch.transfer.download_attempts = attempts;
            s.fetch.transfer.netrc_file = Some(netrc);
        })
        .build()
}

/// The printed value, or the error's message.
fn eval(ev: &mut Evaluator, src: &str) -> Result<String, String> {
    let v = ev
        .eval_str(src, Path::new("/"))
        .map_err(|e| e.msg.clone())?;
    let v = ev.force_deep(v).map_err(|e| e.msg.clone())?;
    let out = ev.print(&v);
    ev.flush_store().map_err(|e| e.msg.clone())?;
    Ok(out)
}

/// CppNix 2.34.8's answers for the same bytes.
const HELLO: &str = "\"/nix/store/r6r0fxq5v6wkyp51m822nwrdcvibfkxz-hello.txt\"";
const PKG: &str = "\"/nix/store/nb8szj9x04zpzp775jk0m29phmmmm330-source\"";

#[test]
fn fetchurl_and_fetch_tarball_as_cppnix() {
    let tmp = Scratch::new("paths");
    let srv = Server::start(HashMap::from([
        ("/hello.txt".to_string(), route(b"hello from http\n")),
        ("/pkg.tar.gz".to_string(), route(&pkg_tarball())),
    ]));
    let mut ev = evaluator(&tmp.0, 3600, 1);
    let hello = srv.url("/hello.txt");
    assert_eq!(
        eval(&mut ev, &format!("builtins.fetchurl \"{hello}\"")).unwrap(),
        HELLO
    );
    assert_eq!(
        eval(
            &mut ev,
            &format!("builtins.fetchurl {{ url = \"{hello}\"; name = \"greeting\"; }}")
        )
        .unwrap(),
        "\"/nix/store/zhr26i3svphdbzd20c6lmjnrgs902l71-greeting\""
    );
    let pkg = srv.url("/pkg.tar.gz");
    assert_eq!(
        eval(&mut ev, &format!("builtins.fetchTarball \"{pkg}\"")).unwrap(),
        PKG
    );
    assert_eq!(
        eval(
            &mut ev,
            &format!("(import (builtins.fetchTarball \"{pkg}\")).x")
        )
        .unwrap(),
        "1"
    );
    assert_eq!(
        eval(
            &mut ev,
            &format!("(builtins.fetchTree {{ type = \"file\"; url = \"{hello}\"; }}).narHash")
        )
        .unwrap(),
        "\"sha256-xcwsnoUgFG/JX0aJ2lQJYBNwVLIvbbcaYAhm5feKr2U=\""
    );
    // A pinned hash that does not match.
    let e = eval(
        &mut ev,
        &format!("builtins.fetchurl {{ url = \"{hello}\"; sha256 = \"0000000000000000000000000000000000000000000000000000\"; }}"),
    )
    .unwrap_err();
    assert!(
        e.contains(&format!("hash mismatch in file downloaded from '{hello}'")),
        "{e}"
    );
}

#[test]
fn the_cache_answers_within_the_ttl_and_revalidates_after() {
    let tmp = Scratch::new("cache");
    let mut r = route(&pkg_tarball());
    r.etag = Some("\"v1\"".into());
    let srv = Server::start(HashMap::from([("/pkg.tar.gz".to_string(), r)]));
    let expr = format!("builtins.fetchTarball \"{}\"", srv.url("/pkg.tar.gz"));
    let tree = format!(
        "(builtins.fetchTree {{ type = \"tarball\"; url = \"{}\"; }}).outPath",
        srv.url("/pkg.tar.gz")
    );
    assert_eq!(eval(&mut evaluator(&tmp.0, 3600, 1), &expr).unwrap(), PKG);
    assert_eq!(eval(&mut evaluator(&tmp.0, 3600, 1), &tree).unwrap(), PKG);
    // A new evaluation after the TTL asks with the ETag: 304, nothing fetched.
    assert_eq!(eval(&mut evaluator(&tmp.0, 0, 1), &expr).unwrap(), PKG);
    assert_eq!(srv.statuses("/pkg.tar.gz"), vec![200, 200, 304]);
    // Within the TTL, with the server gone, the cache answers.
    drop(srv);
    assert_eq!(eval(&mut evaluator(&tmp.0, 3600, 1), &expr).unwrap(), PKG);
    assert_eq!(eval(&mut evaluator(&tmp.0, 3600, 1), &tree).unwrap(), PKG);
    // After it, the download is tried (and fails as CppNix's does).
    let e = eval(&mut evaluator(&tmp.0, 0, 1), &expr).unwrap_err();
    assert!(
        e.contains("Could not connect to server (7) Failed to connect to 127.0.0.1:"),
        "{e}"
    );
    // A damaged entry is not trusted: the next fetch replaces it.
    for f in std::fs::read_dir(tmp.0.join("cache")).unwrap() {
        std::fs::write(f.unwrap().path(), "{\"key\": 1}").unwrap();
    }
    let e = eval(&mut evaluator(&tmp.0, 3600, 1), &expr).unwrap_err();
    assert!(e.contains("Could not connect"), "{e}");
}

#[test]
fn errors_retries_and_credentials() {
    let tmp = Scratch::new("errors");
    let mut flaky = route(b"finally\n");
    flaky.fail_first = 1;
    let mut secret = route(b"secret\n");
    let token = nixvm_store::hash::encode_base64(b"bob:two");
    secret.auth = Some(format!("Basic {token}"));
    let srv = Server::start(HashMap::from([
        ("/flaky".to_string(), flaky),
        ("/secret".to_string(), secret),
    ]));
    let mut ev = evaluator(&tmp.0, 3600, 1);
    // CppNix's message for an HTTP error, with the response body.
    let missing = srv.url("/missing");
    let e = eval(&mut ev, &format!("builtins.fetchurl \"{missing}\"")).unwrap_err();
    assert!(
        e.contains(&format!(
            "unable to download '{missing}': HTTP error 404\n\nresponse body:\n\nno such thing"
        )),
        "{e}"
    );
    // A server error is retried (download-attempts).
    let flaky_url = srv.url("/flaky");
    let mut ev2 = evaluator(&tmp.0, 3600, 2);
    let out = eval(
        &mut ev2,
        &format!("builtins.readFile (builtins.fetchurl \"{flaky_url}\")"),
    )
    .unwrap();
    assert_eq!(out, "\"finally\\n\"");
    assert_eq!(srv.statuses("/flaky"), vec![500, 200]);
    // netrc credentials for the host.
    let secret_url = srv.url("/secret");
    let e = eval(&mut ev, &format!("builtins.fetchurl \"{secret_url}\"")).unwrap_err();
    assert!(e.contains("HTTP error 401"), "{e}");
    std::fs::write(
        tmp.0.join("netrc"),
        "machine 127.0.0.1 login bob password two\n",
    )
    .unwrap();
    let out = eval(
        &mut ev,
        &format!("builtins.readFile (builtins.fetchurl \"{secret_url}\")"),
    )
    .unwrap();
    assert_eq!(out, "\"secret\\n\"");
}

/// fetchGit from a `git daemon` on loopback: CppNix 2.34.8's answer for the
/// same commit; a second fetch of the pinned rev needs no server.
#[test]
fn fetch_git_from_a_git_server() {
    if std::process::Command::new("git")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("note: no git; skipped");
        return;
    }
    let tmp = Scratch::new("git");
    let work = tmp.0.join("srv/work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("default.nix"), "{ y = 2; }\n").unwrap();
    let git = |dir: &Path, args: &[&str]| {
        let st = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
            .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    };
    git(&work, &["init", "-q", "-b", "main"]);
    git(&work, &["add", "."]);
    git(
        &work,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "one",
        ],
    );
    git(
        &tmp.0.join("srv"),
        &["clone", "-q", "--bare", "work", "repo.git"],
    );
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // git-daemon itself (not `git daemon`, whose child would outlive a kill).
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .unwrap();
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let mut daemon = std::process::Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", tmp.0.join("srv").display()))
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed().as_secs() < 10, "git daemon did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let url = format!("git://127.0.0.1:{port}/repo.git");
    let want = "{ lastModified = 1700000000; lastModifiedDate = \"20231114221320\"; narHash = \"sha256-yqUqu7h+s+3NIihZuF1cagL7b+lza7MxpWN+OcLEzoA=\"; outPath = \"/nix/store/a5p339l2svxmd8hxdgcajdkykmf0sxmg-source\"; rev = \"c713c60f7f4c5deba33098239975a2402f57e7b6\"; revCount = 1; shortRev = \"c713c60\"; submodules = false; }";
    let got = eval(
        &mut evaluator(&tmp.0, 0, 1),
        &format!("builtins.fetchGit \"{url}\""),
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert_eq!(got.unwrap(), want);
    let pinned = format!(
        "(builtins.fetchGit {{ url = \"{url}\"; rev = \"c713c60f7f4c5deba33098239975a2402f57e7b6\"; }}).narHash"
    );
    assert_eq!(
        eval(&mut evaluator(&tmp.0, 0, 1), &pinned).unwrap(),
        "\"sha256-yqUqu7h+s+3NIihZuF1cagL7b+lza7MxpWN+OcLEzoA=\""
    );
}

/// The builder's `builtin:fetchurl` (what `<nix/fetchurl.nix>` builds with)
/// downloads over HTTP; the output is checked against the pinned hash.
#[test]
fn builtin_fetchurl_downloads() {
    let tmp = Scratch::new("builtin");
    let body = b"fetched by the builder\n";
    let srv = Server::start(HashMap::from([("/b.txt".to_string(), route(body))]));
    let h = nixvm_store::Hash::of(nixvm_store::HashAlgo::Sha256, body).to_base16();
    let expr = |hash: &str| {
        format!(
            "builtins.readFile (import <nix/fetchurl.nix> {{ url = \"{}\"; sha256 = \"{hash}\"; }})",
            srv.url("/b.txt")
        )
    };
    let mut ev = evaluator(&tmp.0, 3600, 1);
    assert_eq!(
        eval(&mut ev, &expr(&h)).unwrap(),
        "\"fetched by the builder\\n\""
    );
    let wrong = "0000000000000000000000000000000000000000000000000000000000000000";
    let e = eval(&mut evaluator(&tmp.0, 3600, 1), &expr(wrong)).unwrap_err();
    assert!(e.contains("hash mismatch"), "{e}");
}

/// A self-signed certificate for 127.0.0.1 (made with openssl) and the
/// server configuration that presents it; `None` without openssl.
fn tls_for_loopback(dir: &Path) -> Option<(PathBuf, Arc<rustls::ServerConfig>)> {
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );
    let ext = dir.join("ext.cnf");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    // A CA, and a certificate for 127.0.0.1 it signs (webpki refuses a
    // self-signed certificate as a server's own).
    let made = run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=nixvm test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]) && run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "leaf.csr",
    ]) && run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    if !made {
        return None;
    }
    use rustls::pki_types::pem::PemObject;
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let pkey = rustls::pki_types::PrivateKeyDer::from_pem_file(&key).ok();
    // ring, as the client is built with (the default provider's successor
    // needs post-quantum code this tree does not carry).
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, pkey?)
        .unwrap();
    Some((ca, Arc::new(cfg)))
}

/// `github:` with a `host` (GitHub Enterprise's API) over https: the commit
/// from the API, the tarball of that commit, the tree's attributes; what
/// CppNix 2.34.8 gives for the same server. A host has no port (CppNix's
/// rule), so the server is on 127.0.0.1:443 (root, as CI is).
#[test]
fn github_input_through_the_api() {
    let tmp = Scratch::new("github");
    let Some((cert, tls)) = tls_for_loopback(&tmp.0) else {
        eprintln!("note: no openssl; skipped");
        return;
    };
    let Ok(listener) = TcpListener::bind("127.0.0.1:443") else {
        eprintln!("note: 127.0.0.1:443 cannot be bound here; skipped");
        return;
    };
    let rev = "0123456789abcdef0123456789abcdef01234567";
    let mut commits = route(format!("{{\"sha\": \"{rev}\", \"commit\": {{}}}}").as_bytes());
    commits.auth = Some("token secret-token".into());
    let server = Server::start_on(
        listener,
        HashMap::from([
            ("/api/v3/repos/owner/repo/commits/HEAD".to_string(), commits),
            (
                format!("/api/v3/repos/owner/repo/tarball/{rev}"),
                route(&pkg_tarball()),
            ),
        ]),
        Some(tls),
    );
    let host = "127.0.0.1".to_string();
    let cache = tmp.0.join("cache");
    let new_evaluator = || {
        let (cert, host, cache) = (cert.clone(), host.clone(), cache.clone());
        let store = LocalBackend::new(
            nixvm_store::StoreConfig::at_root(tmp.0.join("store")),
            true,
            Default::default(),
        );
        Evaluator::builder()
            .store(Rc::new(store))
            .settings(move |s| {
                s.fetch.cache_dir = Some(cache);
                s.fetch.transfer.download_attempts = 1;
                s.fetch.transfer.ssl_cert_file = Some(cert);
                s.fetch.access_tokens = vec![(host, "secret-token".into())];
            })
            .build()
    };
    let expr = format!("let t = builtins.fetchTree \"github:owner/repo?host={host}\"; in [ t.outPath t.rev t.shortRev t.lastModified ]");
    let got = eval(&mut new_evaluator(), &expr).unwrap();
    assert_eq!(got, format!("[ {PKG} \"{rev}\" \"0123456\" 1700000000 ]"));
    // A second evaluation within tarball-ttl does not ask the API again.
    let again = eval(&mut new_evaluator(), &expr).unwrap();
    assert_eq!(again, got);
    assert_eq!(
        server.statuses("/api/v3/repos/owner/repo/commits/HEAD"),
        vec![200]
    );
}
