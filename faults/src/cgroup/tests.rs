use super::*;
use crate::process::{ExitStatus, Reaper, Spawn};
use crate::testutil::{is_root, unique_name};
use std::time::Duration;

/// A fake hybrid host on a temporary folder: cpu, memory, freezer, pids
/// and unified roots.
fn fake_hybrid(dir: &Path) -> CgroupHost {
    let mut v1 = BTreeMap::new();
    for c in mountinfo::V1_CONTROLLERS {
        fs::create_dir_all(dir.join(c)).unwrap();
        v1.insert(c.to_string(), dir.join(c));
    }
    fs::create_dir_all(dir.join("unified")).unwrap();
    CgroupHost::with_roots(v1, Some(dir.join("unified")))
}

fn touch(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

#[test]
fn with_roots_picks_v2_only_without_v1_controllers() {
    let v2 = CgroupHost::with_roots(BTreeMap::new(), Some("/cg".into()));
    assert_eq!(v2.layout(), &Layout::V2 { root: "/cg".into() });
    let dir = tempfile::tempdir().unwrap();
    let hybrid = fake_hybrid(dir.path());
    assert!(matches!(
        hybrid.layout(),
        Layout::V1Hybrid {
            unified: Some(_),
            ..
        }
    ));
}

#[test]
fn create_makes_the_group_in_every_used_hierarchy_only() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    fs::create_dir_all(dir.path().join("systemd")).unwrap();
    let rel = Path::new("faultline/ab12/n1/service");
    let group = host.create(rel).unwrap();
    assert_eq!(group.rel(), rel);
    let dirs = group.dirs();
    assert_eq!(dirs.len(), 5);
    for d in &dirs {
        assert!(d.is_dir(), "{}", d.display());
    }
    assert!(!dir.path().join("systemd/faultline").exists());
    assert_eq!(
        group.procs_files()[0],
        dir.path().join("cpu").join(rel).join("cgroup.procs")
    );
    assert_eq!(host.children(Path::new("faultline")).unwrap(), vec!["ab12"]);
    // Creating again is fine.
    host.create(rel).unwrap();
}

#[test]
fn create_on_v2_enables_offered_controllers_from_the_root_down() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    touch(
        &root.join("cgroup.controllers"),
        "cpuset cpu io memory pids\n",
    );
    touch(&root.join("cgroup.subtree_control"), "cpu\n");
    touch(&root.join("faultline/cgroup.controllers"), "cpu io\n");
    touch(&root.join("faultline/cgroup.subtree_control"), "");
    let host = CgroupHost::with_roots(BTreeMap::new(), Some(root.to_path_buf()));
    let group = host.create(Path::new("faultline/x")).unwrap();
    assert_eq!(group.dirs(), vec![root.join("faultline/x")]);
    assert!(root.join("faultline/x").is_dir());
    // The fake file keeps the last write: cpu was on already, then memory, pids.
    assert_eq!(
        fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
        "+pids"
    );
    assert_eq!(
        fs::read_to_string(root.join("faultline/cgroup.subtree_control")).unwrap(),
        "+cpu"
    );
}

#[test]
fn pids_are_the_sorted_union_over_hierarchies_and_subgroups() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    let rel = Path::new("faultline/r/n1");
    touch(
        &dir.path().join("cpu").join(rel).join("cgroup.procs"),
        "30\n10\n",
    );
    touch(
        &dir.path()
            .join("pids")
            .join(rel)
            .join("service/cgroup.procs"),
        "20\n10\n",
    );
    touch(
        &dir.path().join("unified").join(rel).join("cgroup.procs"),
        "",
    );
    let group = host.open(rel);
    assert_eq!(group.pids().unwrap(), vec![10, 20, 30]);
    touch(
        &dir.path().join("memory").join(rel).join("cgroup.procs"),
        "x\n",
    );
    assert!(matches!(group.pids(), Err(CgroupError::Parse { .. })));
    assert_eq!(host.children(Path::new("faultline/r")).unwrap(), vec!["n1"]);
    assert_eq!(host.children(rel).unwrap(), vec!["service"]);
    assert!(host.children(Path::new("nope")).unwrap().is_empty());
}

