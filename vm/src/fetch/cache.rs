//! The persistent fetcher cache: what a URL gave last time (its store path,
//! the hashes that name it, the server's ETag, when it was fetched), so that
//! a second evaluation within `tarball-ttl` needs no network at all and a
//! later one only asks the server whether its copy is still current.
//!
//! One small JSON file per key, named by the key's sha256, written to a
//! temporary file and renamed into place. An entry is a hint, never trusted:
//! one that does not parse, names another key, or whose store path does not
//! follow from its hash is ignored (and replaced by the next fetch); the
//! caller also checks that the path is valid in the store it evaluates with.

use nixvm_store::hash::{Hash, HashAlgo, HashFormat};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// What was fetched, e.g. `fetchurl\0URL\0NAME`.
    pub key: String,
    pub store_path: String,
    pub nar_hash: Hash,
    /// The content-address hash the store path is made from.
    pub ca_hash: Hash,
    pub etag: Option<String>,
    /// Seconds since the epoch when the server last vouched for it.
    pub time: u64,
    /// A tarball's `lastModified`.
    pub last_modified: Option<i64>,
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn file_for(dir: &Path, key: &str) -> PathBuf {
    let h = Hash::of(HashAlgo::Sha256, key.as_bytes());
    dir.join(format!("{}.json", h.to_base16()))
}

/// The entry for `key`, if a well-formed one is there.
pub fn lookup(dir: &Path, key: &str) -> Option<Entry> {
    let text = std::fs::read_to_string(file_for(dir, key)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str());
    let hash = |k: &str| Hash::parse_any(s(k)?, Some(HashAlgo::Sha256)).ok();
    let e = Entry {
        key: s("key")?.to_string(),
        store_path: s("storePath")?.to_string(),
        nar_hash: hash("narHash")?,
        ca_hash: hash("caHash")?,
        etag: s("etag").map(str::to_string),
        time: v.get("time")?.as_u64()?,
        last_modified: v.get("lastModified").and_then(|x| x.as_i64()),
    };
    (e.key == key).then_some(e)
}

/// Record `e` (errors are ignored: the cache is an optimisation).
pub fn record(dir: &Path, e: &Entry) {
    let v = serde_json::json!({
        "key": e.key,
        "storePath": e.store_path,
        "narHash": e.nar_hash.to_string(HashFormat::Sri, true),
        "caHash": e.ca_hash.to_string(HashFormat::Sri, true),
        "etag": e.etag,
        "time": e.time,
        "lastModified": e.last_modified,
    });
    let path = file_for(dir, &e.key);
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), e.time));
    if std::fs::write(&tmp, v.to_string()).is_ok() && std::fs::rename(&tmp, &path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// A small answer kept under `key` (a forge's commit for a ref): the value
/// and when it was recorded, if a well-formed entry is there.
pub fn lookup_value(dir: &Path, key: &str) -> Option<(String, u64)> {
    let text = std::fs::read_to_string(file_for(dir, key)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    if v.get("key")?.as_str()? != key {
        return None;
    }
    Some((
        v.get("value")?.as_str()?.to_string(),
        v.get("time")?.as_u64()?,
    ))
}

/// Record a small answer (errors are ignored, as for [`record`]).
pub fn record_value(dir: &Path, key: &str, value: &str) {
    let time = now();
    let v = serde_json::json!({ "key": key, "value": value, "time": time });
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    let tmp = dir.join(format!(".tmp-{}-{time}-v", std::process::id()));
    if std::fs::write(&tmp, v.to_string()).is_ok()
        && std::fs::rename(&tmp, file_for(dir, key)).is_err()
    {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_and_bad_ones_are_ignored() {
        let dir = std::env::temp_dir().join(format!("nixvm-fcache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let h = Hash::of(HashAlgo::Sha256, b"x");
        let e = Entry {
            key: "fetchurl\0http://h/x\0x".into(),
            store_path: "/nix/store/abc-x".into(),
            nar_hash: h,
            ca_hash: h,
            etag: Some("\"e1\"".into()),
            time: 7,
            last_modified: None,
        };
        record(&dir, &e);
        assert_eq!(lookup(&dir, &e.key), Some(e.clone()));
        assert_eq!(lookup(&dir, "other"), None);
        record_value(&dir, "ref\0x", "abc");
        assert_eq!(
            lookup_value(&dir, "ref\0x").map(|(v, _)| v),
            Some("abc".into())
        );
        assert_eq!(lookup_value(&dir, "ref\0y"), None);
        std::fs::write(file_for(&dir, &e.key), "{not json").unwrap();
        assert_eq!(lookup(&dir, &e.key), None);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
