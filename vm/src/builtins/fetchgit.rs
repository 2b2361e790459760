//! fetchGit's and fetchTree's `git` inputs, through the `git` command: a
//! local work tree (clean or dirty, with CppNix's rules for what a dirty
//! tree includes), a commit of a local repository, or a repository
//! elsewhere mirrored into the fetcher cache; the commit's files exported
//! into a staging directory with its metadata (rev, revCount, lastModified).

use super::fetchers::{file_url_path, store_err, Fetched};
use super::fetchinput::{get_bool, get_str, NULL_REV};
use super::flake::{Attr, FAttrs};
use crate::error::*;
use crate::fetch::archive::*;
use crate::storeglue::fetch_staging_path;
use crate::vm::Vm;
use nixvm_store::hash::{Hash, HashAlgo};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

// ---- git ------------------------------------------------------------------------

/// Run `git` with `args`; stdout on success, an error naming the command otherwise.
pub(super) fn git(args: &[&str], stdin: Option<Vec<u8>>) -> EvalResult<Vec<u8>> {
    let mut cmd = std::process::Command::new("git");
    // Never touch the repository (no index refresh by `status`).
    cmd.env("GIT_OPTIONAL_LOCKS", "0");
    cmd.arg("-c").arg("safe.directory=*").args(args);
    cmd.stdout(std::process::Stdio::piped());
    cmd.stderr(std::process::Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        std::process::Stdio::piped()
    } else {
        std::process::Stdio::null()
    });
    let mut child = cmd.spawn().map_err(|e| {
        EvalError::new(
            ErrorKind::Io,
            format!("executing 'git': {}", crate::vm::io_msg(&e)),
        )
    })?;
    let writer = match (stdin, child.stdin.take()) {
        (Some(data), Some(mut pipe)) => Some(std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })),
        _ => None,
    };
    let out = child.wait_with_output().map_err(|e| {
        EvalError::new(
            ErrorKind::Io,
            format!("executing 'git': {}", crate::vm::io_msg(&e)),
        )
    })?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return err(format!(
            "program 'git' failed with exit code {}: {}",
            out.status.code().unwrap_or(-1),
            msg
        ));
    }
    Ok(out.stdout)
}

pub(super) fn git_text(args: &[&str]) -> EvalResult<String> {
    Ok(String::from_utf8_lossy(&git(args, None)?)
        .trim()
        .to_string())
}

/// Which of `paths` (and, implicitly, everything below them) carry the
/// `export-ignore` attribute. `source`: a commit to read attributes from,
/// or `None` for the index.
pub(super) fn export_ignored(
    git_dir: &str,
    paths: &[String],
    source: Option<&str>,
) -> EvalResult<rustc_hash::FxHashSet<String>> {
    let mut all: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for p in paths {
        let mut cur = p.as_str();
        all.insert(cur.to_string());
        while let Some(i) = cur.rfind('/') {
            cur = &cur[..i];
            all.insert(cur.to_string());
        }
    }
    let mut input = Vec::new();
    for p in &all {
        input.extend_from_slice(p.as_bytes());
        input.push(0);
    }
    let src_arg = source.map(|s| format!("--source={s}"));
    let mut args = vec!["--git-dir", git_dir, "check-attr", "-z", "--stdin"];
    match &src_arg {
        Some(s) => args.push(s),
        None => args.push("--cached"),
    }
    args.push("export-ignore");
    let out = git(&args, Some(input))?;
    let fields: Vec<&[u8]> = out.split(|&b| b == 0).collect();
    let mut ignored = rustc_hash::FxHashSet::default();
    for t in fields.chunks(3) {
        if t.len() == 3 && t[2] == b"set" {
            ignored.insert(String::from_utf8_lossy(t[0]).into_owned());
        }
    }
    Ok(ignored)
}

pub(super) fn is_ignored(path: &str, ignored: &rustc_hash::FxHashSet<String>) -> bool {
    if ignored.is_empty() {
        return false;
    }
    let mut cur = path;
    loop {
        if ignored.contains(cur) {
            return true;
        }
        match cur.rfind('/') {
            Some(i) => cur = &cur[..i],
            None => return false,
        }
    }
}

