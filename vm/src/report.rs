//! CppNix's error layout, byte for byte: what `nix-instantiate` and `nix-build`
//! print on stderr for an evaluation error.
//!
//! The layout: `error:` and, when there is a trace, the frames outermost first
//! (each `… message` with its `at FILE:LINE:COL:` and three lines of source
//! around a caret), then the error's own message and position, then "Did you
//! mean …?". Every line after the first is indented to align under the text
//! after `error: `. Without `--show-trace` only the first few frames are shown
//! (a frame with a position counts twice), except frames marked `always`;
//! consecutive repeats of frames already shown are folded into "(N duplicate
//! frames omitted)" when there are more than five of them.
//!
//! This module only renders; which frames an error carries is decided where
//! it is raised and unwound (vm.rs, the builtins).

use crate::error::{EvalError, Pos, TraceEntry};
use crate::vm::Vm;
use std::collections::HashSet;
use std::fmt::Write;

/// CppNix shows this many frames (a positioned frame counting twice) before
/// truncating a trace that was not asked for with --show-trace.
const SHOWN_WITHOUT_SHOW_TRACE: usize = 3;
/// Runs of repeated frames up to this long are printed; longer ones folded.
const FOLD_AFTER: usize = 5;

/// The whole error as CppNix prints it, with a final newline.
pub fn render(vm: &Vm, e: &EvalError, show_trace: bool) -> String {
    render_level(vm, "error", e, show_trace, false)
}

/// An error-shaped message at another level (`warning`, `evaluation warning`).
/// With `no_indent` the lines after the first are not indented (CppNix's
/// `noIndent`, for a message that begins on a line of its own).
pub fn render_level(
    vm: &Vm,
    level: &str,
    e: &EvalError,
    show_trace: bool,
    no_indent: bool,
) -> String {
    let prefix = format!("{level}: ");
    let mut body = String::new();
    if !e.trace.is_empty() {
        render_trace(vm, &mut body, e.trace.iter().rev(), show_trace);
        body.push('\n');
        body.push_str(&prefix);
    }
    body.push_str(&e.msg);
    body.push('\n');
    pos_maybe(vm, &mut body, "", e.pos);
    if let Some(s) = did_you_mean(&e.suggestions) {
        let _ = writeln!(body, "{s}");
    }
    let mut out = if no_indent {
        format!("{}{}", prefix.trim_end_matches(' '), chomp(&body))
    } else {
        indent(&prefix, &" ".repeat(prefix.len()), chomp(&body))
    };
    out.push('\n');
    out
}

