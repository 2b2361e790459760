//! A configuration reader: a Nix file (which imports another and uses
//! `lib`-style functions) read into a Rust struct with serde.
//!
//!     cargo run --release -p nixvm --example config_reader
//!
//! Only what the struct has fields for is evaluated: `notes` below throws,
//! and reading succeeds all the same.

use nixvm::Evaluator;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize, PartialEq)]
pub struct Service {
    pub port: u16,
    pub replicas: u32,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub struct Config {
    pub name: String,
    pub debug: bool,
    pub services: BTreeMap<String, Service>,
}

const MAIN: &str = r#"
let
  defaults = import ./defaults.nix;
  service = port: defaults.service // { inherit port; };
in {
  name = "shop";
  debug = false;
  services = {
    web = service 8080 // { replicas = 3; };
    api = service 9000 // { env = defaults.service.env // { MODE = "api"; }; };
  };
  notes = throw "not part of the struct, never evaluated";
}
"#;

const DEFAULTS: &str = r#"{ service = { replicas = 1; env = { LOG = "info"; }; }; }"#;

/// Write the two files to a temporary directory and read the config.
pub fn run() -> Result<Config, String> {
    let dir = std::env::temp_dir().join(format!("nixvm-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("config.nix"), MAIN).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("defaults.nix"), DEFAULTS).map_err(|e| e.to_string())?;
    let mut ev = Evaluator::new();
    let r = ev
        .eval_file(&dir.join("config.nix"))
        .and_then(|v| ev.deserialize::<Config>(&v))
        .map_err(|e| ev.render_error(&e));
    let _ = std::fs::remove_dir_all(&dir);
    r
}

#[allow(dead_code)]
fn main() -> Result<(), String> {
    let config = run()?;
    println!("{config:#?}");
    Ok(())
}
