//! The derivations an expression holds, found as CppNix's `getDerivations`
//! finds them for `nix-env -qa` (its `get-drvs.cc`), and what `-q` asks of
//! each (its `PackageInfo`).
//!
//! The walk: the value is auto-called with the `--arg`s; a derivation is
//! one package; a set is walked in name order, taking each attribute whose
//! name is an attribute-path component: a derivation is a package, a set is
//! walked into only when its `recurseForDerivations` is true; a list's
//! elements are all walked into. A `throw` or failed `assert` while looking
//! at one attribute skips it (CppNix's `ThrownError` is an `AssertionError`,
//! which nix-env ignores); any other error ends the walk, with the frame
//! "while evaluating the attribute 'x'". The same set reached twice (an
//! alias) is one package, found at the first path.

use crate::instantiate::auto_call;
use nixvm::value::{Attrs, Value, View};
use nixvm::{ErrorKind, EvalError, Evaluator, Pos};
use nixvm_compiler::symbol::known;
use nixvm_compiler::Symbol;
use rustc_hash::FxHashSet;

type Res<T> = Result<T, Box<EvalError>>;

/// One derivation found: where, and the set itself.
pub struct PackageInfo {
    pub attr_path: String,
    pub attrs: Attrs,
    pub name: String,
}

/// Walks values, collecting their derivations.
pub struct Walk<'a> {
    pub ev: &'a mut Evaluator,
    pub auto_args: &'a [(Symbol, Value)],
    /// The sets already taken (by address: they are kept alive in `out`).
    done: FxHashSet<*const ()>,
    pub out: Vec<PackageInfo>,
    recurse: Symbol,
}

impl<'a> Walk<'a> {
    pub fn new(ev: &'a mut Evaluator, auto_args: &'a [(Symbol, Value)]) -> Walk<'a> {
        Walk {
            ev,
            auto_args,
            done: FxHashSet::default(),
            out: Vec::new(),
            recurse: Symbol::intern("recurseForDerivations"),
        }
    }

    fn pos(&self, p: nixvm::value::PosIdx) -> Option<Pos> {
        self.ev.vm.pos(p)
    }

    /// CppNix's `getDerivation`: takes `v` if it is a derivation; true if it
    /// is something else (to be walked into, perhaps).
    fn take(&mut self, v: &Value, path: &str) -> Res<bool> {
        match self.take_inner(v, path) {
            Err(e) if e.catchable() => Ok(false),
            r => r,
        }
    }

    fn take_inner(&mut self, v: &Value, path: &str) -> Res<bool> {
        let v = self.ev.vm.force(v.clone())?;
        let View::Attrs(a) = v.view() else {
            return Ok(true);
        };
        if !is_derivation(self.ev, &a)? {
            return Ok(true);
        }
        if !self.done.insert(a.as_ptr()) {
            return Ok(false);
        }
        let name = query_name(self.ev, &a)?;
        self.out.push(PackageInfo {
            attr_path: path.to_string(),
            attrs: a.clone(),
            name,
        });
        Ok(false)
    }

    /// CppNix's `getDerivations`.
    pub fn walk(&mut self, v: &Value, prefix: &str) -> Res<()> {
        let v = auto_call(self.ev, v.clone(), self.auto_args)?;
        if !self.take(&v, prefix)? {
            return Ok(());
        }
        match v.view() {
            View::Attrs(a) => {
                let combine = a.get(Symbol::intern("_combineChannels")).is_some();
                let mut attrs: Vec<(Symbol, nixvm::value::PosIdx, Value)> = a
                    .attr_iter()
                    .map(|at| (at.name, at.pos, at.value.clone()))
                    .collect();
                attrs.sort_by(|x, y| x.0.as_str().cmp(y.0.as_str()));
                for (name, pos, value) in attrs {
                    let name = name.as_str();
                    if let Err(mut e) = self.walk_attr(name, &value, prefix, combine) {
                        e.add_trace(
                            format!("while evaluating the attribute '{name}'"),
                            self.pos(pos),
                        );
                        return Err(e);
                    }
                }
                Ok(())
            }
            View::List(l) => {
                let items: Vec<Value> = l.iter().cloned().collect();
                for (n, elem) in items.iter().enumerate() {
                    let path = add_to_path(prefix, &n.to_string());
                    if self.take(elem, &path)? {
                        self.walk(elem, &path)?;
                    }
                }
                Ok(())
            }
            _ => Err(EvalError::new(
                ErrorKind::Type,
                "expression does not evaluate to a derivation (or a set or list of those)",
            )),
        }
    }

    /// One attribute of a walked set, walked whole (as the loop in `walk`
    /// does, without the frame it adds).
    pub fn walk_attr(&mut self, name: &str, value: &Value, prefix: &str, combine: bool) -> Res<()> {
        if !is_attr_path_component(name) {
            return Ok(());
        }
        let path = add_to_path(prefix, name);
        if combine {
            return self.walk(value, &path);
        }
        if let Some(s) = self.attr_to_recurse(value, &path)? {
            self.walk(&Value::attrs(s), &path)?;
        }
        Ok(())
    }

    /// An attribute's first step: take it if it is a derivation; if it is a
    /// set whose `recurseForDerivations` is true, that set (to walk next).
    pub fn attr_to_recurse(&mut self, value: &Value, path: &str) -> Res<Option<Attrs>> {
        if !self.take(value, path)? {
            return Ok(None);
        }
        // `take` forced it; this reads the value.
        let v = self.ev.vm.force(value.clone())?;
        let View::Attrs(s) = v.view() else {
            return Ok(None);
        };
        let Some(r) = s.get_attr(self.recurse) else {
            return Ok(None);
        };
        let (rv, rpos) = (r.value.clone(), self.pos(r.pos));
        let recurse = self.ev.vm.force_bool_at(
            &rv,
            rpos,
            "while evaluating the attribute `recurseForDerivations`",
        )?;
        Ok(recurse.then(|| s.clone()))
    }

    /// `take` for the workers' top step.
    pub fn take_pub(&mut self, v: &Value, path: &str) -> Res<bool> {
        self.take(v, path)
    }
}

