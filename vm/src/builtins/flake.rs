//! `parseFlakeRef` and `flakeRefToString` for the common flake reference
//! schemes (github/gitlab/sourcehut, path, git+..., indirect, tarball/file).

use super::Registry;
use crate::error::*;
use crate::value::View;
use crate::value::*;
use crate::vm::Vm;
use nixvm_compiler::Symbol;
use std::collections::BTreeMap;
use std::rc::Rc;

pub fn register(r: &mut Registry) {
    r.prim("parseFlakeRef", 1, parse_flake_ref);
    r.prim("flakeRefToString", 1, flake_ref_to_string);
    r.prim("getFlake", 1, get_flake);
}

fn arg_ctx<T>(r: EvalResult<T>, msg: &str) -> EvalResult<T> {
    r.map_err(|mut e| {
        e.trace.push(TraceEntry {
            always: false,
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
                percent_encode(k, ":@/?"),
                percent_encode(v, ":@/?")
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
    let input = vm.force_attrs_ctx(
        &a[0],
        "while evaluating the argument passed to builtins.flakeRefToString",
    )?;
    let mut attrs = FAttrs::new();
    for (name, v) in input.sorted_by_name() {
        let v = vm.force(v.clone())?;
        let a = match &v.view() {
            View::Int(n) => {
                if *n < 0 {
                    return err(format!(
                        "negative value given for flake ref attr {}: {}",
                        name, n
                    ));
                }
                Attr::Int(*n as u64)
            }
            View::Bool(b) => Attr::Bool(*b),
            View::String(s) => Attr::Str(s.to_str().into_owned()),
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

// ---- getFlake -------------------------------------------------------------------

/// Evaluates a flake from its lock file: every node's source is fetched
/// (lazily) with `fetch`, except nodes in `overrides` (the root, and
/// relative inputs locked just now), whose source info is given; a node's
/// outputs get its inputs' results and `self`. The same construction as
/// CppNix's call-flake.
const CALL_FLAKE_NIX: &str = r#"
lockJSON: overrides: fetch:
let
  lock = builtins.fromJSON lockJSON;
  nodeOf = spec: if builtins.isList spec then follow lock.root spec else spec;
  follow = name: path:
    if path == [ ] then name
    else follow (nodeOf lock.nodes.${name}.inputs.${builtins.head path}) (builtins.tail path);
  build = key: node:
    let
      overridden = overrides ? ${key};
      locked = node.locked or { };
      relative = (locked.type or null) == "path" && builtins.substring 0 1 locked.path != "/";
      parent = nodes.${follow lock.root node.parent};
      sourceInfo =
        if overridden then overrides.${key}.sourceInfo
        else if relative then parent.sourceInfo
        else fetch (node.info or { } // removeAttrs locked [ "dir" ]);
      dir = overrides.${key}.dir or locked.dir or "";
      outPath =
        if !overridden && relative then parent.outPath + (if locked.path == "" then "" else "/" + locked.path)
        else sourceInfo.outPath + (if dir == "" then "" else "/" + dir);
      flake = import (outPath + "/flake.nix");
      inputs = builtins.mapAttrs (_: spec: nodes.${nodeOf spec}.result) (node.inputs or { });
      outputs = flake.outputs (inputs // { self = result; });
      result = outputs // sourceInfo // {
        inherit outPath inputs outputs sourceInfo;
        _type = "flake";
      };
    in
    {
      inherit outPath sourceInfo;
      result =
        if node.flake or true then
          assert builtins.isFunction flake.outputs; result
        else
          sourceInfo // { inherit sourceInfo outPath; };
    };
  nodes = builtins.mapAttrs build lock.nodes;
in
nodes.${lock.root}.result
"#;

/// The compiled call-flake helper, made once per evaluation.
#[derive(Default)]
struct CallFlakeFn(Option<Value>);

impl crate::state::Extension for CallFlakeFn {
    fn roots(&self, f: &mut dyn FnMut(&Value)) {
        self.0.iter().for_each(f);
    }
}

/// A declared flake input.
struct DeclaredInput {
    name: String,
    reference: Option<FAttrs>,
    follows: Option<Vec<String>>,
    is_flake: bool,
}

fn attr_of(v: &Value) -> Option<Attr> {
    match &v.view() {
        View::String(s) => Some(Attr::Str(s.to_str().into_owned())),
        View::Int(n) if *n >= 0 => Some(Attr::Int(*n as u64)),
        View::Bool(b) => Some(Attr::Bool(*b)),
        _ => None,
    }
}

/// The flake reference of a string given as a flake (`getFlake`, input
/// URLs): input attributes and the subdirectory. A bare path inside a Git
/// work tree is a `git+file` reference to that repository.
fn flake_ref_input(s: &str, keep_relative: bool) -> EvalResult<(FAttrs, String)> {
    let mut attrs = parse(s)?;
    let mut dir = match attrs.remove("dir") {
        Some(Attr::Str(d)) => d,
        _ => String::new(),
    };
    let bare_path =
        !s.starts_with("path:") && matches!(attrs.get("type"), Some(Attr::Str(t)) if t == "path");
    if let Some(Attr::Str(p)) = attrs.get("path").cloned() {
        if !p.starts_with('/') {
            if keep_relative {
                return Ok((attrs, dir));
            }
            let base = std::env::current_dir()
                .map(|d| d.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "/".into());
            let abs = nixvm_compiler::parser::canon_path(&format!("{base}/{p}"));
            attrs.insert("path".into(), Attr::Str(abs));
        }
    }
    if bare_path {
        if let Some(Attr::Str(p)) = attrs.get("path").cloned() {
            let mut cur = std::path::PathBuf::from(&p);
            loop {
                if cur.join(".git").exists() {
                    let root = cur.to_string_lossy().into_owned();
                    let rel = p
                        .strip_prefix(&root)
                        .unwrap_or("")
                        .trim_start_matches('/')
                        .to_string();
                    let mut g = FAttrs::new();
                    g.insert("type".into(), Attr::Str("git".into()));
                    g.insert("url".into(), Attr::Str(format!("file://{root}")));
                    if dir.is_empty() {
                        dir = rel;
                    }
                    return Ok((g, dir));
                }
                if !cur.pop() {
                    break;
                }
            }
        }
    }
    Ok((attrs, dir))
}

/// The inputs a flake declares: its `inputs` attribute and the formals of
/// `outputs` (other than `self`), which refer to the registry.
fn declared_inputs(vm: &mut Vm, flake: &Attrs) -> EvalResult<Vec<DeclaredInput>> {
    let mut out: Vec<DeclaredInput> = Vec::new();
    if let Some(inputs) = flake.get(Symbol::intern("inputs")).cloned() {
        let inputs = vm.force_attrs(&inputs)?;
        for (sym, v) in inputs.sorted_by_name() {
            let name = sym.as_str().to_string();
            let spec = vm.force_attrs(v)?;
            let mut reference = None;
            let mut follows = None;
            let mut is_flake = true;
            let mut ref_attrs = FAttrs::new();
            for (k, val) in spec.sorted_by_name() {
                let val = vm.force(val.clone())?;
                match k.as_str() {
                    "url" => {
                        let url = vm.force_str_no_ctx(&val)?;
                        reference = Some(flake_ref_input(&url, true)?);
                    }
                    "flake" => is_flake = vm.force_bool(&val)?,
                    "follows" => {
                        let f = vm.force_str_no_ctx(&val)?;
                        follows = Some(
                            f.split('/')
                                .filter(|c| !c.is_empty())
                                .map(str::to_string)
                                .collect(),
                        );
                    }
                    "inputs" => {}
                    other => match attr_of(&val) {
                        Some(a) => {
                            ref_attrs.insert(other.to_string(), a);
                        }
                        None => {
                            return err(format!(
                                "flake input attribute '{other}' is {} while a string, Boolean, or integer is expected",
                                val.show_type()
                            ))
                        }
                    },
                }
            }
            let reference = match reference {
                Some((mut a, dir)) => {
                    a.extend(ref_attrs);
                    if !dir.is_empty() {
                        a.insert("dir".into(), Attr::Str(dir));
                    }
                    Some(a)
                }
                None if !ref_attrs.is_empty() => Some(ref_attrs),
                None if follows.is_none() => {
                    let mut a = FAttrs::new();
                    a.insert("type".into(), Attr::Str("indirect".into()));
                    a.insert("id".into(), Attr::Str(name.clone()));
                    Some(a)
                }
                None => None,
            };
            if reference.is_some() && follows.is_some() {
                return err("flake input has both a flake reference and a follows attribute");
            }
            out.push(DeclaredInput {
                name,
                reference,
                follows,
                is_flake,
            });
        }
    }
    let Some(outputs) = flake.get(Symbol::intern("outputs")).cloned() else {
        return Ok(out);
    };
    let outputs = vm.force(outputs)?;
    if let View::Lambda(c) = &outputs.view() {
        if let Some(f) = c.proto.formals() {
            for formal in &f.formals {
                let n = formal.name.as_str().to_string();
                if n != "self" && !out.iter().any(|d| d.name == n) {
                    let mut a = FAttrs::new();
                    a.insert("type".into(), Attr::Str("indirect".into()));
                    a.insert("id".into(), Attr::Str(n.clone()));
                    out.push(DeclaredInput {
                        name: n,
                        reference: Some(a),
                        follows: None,
                        is_flake: true,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn attrs_to_json(a: &FAttrs) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (k, v) in a {
        m.insert(
            k.clone(),
            match v {
                Attr::Str(s) => serde_json::Value::String(s.clone()),
                Attr::Int(n) => serde_json::Value::from(*n),
                Attr::Bool(b) => serde_json::Value::Bool(*b),
            },
        );
    }
    serde_json::Value::Object(m)
}

/// Read and check a flake's `flake.nix` at `dir` (a store path, maybe with a subdirectory).
fn read_flake(vm: &mut Vm, dir: &str) -> EvalResult<Attrs> {
    let file = format!("{dir}/flake.nix");
    if !crate::storeglue::physical_path(vm, &file).exists() {
        return err(format!("path '{file}' does not exist"));
    }
    let v = vm.import_path(std::path::Path::new(&file))?;
    let flake = vm.force_attrs(&v)?;
    if flake.get(Symbol::intern("outputs")).is_none() {
        return err(format!("flake '{dir}' lacks attribute 'outputs'"));
    }
    Ok(flake)
}

struct Locker {
    nodes: serde_json::Map<String, serde_json::Value>,
    added: Vec<String>,
    /// Relative inputs locked just now: node key and the directory they are in.
    relative: Vec<(String, String)>,
}

impl Locker {
    fn fresh_key(&self, name: &str) -> String {
        if !self.nodes.contains_key(name) {
            return name.to_string();
        }
        (2..)
            .map(|i| format!("{name}_{i}"))
            .find(|k| !self.nodes.contains_key(k))
            .unwrap_or_else(|| name.to_string())
    }

    /// Lock the inputs of `node_key` (a flake at `dir`) that its lock entry lacks.
    fn lock_inputs(
        &mut self,
        vm: &mut Vm,
        node_key: &str,
        flake: &Attrs,
        dir: &str,
        path: &[String],
        depth: usize,
    ) -> EvalResult<()> {
        if depth > 32 {
            return err("flake inputs are nested too deeply");
        }
        let declared = declared_inputs(vm, flake)?;
        for d in declared {
            let have = self
                .nodes
                .get(node_key)
                .and_then(|n| n.get("inputs"))
                .and_then(|i| i.get(&d.name))
                .is_some();
            if have {
                continue;
            }
            let mut attr_path = path.to_vec();
            attr_path.push(d.name.clone());
            let spec = if let Some(f) = &d.follows {
                serde_json::Value::from(f.clone())
            } else {
                let Some(mut reference) = d.reference.clone() else {
                    continue;
                };
                let sub = match reference.remove("dir") {
                    Some(Attr::Str(s)) => s,
                    _ => String::new(),
                };
                super::fetchers::check_input(&mut reference)?;
                let original = attrs_to_json(&reference);
                let relative = matches!(reference.get("type"), Some(Attr::Str(t)) if t == "path")
                    && matches!(reference.get("path"), Some(Attr::Str(p)) if !p.starts_with('/'));
                let key = self.fresh_key(&d.name);
                let (locked, target_dir) = if relative {
                    let rel = match reference.get("path") {
                        Some(Attr::Str(p)) => p.clone(),
                        _ => String::new(),
                    };
                    let target = nixvm_compiler::parser::canon_path(&format!("{dir}/{rel}"));
                    self.relative.push((key.clone(), target.clone()));
                    (reference.clone(), Some(target))
                } else {
                    if vm.settings.pure_eval && !super::fetchers::input_is_locked(&reference)? {
                        return err(format!(
                            "cannot update unlocked flake input '{}' in pure mode",
                            attr_path.join("/")
                        ));
                    }
                    let (sp, mut got) = super::fetchers::fetch_input(vm, &reference)?;
                    got.remove("__final");
                    let target = if sub.is_empty() {
                        sp
                    } else {
                        format!("{sp}/{sub}")
                    };
                    (got, Some(target))
                };
                let mut locked_json = attrs_to_json(&locked);
                if !sub.is_empty() {
                    if let Some(m) = locked_json.as_object_mut() {
                        m.insert("dir".into(), serde_json::Value::String(sub.clone()));
                    }
                }
                let shown = super::fetchers::show_input(&locked);
                let date = match locked.get("lastModified") {
                    Some(Attr::Int(t)) => {
                        let d = super::fetchers::utc_date(*t as i64);
                        format!(" ({}-{}-{})", &d[0..4], &d[4..6], &d[6..8])
                    }
                    _ => String::new(),
                };
                self.added.push(format!(
                    "\u{2022} Added input '{}':\n    '{shown}'{date}",
                    attr_path.join("/")
                ));
                let mut node = serde_json::Map::new();
                node.insert("locked".into(), locked_json);
                node.insert("original".into(), original);
                if !d.is_flake {
                    node.insert("flake".into(), serde_json::Value::Bool(false));
                }
                if relative {
                    node.insert("parent".into(), serde_json::Value::from(path.to_vec()));
                }
                self.nodes
                    .insert(key.clone(), serde_json::Value::Object(node));
                if d.is_flake {
                    if let Some(t) = &target_dir {
                        let sub_flake = read_flake(vm, t)?;
                        self.lock_inputs(vm, &key, &sub_flake, t, &attr_path, depth + 1)?;
                    }
                }
                serde_json::Value::String(key)
            };
            if let Some(serde_json::Value::Object(n)) = self.nodes.get_mut(node_key) {
                let inputs = n
                    .entry("inputs")
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                if let Some(m) = inputs.as_object_mut() {
                    m.insert(d.name.clone(), spec);
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn get_flake(vm: &mut Vm, a: &mut [Value]) -> EvalResult<Value> {
    let s = arg_ctx(
        vm.force_str_no_ctx(&a[0]),
        "while evaluating the argument passed to builtins.getFlake",
    )?;
    let (mut input, dir) = flake_ref_input(&s, false)?;
    super::fetchers::check_input(&mut input)?;
    if vm.settings.pure_eval && !super::fetchers::input_is_locked(&input)? {
        return err(format!(
            "cannot call 'getFlake' on unlocked flake reference '{s}', at «none»:0 (use --impure to override)"
        ));
    }
    let (root_path, root_attrs) = super::fetchers::fetch_input(vm, &input)?;
    let source_info = super::fetchers::emit_tree_attrs(&root_path, &root_attrs, false);
    let flake_dir = if dir.is_empty() {
        root_path.clone()
    } else {
        format!("{root_path}/{dir}")
    };
    let flake = read_flake(vm, &flake_dir)?;
    let lock_file = format!("{flake_dir}/flake.lock");
    let physical = crate::storeglue::physical_path(vm, &lock_file);
    let mut lock: serde_json::Value = match std::fs::read_to_string(&physical) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            EvalError::new(
                ErrorKind::Other,
                format!("error parsing lock file '{lock_file}': {e}"),
            )
        })?,
        Err(_) => serde_json::json!({ "nodes": { "root": {} }, "root": "root", "version": 7 }),
    };
    let root_key = lock
        .get("root")
        .and_then(|r| r.as_str())
        .unwrap_or("root")
        .to_string();
    let nodes = lock
        .get("nodes")
        .and_then(|n| n.as_object())
        .cloned()
        .unwrap_or_default();
    let mut locker = Locker {
        nodes,
        added: Vec::new(),
        relative: Vec::new(),
    };
    if !locker.nodes.contains_key(&root_key) {
        locker.nodes.insert(
            root_key.clone(),
            serde_json::Value::Object(Default::default()),
        );
    }
    locker.lock_inputs(vm, &root_key, &flake, &flake_dir, &[], 0)?;
    if !locker.added.is_empty() {
        vm.warn(format!(
            "not writing modified lock file of flake '{}':\n{}",
            super::fetchers::show_input(&input),
            locker.added.join("\n")
        ))?;
    }
    if let Some(m) = lock.as_object_mut() {
        m.insert("nodes".into(), serde_json::Value::Object(locker.nodes));
    }
    let lock_json = lock.to_string();
    let f = vm.ext.get::<CallFlakeFn>().0.clone();
    let f = match f {
        Some(f) => f,
        None => {
            let thunk = vm.compile_source(CALL_FLAKE_NIX, "«nix-internal»/call-flake.nix", "/")?;
            let f = vm.force(thunk)?;
            vm.ext.get::<CallFlakeFn>().0 = Some(f.clone());
            f
        }
    };
    let override_of = |source_info: Value, dir: String| {
        Value::attrs(Attrs::from_unsorted(vec![
            (Symbol::intern("sourceInfo"), source_info),
            (Symbol::intern("dir"), Value::string(dir)),
        ]))
    };
    let mut overrides = vec![(Symbol::intern(&root_key), override_of(source_info, dir))];
    for (key, target) in std::mem::take(&mut locker.relative) {
        let mut ctx = Context::new();
        ctx.insert(Rc::from(root_path.as_str()));
        let info = Value::attrs(Attrs::from_unsorted(vec![(
            Symbol::intern("outPath"),
            Value::str_ctx(target, Some(Box::new(ctx))),
        )]));
        overrides.push((Symbol::intern(&key), override_of(info, String::new())));
    }
    let root = Value::attrs(Attrs::from_unsorted(overrides));
    let fetch = match &vm.builtins.view() {
        View::Attrs(b) => b.get(Symbol::intern("fetchTree")).cloned(),
        _ => None,
    };
    let Some(fetch) = fetch else {
        return err("builtins.fetchTree is missing");
    };
    let g = vm.call(f, Value::string(lock_json))?;
    let g = vm.call(g, root)?;
    let r = vm.call(g, fetch)?;
    vm.force(r)
}
