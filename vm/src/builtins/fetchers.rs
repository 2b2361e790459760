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

use super::flake::{Attr, FAttrs};
use super::Registry;
use crate::error::*;
use crate::storeglue::{add_fetched_path, fetch_staging_path, FetchedPath};
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use nixvm_store::hash::{empty_hash_warning, Hash, HashAlgo, HashFormat};
use nixvm_store::path::{ContentAddress, ContentAddressMethod, StoreDir};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
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

fn has_feature(vm: &Vm, f: &str) -> bool {
    vm.settings.experimental_features.iter().any(|x| x == f)
}

// ---- small helpers --------------------------------------------------------

fn trace(mut e: Box<EvalError>, msg: String) -> Box<EvalError> {
    if e.trace.len() < 64 {
        e.trace.push(TraceEntry {
            always: false,
            msg,
            pos: None,
        });
    }
    e
}

fn io_err(what: &str, p: &Path, e: std::io::Error) -> Box<EvalError> {
    EvalError::new(
        ErrorKind::Io,
        format!("{what} '{}': {}", p.display(), crate::vm::io_msg(&e)),
    )
}

fn store_err(e: impl std::fmt::Display) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other, e.to_string())
}

/// A string that must not carry context (CppNix's `forceStringNoCtx`), the
/// attribute `sym` of `set` (its position for the frame) or, without a set,
/// an argument.
fn str_no_ctx(
    vm: &mut Vm,
    v: &Value,
    at: Option<(&Attrs, Symbol)>,
    what: &str,
) -> EvalResult<String> {
    let pos = at.and_then(|(set, sym)| vm.pos(set.position(sym)));
    vm.force_str_no_ctx_at(v, pos, what)
}

fn path_value(p: &str) -> Value {
    let mut c = Context::new();
    c.insert(Rc::from(p));
    Value::str_ctx(p.to_string(), Some(Box::new(c)))
}

/// `baseNameOf` on a URL: the last component, ignoring one trailing slash.
fn url_base_name(url: &str) -> String {
    crate::storeglue::base_name(url).to_string()
}

/// The local file a `file:` URL names (percent-decoded), if it is one.
fn file_url_path(url: &str) -> Option<String> {
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

fn url_scheme(url: &str) -> Option<&str> {
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
    match download_if_changed(vm, url, None)? {
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
) -> EvalResult<crate::fetch::http::Outcome> {
    if matches!(url_scheme(url), Some("http" | "https")) {
        let mut warn = |w: String| crate::report::stderr_line(&format!("warning: {w}"));
        return crate::fetch::http::get(&vm.settings.fetch, url, etag, &mut warn)
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

/// `YYYYMMDDHHMMSS` in UTC, as `lastModifiedDate` shows a time.
fn format_utc(t: i64) -> String {
    let days = t.div_euclid(86400);
    let secs = t.rem_euclid(86400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        y,
        m,
        d,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since the epoch of a civil date (for zip timestamps).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
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

// ---- writing trees into a staging directory ---------------------------------

fn set_mode(p: &Path, exec: bool) -> EvalResult<()> {
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("setting permissions of", p, e))
}

/// Remove whatever is at `p` (nothing if absent).
fn remove_any(p: &Path) {
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if md.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn ensure_dir(p: &Path) -> EvalResult<()> {
    match std::fs::symlink_metadata(p) {
        Ok(md) if md.is_dir() => Ok(()),
        Ok(_) => {
            remove_any(p);
            std::fs::create_dir(p).map_err(|e| io_err("creating directory", p, e))
        }
        Err(_) => {
            if let Some(parent) = p.parent() {
                ensure_dir(parent)?;
            }
            std::fs::create_dir(p).map_err(|e| io_err("creating directory", p, e))
        }
    }
}

fn write_file(p: &Path, data: &[u8], exec: bool) -> EvalResult<()> {
    if let Some(parent) = p.parent() {
        ensure_dir(parent)?;
    }
    remove_any(p);
    std::fs::write(p, data).map_err(|e| io_err("writing file", p, e))?;
    set_mode(p, exec)
}

fn write_symlink(p: &Path, target: &[u8]) -> EvalResult<()> {
    use std::os::unix::ffi::OsStrExt;
    if let Some(parent) = p.parent() {
        ensure_dir(parent)?;
    }
    remove_any(p);
    std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), p)
        .map_err(|e| io_err("creating symlink", p, e))
}

/// CppNix's `CanonPath` of an archive member name: components without
/// empty ones and `.`, with `..` going up (never above the root).
fn canon_components(name: &[u8]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(String::from_utf8_lossy(c).into_owned()),
        }
    }
    out
}

fn join_components(root: &Path, comps: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

/// Copy the tree at `src` to `dst` (symlinks as symlinks, the executable bit
/// kept), returning the newest mtime seen (CppNix's `dumpPathAndGetMtime`).
fn copy_tree(src: &Path, dst: &Path) -> EvalResult<i64> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::symlink_metadata(src).map_err(|e| io_err("getting status of", src, e))?;
    let mut newest = md.mtime();
    let ft = md.file_type();
    if ft.is_symlink() {
        let t = std::fs::read_link(src).map_err(|e| io_err("reading symbolic link", src, e))?;
        use std::os::unix::ffi::OsStrExt;
        write_symlink(dst, t.as_os_str().as_bytes())?;
    } else if ft.is_dir() {
        ensure_dir(dst)?;
        let rd = std::fs::read_dir(src).map_err(|e| io_err("opening directory", src, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| io_err("reading directory", src, e))?;
            let t = copy_tree(&ent.path(), &dst.join(ent.file_name()))?;
            newest = newest.max(t);
        }
    } else if ft.is_file() {
        if let Some(parent) = dst.parent() {
            ensure_dir(parent)?;
        }
        std::fs::copy(src, dst).map_err(|e| io_err("copying", src, e))?;
        set_mode(dst, md.mode() & 0o100 != 0)?;
    } else {
        return err(format!("file '{}' has an unsupported type", src.display()));
    }
    Ok(newest)
}

// ---- archives -----------------------------------------------------------------

fn unrecognized() -> Box<EvalError> {
    EvalError::new(
        ErrorKind::Other,
        "Failed to open archive (Unrecognized archive format)",
    )
}

/// Unpack a tarball or zip file into `dest` (created), returning the newest
/// member mtime. Compression is recognised by content, as libarchive does.
fn unpack_archive(data: &[u8], dest: &Path) -> EvalResult<i64> {
    ensure_dir(dest)?;
    if data.starts_with(b"PK\x03\x04") || data.starts_with(b"PK\x05\x06") {
        return unpack_zip(data, dest);
    }
    let decompressed: Vec<u8>;
    let tar_bytes: &[u8] = if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(|e| store_err(format!("cannot decompress gzip data: {e}")))?;
        decompressed = out;
        &decompressed
    } else if data.starts_with(b"BZh") {
        let mut out = Vec::new();
        bzip2::read::MultiBzDecoder::new(data)
            .read_to_end(&mut out)
            .map_err(|e| store_err(format!("cannot decompress bzip2 data: {e}")))?;
        decompressed = out;
        &decompressed
    } else if data.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut std::io::BufReader::new(data), &mut out)
            .map_err(|e| store_err(format!("cannot decompress xz data: {e}")))?;
        decompressed = out;
        &decompressed
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return err("cannot unpack zstd-compressed archives (not supported by nixvm)");
    } else {
        data
    };
    unpack_tar(tar_bytes, dest)
}

