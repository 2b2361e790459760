//! The fetchers: `fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`,
//! `fetchMercurial` and (behind `fetch-closure`) `fetchClosure`.
//!
//! Content is produced in a private staging path and handed to
//! [`crate::storeglue::add_fetched_path`], which computes the store path and
//! makes the content readable under it. Sources: `file://` URLs, local paths,
//! HTTP(S) URLs through [`crate::fetch::http`] (with the persistent cache of
//! [`crate::fetch::cache`] for `fetchurl`, `fetchTarball` and the `tarball`
//! and `file` inputs), and Git repositories through the `git` command.
//!
//! The results follow CppNix 2.34: `fetchurl` gives a flat fixed-output path
//! named after the URL's last component; `fetchTarball` and every `fetchTree`
//! input give a NAR-hashed path named "source" (or `name`), with the input's
//! metadata (`narHash`, `rev`, `lastModified`, ...) as attributes.

use super::fetchgit::git_accessor;
use super::fetchinput::*;
use super::flake::{Attr, FAttrs};
use super::Registry;
use crate::error::*;
use crate::fetch::archive::*;
use crate::storeglue::{add_fetched_path, fetch_staging_path, FetchedPath};
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use nixvm_store::hash::{empty_hash_warning, Hash, HashAlgo, HashFormat};
use nixvm_store::path::{ContentAddress, ContentAddressMethod, StoreDir};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub fn register(r: &mut Registry, vm: &Vm) {
    r.prim("fetchurl", 1, fetchurl);
    r.prim("fetchTarball", 1, fetch_tarball);
    r.prim("fetchGit", 1, fetch_git);
    r.prim("fetchTree", 1, fetch_tree);
    r.prim("fetchMercurial", 1, fetch_mercurial);
    if has_feature(vm, "fetch-closure") {
        r.prim("fetchClosure", 1, fetch_closure);
    }
}

pub(super) fn has_feature(vm: &Vm, f: &str) -> bool {
    vm.settings.experimental_features.iter().any(|x| x == f)
}

// ---- small helpers --------------------------------------------------------

pub(super) fn trace(mut e: Box<EvalError>, msg: String) -> Box<EvalError> {
    if e.trace.len() < 64 {
        e.trace.push(TraceEntry {
            always: false,
            msg,
            pos: None,
        });
    }
    e
}

pub(super) fn store_err(e: impl std::fmt::Display) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other, e.to_string())
}

/// A string that must not carry context (CppNix's `forceStringNoCtx`), the
/// attribute `sym` of `set` (its position for the frame) or, without a set,
/// an argument.
pub(super) fn str_no_ctx(
    vm: &mut Vm,
    v: &Value,
    at: Option<(&Attrs, Symbol)>,
    what: &str,
) -> EvalResult<String> {
    let pos = at.and_then(|(set, sym)| vm.pos(set.position(sym)));
    vm.force_str_no_ctx_at(v, pos, what)
}

pub(super) fn path_value(p: &str) -> Value {
    let mut c = Context::new();
    c.insert(Rc::from(p));
    Value::str_ctx(p.to_string(), Some(Box::new(c)))
}

/// `baseNameOf` on a URL: the last component, ignoring one trailing slash.
fn url_base_name(url: &str) -> String {
    crate::storeglue::base_name(url).to_string()
}

/// The local file a `file:` URL names (percent-decoded), if it is one.
pub(super) fn file_url_path(url: &str) -> Option<String> {
    let rest = url.strip_prefix("file:")?;
    let rest = match rest.strip_prefix("//") {
        Some(r) => {
            // An authority must be empty or localhost.
            let i = r.find('/').unwrap_or(r.len());
            let auth = &r[..i];
            if !auth.is_empty() && auth != "localhost" {
                return None;
            }
            &r[i..]
        }
        None => rest,
    };
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    Some(super::flake::percent_decode(rest))
}

pub(super) fn url_scheme(url: &str) -> Option<&str> {
    let i = url.find(':')?;
    let s = &url[..i];
    let ok = !s.is_empty()
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.'));
    ok.then_some(s)
}

fn no_network(url: &str) -> Box<EvalError> {
    EvalError::new(
        ErrorKind::Other,
        format!(
            "unable to download '{url}': network access is not available (nixvm fetches only local files)"
        ),
    )
}

/// The bytes behind a URL: `file:` URLs are read, http(s) downloaded.
fn download(vm: &Vm, url: &str) -> EvalResult<Vec<u8>> {
    download_with_headers(vm, url, &[])
}