pub(super) fn git_accessor(vm: &mut Vm, input: &mut FAttrs) -> EvalResult<Fetched> {
    let _ = vm;
    let url = get_str(input, "url").unwrap_or_default();
    let Some(path) = file_url_path(&url) else {
        return remote_git(vm, input, &url);
    };
    let path = if path.starts_with('/') {
        path
    } else {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        cwd.join(&path).to_string_lossy().into_owned()
    };
    let exists = Path::new(&path).exists();
    let has_dot_git = Path::new(&path).join(".git").exists();
    let shallow = get_bool(input, "shallow").unwrap_or(false);
    let submodules = get_bool(input, "submodules").unwrap_or(false);
    let export_ignore = get_bool(input, "exportIgnore").unwrap_or(false);
    if export_ignore && submodules {
        return err("exportIgnore and submodules are not supported together yet");
    }
    if exists && !has_dot_git {
        // A bare repository (CppNix clones it; reading it in place is the same).
        let is_bare = git_text(&["--git-dir", &path, "rev-parse", "--is-bare-repository"])
            .map(|s| s == "true")
            .unwrap_or(false);
        if !is_bare {
            return err(format!("Failed to fetch git repository '{url}'"));
        }
        let staging = fetch_staging_path(vm)?;
        return git_from_commit(staging, input, &path, &url, true);
    }
    if !exists {
        return err(format!("Git repository \"{path}\" does not exist."));
    }
    let git_dir = git_text(&["-C", &path, "rev-parse", "--absolute-git-dir"])?;
    if get_str(input, "ref").is_some() || get_str(input, "rev").is_some() {
        let staging = fetch_staging_path(vm)?;
        return git_from_commit(staging, input, &git_dir, &path, false);
    }
    git_from_workdir(
        vm,
        input,
        &path,
        &git_dir,
        shallow,
        submodules,
        export_ignore,
    )
}

