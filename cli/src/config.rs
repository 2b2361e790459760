//! From flags, settings and the environment to a store and an `Evaluator`.

use crate::args::InstArgs;
use nixvm::Evaluator;
use nixvm_compiler::parser::LintLevel;
use std::path::PathBuf;

pub fn lint(level: Option<&str>) -> LintLevel {
    match level {
        Some("warn") => LintLevel::Warn,
        Some("fatal") => LintLevel::Fatal,
        _ => LintLevel::Ignore,
    }
}

pub fn features_of(a: &InstArgs) -> Vec<String> {
    option_list(a, "experimental-features")
}

/// A setting's value: the last valid `--option` (nix.conf lines come first,
/// see `conf.rs`, so the command line wins; an invalid value was warned
/// about and is ignored, as CppNix).
pub fn option_value<'a>(a: &'a InstArgs, name: &str) -> Option<&'a str> {
    options(a)
        .filter(|&(n, v)| n == name && crate::settings::invalid_value(n, v).is_none())
        .map(|(_, v)| v)
        .next_back()
}

/// Every `--option NAME VALUE` pair, in order.
pub fn options(a: &InstArgs) -> impl DoubleEndedIterator<Item = (&str, &str)> {
    a.option
        .chunks_exact(2)
        .map(|p| (p[0].as_str(), p[1].as_str()))
}

/// A list setting: its last full value, with every `extra-NAME` after it appended.
pub fn option_list(a: &InstArgs, name: &str) -> Vec<String> {
    let extra = format!("extra-{name}");
    let mut out = Vec::new();
    for (n, v) in options(a) {
        if n == name {
            out.clear();
        }
        if n == name || n == extra {
            out.extend(v.split_whitespace().map(str::to_string));
        }
    }
    out
}

/// A Boolean setting, if given (an invalid value is ignored, as CppNix
/// ignores it after its warning).
pub fn option_bool(a: &InstArgs, name: &str) -> Option<bool> {
    options(a)
        .filter(|&(n, _)| n == name)
        .filter_map(|(_, v)| match v {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        })
        .next_back()
}

pub fn truthy(s: &str) -> bool {
    matches!(s, "true" | "1" | "yes")
}

/// CppNix's warnings for the settings given: an unknown name, a Boolean
/// that is neither "true" nor "false".
pub fn check_options(a: &InstArgs) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for (name, value) in options(a) {
        if let Some(w) = crate::settings::invalid_value(name, value) {
            warnings.push(w);
            continue;
        }
        match crate::settings::kind(name) {
            None if !crate::settings::known(name) => {
                let w = format!("unknown setting '{name}'");
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
            _ => {}
        }
    }
    Ok(warnings)
}

/// How downloads are made: `download-attempts`, `connect-timeout`,
/// `netrc-file`, `ssl-cert-file` (for the fetchers and `builtin:fetchurl`).
pub fn transfer_settings(a: &InstArgs) -> nixvm_store::transfer::TransferSettings {
    let mut t = nixvm_store::transfer::TransferSettings::default();
    let num = |n: &str| option_value(a, n).and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = num("download-attempts") {
        t.download_attempts = n.min(u32::MAX as u64) as u32;
    }
    if let Some(c) = num("connect-timeout") {
        t.connect_timeout = c;
    }
    let path = |n: &str| {
        option_value(a, n).map(|f| Some(PathBuf::from(f)).filter(|p| !p.as_os_str().is_empty()))
    };
    if let Some(f) = path("netrc-file") {
        t.netrc_file = f;
    }
    if let Some(f) = path("ssl-cert-file") {
        t.ssl_cert_file = f;
    }
    t
}

pub fn build_settings(a: &InstArgs) -> Result<nixvm_store::build::BuildSettings, String> {
    let mut s = nixvm_store::build::BuildSettings {
        transfer: transfer_settings(a),
        ..Default::default()
    };
    let jobs = a.jobs.as_deref().or_else(|| option_value(a, "max-jobs"));
    if let Some(j) = jobs {
        s.jobs = if j == "auto" {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            j.parse()
                .map_err(|_| format!("invalid value '{j}' for --max-jobs"))?
        };
    }
    if let Some(c) = option_value(a, "cores") {
        s.cores = c
            .parse()
            .map_err(|_| format!("invalid value '{c}' for the option 'cores'"))?;
    }
    s.sandbox = match option_value(a, "sandbox") {
        Some(v) if truthy(v) => nixvm_store::build::SandboxMode::On,
        Some("relaxed") => nixvm_store::build::SandboxMode::Auto,
        Some(_) => nixvm_store::build::SandboxMode::Off,
        None => nixvm_store::build::SandboxMode::Auto,
    };
    s.keep_failed = a.keep_failed_short || option_bool(a, "keep-failed").unwrap_or(false);
    s.print_build_logs = !a.quiet;
    Ok(s)
}

/// The evaluator's store (see `storeuri.rs`). Writable for instantiation,
/// builds and `--read-write-mode`; read-only for `--eval` (as CppNix), where
/// a local store is opened only if it already exists.
pub fn make_store(a: &InstArgs, writable: bool) -> Result<Option<crate::storeuri::Store>, String> {
    crate::storeuri::open(a, writable)
}