/// [`download`] with request headers (a forge's credentials).
pub(super) fn download_with_headers(
    vm: &Vm,
    url: &str,
    headers: &[(String, String)],
) -> EvalResult<Vec<u8>> {
    match download_if_changed(vm, url, None, headers)? {
        crate::fetch::http::Outcome::Fresh(d) => Ok(d.data),
        crate::fetch::http::Outcome::NotModified => err(format!(
            "unable to download '{url}': the server answered 'not modified' to a plain request"
        )),
    }
}

/// A download that sends `etag` (If-None-Match) to an http(s) server.
fn download_if_changed(
    vm: &Vm,
    url: &str,
    etag: Option<&str>,
    headers: &[(String, String)],
) -> EvalResult<crate::fetch::http::Outcome> {
    if matches!(url_scheme(url), Some("http" | "https")) {
        let mut warn = |w: String| crate::report::stderr_line(&format!("warning: {w}"));
        return crate::fetch::http::get(&vm.settings.fetch.transfer, url, etag, headers, &mut warn)
            .map_err(|m| EvalError::new(ErrorKind::Other, m));
    }
    download_local(url).map(|data| {
        crate::fetch::http::Outcome::Fresh(crate::fetch::http::Download {
            data,
            etag: None,
            effective_url: url.to_string(),
        })
    })
}

/// The bytes of a `file:` URL; other schemes fail as CppNix's do.
fn download_local(url: &str) -> EvalResult<Vec<u8>> {
    if let Some(p) = file_url_path(url) {
        return match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => std::fs::read(&p).map_err(|_| {
                EvalError::new(
                    ErrorKind::Other,
                    format!(
                        "unable to download '{url}': Could not read a file:// file (37) Could not open file {p}"
                    ),
                )
            }),
            _ => err(format!(
                "unable to download '{url}': Could not read a file:// file (37) Could not open file {p}"
            )),
        };
    }
    match url_scheme(url) {
        None => err(format!("URL '{url}' doesn't have a scheme")),
        Some("ftp" | "ftps" | "s3") => Err(no_network(url)),
        Some(s) => err(format!(
            "unable to download '{url}': Unsupported protocol (1) Protocol \"{s}\" not supported or disabled in libcurl"
        )),
    }
}

// ---- caching of fetches within one evaluation ------------------------------

/// What this evaluation has fetched: `fetchurl`/`fetchTarball` results by
/// (builtin, URL, name), and `fetchTree` inputs by their attributes.
#[derive(Default)]
struct FetchCache {
    urls: rustc_hash::FxHashMap<String, FetchedPath>,
    trees: rustc_hash::FxHashMap<String, (FetchedPath, FAttrs)>,
}

impl crate::state::Extension for FetchCache {}

fn cache_get(vm: &mut Vm, key: &str) -> Option<FetchedPath> {
    vm.ext.get::<FetchCache>().urls.get(key).cloned()
}

fn cache_put(vm: &mut Vm, key: String, v: FetchedPath) {
    vm.ext.get::<FetchCache>().urls.insert(key, v);
}

/// If `root` holds exactly one entry and it is a directory, that directory
/// becomes the result (as CppNix's tarball cache does).
pub(super) fn strip_singleton_dir(vm: &mut Vm, root: PathBuf) -> EvalResult<PathBuf> {
    let entries: Vec<_> = std::fs::read_dir(&root)
        .map_err(|e| io_err("opening directory", &root, e))?
        .filter_map(|e| e.ok())
        .collect();
    if entries.len() == 1 {
        let only = entries[0].path();
        if std::fs::symlink_metadata(&only)
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            let dest = fetch_staging_path(vm)?;
            std::fs::rename(&only, &dest).map_err(|e| io_err("moving", &only, e))?;
            let _ = std::fs::remove_dir_all(&root);
            return Ok(dest);
        }
    }
    Ok(root)
}

/// CppNix's refusals of a local "tarball" that is none (relative, missing,
/// a directory or a Git repository), before anything is read.
fn check_local_tarball(url: &str) -> EvalResult<()> {
    if let Some(p) = file_url_path(url) {
        let path = Path::new(&p);
        if !path.is_absolute() {
            return err(format!(
                "tarball '{url}' must use an absolute path. The 'file' scheme does not support relative paths."
            ));
        }
        if std::fs::symlink_metadata(path).is_err() {
            return err(format!("tarball \"{p}\" does not exist."));
        }
        if path.is_dir() {
            if path.join(".git").exists() {
                return err(format!(
                    "tarball \"{p}\" is a git repository, not a tarball. Please use `git+file` as the scheme."
                ));
            }
            return err(format!("tarball \"{p}\" is a directory, not a file."));
        }
    }
    Ok(())
}

