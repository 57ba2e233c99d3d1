//! Named network namespaces, made as iproute2 makes them (a bind mount of
//! the namespace on `/run/netns/NAME`, `/run/netns` a shared mount point),
//! so that `ip netns list` / `ip netns exec` and the operator see the same
//! names faultline uses. No `ip` process: the namespace is unshared on a
//! scratch thread, and its links are changed through rtnetlink
//! ([`faultline_sys::rtnl`]) from a socket opened inside it.
//!
//! It must not build topologies: bridges and addresses are the harness's
//! business, through [`NetNs::rtnl`]. Tools netlink does not replace (`nft`,
//! `iptables`) run through [`NetNs::run`], entering the namespace in the
//! child. [`NetNs::ip`] runs `ip -n NAME` for tests only (an independent
//! witness): nothing on a run's path starts `ip`.

use crate::process::{run, SpawnError};
use faultline_sys::rtnl::{LinkChange, Request, Rtnl, RtnlError};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
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
    /// A step of creating or deleting a named namespace failed.
    #[error("cannot {step} network namespace {name}")]
    Namespace {
        /// What was being done, e.g. `bind-mount`.
        step: &'static str,
        /// The namespace.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A netlink request inside a namespace failed.
    #[error("in network namespace {ns}")]
    Rtnl {
        /// The namespace.
        ns: String,
        /// What failed, naming the operation and interface.
        #[source]
        source: RtnlError,
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
    /// Creates the namespace (as `ip netns add NAME` does) and brings `lo`
    /// up.
    pub fn create(name: &str) -> Result<NetNs, NetError> {
        let (ns, mut rtnl) = NetNs::create_bare(name)?;
        if let Err(e) = rtnl.exec(lo_up()) {
            drop(rtnl);
            let _ = ns.delete();
            return Err(ns.rtnl_err(e));
        }
        Ok(ns)
    }

    /// Creates the namespace and returns a netlink socket inside it; `lo`
    /// is left down for the caller to bring up with its other requests
    /// ([`lo_up`]). On failure nothing is left behind.
    pub fn create_bare(name: &str) -> Result<(NetNs, Rtnl), NetError> {
        check_name(name)?;
        let ns = NetNs::open(name);
        let step = |step: &'static str| {
            move |source: io::Error| NetError::Namespace {
                step,
                name: name.to_string(),
                source,
            }
        };
        share_run_dir().map_err(step("prepare /run/netns for"))?;
        let path = ns.path();
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(step("create the mount point of"))?;
        let made = std::thread::scope(|s| {
            s.spawn(|| -> Result<Rtnl, NetError> {
                // SAFETY: unshare moves only this scratch thread, which
                // ends right after.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(step("unshare")(io::Error::last_os_error()));
                }
                mount_bind(Path::new("/proc/thread-self/ns/net"), &path)
                    .map_err(step("bind-mount"))?;
                Rtnl::open().map_err(|e| ns.rtnl_err(e))
            })
            .join()
            .unwrap_or_else(|_| Err(step("create")(io::Error::other("thread panicked"))))
        });
        match made {
            Ok(rtnl) => Ok((ns, rtnl)),
            Err(e) => {
                let _ = ns.delete();
                Err(e)
            }
        }
    }

    /// Writes each `(key, value)` under `/proc/sys/` as seen from inside
    /// the namespace (a scratch thread enters it: `/proc/sys/net` is the
    /// namespace of the task that opens it). A key whose file does not
    /// exist (its module is not loaded) is skipped; returns the keys
    /// written.
    pub fn set_sysctls(&self, pairs: &[(&str, &str)]) -> Result<Vec<String>, NetError> {
        let path = self.path();
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let step = |source| NetError::Namespace {
            step: "set sysctls in",
            name: self.name.clone(),
            source,
        };
        std::thread::spawn(move || -> io::Result<Vec<String>> {
            faultline_sys::netns::enter(&path).map_err(io::Error::other)?;
            let mut written = Vec::new();
            for (key, value) in pairs {
                let file = Path::new("/proc/sys").join(key.replace('.', "/"));
                if !file.exists() {
                    continue;
                }
                fs::write(&file, &value)
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", file.display())))?;
                written.push(key);
            }
            Ok(written)
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("thread panicked")))
        .map_err(step)
    }

    /// A netlink socket inside the namespace (opened from a scratch thread).
    pub fn rtnl(&self) -> Result<Rtnl, NetError> {
        Rtnl::open_in(&self.path()).map_err(|e| self.rtnl_err(e))
    }

    /// Runs `reqs` in one datagram through a fresh socket inside the
    /// namespace.
    pub fn exec(&self, reqs: Vec<Request>) -> Result<(), NetError> {
        self.rtnl()?.exec_all(reqs).map_err(|e| self.rtnl_err(e))
    }

    /// A netlink error inside this namespace.
    pub fn rtnl_err(&self, source: RtnlError) -> NetError {
        NetError::Rtnl {
            ns: self.name.clone(),
            source,
        }
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

    /// Runs `program args...` inside the namespace (the child enters it
    /// before exec: no `ip netns exec`) and returns its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, NetError> {
        let command = format!("{program} {} (in {})", args.join(" "), self.name);
        checked(command, crate::process::run_in(&self.path(), program, args))
    }

    /// Runs `ip -n NAME args...` and returns its stdout.
    pub fn ip(&self, args: &[&str]) -> Result<String, NetError> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Deletes the namespace (as `ip netns del NAME` does: lazy unmount,
    /// unlink); already gone is fine. The namespace itself ends when the
    /// last process and socket in it are gone.
    pub fn delete(&self) -> Result<(), NetError> {
        check_name(&self.name)?;
        let path = self.path();
        let err = |step| {
            move |source| NetError::Namespace {
                step,
                name: self.name.clone(),
                source,
            }
        };
        match umount_detach(&path) {
            Ok(()) => {}
            // Not mounted (a half-made one) or already gone.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOENT)) => {}
            Err(e) => return Err(err("unmount")(e)),
        }
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err("remove")(e)),
            _ => Ok(()),
        }
    }

    /// Names of the namespaces under `/run/netns`, sorted; none if the
    /// folder does not exist.
    pub fn list() -> Result<Vec<String>, NetError> {
        list_in(Path::new(NETNS_DIR))
    }
}