pub fn build_evaluator_with(a: &InstArgs, store: Option<crate::storeuri::Store>) -> Evaluator {
    let features = features_of(a);
    let mut b = Evaluator::builder();
    for i in &a.include {
        b = b.search_path(i);
    }
    // The `nix-path` setting, else $NIX_PATH (a configuration file's
    // `nix-path` was dropped when $NIX_PATH is set: see `with_config`);
    // `extra-nix-path` appends either way.
    let nix_path_set = option_value(a, "nix-path").is_some();
    if !nix_path_set {
        if let Ok(np) = std::env::var("NIX_PATH") {
            b = b.nix_path(&np);
        }
    }
    for e in option_list(a, "nix-path") {
        b = b.search_path(&e);
    }
    if let Ok(sd) = std::env::var("NIX_STORE_DIR") {
        b = b.store_dir(&sd);
    }
    let abort_env = std::env::var("NIX_ABORT_ON_WARN")
        .map(|v| v == "1" || v == "true")
        .unwrap_or(false);
    b = b
        .pure(option_bool(a, "pure-eval").unwrap_or(false))
        .settings(|s| {
            if let Some(d) = option_value(a, "max-call-depth").and_then(|v| v.parse().ok()) {
                s.max_call_depth = d;
            }
            s.restrict_eval = option_bool(a, "restrict-eval").unwrap_or(false);
            s.allowed_uris = option_list(a, "allowed-uris");
            if let Some(sys) = option_value(a, "system") {
                s.system = sys.to_string();
            }
            // The cycle collector's policy (see ARCHITECTURE.md, "Memory manager").
            if let Some(n) = std::env::var("NIXVM_GC_INITIAL_HEAP")
                .ok()
                .and_then(|v| parse_bytes(&v))
            {
                s.gc_initial_heap = n;
            }
            if let Some(g) = std::env::var("NIXVM_GC_GROWTH")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                s.gc_growth = g;
            }
            s.gc_stress = std::env::var("NIXVM_GC_STRESS").is_ok_and(|v| v == "1" || v == "true");
            // The same three as settings (`--option NAME VALUE`), which win over
            // the environment as CppNix's options do.
            if let Some(n) = option_value(a, "gc-initial-heap").and_then(parse_bytes) {
                s.gc_initial_heap = n;
            }
            if let Some(g) = option_value(a, "gc-growth").and_then(|v| v.parse().ok()) {
                s.gc_growth = g;
            }
            if let Some(v) = option_value(a, "gc-stress") {
                s.gc_stress = truthy(v);
            }
            // The bytecode cache: on unless the setting or the environment
            // (`NIXVM_BYTECODE_CACHE=0`) turns it off; the environment may
            // also name its directory.
            let env = std::env::var("NIXVM_BYTECODE_CACHE").ok();
            let on = match option_value(a, "bytecode-cache") {
                Some(v) => truthy(v),
                None => !matches!(env.as_deref(), Some("0" | "false" | "")),
            };
            s.bytecode_cache = match env.as_deref() {
                _ if !on => None,
                Some(d) if d.starts_with('/') => Some(d.into()),
                _ => nixvm::codecache::default_dir(),
            };
            s.show_trace = crate::diag::show_trace_of(a);
            s.pipe_operators = features.iter().any(|f| f == "pipe-operators");
            s.parse_toml_timestamps = features.iter().any(|f| f == "parse-toml-timestamps");
            s.lint_absolute_path = lint(option_value(a, "lint-absolute-path-literals"));
            s.lint_short_path = lint(option_value(a, "lint-short-path-literals"));
            s.lint_url = lint(option_value(a, "lint-url-literals"));
            s.abort_on_warn = option_bool(a, "abort-on-warn").unwrap_or(abort_env);
            s.experimental_features = features.clone();
            if let Some(v) = option_bool(a, "allow-import-from-derivation") {
                s.allow_ifd = v;
            }
            // The fetchers' settings (see vm/src/fetch).
            if let Some(t) = option_value(a, "tarball-ttl").and_then(|v| v.trim().parse().ok()) {
                s.fetch.tarball_ttl = t;
            }
            s.fetch.transfer = transfer_settings(a);
            s.fetch.access_tokens = option_list(a, "access-tokens")
                .iter()
                .filter_map(|t| t.split_once('='))
                .map(|(h, t)| (h.to_string(), t.to_string()))
                .collect();
            if a.refresh {
                s.fetch.tarball_ttl = 0;
            }
        });
    if let Some(st) = store {
        b = b.store_dir(&st.store_dir()).store(st.backend());
    }
    let mut ev = b.build();
    if let Some(n) = a.heap_census.filter(|&n| n > 0) {
        ev.vm.census = nixvm::census::Schedule::every(n);
    }
    // --trace-ops wins over --stats' counting: one observer at a time.
    if a.trace_ops {
        let out = std::io::LineWriter::new(std::io::stderr());
        ev.vm.observer = Some(Box::new(nixvm::observe::TraceOps::new(out)));
    } else if a.stats {
        ev.vm.observer = Some(Box::<nixvm::observe::OpStats>::default());
    }
    ev
}

/// `123`, `64K`, `64M` or `1G` as bytes.
pub fn parse_bytes(v: &str) -> Option<usize> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 'K' | 'k') => (&v[..i], 1 << 10),
        (i, 'M' | 'm') => (&v[..i], 1 << 20),
        (i, 'G' | 'g') => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.parse::<usize>().ok()?.checked_mul(mult)
}

pub fn max_rss_kib() -> u64 {
    proc_status_kib("VmHWM:")
}

/// A `KiB` figure of /proc/self/status (0 if unreadable).
pub fn proc_status_kib(field: &str) -> u64 {
    pid_status_kib("self", field)
}

/// A field in KiB of `/proc/PID/status` (`VmRSS:`); 0 if unreadable.
pub fn pid_status_kib(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}