/// Unpack a downloaded tarball into a staging path: the tree and its lastModified.
fn unpack_tarball(vm: &mut Vm, url: &str, data: &[u8]) -> EvalResult<(PathBuf, i64)> {
    vm.info(format!("unpacking '{url}' into the Git cache..."));
    let staging = fetch_staging_path(vm)?;
    let last_modified = match unpack_archive(data, &staging) {
        Ok(t) => t,
        Err(e) => {
            remove_any(&staging);
            return Err(e);
        }
    };
    Ok((strip_singleton_dir(vm, staging)?, last_modified))
}

// ---- fetchurl, fetchTarball ---------------------------------------------------

fn fetchurl(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    fetch_url_like(vm, &a[0], "fetchurl", false, "")
}

fn fetch_tarball(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    fetch_url_like(vm, &a[0], "fetchTarball", true, "source")
}

fn fetch_url_like(
    vm: &mut Vm,
    arg: &Value,
    who: &str,
    unpack: bool,
    default_name: &str,
) -> EvalResult<Value> {
    let v = vm.force(arg.clone())?;
    let mut url: Option<String> = None;
    let mut expected: Option<Hash> = None;
    let mut name = default_name.to_string();
    let is_attrs = matches!(v.view(), View::Attrs(_));
    let mut name_passed = false;
    if let View::Attrs(attrs) = &v.view() {
        for (sym, val) in attrs.sorted_by_name() {
            match sym.as_str() {
                "url" => {
                    url = Some(str_no_ctx(
                        vm,
                        val,
                        Some((attrs, sym)),
                        "while evaluating the url we should fetch",
                    )?)
                }
                "sha256" => {
                    let s = str_no_ctx(
                        vm,
                        val,
                        Some((attrs, sym)),
                        "while evaluating the sha256 of the content we should fetch",
                    )?;
                    let h = Hash::parse_allow_empty(&s, Some(HashAlgo::Sha256))
                        .map_err(|e| store_err(nixvm_store::Error::from(e)))?;
                    if s.is_empty() {
                        vm.warn(empty_hash_warning(&h))?;
                    }
                    expected = Some(h);
                }
                "name" => {
                    name_passed = true;
                    name = str_no_ctx(
                        vm,
                        val,
                        Some((attrs, sym)),
                        "while evaluating the name of the content we should fetch",
                    )?;
                }
                other => return err(format!("unsupported argument '{other}' to '{who}'")),
            }
        }
        if url.is_none() {
            return err("'url' argument required");
        }
    } else {
        url = Some(str_no_ctx(
            vm,
            &v,
            None,
            "while evaluating the url we should fetch",
        )?);
    }
    let mut url = url.unwrap_or_default();
    if who == "fetchTarball" {
        if let Some(ch) = url.strip_prefix("channel:") {
            url = format!("https://channels.nixos.org/{ch}/nixexprs.tar.xz");
        }
    }
    if name.is_empty() {
        name = url_base_name(&url);
    }
    if let Err(e) = nixvm_store::path::check_name(&name) {
        let resolution = if name_passed {
            format!("Please change the value for the 'name' attribute passed to '{who}', so that it can create a valid store path.")
        } else if is_attrs {
            format!("Please add a valid 'name' attribute to the argument for '{who}', so that it can create a valid store path.")
        } else {
            format!("Please pass an attribute set with 'url' and 'name' attributes to '{who}',  so that it can create a valid store path.")
        };
        return err(format!(
            "invalid store path name when fetching URL '{url}': {e}. {resolution}"
        ));
    }
    if vm.settings.pure_eval && expected.is_none() {
        return err(format!(
            "in pure evaluation mode, '{who}' requires a 'sha256' argument"
        ));
    }
    crate::storeglue::check_uri(vm, &url)?;
    let method = if unpack {
        ContentAddressMethod::Recursive
    } else {
        ContentAddressMethod::Flat
    };
    // Already there (pinned and fetched before)?
    if let Some(h) = &expected {
        if h.algo() == HashAlgo::Sha256 {
            let store = StoreDir::new(&vm.settings.store_dir);
            let ca = ContentAddress { method, hash: *h };
            let p = store
                .make_fixed_output_path(&name, &ca, std::iter::empty::<&str>(), false)
                .map_err(store_err)?;
            let printed = store.print(&p);
            if crate::storeglue::fetched_path_exists(vm, &printed) {
                return Ok(path_value(&printed));
            }
        }
    }
    let key = format!("{who}\0{url}\0{name}");
    let fetched = match cache_get(vm, &key) {
        Some(c) => c,
        None => {
            let method = if unpack {
                ContentAddressMethod::Recursive
            } else {
                ContentAddressMethod::Flat
            };
            let (f, _) = fetch_url_cached(vm, &key, &url, &name, unpack, method).map_err(|e| {
                if unpack {
                    trace(e, format!("while fetching the input '{url}'"))
                } else {
                    e
                }
            })?;
            cache_put(vm, key, f.clone());
            f
        }
    };
    if let Some(h) = &expected {
        let got = if unpack {
            fetched.nar_hash
        } else {
            fetched.ca_hash
        };
        if got != *h {
            return err(format!(
                "hash mismatch in file downloaded from '{url}':\n  specified: {}\n  got:       {}",
                h.to_string(HashFormat::Nix32, true),
                got.to_string(HashFormat::Nix32, true)
            ));
        }
    }
    Ok(path_value(&fetched.path))
}

