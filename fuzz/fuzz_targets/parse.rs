//! Any bytes through the lexer, the parser, the `--parse` printer and the
//! compiler and linker: each must answer or refuse, never panic, overflow
//! the stack or loop.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let mut ev = nixvm::Evaluator::builder().build();
    let _ = ev.parse_to_string(&src, "«fuzz»", Path::new("/"));
    // Compiles and links without forcing anything.
    let _ = ev.lazy_str(&src, Path::new("/"));
});
