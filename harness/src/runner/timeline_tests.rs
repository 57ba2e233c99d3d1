//! The timeline's decisions on hand-made inputs (no root, no lab).

use std::time::Duration;

use faultline_agent::events::{Event, EventKind, RecoveryAction, Source};

use super::*;
use crate::plan::{FaultKind, FaultPlan, FaultSpec, GroupPlan, NodePlan, NodeSettings};
use crate::trace::Record;

const MS: u64 = 1_000_000;
/// When the timeline is created.
const T_BEGIN: u64 = 1_000_000 * MS;
/// When every node is up in these tests.
const T0: u64 = T_BEGIN + 500 * MS;

fn node(name: &str) -> NodePlan {
    NodePlan {
        name: name.into(),
        settings: NodeSettings {
            hang_timeout: Duration::from_millis(1000),
            hang_recovery_action: RecoveryAction::Bugcheck,
            restart_delay: Duration::from_secs(2),
            ..NodeSettings::default()
        },
    }
}

fn freeze(node: &str, at_ms: u64, for_ms: u64) -> FaultPlan {
    FaultPlan {
        node: node.into(),
        at: Duration::from_millis(at_ms),
        duration: Duration::from_millis(for_ms),
        spec: FaultSpec::Freeze,
    }
}

/// Two nodes; a freeze of n1 at 2 s for 5 s, another at 3 s for 1 s; 9 s.
fn plan() -> ScenarioPlan {
    ScenarioPlan {
        name: "s".into(),
        nodes: vec![node("n1"), node("n2")],
        faults: vec![freeze("n1", 2000, 5000), freeze("n1", 3000, 1000)],
        checks: Vec::new(),
        expect_fail: Vec::new(),
        duration: Duration::from_secs(9),
        groups: Vec::new(),
        witness: false,
        failover_window: Duration::from_secs(60),
    }
}

fn event(node: &str, kind: EventKind) -> Record {
    Record::Event(Event {
        t: 0,
        node: node.into(),
        source: Source::Watchdog,
        data: kind.default_data(),
        id: None,
        pid: 1,
        seq: 0,
        message: String::new(),
        log_source: None,
        log_type: None,
    })
}

fn fault(index: usize, phase: FaultPhase, t: u64) -> Record {
    Record::Fault(FaultRecord {
        t,
        index,
        kind: FaultKind::Freeze,
        node: "n1".into(),
        phase,
        requested: t,
        evidence: "read back".into(),
    })
}

fn actions(outs: &[Out]) -> Vec<Action> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Act(a) => Some(a.clone()),
            Out::Record(_) => None,
        })
        .collect()
}

fn records(outs: &[Out]) -> Vec<Record> {
    outs.iter()
        .filter_map(|o| match o {
            Out::Record(r) => Some(r.clone()),
            Out::Act(_) => None,
        })
        .collect()
}

fn skipped(outs: &[Out]) -> Vec<(usize, String)> {
    records(outs)
        .into_iter()
        .filter_map(|r| match r {
            Record::Fault(f) if f.phase == FaultPhase::Skipped => Some((f.index, f.evidence)),
            _ => None,
        })
        .collect()
}

/// A timeline whose nodes all came up at [`T0`].
fn running(plan: &ScenarioPlan) -> Timeline<'_> {
    let (mut tl, _) = Timeline::begin(plan, T_BEGIN);
    for n in &plan.nodes {
        tl.step(Input::Record(&event(&n.name, EventKind::WatchdogArmed)), T0);
    }
    assert!(matches!(tl.phase, Phase::Running), "{:?}", tl.phase);
    tl
}

/// Injects fault `i` at its time and confirms it.
fn injected(tl: &mut Timeline<'_>, i: usize, at: u64) {
    let outs = tl.step(Input::Tick, at);
    assert!(actions(&outs).contains(&Action::Inject(i)), "{outs:?}");
    tl.step(Input::Record(&fault(i, FaultPhase::Injected, at)), at);
}

#[test]
fn start_up_powers_every_node_on_and_starts_once_every_watchdog_is_armed() {
    let plan = plan();
    let (mut tl, outs) = Timeline::begin(&plan, T_BEGIN);
    assert_eq!(
        actions(&outs),
        vec![Action::PowerOn("n1".into()), Action::PowerOn("n2".into())]
    );
    // 10 s, plus 100 ms for each of the two nodes.
    assert_eq!(tl.next_deadline(), Some(T_BEGIN + 10_200 * MS));
    let outs = tl.step(Input::Record(&event("n1", EventKind::WatchdogArmed)), T0);
    assert!(outs.is_empty(), "{outs:?}");
    let outs = tl.step(Input::Record(&event("n2", EventKind::ServiceStarted)), T0);
    assert!(
        outs.is_empty(),
        "a started service is not an armed watchdog: {outs:?}"
    );
    let outs = tl.step(Input::Record(&event("n2", EventKind::WatchdogArmed)), T0);
    assert_eq!(records(&outs), vec![Record::Start { t: T0 }]);
    assert_eq!(tl.next_deadline(), Some(T0 + 2000 * MS));
}