/// A repository elsewhere (http(s), ssh, git://): its branches and tags
/// mirrored by `git fetch` into a bare repository in the fetcher cache (one
/// per URL, its HEAD the remote's), then read as a local bare repository
/// is. Within `tarball-ttl` of the last fetch, or when the wanted `rev` is
/// there already, nothing is fetched.
pub(super) fn remote_git(vm: &mut Vm, input: &mut FAttrs, url: &str) -> EvalResult<Fetched> {
    crate::storeglue::check_uri(vm, url)?;
    let base =
        vm.settings.fetch.cache_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("nixvm-git-{}", std::process::id()))
        });
    let key = Hash::of(HashAlgo::Sha256, url.as_bytes()).to_base16();
    let dir = base.join("git").join(&key[..32]);
    let git_dir = dir.to_string_lossy().into_owned();
    if !dir.join("HEAD").exists() {
        ensure_dir(&dir)?;
        git(&["init", "--quiet", "--bare", &git_dir], None)?;
    }
    let stamp = dir.join("nixvm-last-fetch");
    let fresh = std::fs::metadata(&stamp)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age.as_secs() < vm.settings.fetch.tarball_ttl);
    let have_rev = get_str(input, "rev").is_some_and(|rev| {
        git(
            &[
                "--git-dir",
                &git_dir,
                "cat-file",
                "-e",
                &format!("{rev}^{{commit}}"),
            ],
            None,
        )
        .is_ok()
    });
    // A pinned rev that is not here is fetched whatever the TTL says.
    let wanted_rev = get_str(input, "rev");
    if !have_rev && (wanted_rev.is_some() || !fresh) {
        let mut specs = vec![
            "+refs/heads/*:refs/heads/*".to_string(),
            "+refs/tags/*:refs/tags/*".to_string(),
        ];
        // A ref outside heads and tags (refs/pull/…) and the rev itself.
        if let Some(r) = get_str(input, "ref").filter(|r| r.starts_with("refs/")) {
            specs.push(format!("+{r}:{r}"));
        }
        if let Some(rev) = &wanted_rev {
            specs.push(rev.clone());
        }
        let mut args = vec![
            "--git-dir",
            &git_dir,
            "fetch",
            "--quiet",
            "--force",
            "--",
            url,
        ];
        args.extend(specs.iter().map(String::as_str));
        let fetched = git(&args, None).or_else(|e| {
            // Fetching only the heads and tags (a server may refuse a bare rev).
            if wanted_rev.is_some() {
                git(&args[..args.len() - 1], None)
            } else {
                Err(e)
            }
        });
        let ok = fetched.is_ok();
        if let Err(e) = fetched {
            let have_any =
                git_text(&["--git-dir", &git_dir, "rev-parse", "--verify", "-q", "HEAD"])
                    .is_ok_and(|r| !r.is_empty());
            if !have_any || wanted_rev.is_some() {
                return Err(EvalError::new(
                    ErrorKind::Other,
                    format!("Failed to fetch git repository '{url}': {}", e.msg),
                ));
            }
            crate::report::stderr_line(&format!("error: {}", e.msg));
            crate::report::stderr_line(&format!(
                "warning: could not update local clone of Git repository '{url}'; continuing with the most recent version"
            ));
        }
        // The remote's default branch becomes our HEAD.
        let head = ok.then(|| {
            git_text(&[
                "--git-dir",
                &git_dir,
                "ls-remote",
                "--symref",
                "--",
                url,
                "HEAD",
            ])
        });
        if let Some(Ok(out)) = head {
            if let Some(target) = out
                .lines()
                .find_map(|l| l.strip_prefix("ref: "))
                .and_then(|l| l.split_whitespace().next())
            {
                let _ = git(
                    &["--git-dir", &git_dir, "symbolic-ref", "HEAD", target],
                    None,
                );
            }
        }
        if ok {
            let _ = std::fs::write(&stamp, b"");
        }
    }
    let staging = fetch_staging_path(vm)?;
    git_from_commit(staging, input, &git_dir, url, true)
}

pub(super) fn commit_time(git_dir: &str, rev: &str) -> EvalResult<u64> {
    let t = git_text(&["--git-dir", git_dir, "log", "-1", "--format=%ct", rev])?;
    Ok(t.parse().unwrap_or(0))
}

pub(super) fn rev_count(git_dir: &str, rev: &str) -> EvalResult<u64> {
    let t = git_text(&["--git-dir", git_dir, "rev-list", "--count", rev])?;
    Ok(t.parse().unwrap_or(0))
}