/// Downloaded bytes into the store: unpacked (with the tarball's
/// lastModified) or as the one file they are.
fn add_download(
    vm: &mut Vm,
    url: &str,
    name: &str,
    unpack: bool,
    method: ContentAddressMethod,
    data: &[u8],
) -> EvalResult<(FetchedPath, Option<i64>)> {
    if unpack {
        let (tree, last_modified) = unpack_tarball(vm, url, data)?;
        return Ok((
            add_fetched_path(vm, name, &tree, method)?,
            Some(last_modified),
        ));
    }
    let staging = fetch_staging_path(vm)?;
    write_file(&staging, data, false)?;
    Ok((add_fetched_path(vm, name, &staging, method)?, None))
}

/// A URL's content in the store, through the persistent fetcher cache: a
/// cached path is used as it is within `tarball-ttl`, revalidated with its
/// ETag after; `file:` URLs are read afresh each time. Returns the path and
/// a tarball's lastModified.
fn fetch_url_cached(
    vm: &mut Vm,
    key: &str,
    url: &str,
    name: &str,
    unpack: bool,
    method: ContentAddressMethod,
) -> EvalResult<(FetchedPath, Option<i64>)> {
    use crate::fetch::{cache, http::Outcome};
    let remote = matches!(url_scheme(url), Some("http" | "https"));
    if !remote {
        if unpack {
            check_local_tarball(url)?;
        }
        let data = download(vm, url)?;
        return add_download(vm, url, name, unpack, method, &data);
    }
    let dir = vm.settings.fetch.cache_dir.clone();
    // A cached entry counts only if its path follows from its hash and is
    // there in this evaluation's store.
    let usable = dir
        .as_deref()
        .and_then(|d| cache::lookup(d, key))
        .filter(|e| {
            let store = StoreDir::new(&vm.settings.store_dir);
            let ca = ContentAddress {
                method,
                hash: e.ca_hash,
            };
            store
                .make_fixed_output_path(name, &ca, std::iter::empty::<&str>(), false)
                .map(|p| store.print(&p) == e.store_path)
                .unwrap_or(false)
                && crate::storeglue::fetched_path_exists(vm, &e.store_path)
        });
    let as_fetched = |e: &cache::Entry| FetchedPath {
        path: e.store_path.clone(),
        nar_hash: e.nar_hash,
        ca_hash: e.ca_hash,
    };
    if let Some(e) = &usable {
        if cache::now().saturating_sub(e.time) < vm.settings.fetch.tarball_ttl {
            return Ok((as_fetched(e), e.last_modified));
        }
    }
    let etag = usable.as_ref().and_then(|e| e.etag.clone());
    let got = match download_if_changed(vm, url, etag.as_deref(), &[]) {
        // A file (not a tarball) falls back to its expired copy, as CppNix's.
        Err(e) if !unpack && usable.is_some() => {
            vm.warn(format!("{}; using cached version", e.msg))?;
            let e = usable.expect("checked");
            return Ok((as_fetched(&e), e.last_modified));
        }
        r => r?,
    };
    let d = match got {
        Outcome::NotModified => {
            let mut e = usable.expect("an ETag was sent, so there is an entry");
            e.time = cache::now();
            if let Some(dir) = &dir {
                cache::record(dir, &e);
            }
            return Ok((as_fetched(&e), e.last_modified));
        }
        Outcome::Fresh(d) => d,
    };
    let (f, last_modified) = add_download(vm, url, name, unpack, method, &d.data)?;
    if let Some(dir) = &dir {
        cache::record(
            dir,
            &cache::Entry {
                key: key.to_string(),
                store_path: f.path.clone(),
                nar_hash: f.nar_hash,
                ca_hash: f.ca_hash,
                etag: d.etag,
                time: cache::now(),
                last_modified,
            },
        );
    }
    Ok((f, last_modified))
}