#[test]
fn start_up_waits_for_every_group_to_come_online() {
    let mut plan = plan();
    plan.groups = vec![GroupPlan {
        name: "sql".into(),
        ip: std::net::Ipv4Addr::new(10, 77, 0, 100),
        prefix_len: 24,
        owners: vec!["n1".into(), "n2".into()],
        disk: false,
    }];
    let (mut tl, _) = Timeline::begin(&plan, T_BEGIN);
    tl.step(Input::Record(&event("n1", EventKind::WatchdogArmed)), T0);
    let outs = tl.step(Input::Record(&event("n2", EventKind::WatchdogArmed)), T0);
    assert!(
        outs.is_empty(),
        "started before the group was online: {outs:?}"
    );
    let Record::Event(mut online) = event("n1", EventKind::GroupOnline) else {
        unreachable!()
    };
    online.data =
        faultline_agent::events::EventData::GroupOnline(faultline_agent::events::GroupOnline {
            group: "sql".into(),
            ip: std::net::Ipv4Addr::new(10, 77, 0, 100),
        });
    let outs = tl.step(Input::Record(&Record::Event(online)), T0 + MS);
    assert_eq!(records(&outs), vec![Record::Start { t: T0 + MS }]);
}

#[test]
fn start_up_timeout_stops_the_run_naming_who_is_missing_and_skips_every_fault() {
    let plan = plan();
    let (mut tl, _) = Timeline::begin(&plan, T_BEGIN);
    tl.step(Input::Record(&event("n1", EventKind::WatchdogArmed)), T0);
    let outs = tl.step(Input::Tick, T_BEGIN + 10_199 * MS);
    assert!(outs.is_empty(), "{outs:?}");
    let outs = tl.step(Input::Tick, T_BEGIN + 10_200 * MS);
    let acts = actions(&outs);
    let Some(Action::Stop(Outcome::Failed(why))) = acts.last() else {
        panic!("{outs:?}")
    };
    assert!(why.contains("node(s) n2 did not come up"), "{why}");
    assert!(why.contains("within 10.2 s"), "{why}");
    assert!(!why.contains("n1"), "{why}");
    assert_eq!(skipped(&outs).len(), 2, "{outs:?}");
    assert!(tl.stopped());
    assert_eq!(tl.next_deadline(), None);
}

#[test]
fn a_node_that_dies_while_starting_is_a_note_and_an_error() {
    let plan = plan();
    let (mut tl, _) = Timeline::begin(&plan, T_BEGIN);
    let outs = tl.step(
        Input::Exit {
            node: "n2",
            status: "exit code 1".into(),
            bugchecked: false,
        },
        T0,
    );
    let notes: Vec<_> = records(&outs)
        .into_iter()
        .filter_map(|r| match r {
            Record::Note(n) => Some(n),
            _ => None,
        })
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].node.as_deref(), Some("n2"));
    assert!(matches!(
        actions(&outs).last(),
        Some(Action::Stop(Outcome::Failed(e))) if e.contains("n2 died while starting (exit code 1)")
    ));
}

#[test]
fn a_fenced_nodes_faults_are_healed_and_it_powers_on_after_restart_delay() {
    let plan = plan();
    let mut tl = running(&plan);
    injected(&mut tl, 0, T0 + 2000 * MS);
    let fenced = T0 + 2500 * MS;
    let outs = tl.step(
        Input::Exit {
            node: "n1",
            status: "exit code 0".into(),
            bugchecked: true,
        },
        fenced,
    );
    let recs = records(&outs);
    assert!(
        matches!(&recs[..], [Record::Power { on: false, node, reason, .. }]
            if node == "n1" && reason.contains("bugcheck") && reason.contains("2000 ms")),
        "{recs:?}"
    );
    assert_eq!(
        actions(&outs),
        vec![Action::Heal {
            index: 0,
            why: "the node was powered off".into()
        }]
    );
    tl.step(Input::Record(&fault(0, FaultPhase::Healed, fenced)), fenced);
    // Its planned heal comes and finds nothing to heal.
    assert_eq!(tl.next_deadline(), Some(T0 + 3000 * MS));
    let outs = tl.step(Input::Tick, fenced + 2000 * MS - 1);
    assert!(
        !actions(&outs).contains(&Action::PowerOn("n1".into())),
        "powered on before restart_delay: {outs:?}"
    );
    let outs = tl.step(Input::Tick, fenced + 2000 * MS);
    assert_eq!(actions(&outs), vec![Action::PowerOn("n1".into())]);
    assert!(matches!(
        &records(&outs)[..],
        [Record::Power { on: true, node, t, .. }] if node == "n1" && *t == fenced + 2000 * MS
    ));
}

