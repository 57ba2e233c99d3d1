//! Parsing `/proc/self/mountinfo` into the cgroup mounts faultline uses.
//!
//! It reads text only; it must not touch the cgroup filesystems.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The v1 controllers faultline puts its processes under.
pub const V1_CONTROLLERS: [&str; 4] = ["cpu", "memory", "freezer", "pids"];

/// The cgroup mounts found in a mountinfo text.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Mounts {
    /// Mount point of each used v1 controller (the first mount seen wins).
    pub v1: BTreeMap<String, PathBuf>,
    /// The first cgroup2 mount point.
    pub unified: Option<PathBuf>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let oct = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\' && oct.is_some_and(|o| o.iter().all(|b| (b'0'..=b'7').contains(b))) {
            let o = oct.unwrap_or_default();
            out.push(((o[0] - b'0') << 6) | ((o[1] - b'0') << 3) | (o[2] - b'0'));
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds the cgroup mounts in a mountinfo text.
pub fn parse(text: &str) -> Mounts {
    let mut mounts = Mounts::default();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(unescape(left[4]));
        match right[0] {
            "cgroup2" if mounts.unified.is_none() => mounts.unified = Some(mount_point),
            "cgroup" => {
                for opt in right[2].split(',') {
                    if V1_CONTROLLERS.contains(&opt) && !mounts.v1.contains_key(opt) {
                        mounts.v1.insert(opt.to_string(), mount_point.clone());
                    }
                }
            }
            _ => {}
        }
    }
    mounts
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_layout_maps_used_controllers_and_unified() {
        let m = parse(HYBRID);
        assert_eq!(m.v1.len(), 4);
        assert_eq!(m.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(m.v1["pids"], PathBuf::from("/sys/fs/cgroup/pids"));
        assert!(!m.v1.contains_key("name=systemd"));
        assert_eq!(m.unified, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    }

    #[test]
    fn comounted_cpu_cpuacct_and_pure_v2() {
        let m = parse(
            "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             2 0 0:2 / /sys/fs/cgroup/my\\040dir rw - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert_eq!(m.v1["cpu"], PathBuf::from("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(m.unified, Some(PathBuf::from("/sys/fs/cgroup/my dir")));
        let v2 = parse("24 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
        assert!(v2.v1.is_empty());
        assert_eq!(v2.unified, Some(PathBuf::from("/sys/fs/cgroup")));
    }
}