/// Brings `lo` up, as a request for [`Rtnl::exec_all`].
pub fn lo_up() -> Request {
    Request::set_link_index(
        1,
        "lo",
        &LinkChange {
            up: Some(true),
            ..LinkChange::default()
        },
    )
}

fn cpath(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn mount_bind(from: &Path, to: &Path) -> io::Result<()> {
    let (from, to) = (cpath(from)?, cpath(to)?);
    // SAFETY: valid NUL-terminated paths; no data argument.
    let r = unsafe {
        libc::mount(
            from.as_ptr(),
            to.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn umount_detach(path: &Path) -> io::Result<()> {
    let p = cpath(path)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `/run/netns` a shared mount point, as iproute2 does, so that a
/// namespace mounted there is seen in every mount namespace that shares it
/// (`ip netns exec` makes its own).
fn share_run_dir() -> io::Result<()> {
    let dir = Path::new(NETNS_DIR);
    match fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let c = cpath(dir)?;
    let shared = || {
        // SAFETY: a valid NUL-terminated path; only propagation changes.
        unsafe {
            libc::mount(
                c"".as_ptr(),
                c.as_ptr(),
                c"none".as_ptr(),
                libc::MS_SHARED | libc::MS_REC,
                std::ptr::null(),
            )
        }
    };
    if shared() == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::EINVAL) {
        return Err(e);
    }
    // Not a mount point yet: bind it onto itself, then share it.
    // SAFETY: valid NUL-terminated paths.
    if unsafe {
        libc::mount(
            c.as_ptr(),
            c.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND | libc::MS_REC,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(io::Error::last_os_error());
    }
    if shared() != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
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
    checked(command, run("ip", args))
}

/// The stdout of a finished command, or why it failed.
fn checked(
    command: String,
    out: Result<crate::process::Output, SpawnError>,
) -> Result<String, NetError> {
    let out = out.map_err(|source| NetError::Spawn {
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
    fn root_rtnl_builds_what_ip_sees_and_a_refusal_names_the_operation() {
        use faultline_sys::rtnl::{parse_mac, VethPeer};
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let (a, b) = (unique_name("rta"), unique_name("rtb"));
        let (nsa, mut rtnl) = NetNs::create_bare(&a).unwrap();
        let nsb = NetNs::create(&b).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let file = fs::File::open(nsb.path()).unwrap();
            let up = LinkChange {
                up: Some(true),
                ..LinkChange::default()
            };
            rtnl.exec_all(vec![lo_up(), Request::add_bridge("br0", true)])
                .unwrap();
            let br = rtnl.index_of("br0").unwrap();
            rtnl.exec(Request::add_veth(
                "p0",
                &LinkChange {
                    up: Some(true),
                    master: Some(br),
                    mac: None,
                },
                &VethPeer {
                    name: "eth0",
                    netns: Some(std::os::fd::AsFd::as_fd(&file)),
                    mac: parse_mac("02:fa:00:00:01:07"),
                    index: 0,
                    up: false,
                },
            ))
            .unwrap();
            let shown = nsa.ip(&["-o", "link", "show", "dev", "p0"]).unwrap();
            assert!(shown.contains(" master br0 "), "{shown}");
            let mut rb = nsb.rtnl().unwrap();
            let eth0 = rb.index_of("eth0").unwrap();
            let ip = std::net::Ipv4Addr::new(10, 250, 1, 7);
            rb.exec_all(vec![
                Request::add_addr(eth0, "eth0", ip, 24),
                Request::set_link_index(eth0, "eth0", &up),
            ])
            .unwrap();
            let shown = nsb.ip(&["-o", "addr", "show", "dev", "eth0"]).unwrap();
            assert!(
                shown.contains("inet 10.250.1.7/24 scope global eth0"),
                "{shown}"
            );
            let shown = nsb.ip(&["-o", "link", "show", "dev", "eth0"]).unwrap();
            assert!(shown.contains("link/ether 02:fa:00:00:01:07 "), "{shown}");
            assert!(shown.contains(",UP"), "{shown}");
            // The dump agrees with ip.
            let links = rb.links().unwrap();
            let l = links.iter().find(|l| l.name == "eth0").unwrap();
            assert_eq!(l.mac, parse_mac("02:fa:00:00:01:07"));
            assert!(l.is_up());
            let addrs = rb.addrs().unwrap();
            assert!(addrs
                .iter()
                .any(|x| x.ip == ip && x.index == eth0 && x.prefix_len == 24));

            // Refusals name the namespace, the operation and the interface.
            let e = nsb
                .exec(vec![Request::add_addr(eth0, "eth0", ip, 24)])
                .unwrap_err();
            let text = faultline_sys::error::chain(&e);
            assert!(
                text.starts_with(&format!(
                    "in network namespace {b}: cannot add address 10.250.1.7/24 to eth0: File exists"
                )),
                "{text}"
            );
            let e = nsb
                .exec(vec![Request::set_link("nosuch0", &up)])
                .unwrap_err();
            let text = faultline_sys::error::chain(&e);
            assert!(
                text.contains("cannot set link nosuch0 up: No such device"),
                "{text}"
            );
            let e = rb
                .exec(Request::del_addr(
                    eth0,
                    "eth0",
                    std::net::Ipv4Addr::new(10, 250, 1, 8),
                    24,
                ))
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL), "{e:?}");
        }));
        drop(rtnl);
        nsa.delete().unwrap();
        nsb.delete().unwrap();
        let left = NetNs::list().unwrap();
        assert!(!left.contains(&a) && !left.contains(&b));
        if let Err(panic) = result {
            std::panic::resume_unwind(panic);
        }
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
