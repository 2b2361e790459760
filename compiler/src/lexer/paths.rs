//! The path-like tokens, matched by hand (logos cannot backtrack out of a
//! failed path prefix): paths, `~/` and `<...>` paths, URIs and the start of
//! an interpolated path, each as flex would match it.

/// Byte classes for the path-like tokens, as a table: the lexer asks for every
/// byte of every identifier (a scan of the 66 characters cost 3% of NixOS minimal).
const PATH_CHAR: u8 = 1;
const SCHEME_CHAR: u8 = 2;
const URI_CHAR: u8 = 4;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let alnum = b.is_ascii_alphanumeric();
        if alnum || matches!(b, b'.' | b'_' | b'-' | b'+') {
            t[c] |= PATH_CHAR;
        }
        if alnum || matches!(b, b'+' | b'-' | b'.') {
            t[c] |= SCHEME_CHAR;
        }
        if alnum
            || matches!(
                b,
                b'%' | b'/'
                    | b'?'
                    | b':'
                    | b'@'
                    | b'&'
                    | b'='
                    | b'+'
                    | b'$'
                    | b','
                    | b'-'
                    | b'_'
                    | b'.'
                    | b'!'
                    | b'~'
                    | b'*'
                    | b'\''
            )
        {
            t[c] |= URI_CHAR;
        }
        c += 1;
    }
    t
};

#[inline]
pub(super) fn is_path_char(c: u8) -> bool {
    CLASSES[c as usize] & PATH_CHAR != 0
}

#[derive(Copy, Clone, Debug, PartialEq)]
pub(super) enum PathKind {
    Interp,
    Path,
    HPath,
    SPath,
    Uri,
}

pub(super) fn count_while(b: &[u8], f: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|&&c| f(c)).count()
}

/// `(/{PATH_CHAR}+)+/?` at the start of `b`; 0 if there is no segment.
pub(super) fn path_segments(b: &[u8]) -> usize {
    let mut i = 0;
    while b.get(i) == Some(&b'/') {
        let n = count_while(&b[i + 1..], is_path_char);
        if n == 0 {
            break;
        }
        i += 1 + n;
    }
    if i > 0 && b.get(i) == Some(&b'/') {
        i += 1;
    }
    i
}

/// The longest path-like token at the start of `b`, as flex would match it;
/// `pc` is the number of path characters `b` starts with.
pub(super) fn path_family(b: &[u8], pc: usize) -> Option<(usize, PathKind)> {
    let mut best: Option<(usize, PathKind)> = None;
    let mut consider = |len: usize, kind: PathKind| {
        if len > 0 && best.is_none_or(|(l, _)| len > l) {
            best = Some((len, kind));
        }
    };
    debug_assert_eq!(pc, count_while(b, is_path_char));
    // Every path-like token has a `/` or `:` after its leading path characters
    // or starts with `~` or `<`; most tokens (identifiers) have none.
    if !matches!(b.get(pc), Some(b'/' | b':')) && !matches!(b.first(), Some(b'~' | b'<')) {
        return None;
    }
    if b[pc..].starts_with(b"/${") {
        consider(pc + 3, PathKind::Interp);
    }
    if b.starts_with(b"~/${") {
        consider(4, PathKind::Interp);
    }
    let segs = path_segments(&b[pc..]);
    if segs > 0 && (segs > 1 || pc > 0) {
        // `{PATH_CHAR}*(/{PATH_CHAR}+)+/?` needs at least one full segment.
        if b[pc..pc + segs].iter().filter(|&&c| c != b'/').count() > 0 {
            consider(pc + segs, PathKind::Path);
        }
    }
    if b.first() == Some(&b'~') {
        let segs = path_segments(&b[1..]);
        if segs > 1 {
            consider(1 + segs, PathKind::HPath);
        }
    }
    if b.first() == Some(&b'<') {
        let mut i = 1;
        loop {
            let n = count_while(&b[i..], is_path_char);
            if n == 0 {
                break;
            }
            i += n;
            if b.get(i) == Some(&b'/') {
                i += 1;
            } else {
                break;
            }
        }
        if i > 1 && b.get(i) == Some(&b'>') && b[i - 1] != b'/' {
            consider(i + 1, PathKind::SPath);
        }
    }
    if b.first().is_some_and(|c| c.is_ascii_alphabetic()) {
        let scheme = 1 + count_while(&b[1..], |c| CLASSES[c as usize] & SCHEME_CHAR != 0);
        if b.get(scheme) == Some(&b':') {
            let n = count_while(&b[scheme + 1..], |c| CLASSES[c as usize] & URI_CHAR != 0);
            if n > 0 {
                consider(scheme + 1 + n, PathKind::Uri);
            }
        }
    }
    best
}
