//! End to end, freeze to detection: a real lab (namespace, cgroups, the
//! agent's three processes), the service frozen through the cgroup freezer,
//! the watchdog at SCHED_FIFO counting down. The measured value of each
//! iteration is not wall time but the overshoot: how long past its
//! deadline (last heartbeat received + hang_timeout) the watchdog detected
//! the hang, as the `detected_within` check measures it from the trace
//! (`iter_custom` sums the overshoots). criterion's "time" for this bench
//! is therefore the mean overshoot.
//!
//! Each iteration is one `faultline run` of `faultline bench`'s built-in
//! `freeze` scenario (3 s: hang_timeout 1 s, action log), so it needs root
//! and the release binaries next to this bench's (`cargo build --release
//! --workspace` first; `cargo bench` builds into the same folder). Without
//! root it says so and measures nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};

/// `target/<profile>/faultline`, beside the folder this bench runs from.
fn faultline_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the bench's own path");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<bench>");
    let bin = profile.join("faultline");
    assert!(
        bin.is_file() && profile.join("faultline-agent").is_file(),
        "{} or faultline-agent is missing: run `cargo build --release --workspace` first",
        bin.display()
    );
    bin
}

/// One run; its overshoot past the deadline (0 if detected before it).
fn overshoot(bin: &Path, dir: &Path) -> Duration {
    let json = dir.join("result.json");
    let out = Command::new(bin)
        .arg("run")
        .arg(dir.join("suite.yaml"))
        .arg("--json")
        .arg(&json)
        .output()
        .expect("faultline runs");
    assert!(
        out.status.success(),
        "faultline run failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("the JSON result")).expect("JSON");
    let ms = result["scenarios"][0]["checks"][0]["measured"]["overshoot_ms"]
        .as_f64()
        .expect("detected_within measures the overshoot");
    Duration::from_secs_f64(ms.max(0.0) / 1000.0)
}

fn bench(c: &mut Criterion) {
    // SAFETY: no arguments; reads the effective uid.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("e2e: skipped, a real lab needs root");
        return;
    }
    let bin = faultline_bin();
    let dir = tempfile::tempdir().expect("a temporary folder");
    let suite = faultline::bench::builtin::suite_text("freeze").expect("a built-in freeze");
    std::fs::write(dir.path().join("suite.yaml"), suite).expect("write the suite");
    let mut group = c.benchmark_group("e2e");
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(40));
    group.bench_function("freeze to detection, overshoot past the deadline", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| overshoot(&bin, dir.path())).sum())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