#[test]
fn capabilities_read_the_files_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    touch(&dir.path().join("unified/some/cgroup.freeze"), "0");
    touch(&dir.path().join("unified/cpu.pressure"), "");
    let caps = host.capabilities();
    assert_eq!(caps.version, "v1-hybrid");
    assert!(caps.freezer && caps.pressure);
    assert!(!caps.kill, "a child group without cgroup.kill");
    assert!(!caps.rt_group_sched);
    touch(&dir.path().join("cpu/cpu.rt_runtime_us"), "950000");
    assert!(host.capabilities().rt_group_sched);
    let v2 = CgroupHost::with_roots(BTreeMap::new(), Some(dir.path().join("unified")));
    assert_eq!(v2.capabilities().version, "v2");
    assert!(!v2.capabilities().rt_group_sched);
}

#[test]
fn kill_file_and_pressure_dir_only_where_they_exist() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    let group = host.create(Path::new("g")).unwrap();
    assert_eq!(group.kill_file(), None);
    assert_eq!(group.pressure_dir(), None);
    touch(&dir.path().join("unified/g/cgroup.kill"), "");
    touch(&dir.path().join("unified/g/cpu.pressure"), "");
    assert_eq!(
        group.kill_file(),
        Some(dir.path().join("unified/g/cgroup.kill"))
    );
    assert_eq!(group.pressure_dir(), Some(dir.path().join("unified/g")));
}

#[test]
fn freeze_prefers_cgroup_freeze_and_reports_what_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    let group = host.create(Path::new("g")).unwrap();
    assert!(matches!(group.freeze(), Err(CgroupError::NoFreezer { .. })));
    // The v1 freezer: a plain file reads back what was written.
    touch(&dir.path().join("freezer/g/freezer.state"), "THAWED\n");
    let change = group.freeze_confirmed().unwrap();
    assert_eq!(change.evidence, "freezer.state: FROZEN");
    assert!(group.is_frozen().unwrap());
    assert_eq!(
        group.thaw_confirmed().unwrap().evidence,
        "freezer.state: THAWED"
    );
    // cgroup.freeze wins once present; here the fake kernel is "already frozen".
    touch(&dir.path().join("unified/g/cgroup.freeze"), "0");
    touch(
        &dir.path().join("unified/g/cgroup.events"),
        "populated 1\nfrozen 1\n",
    );
    let change = group.freeze_confirmed().unwrap();
    assert_eq!(change.evidence, "cgroup.events: frozen 1");
    assert_eq!(
        fs::read_to_string(dir.path().join("unified/g/cgroup.freeze")).unwrap(),
        "1"
    );
    assert!(group.is_frozen().unwrap());
}

#[test]
fn freeze_that_never_reads_back_times_out_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    let group = host.create(Path::new("g")).unwrap();
    touch(&dir.path().join("unified/g/cgroup.freeze"), "0");
    touch(
        &dir.path().join("unified/g/cgroup.events"),
        "populated 1\nfrozen 0\n",
    );
    let err = group.freeze().unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cgroup.events did not read back \"frozen 1\""),
        "{text}"
    );
    assert!(text.contains("last: \"cgroup.events: frozen 0\""), "{text}");
}

#[test]
fn remove_takes_the_subtree_bottom_up_in_every_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    host.create(Path::new("faultline/r/n1/service")).unwrap();
    host.create(Path::new("faultline/r/n2")).unwrap();
    let run = host.open(Path::new("faultline/r"));
    run.remove().unwrap();
    run.remove().unwrap();
    for d in run.dirs() {
        assert!(!d.exists(), "{}", d.display());
    }
    host.remove_if_empty(Path::new("faultline")).unwrap();
    assert!(!dir.path().join("cpu/faultline").exists());
}