// ---- fetchTree and fetchGit ------------------------------------------------------

fn fetch_tree(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    fetch_tree_impl(
        vm,
        &a[0],
        TreeParams {
            empty_rev_fallback: false,
            allow_name: false,
            is_fetch_git: false,
        },
    )
}

fn fetch_git(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    fetch_tree_impl(
        vm,
        &a[0],
        TreeParams {
            empty_rev_fallback: true,
            allow_name: true,
            is_fetch_git: true,
        },
    )
}

/// What an input's fetch produced: a tree to add to the store, or a path
/// the store has already (from the persistent fetcher cache).
pub(super) enum Fetched {
    Staged(PathBuf),
    Stored(FetchedPath),
}

fn fetch_tree_impl(vm: &mut Vm, arg: &Value, p: TreeParams) -> EvalResult<Value> {
    let fetcher = if p.is_fetch_git {
        "fetchGit"
    } else {
        "fetchTree"
    };
    let original = collect_input(vm, arg, &p)?;
    let ty = get_str(&original, "type").unwrap_or_default();
    if allowed_attrs(&ty).is_none() {
        return err(format!(
            "cannot show unsupported input '{}'",
            attrs_json(&original)
        ));
    }
    let shown = input_to_string(&original);
    if vm.settings.pure_eval && !is_locked(&original)? {
        if nar_hash_of(&original)?.is_some() {
            vm.warn(format!(
                "Input '{shown}' is unlocked (e.g. lacks a Git revision) but is checked by NAR hash. This is not reproducible and will break after garbage collection or when shared."
            ))?;
        } else {
            return err(format!(
                "in pure evaluation mode, '{fetcher}' doesn't fetch unlocked input '{shown}'"
            ));
        }
    }
    let (path, input) = fetch_input(vm, &original)?;
    Ok(emit_tree_attrs(&path, &input, p.empty_rev_fallback))
}

/// Fetch an input (already validated) into the store: its store path and its
/// completed attributes (narHash, rev, lastModified, ...). Memoised per input.
pub(crate) fn fetch_input(vm: &mut Vm, original: &FAttrs) -> EvalResult<(String, FAttrs)> {
    let shown = input_to_string(original);
    let key = format!("tree\0{}", attrs_json(original));
    if let Some((f, input)) = vm.ext.get::<FetchCache>().trees.get(&key).cloned() {
        return Ok((f.path, input));
    }
    let mut input = original.clone();
    input.remove("__final");
    let got = get_accessor(vm, &mut input)
        .map_err(|e| trace(e, format!("while fetching the input '{shown}'")))?;
    let name = get_str(&input, "name").unwrap_or_else(|| "source".into());
    let f = match got {
        Fetched::Staged(staging) => {
            add_fetched_path(vm, &name, &staging, ContentAddressMethod::Recursive)?
        }
        Fetched::Stored(f) => f,
    };
    input.insert(
        "narHash".into(),
        Attr::Str(f.nar_hash.to_string(HashFormat::Sri, true)),
    );
    if let Some(expected) = nar_hash_of(original)? {
        if expected != f.nar_hash {
            return err(format!(
                "NAR hash mismatch in input '{shown}', expected '{}' but got '{}'",
                f.nar_hash.to_string(HashFormat::Sri, true),
                expected.to_string(HashFormat::Sri, true)
            ));
        }
    }
    vm.ext
        .get::<FetchCache>()
        .trees
        .insert(key, (f.clone(), input.clone()));
    Ok((f.path, input))
}

