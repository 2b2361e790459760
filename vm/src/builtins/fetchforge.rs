//! `github:` and `gitlab:` inputs, as CppNix fetches them: the commit a ref
//! names asked of the forge's API (unless the input pins `rev`), then the
//! forge's tarball of that commit, unpacked (its single top directory is the
//! root) with lastModified from its entries. `access-tokens` give the
//! forge's credentials by host (GitHub: `Authorization: token T`; GitLab:
//! `PAT:T` as `PRIVATE-TOKEN`, `OAuth2:T` as a bearer token). Hosts other
//! than github.com and gitlab.com are reached as GitHub Enterprise
//! (`/api/v3`) and self-hosted GitLab (`/api/v4`) are.

use super::fetchers::{download_with_headers, strip_singleton_dir, Fetched};
use super::fetchinput::get_str;
use super::flake::{Attr, FAttrs};
use crate::error::*;
use crate::fetch::archive::unpack_archive;
use crate::storeglue::fetch_staging_path;
use crate::vm::Vm;

/// The headers `access-tokens` give for `host` on forge `ty`.
fn auth_headers(vm: &Vm, ty: &str, host: &str) -> Vec<(String, String)> {
    let Some(token) = vm
        .settings
        .fetch
        .access_tokens
        .iter()
        .find(|(h, _)| h == host)
        .map(|(_, t)| t.clone())
    else {
        return Vec::new();
    };
    match ty {
        "gitlab" => match token.split_once(':') {
            Some(("PAT", t)) => vec![("PRIVATE-TOKEN".into(), t.into())],
            Some(("OAuth2", t)) => vec![("Authorization".into(), format!("Bearer {t}"))],
            _ => {
                crate::report::stderr_line(&format!(
                    "warning: Unrecognized access token for host '{host}'"
                ));
                Vec::new()
            }
        },
        _ => vec![("Authorization".into(), format!("token {token}"))],
    }
}

fn get_json(vm: &Vm, url: &str, headers: &[(String, String)]) -> EvalResult<serde_json::Value> {
    let data = download_with_headers(vm, url, headers)?;
    serde_json::from_slice(&data).map_err(|e| {
        EvalError::new(
            ErrorKind::Other,
            format!("parsing the answer of '{url}': {e}"),
        )
    })
}

/// The API and tarball URLs of a forge input.
struct Forge {
    commits: String,
    tarball: String,
}

fn urls(
    ty: &str,
    host: &str,
    owner: &str,
    repo: &str,
    reference: &str,
    rev: &str,
    authenticated: bool,
) -> Forge {
    match ty {
        "gitlab" => {
            let project = format!("{owner}%2F{repo}");
            Forge {
                commits: format!(
                    "https://{host}/api/v4/projects/{project}/repository/commits?ref_name={reference}"
                ),
                tarball: format!(
                    "https://{host}/api/v4/projects/{project}/repository/archive.tar.gz?sha={rev}"
                ),
            }
        }
        // With credentials, the API's tarball (which serves private repositories).
        _ if host == "github.com" => Forge {
            commits: format!("https://api.github.com/repos/{owner}/{repo}/commits/{reference}"),
            tarball: if authenticated {
                format!("https://api.github.com/repos/{owner}/{repo}/tarball/{rev}")
            } else {
                format!("https://github.com/{owner}/{repo}/archive/{rev}.tar.gz")
            },
        },
        _ => Forge {
            commits: format!("https://{host}/api/v3/repos/{owner}/{repo}/commits/{reference}"),
            tarball: format!("https://{host}/api/v3/repos/{owner}/{repo}/tarball/{rev}"),
        },
    }
}