/// `staging` is a fresh path (`fetch_staging_path`) for the exported tree.
pub(super) fn git_from_commit(
    staging: PathBuf,
    input: &mut FAttrs,
    git_dir: &str,
    location: &str,
    bare: bool,
) -> EvalResult<Fetched> {
    let shallow = get_bool(input, "shallow").unwrap_or(false);
    let submodules = get_bool(input, "submodules").unwrap_or(false);
    let export_ignore = get_bool(input, "exportIgnore").unwrap_or(false);
    let reference = match get_str(input, "ref") {
        Some(r) => r,
        None => {
            match git_text(&["--git-dir", git_dir, "symbolic-ref", "-q", "HEAD"]) {
                Ok(r) if !r.is_empty() => r,
                _ => {
                    crate::report::stderr_line(&format!("warning: could not read HEAD ref from repo at '{location}', using 'master'"));
                    "master".to_string()
                }
            }
        }
    };
    input.insert("ref".into(), Attr::Str(reference.clone()));
    let rev = match get_str(input, "rev") {
        Some(rev) => {
            let spec = format!("{rev}^{{commit}}");
            if git(&["--git-dir", git_dir, "cat-file", "-e", &spec], None).is_err() {
                if bare {
                    return err(format!(
                        "Cannot find Git revision '{rev}' in ref '{reference}' of repository '{location}'! Please make sure that the rev exists on the ref you've specified or add allRefs = true; to fetchGit."
                    ));
                }
                return err(format!(
                    "getting Git object '{rev}': object not found - no match for id ({rev})"
                ));
            }
            rev
        }
        None => {
            let spec = if bare && !reference.starts_with("refs/") && reference != "HEAD" {
                format!("refs/heads/{reference}^{{commit}}")
            } else {
                format!("{reference}^{{commit}}")
            };
            match git_text(&["--git-dir", git_dir, "rev-parse", "--verify", "-q", &spec]) {
                Ok(r) if !r.is_empty() => r,
                _ => {
                    return err(format!(
                        "resolving Git reference '{reference}': revspec '{reference}^{{commit}}' not found"
                    ))
                }
            }
        }
    };
    input.insert("rev".into(), Attr::Str(rev.clone()));
    let is_shallow = git_text(&["--git-dir", git_dir, "rev-parse", "--is-shallow-repository"])
        .map(|s| s == "true")
        .unwrap_or(false);
    if is_shallow && !shallow {
        return err(format!(
            "'{location}' is a shallow Git repository, but shallow repositories are only allowed when `shallow = true;` is specified"
        ));
    }
    input.insert(
        "lastModified".into(),
        Attr::Int(commit_time(git_dir, &rev)?),
    );
    if !shallow {
        input.insert("revCount".into(), Attr::Int(rev_count(git_dir, &rev)?));
    }
    ensure_dir(&staging)?;
    extract_commit(git_dir, &rev, &staging, submodules, export_ignore)?;
    Ok(Fetched::Staged(staging))
}

/// Write the tree of commit `rev` into `dest`.
pub(super) fn extract_commit(
    git_dir: &str,
    rev: &str,
    dest: &Path,
    submodules: bool,
    export_ignore: bool,
) -> EvalResult<()> {
    let listing = git(
        &[
            "--git-dir",
            git_dir,
            "ls-tree",
            "-r",
            "-t",
            "-z",
            "--full-tree",
            rev,
        ],
        None,
    )?;
    struct Entry {
        mode: String,
        sha: String,
        path: String,
    }
    let mut entries = Vec::new();
    for rec in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
            continue;
        };
        let meta = String::from_utf8_lossy(&rec[..tab]).into_owned();
        let path = String::from_utf8_lossy(&rec[tab + 1..]).into_owned();
        let mut parts = meta.split(' ');
        let mode = parts.next().unwrap_or("").to_string();
        let _kind = parts.next();
        let sha = parts.next().unwrap_or("").to_string();
        entries.push(Entry { mode, sha, path });
    }
    let ignored = if export_ignore {
        let paths: Vec<String> = entries.iter().map(|e| e.path.clone()).collect();
        export_ignored(git_dir, &paths, Some(rev))?
    } else {
        Default::default()
    };
    entries.retain(|e| !is_ignored(&e.path, &ignored));
    if submodules && entries.iter().any(|e| e.mode == "160000") {
        return err("fetching Git submodules is not supported by nixvm yet");
    }
    // Blob contents, in one `cat-file --batch` run.
    let mut want = Vec::new();
    for e in &entries {
        if e.mode != "040000" && e.mode != "160000" {
            want.extend_from_slice(e.sha.as_bytes());
            want.push(b'\n');
        }
    }
    let blobs = if want.is_empty() {
        Vec::new()
    } else {
        git(&["--git-dir", git_dir, "cat-file", "--batch"], Some(want))?
    };
    let mut pos = 0usize;
    let mut next_blob = || -> EvalResult<&[u8]> {
        let nl = blobs[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| store_err("truncated output from 'git cat-file'"))?;
        let header = String::from_utf8_lossy(&blobs[pos..pos + nl]).into_owned();
        let size: usize = header
            .rsplit(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| store_err(format!("unexpected output from 'git cat-file': {header}")))?;
        let start = pos + nl + 1;
        let end = start + size;
        if end > blobs.len() {
            return err("truncated output from 'git cat-file'");
        }
        pos = end + 1;
        Ok(&blobs[start..end])
    };
    for e in &entries {
        let target = join_components(dest, &canon_components(e.path.as_bytes()));
        match e.mode.as_str() {
            "040000" | "160000" => ensure_dir(&target)?,
            "120000" => {
                let t = next_blob()?.to_vec();
                write_symlink(&target, &t)?;
            }
            m => {
                let data = next_blob()?.to_vec();
                write_file(&target, &data, m == "100755")?;
            }
        }
    }
    Ok(())
}

