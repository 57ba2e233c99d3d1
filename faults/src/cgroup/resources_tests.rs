//! The cpu and memory files on fake v1 and v2 trees (no root needed).

use super::super::CgroupHost;
use super::*;
use std::collections::BTreeMap;

fn touch(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn v1_group(dir: &Path) -> Cgroup {
    let mut v1 = BTreeMap::new();
    for c in ["cpu", "memory"] {
        v1.insert(c.to_string(), dir.join(c));
    }
    let g = dir.join("cpu/f/n1/service");
    touch(&g.join("cpu.cfs_quota_us"), "-1\n");
    touch(&g.join("cpu.cfs_period_us"), "100000\n");
    touch(&g.join("cpu.shares"), "1024\n");
    touch(
        &g.join("cpu.stat"),
        "nr_periods 10\nnr_throttled 3\nthrottled_time 5\n",
    );
    let m = dir.join("memory/f/n1/service");
    touch(&m.join("memory.limit_in_bytes"), "9223372036854771712\n");
    touch(&m.join("memory.usage_in_bytes"), "4096\n");
    touch(&m.join("memory.failcnt"), "7\n");
    touch(
        &m.join("memory.oom_control"),
        "oom_kill_disable 1\nunder_oom 1\noom_kill 2\n",
    );
    CgroupHost::with_roots(v1, None).open(Path::new("f/n1/service"))
}

fn v2_group(dir: &Path, with_controllers: bool) -> Cgroup {
    let g = dir.join("f/n1/service");
    fs::create_dir_all(&g).unwrap();
    if with_controllers {
        touch(&g.join("cpu.max"), "max 100000\n");
        touch(&g.join("cpu.weight"), "100\n");
        touch(
            &g.join("cpu.stat"),
            "usage_usec 1\nnr_periods 4\nnr_throttled 2\n",
        );
        touch(&g.join("memory.max"), "max\n");
        touch(&g.join("memory.high"), "max\n");
        touch(&g.join("memory.current"), "8192\n");
        touch(
            &g.join("memory.events"),
            "low 0\nhigh 5\nmax 9\noom 1\noom_kill 1\noom_group_kill 0\n",
        );
    }
    CgroupHost::with_roots(BTreeMap::new(), Some(dir.to_path_buf())).open(Path::new("f/n1/service"))
}

#[test]
fn v1_cpu_quota_weight_and_throttling() {
    let dir = tempfile::tempdir().unwrap();
    let g = v1_group(dir.path());
    assert!(matches!(g.cpu_controller().unwrap(), Controller::V1(_)));
    assert_eq!(
        g.cpu_quota().unwrap(),
        CpuQuota {
            quota_us: None,
            period_us: 100_000
        }
    );
    let q = CpuQuota {
        quota_us: Some(1000),
        period_us: 1_000_000,
    };
    g.set_cpu_quota(q).unwrap();
    assert_eq!(g.cpu_quota().unwrap(), q);
    assert_eq!(g.cpu_nr_throttled().unwrap(), 3);
    assert_eq!(g.cpu_weight().unwrap(), 1024);
    assert_eq!(g.set_cpu_weight_level(WeightLevel::Lowest).unwrap(), 2);
    assert_eq!(g.cpu_weight().unwrap(), 2);
}

#[test]
fn v1_memory_limit_events_and_oom_control() {
    let dir = tempfile::tempdir().unwrap();
    let g = v1_group(dir.path());
    assert_eq!(g.memory_limit().unwrap(), None);
    g.set_memory_limit(Some(64 << 20)).unwrap();
    assert_eq!(g.memory_limit().unwrap(), Some(64 << 20));
    assert_eq!(g.memory_usage().unwrap(), 4096);
    let ev = g.memory_events().unwrap();
    assert_eq!(
        ev,
        MemoryEvents {
            limit_hits: 7,
            oom_kills: 2,
            under_oom: Some(true),
            high: None
        }
    );
    assert!(g.oom_kill_disabled().unwrap());
    // memory.high is v2's: refused on v1, by name.
    let e = g.set_memory_high(Some(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory.high needs cgroup v2 (cgroup f/n1/service)"
    );
}

#[test]
fn v2_cpu_max_weight_and_memory_events() {
    let dir = tempfile::tempdir().unwrap();
    let g = v2_group(dir.path(), true);
    assert!(matches!(g.cpu_controller().unwrap(), Controller::V2(_)));
    assert_eq!(g.cpu_quota().unwrap().quota_us, None);
    g.set_cpu_quota(CpuQuota {
        quota_us: Some(1000),
        period_us: 1_000_000,
    })
    .unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("f/n1/service/cpu.max")).unwrap(),
        "1000 1000000"
    );
    g.set_cpu_quota(CpuQuota {
        quota_us: None,
        period_us: 100_000,
    })
    .unwrap();
    assert_eq!(
        fs::read_to_string(dir.path().join("f/n1/service/cpu.max")).unwrap(),
        "max 100000"
    );
    assert_eq!(g.cpu_nr_throttled().unwrap(), 2);
    assert_eq!(
        g.set_cpu_weight_level(WeightLevel::Highest).unwrap(),
        10_000
    );
    assert_eq!(g.memory_limit().unwrap(), None);
    g.set_memory_high(Some(1 << 20)).unwrap();
    assert_eq!(g.memory_high().unwrap(), Some(1 << 20));
    assert_eq!(g.memory_usage().unwrap(), 8192);
    let ev = g.memory_events().unwrap();
    assert_eq!(ev.limit_hits, 9);
    assert_eq!(ev.oom_kills, 1);
    assert_eq!(ev.high, Some(5));
    assert_eq!(ev.under_oom, None);
    assert!(g.set_oom_kill_disable(true).is_err());
}

#[test]
fn v2_without_controllers_says_so_instead_of_pretending() {
    // The hybrid host's cgroup2 mount: no cpu or memory files at all.
    let dir = tempfile::tempdir().unwrap();
    let g = v2_group(dir.path(), false);
    let e = g.cpu_quota().unwrap_err();
    assert_eq!(e.to_string(), "no cpu controller for cgroup f/n1/service");
    let e = g.set_memory_limit(Some(1)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "no memory controller for cgroup f/n1/service"
    );
    assert!(!dir.path().join("f/n1/service/memory.max").exists());
}