fn unpack_tar(data: &[u8], dest: &Path) -> EvalResult<i64> {
    if data.is_empty() {
        return Ok(0);
    }
    if data.len() < 512 {
        return Err(unrecognized());
    }
    let mut archive = tar::Archive::new(data);
    let entries = archive.entries().map_err(|_| unrecognized())?;
    let mut newest: i64 = 0;
    let mut first = true;
    for entry in entries {
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) if first => {
                let _ = e;
                return Err(unrecognized());
            }
            Err(e) => return err(format!("failed to read archive member: {e}")),
        };
        first = false;
        let name = entry.path_bytes().into_owned();
        let comps = canon_components(&name);
        let target = join_components(dest, &comps);
        let mtime = entry.header().mtime().unwrap_or(0) as i64;
        newest = newest.max(mtime);
        let kind = entry.header().entry_type();
        if kind.is_hard_link() {
            let link = entry.link_name_bytes().map(|c| c.into_owned());
            let from = join_components(dest, &canon_components(&link.unwrap_or_default()));
            let md =
                std::fs::symlink_metadata(&from).map_err(|e| io_err("hard-linking", &from, e))?;
            let exec = md.permissions().mode() & 0o100 != 0;
            let bytes = std::fs::read(&from).map_err(|e| io_err("reading file", &from, e))?;
            write_file(&target, &bytes, exec)?;
            continue;
        }
        if kind.is_dir() {
            ensure_dir(&target)?;
        } else if kind.is_file() || kind.is_contiguous() || kind.is_gnu_sparse() {
            if comps.is_empty() {
                return err("archive member has an empty name");
            }
            let exec = entry.header().mode().unwrap_or(0o644) & 0o100 != 0;
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| store_err(format!("cannot read file from tarball: {e}")))?;
            write_file(&target, &buf, exec)?;
        } else if kind.is_symlink() {
            let t = entry
                .link_name_bytes()
                .map(|c| c.into_owned())
                .unwrap_or_default();
            write_symlink(&target, &t)?;
        } else if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        } else {
            return err(format!(
                "file '{}' in tarball has unsupported file type {}",
                String::from_utf8_lossy(&name),
                kind.as_byte()
            ));
        }
    }
    Ok(newest)
}

fn unpack_zip(data: &[u8], dest: &Path) -> EvalResult<i64> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(data))
        .map_err(|e| store_err(format!("Failed to open archive ({e})")))?;
    let mut newest: i64 = 0;
    for i in 0..z.len() {
        let mut f = z
            .by_index(i)
            .map_err(|e| store_err(format!("cannot read archive member: {e}")))?;
        let name = f.name_raw().to_vec();
        let comps = canon_components(&name);
        let target = join_components(dest, &comps);
        let mut mtime = None;
        for field in f.extra_data_fields() {
            if let zip::extra_fields::ExtraField::ExtendedTimestamp(ts) = field {
                mtime = ts.mod_time().map(i64::from);
            }
        }
        let mtime = mtime.unwrap_or_else(|| {
            f.last_modified()
                .map(|d| {
                    days_from_civil(d.year() as i64, d.month() as i64, d.day() as i64) * 86400
                        + d.hour() as i64 * 3600
                        + d.minute() as i64 * 60
                        + d.second() as i64
                })
                .unwrap_or(0)
        });
        newest = newest.max(mtime);
        let mode = f.unix_mode();
        if f.is_dir() {
            ensure_dir(&target)?;
            continue;
        }
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)
            .map_err(|e| store_err(format!("cannot read file from archive: {e}")))?;
        match mode {
            Some(m) if m & 0o170000 == 0o120000 => write_symlink(&target, &buf)?,
            m => write_file(&target, &buf, m.unwrap_or(0o644) & 0o100 != 0)?,
        }
    }
    Ok(newest)
}