/// What CppNix's loggers do to every message before it reaches stderr
/// (`filterANSIEscapes`): escape sequences are dropped (colour ones kept when
/// stderr is a colour terminal), `\r` and BEL are dropped, and a tab becomes
/// the spaces up to the next multiple of eight *display columns counted from
/// the start of the message*, not of its line: newlines have no width, so a
/// tab in the last line of an error lands where the whole trace above it
/// says. A message that ends in a colour reset (toml11's do) keeps its last,
/// otherwise blank, line, since this runs after indenting.
pub fn filter_log(s: &str, keep_colour: bool) -> std::borrow::Cow<'_, str> {
    use unicode_width::UnicodeWidthChar;
    if !s.contains(['\x1b', '\t', '\r', '\x07']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    let mut width = 0usize;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            0x1b => {
                let start = i;
                i += 1;
                let mut last = 0u8;
                if b.get(i) == Some(&b'[') {
                    i += 1;
                    while i < b.len() && (0x30..=0x3f).contains(&b[i]) {
                        i += 1;
                    }
                    while i < b.len() && (0x20..=0x2f).contains(&b[i]) {
                        i += 1;
                    }
                    if i < b.len() && (0x40..=0x7e).contains(&b[i]) {
                        last = b[i];
                        i += 1;
                    }
                } else if b.get(i) == Some(&b']') {
                    // An operating-system command, ended by ESC \ or BEL.
                    i += 1;
                    while i < b.len() && b[i] != 0x1b && b[i] != 0x07 {
                        i += 1;
                    }
                    if i < b.len() {
                        let v = b[i];
                        i += 1;
                        if v == 0x1b && b.get(i) == Some(&b'\\') {
                            last = b'\\';
                            i += 1;
                        }
                    }
                } else if i < b.len() && (0x40..=0x5f).contains(&b[i]) {
                    i += 1;
                }
                if keep_colour && last == b'm' {
                    out.push_str(&s[start..i]);
                }
            }
            b'\t' => {
                loop {
                    width += 1;
                    out.push(' ');
                    if width.is_multiple_of(8) {
                        break;
                    }
                }
                i += 1;
            }
            b'\r' | 0x07 => i += 1,
            _ => {
                let c = s[i..].chars().next().unwrap_or('\u{fffd}');
                width += c.width().unwrap_or(0);
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Whether CppNix would colour stderr: a terminal, TERM not `dumb`, and
/// neither NO_COLOR nor NOCOLOR set. Decided once per process, as CppNix does.
pub fn stderr_keeps_colour() -> bool {
    static TTY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TTY.get_or_init(|| {
        // SAFETY: isatty only inspects the descriptor.
        let tty = unsafe { libc::isatty(2) } == 1;
        tty && std::env::var("TERM").map(|t| t != "dumb").unwrap_or(false)
            && std::env::var_os("NO_COLOR").is_none()
            && std::env::var_os("NOCOLOR").is_none()
    })
}

/// The frames CppNix prints, outermost first, without folding repeats: all of
/// them with --show-trace, else the first few and those marked `always`.
pub fn shown_frames(e: &EvalError, show_trace: bool) -> Vec<&TraceEntry> {
    let mut out = Vec::new();
    let mut count = 0;
    for t in e.trace.iter().rev().filter(|t| !t.msg.is_empty()) {
        if !show_trace && count > SHOWN_WITHOUT_SHOW_TRACE && !t.always {
            continue;
        }
        count += 1 + usize::from(t.pos.is_some());
        out.push(t);
    }
    out
}

fn render_trace<'a>(
    vm: &Vm,
    out: &mut String,
    frames: impl Iterator<Item = &'a TraceEntry>,
    show_trace: bool,
) {
    // Frames are the same when their text and their file, line and column
    // are (CppNix compares positions, not spans).
    let key = |t: &'a TraceEntry| (t.msg.as_str(), t.pos.map(|p| (p.file, p.span.start)));
    let mut seen: HashSet<(&str, Option<(u32, u32)>)> = HashSet::new();
    let mut skipped: Vec<&TraceEntry> = Vec::new();
    let mut count = 0usize;
    let mut truncate = false;
    for t in frames {
        if t.msg.is_empty() {
            continue;
        }
        if !show_trace && count > SHOWN_WITHOUT_SHOW_TRACE {
            truncate = true;
        }
        if truncate && !t.always {
            continue;
        }
        if !seen.insert(key(t)) {
            skipped.push(t);
            continue;
        }
        flush_skipped(vm, out, &mut count, &mut skipped);
        count += 1;
        frame(vm, out, &mut count, t);
    }
    flush_skipped(vm, out, &mut count, &mut skipped);
    if truncate {
        out.push_str(
            "\n(stack trace truncated; use '--show-trace' to show the full, detailed trace)\n",
        );
    }
}

/// Print a run of repeated frames, or fold it when it is long. CppNix means
/// folding to forget the frames seen so far, but forgets a copy of them: a
/// frame seen once stays seen for the rest of the trace.
fn flush_skipped(vm: &Vm, out: &mut String, count: &mut usize, skipped: &mut Vec<&TraceEntry>) {
    if skipped.is_empty() {
        return;
    }
    if skipped.len() <= FOLD_AFTER {
        for t in skipped.iter() {
            frame(vm, out, count, t);
        }
    } else {
        let _ = writeln!(out, "\n({} duplicate frames omitted)", skipped.len());
    }
    skipped.clear();
}

fn frame(vm: &Vm, out: &mut String, count: &mut usize, t: &TraceEntry) {
    let _ = writeln!(out, "\n… {}", t.msg);
    if pos_maybe(vm, out, "  ", t.pos) {
        *count += 1;
    }
}

/// `at FILE:LINE:COL:` and the source lines around it; false if there is no position.
fn pos_maybe(vm: &Vm, out: &mut String, indent: &str, pos: Option<Pos>) -> bool {
    let Some(p) = pos else {
        return false;
    };
    let Some(f) = vm.files.get(p.file as usize) else {
        return false;
    };
    let text = f.text();
    let (line, col) = line_col(&text, p.span.start as usize);
    let _ = write!(out, "{indent}at {}:{line}:{col}:", f.name);
    if !text.is_empty() || f.name.starts_with('«') {
        code_lines(out, &text, line, col);
        out.push('\n');
    }
    true
}

/// 1-based line and byte column, lines ending at `\n`, `\r\n` or a lone `\r`
/// (as CppNix's lexer counts them).
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let b = text.as_bytes();
    let offset = offset.min(b.len());
    let (mut line, mut start, mut i) = (1, 0, 0);
    while i < offset {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') && i + 1 < offset => {
                i += 2;
                line += 1;
                start = i;
                continue;
            }
            b'\r' | b'\n' => {
                line += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (line, offset - start + 1)
}

/// The lines of a text, split as CppNix's `LinesIterator` splits them.
fn lines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(['\r', '\n']).unwrap_or(rest.len());
        out.push(&rest[..end]);
        if end == rest.len() {
            break;
        }
        rest = &rest[end..];
        rest = rest.strip_prefix('\r').unwrap_or(rest);
        rest = rest.strip_prefix('\n').unwrap_or(rest);
        if rest.is_empty() {
            // A final line break ends the last line; it starts no new one
            // for the iterator, but CppNix still shows an empty next line.
            out.push("");
            break;
        }
    }
    out
}

