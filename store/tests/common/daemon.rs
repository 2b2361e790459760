//! A private nix-daemon for tests: its own store (`local?root=DIR`), its own
//! socket and settings (no build users, no sandbox, no substituters), started
//! by the test and killed when it ends. Shared by the store, vm and cli tests.
//!
//! The daemon is `$NIXVM_TEST_NIX_DAEMON` or `nix-daemon` on PATH (Debian's
//! nix-bin in CI). Without one the tests say so and pass, unless
//! `NIXVM_REQUIRE_DAEMON` is set (CI sets it, so that a missing daemon
//! cannot pass silently there).

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateDaemon {
    pub dir: PathBuf,
    pub socket: PathBuf,
    /// The store's root: its files are under `root/nix/store`.
    pub root: PathBuf,
    pub conf: PathBuf,
    child: Child,
}

pub fn daemon_program() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("NIXVM_TEST_NIX_DAEMON") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nix-daemon"))
            .find(|p| p.is_file())
    })
}

impl PrivateDaemon {
    /// A fresh daemon, or `None` (with a note on stderr) when there is none
    /// to start and none is required.
    pub fn start(tag: &str) -> Option<PrivateDaemon> {
        let Some(program) = daemon_program() else {
            assert!(
                std::env::var_os("NIXVM_REQUIRE_DAEMON").is_none(),
                "NIXVM_REQUIRE_DAEMON is set but there is no nix-daemon"
            );
            eprintln!("note: no nix-daemon on this machine; the daemon test {tag} is skipped");
            return None;
        };
        let dir = std::env::temp_dir().join(format!("nixvm-daemon-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conf = dir.join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("nix.conf"),
            "build-users-group =\nsubstituters =\n# A store under another root builds in a sandbox (Nix 2.8 always,\n# 2.34 only when asked): give builders the host's /bin/sh and what\n# it links to.\nsandbox = true\nsandbox-paths = /bin /lib /lib64 /usr\n",
        )
        .unwrap();
        let socket = dir.join("socket");
        let root = dir.join("root");
        let child = Command::new(&program)
            .arg("--store")
            .arg(format!("local?root={}", root.display()))
            .env("NIX_CONF_DIR", &conf)
            .env("NIX_DAEMON_SOCKET_PATH", &socket)
            .env_remove("NIX_REMOTE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let started = Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the nix-daemon did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(PrivateDaemon {
            dir,
            socket,
            root,
            conf,
            child,
        })
    }

    /// Where a store path's files are.
    pub fn real(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    /// A CppNix command (nix-store, nix-instantiate) run against this
    /// daemon's store, for checking what we did with CppNix's eyes.
    pub fn nix(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.arg("--store")
            .arg("daemon")
            .env("NIX_CONF_DIR", &self.conf)
            .env("NIX_DAEMON_SOCKET_PATH", &self.socket)
            .env_remove("NIX_REMOTE");
        c
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Store files are read-only; make them writable to remove them.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(&self.dir)
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
