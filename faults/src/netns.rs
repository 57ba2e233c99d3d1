//! Named network namespaces through iproute2's `ip`, so that `ip netns
//! list` and the operator see the same names faultline uses.
//!
//! It runs `ip` through [`crate::process::run`] (never std's waiting
//! calls). It must not build topologies: bridges and addresses are the
//! harness's business, through [`NetNs::ip`].

use crate::process::{run, SpawnError};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where iproute2 keeps named namespaces.
const NETNS_DIR: &str = "/run/netns";

/// A network operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The name cannot be a namespace name.
    #[error("invalid network namespace name {name:?}")]
    InvalidName {
        /// The name.
        name: String,
    },
    /// `ip` could not be run.
    #[error("cannot run `{command}`")]
    Spawn {
        /// The full command line.
        command: String,
        /// The cause.
        #[source]
        source: SpawnError,
    },
    /// `ip` failed.
    #[error("`{command}` failed with {status}: {stderr}")]
    Failed {
        /// The full command line.
        command: String,
        /// How it ended.
        status: crate::process::ExitStatus,
        /// What it printed on stderr, trimmed.
        stderr: String,
    },
    /// The namespace folder could not be read.
    #[error("cannot read {path}")]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// A named network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetNs {
    name: String,
}

fn check_name(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(NetError::InvalidName {
            name: name.to_string(),
        })
    }
}

impl NetNs {
    /// Creates the namespace (`ip netns add NAME`) and brings `lo` up.
    pub fn create(name: &str) -> Result<NetNs, NetError> {
        check_name(name)?;
        ip(&["netns", "add", name])?;
        let ns = NetNs::open(name);
        if let Err(e) = ns.ip(&["link", "set", "lo", "up"]) {
            let _ = ns.delete();
            return Err(e);
        }
        Ok(ns)
    }

    /// The namespace called `name`, which must already exist for use.
    pub fn open(name: &str) -> NetNs {
        NetNs {
            name: name.to_string(),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its file, `/run/netns/NAME`, for [`crate::process::Spawn::netns`].
    pub fn path(&self) -> PathBuf {
        Path::new(NETNS_DIR).join(&self.name)
    }

    /// Runs `ip -n NAME args...` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Deletes the namespace (`ip netns del NAME`); already gone is fine.
    pub fn delete(&self) -> Result<(), NetError> {
        check_name(&self.name)?;
        if !self.path().exists() {
            return Ok(());
        }
        match ip(&["netns", "del", &self.name]) {
            Err(NetError::Failed { .. }) if !self.path().exists() => Ok(()),
            other => other.map(drop),
        }
    }

    /// Names of the namespaces under `/run/netns`, sorted; none if the
    /// folder does not exist.
    pub fn list() -> Result<Vec<String>, NetError> {
        list_in(Path::new(NETNS_DIR))
    }
}

fn list_in(dir: &Path) -> Result<Vec<String>, NetError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(NetError::ReadDir {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| NetError::ReadDir {
            path: dir.to_path_buf(),
            source,
        })?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Runs host-level `ip args...` and returns its stdout.
pub fn ip(args: &[&str]) -> Result<String, NetError> {
    let command = std::iter::once("ip")
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let out = run("ip", args).map_err(|source| NetError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(NetError::Failed {
            command,
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{ExitStatus, Reaper, Spawn};
    use crate::testutil::{is_root, unique_name};
    use std::time::Duration;

    #[test]
    fn names_with_slashes_or_dots_are_refused() {
        for bad in ["", ".", "..", "a/b", "-n"] {
            assert!(
                matches!(check_name(bad), Err(NetError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        check_name("fltest-ok_1").unwrap();
    }

    #[test]
    fn list_of_a_missing_folder_is_empty_and_sorted_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        assert!(list_in(&dir.path().join("none")).unwrap().is_empty());
        fs::write(dir.path().join("b"), "").unwrap();
        fs::write(dir.path().join("a"), "").unwrap();
        assert_eq!(list_in(dir.path()).unwrap(), vec!["a", "b"]);
    }

    #[test]
    fn a_failing_ip_command_names_the_command_and_stderr() {
        let err = ip(&["link", "show", "dev", "fltest-no-such-link"]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("`ip link show dev fltest-no-such-link` failed with exit code"),
            "{text}"
        );
        assert!(text.contains("fltest-no-such-link"), "{text}");
    }

    #[test]
    fn root_netns_create_ip_spawn_delete() {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = unique_name("ns");
        let ns = NetNs::create(&name).unwrap();
        let result = std::panic::catch_unwind(|| {
            assert!(NetNs::list().unwrap().contains(&name));
            assert_eq!(ns.path(), PathBuf::from(format!("/run/netns/{name}")));
            let links = ns.ip(&["-o", "link", "show", "lo"]).unwrap();
            assert!(links.contains("UP"), "{links}");
            ns.ip(&["addr", "add", "10.250.0.1/24", "dev", "lo"])
                .unwrap();
            // A process spawned into the namespace sees its address.
            let dir = tempfile::tempdir().unwrap();
            let out_path = dir.path().join("out");
            let pid = Spawn::new("ip")
                .args(["-o", "addr", "show", "dev", "lo"])
                .netns(ns.path())
                .stdout(fs::File::create(&out_path).unwrap())
                .spawn()
                .unwrap();
            let status = Reaper::global()
                .watch(pid)
                .recv_timeout(Duration::from_secs(5));
            assert_eq!(status, Ok(ExitStatus::Code(0)));
            assert!(fs::read_to_string(&out_path)
                .unwrap()
                .contains("10.250.0.1/24"));
        });
        ns.delete().unwrap();
        ns.delete().unwrap();
        assert!(!NetNs::list().unwrap().contains(&name));
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
    }
}