fn code_lines(out: &mut String, text: &str, line: usize, col: usize) {
    let all = lines(text);
    let get = |n: usize| n.checked_sub(1).and_then(|i| all.get(i));
    if line > 1 {
        if let Some(l) = get(line - 1) {
            let _ = write!(out, "\n {:>5}| {}", line - 1, l);
        }
    }
    if let Some(l) = get(line) {
        let _ = write!(out, "\n {:>5}| {}", line, l);
        if col > 0 {
            let _ = write!(out, "\n      |{}^", " ".repeat(col));
        }
    }
    if let Some(l) = get(line + 1) {
        let _ = write!(out, "\n {:>5}| {}", line + 1, l);
    }
}

/// A line on stderr. A closed or full stderr is not an evaluation error, and
/// must not end the process with a panic as `eprintln!` would.
/// Text that already ends in its newline, in one write.
pub fn stderr_text(text: &str) {
    use std::io::Write;
    let text = filter_log(text, stderr_keeps_colour());
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

pub fn stderr_line(line: &str) {
    use std::io::Write;
    let line = filter_log(line, stderr_keeps_colour());
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(line.as_bytes());
    let _ = err.write_all(b"\n");
}

/// The names CppNix would suggest for a misspelt `query`: at most five, at an
/// edit distance of at most two, nearest first (ties by name).
pub fn best_matches<S: AsRef<str>>(
    candidates: impl IntoIterator<Item = S>,
    query: &str,
) -> Vec<String> {
    let mut all: Vec<(usize, String)> = candidates
        .into_iter()
        .map(|c| {
            let c = c.as_ref();
            (levenshtein(query.as_bytes(), c.as_bytes()), c.to_string())
        })
        .filter(|(d, _)| *d <= 2)
        .collect();
    all.sort_unstable();
    all.dedup();
    all.into_iter().take(5).map(|(_, c)| c).collect()
}

fn levenshtein(a: &[u8], b: &[u8]) -> usize {
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &x) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(x != y);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// "Did you mean one of a, b or c?" for up to five names.
pub fn did_you_mean(names: &[String]) -> Option<String> {
    let names = &names[..names.len().min(5)];
    match names {
        [] => None,
        [one] => Some(format!("Did you mean {one}?")),
        [init @ .., last] => Some(format!(
            "Did you mean one of {} or {last}?",
            init.join(", ")
        )),
    }
}

fn chomp(s: &str) -> &str {
    s.trim_end_matches([' ', '\n', '\r', '\t'])
}

/// Every line prefixed (the first with `first`, the others with `rest`), and
/// trailing white space dropped from each.
fn indent(first: &str, rest: &str, s: &str) -> String {
    let mut out = String::new();
    for (i, l) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let l = format!("{}{}", if i == 0 { first } else { rest }, l);
        out.push_str(chomp(&l));
    }
    out
}

