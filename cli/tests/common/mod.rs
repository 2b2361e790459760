//! Shared by the CLI's tests: the binary as a command whose bytecode cache
//! is under the target directory, and for the drop-in tests the binary run
//! through `nix-instantiate` / `nix-build` links in a scratch directory with
//! an empty configuration.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The nixvm binary, its bytecode cache under the target directory (never
/// the user's `~/.cache`).
pub fn nixvm_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nixvm"));
    c.env("XDG_CACHE_HOME", cache_home());
    c
}

/// The `XDG_CACHE_HOME` of the tests' runs.
pub fn cache_home() -> &'static str {
    concat!(env!("CARGO_TARGET_TMPDIR"), "/cache")
}

pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A scratch directory with `nix-instantiate` and `nix-build` links made by
/// `nixvm links`, and an empty configuration (no /etc/nix/nix.conf, no user file).
pub struct Env {
    pub dir: PathBuf,
}

impl Env {
    pub fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("nixvm-dropin-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_nixvm"))
            .args(["links"])
            .arg(dir.join("bin"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Env { dir }
    }

    pub fn cmd(&self, prog: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.dir.join("bin").join(prog));
        c.args(args)
            .current_dir(&self.dir)
            .env_remove("NIX_PATH")
            .env_remove("NIX_CONFIG")
            .env_remove("NIX_ABORT_ON_WARN")
            .env_remove("NIX_USER_CONF_FILES")
            .env("NIX_CONF_DIR", self.dir.join("etc"))
            .env("XDG_CONFIG_HOME", self.dir.join("config"))
            .env("XDG_CONFIG_DIRS", self.dir.join("xdg"))
            .env("HOME", "/home/someone")
            // Caches (bytecode, fetchers) in the scratch directory, not under
            // that home, where every run would add entries for its own paths.
            .env("XDG_CACHE_HOME", self.dir.join("cache"))
            .env("NIXVM_STORE", self.dir.join("store"))
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, prog: &str, args: &[&str]) -> Out {
        run(self.cmd(prog, args))
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn run(mut c: Command) -> Out {
    let o = c.output().expect("running the link");
    Out {
        code: o.status.code(),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

pub fn inst(e: &Env, args: &[&str]) -> Out {
    e.run("nix-instantiate", args)
}
