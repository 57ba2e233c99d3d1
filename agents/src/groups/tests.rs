use super::*;

const W: u64 = 10_000;

fn n(i: u32) -> NodeId {
    NodeId(i)
}

fn ids(v: &[u32]) -> Vec<NodeId> {
    v.iter().map(|&i| NodeId(i)).collect()
}

fn groups(me: u32) -> Groups {
    let mut g = Groups::new(n(me), W, vec![("sql".into(), ids(&[1, 2, 3]))]);
    g.sync(&[], 0);
    g
}

#[test]
fn first_owner_that_is_a_member() {
    let f = GroupFacts::default();
    assert_eq!(
        place(&ids(&[1, 2, 3]), &ids(&[1, 2, 3]), &f, 0, W),
        Placement::On(n(1))
    );
    assert_eq!(
        place(&ids(&[1, 2, 3]), &ids(&[2, 3]), &f, 0, W),
        Placement::On(n(2))
    );
    assert_eq!(
        place(&ids(&[3, 1]), &ids(&[1, 2, 3]), &f, 0, W),
        Placement::On(n(3))
    );
    assert_eq!(
        place(&ids(&[4]), &ids(&[1, 2]), &f, 0, W),
        Placement::Nowhere
    );
}

#[test]
fn owners_that_failed_within_the_window_are_skipped_then_forgotten() {
    let mut f = GroupFacts::default();
    f.failures.insert(n(1), 100);
    let owners = ids(&[1, 2, 3]);
    let members = ids(&[1, 2, 3]);
    assert_eq!(place(&owners, &members, &f, 100, W), Placement::On(n(2)));
    assert_eq!(
        place(&owners, &members, &f, 100 + W - 1, W),
        Placement::On(n(2))
    );
    assert_eq!(
        place(&owners, &members, &f, 100 + W, W),
        Placement::On(n(1))
    );
}

#[test]
fn a_group_stays_on_the_member_it_is_online_on() {
    let f = GroupFacts {
        online_on: Some(n(3)),
        ..GroupFacts::default()
    };
    assert_eq!(
        place(&ids(&[1, 2, 3]), &ids(&[1, 2, 3]), &f, 0, W),
        Placement::On(n(3))
    );
    // Not a member any more: back to the owner list.
    assert_eq!(
        place(&ids(&[1, 2, 3]), &ids(&[1, 2]), &f, 0, W),
        Placement::On(n(1))
    );
}

#[test]
fn all_member_owners_failed_means_failed() {
    let mut f = GroupFacts::default();
    f.failures.insert(n(2), 5);
    f.failures.insert(n(3), 6);
    assert_eq!(
        place(&ids(&[1, 2, 3]), &ids(&[2, 3]), &f, 7, W),
        Placement::Failed {
            failed_on: ids(&[2, 3])
        }
    );
}

#[test]
fn the_chosen_node_brings_it_online_and_the_others_wait() {
    let members = ids(&[1, 2, 3]);
    let mut g1 = groups(1);
    let mut g2 = groups(2);
    assert_eq!(
        g1.decide(&members, true, 0),
        vec![GroupAction::BringOnline("sql".into())]
    );
    assert_eq!(g1.local("sql"), Some(Local::Starting));
    // Starting: not asked twice.
    assert!(g1.decide(&members, true, 1).is_empty());
    assert!(g2.decide(&members, true, 0).is_empty());
    g1.local_online("sql");
    g2.on_fact(n(1), "sql", GroupState::Online, 2);
    // n1 leaves: n2 takes over.
    g2.on_member_down(n(1));
    assert_eq!(
        g2.decide(&ids(&[2, 3]), true, 3),
        vec![GroupAction::BringOnline("sql".into())]
    );
}

#[test]
fn a_failed_attempt_moves_the_group_on() {
    let members = ids(&[1, 2, 3]);
    let mut g1 = groups(1);
    let mut g2 = groups(2);
    g1.decide(&members, true, 0);
    g1.local_failed("sql", 10);
    g2.on_fact(n(1), "sql", GroupState::AttemptFailed, 10);
    assert!(g1.decide(&members, true, 11).is_empty());
    assert_eq!(
        g2.decide(&members, true, 11),
        vec![GroupAction::BringOnline("sql".into())]
    );
}

