//! How fast traces are judged and parsed: the hot paths of `faultline
//! check` and of every run's verdict, as trace records per second (each
//! bench's throughput is its trace's record count). A 60 s scenario with a
//! 1 s hang timeout has ~240 heartbeats per node; the synthetic trace has
//! 10 nodes over 10 minutes (24,000 heartbeats) to show how it scales. The
//! saved runs of `harness/tests/integration/data/` (the demo, and a cluster
//! seed suite with groups, observers and a client) go through every check
//! their scenarios name, the cluster checks included.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use faultline::checks::judge;
use faultline::plan::{
    CheckSpec, FaultKind, FaultPlan, FaultSpec, NodePlan, NodeSettings, ScenarioPlan,
};
use faultline::trace::{FaultPhase, FaultRecord, Header, Record, Trace, TRACE_VERSION};
use faultline_agent::events::{
    Event, HangDetected, Heartbeat, RecoveryAction, Source, WatchdogArmed,
};

const MS: u64 = 1_000_000;

fn synthetic(nodes: usize, minutes: u64) -> Trace {
    let names: Vec<String> = (0..nodes).map(|i| format!("n{i}")).collect();
    let plan = ScenarioPlan {
        name: "bench".into(),
        nodes: names
            .iter()
            .map(|n| NodePlan {
                name: n.clone(),
                settings: NodeSettings {
                    hang_timeout: Duration::from_secs(1),
                    hang_recovery_action: RecoveryAction::Bugcheck,
                    ..NodeSettings::default()
                },
            })
            .collect(),
        faults: vec![FaultPlan {
            node: "n0".into(),
            at: Duration::from_secs(30),
            duration: Duration::from_secs(3),
            spec: FaultSpec::Freeze,
        }],
        checks: vec![
            CheckSpec::DetectedWithin {
                node: "n0".into(),
                slack: Duration::from_millis(20),
            },
            CheckSpec::RecoveryAction {
                node: "n0".into(),
                action: None,
            },
            CheckSpec::NoDetection {
                node: Some("n1".into()),
            },
        ],
        expect_fail: vec![],
        duration: Duration::from_secs(minutes * 60),
        groups: vec![],
        witness: false,
        failover_window: Duration::from_secs(60),
    };
    let mut records = vec![Record::Header(Header {
        t: 0,
        version: TRACE_VERSION,
        run_id: "bench".into(),
        suite: "bench".into(),
        scenario: plan,
        host: "bench".into(),
        topology: vec![],
    })];
    records.push(Record::Start { t: MS });
    let end = minutes * 60_000 * MS;
    for n in &names {
        let mut armed = Event::now(n, Source::Watchdog, WatchdogArmed::default());
        armed.t = MS;
        records.push(Record::Event(armed));
        for (seq, t) in (MS..end).step_by(250 * MS as usize).enumerate() {
            if n == "n0" && (30_000 * MS..33_000 * MS).contains(&t) {
                continue;
            }
            let beat = Heartbeat {
                service_seq: seq as u64,
                service_pid: 1,
                counted: true,
            };
            let mut e = Event::now(n, Source::Watchdog, beat);
            e.t = t;
            records.push(Record::Event(e));
        }
    }
    records.push(Record::Fault(FaultRecord {
        t: 30_000 * MS,
        index: 0,
        kind: FaultKind::Freeze,
        node: "n0".into(),
        phase: FaultPhase::Injected,
        requested: 30_000 * MS - 1,
        evidence: "bench".into(),
    }));
    let hang = HangDetected {
        action: RecoveryAction::Bugcheck,
        service_pid: 1,
        timeout_ms: 1000,
        params: Some([1, 1000, 0, 0]),
        code: Some(0x9E),
        ..HangDetected::default()
    };
    let mut hang = Event::now("n0", Source::Watchdog, hang);
    hang.t = 30_000 * MS + 750 * MS;
    hang.id = Some(0x9E);
    records.push(Record::Event(hang));
    records.push(Record::End {
        t: end,
        reason: "completed".into(),
    });
    let mut trace = Trace { records };
    trace.sort();
    trace
}

/// The saved runs the report tests also draw.
const SAVED: [&str; 2] = ["demo-freeze-is-caught.jsonl", "bugcheck-fences.jsonl"];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("judge");
    let trace = synthetic(10, 10);
    group.throughput(Throughput::Elements(trace.records.len() as u64));
    group.bench_function("10 nodes x 10 min", |b| b.iter(|| judge(black_box(&trace))));
    let data =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../harness/tests/integration/data");
    for name in SAVED {
        let saved = Trace::load(&data.join(name)).expect("a saved trace");
        group.throughput(Throughput::Elements(saved.records.len() as u64));
        group.bench_function(name.trim_end_matches(".jsonl"), |b| {
            b.iter(|| judge(black_box(&saved)))
        });
    }
    group.finish();

    let mut text = Vec::new();
    trace.write_to(&mut text).unwrap();
    let dir = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("trace.jsonl");
    std::fs::write(&path, &text).unwrap();
    let mut group = c.benchmark_group("load");
    group.throughput(Throughput::Elements(trace.records.len() as u64));
    group.bench_function("10 nodes x 10 min", |b| {
        b.iter(|| Trace::load(black_box(&path)).unwrap())
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
