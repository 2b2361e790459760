//! Any bytes as a program, evaluated strictly with a small call depth.
//! Not run in CI: a random program may rightly run for a long time
//! (`builtins.genList (x: x) 1000000000`), which libFuzzer would report.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let src = String::from_utf8_lossy(data);
    let mut ev = nixvm::Evaluator::builder()
        .pure(true)
        .settings(|s| s.max_call_depth = 1000)
        .build();
    if let Ok(v) = ev.eval_str(&src, Path::new("/")) {
        if let Ok(v) = ev.force_deep(v) {
            let _ = ev.print(&v);
        }
    }
});
