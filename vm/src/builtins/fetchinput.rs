//! Fetcher inputs as CppNix's fetchTree takes them: the attributes each
//! input type allows, an input from an attribute set or a URL
//! (`git+https://…?ref=…`, `github:owner/repo`, `tarball+https://…`), its
//! validation, and the questions asked of it (locked? which narHash?).

use super::fetchers::*;
use super::flake::{Attr, FAttrs};
use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::symbol::known;
use nixvm_store::hash::{Hash, HashAlgo};

pub(super) struct TreeParams {
    pub(super) empty_rev_fallback: bool,
    pub(super) allow_name: bool,
    pub(super) is_fetch_git: bool,
}

pub(super) fn get_str(attrs: &FAttrs, k: &str) -> Option<String> {
    match attrs.get(k) {
        Some(Attr::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

pub(super) fn get_bool(attrs: &FAttrs, k: &str) -> Option<bool> {
    match attrs.get(k) {
        Some(Attr::Bool(b)) => Some(*b),
        _ => None,
    }
}

pub(super) fn get_int(attrs: &FAttrs, k: &str) -> Option<u64> {
    match attrs.get(k) {
        Some(Attr::Int(n)) => Some(*n),
        _ => None,
    }
}

/// CppNix's `fixGitURL`: scp-like `user@host:path` becomes `ssh://`, a
/// plain path becomes a `file:` URL, and `git+` is dropped from the scheme.
pub(super) fn fix_git_url(url: &str) -> EvalResult<String> {
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

pub(super) fn allowed_attrs(ty: &str) -> Option<&'static [&'static str]> {
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
pub(super) fn attrs_json(attrs: &FAttrs) -> String {
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

pub(super) fn input_to_string(attrs: &FAttrs) -> String {
    let ty = get_str(attrs, "type").unwrap_or_default();
    if allowed_attrs(&ty).is_none() {
        return attrs_json(attrs);
    }
    super::flake::to_string(attrs).unwrap_or_else(|_| attrs_json(attrs))
}

pub(super) fn nar_hash_of(attrs: &FAttrs) -> EvalResult<Option<Hash>> {
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

pub(super) const NULL_REV: &str = "0000000000000000000000000000000000000000";

pub(super) fn is_locked(attrs: &FAttrs) -> EvalResult<bool> {
    let ty = get_str(attrs, "type").unwrap_or_default();
    Ok(match ty.as_str() {
        "git" => matches!(get_str(attrs, "rev"), Some(r) if r != NULL_REV),
        "github" | "gitlab" | "sourcehut" | "mercurial" => get_str(attrs, "rev").is_some(),
        "indirect" => false,
        _ => nar_hash_of(attrs)?.is_some(),
    })
}

/// The attributes of a `fetchTree`/`fetchGit` argument, as CppNix collects them.
pub(super) fn collect_input(vm: &mut Vm, arg: &Value, p: &TreeParams) -> EvalResult<FAttrs> {
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
pub(super) fn input_from_url(url: &str) -> EvalResult<FAttrs> {
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

pub(super) fn is_legal_ref_name(r: &str) -> bool {
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
pub(super) fn validate_input(attrs: &mut FAttrs) -> EvalResult<()> {
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
        "github" | "gitlab" | "sourcehut" => {
            for k in ["owner", "repo"] {
                if get_str(attrs, k).is_none() {
                    return err(format!("attribute '{k}' is missing in input attribute set"));
                }
            }
            if get_str(attrs, "ref").is_some_and(|r| !is_legal_ref_name(&r)) {
                return err(format!(
                    "input {} contains an invalid branch/tag name",
                    attrs_json(attrs)
                ));
            }
            // CppNix's instance-host rule: letters, digits, dots and dashes.
            let host_ok = |h: &str| {
                h.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
            };
            if get_str(attrs, "host").is_some_and(|h| !host_ok(&h)) {
                return err(format!(
                    "input {} contains an invalid instance host",
                    attrs_json(attrs)
                ));
            }
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