/// The whole error in codespan-reporting's layout (what `nixvm eval` prints):
/// the message, the source excerpt under the error's position (or, for a
/// builtin's error, which has none, the innermost positioned frame's), then
/// CppNix's frames as notes, outermost first, and "Did you mean …?". No
/// colours; ends in a newline.
pub fn render_codespan(vm: &Vm, e: &EvalError, show_trace: bool) -> String {
    use codespan_reporting::diagnostic::{Diagnostic, Label};
    use codespan_reporting::files::SimpleFiles;
    use codespan_reporting::term::{self, termcolor::NoColor};
    let mut files = SimpleFiles::new();
    let mut diag = Diagnostic::error().with_message(e.msg.clone());
    let at = e.pos.or_else(|| e.trace.iter().find_map(|t| t.pos));
    if let Some(p) = at {
        if let Some(f) = vm.files.get(p.file as usize) {
            // Only the file the error points into is shown.
            let id = files.add(f.name.clone(), f.text().to_string());
            let start = (p.span.start as usize).min(f.len());
            let end = (p.span.end as usize).clamp(start, f.len());
            diag = diag.with_labels(vec![Label::primary(id, start..end)]);
        }
    }
    let mut notes: Vec<String> = shown_frames(e, show_trace)
        .into_iter()
        .map(|t| match t.pos {
            Some(p) => format!("… {}\n  at {}", t.msg, vm.show_pos(p)),
            None => format!("… {}", t.msg),
        })
        .collect();
    notes.extend(did_you_mean(&e.suggestions));
    diag = diag.with_notes(notes);
    let mut out = NoColor::new(Vec::new());
    if term::emit(&mut out, &term::Config::default(), &files, &diag).is_err() {
        return format!("error: {}\n", e.msg);
    }
    String::from_utf8_lossy(&out.into_inner()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_filtered_as_cppnix() {
        // CppNix's own cases (libutil-tests/terminal.cc) and what 2.34.8
        // prints: tab stops count from the start of the whole message.
        assert_eq!(filter_log("foo\tbar\tbaz", false), "foo     bar     baz");
        assert_eq!(filter_log("\x1b[31mA\x1b[0m\tB", false), "A       B");
        assert_eq!(filter_log("\x1b[31mA\x1b[0m", true), "\x1b[31mA\x1b[0m");
        assert_eq!(filter_log("a\x1b]8;;u\x1b\\b\r\x07", true), "ab");
        assert_eq!(filter_log("ab\ncd\te", false), "ab\ncd    e");
        assert_eq!(filter_log("é…\t|", false), "é…      |");
        assert!(matches!(
            filter_log("plain", false),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn lines_split_as_cppnix() {
        assert_eq!(lines("a\nb"), vec!["a", "b"]);
        assert_eq!(lines("a\r\nb\rc"), vec!["a", "b", "c"]);
        assert_eq!(lines("a\n"), vec!["a", ""]);
        assert_eq!(line_col("a\r\nbc", 4), (2, 2));
        assert_eq!(line_col("a\rbc", 2), (2, 1));
    }

    #[test]
    fn best_matches_rank_as_cppnix() {
        let names = [
            "hello", "halo", "helm", "help", "shell", "jello", "world", "hell",
        ];
        assert_eq!(
            best_matches(names, "helo"),
            vec!["halo", "hell", "hello", "helm", "help"]
        );
        assert!(best_matches(["abcdef"], "xyz").is_empty());
    }

    #[test]
    fn suggestions_read_as_cppnix() {
        let s = |v: &[&str]| did_you_mean(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(s(&[]), None);
        assert_eq!(s(&["x"]).unwrap(), "Did you mean x?");
        assert_eq!(s(&["x", "z"]).unwrap(), "Did you mean one of x or z?");
        assert_eq!(
            s(&["a", "b", "c", "d", "e", "f"]).unwrap(),
            "Did you mean one of a, b, c, d or e?"
        );
    }
}
