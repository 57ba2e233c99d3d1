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
    assert!(sample(&[me]).slices > 0);
    assert_eq!(sample(&[i32::MAX]).slices, 0);
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

fn s(slices: u64, cpu_ns: u64, runnable: &[i32]) -> Sample {
    Sample {
        slices,
        cpu_ns,
        runnable: runnable.to_vec(),
    }
}

const MS: u64 = 1_000_000;

#[test]
fn starve_watch_counts_a_wait_only_after_a_slice_among_the_workers() {
    let mut w = StarveWatch::new(20 * MS, 600 * MS);
    // Runnable and unserved from the first sample: the wake-up a group
    // owing nothing gets through, so 20 ms prove nothing yet.
    assert_eq!(w.feed(0, &s(10, 500, &[7]), true), None);
    assert_eq!(w.feed(30 * MS, &s(10, 500, &[7]), true), None);
    // It gets its slice, sleeps, wakes again and is kept waiting.
    assert_eq!(w.feed(31 * MS, &s(11, 900, &[]), true), None);
    assert_eq!(w.first_wait_ns, Some(31 * MS));
    assert_eq!(w.feed(40 * MS, &s(11, 900, &[]), true), None);
    assert_eq!(w.feed(41 * MS, &s(11, 900, &[7]), true), None);
    assert_eq!(w.feed(60 * MS, &s(11, 900, &[7]), true), None);
    let p = w.feed(61 * MS, &s(11, 900, &[7]), true).unwrap();
    assert_eq!(p.onset_ns, 41 * MS);
    assert_eq!(p.waited_ns, 20 * MS);
    assert_eq!(p.slices_while_spinning, 1);
}

#[test]
fn starve_watch_restarts_the_wait_whenever_the_service_runs() {
    let mut w = StarveWatch::new(20 * MS, 600 * MS);
    w.feed(0, &s(10, 500, &[]), true);
    w.feed(MS, &s(11, 600, &[7]), true);
    // Running on a CPU: state R too, but its CPU time grows each tick.
    for (i, t) in (2..60).step_by(4).enumerate() {
        assert_eq!(
            w.feed(t * MS, &s(11, 600 + i as u64 * 4 * MS, &[7]), true),
            None
        );
    }
    // A slice on another thread ends a wait as well: the wait starts at
    // the first sample that shows nothing changed.
    w.feed(100 * MS, &s(11, 999 * MS, &[8]), true);
    assert_eq!(w.feed(101 * MS, &s(11, 999 * MS, &[8]), true), None);
    assert_eq!(w.feed(116 * MS, &s(11, 999 * MS, &[8]), true), None);
    assert_eq!(w.longest_ns, 15 * MS);
    assert_eq!(w.feed(117 * MS, &s(12, 999 * MS, &[8]), true), None);
    assert_eq!(w.feed(118 * MS, &s(12, 999 * MS, &[8]), true), None);
    assert_eq!(w.feed(137 * MS, &s(12, 999 * MS, &[8]), true), None);
    assert_eq!(w.slices_while_spinning(), 2);
    let p = w.feed(138 * MS, &s(12, 999 * MS, &[8]), true).unwrap();
    assert_eq!(p.onset_ns, 118 * MS);
}

#[test]
fn starve_watch_proves_a_first_wait_only_once_it_is_long() {
    let mut w = StarveWatch::new(20 * MS, 600 * MS);
    assert_eq!(w.feed(0, &s(10, 500, &[]), true), None);
    assert_eq!(w.feed(5 * MS, &s(10, 500, &[7]), true), None);
    assert_eq!(w.feed(604 * MS, &s(10, 500, &[7]), true), None);
    let p = w.feed(605 * MS, &s(10, 500, &[7]), true).unwrap();
    assert_eq!((p.onset_ns, p.slices_while_spinning), (5 * MS, 0));
    assert_eq!(w.first_wait_ns, None);
}

#[test]
fn starve_watch_does_not_count_sleep_as_a_wait() {
    let mut w = StarveWatch::new(20 * MS, 600 * MS);
    w.feed(0, &s(10, 500, &[]), true);
    w.feed(MS, &s(11, 600, &[]), true);
    // Asleep (no thread in R) for a second: nothing proven.
    for t in 2..1000 {
        assert_eq!(w.feed(t * MS, &s(11, 600, &[]), true), None);
    }
    assert_eq!(w.longest_ns, 0);
}

#[test]
fn a_sample_reads_this_process_threads() {
    let me = std::process::id() as i32;
    let got = sample(&[me]);
    assert!(got.slices > 0 && got.cpu_ns > 0, "{got:?}");
    // The reading thread itself is running.
    assert!(!got.runnable.is_empty(), "{got:?}");
    assert_eq!(sample(&[i32::MAX]), Sample::default());
}

#[test]
fn starve_watch_counts_slices_only_once_every_worker_spins_but_waits_from_their_start() {
    let mut w = StarveWatch::new(20 * MS, 600 * MS);
    // Before the workers all spin: a slice the service ran alone does not
    // count, so the next wait needs the long proof.
    w.feed(0, &s(10, 500, &[]), false);
    w.feed(MS, &s(11, 600, &[]), false);
    assert_eq!(w.slices_while_spinning(), 0);
    // A wait that began while they were still starting counts from there.
    assert_eq!(w.feed(2 * MS, &s(11, 600, &[7]), false), None);
    assert_eq!(w.feed(50 * MS, &s(11, 600, &[7]), true), None);
    let p = w.feed(602 * MS, &s(11, 600, &[7]), true).unwrap();
    assert_eq!(p.onset_ns, 2 * MS);
}

#[test]
fn stat_fields_are_numbered_as_in_proc_5() {
    let me = std::process::id() as i32;
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    assert_eq!(
        stat_field::<char>(tid, 3),
        Some('R'),
        "this thread is running"
    );
    let ppid = std::os::unix::process::parent_id() as i32;
    assert_eq!(stat_field::<i32>(me, 4), Some(ppid));
    assert_eq!(
        stat_field::<i32>(me, 2),
        None,
        "the command is not a field here"
    );
    assert_eq!(stat_field::<i32>(i32::MAX, 4), None);
}
