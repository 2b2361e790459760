//! Errors on stderr: CppNix's layout for the nix-* commands, codespan's with
//! source excerpts for `nixvm eval` (both rendered by the library).

use crate::args::InstArgs;
use crate::config::option_bool;
use nixvm::{EvalError, Evaluator};
use std::io::Write;

pub fn show_trace_of(a: &InstArgs) -> bool {
    option_bool(a, "show-trace").unwrap_or(false)
}

pub fn report(ev: &Evaluator, a: &InstArgs, e: &EvalError) {
    let show_trace = show_trace_of(a);
    if !a.codespan {
        let mut text = nixvm::report::render(&ev.vm, e, show_trace);
        if e.kind == nixvm::ErrorKind::Usage {
            let argv0 = std::env::args().next().unwrap_or_default();
            let program = match crate::argv::Personality::of(&argv0) {
                crate::argv::Personality::NixBuild => "nix-build",
                crate::argv::Personality::NixEnv => "nix-env",
                _ => "nix-instantiate",
            };
            text.push_str(&format!("Try '{program} --help' for more information.\n"));
        }
        let text =
            nixvm::report::filter_log(&text, nixvm::report::stderr_keeps_colour()).into_owned();
        // Excerpts of a file that is not UTF-8 show its bytes as they are.
        let bytes = if ev.vm.files.iter().any(|f| f.raw) {
            nixvm_compiler::rawsrc::to_raw_bytes(&text).into_owned()
        } else {
            text.into_bytes()
        };
        let _ = std::io::stderr().write_all(&bytes);
        return;
    }
    let text = ev.render_error_as(e, nixvm::Layout::Codespan, show_trace);
    nixvm::report::stderr_text(&text);
}