#[test]
fn only_the_lowest_member_declares_failure_once_and_it_lasts_a_window() {
    let members = ids(&[1, 2]);
    let mut g1 = groups(1);
    let mut g2 = groups(2);
    for g in [&mut g1, &mut g2] {
        g.on_fact(n(1), "sql", GroupState::AttemptFailed, 0);
        g.on_fact(n(2), "sql", GroupState::AttemptFailed, 1);
    }
    assert!(g2.decide(&members, true, 2).is_empty());
    assert_eq!(
        g1.decide(&members, true, 2),
        vec![GroupAction::DeclareFailed {
            group: "sql".into(),
            failed_on: ids(&[1, 2])
        }]
    );
    assert!(g1.decide(&members, true, 3).is_empty());
    assert_eq!(
        g1.facts_to_repeat(true),
        vec![("sql".into(), GroupState::Failed)]
    );
    // A restarted node 3 joins within the window: the group stays failed.
    let mut g3 = groups(3);
    g3.on_fact(n(1), "sql", GroupState::Failed, 4);
    assert!(g3.decide(&ids(&[1, 2, 3]), true, 5).is_empty());
    // After the window everything is forgotten.
    assert_eq!(
        g1.decide(&members, true, 2 + W),
        vec![GroupAction::BringOnline("sql".into())]
    );
}

#[test]
fn only_quorate_nodes_act_and_losing_quorum_takes_groups_offline() {
    let members = ids(&[1]);
    let mut g1 = groups(1);
    assert!(g1.decide(&members, false, 0).is_empty());
    assert_eq!(g1.decide(&members, true, 0).len(), 1);
    g1.local_online("sql");
    assert_eq!(g1.held(), vec!["sql".to_string()]);
    assert_eq!(
        g1.decide(&members, false, 1),
        vec![GroupAction::TakeOffline {
            group: "sql".into(),
            reason: "quorum lost".into()
        }]
    );
    assert!(g1.held().is_empty());
    assert!(g1.decide(&members, false, 2).is_empty());
}

#[test]
fn two_claims_resolve_to_the_first_owner() {
    let members = ids(&[1, 2]);
    let mut g1 = groups(1);
    let mut g2 = groups(2);
    g1.decide(&members, true, 0);
    g1.local_online("sql");
    // Node 2 came online too (say, a partition that healed).
    g2.local_online("sql");
    // Each hears the other's claim: both step down...
    g1.on_fact(n(2), "sql", GroupState::Online, 1);
    g2.on_fact(n(1), "sql", GroupState::Online, 1);
    assert_eq!(g1.decide(&members, true, 1).len(), 1);
    assert_eq!(g2.decide(&members, true, 1).len(), 1);
    // ...and once each hears the other's Offline, the rule picks again.
    g1.on_fact(n(2), "sql", GroupState::Offline, 2);
    g2.on_fact(n(1), "sql", GroupState::Offline, 2);
    assert!(g2.decide(&members, true, 2).is_empty());
    assert_eq!(
        g1.decide(&members, true, W + 1),
        vec![GroupAction::BringOnline("sql".into())]
    );
}

/// Seed 002: n1's service was terminated, n2 and n3 each failed to bring the
/// group up, and n2 declared it failed. n1's service restarts (the lowest
/// id, the first preferred owner, no failure of its own on record): it must
/// place nothing until it has the database, and then keep the group failed.
#[test]
fn a_restarted_node_places_nothing_before_the_database_and_keeps_a_failed_group_failed() {
    let mut g1 = Groups::new(n(1), W, vec![("sql".into(), ids(&[1, 2, 3]))]);
    let members = ids(&[1, 2, 3]);
    assert_eq!(
        g1.decide(&members, true, 100),
        vec![],
        "no placement from an empty database"
    );
    g1.sync(&[("sql".into(), Recorded::Failed)], 100);
    assert!(g1.is_synced());
    assert_eq!(g1.decide(&members, true, 200), vec![], "stays failed");
    assert_eq!(g1.local("sql"), Some(Local::Offline));
    assert_eq!(
        g1.facts_to_repeat(true),
        vec![("sql".to_string(), GroupState::Failed)],
        "the new lowest member repeats the failure"
    );
    // Once the window has passed since it learned it, the rule runs again.
    assert_eq!(
        g1.decide(&members, true, 100 + W),
        vec![GroupAction::BringOnline("sql".into())]
    );
}

#[test]
fn a_restarted_node_takes_where_the_database_says_a_group_is_online() {
    let mut g1 = Groups::new(n(1), W, vec![("sql".into(), ids(&[1, 2, 3]))]);
    g1.sync(
        &[
            ("sql".into(), Recorded::OnlineOn(n(3))),
            ("gone".into(), Recorded::Failed),
        ],
        0,
    );
    assert_eq!(g1.facts("sql").unwrap().online_on, Some(n(3)));
    assert_eq!(g1.decide(&ids(&[1, 2, 3]), true, 10), vec![]);
    // What the database says about this node itself is not kept.
    let mut g2 = Groups::new(n(2), W, vec![("sql".into(), ids(&[2, 3]))]);
    g2.sync(&[("sql".into(), Recorded::OnlineOn(n(2)))], 0);
    assert_eq!(g2.facts("sql").unwrap().online_on, None);
    assert_eq!(
        g2.decide(&ids(&[2, 3]), true, 10),
        vec![GroupAction::BringOnline("sql".into())]
    );
}
