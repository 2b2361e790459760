//! A CI-style walk: visit every derivation of a package set (recursing
//! where `recurseForDerivations` is true, as `nix-env -qa` and Hydra do),
//! and collect each job's name and `.drv` path or its error, without one
//! failing job stopping the others.
//!
//!     cargo run --release -p nixvm --example ci_walk

use nixvm::{Evaluator, Value, View};
use std::path::Path;

const PACKAGES: &str = r#"
let
  mk = name: derivation { inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo > $out" ]; };
in {
  hello = mk "hello-2.12";
  broken = assert 1 == 2; mk "broken";
  tools = {
    recurseForDerivations = true;
    grep = mk "grep-3.11";
    missing = throw "tools.missing was removed";
  };
  notRecursed = { inner = mk "inner"; };
  version = "1.0";
}
"#;

/// One job: its attribute path and its `.drv` path or error.
pub type Job = (String, Result<String, String>);

fn walk(ev: &mut Evaluator, set: &Value, path: &str, out: &mut Vec<Job>) {
    let children: Vec<(String, Value)> = match set.view() {
        View::Attrs(a) => (a.sorted_by_name().into_iter())
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        _ => return,
    };
    for (name, child) in children {
        let at = if path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        };
        let c = match ev.force(child) {
            Ok(c) => c,
            Err(e) => {
                out.push((at, Err(e.msg.clone())));
                continue;
            }
        };
        if !matches!(c.view(), View::Attrs(_)) {
            continue;
        }
        let is = |ev: &mut Evaluator, name: &str, want: &str| {
            ev.get(&c, name)
                .map(|v| ev.print(&v) == want)
                .unwrap_or(false)
        };
        if is(ev, "type", "\"derivation\"") {
            let drv = ev
                .get(&c, "drvPath")
                .and_then(|d| ev.coerce_to_string(&d))
                .map(|b| String::from_utf8_lossy(&b).into_owned());
            out.push((at, drv.map_err(|e| e.msg.clone())));
        } else if is(ev, "recurseForDerivations", "true") {
            walk(ev, &c, &at, out);
        }
    }
}

/// The jobs of the package set above.
pub fn run() -> Vec<Job> {
    let mut ev = Evaluator::new();
    let mut out = Vec::new();
    match ev.eval_str(PACKAGES, Path::new("/")) {
        Ok(v) => walk(&mut ev, &v, "", &mut out),
        Err(e) => out.push((String::new(), Err(ev.render_error(&e)))),
    }
    out
}

#[allow(dead_code)]
fn main() {
    for (attr, r) in run() {
        match r {
            Ok(drv) => println!("{attr}\t{drv}"),
            Err(e) => println!("{attr}\terror: {e}"),
        }
    }
}
