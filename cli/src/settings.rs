//! The settings CppNix knows, by name and kind, so that every one is accepted
//! (as `--option NAME VALUE`, a derived flag, or a nix.conf line) and an unknown
//! name gets CppNix's warning. Which of them act in nixvm is decided where they
//! are read (`config.rs`); the rest are accepted and have no effect here.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Bool,
    /// One value (a number, a string, a path, an enumeration).
    Value,
    /// A white-space separated list (`extra-NAME` appends to it).
    List,
}

use Kind::*;

/// The settings whose value is a number (CppNix parses them as integers;
/// the first two may be negative). `max-jobs` is also "auto".
const INTEGERS: &[&str] = &[
    "timeout",
    "max-silent-time",
    "max-call-depth",
    "cores",
    "build-cores",
    "max-jobs",
    "tarball-ttl",
    "download-attempts",
    "http-connections",
    "log-lines",
    "eval-profiler-frequency",
    "min-free",
    "max-free",
    "build-poll-interval",
    "connect-timeout",
    "narinfo-cache-negative-ttl",
    "narinfo-cache-positive-ttl",
    "stalled-download-timeout",
    "download-buffer-size",
    "max-build-log-size",
    "max-substitution-jobs",
    "min-free-check-interval",
    "gc-reserved-space",
];

/// CppNix's complaint about `value` for setting `name`, if it has one.
pub fn invalid_value(name: &str, value: &str) -> Option<String> {
    let name = name.strip_prefix("extra-").unwrap_or(name);
    if kind(name) == Some(Bool) {
        return (!matches!(value, "true" | "false"))
            .then(|| format!("Boolean setting '{name}' has invalid value '{value}'"));
    }
    if !INTEGERS.contains(&name) {
        return None;
    }
    if name == "max-jobs" {
        return (value != "auto" && value.parse::<u64>().is_err()).then(|| {
            "configuration setting 'max-jobs' should be 'auto' or an integer".to_string()
        });
    }
    let ok = if matches!(name, "timeout" | "max-silent-time") {
        value.parse::<i64>().is_ok()
    } else {
        value.parse::<u64>().is_ok()
    };
    (!ok).then(|| format!("setting '{name}' has invalid value '{value}'"))
}

