//! Running builders inside Linux namespaces.
//!
//! Two set-ups share one mechanism (a `pre_exec` hook in the forked child that calls
//! `unshare`, writes its uid/gid maps and mounts):
//!
//! * **Sandbox**: a private root directory holding only `/bin/sh` (with the shared libraries
//!   it needs), a few `/dev` nodes, minimal `/etc/passwd`, `/etc/group` and `/etc/hosts`, the
//!   build directory at `/build`, and the closure of the derivation's inputs at their logical
//!   store paths. The builder runs as uid 1000 / gid 100 of a new user namespace, with its own
//!   mount, UTS (hostname `localhost`) and IPC namespaces, and a network namespace of its own
//!   unless it is a fixed-output derivation. Outputs are written to the sandbox's store
//!   directory, which lives inside the physical store's work area, and renamed into the store
//!   afterwards.
//! * **Store view**: no sandbox, but the physical store directory of a chroot store is bind
//!   mounted on the logical one (e.g. `ROOT/nix/store` on `/nix/store`), so that an
//!   unsandboxed builder finds its inputs where their paths say. Needs the logical directory
//!   to exist on the host.
//!
//! Everything the child needs is prepared (as C strings) before `fork`, because between
//! `fork` and `exec` in a multi-threaded program only async-signal-safe calls are allowed: no
//! allocation, no locks. The child only makes raw system calls.

use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::Error;