pub(super) fn forge_accessor(vm: &mut Vm, input: &mut FAttrs) -> EvalResult<Fetched> {
    let ty = get_str(input, "type").unwrap_or_default();
    if ty == "sourcehut" {
        return err("sourcehut inputs are not supported by nixvm yet");
    }
    let default_host = if ty == "gitlab" {
        "gitlab.com"
    } else {
        "github.com"
    };
    let host = get_str(input, "host").unwrap_or_else(|| default_host.to_string());
    let owner = get_str(input, "owner").unwrap_or_default();
    let repo = get_str(input, "repo").unwrap_or_default();
    let headers = auth_headers(vm, &ty, &host);
    let rev = match get_str(input, "rev") {
        Some(r) => r,
        None => {
            let reference = get_str(input, "ref").unwrap_or_else(|| "HEAD".into());
            let api = urls(&ty, &host, &owner, &repo, &reference, "", false).commits;
            crate::storeglue::check_uri(vm, &api)?;
            // The answer is kept for tarball-ttl, as CppNix keeps it.
            let dir = vm.settings.fetch.cache_dir.clone();
            let key = format!("forge-ref\0{api}");
            let cached = dir
                .as_deref()
                .and_then(|d| crate::fetch::cache::lookup_value(d, &key));
            let ttl = vm.settings.fetch.tarball_ttl;
            if let Some((sha, _)) =
                cached.filter(|(_, t)| crate::fetch::cache::now().saturating_sub(*t) < ttl)
            {
                sha
            } else {
                let mut h = headers.clone();
                if ty == "github" {
                    h.push(("Accept".into(), "application/vnd.github.v3+json".into()));
                }
                let j = get_json(vm, &api, &h)?;
                let sha = if ty == "gitlab" {
                    j.get(0).and_then(|c| c.get("id"))
                } else {
                    j.get("sha")
                };
                let Some(sha) = sha.and_then(|s| s.as_str()) else {
                    return err(format!(
                        "the answer of '{api}' names no commit for '{reference}'"
                    ));
                };
                if let Some(d) = &dir {
                    crate::fetch::cache::record_value(d, &key, sha);
                }
                sha.to_string()
            }
        }
    };
    input.insert("rev".into(), Attr::Str(rev.clone()));
    // Locked (rev, narHash and lastModified known) and already there: nothing
    // to download.
    if let (Some(nar), Some(_)) = (
        super::fetchinput::nar_hash_of(input)?,
        super::fetchinput::get_int(input, "lastModified"),
    ) {
        let store = nixvm_store::StoreDir::new(&vm.settings.store_dir);
        let ca = nixvm_store::ContentAddress {
            method: nixvm_store::ContentAddressMethod::Recursive,
            hash: nar,
        };
        let name = get_str(input, "name").unwrap_or_else(|| "source".into());
        if let Ok(p) = store.make_fixed_output_path(&name, &ca, [""; 0], false) {
            let printed = store.print(&p);
            if crate::storeglue::fetched_path_exists(vm, &printed) {
                return Ok(Fetched::Stored(crate::storeglue::FetchedPath {
                    path: printed,
                    nar_hash: nar,
                    ca_hash: nar,
                }));
            }
        }
    }
    let tarball = urls(&ty, &host, &owner, &repo, "", &rev, !headers.is_empty()).tarball;
    crate::storeglue::check_uri(vm, &tarball)?;
    let data = download_with_headers(vm, &tarball, &headers)?;
    vm.info(format!(
        "unpacking '{}' into the Git cache...",
        super::fetchinput::input_to_string(input)
    ));
    let staging = fetch_staging_path(vm)?;
    let last_modified = unpack_archive(&data, &staging)?;
    let staging = strip_singleton_dir(vm, staging)?;
    input.insert(
        "lastModified".into(),
        Attr::Int(last_modified.max(0) as u64),
    );
    Ok(Fetched::Staged(staging))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forge_urls_as_cppnix_makes_them() {
        let g = urls(
            "github",
            "github.com",
            "NixOS",
            "nixpkgs",
            "HEAD",
            "abc",
            false,
        );
        assert_eq!(
            g.commits,
            "https://api.github.com/repos/NixOS/nixpkgs/commits/HEAD"
        );
        assert_eq!(
            g.tarball,
            "https://github.com/NixOS/nixpkgs/archive/abc.tar.gz"
        );
        let private = urls("github", "github.com", "o", "r", "", "abc", true);
        assert_eq!(
            private.tarball,
            "https://api.github.com/repos/o/r/tarball/abc"
        );
        let e = urls("github", "git.corp", "o", "r", "main", "abc", false);
        assert_eq!(e.commits, "https://git.corp/api/v3/repos/o/r/commits/main");
        assert_eq!(e.tarball, "https://git.corp/api/v3/repos/o/r/tarball/abc");
        let l = urls("gitlab", "gitlab.com", "o", "r", "main", "abc", false);
        assert_eq!(
            l.commits,
            "https://gitlab.com/api/v4/projects/o%2Fr/repository/commits?ref_name=main"
        );
        assert_eq!(
            l.tarball,
            "https://gitlab.com/api/v4/projects/o%2Fr/repository/archive.tar.gz?sha=abc"
        );
    }
}