#[test]
fn rt_grant_raises_ancestors_by_their_other_children() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    let cpu = dir.path().join("cpu");
    touch(&cpu.join("cpu.rt_runtime_us"), "950000");
    for (rel, v) in [
        ("faultline", "0"),
        ("faultline/r", "0"),
        ("faultline/r/a", "0"),
        ("faultline/r/b", "100000"),
        ("other", "300000"),
    ] {
        touch(&cpu.join(rel).join("cpu.rt_runtime_us"), v);
    }
    host.grant_rt_runtime(Path::new("faultline/r/a"), 50000)
        .unwrap();
    let read = |rel: &str| fs::read_to_string(cpu.join(rel).join("cpu.rt_runtime_us")).unwrap();
    assert_eq!(read("faultline/r/a"), "50000");
    assert_eq!(read("faultline/r"), "150000");
    assert_eq!(read("faultline"), "150000");
    assert_eq!(read("."), "950000");
    // An ancestor that already holds enough is not lowered.
    touch(&cpu.join("faultline/cpu.rt_runtime_us"), "400000");
    host.grant_rt_runtime(Path::new("faultline/r/a"), 10000)
        .unwrap();
    assert_eq!(read("faultline"), "400000");
    assert_eq!(read("faultline/r"), "150000");
    assert_eq!(read("faultline/r/a"), "10000");
    assert!(matches!(
        host.grant_rt_runtime(Path::new("faultline/none"), 1),
        Err(CgroupError::Missing { .. })
    ));
}

/// A fake cpu hierarchy: the root at 950000 and `(rel, value)` groups.
fn fake_rt(dir: &Path, groups: &[(&str, &str)]) -> (CgroupHost, PathBuf) {
    let host = fake_hybrid(dir);
    let cpu = dir.join("cpu");
    touch(&cpu.join("cpu.rt_runtime_us"), "950000");
    for (rel, v) in groups {
        touch(&cpu.join(rel).join("cpu.rt_runtime_us"), v);
    }
    (host, cpu)
}

fn rt_of(cpu: &Path, rel: &str) -> String {
    fs::read_to_string(cpu.join(rel).join("cpu.rt_runtime_us")).unwrap()
}

#[test]
fn rt_grant_refuses_what_the_root_cannot_cover_naming_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let (host, cpu) = fake_rt(
        dir.path(),
        &[
            ("other", "300000"),
            ("faultline", "600000"),
            ("faultline/r1", "600000"),
            ("faultline/r2", "0"),
            ("faultline/r2/w", "0"),
        ],
    );
    // 50000 fits exactly: 300000 + 650000 = 950000.
    host.grant_rt_runtime(Path::new("faultline/r2/w"), 50_000)
        .unwrap();
    assert_eq!(rt_of(&cpu, "faultline"), "650000");
    assert_eq!(host.rt_budget().unwrap(), Some((950_000, 0)));
    let e = host
        .grant_rt_runtime(Path::new("faultline/r2/w"), 50_001)
        .unwrap_err();
    assert!(matches!(e, CgroupError::RtBudget { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "not enough RT time for 50001 µs per second to faultline/r2/w: faultline would \
         need 650001 µs, but the host's budget (950000 µs at the root's cpu.rt_runtime_us) \
         leaves it 650000 µs; held: faultline/r1 600000 µs, faultline/r2 50000 µs, \
         other 300000 µs"
    );
    // Nothing was written.
    assert_eq!(rt_of(&cpu, "faultline/r2/w"), "50000");
    assert_eq!(rt_of(&cpu, "faultline"), "650000");
}

#[test]
fn rt_release_and_trim_lower_ancestors_to_what_their_children_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (host, cpu) = fake_rt(
        dir.path(),
        &[
            ("faultline", "0"),
            ("faultline/r", "0"),
            ("faultline/r/a", "0"),
            ("faultline/r/b", "0"),
            ("faultline/s", "0"),
            ("faultline/s/a", "0"),
        ],
    );
    host.grant_rt_runtime(Path::new("faultline/r/a"), 300_000)
        .unwrap();
    host.grant_rt_runtime(Path::new("faultline/r/b"), 5_000)
        .unwrap();
    host.grant_rt_runtime(Path::new("faultline/s/a"), 5_000)
        .unwrap();
    assert_eq!(rt_of(&cpu, "faultline/r"), "305000");
    assert_eq!(rt_of(&cpu, "faultline"), "310000");
    host.release_rt_runtime(Path::new("faultline/r/a")).unwrap();
    assert_eq!(rt_of(&cpu, "faultline/r/a"), "0");
    assert_eq!(rt_of(&cpu, "faultline/r"), "5000");
    assert_eq!(rt_of(&cpu, "faultline"), "10000");
    assert_eq!(rt_of(&cpu, "."), "950000", "the root is never written");
    // Run r's groups are removed; trimming the parent gives back its time.
    fs::remove_dir_all(cpu.join("faultline/r")).unwrap();
    host.trim_rt_runtime(Path::new("faultline")).unwrap();
    assert_eq!(rt_of(&cpu, "faultline"), "5000");
    // A missing leaf releases nothing and is no error.
    host.release_rt_runtime(Path::new("faultline/r/a")).unwrap();
    host.trim_rt_runtime(Path::new("faultline/r")).unwrap();
}