pub(super) fn git_from_workdir(
    vm: &mut Vm,
    input: &mut FAttrs,
    repo: &str,
    git_dir: &str,
    shallow: bool,
    submodules: bool,
    export_ignore: bool,
) -> EvalResult<Fetched> {
    let head = git_text(&["-C", repo, "rev-parse", "--verify", "-q", "HEAD^{commit}"])
        .ok()
        .filter(|s| !s.is_empty());
    // Tracked files (index entries; submodules are not files).
    let listing = git(&["-C", repo, "ls-files", "-z", "-s"], None)?;
    let mut files: Vec<String> = Vec::new();
    let mut gitlinks = false;
    for rec in listing.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
            continue;
        };
        let meta = &rec[..tab];
        let path = String::from_utf8_lossy(&rec[tab + 1..]).into_owned();
        if meta.starts_with(b"160000") {
            gitlinks = true;
            continue;
        }
        if files.last() != Some(&path) {
            files.push(path);
        }
    }
    if submodules && gitlinks {
        return err("fetching Git submodules is not supported by nixvm yet");
    }
    let status = git(
        &[
            "-C",
            repo,
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=no",
            "--ignore-submodules=all",
        ],
        None,
    )?;
    let dirty = !status.is_empty();
    let ignored = if export_ignore {
        export_ignored(git_dir, &files, None)?
    } else {
        Default::default()
    };
    let staging = fetch_staging_path(vm)?;
    ensure_dir(&staging)?;
    let root = Path::new(repo);
    for f in &files {
        if is_ignored(f, &ignored) {
            continue;
        }
        let src = root.join(f);
        let Ok(md) = std::fs::symlink_metadata(&src) else {
            continue; // deleted in the working tree
        };
        let dst = join_components(&staging, &canon_components(f.as_bytes()));
        if md.file_type().is_symlink() {
            let t =
                std::fs::read_link(&src).map_err(|e| io_err("reading symbolic link", &src, e))?;
            use std::os::unix::ffi::OsStrExt;
            write_symlink(&dst, t.as_os_str().as_bytes())?;
        } else if md.is_file() {
            let data = std::fs::read(&src).map_err(|e| io_err("reading file", &src, e))?;
            write_file(&dst, &data, md.permissions().mode() & 0o100 != 0)?;
        }
    }
    if !dirty {
        if let Ok(r) = git_text(&["-C", repo, "symbolic-ref", "-q", "HEAD"]) {
            if !r.is_empty() {
                input.insert("ref".into(), Attr::Str(r));
            }
        }
        let rev = head.clone().unwrap_or_else(|| NULL_REV.to_string());
        input.insert("rev".into(), Attr::Str(rev.clone()));
        if !shallow {
            let n = match &head {
                Some(h) => rev_count(git_dir, h)?,
                None => 0,
            };
            input.insert("revCount".into(), Attr::Int(n));
        }
    } else {
        vm.warn(format!("Git tree '{repo}' is dirty"))?;
        if let Some(h) = &head {
            input.insert("dirtyRev".into(), Attr::Str(format!("{h}-dirty")));
            input.insert(
                "dirtyShortRev".into(),
                Attr::Str(format!("{}-dirty", &h[..7.min(h.len())])),
            );
        }
    }
    let lm = match &head {
        Some(h) => commit_time(git_dir, h)?,
        None => 0,
    };
    input.insert("lastModified".into(), Attr::Int(lm));
    Ok(Fetched::Staged(staging))
}