/// If `root` holds exactly one entry and it is a directory, that directory
/// becomes the result (as CppNix's tarball cache does).
fn strip_singleton_dir(vm: &mut Vm, root: PathBuf) -> EvalResult<PathBuf> {
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

/// Download and unpack a tarball: the unpacked tree (staging) and its lastModified.
fn download_tarball(vm: &mut Vm, url: &str) -> EvalResult<(PathBuf, i64)> {
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
    let data = download(vm, url)?;
    unpack_tarball(vm, url, &data)
}

/// Unpack a downloaded tarball into a staging path: the tree and its lastModified.
fn unpack_tarball(vm: &mut Vm, url: &str, data: &[u8]) -> EvalResult<(PathBuf, i64)> {
    crate::report::stderr_line(&format!("unpacking '{url}' into the Git cache..."));
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
            let (f, _) = fetch_url_cached(vm, &key, &url, &name, unpack).map_err(|e| {
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
) -> EvalResult<(FetchedPath, Option<i64>)> {
    use crate::fetch::{cache, http::Outcome};
    let method = if unpack {
        ContentAddressMethod::Recursive
    } else {
        ContentAddressMethod::Flat
    };
    let remote = matches!(url_scheme(url), Some("http" | "https"));
    if !remote {
        return if unpack {
            let (tree, last_modified) = download_tarball(vm, url)?;
            Ok((
                add_fetched_path(vm, name, &tree, method)?,
                Some(last_modified),
            ))
        } else {
            let data = download(vm, url)?;
            let staging = fetch_staging_path(vm)?;
            write_file(&staging, &data, false)?;
            Ok((add_fetched_path(vm, name, &staging, method)?, None))
        };
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
    let d = match download_if_changed(vm, url, etag.as_deref())? {
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
    let (f, last_modified) = if unpack {
        let (tree, last_modified) = unpack_tarball(vm, url, &d.data)?;
        (
            add_fetched_path(vm, name, &tree, method)?,
            Some(last_modified),
        )
    } else {
        let staging = fetch_staging_path(vm)?;
        write_file(&staging, &d.data, false)?;
        (add_fetched_path(vm, name, &staging, method)?, None)
    };
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

struct TreeParams {
    empty_rev_fallback: bool,
    allow_name: bool,
    is_fetch_git: bool,
}

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

fn get_str(attrs: &FAttrs, k: &str) -> Option<String> {
    match attrs.get(k) {
        Some(Attr::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

fn get_bool(attrs: &FAttrs, k: &str) -> Option<bool> {
    match attrs.get(k) {
        Some(Attr::Bool(b)) => Some(*b),
        _ => None,
    }
}

fn get_int(attrs: &FAttrs, k: &str) -> Option<u64> {
    match attrs.get(k) {
        Some(Attr::Int(n)) => Some(*n),
        _ => None,
    }
}

/// CppNix's `fixGitURL`: scp-like `user@host:path` becomes `ssh://`, a
/// plain path becomes a `file:` URL, and `git+` is dropped from the scheme.
fn fix_git_url(url: &str) -> EvalResult<String> {
    let mut url = url.to_string();
    if !url.starts_with('/') {
        if let Some(at) = url.find('@') {
            let (user, rest) = (&url[..at], &url[at + 1..]);
            if !user.contains('/') {
                if let Some(colon) = rest.find(':') {
                    url = format!("ssh://{}@{}/{}", user, &rest[..colon], &rest[colon + 1..]);
                }
            }
        }
    }
    if !url.starts_with("file:") && !url.starts_with("git+file:") && !url.contains("://") {
        let first = url.split('/').next().unwrap_or("");
        if first.contains(':') {
            return err(format!(
                "SCP-like URL '{url}' is not supported; use SSH URL syntax instead (ssh://...)"
            ));
        }
        if url.starts_with('/') {
            return Ok(format!("file://{url}"));
        }
        return Ok(format!("file:{url}"));
    }
    Ok(url.strip_prefix("git+").unwrap_or(&url).to_string())
}

fn allowed_attrs(ty: &str) -> Option<&'static [&'static str]> {
    Some(match ty {
        "git" => &[
            "url",
            "ref",
            "rev",
            "shallow",
            "submodules",
            "lfs",
            "exportIgnore",
            "lastModified",
            "revCount",
            "narHash",
            "allRefs",
            "name",
            "dirtyRev",
            "dirtyShortRev",
            "verifyCommit",
            "keytype",
            "publicKey",
            "publicKeys",
        ],
        "path" => &["path", "rev", "revCount", "lastModified", "narHash"],
        "tarball" | "file" => &[
            "url",
            "narHash",
            "name",
            "unpack",
            "rev",
            "revCount",
            "lastModified",
        ],
        "github" | "gitlab" | "sourcehut" => &[
            "owner",
            "repo",
            "ref",
            "rev",
            "narHash",
            "lastModified",
            "host",
            "treeHash",
        ],
        "mercurial" => &["url", "ref", "rev", "revCount", "narHash", "name"],
        "indirect" => &["id", "ref", "rev", "narHash"],
        _ => return None,
    })
}

/// JSON of input attributes, for CppNix's "unsupported input" messages.
fn attrs_json(attrs: &FAttrs) -> String {
    let mut m = serde_json::Map::new();
    for (k, v) in attrs {
        let j = match v {
            Attr::Str(s) => serde_json::Value::String(s.clone()),
            Attr::Int(n) => serde_json::Value::from(*n),
            Attr::Bool(b) => serde_json::Value::Bool(*b),
        };
        m.insert(k.clone(), j);
    }
    serde_json::Value::Object(m).to_string()
}

fn input_to_string(attrs: &FAttrs) -> String {
    let ty = get_str(attrs, "type").unwrap_or_default();
    if allowed_attrs(&ty).is_none() {
        return attrs_json(attrs);
    }
    super::flake::to_string(attrs).unwrap_or_else(|_| attrs_json(attrs))
}

fn nar_hash_of(attrs: &FAttrs) -> EvalResult<Option<Hash>> {
    match get_str(attrs, "narHash") {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => {
            let h = Hash::parse_any(&s, Some(HashAlgo::Sha256))
                .map_err(|e| store_err(nixvm_store::Error::from(e)))?;
            if h.algo() != HashAlgo::Sha256 {
                return err("narHash must use SHA-256");
            }
            Ok(Some(h))
        }
    }
}

const NULL_REV: &str = "0000000000000000000000000000000000000000";

fn is_locked(attrs: &FAttrs) -> EvalResult<bool> {
    let ty = get_str(attrs, "type").unwrap_or_default();
    Ok(match ty.as_str() {
        "git" => matches!(get_str(attrs, "rev"), Some(r) if r != NULL_REV),
        "github" | "gitlab" | "sourcehut" | "mercurial" => get_str(attrs, "rev").is_some(),
        "indirect" => false,
        _ => nar_hash_of(attrs)?.is_some(),
    })
}

/// The attributes of a `fetchTree`/`fetchGit` argument, as CppNix collects them.
fn collect_input(vm: &mut Vm, arg: &Value, p: &TreeParams) -> EvalResult<FAttrs> {
    let fetcher = if p.is_fetch_git {
        "fetchGit"
    } else {
        "fetchTree"
    };
    let v = vm.force(arg.clone())?;
    let mut attrs = FAttrs::new();
    if let View::Attrs(set) = &v.view() {
        let mut ty: Option<String> = p.is_fetch_git.then(|| "git".to_string());
        if let Some(t) = set.get(known::TYPE) {
            if ty.is_some() {
                return err("unexpected argument 'type'");
            }
            ty = Some(str_no_ctx(
                vm,
                t,
                Some((set, known::TYPE)),
                &format!("while evaluating the `type` argument passed to '{fetcher}'"),
            )?);
        }
        let Some(ty) = ty else {
            return err(format!("argument 'type' is missing in call to '{fetcher}'"));
        };
        attrs.insert("type".into(), Attr::Str(ty.clone()));
        for (sym, val) in set.sorted_by_name() {
            let name = sym.as_str();
            if name == "type" {
                continue;
            }
            let val = vm.force(val.clone())?;
            match &val.view() {
                View::Path(_) | View::String(_) => {
                    let mut ctx = Context::new();
                    let s = crate::ops::coerce_to_string(vm, &val, &mut ctx, false, false)?;
                    let s = String::from_utf8_lossy(&s).into_owned();
                    let s = if p.is_fetch_git && name == "url" {
                        fix_git_url(&s)?
                    } else {
                        s
                    };
                    attrs.insert(name.to_string(), Attr::Str(s));
                }
                View::Bool(b) => {
                    attrs.insert(name.to_string(), Attr::Bool(*b));
                }
                View::Int(n) => {
                    if *n < 0 {
                        return err(format!(
                            "negative value given for '{fetcher}' argument '{name}': {n}"
                        ));
                    }
                    attrs.insert(name.to_string(), Attr::Int(*n as u64));
                }
                other => {
                    return type_err(format!(
                        "argument '{name}' to '{fetcher}' is {} while a string, Boolean or integer is expected",
                        other.show_type()
                    ))
                }
            }
        }
        if p.is_fetch_git
            && !attrs.contains_key("exportIgnore")
            && !get_bool(&attrs, "submodules").unwrap_or(false)
        {
            attrs.insert("exportIgnore".into(), Attr::Bool(true));
        }
        if ty == "git" && !p.is_fetch_git && !attrs.contains_key("shallow") {
            attrs.insert("shallow".into(), Attr::Bool(true));
        }
        if !p.allow_name && attrs.contains_key("name") {
            return err(format!(
                "argument 'name' isn\u{2019}t supported in call to '{fetcher}'"
            ));
        }
    } else {
        let mut ctx = Context::new();
        let msg = format!("while evaluating the first argument passed to '{fetcher}'");
        let url = vm.coerce_ctx(&v, &mut ctx, false, false, &msg)?;
        let url = String::from_utf8_lossy(&url).into_owned();
        if p.is_fetch_git {
            attrs.insert("type".into(), Attr::Str("git".into()));
            attrs.insert("url".into(), Attr::Str(fix_git_url(&url)?));
            attrs.insert("exportIgnore".into(), Attr::Bool(true));
        } else {
            attrs = input_from_url(&url)?;
        }
    }
    validate_input(&mut attrs)?;
    Ok(attrs)
}

/// `Input::fromURL` for `fetchTree "<url>"` (a tree is required, so plain
/// `file:`/`http(s):` URLs are tarballs).
fn input_from_url(url: &str) -> EvalResult<FAttrs> {
    let Some(scheme) = url_scheme(url) else {
        return err(format!("'{url}' doesn't have a scheme"));
    };
    let mut attrs = match scheme {
        "file" | "http" | "https" => {
            let (main, query) = url.split_once('?').unwrap_or((url, ""));
            let mut attrs = FAttrs::new();
            attrs.insert("type".into(), Attr::Str("tarball".into()));
            let mut rest = Vec::new();
            for kv in query.split('&').filter(|s| !s.is_empty()) {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                let v = super::flake::percent_decode(v);
                match k {
                    "narHash" | "rev" => {
                        attrs.insert(k.into(), Attr::Str(v));
                    }
                    "revCount" | "lastModified" => {
                        if let Ok(n) = v.parse() {
                            attrs.insert(k.into(), Attr::Int(n));
                        }
                    }
                    "name" | "unpack" => {}
                    _ => rest.push(kv),
                }
            }
            let u = if rest.is_empty() {
                main.to_string()
            } else {
                format!("{main}?{}", rest.join("&"))
            };
            attrs.insert("url".into(), Attr::Str(u));
            attrs
        }
        "file+file" | "file+http" | "file+https" | "tarball+file" | "tarball+http"
        | "tarball+https" => {
            let (ty, transport) = scheme.split_once('+').unwrap_or((scheme, scheme));
            let mut attrs = FAttrs::new();
            attrs.insert("type".into(), Attr::Str(ty.into()));
            let rest = &url[scheme.len() + 1..];
            let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
            if let Some(h) = query.split('&').find_map(|kv| kv.strip_prefix("narHash=")) {
                attrs.insert("narHash".into(), Attr::Str(super::flake::percent_decode(h)));
            }
            attrs.insert("url".into(), Attr::Str(format!("{transport}:{main}")));
            attrs
        }
        "path" => {
            let attrs = super::flake::parse(url)?;
            for k in attrs.keys() {
                if !matches!(
                    k.as_str(),
                    "type" | "path" | "rev" | "narHash" | "revCount" | "lastModified"
                ) {
                    return err(format!("path URL '{url}' has unsupported parameter '{k}'"));
                }
            }
            attrs
        }
        s if s == "git" || s.starts_with("git+") => {
            let mut attrs = super::flake::parse(url)?;
            if let Some(Attr::Str(u)) = attrs.get("url").cloned() {
                attrs.insert("url".into(), Attr::Str(fix_git_url(&u)?));
            }
            attrs
        }
        "github" | "gitlab" | "sourcehut" | "flake" => super::flake::parse(url)?,
        s if s.starts_with("hg+") => {
            let mut attrs = FAttrs::new();
            attrs.insert("type".into(), Attr::Str("mercurial".into()));
            attrs.insert("url".into(), Attr::Str(url[3..].to_string()));
            attrs
        }
        _ => {
            if scheme.ends_with("+git") {
                let app = scheme.trim_end_matches("+git");
                return err(format!(
                    "input '{url}' is unsupported; did you mean 'git+{app}' instead of '{scheme}'?"
                ));
            }
            return err(format!("input '{url}' is unsupported"));
        }
    };
    attrs.remove("dir");
    Ok(attrs)
}

fn is_legal_ref_name(r: &str) -> bool {
    if r.is_empty() || r == "@" || r.starts_with('-') || r.starts_with('/') || r.ends_with('/') {
        return false;
    }
    if r.ends_with('.') || r.contains("..") || r.contains("@{") || r.contains("//") {
        return false;
    }
    for comp in r.split('/') {
        if comp.starts_with('.') || comp.ends_with(".lock") {
            return false;
        }
    }
    !r.bytes().any(|c| {
        c < 0x20 || c == 0x7f || matches!(c, b' ' | b'~' | b'^' | b':' | b'?' | b'*' | b'[' | b'\\')
    })
}

/// `Input::fromAttrs`: the scheme's allowed attributes and checks.
fn validate_input(attrs: &mut FAttrs) -> EvalResult<()> {
    let ty = get_str(attrs, "type").unwrap_or_default();
    let Some(allowed) = allowed_attrs(&ty) else {
        return Ok(());
    };
    for k in attrs.keys() {
        if k != "type" && k != "__final" && !allowed.contains(&k.as_str()) {
            return err(format!(
                "input attribute '{k}' not supported by scheme '{ty}'"
            ));
        }
    }
    match ty.as_str() {
        "git" => {
            for k in ["verifyCommit", "keytype", "publicKey", "publicKeys"] {
                if attrs.contains_key(k) {
                    return err("experimental Nix feature 'verified-fetches' is disabled; add '--extra-experimental-features verified-fetches' to enable it");
                }
            }
            if let Some(r) = get_str(attrs, "ref") {
                if !is_legal_ref_name(&r) {
                    return err(format!("invalid Git branch/tag name '{r}'"));
                }
            }
            let Some(url) = get_str(attrs, "url") else {
                return err("attribute 'url' is missing in input attribute set");
            };
            attrs.insert("url".into(), Attr::Str(fix_git_url(&url)?));
        }
        "path" if get_str(attrs, "path").is_none() => {
            return err("attribute 'path' is missing in input attribute set");
        }
        "tarball" | "file" | "mercurial" if get_str(attrs, "url").is_none() => {
            return err("attribute 'url' is missing in input attribute set");
        }
        _ => {}
    }
    if let Some(rev) = get_str(attrs, "rev") {
        let ok = (rev.len() == 40 || rev.len() == 64) && rev.bytes().all(|c| c.is_ascii_hexdigit());
        if !ok {
            return err(format!("hash '{rev}' is not SRI"));
        }
    }
    Ok(())
}

/// What an input's fetch produced, before it is added to the store.
struct Fetched {
    staging: PathBuf,
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
    let f = add_fetched_path(vm, &name, &got.staging, ContentAddressMethod::Recursive)?;
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
            Ok(Fetched { staging })
        }
        "tarball" => {
            let url = get_str(input, "url").unwrap_or_default();
            crate::storeglue::check_uri(vm, &url)?;
            let (staging, last_modified) = download_tarball(vm, &url)?;
            if last_modified != 0 && get_int(input, "lastModified").is_none() {
                input.insert("lastModified".into(), Attr::Int(last_modified as u64));
            }
            Ok(Fetched { staging })
        }
        "file" => {
            let url = get_str(input, "url").unwrap_or_default();
            crate::storeglue::check_uri(vm, &url)?;
            let data = download(vm, &url)?;
            let staging = fetch_staging_path(vm)?;
            write_file(&staging, &data, false)?;
            Ok(Fetched { staging })
        }
        "git" => git_accessor(vm, input),
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

// ---- git ------------------------------------------------------------------------

/// Run `git` with `args`; stdout on success, an error naming the command otherwise.
fn git(args: &[&str], stdin: Option<Vec<u8>>) -> EvalResult<Vec<u8>> {
    let mut cmd = std::process::Command::new("git");
    // Never touch the repository (no index refresh by `status`).
    cmd.env("GIT_OPTIONAL_LOCKS", "0");
    cmd.arg("-c").arg("safe.directory=*").args(args);
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|e| {
        EvalError::new(
            ErrorKind::Io,
            format!("executing 'git': {}", crate::vm::io_msg(&e)),
        )
    })?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })),
        _ => None,
    };
    let out = child.wait_with_output().map_err(|e| {
        EvalError::new(
            ErrorKind::Io,
            format!("executing 'git': {}", crate::vm::io_msg(&e)),
        )
    })?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return err(format!(
            "program 'git' failed with exit code {}: {}",
            out.status.code().unwrap_or(-1),
            msg
        ));
    }
    Ok(out.stdout)
}

fn git_text(args: &[&str]) -> EvalResult<String> {
    Ok(String::from_utf8_lossy(&git(args, None)?)
        .trim()
        .to_string())
}

/// Which of `paths` (and, implicitly, everything below them) carry the
/// `export-ignore` attribute. `source`: a commit to read attributes from,
/// or `None` for the index.
fn export_ignored(
    git_dir: &str,
    paths: &[String],
    source: Option<&str>,
) -> EvalResult<rustc_hash::FxHashSet<String>> {
    let mut all: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for p in paths {
        let mut cur = p.as_str();
        all.insert(cur.to_string());
        while let Some(i) = cur.rfind('/') {
            cur = &cur[..i];
            all.insert(cur.to_string());
        }
    }
    let mut input = Vec::new();
    for p in &all {
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    let src_arg = source.map(|s| format!("--source={s}"));
    let mut args = vec!["--git-dir", git_dir, "check-attr", "-z", "--stdin"];
    match &src_arg {
        Some(s) => args.push(s),
        None => args.push("--cached"),
    }
    args.push("export-ignore");
    let out = git(&args, Some(input))?;
    let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    let mut ignored = rustc_hash::FxHashSet::default();
    for t in fields.chunks(3) {
        if t.len() == 3 && t[2] == b"set" {
            ignored.insert(String::from_utf8_lossy(t[0]).into_owned());
        }
    }
    Ok(ignored)
}

fn is_ignored(path: &str, ignored: &rustc_hash::FxHashSet<String>) -> bool {
    if ignored.is_empty() {
        return false;
    }
    let mut cur = path;
    loop {
        if ignored.contains(cur) {
            return true;
        }
        match cur.rfind('/') {
            Some(i) => cur = &cur[..i],
            None => return false,
        }
    }
}

fn git_accessor(vm: &mut Vm, input: &mut FAttrs) -> EvalResult<Fetched> {
    let _ = vm;
    let url = get_str(input, "url").unwrap_or_default();
    let Some(path) = file_url_path(&url) else {
        return remote_git(vm, input, &url);
    };
    let path = if path.starts_with('/') {
        path
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        cwd.join(&path).to_string_lossy().into_owned()
    };
    let exists = Path::new(&path).exists();
    let has_dot_git = Path::new(&path).join(".git").exists();
    let shallow = get_bool(input, "shallow").unwrap_or(false);
    let submodules = get_bool(input, "submodules").unwrap_or(false);
    let export_ignore = get_bool(input, "exportIgnore").unwrap_or(false);
    if export_ignore && submodules {
        return err("exportIgnore and submodules are not supported together yet");
    }
    if exists && !has_dot_git {
        // A bare repository (CppNix clones it; reading it in place is the same).
        let is_bare = git_text(&["--git-dir", &path, "rev-parse", "--is-bare-repository"])
            .map(|s| s == "true")
            .unwrap_or(false);
        if !is_bare {
            return err(format!("Failed to fetch git repository '{url}'"));
        }
        let staging = fetch_staging_path(vm)?;
        return git_from_commit(staging, input, &path, &url, true);
    }
    if !exists {
        return err(format!("Git repository \"{path}\" does not exist."));
    }
    let git_dir = git_text(&["-C", &path, "rev-parse", "--absolute-git-dir"])?;
    if get_str(input, "ref").is_some() || get_str(input, "rev").is_some() {
        let staging = fetch_staging_path(vm)?;
        return git_from_commit(staging, input, &git_dir, &path, false);
    }
    git_from_workdir(
        vm,
        input,
        &path,
        &git_dir,
        shallow,
        submodules,
        export_ignore,
    )
}

/// A repository elsewhere (http(s), ssh, git://): its branches and tags
/// mirrored by `git fetch` into a bare repository in the fetcher cache (one
/// per URL, its HEAD the remote's), then read as a local bare repository
/// is. Within `tarball-ttl` of the last fetch, or when the wanted `rev` is
/// there already, nothing is fetched.
fn remote_git(vm: &mut Vm, input: &mut FAttrs, url: &str) -> EvalResult<Fetched> {
    crate::storeglue::check_uri(vm, url)?;
    let base =
        vm.settings.fetch.cache_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("nixvm-git-{}", std::process::id()))
        });
    let key = Hash::of(HashAlgo::Sha256, url.as_bytes()).to_base16();
    let dir = base.join("git").join(&key[..32]);
    let git_dir = dir.to_string_lossy().into_owned();
    if !dir.join("HEAD").exists() {
        ensure_dir(&dir)?;
        git(&["init", "--quiet", "--bare", &git_dir], None)?;
    }
    let stamp = dir.join("nixvm-last-fetch");
    let fresh = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() < vm.settings.fetch.tarball_ttl);
    let have_rev = get_str(input, "rev").is_some_and(|rev| {
        git(
            &[
                "--git-dir",
                &git_dir,
                "cat-file",
                "-e",
                &format!("{rev}^{{commit}}"),
            ],
            None,
        )
        .is_ok()
    });
    if !fresh && !have_rev {
        git(
            &[
                "--git-dir",
                &git_dir,
                "fetch",
                "--quiet",
                "--force",
                "--prune",
                "--",
                url,
                "+refs/heads/*:refs/heads/*",
                "+refs/tags/*:refs/tags/*",
            ],
            None,
        )
        .map_err(|e| {
            EvalError::new(
                ErrorKind::Other,
                format!("Failed to fetch git repository '{url}': {}", e.msg),
            )
        })?;
        // The remote's default branch becomes our HEAD.
        if let Ok(out) = git_text(&[
            "--git-dir",
            &git_dir,
            "ls-remote",
            "--symref",
            "--",
            url,
            "HEAD",
        ]) {
            if let Some(target) = out
                .lines()
                .find_map(|l| l.strip_prefix("ref: "))
                .and_then(|l| l.split_whitespace().next())
            {
                let _ = git(
                    &["--git-dir", &git_dir, "symbolic-ref", "HEAD", target],
                    None,
                );
            }
        }
        let _ = std::fs::write(&stamp, b"");
    }
    let staging = fetch_staging_path(vm)?;
    git_from_commit(staging, input, &git_dir, url, true)
}

