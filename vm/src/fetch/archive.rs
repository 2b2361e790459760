//! Trees in a staging directory, as the fetchers produce them: files,
//! symlinks and modes written the way CppNix's unpacker writes them, tar
//! (gzip, xz, bzip2, zstd where supported) and zip archives unpacked with
//! CppNix's rules (a single top-level directory is the result's root;
//! lastModified is the newest entry's mtime), and the date format of
//! `lastModifiedDate`.

use crate::error::*;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn store_err(e: impl std::fmt::Display) -> Box<EvalError> {
    EvalError::new(ErrorKind::Other, e.to_string())
}

pub fn io_err(what: &str, p: &Path, e: std::io::Error) -> Box<EvalError> {
    EvalError::new(
        ErrorKind::Io,
        format!("{what} '{}': {}", p.display(), crate::vm::io_msg(&e)),
    )
}

/// `YYYYMMDDHHMMSS` in UTC, as `lastModifiedDate` shows a time.
pub fn format_utc(t: i64) -> String {
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
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

// ---- writing trees into a staging directory ---------------------------------

pub fn set_mode(p: &Path, exec: bool) -> EvalResult<()> {
    let mode = if exec { 0o755 } else { 0o644 };
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io_err("setting permissions of", p, e))
}

/// Remove whatever is at `p` (nothing if absent).
pub fn remove_any(p: &Path) {
    if let Ok(md) = std::fs::symlink_metadata(p) {
        if md.is_dir() {
            let _ = std::fs::remove_dir_all(p);
        } else {
            let _ = std::fs::remove_file(p);
        }
    }
}

pub fn ensure_dir(p: &Path) -> EvalResult<()> {
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

pub fn write_file(p: &Path, data: &[u8], exec: bool) -> EvalResult<()> {
    if let Some(parent) = p.parent() {
        ensure_dir(parent)?;
    }
    remove_any(p);
    std::fs::write(p, data).map_err(|e| io_err("writing file", p, e))?;
    set_mode(p, exec)
}

pub fn write_symlink(p: &Path, target: &[u8]) -> EvalResult<()> {
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
pub fn canon_components(name: &[u8]) -> Vec<String> {
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

pub fn join_components(root: &Path, comps: &[String]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in comps {
        p.push(c);
    }
    p
}

/// Copy the tree at `src` to `dst` (symlinks as symlinks, the executable bit
/// kept), returning the newest mtime seen (CppNix's `dumpPathAndGetMtime`).
pub fn copy_tree(src: &Path, dst: &Path) -> EvalResult<i64> {
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

pub fn unrecognized() -> Box<EvalError> {
    EvalError::new(
        ErrorKind::Other,
        "Failed to open archive (Unrecognized archive format)",
    )
}

/// Unpack a tarball or zip file into `dest` (created), returning the newest
/// member mtime. Compression is recognised by content, as libarchive does.
pub fn unpack_archive(data: &[u8], dest: &Path) -> EvalResult<i64> {
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

pub fn unpack_tar(data: &[u8], dest: &Path) -> EvalResult<i64> {
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

pub fn unpack_zip(data: &[u8], dest: &Path) -> EvalResult<i64> {
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
