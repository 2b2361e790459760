//! Any bytes as data: JSON and TOML in, the values they give back out as
//! JSON, XML and printed Nix, and as a regular expression for the
//! libstdc++-exact regex engine. Errors are answers; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nixvm::value::Value;
use std::path::Path;

const CONSUMERS: &[&str] = &[
    "builtins.toJSON (builtins.fromJSON input)",
    "builtins.toXML (builtins.fromJSON input)",
    "builtins.fromTOML input",
    "builtins.toJSON (builtins.fromTOML input)",
    "builtins.match input \"a(b|c)*[[:alpha:]]{1,3}x\"",
    "builtins.split input \"abcabc aab\"",
];

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data).into_owned();
    for expr in CONSUMERS {
        let mut ev = nixvm::Evaluator::builder()
            .constant("input", Value::str(&input))
            .build();
        if let Ok(v) = ev.eval_str(expr, Path::new("/")) {
            if let Ok(v) = ev.force_deep(v) {
                let _ = ev.print(&v);
            }
        }
    }
});
