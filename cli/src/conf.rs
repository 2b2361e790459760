//! Settings from where CppNix reads them, in its order (later wins): the
//! system file `$NIX_CONF_DIR/nix.conf` (default /etc/nix), the user files
//! (`$NIX_USER_CONF_FILES`, else `nix/nix.conf` under `$XDG_CONFIG_DIRS` and then
//! `$XDG_CONFIG_HOME`, the latter winning), then `$NIX_CONFIG`; the command
//! line's `--option`s come after all of them. A file may `include` another
//! (`!include` if it may be missing). `extra-NAME = …` appends to a list.

use std::path::{Path, PathBuf};

/// Every `name = value` found, in order, and the warnings to print.
#[derive(Default, Debug)]
pub struct Loaded {
    pub pairs: Vec<(String, String)>,
    pub errors: Vec<String>,
}

pub fn load() -> Loaded {
    let mut out = Loaded::default();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let conf_dir = env("NIX_CONF_DIR").unwrap_or_else(|| "/etc/nix".into());
    read_file(&Path::new(&conf_dir).join("nix.conf"), true, &mut out, 0);
    for f in user_files() {
        read_file(&f, true, &mut out, 0);
    }
    if let Some(text) = env("NIX_CONFIG") {
        parse(&text, Path::new("."), "NIX_CONFIG", &mut out, 0);
    }
    out
}

/// The user configuration files, lowest priority first.
fn user_files() -> Vec<PathBuf> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(list) = env("NIX_USER_CONF_FILES") {
        // The first listed wins, so it is read last.
        let mut v: Vec<PathBuf> = list
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect();
        v.reverse();
        return v;
    }
    let home = env("HOME").unwrap_or_else(|| "/".into());
    let config_home = env("XDG_CONFIG_HOME").unwrap_or_else(|| format!("{home}/.config"));
    let dirs = env("XDG_CONFIG_DIRS").unwrap_or_else(|| "/etc/xdg".into());
    let mut all: Vec<PathBuf> = std::iter::once(config_home.as_str())
        .chain(dirs.split(':').filter(|s| !s.is_empty()))
        .map(|d| Path::new(d).join("nix/nix.conf"))
        .collect();
    all.reverse();
    all
}

fn read_file(path: &Path, optional: bool, out: &mut Loaded, depth: usize) {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let dir = path.parent().unwrap_or(Path::new("/"));
            parse(&text, dir, &path.display().to_string(), out, depth);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && optional => {}
        Err(e) => out.errors.push(format!(
            "reading configuration file '{}': {}",
            path.display(),
            nixvm::vm::io_msg(&e)
        )),
    }
}

fn parse(text: &str, dir: &Path, origin: &str, out: &mut Loaded, depth: usize) {
    for line in text.lines() {
        let line = match line.find('#') {
            Some(i) => &line[..i],
            None => line,
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        if words[0] == "include" || words[0] == "!include" {
            if words.len() != 2 {
                out.errors
                    .push(format!("illegal configuration line '{line}' in '{origin}'"));
                continue;
            }
            if depth < 16 {
                let p = dir.join(words[1]);
                read_file(&p, words[0] == "!include", out, depth + 1);
            }
            continue;
        }
        if words.len() < 2 || words[1] != "=" {
            out.errors
                .push(format!("illegal configuration line '{line}' in '{origin}'"));
            continue;
        }
        out.pairs.push((words[0].to_string(), words[2..].join(" ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_comments_and_includes() {
        let dir = std::env::temp_dir().join(format!("nixvm-conf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("other.conf"), "cores = 3\n").unwrap();
        let mut out = Loaded::default();
        parse(
            "# a comment\nsandbox = false # trailing\nextra-allowed-uris = a  b\ninclude other.conf\n!include missing.conf\nbad line\n",
            &dir,
            "test",
            &mut out,
            0,
        );
        assert_eq!(
            out.pairs,
            vec![
                ("sandbox".into(), "false".into()),
                ("extra-allowed-uris".into(), "a b".into()),
                ("cores".into(), "3".into()),
            ]
        );
        assert_eq!(out.errors.len(), 1, "{:?}", out.errors);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
