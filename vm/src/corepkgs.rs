//! Built-in `<nix/...>` files that CppNix ships inside the binary.

use crate::value::*;

const FETCHURL: &str = r#"
{ system ? "", url, hash ? "", sha256 ? "", sha1 ? "", sha512 ? "", md5 ? "", outputHash ? "",
  outputHashAlgo ? "", outputHashMode ? "flat", executable ? false, unpack ? false, name ? baseNameOf (toString url),
  impure ? false }:
derivation {
  builder = "builtin:fetchurl";
  system = "builtin";
  inherit name url executable unpack;
  outputHashMode = if unpack || executable then "recursive" else "flat";
  outputHashAlgo = if hash != "" then "" else if sha512 != "" then "sha512" else if sha1 != "" then "sha1" else if md5 != "" then "md5" else "sha256";
  outputHash = if hash != "" then hash else if sha512 != "" then sha512 else if sha1 != "" then sha1 else if md5 != "" then md5 else sha256;
  preferLocalBuild = true;
  impureEnvVars = [ "http_proxy" "https_proxy" "ftp_proxy" "all_proxy" "no_proxy" ];
  urls = [ url ];
}
"#;

/// Where `<nix/...>` files live: a path that `source` recognises.
const ROOT: &str = "/__corepkgs__/";

/// The path `<name>` resolves to when it names a built-in file.
pub fn lookup(name: &str) -> Option<Value> {
    let file = name.strip_prefix("nix/")?;
    let path = format!("{ROOT}{file}");
    source(&path).map(|_| Value::path(&path))
}

/// Source of a corepkg path, if `path` names one.
pub fn source(path: &str) -> Option<&'static str> {
    match path.strip_prefix(ROOT)? {
        "fetchurl.nix" => Some(FETCHURL),
        _ => None,
    }
}
