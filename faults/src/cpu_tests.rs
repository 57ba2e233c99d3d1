//! The cpu fault without root: naming, and refusal where the controller
//! is missing (nothing started, nothing changed).

use super::*;
use std::collections::BTreeMap;
use std::path::Path;

fn fault(dir: &Path, mode: CpuMode) -> CpuStarve {
    let host = CgroupHost::with_roots(BTreeMap::new(), Some(dir.to_path_buf()));
    for g in ["service", "workload"] {
        fs::create_dir_all(dir.join("f/n1").join(g)).unwrap();
    }
    CpuStarve {
        mode,
        service: host.open(Path::new("f/n1/service")),
        workload: host.open(Path::new("f/n1/workload")),
        host,
        workers: 1,
        helper: "/nonexistent/faultline".into(),
        netns: None,
        lifetime: Duration::from_secs(1),
    }
}

#[test]
fn describe_names_mode_and_group() {
    let dir = tempfile::tempdir().unwrap();
    let f = fault(dir.path(), CpuMode::Weight);
    assert_eq!(f.describe(), "cpu weight on f/n1/service");
}

#[test]
fn without_a_cpu_controller_every_mode_is_refused_by_name() {
    // A cgroup2 mount without controllers, as the hybrid host's unified one.
    let dir = tempfile::tempdir().unwrap();
    for mode in [
        CpuMode::Quota {
            quota_us: 1000,
            period_us: 1_000_000,
        },
        CpuMode::Weight,
    ] {
        let e = fault(dir.path(), mode).inject().err().unwrap();
        let text = faultline_sys::error::chain(&e);
        assert!(text.contains("no cpu controller"), "{text}");
    }
    let names: Vec<_> = fs::read_dir(dir.path().join("f/n1/service"))
        .unwrap()
        .collect();
    assert!(names.is_empty(), "{names:?}");
}

#[test]
fn run_delay_reads_schedstat_of_every_thread() {
    let me = std::process::id() as i32;
    // This process has run, so its threads have schedstat lines; a pid
    // that does not exist adds nothing.
    let _ = run_delay_ns(&[me]);
    assert_eq!(run_delay_ns(&[i32::MAX]), 0);
    assert!(slices(&[me]) > 0);
    assert_eq!(slices(&[i32::MAX]), 0);
    assert_eq!(policy(me), Some(0));
}

#[test]
fn weight_workers_cover_every_cpu_round_robin() {
    assert_eq!(pin_plan(&[0, 1], 4), vec![0, 1, 0, 1]);
    // Fewer workers than CPUs: still one per CPU, so none is left free.
    assert_eq!(pin_plan(&[0, 2, 3], 1), vec![0, 2, 3]);
    assert_eq!(pin_plan(&[5], 3), vec![5, 5, 5]);
    let me = std::process::id() as i32;
    assert!(!affinity(me).unwrap().is_empty());
    assert_eq!(affinity(i32::MAX), None);
}