fn commit_time(git_dir: &str, rev: &str) -> EvalResult<u64> {
    let t = git_text(&["--git-dir", git_dir, "log", "-1", "--format=%ct", rev])?;
    Ok(t.parse().unwrap_or(0))
}

fn rev_count(git_dir: &str, rev: &str) -> EvalResult<u64> {
    let t = git_text(&["--git-dir", git_dir, "rev-list", "--count", rev])?;
    Ok(t.parse().unwrap_or(0))
}

/// `staging` is a fresh path (`fetch_staging_path`) for the exported tree.
fn git_from_commit(
    staging: PathBuf,
    input: &mut FAttrs,
    git_dir: &str,
    location: &str,
    bare: bool,
) -> EvalResult<Fetched> {
    let shallow = get_bool(input, "shallow").unwrap_or(false);
    let submodules = get_bool(input, "submodules").unwrap_or(false);
    let export_ignore = get_bool(input, "exportIgnore").unwrap_or(false);
    let reference = match get_str(input, "ref") {
        Some(r) => r,
        None => {
            match git_text(&["--git-dir", git_dir, "symbolic-ref", "-q", "HEAD"]) {
                Ok(r) if !r.is_empty() => r,
                _ => {
                    crate::report::stderr_line(&format!("warning: could not read HEAD ref from repo at '{location}', using 'master'"));
                    "master".to_string()
                }
            }
        }
    };
    input.insert("ref".into(), Attr::Str(reference.clone()));
    let rev = match get_str(input, "rev") {
        Some(rev) => {
            let spec = format!("{rev}^{{commit}}");
            if git(&["--git-dir", git_dir, "cat-file", "-e", &spec], None).is_err() {
                if bare {
                    return err(format!(
                        "Cannot find Git revision '{rev}' in ref '{reference}' of repository '{location}'! Please make sure that the rev exists on the ref you've specified or add allRefs = true; to fetchGit."
                    ));
                }
                return err(format!(
                    "getting Git object '{rev}': object not found - no match for id ({rev})"
                ));
            }
            rev
        }
        None => {
            let spec = if bare && !reference.starts_with("refs/") && reference != "HEAD" {
                format!("refs/heads/{reference}^{{commit}}")
            } else {
                format!("{reference}^{{commit}}")
            };
            match git_text(&["--git-dir", git_dir, "rev-parse", "--verify", "-q", &spec]) {
                Ok(r) if !r.is_empty() => r,
                _ => {
                    return err(format!(
                        "resolving Git reference '{reference}': revspec '{reference}^{{commit}}' not found"
                    ))
                }
            }
        }
    };
    input.insert("rev".into(), Attr::Str(rev.clone()));
    let is_shallow = git_text(&["--git-dir", git_dir, "rev-parse", "--is-shallow-repository"])
        .map(|s| s == "true")
        .unwrap_or(false);
    if is_shallow && !shallow {
        return err(format!(
            "'{location}' is a shallow Git repository, but shallow repositories are only allowed when `shallow = true;` is specified"
        ));
    }
    input.insert(
        "lastModified".into(),
        Attr::Int(commit_time(git_dir, &rev)?),
    );
    if !shallow {
        input.insert("revCount".into(), Attr::Int(rev_count(git_dir, &rev)?));
    }
    ensure_dir(&staging)?;
    extract_commit(git_dir, &rev, &staging, submodules, export_ignore)?;
    Ok(Fetched { staging })
}