fn add_to_path(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// `[A-Za-z_][A-Za-z0-9_+-]*`: only such names are walked into.
pub fn is_attr_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    match b.first() {
        Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {}
        _ => return false,
    }
    b[1..]
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'+'))
}

/// CppNix's `isDerivation`: `type` is the string "derivation".
pub fn is_derivation(ev: &mut Evaluator, a: &Attrs) -> Res<bool> {
    match a.get(known::TYPE) {
        Some(t) => {
            let t = ev.vm.force(t.clone())?;
            Ok(matches!(&t.view(), View::String(s) if s.as_bytes() == b"derivation"))
        }
        None => Ok(false),
    }
}

pub fn query_name(ev: &mut Evaluator, a: &Attrs) -> Res<String> {
    let Some(n) = a.get(known::NAME) else {
        return Err(EvalError::new(ErrorKind::Type, "derivation name missing"));
    };
    ev.vm.force_str_no_ctx_at(
        &n.clone(),
        None,
        "while evaluating the 'name' attribute of a derivation",
    )
}

/// What `-q` reads of a package.
pub struct Query<'a> {
    pub ev: &'a mut Evaluator,
}

impl Query<'_> {
    fn attr(&self, a: &Attrs, name: Symbol) -> Option<(Value, Option<Pos>)> {
        a.get_attr(name)
            .map(|at| (at.value.clone(), self.ev.vm.pos(at.pos)))
    }

    fn string_no_ctx(&mut self, v: &Value, pos: Option<Pos>, msg: &str) -> Res<String> {
        self.ev.vm.force_str_no_ctx_at(v, pos, msg)
    }

    pub fn system(&mut self, a: &Attrs) -> Res<String> {
        match self.attr(a, Symbol::intern("system")) {
            None => Ok("unknown".into()),
            Some((v, pos)) => self.string_no_ctx(
                &v,
                pos,
                "while evaluating the 'system' attribute of a derivation",
            ),
        }
    }

    pub fn output_name(&mut self, a: &Attrs) -> Res<String> {
        match self.attr(a, known::OUTPUT_NAME) {
            None => Ok(String::new()),
            Some((v, _)) => {
                self.string_no_ctx(&v, None, "while evaluating the output name of a derivation")
            }
        }
    }

    /// A store path, as CppNix's `coerceToStorePath`.
    fn store_path(&mut self, v: &Value, pos: Option<Pos>, msg: &str) -> Res<String> {
        let add = |mut e: Box<EvalError>| {
            e.add_trace(msg, pos);
            e
        };
        let bytes = self.ev.coerce_to_string(v).map_err(add)?;
        let s = String::from_utf8_lossy(&bytes).into_owned();
        let dir = &self.ev.vm.settings.store_dir;
        let base = s
            .strip_prefix(dir.as_str())
            .and_then(|r| r.strip_prefix('/'));
        match base {
            Some(b) if !b.is_empty() && !b.contains('/') => Ok(s),
            _ => Err(add(EvalError::located(
                ErrorKind::Other,
                format!("path '{s}' is not in the Nix store"),
                pos,
            ))),
        }
    }

    pub fn drv_path(&mut self, a: &Attrs) -> Res<Option<String>> {
        match self.attr(a, known::DRV_PATH) {
            None => Ok(None),
            Some((v, pos)) => {
                let msg = "while evaluating the 'drvPath' attribute of a derivation";
                let p = self.store_path(&v, pos, msg)?;
                if !p.ends_with(".drv") {
                    let mut e = EvalError::new(
                        ErrorKind::Other,
                        format!("path '{p}' is not a valid derivation path"),
                    );
                    e.add_trace(msg, pos);
                    return Err(e);
                }
                Ok(Some(p))
            }
        }
    }

    pub fn out_path(&mut self, a: &Attrs) -> Res<String> {
        match self.attr(a, known::OUT_PATH) {
            None => Err(EvalError::new(
                ErrorKind::Other,
                "derivation does not have attribute 'outPath'",
            )),
            Some((v, pos)) => {
                self.store_path(&v, pos, "while evaluating the output path of a derivation")
            }
        }
    }

    /// The outputs by name (sorted, as CppNix's `std::map`), with their
    /// paths when `with_paths`.
    pub fn outputs(&mut self, a: &Attrs, with_paths: bool) -> Res<Vec<(String, Option<String>)>> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        let put = |out: &mut Vec<(String, Option<String>)>, k: String, p| {
            if !out.iter().any(|(x, _)| *x == k) {
                out.push((k, p));
            }
        };
        match self.attr(a, known::OUTPUTS) {
            Some((v, pos)) => {
                let l = self.ev.vm.force_list_at(
                    &v,
                    pos,
                    "while evaluating the 'outputs' attribute of a derivation",
                )?;
                for elem in l.iter() {
                    let name = self.string_no_ctx(
                        elem,
                        pos,
                        "while evaluating the name of an output of a derivation",
                    )?;
                    if !with_paths {
                        put(&mut out, name, None);
                        continue;
                    }
                    let Some((ov, _)) = self.attr(a, Symbol::intern(&name)) else {
                        continue;
                    };
                    let os = self.ev.vm.force_attrs_at(
                        &ov,
                        pos,
                        "while evaluating an output of a derivation",
                    )?;
                    let Some((pv, ppos)) = self.attr(&os, known::OUT_PATH) else {
                        continue;
                    };
                    let p = self.store_path(
                        &pv,
                        ppos,
                        "while evaluating an output path of a derivation",
                    )?;
                    put(&mut out, name, Some(p));
                }
            }
            None => {
                let p = if with_paths {
                    Some(self.out_path(a)?)
                } else {
                    None
                };
                out.push(("out".into(), p));
            }
        }
        out.sort_by(|x, y| x.0.cmp(&y.0));
        Ok(out)
    }

    fn meta(&mut self, a: &Attrs) -> Res<Option<Attrs>> {
        match self.attr(a, Symbol::intern("meta")) {
            None => Ok(None),
            Some((v, pos)) => Ok(Some(self.ev.vm.force_attrs_at(
                &v,
                pos,
                "while evaluating the 'meta' attribute of a derivation",
            )?)),
        }
    }

    /// CppNix's `checkMeta`: strings, numbers, Booleans, and lists and sets
    /// of those (a set with an `outPath` is not).
    fn check_meta(&mut self, v: &Value) -> Res<bool> {
        let v = self.ev.vm.force(v.clone())?;
        match v.view() {
            View::List(l) => {
                let items: Vec<Value> = l.iter().cloned().collect();
                for x in &items {
                    if !self.check_meta(x)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            View::Attrs(s) => {
                if s.get(known::OUT_PATH).is_some() {
                    return Ok(false);
                }
                let items: Vec<Value> = s.iter().map(|(_, x)| x.clone()).collect();
                for x in &items {
                    if !self.check_meta(x)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            View::Int(_) | View::Bool(_) | View::String(_) | View::Float(_) => Ok(true),
            _ => Ok(false),
        }
    }

    /// The meta attribute `name` if it is valid meta data.
    pub fn meta_value(&mut self, a: &Attrs, name: &str) -> Res<Option<Value>> {
        let Some(m) = self.meta(a)? else {
            return Ok(None);
        };
        let Some(v) = m.get(Symbol::intern(name)).cloned() else {
            return Ok(None);
        };
        Ok(if self.check_meta(&v)? { Some(v) } else { None })
    }

    pub fn meta_names(&mut self, a: &Attrs) -> Res<Vec<String>> {
        let mut names: Vec<String> = match self.meta(a)? {
            Some(m) => m.iter().map(|(k, _)| k.as_str().to_string()).collect(),
            None => Vec::new(),
        };
        names.sort();
        Ok(names)
    }

    pub fn meta_string(&mut self, a: &Attrs, name: &str) -> Res<String> {
        Ok(match self.meta_value(a, name)? {
            Some(v) => match self.ev.vm.force(v)?.view() {
                View::String(s) => s.to_str().into_owned(),
                _ => String::new(),
            },
            None => String::new(),
        })
    }
}