/// Validate input attributes as `fetchTree` does, for callers that build
/// them themselves (flake inputs).
pub(crate) fn check_input(attrs: &mut FAttrs) -> EvalResult<()> {
    let ty = get_str(attrs, "type").unwrap_or_default();
    if allowed_attrs(&ty).is_none() {
        return err(format!(
            "cannot show unsupported input '{}'",
            attrs_json(attrs)
        ));
    }
    validate_input(attrs)
}

pub(crate) fn input_is_locked(attrs: &FAttrs) -> EvalResult<bool> {
    is_locked(attrs)
}

pub(crate) fn show_input(attrs: &FAttrs) -> String {
    input_to_string(attrs)
}

pub(crate) fn utc_date(t: i64) -> String {
    format_utc(t)
}

/// CppNix's `emitTreeAttrs`.
pub(crate) fn emit_tree_attrs(out_path: &str, input: &FAttrs, empty_rev_fallback: bool) -> Value {
    let mut e: Vec<(Symbol, Value)> = vec![(Symbol::intern("outPath"), path_value(out_path))];
    if let Some(h) = get_str(input, "narHash") {
        e.push((Symbol::intern("narHash"), Value::string(h)));
    }
    if get_str(input, "type").as_deref() == Some("git") {
        e.push((
            Symbol::intern("submodules"),
            Value::Bool(get_bool(input, "submodules").unwrap_or(false)),
        ));
    }
    if let Some(rev) = get_str(input, "rev") {
        e.push((
            Symbol::intern("shortRev"),
            Value::string(rev[..7.min(rev.len())].to_string()),
        ));
        e.push((Symbol::intern("rev"), Value::string(rev)));
    } else if empty_rev_fallback {
        e.push((Symbol::intern("rev"), Value::str(NULL_REV)));
        e.push((Symbol::intern("shortRev"), Value::str(&NULL_REV[..7])));
    }
    if let Some(n) = get_int(input, "revCount") {
        e.push((Symbol::intern("revCount"), Value::Int(n as i64)));
    } else if empty_rev_fallback {
        e.push((Symbol::intern("revCount"), Value::Int(0)));
    }
    if let Some(d) = get_str(input, "dirtyRev") {
        e.push((Symbol::intern("dirtyRev"), Value::string(d)));
        let s = get_str(input, "dirtyShortRev").unwrap_or_default();
        e.push((Symbol::intern("dirtyShortRev"), Value::string(s)));
    }
    if let Some(t) = get_int(input, "lastModified") {
        e.push((Symbol::intern("lastModified"), Value::Int(t as i64)));
        e.push((
            Symbol::intern("lastModifiedDate"),
            Value::string(format_utc(t as i64)),
        ));
    }
    Value::attrs(Attrs::from_unsorted(e))
}

/// Fetch an input into a staging path, completing its attributes (rev,
/// lastModified, ...) as CppNix's `InputScheme::getAccessor` does.
fn get_accessor(vm: &mut Vm, input: &mut FAttrs) -> EvalResult<Fetched> {
    let ty = get_str(input, "type").unwrap_or_default();
    match ty.as_str() {
        "path" => {
            let path = get_str(input, "path").unwrap_or_default();
            if !path.starts_with('/') {
                return err(format!(
                    "cannot fetch input '{}' because it uses a relative path",
                    input_to_string(input)
                ));
            }
            let path = nixvm_compiler::parser::canon_path(&path);
            let real = crate::storeglue::physical_path(vm, &path);
            let staging = fetch_staging_path(vm)?;
            let mtime = copy_tree(&real, &staging)?;
            if get_int(input, "lastModified").is_none() {
                input.insert("lastModified".into(), Attr::Int(mtime.max(0) as u64));
            }
            Ok(Fetched::Staged(staging))
        }
        "tarball" | "file" => {
            let url = get_str(input, "url").unwrap_or_default();
            crate::storeglue::check_uri(vm, &url)?;
            let unpack = ty == "tarball";
            let name = get_str(input, "name").unwrap_or_else(|| "source".into());
            let key = format!("fetchTree-{ty}\0{url}\0{name}");
            let (f, last_modified) = fetch_url_cached(
                vm,
                &key,
                &url,
                &name,
                unpack,
                ContentAddressMethod::Recursive,
            )?;
            if let Some(t) = last_modified.filter(|&t| t != 0) {
                if get_int(input, "lastModified").is_none() {
                    input.insert("lastModified".into(), Attr::Int(t as u64));
                }
            }
            Ok(Fetched::Stored(f))
        }
        "git" => git_accessor(vm, input),
        "github" | "gitlab" | "sourcehut" => super::fetchforge::forge_accessor(vm, input),
        "mercurial" => Err(hg_missing()),
        "indirect" => err(format!(
            "cannot find flake '{}' in the flake registries",
            input_to_string(input)
        )),
        _ => err(format!(
            "unable to fetch '{}': network access is not available (nixvm fetches only local sources)",
            input_to_string(input)
        )),
    }
}

