//! `parseFlakeRef` and `flakeRefToString` for the common flake reference
//! schemes (github/gitlab/sourcehut, path, git+..., indirect, tarball/file).

use super::Registry;
use crate::error::*;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use std::collections::BTreeMap;

pub fn register(r: &mut Registry) {
    r.prim("parseFlakeRef", 1, parse_flake_ref);
    r.prim("flakeRefToString", 1, flake_ref_to_string);
}

fn arg_ctx<T>(r: EvalResult<T>, msg: &str) -> EvalResult<T> {
    r.map_err(|mut e| {
        e.trace.push(TraceEntry {
            msg: msg.to_string(),
            pos: None,
        });
        e
    })
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Attr {
    Str(String),
    Int(u64),
    Bool(bool),
}

impl Attr {
    fn render(&self) -> String {
        match self {
            Attr::Str(s) => s.clone(),
            Attr::Int(n) => n.to_string(),
            Attr::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        }
    }
}

pub(crate) type FAttrs = BTreeMap<String, Attr>;

pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn percent_encode(s: &str, keep: &str) -> String {
    let mut out = String::new();
    for &c in s.as_bytes() {
        if c.is_ascii_alphanumeric() || b"-._~".contains(&c) || keep.as_bytes().contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{:02X}", c));
        }
    }
    out
}

pub(crate) fn is_rev(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|c| c.is_ascii_hexdigit())
}

const INT_ATTRS: &[&str] = &["lastModified", "revCount", "revcount"];
const BOOL_ATTRS: &[&str] = &[
    "submodules",
    "shallow",
    "allRefs",
    "exportIgnore",
    "lfs",
    "verifyCommit",
];

fn query_attrs(query: &str, attrs: &mut FAttrs) -> EvalResult<()> {
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let k = percent_decode(k);
        let v = percent_decode(v);
        let a = if INT_ATTRS.contains(&k.as_str()) {
            match v.parse::<u64>() {
                Ok(n) => Attr::Int(n),
                Err(_) => return err(format!("invalid integer '{}' for attribute '{}'", v, k)),
            }
        } else if BOOL_ATTRS.contains(&k.as_str()) {
            Attr::Bool(v == "1" || v == "true")
        } else {
            Attr::Str(v)
        };
        attrs.insert(k, a);
    }
    Ok(())
}

pub(crate) fn parse(s: &str) -> EvalResult<FAttrs> {
    let mut attrs = FAttrs::new();
    let (main, query) = match s.split_once('?') {
        Some((m, q)) => (m, q),
        None => (s, ""),
    };
    let main = main.split('#').next().unwrap_or(main);
    let bad = || err(format!("'{}' is not a valid flake reference", s));
    if let Some((scheme, rest)) = main.split_once(':') {
        match scheme {
            "github" | "gitlab" | "sourcehut" => {
                let parts: Vec<&str> = rest.split('/').collect();
                if parts.len() < 2 || parts[0].is_empty() || parts[1].is_empty() {
                    return err(format!("URL '{}' is invalid", s));
                }
                attrs.insert("type".into(), Attr::Str(scheme.into()));
                attrs.insert("owner".into(), Attr::Str(percent_decode(parts[0])));
                attrs.insert("repo".into(), Attr::Str(percent_decode(parts[1])));
                if parts.len() > 2 {
                    let rr = percent_decode(&parts[2..].join("/"));
                    if is_rev(&rr) {
                        attrs.insert("rev".into(), Attr::Str(rr));
                    } else {
                        attrs.insert("ref".into(), Attr::Str(rr));
                    }
                }
                query_attrs(query, &mut attrs)?;
            }
            "path" => {
                attrs.insert("type".into(), Attr::Str("path".into()));
                attrs.insert("path".into(), Attr::Str(percent_decode(rest)));
                query_attrs(query, &mut attrs)?;
            }
            "flake" => return parse_indirect(rest, query, s),
            _ if scheme.starts_with("git+") => {
                attrs.insert("type".into(), Attr::Str("git".into()));
                let transport = &scheme[4..];
                let url = format!("{}:{}", transport, rest);
                attrs.insert("url".into(), Attr::Str(url));
                query_attrs(query, &mut attrs)?;
            }
            "https" | "http" | "file" => {
                let ty = if [
                    ".zip", ".tar", ".tgz", ".tar.gz", ".tar.xz", ".tar.bz2", ".tar.zst",
                ]
                .iter()
                .any(|e| main.ends_with(e))
                {
                    "tarball"
                } else {
                    "file"
                };
                attrs.insert("type".into(), Attr::Str(ty.into()));
                attrs.insert("url".into(), Attr::Str(main.to_string()));
                query_attrs(query, &mut attrs)?;
            }
            _ if scheme.starts_with("tarball+") || scheme.starts_with("file+") => {
                let (ty, transport) = scheme.split_once('+').expect("has +");
                attrs.insert("type".into(), Attr::Str(ty.into()));
                attrs.insert("url".into(), Attr::Str(format!("{}:{}", transport, rest)));
                query_attrs(query, &mut attrs)?;
            }
            _ => return bad(),
        }
        return Ok(attrs);
    }
    if main.starts_with('/') || main.starts_with('.') {
        attrs.insert("type".into(), Attr::Str("path".into()));
        attrs.insert("path".into(), Attr::Str(main.to_string()));
        query_attrs(query, &mut attrs)?;
        return Ok(attrs);
    }
    parse_indirect(main, query, s)
}