/// Write the tree of commit `rev` into `dest`.
fn extract_commit(
    git_dir: &str,
    rev: &str,
    dest: &Path,
    submodules: bool,
    export_ignore: bool,
) -> EvalResult<()> {
    let listing = git(
        &[
            "--git-dir",
            git_dir,
            "ls-tree",
            "-r",
            "-t",
            "-z",
            "--full-tree",
            rev,
        ],
        None,
    )?;
    struct Entry {
        mode: String,
        sha: String,
        path: String,
    }
    let mut entries = Vec::new();
    for rec in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
            continue;
        };
        let meta = String::from_utf8_lossy(&rec[..tab]).into_owned();
        let path = String::from_utf8_lossy(&rec[tab + 1..]).into_owned();
        let mut parts = meta.split(' ');
        let mode = parts.next().unwrap_or("").to_string();
        let _kind = parts.next();
        let sha = parts.next().unwrap_or("").to_string();
        entries.push(Entry { mode, sha, path });
    }
    let ignored = if export_ignore {
        let paths: Vec<String> = entries.iter().map(|e| e.path.clone()).collect();
        export_ignored(git_dir, &paths, Some(rev))?
    } else {
        Default::default()
    };
    entries.retain(|e| !is_ignored(&e.path, &ignored));
    if submodules && entries.iter().any(|e| e.mode == "160000") {
        return err("fetching Git submodules is not supported by nixvm yet");
    }
    // Blob contents, in one `cat-file --batch` run.
    let mut want = Vec::new();
    for e in &entries {
        if e.mode != "040000" && e.mode != "160000" {
            want.extend_from_slice(e.sha.as_bytes());
            want.push(b'\n');
        }
    }
    let blobs = if want.is_empty() {
        Vec::new()
    } else {
        git(&["--git-dir", git_dir, "cat-file", "--batch"], Some(want))?
    };
    let mut pos = 0usize;
    let mut next_blob = || -> EvalResult<&[u8]> {
        let nl = blobs[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| store_err("truncated output from 'git cat-file'"))?;
        let header = String::from_utf8_lossy(&blobs[pos..pos + nl]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| store_err(format!("unexpected output from 'git cat-file': {header}")))?;
        let start = pos + nl + 1;
        let end = start + size;
        if end > blobs.len() {
            return err("truncated output from 'git cat-file'");
        }
        pos = end + 1;
        Ok(&blobs[start..end])
    };
    for e in &entries {
        let target = join_components(dest, &canon_components(e.path.as_bytes()));
        match e.mode.as_str() {
            "040000" | "160000" => ensure_dir(&target)?,
            "120000" => {
                let t = next_blob()?.to_vec();
                write_symlink(&target, &t)?;
            }
            m => {
                let data = next_blob()?.to_vec();
                write_file(&target, &data, m == "100755")?;
            }
        }
    }
    Ok(())
}