// ---- fetchMercurial, fetchClosure -------------------------------------------------

fn hg_missing() -> Box<EvalError> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("hg").is_file()))
        .unwrap_or(false);
    if found {
        EvalError::new(
            ErrorKind::Other,
            "fetching Mercurial repositories is not supported by nixvm",
        )
    } else {
        EvalError::new(ErrorKind::Other, "hg failed with exit code 1")
    }
}

fn fetch_mercurial(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let v = vm.force(a[0].clone())?;
    let mut ctx = Context::new();
    let url = match &v.view() {
        View::Attrs(set) => {
            let mut url = Vec::new();
            for (sym, val) in set.sorted_by_name() {
                let pos = vm.pos(set.position(sym));
                let what = |a: &str| {
                    format!(
                        "while evaluating the `{a}` attribute passed to builtins.fetchMercurial"
                    )
                };
                match sym.as_str() {
                    "url" => url = vm.coerce_at(val, &mut ctx, false, false, pos, &what("url"))?,
                    n @ ("rev" | "name") => drop(vm.force_str_no_ctx_at(val, pos, &what(n))?),
                    n => {
                        return err(format!("unsupported argument '{n}' to 'fetchMercurial'"))
                            .map_err(|e| e.with_pos(pos))
                    }
                }
            }
            if url.is_empty() {
                return err("'url' argument required");
            }
            url
        }
        _ => vm.coerce_ctx(
            &v,
            &mut ctx,
            false,
            false,
            "while evaluating the first argument passed to builtins.fetchMercurial",
        )?,
    };
    let mut url = String::from_utf8_lossy(&url).into_owned();
    if !url.contains("://") {
        url = format!("file://{url}");
    }
    Err(trace(
        hg_missing(),
        format!("while fetching the input 'hg+{url}'"),
    ))
}

fn fetch_closure(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let set = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the argument passed to builtins.fetchClosure",
    )?;
    let mut from_store: Option<String> = None;
    let mut has_from_path = false;
    for (sym, val) in set.sorted_by_name() {
        let pos = vm.pos(set.position(sym));
        let hint = format!(
            "while evaluating the attribute '{}' passed to builtins.fetchClosure",
            sym.as_str()
        );
        match sym.as_str() {
            "fromPath" | "toPath" => {
                has_from_path |= sym.as_str() == "fromPath";
                let val = vm.force(val.clone())?;
                let empty = matches!(&val.view(), View::String(s) if s.as_bytes().is_empty());
                if sym.as_str() == "fromPath" || !empty {
                    let mut ctx = Context::new();
                    let p = vm.coerce_at(&val, &mut ctx, false, false, pos, &hint)?;
                    let p = String::from_utf8_lossy(&p).into_owned();
                    if !StoreDir::new(&vm.settings.store_dir).is_store_path(&p) {
                        return err(format!("path '{p}' is not in the Nix store"))
                            .ctx_at(pos, || hint.clone());
                    }
                }
            }
            "fromStore" => from_store = Some(vm.force_str_no_ctx_at(val, pos, &hint)?),
            "inputAddressed" => {
                vm.force_bool_at(val, pos, &hint)?;
            }
            other => {
                return err(format!(
                    "attribute '{other}' isn't supported in call to 'fetchClosure'"
                ))
            }
        }
    }
    if !has_from_path {
        return err("attribute 'fromPath' is missing in call to 'fetchClosure'");
    }
    let Some(from_store) = from_store else {
        return err("attribute 'fromStore' is missing in call to 'fetchClosure'");
    };
    match url_scheme(&from_store) {
        Some("http" | "https") => Err(no_network(&format!(
            "{}/nix-cache-info",
            from_store.trim_end_matches('/')
        ))),
        _ => err(format!(
            "fetchClosure from store '{from_store}' is not supported by nixvm (it has no binary cache client)"
        )),
    }
}