#[test]
fn rt_grants_from_many_threads_add_up_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut groups = vec![("faultline".to_string(), "0".to_string())];
    for i in 0..16 {
        groups.push((format!("faultline/r{i}"), "0".into()));
        groups.push((format!("faultline/r{i}/w"), "0".into()));
    }
    let refs: Vec<(&str, &str)> = groups
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let (host, cpu) = fake_rt(dir.path(), &refs);
    std::thread::scope(|s| {
        for i in 0..16 {
            let host = &host;
            s.spawn(move || {
                let rel = PathBuf::from(format!("faultline/r{i}/w"));
                host.grant_rt_runtime(&rel, 1_000 + i).unwrap();
            });
        }
    });
    let want: u64 = (0..16).map(|i| 1_000 + i).sum();
    assert_eq!(rt_of(&cpu, "faultline"), want.to_string());
}

#[test]
fn rt_grant_is_a_no_op_without_rt_group_scheduling() {
    let dir = tempfile::tempdir().unwrap();
    let host = fake_hybrid(dir.path());
    host.grant_rt_runtime(Path::new("faultline/none"), 1)
        .unwrap();
}

/// Creates `faultline/<unique>` on the real host, runs `body`, then kills,
/// removes and cleans up whatever happened.
fn with_real_group(
    tag: &str,
    host: &CgroupHost,
    body: impl FnOnce(&Cgroup) + std::panic::UnwindSafe,
) {
    let rel = Path::new("faultline").join(unique_name(tag));
    let group = host.create(&rel).unwrap();
    let result = std::panic::catch_unwind(|| body(&group));
    let _ = group.thaw();
    let _ = group.kill_all();
    group.remove().unwrap();
    host.remove_if_empty(Path::new("faultline")).unwrap();
    for d in group.dirs() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn spawn_sleep(group: &Cgroup) -> (i32, crossbeam_channel::Receiver<ExitStatus>) {
    let pid = Spawn::new("sleep")
        .arg("30")
        .cgroup_procs(group.procs_files())
        .spawn()
        .unwrap();
    (pid, Reaper::global().watch(pid))
}

#[test]
fn root_cgroup_lifecycle_with_a_real_process() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let host = CgroupHost::detect().unwrap();
    with_real_group("life", &host, |group| {
        let (pid, exit) = spawn_sleep(group);
        let own = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
        let want = format!("/{}", group.rel().display());
        for line in own.lines() {
            let mut parts = line.splitn(3, ':');
            let (_, controllers, path) =
                (parts.next(), parts.next().unwrap(), parts.next().unwrap());
            let used = controllers.is_empty()
                || controllers
                    .split(',')
                    .any(|c| mountinfo::V1_CONTROLLERS.contains(&c));
            if used {
                assert_eq!(path, want, "{line}");
            }
        }
        assert_eq!(group.pids().unwrap(), vec![pid]);
        assert!(!group.is_frozen().unwrap());
        group.freeze().unwrap();
        assert!(group.is_frozen().unwrap());
        group.thaw().unwrap();
        assert!(!group.is_frozen().unwrap());
        group.kill_all().unwrap();
        assert_eq!(
            exit.recv_timeout(Duration::from_secs(5)),
            Ok(ExitStatus::Signal(libc::SIGKILL))
        );
        assert!(group.pids().unwrap().is_empty());
    });
}

#[test]
fn root_kill_all_without_cgroup_kill_freezes_and_signals() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let detected = CgroupHost::detect().unwrap();
    let Layout::V1Hybrid { v1, .. } = detected.layout().clone() else {
        eprintln!("skipped: needs a v1 hybrid host");
        return;
    };
    let host = CgroupHost::with_roots(v1, None);
    with_real_group("v1kill", &host, |group| {
        assert_eq!(group.kill_file(), None);
        let (_, exit1) = spawn_sleep(group);
        let (_, exit2) = spawn_sleep(group);
        assert_eq!(group.pids().unwrap().len(), 2);
        group.kill_all().unwrap();
        for exit in [exit1, exit2] {
            assert_eq!(
                exit.recv_timeout(Duration::from_secs(5)),
                Ok(ExitStatus::Signal(libc::SIGKILL))
            );
        }
        assert!(!group.is_frozen().unwrap());
    });
}