fn git_from_workdir(
    vm: &mut Vm,
    input: &mut FAttrs,
    repo: &str,
    git_dir: &str,
    shallow: bool,
    submodules: bool,
    export_ignore: bool,
) -> EvalResult<Fetched> {
    let head = git_text(&["-C", repo, "rev-parse", "--verify", "-q", "HEAD^{commit}"])
        .ok()
        .filter(|s| !s.is_empty());
    // Tracked files (index entries; submodules are not files).
    let listing = git(&["-C", repo, "ls-files", "-z", "-s"], None)?;
    let mut files: Vec<String> = Vec::new();
    let mut gitlinks = false;
    for rec in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
            continue;
        };
        let meta = &rec[..tab];
        let path = String::from_utf8_lossy(&rec[tab + 1..]).into_owned();
        if meta.starts_with(b"160000") {
            gitlinks = true;
            continue;
        }
        if files.last() != Some(&path) {
            files.push(path);
        }
    }
    if submodules && gitlinks {
        return err("fetching Git submodules is not supported by nixvm yet");
    }
    let status = git(
        &[
            "-C",
            repo,
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=no",
            "--ignore-submodules=all",
        ],
        None,
    )?;
    let dirty = !status.is_empty();
    let ignored = if export_ignore {
        export_ignored(git_dir, &files, None)?
    } else {
        Default::default()
    };
    let staging = fetch_staging_path(vm)?;
    ensure_dir(&staging)?;
    let root = Path::new(repo);
    for f in &files {
        if is_ignored(f, &ignored) {
            continue;
        }
        let src = root.join(f);
        let Ok(md) = std::fs::symlink_metadata(&src) else {
            continue; // deleted in the working tree
        };
        let dst = join_components(&staging, &canon_components(f.as_bytes()));
        if md.file_type().is_symlink() {
            let t =
                std::fs::read_link(&src).map_err(|e| io_err("reading symbolic link", &src, e))?;
            use std::os::unix::ffi::OsStrExt;
            write_symlink(&dst, t.as_os_str().as_bytes())?;
        } else if md.is_file() {
            let data = std::fs::read(&src).map_err(|e| io_err("reading file", &src, e))?;
            write_file(&dst, &data, md.permissions().mode() & 0o100 != 0)?;
        }
    }
    if !dirty {
        if let Ok(r) = git_text(&["-C", repo, "symbolic-ref", "-q", "HEAD"]) {
            if !r.is_empty() {
                input.insert("ref".into(), Attr::Str(r));
            }
        }
        let rev = head.clone().unwrap_or_else(|| NULL_REV.to_string());
        input.insert("rev".into(), Attr::Str(rev.clone()));
        if !shallow {
            let n = match &head {
                Some(h) => rev_count(git_dir, h)?,
                None => 0,
            };
            input.insert("revCount".into(), Attr::Int(n));
        }
    } else {
        vm.warn(format!("Git tree '{repo}' is dirty"))?;
        if let Some(h) = &head {
            input.insert("dirtyRev".into(), Attr::Str(format!("{h}-dirty")));
            input.insert(
                "dirtyShortRev".into(),
                Attr::Str(format!("{}-dirty", &h[..7.min(h.len())])),
            );
        }
    }
    let lm = match &head {
        Some(h) => commit_time(git_dir, h)?,
        None => 0,
    };
    input.insert("lastModified".into(), Attr::Int(lm));
    Ok(Fetched { staging })
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