#[test]
fn a_node_that_exits_without_a_bugcheck_stays_off() {
    let plan = plan();
    let mut tl = running(&plan);
    tl.step(
        Input::Exit {
            node: "n2",
            status: "signal 9".into(),
            bugchecked: false,
        },
        T0 + MS,
    );
    let outs = tl.step(Input::Tick, T0 + 8_000 * MS);
    assert!(
        !actions(&outs)
            .iter()
            .any(|a| matches!(a, Action::PowerOn(_))),
        "{outs:?}"
    );
}

/// Regression: a cpu quota whose injection took 1.53 s against a 1.5 s
/// `for` was never healed (its heal came due while it was still requested).
#[test]
fn a_fault_confirmed_after_its_heal_came_due_is_healed_at_once() {
    let plan = plan();
    let mut tl = running(&plan);
    let outs = tl.step(Input::Tick, T0 + 3000 * MS);
    assert!(actions(&outs).contains(&Action::Inject(1)), "{outs:?}");
    // Fault 1 (3 s for 1 s) is due to heal at 4 s; confirmed only at 4.1 s.
    let outs = tl.step(Input::Tick, T0 + 4000 * MS);
    assert!(
        !actions(&outs)
            .iter()
            .any(|a| matches!(a, Action::Heal { index: 1, .. })),
        "{outs:?}"
    );
    let outs = tl.step(
        Input::Record(&fault(1, FaultPhase::Injected, T0 + 4100 * MS)),
        T0 + 4100 * MS,
    );
    assert!(
        actions(&outs)
            .iter()
            .any(|a| matches!(a, Action::Heal { index: 1, .. })),
        "{outs:?}"
    );
}

#[test]
fn a_fault_due_on_a_powered_off_node_is_recorded_as_skipped() {
    let plan = plan();
    let mut tl = running(&plan);
    injected(&mut tl, 0, T0 + 2000 * MS);
    tl.step(
        Input::Exit {
            node: "n1",
            status: "exit code 0".into(),
            bugchecked: true,
        },
        T0 + 2500 * MS,
    );
    let outs = tl.step(Input::Tick, T0 + 3000 * MS);
    assert!(!actions(&outs).contains(&Action::Inject(1)), "{outs:?}");
    assert_eq!(
        skipped(&outs),
        vec![(1, "node n1 is powered off".to_string())]
    );
}

#[test]
fn ctrl_c_mid_fault_heals_it_skips_the_rest_and_stops_interrupted() {
    let plan = plan();
    let mut tl = running(&plan);
    injected(&mut tl, 0, T0 + 2000 * MS);
    let outs = tl.step(Input::Signal(libc::SIGINT), T0 + 2100 * MS);
    assert_eq!(
        actions(&outs),
        vec![
            Action::Heal {
                index: 0,
                why: "the run is ending".into()
            },
            Action::Stop(Outcome::Interrupted(libc::SIGINT))
        ]
    );
    let skipped = skipped(&outs);
    assert_eq!(skipped.len(), 1, "{outs:?}");
    assert_eq!(skipped[0].0, 1);
    assert!(skipped[0].1.contains("interrupted"), "{}", skipped[0].1);
    // Nothing more comes out once stopped.
    assert!(tl.step(Input::Tick, T0 + 20_000 * MS).is_empty());
}

#[test]
fn a_deadline_is_not_held_back_by_a_flood_of_records() {
    let plan = plan();
    let mut tl = running(&plan);
    let due = T0 + 2000 * MS;
    let heartbeat = event("n2", EventKind::Heartbeat);
    let mut injected_at = Vec::new();
    // A record every 0.1 ms, never a tick, from 1 s to 2.5 s.
    for k in 0..15_000u64 {
        let now = T0 + 1000 * MS + k * MS / 10;
        let outs = tl.step(Input::Record(&heartbeat), now);
        if actions(&outs).contains(&Action::Inject(0)) {
            injected_at.push(now);
        }
    }
    assert_eq!(injected_at, vec![due], "injected once, on time");
}

