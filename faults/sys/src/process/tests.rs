use super::*;
use std::time::Duration;

#[test]
fn run_returns_stdout_stderr_and_exit_code() {
    let out = run("sh", &["-c", "echo out; echo err >&2; exit 3"]).unwrap();
    assert_eq!(out.status, ExitStatus::Code(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert!(run("true", &[]).unwrap().status.success());
}

#[test]
fn run_reports_death_by_signal() {
    let out = run("sh", &["-c", "kill -9 $$"]).unwrap();
    assert_eq!(out.status, ExitStatus::Signal(libc::SIGKILL));
}

#[test]
fn run_many_in_parallel_gets_each_status_right() {
    let threads: Vec<_> = (0..8)
        .map(|i| {
            std::thread::spawn(move || {
                let code = i.to_string();
                let out = run("sh", &["-c", "echo $1; exit $1", "sh", &code]).unwrap();
                assert_eq!(out.status, ExitStatus::Code(i));
                assert_eq!(out.stdout.trim(), code);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn missing_or_non_executable_programs_are_refused_before_fork() {
    let err = Spawn::new("fltest-no-such-program").spawn().unwrap_err();
    assert!(matches!(err, SpawnError::NotFound { .. }), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let err = Spawn::new(&file).spawn().unwrap_err();
    assert!(matches!(err, SpawnError::NotExecutable { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("{} is not an executable file", file.display())
    );
}

#[test]
fn a_failed_cgroup_join_is_reported_with_its_path() {
    let err = Spawn::new("true")
        .cgroup_procs(vec!["/nonexistent/fltest/cgroup.procs".into()])
        .spawn()
        .unwrap_err();
    match &err {
        SpawnError::Setup {
            step, path, source, ..
        } => {
            assert_eq!(*step, "open cgroup.procs");
            assert_eq!(
                path.as_deref(),
                Some(Path::new("/nonexistent/fltest/cgroup.procs"))
            );
            assert_eq!(source.raw_os_error(), Some(libc::ENOENT));
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.to_string().contains("/nonexistent/fltest/cgroup.procs"));
}

#[test]
fn spawn_exit_is_delivered_to_watch_and_subscribe() {
    let all = Reaper::global().subscribe();
    let pid = Spawn::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let status = Reaper::global()
        .watch(pid)
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert_eq!(status, ExitStatus::Code(7));
    let seen = all.iter().find(|(p, _)| *p == pid).map(|(_, s)| s);
    assert_eq!(seen, Some(ExitStatus::Code(7)));
}

#[test]
fn parent_death_signal_fires_when_the_spawning_thread_ends() {
    let pid = std::thread::spawn(|| {
        Spawn::new("sleep")
            .arg("30")
            .parent_death_signal(libc::SIGKILL)
            .new_session()
            .spawn()
            .unwrap()
    })
    .join()
    .unwrap();
    let status = Reaper::global()
        .watch(pid)
        .recv_timeout(Duration::from_secs(5));
    if status.is_err() {
        // SAFETY: plain kill of our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    assert_eq!(status, Ok(ExitStatus::Signal(libc::SIGKILL)));
}

#[test]
fn new_session_makes_the_child_a_session_leader() {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let out = File::create(&out_path).unwrap();
    let pid = Spawn::new("sh")
        .args([
            "-c",
            "ps -o sid= -p $$ 2>/dev/null || cut -d' ' -f6 /proc/$$/stat",
        ])
        .new_session()
        .stdout(out)
        .spawn()
        .unwrap();
    let status = Reaper::global()
        .watch(pid)
        .recv_timeout(Duration::from_secs(5))
        .unwrap();
    assert!(status.success());
    let sid: i32 = std::fs::read_to_string(&out_path)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(sid, pid);
}

/// A child spawned, and reaped by its caller, from a thread that blocks
/// SIGUSR1 (as the agent's supervisor blocks what its signalfd takes) starts
/// with nothing blocked: std resets the mask before exec, and the supervisor
/// relies on it.
#[test]
fn a_child_starts_with_no_signal_blocked_whatever_its_spawner_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sigblk");
    let script = format!(
        "grep SigBlk /proc/self/status > {0}.tmp && mv {0}.tmp {0}",
        out.display()
    );
    std::thread::spawn(move || {
        // SAFETY: plain data; changes only this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        }
        Spawn::new("sh")
            .args(["-c", &script])
            .spawn_child()
            .unwrap()
    })
    .join()
    .unwrap();
    for _ in 0..300 {
        if let Ok(text) = std::fs::read_to_string(&out) {
            assert_eq!(text.trim(), "SigBlk:\t0000000000000000");
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the child wrote nothing");
}