fn parse_indirect(rest: &str, query: &str, whole: &str) -> EvalResult<FAttrs> {
    let mut attrs = FAttrs::new();
    let parts: Vec<&str> = rest.split('/').collect();
    let valid_id = |id: &str| {
        !id.is_empty()
            && id.as_bytes()[0].is_ascii_alphabetic()
            && id
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
    };
    if parts.is_empty() || !valid_id(parts[0]) || parts.len() > 3 {
        return err(format!("'{}' is not a valid flake reference", whole));
    }
    attrs.insert("type".into(), Attr::Str("indirect".into()));
    attrs.insert("id".into(), Attr::Str(parts[0].into()));
    match parts.len() {
        2 => {
            let k = if is_rev(parts[1]) { "rev" } else { "ref" };
            attrs.insert(k.into(), Attr::Str(parts[1].into()));
        }
        3 => {
            if !is_rev(parts[2]) {
                return err(format!(
                    "in flake URL '{}', '{}' is not a commit hash",
                    whole, parts[2]
                ));
            }
            attrs.insert("ref".into(), Attr::Str(parts[1].into()));
            attrs.insert("rev".into(), Attr::Str(parts[2].into()));
        }
        _ => {}
    }
    query_attrs(query, &mut attrs)?;
    Ok(attrs)
}

/// `base` (which may already carry a query) with `extra` merged into its
/// query, keys sorted as in CppNix's `ParsedURL`.
fn with_query(base: &str, extra: BTreeMap<String, String>) -> String {
    let (path, existing) = match base.split_once('?') {
        Some((p, q)) => (p, q),
        None => (base, ""),
    };
    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for kv in existing.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        query.insert(percent_decode(k), percent_decode(v));
    }
    query.extend(extra);
    if query.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k, ""),
                percent_encode(v, "/:@!$'()*+,;")
            )
        })
        .collect();
    format!("{}?{}", path, q.join("&"))
}

fn get_str(attrs: &FAttrs, k: &str) -> Option<String> {
    attrs.get(k).map(|a| a.render())
}

pub(crate) fn to_string(attrs: &FAttrs) -> EvalResult<String> {
    let Some(Attr::Str(ty)) = attrs.get("type") else {
        return err("attribute 'type' is missing in input attribute set");
    };
    let need = |k: &str| -> EvalResult<String> {
        match get_str(attrs, k) {
            Some(s) => Ok(s),
            None => err(format!(
                "attribute '{}' is missing in input attribute set",
                k
            )),
        }
    };
    let mut query = BTreeMap::new();
    let copy = |query: &mut BTreeMap<String, String>, k: &str| {
        if let Some(v) = get_str(attrs, k) {
            query.insert(k.to_string(), v);
        }
    };
    copy(&mut query, "dir");
    let base = match ty.as_str() {
        "github" | "gitlab" | "sourcehut" => {
            let mut s = format!("{}:{}/{}", ty, need("owner")?, need("repo")?);
            if let Some(r) = get_str(attrs, "ref").or_else(|| get_str(attrs, "rev")) {
                s.push('/');
                s.push_str(&r);
            }
            copy(&mut query, "narHash");
            copy(&mut query, "host");
            s
        }
        "path" => {
            for (k, v) in attrs {
                if !matches!(k.as_str(), "type" | "path" | "__final") {
                    query.insert(k.clone(), v.render());
                }
            }
            format!("path:{}", need("path")?)
        }
        "git" => {
            let url = need("url")?;
            copy(&mut query, "rev");
            copy(&mut query, "ref");
            for k in [
                "shallow",
                "lfs",
                "submodules",
                "exportIgnore",
                "verifyCommit",
            ] {
                if matches!(attrs.get(k), Some(Attr::Bool(true))) {
                    query.insert(k.to_string(), "1".to_string());
                }
            }
            copy(&mut query, "keytype");
            copy(&mut query, "publicKey");
            if url.starts_with("git:") {
                url
            } else {
                format!("git+{}", url)
            }
        }
        "tarball" | "file" => {
            copy(&mut query, "narHash");
            need("url")?
        }
        "indirect" => {
            let mut s = format!("flake:{}", need("id")?);
            for k in ["ref", "rev"] {
                if let Some(r) = get_str(attrs, k) {
                    s.push('/');
                    s.push_str(&r);
                }
            }
            s
        }
        other => return err(format!("unsupported input type '{}'", other)),
    };
    Ok(with_query(&base, query))
}

fn parse_flake_ref(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = arg_ctx(
        vm.force_str_no_ctx(&a[0]),
        "while evaluating the argument passed to builtins.parseFlakeRef",
    )?;
    let attrs = parse(&s)?;
    let entries = attrs
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Attr::Str(s) => Value::string(s),
                Attr::Int(n) => Value::Int(n as i64),
                Attr::Bool(b) => Value::Bool(b),
            };
            (Symbol::intern(&k), v)
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(entries)))
}

fn flake_ref_to_string(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let input = arg_ctx(
        vm.force_attrs(&a[0]),
        "while evaluating the argument passed to builtins.flakeRefToString",
    )?;
    let mut attrs = FAttrs::new();
    for (name, v) in input.sorted_by_name() {
        let v = vm.force(v.clone())?;
        let a = match &v {
            Value::Int(n) => {
                if *n < 0 {
                    return err(format!(
                        "negative value given for flake ref attr {}: {}",
                        name, n
                    ));
                }
                Attr::Int(*n as u64)
            }
            Value::Bool(b) => Attr::Bool(*b),
            Value::String(s) => Attr::Str(s.to_str().into_owned()),
            other => {
                return err(format!(
                    "flake reference attribute sets may only contain integers, Booleans, and strings, but attribute '{}' is {}",
                    name,
                    other.show_type()
                ))
            }
        };
        attrs.insert(name.as_str().to_string(), a);
    }
    Ok(Value::string(to_string(&attrs)?))
}