#[test]
fn the_end_settles_heals_what_is_active_and_completes() {
    let plan = plan();
    let mut tl = running(&plan);
    injected(&mut tl, 0, T0 + 2000 * MS);
    // Fault 1 lands on time too; fault 0 lasts until 7 s; move the end
    // before that by ticking at 9 s only after confirming fault 1's heal.
    let outs = tl.step(Input::Tick, T0 + 3000 * MS);
    assert_eq!(actions(&outs), vec![Action::Inject(1)]);
    tl.step(
        Input::Record(&fault(1, FaultPhase::Injected, T0 + 3000 * MS)),
        T0 + 3000 * MS,
    );
    let outs = tl.step(Input::Tick, T0 + 4000 * MS);
    assert_eq!(
        actions(&outs),
        vec![Action::Heal {
            index: 1,
            why: "its time is up".into()
        }]
    );
    let outs = tl.step(Input::Tick, T0 + 9000 * MS);
    let recs = records(&outs);
    assert!(
        recs.contains(&Record::Settled { t: T0 + 9000 * MS }),
        "{recs:?}"
    );
    assert_eq!(
        actions(&outs),
        vec![
            Action::Heal {
                index: 0,
                why: "its time is up".into()
            },
            Action::Stop(Outcome::Completed)
        ],
        "fault 0's heal (7 s) fires before the end (9 s)"
    );
}

#[test]
fn a_fault_that_cannot_be_injected_stops_the_run_with_why() {
    let plan = plan();
    let mut tl = running(&plan);
    tl.step(Input::Tick, T0 + 2000 * MS);
    let outs = tl.step(
        Input::Record(&fault(0, FaultPhase::Failed, T0 + 2001 * MS)),
        T0 + 2001 * MS,
    );
    assert!(
        matches!(actions(&outs).last(), Some(Action::Stop(Outcome::Failed(e))) if e.contains("cannot inject fault #0")),
        "{outs:?}"
    );
    assert_eq!(skipped(&outs).len(), 1, "fault 1 never came: {outs:?}");
}

#[test]
fn an_injection_the_shell_abandons_after_a_stop_is_recorded_as_skipped() {
    let mut plan = plan();
    plan.faults[1].at = Duration::from_millis(2000);
    let mut tl = running(&plan);
    let outs = tl.step(Input::Tick, T0 + 2000 * MS);
    assert_eq!(actions(&outs), vec![Action::Inject(0), Action::Inject(1)]);
    // The first fails; the shell then drops the second.
    tl.step(
        Input::Record(&fault(0, FaultPhase::Failed, T0 + 2001 * MS)),
        T0 + 2001 * MS,
    );
    let outs = tl.abandon(1, T0 + 2001 * MS);
    let skipped = skipped(&outs);
    assert_eq!(skipped.len(), 1, "{outs:?}");
    assert!(
        skipped[0].1.contains("cannot inject fault #0"),
        "{}",
        skipped[0].1
    );
    assert!(
        tl.abandon(0, T0 + 2002 * MS).is_empty(),
        "fault 0 has its record"
    );
}

#[test]
fn a_host_error_stops_the_run() {
    let plan = plan();
    let mut tl = running(&plan);
    let outs = tl.step(Input::HostError("cannot start node n1".into()), T0);
    assert_eq!(
        actions(&outs).last(),
        Some(&Action::Stop(Outcome::Failed(
            "cannot start node n1".into()
        )))
    );
}

#[test]
fn a_power_off_leaves_a_partition_and_a_loss_recorded_on_its_node_in_place() {
    let mut plan = plan();
    let net = |spec| FaultPlan {
        node: "n1".into(),
        at: Duration::from_millis(2000),
        duration: Duration::from_millis(5000),
        spec,
    };
    plan.faults = vec![
        freeze("n1", 2000, 5000),
        net(FaultSpec::Partition {
            sides: vec![vec!["n1".into()]],
            networks: vec![crate::plan::Network::Public],
            one_way: false,
        }),
        net(FaultSpec::Loss {
            every_node: false,
            networks: vec![crate::plan::Network::Public],
            percent: 10,
        }),
    ];
    let mut tl = running(&plan);
    let at = T0 + 2000 * MS;
    let outs = tl.step(Input::Tick, at);
    assert_eq!(
        actions(&outs),
        vec![Action::Inject(0), Action::Inject(1), Action::Inject(2)]
    );
    for i in 0..3 {
        tl.step(Input::Record(&fault(i, FaultPhase::Injected, at)), at);
    }
    let outs = tl.step(
        Input::Exit {
            node: "n1",
            status: "exit code 0".into(),
            bugchecked: true,
        },
        at + 500 * MS,
    );
    // Only the freeze ends with the reboot.
    assert_eq!(
        actions(&outs),
        vec![Action::Heal {
            index: 0,
            why: "the node was powered off".into()
        }]
    );
}