/// CppNix 2.34's settings (libstore, libexpr, libfetchers, libflake, libmain,
/// libutil) and their aliases.
const SETTINGS: &[(&str, Kind)] = &[
    ("abort-on-warn", Bool),
    ("accept-flake-config", Bool),
    ("access-tokens", List),
    ("allow-dirty", Bool),
    ("allow-dirty-locks", Bool),
    ("allow-import-from-derivation", Bool),
    ("allow-new-privileges", Bool),
    ("allow-symlinked-store", Bool),
    ("allow-unsafe-native-code-during-evaluation", Bool),
    ("allowed-impure-host-deps", List),
    ("allowed-uris", List),
    ("allowed-users", List),
    ("always-allow-substitutes", Bool),
    ("auto-allocate-uids", Bool),
    ("auto-optimise-store", Bool),
    ("bash-prompt", Value),
    ("bash-prompt-prefix", Value),
    ("bash-prompt-suffix", Value),
    ("build-cores", Value),
    ("build-dir", Value),
    ("build-hook", List),
    ("build-max-jobs", Value),
    ("build-poll-interval", Value),
    ("build-timeout", Value),
    ("build-use-sandbox", Value),
    ("build-users-group", Value),
    ("builders", Value),
    ("builders-use-substitutes", Bool),
    ("commit-lock-file-summary", Value),
    ("compress-build-log", Bool),
    ("connect-timeout", Value),
    ("cores", Value),
    ("darwin-log-sandbox-violations", Bool),
    ("debugger-on-trace", Bool),
    ("debugger-on-warn", Bool),
    ("diff-hook", Value),
    ("download-attempts", Value),
    ("download-buffer-size", Value),
    ("download-speed", Value),
    ("eager-commit", Bool),
    ("env-keep-derivations", Bool),
    ("eval-cache", Bool),
    ("eval-cores", Value),
    ("eval-profile-file", Value),
    ("eval-profiler", Value),
    ("eval-profiler-frequency", Value),
    ("eval-system", Value),
    ("experimental-features", List),
    ("external-builders", Value),
    ("extra-platforms", List),
    ("fallback", Bool),
    ("filetransfer-retry-attempts", Value),
    ("filter-syscalls", Bool),
    ("flake-registry", Value),
    ("fsync-metadata", Bool),
    ("fsync-store-paths", Bool),
    ("gc-keep-derivations", Bool),
    ("gc-keep-outputs", Bool),
    ("gc-reserved-space", Value),
    ("hashed-mirrors", List),
    ("http-connections", Value),
    ("http2", Bool),
    ("id-count", Value),
    ("ignore-try", Bool),
    ("ignored-acls", List),
    ("impersonate-linux-26", Bool),
    ("impure-env", List),
    ("json-log-path", Value),
    ("keep-build-log", Bool),
    ("keep-derivations", Bool),
    ("keep-env-derivations", Bool),
    ("keep-failed", Bool),
    ("keep-going", Bool),
    ("keep-outputs", Bool),
    ("lazy-trees", Bool),
    ("lint-absolute-path-literals", Value),
    ("lint-short-path-literals", Value),
    ("lint-url-literals", Value),
    ("log-lines", Value),
    ("max-build-log-size", Value),
    ("max-call-depth", Value),
    ("max-free", Value),
    ("max-jobs", Value),
    ("max-silent-time", Value),
    ("max-substitution-jobs", Value),
    ("min-free", Value),
    ("min-free-check-interval", Value),
    ("nar-buffer-size", Value),
    ("narinfo-cache-negative-ttl", Value),
    ("narinfo-cache-positive-ttl", Value),
    ("netrc-file", Value),
    ("nix-path", List),
    ("nix-shell-always-looks-for-shell-nix", Bool),
    ("nix-shell-shebang-arguments-relative-to-script", Bool),
    ("plugin-files", List),
    ("post-build-hook", Value),
    ("pre-build-hook", Value),
    ("preallocate-contents", Bool),
    ("print-missing", Bool),
    ("pure-eval", Bool),
    ("require-drop-supplementary-groups", Bool),
    ("require-sigs", Bool),
    ("restrict-eval", Bool),
    ("run-diff-hook", Bool),
    ("sandbox", Value),
    ("sandbox-build-dir", Value),
    ("sandbox-dev-shm-size", Value),
    ("sandbox-fallback", Bool),
    ("sandbox-paths", List),
    ("secret-key-files", List),
    ("show-trace", Bool),
    ("ssl-cert-file", Value),
    ("stalled-download-timeout", Value),
    ("start-id", Value),
    ("store", Value),
    ("substitute", Bool),
    ("substituters", List),
    ("sync-before-registering", Bool),
    ("system", Value),
    ("system-features", List),
    ("tarball-ttl", Value),
    ("timeout", Value),
    ("trace-function-calls", Bool),
    ("trace-import-from-derivation", Bool),
    ("trace-verbose", Bool),
    ("trust-tarballs-from-git-forges", Bool),
    ("trusted-public-keys", List),
    ("trusted-substituters", List),
    ("trusted-users", List),
    ("upgrade-nix-store-path-url", Value),
    ("use-case-hack", Bool),
    ("use-cgroups", Bool),
    ("use-registries", Bool),
    ("use-sqlite-wal", Bool),
    ("use-xdg-base-directories", Bool),
    ("user-agent-suffix", Value),
    ("warn-dirty", Bool),
    ("warn-large-path-threshold", Value),
    ("warn-short-path-literals", Bool),
    // nixvm's own (see ARCHITECTURE.md, "Memory manager").
    ("gc-initial-heap", Value),
    ("gc-growth", Value),
    ("gc-stress", Bool),
    // See vm/src/codecache.rs.
    ("bytecode-cache", Bool),
];

/// The kind of a known setting (an `extra-` prefix is not stripped here).
pub fn kind(name: &str) -> Option<Kind> {
    SETTINGS.iter().find(|(n, _)| *n == name).map(|&(_, k)| k)
}

/// Whether `name` (possibly `extra-NAME` of a list) is a setting CppNix knows.
pub fn known(name: &str) -> bool {
    kind(name).is_some()
        || name
            .strip_prefix("extra-")
            .is_some_and(|b| kind(b) == Some(List))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        let mut names: Vec<&str> = SETTINGS.iter().map(|(n, _)| *n).collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n, "a setting is listed twice");
        assert!(known("extra-experimental-features"));
        assert!(!known("extra-pure-eval"));
        assert!(!known("frobnicate"));
    }
}
