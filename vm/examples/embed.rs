//! Embedding nixvm in a Rust program:
//!
//!     cargo run --release -p nixvm --example embed
//!
//! It builds an evaluator with a search path (`<cfg/...>`) and a builtin of
//! its own (`builtins.hostName`), evaluates an expression, reads values out
//! of the result, calls a Nix function from Rust, and converts the whole
//! result to JSON. Errors are rendered with `Evaluator::render_error`.

use nixvm::value::{Attrs, Value};
use nixvm::{ErrorKind, EvalError, EvalResult, Evaluator, Symbol};
use std::path::Path;
use std::rc::Rc;

/// A builtin implemented in Rust: `builtins.hostName "prefix"` returns
/// `"prefix-<hostname>"`. Arguments arrive unevaluated; force what you use.
fn host_name(vm: &mut Evaluator, args: &mut [Value]) -> EvalResult<Value> {
    let prefix = vm.force(args[0].clone())?;
    let Some(prefix) = prefix.as_str() else {
        return Err(EvalError::new(
            ErrorKind::Type,
            format!(
                "builtins.hostName expects a string, got {}",
                prefix.show_type()
            ),
        ));
    };
    let host = std::fs::read_to_string("/etc/hostname").unwrap_or_else(|_| "localhost".into());
    Ok(Value::string(format!("{prefix}-{}", host.trim())))
}

const EXPR: &str = r#"
  let
    cfg = import <cfg/settings.nix>;
  in {
    inherit (cfg) name;
    host = builtins.hostName cfg.name;
    ports = map (p: p + cfg.offset) [ 80 443 ];
    double = x: x * 2;
    limits = builtins.listToAttrs (map (n: { name = "l${toString n}"; value = n * n; }) [ 1 2 3 ]);
  }
"#;

fn main() -> Result<(), String> {
    // A directory for the search path, as `-I cfg=DIR` would give.
    let dir = std::env::temp_dir().join(format!("nixvm-embed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(
        dir.join("settings.nix"),
        "{ name = \"web\"; offset = 8000; }\n",
    )
    .map_err(|e| e.to_string())?;

    let mut ev = Evaluator::builder()
        .search_path(&format!("cfg={}", dir.display()))
        .builtin("hostName", 1, Rc::new(host_name))
        .build();

    let result = run(&mut ev);
    let _ = std::fs::remove_dir_all(&dir);
    result.map_err(|e| ev.render_error(&e))
}

fn run(ev: &mut Evaluator) -> EvalResult<()> {
    // Weak head normal form: a set whose attributes are still lazy.
    let v = ev.eval_str(EXPR, Path::new("."))?;
    let attrs = v.as_attrs().expect("the expression is a set");
    let names: Vec<&str> = attrs
        .sorted_by_name()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    println!("attributes: {names:?}");

    // Reading attributes: force each before looking inside.
    let name = ev.force(v.attr("name").expect("name").clone())?;
    println!("name = {}", name.as_str().unwrap_or("?"));
    let ports = ev.force(v.attr("ports").expect("ports").clone())?;
    for p in ports.as_list().unwrap_or_default() {
        let p = ev.force(p.clone())?;
        println!("port {}", p.as_int().expect("an int"));
    }

    // Calling a Nix function from Rust.
    let double = ev.force(v.attr("double").expect("double").clone())?;
    let twenty_one = ev.call(double, Value::Int(21))?;
    println!("double 21 = {}", twenty_one.as_int().expect("an int"));

    // Building a value in Rust and passing it in: `builtins.attrNames`.
    let arg = Value::attrs(Attrs::from_unsorted(vec![
        (Symbol::intern("b"), Value::Int(1)),
        (Symbol::intern("a"), Value::str("x")),
    ]));
    let attr_names = ev.eval_str("builtins.attrNames", Path::new("."))?;
    let sorted = ev.call(attr_names, arg)?;
    let sorted = ev.force_deep(sorted)?;
    println!("attrNames = {}", ev.print(&sorted));

    // Everything at once: force deeply, print as `nix-instantiate --eval
    // --strict` would (functions print as <LAMBDA>), and as JSON without
    // the function.
    let all = ev.force_deep(v.clone())?;
    println!("strict: {}", ev.print(&all));
    let data = ev.eval_str(
        &format!("builtins.removeAttrs ({EXPR}) [ \"double\" ]"),
        Path::new("."),
    )?;
    println!("json: {}", ev.to_json(data, true)?);

    // Errors come back as values with a message and a position.
    match ev.eval_str("builtins.hostName 1", Path::new(".")) {
        Ok(v) => println!("unexpected success: {}", ev.print(&v)),
        Err(e) => println!("as expected, {}", ev.render_error(&e)),
    }
    Ok(())
}