/// The uid and gid builders have inside the sandbox (CppNix uses the same).
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_GID: u32 = 100;

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn io_err(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// What the child does after forking.
#[derive(Debug, Clone)]
pub struct NsPlan {
    /// Whether to create a user namespace (mapping our uid/gid to `inner_uid`/`inner_gid`).
    pub user_ns: bool,
    pub inner_uid: u32,
    pub inner_gid: u32,
    /// Extra namespaces for a full sandbox.
    pub isolate: bool,
    /// Give the builder its own (empty) network namespace.
    pub private_network: bool,
    /// (source, target) bind mounts, done in order.
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// Bind targets to make read-only (best effort: a remount the kernel refuses is skipped).
    pub read_only: Vec<PathBuf>,
    /// chroot here after mounting.
    pub chroot: Option<PathBuf>,
    /// Working directory (inside the chroot if there is one).
    pub cwd: PathBuf,
}

struct Prepared {
    flags: libc::c_int,
    user_ns: bool,
    uid_map: CString,
    gid_map: CString,
    binds: Vec<(CString, CString)>,
    read_only: Vec<CString>,
    chroot: Option<CString>,
    cwd: CString,
    setgroups: CString,
    uid_map_path: CString,
    gid_map_path: CString,
    root: CString,
    isolate: bool,
    private_network: bool,
    lo_request: IfReq,
}

/// An `ifreq` (plain data, holding no live pointer here) that the child reads.
struct IfReq(libc::ifreq);
// SAFETY: the value is only read, and its union holds flags, not a pointer.
unsafe impl Send for IfReq {}
// SAFETY: as above.
unsafe impl Sync for IfReq {}

impl IfReq {
    fn as_ptr(&self) -> *const libc::ifreq {
        &self.0
    }
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Write a whole buffer to a file with raw calls (async-signal-safe).
fn write_proc(path: &CString, data: &CString) -> io::Result<()> {
    // SAFETY: valid C strings; plain system calls.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let bytes = data.as_bytes();
        let n = libc::write(fd, bytes.as_ptr() as *const libc::c_void, bytes.len());
        let e = io::Error::last_os_error();
        libc::close(fd);
        if n != bytes.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

impl NsPlan {
    /// Every namespace a sandboxed build gets (user, mount, network, ...) but no
    /// mounts and no chroot: what the availability probe tries.
    pub fn isolated_without_mounts() -> NsPlan {
        NsPlan {
            user_ns: true,
            inner_uid: SANDBOX_UID,
            inner_gid: SANDBOX_GID,
            isolate: true,
            private_network: true,
            binds: Vec::new(),
            read_only: Vec::new(),
            chroot: None,
            cwd: PathBuf::from("/"),
        }
    }

    fn prepare(&self) -> io::Result<Prepared> {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mut flags = libc::CLONE_NEWNS;
        if self.user_ns {
            flags |= libc::CLONE_NEWUSER;
        }
        if self.isolate {
            flags |= libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
            if self.private_network {
                flags |= libc::CLONE_NEWNET;
            }
        }
        let c = |s: &str| CString::new(s).expect("no NUL in fixed strings");
        // SAFETY: ifreq is plain data; all-zero is a valid value.
        let mut lo_request: libc::ifreq = unsafe { std::mem::zeroed() };
        for (d, b) in lo_request.ifr_name.iter_mut().zip(b"lo\0") {
            *d = *b as libc::c_char;
        }
        lo_request.ifr_ifru.ifru_flags =
            (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
        Ok(Prepared {
            flags,
            user_ns: self.user_ns,
            uid_map: c(&format!("{} {uid} 1", self.inner_uid)),
            gid_map: c(&format!("{} {gid} 1", self.inner_gid)),
            binds: self
                .binds
                .iter()
                .map(|(s, t)| Ok((cstr(s)?, cstr(t)?)))
                .collect::<io::Result<_>>()?,
            read_only: self
                .read_only
                .iter()
                .map(|t| cstr(t))
                .collect::<io::Result<_>>()?,
            chroot: self.chroot.as_deref().map(cstr).transpose()?,
            cwd: cstr(&self.cwd)?,
            setgroups: c("/proc/self/setgroups"),
            uid_map_path: c("/proc/self/uid_map"),
            gid_map_path: c("/proc/self/gid_map"),
            root: c("/"),
            isolate: self.isolate,
            private_network: self.isolate && self.private_network,
            lo_request: IfReq(lo_request),
        })
    }

    /// Arrange for `cmd` to run inside the namespaces this plan describes.
    pub fn apply(&self, cmd: &mut Command) -> io::Result<()> {
        let p = self.prepare()?;
        let deny = CString::new("deny").expect("no NUL");
        let host = b"localhost";
        // SAFETY: the closure only makes raw system calls on data prepared before fork.
        unsafe {
            cmd.pre_exec(move || {
                check(libc::setsid())?;
                // Do not outlive us if we are killed.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                check(libc::unshare(p.flags))?;
                if p.user_ns {
                    // Unprivileged processes must give up setgroups before mapping gids.
                    let _ = write_proc(&p.setgroups, &deny);
                    write_proc(&p.uid_map_path, &p.uid_map)?;
                    write_proc(&p.gid_map_path, &p.gid_map)?;
                }
                check(libc::mount(
                    std::ptr::null(),
                    p.root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ))?;
                if p.private_network {
                    // Bring up the loopback interface of the new network namespace.
                    let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
                    if fd >= 0 {
                        libc::ioctl(fd, libc::SIOCSIFFLAGS, p.lo_request.as_ptr());
                        libc::close(fd);
                    }
                }
                if p.isolate {
                    check(libc::sethostname(
                        host.as_ptr() as *const libc::c_char,
                        host.len(),
                    ))?;
                }
                for (src, dst) in &p.binds {
                    check(libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ))?;
                }
                for dst in &p.read_only {
                    // A remount inside a user namespace must keep the flags the original
                    // mount has locked (nosuid, nodev, noexec, atime), so carry them over.
                    let mut st: libc::statvfs = std::mem::zeroed();
                    if libc::statvfs(dst.as_ptr(), &mut st) != 0 {
                        continue;
                    }
                    let mut flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
                    for (st_flag, ms_flag) in [
                        (libc::ST_NOSUID, libc::MS_NOSUID),
                        (libc::ST_NODEV, libc::MS_NODEV),
                        (libc::ST_NOEXEC, libc::MS_NOEXEC),
                        (libc::ST_NOATIME, libc::MS_NOATIME),
                        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
                        (libc::ST_RELATIME, libc::MS_RELATIME),
                    ] {
                        if st.f_flag & st_flag != 0 {
                            flags |= ms_flag;
                        }
                    }
                    libc::mount(
                        std::ptr::null(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        flags,
                        std::ptr::null(),
                    );
                }
                if let Some(root) = &p.chroot {
                    check(libc::chroot(root.as_ptr()))?;
                }
                check(libc::chdir(p.cwd.as_ptr()))?;
                Ok(())
            });
        }
        Ok(())
    }
}

/// Whether this machine lets us create user and mount namespaces; the reason if not.
/// Probed once per process by running `/bin/sh -c true` in them. `NIXVM_NO_NAMESPACES=1`
/// makes the answer "no" (for machines where the probe misleads, and for tests).
pub fn namespaces_available() -> Result<(), String> {
    static PROBE: OnceLock<Result<(), String>> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            if std::env::var_os("NIXVM_NO_NAMESPACES").is_some_and(|v| v == "1") {
                return Err("NIXVM_NO_NAMESPACES=1 is set".to_string());
            }
            let plan = NsPlan::isolated_without_mounts();
            let mut cmd = Command::new("/bin/sh");
            cmd.args(["-c", "true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            plan.apply(&mut cmd).map_err(|e| e.to_string())?;
            match cmd.status() {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("the probe exited with {s}")),
                Err(e) => Err(crate::io_message(&e)),
            }
        })
        .clone()
}

/// The files `/bin/sh` needs in the sandbox: itself and the shared libraries `ldd` reports
/// (each as (host file, path in the sandbox)).
pub fn shell_closure() -> Vec<(PathBuf, PathBuf)> {
    static CLOSURE: OnceLock<Vec<(PathBuf, PathBuf)>> = OnceLock::new();
    CLOSURE
        .get_or_init(|| {
            let mut out = Vec::new();
            let Ok(sh) = fs::canonicalize("/bin/sh") else {
                return out;
            };
            out.push((sh.clone(), PathBuf::from("/bin/sh")));
            let Ok(o) = Command::new("ldd").arg(&sh).output() else {
                return out;
            };
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
                // "/lib64/ld-linux-x86-64.so.2 (0x...)"
                let path = match line.split_once("=>") {
                    Some((_, rest)) => rest.split_whitespace().next(),
                    None => line.split_whitespace().next(),
                };
                let Some(path) = path.filter(|p| p.starts_with('/')) else {
                    continue;
                };
                if let Ok(real) = fs::canonicalize(path) {
                    out.push((real, PathBuf::from(path)));
                }
            }
            out
        })
        .clone()
}

/// The host side of a sandbox: a directory tree with mount points, built before the fork.
pub struct SandboxRoot {
    pub root: PathBuf,
    pub binds: Vec<(PathBuf, PathBuf)>,
    /// The targets of the input closure and of `/bin/sh`'s files, to be made read-only.
    pub read_only: Vec<PathBuf>,
}

impl SandboxRoot {
    /// Lay out a sandbox root at `root` (which must not exist): `store_dir` is the logical
    /// store directory, `inputs` the physical and logical paths of the input closure,
    /// `build_dir` the host build directory (mounted at `/build`).
    pub fn create(
        root: &Path,
        store_dir: &str,
        inputs: &[(PathBuf, String)],
        build_dir: &Path,
    ) -> Result<SandboxRoot, Error> {
        let mk = |p: &Path| fs::create_dir_all(p).map_err(|e| io_err("creating directory", p, e));
        let inner = |p: &str| root.join(p.trim_start_matches('/'));
        mk(root)?;
        let mut binds = Vec::new();
        let store = inner(store_dir);
        mk(&store)?;
        fs::set_permissions(&store, fs::Permissions::from_mode(0o1775))
            .map_err(|e| io_err("changing permissions of", &store, e))?;
        for d in ["build", "tmp", "etc", "dev/shm"] {
            mk(&inner(d))?;
        }
        let tmp = inner("tmp");
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777))
            .map_err(|e| io_err("changing permissions of", &tmp, e))?;
        binds.push((build_dir.to_path_buf(), inner("build")));
        let write = |p: &Path, s: &str| fs::write(p, s).map_err(|e| io_err("writing", p, e));
        write(
            &inner("etc/passwd"),
            &format!(
                "root:x:0:0:Nix build user:/build:/noshell\nnixbld:x:{SANDBOX_UID}:{SANDBOX_GID}:Nix build user:/build:/noshell\nnobody:x:65534:65534:Nobody:/:/noshell\n"
            ),
        )?;
        write(
            &inner("etc/group"),
            &format!("root:x:0:\nnixbld:!:{SANDBOX_GID}:\nnogroup:x:65534:\n"),
        )?;
        write(&inner("etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n")?;
        for (target, link) in [
            ("/proc/self/fd", "dev/fd"),
            ("/proc/self/fd/0", "dev/stdin"),
            ("/proc/self/fd/1", "dev/stdout"),
            ("/proc/self/fd/2", "dev/stderr"),
        ] {
            let l = inner(link);
            symlink(target, &l).map_err(|e| io_err("creating symlink", &l, e))?;
        }
        let add_bind = |src: &Path, dst: PathBuf, binds: &mut Vec<(PathBuf, PathBuf)>| {
            let meta = match fs::symlink_metadata(src) {
                Ok(m) => m,
                Err(_) => return Ok(()),
            };
            if let Some(parent) = dst.parent() {
                mk(parent)?;
            }
            if meta.file_type().is_symlink() {
                let t = fs::read_link(src).map_err(|e| io_err("reading symbolic link", src, e))?;
                if fs::symlink_metadata(&dst).is_err() {
                    symlink(&t, &dst).map_err(|e| io_err("creating symlink", &dst, e))?;
                }
                return Ok(());
            }
            if meta.is_dir() {
                mk(&dst)?;
            } else if fs::symlink_metadata(&dst).is_err() {
                fs::write(&dst, b"").map_err(|e| io_err("creating file", &dst, e))?;
            }
            binds.push((src.to_path_buf(), dst));
            Ok::<(), Error>(())
        };
        for dev in ["null", "zero", "full", "random", "urandom", "tty"] {
            let src = Path::new("/dev").join(dev);
            add_bind(&src, inner(&format!("dev/{dev}")), &mut binds)?;
        }
        let writable = binds.len();
        for (host, inside) in shell_closure() {
            add_bind(&host, inner(&inside.to_string_lossy()), &mut binds)?;
        }
        for (real, logical) in inputs {
            add_bind(real, inner(logical), &mut binds)?;
        }
        let read_only = binds[writable..].iter().map(|(_, t)| t.clone()).collect();
        Ok(SandboxRoot {
            root: root.to_path_buf(),
            binds,
            read_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_network_has_loopback_up() {
        if namespaces_available().is_err() || !Path::new("/usr/bin/python3").exists() {
            eprintln!("SKIPPED: needs user namespaces and python3");
            return;
        }
        let plan = NsPlan::isolated_without_mounts();
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.args([
            "-c",
            "import socket,os; s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(); c=socket.create_connection(s.getsockname()); print(os.uname().nodename)",
        ]);
        plan.apply(&mut cmd).unwrap();
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "localhost");
    }
}

#[cfg(test)]
mod ro_tests {
    use super::*;

    #[test]
    fn inputs_are_mounted_read_only() {
        if namespaces_available().is_err() {
            eprintln!("SKIPPED: needs user namespaces");
            return;
        }
        let d = std::env::temp_dir().join(format!("nixvm-ro-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(d.join("src")).unwrap();
        fs::create_dir_all(d.join("dst")).unwrap();
        fs::write(d.join("src/f"), "x").unwrap();
        let plan = NsPlan {
            user_ns: true,
            inner_uid: SANDBOX_UID,
            inner_gid: SANDBOX_GID,
            isolate: false,
            private_network: false,
            binds: vec![(d.join("src"), d.join("dst"))],
            read_only: vec![d.join("dst")],
            chroot: None,
            cwd: PathBuf::from("/"),
        };
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(format!("echo y > {0}/dst/f", d.display()));
        plan.apply(&mut cmd).unwrap();
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the write succeeded");
        assert!(err.contains("Read-only file system"), "{err}");
        assert_eq!(fs::read_to_string(d.join("src/f")).unwrap(), "x");
        let _ = fs::remove_dir_all(&d);
    }
}