#[test]
fn root_grant_rt_runtime_lets_sched_fifo_run_in_the_leaf() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let host = CgroupHost::detect().unwrap();
    if !host.capabilities().rt_group_sched {
        eprintln!("skipped: no RT group scheduling");
        return;
    }
    if crate::process::run("chrt", &["--help"]).is_err() {
        eprintln!("skipped: no chrt");
        return;
    }
    with_real_group("rt", &host, |group| {
        let leaf = host.create(&group.rel().join("n1/watchdog")).unwrap();
        let chrt = || {
            let pid = Spawn::new("chrt")
                .args(["-f", "10", "true"])
                .cgroup_procs(leaf.procs_files())
                .stderr(fs::File::create("/dev/null").unwrap())
                .spawn()
                .unwrap();
            Reaper::global()
                .watch(pid)
                .recv_timeout(Duration::from_secs(5))
                .unwrap()
        };
        assert_ne!(chrt(), ExitStatus::Code(0), "SCHED_FIFO before any grant");
        // More than the host has: refused, naming the numbers.
        let e = host.grant_rt_runtime(leaf.rel(), 2_000_000).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("not enough RT time for 2000000 µs"),
            "{e}"
        );
        assert_eq!(host.rt_runtime(leaf.rel()).unwrap(), Some(0));
        host.grant_rt_runtime(leaf.rel(), 10_000).unwrap();
        assert_eq!(chrt(), ExitStatus::Code(0));
        assert_eq!(host.rt_runtime(group.rel()).unwrap(), Some(10_000));
        host.release_rt_runtime(leaf.rel()).unwrap();
        assert_eq!(host.rt_runtime(leaf.rel()).unwrap(), Some(0));
        assert_eq!(host.rt_runtime(group.rel()).unwrap(), Some(0));
        // The shared parent holds exactly what its children (other runs,
        // live on this host) hold: read under the same lock.
        let root = Path::new("/sys/fs/cgroup/cpu");
        let _lock = super::rt::lock(root).unwrap();
        let parent = root.join("faultline");
        let children: i64 = walk::child_dirs(&parent)
            .unwrap()
            .iter()
            .map(|c| {
                fs::read_to_string(c.join("cpu.rt_runtime_us"))
                    .unwrap()
                    .trim()
                    .parse::<i64>()
                    .unwrap()
            })
            .sum();
        assert_eq!(
            host.rt_runtime(Path::new("faultline")).unwrap(),
            Some(children)
        );
        drop(_lock);
        // A whole subtree gives its time back, leaves first, and the
        // groups then go at once.
        let other = host.create(&group.rel().join("n2/watchdog")).unwrap();
        host.grant_rt_runtime(leaf.rel(), 10_000).unwrap();
        host.grant_rt_runtime(other.rel(), 10_000).unwrap();
        assert_eq!(host.rt_runtime(group.rel()).unwrap(), Some(20_000));
        host.zero_rt_subtree(group.rel()).unwrap();
        for g in [leaf.rel(), other.rel(), group.rel()] {
            assert_eq!(host.rt_runtime(g).unwrap(), Some(0), "{}", g.display());
        }
    });
}

#[test]
fn controller_is_found_on_v1_and_in_v2_cgroup_controllers_only() {
    let dir = tempfile::tempdir().unwrap();
    let hybrid = fake_hybrid(dir.path());
    assert!(hybrid.controller("cpu").unwrap().starts_with("v1 cpu at"));
    assert!(hybrid.controller("blkio").is_err());
    let v2dir = tempfile::tempdir().unwrap();
    let v2 = CgroupHost::with_roots(BTreeMap::new(), Some(v2dir.path().to_path_buf()));
    // The hybrid host's unified mount: no controllers at all.
    touch(&v2dir.path().join("cgroup.controllers"), "\n");
    let e = v2.controller("memory").unwrap_err();
    assert!(e.contains("has no memory controller"), "{e}");
    touch(
        &v2dir.path().join("cgroup.controllers"),
        "cpu memory pids\n",
    );
    assert!(v2.controller("memory").is_ok());
}
