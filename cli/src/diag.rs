//! Errors on stderr: CppNix's layout for the nix-* commands, codespan's with
//! source excerpts for `nixvm eval`.

use crate::args::InstArgs;
use crate::config::option_bool;
use codespan_reporting::diagnostic::{Diagnostic, Label};
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
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
    let writer = termcolor::StandardStream::stderr(termcolor::ColorChoice::Never);
    let config = term::Config::default();
    let mut files = SimpleFiles::new();
    // Only the file the error points into is shown (its text read again if
    // it was not kept).
    let mut diag = Diagnostic::error().with_message(e.msg.clone());
    // The label is the error's position, else (a builtin's error, which has
    // none) the innermost frame's.
    let at = e.pos.or_else(|| e.trace.iter().find_map(|t| t.pos));
    if let Some(p) = at {
        if let Some(f) = ev.vm.files.get(p.file as usize) {
            let id = files.add(f.name.clone(), f.text().to_string());
            let src_len = f.len();
            let start = (p.span.start as usize).min(src_len);
            let end = (p.span.end as usize).clamp(start, src_len);
            diag = diag.with_labels(vec![Label::primary(id, start..end)]);
        }
    }
    // CppNix's frames in its order (outermost first), as many as it shows.
    let mut notes = Vec::new();
    for t in nixvm::report::shown_frames(e, show_trace) {
        match t.pos {
            Some(p) => notes.push(format!("… {}\n  at {}", t.msg, ev.vm.show_pos(p))),
            None => notes.push(format!("… {}", t.msg)),
        }
    }
    if let Some(s) = nixvm::report::did_you_mean(&e.suggestions) {
        notes.push(s);
    }
    diag = diag.with_notes(notes);
    if term::emit(&mut writer.lock(), &config, &files, &diag).is_err() {
        nixvm::report::stderr_line(&format!("error: {}", e.msg));
    }
}
