//! `event_text` and `event_sequence`: a node's event log read as a person
//! compares it with the seeds. `event_text` pins the wording, source and
//! type of a modelled event id (so a changed text fails a suite, not only a
//! unit test); `event_sequence` pins the order of a node's events (seed
//! 002's 1228 -> 4199 -> ... -> group failed). A verdict resting on an
//! event's absence is inconclusive when the node's records were lost.
//!
//! Pure functions over the trace; they must not know how the agent words
//! anything (the suite says what the seeds say).

use faultline_agent::events::{Event, EventKind};

use super::{CheckResult, Verdict};
use crate::plan::{snake_name, CheckSpec};
use crate::trace::{ms_between, Trace};

/// Whether `text` matches `pattern`, where `*` matches any run of
/// characters (none included) and everything else matches itself.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, rest) = parts.split_first().expect("split yields one part");
    let Some(mut left) = text.strip_prefix(first) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for part in middle {
        match left.find(part) {
            Some(i) => left = &left[i + part.len()..],
            None => return false,
        }
    }
    left.len() >= last.len() && left.ends_with(last)
}

fn lost(spec: &CheckSpec, trace: &Trace, node: &str, from: u64, why: String) -> CheckResult {
    let end = trace.end().unwrap_or_else(|| trace.last_t());
    let gaps: Vec<_> = super::coverage::any_gaps_within(trace, from, end)
        .into_iter()
        .filter(|g| g.node == node)
        .collect();
    if gaps.is_empty() {
        CheckResult::new(spec, Verdict::Fail, why)
    } else {
        super::coverage::inconclusive_gaps(spec, trace, &gaps, &why)
    }
}

/// What an `event_text` check expects of an event.
pub struct Expected<'a> {
    /// Its text, `*` for any run of characters.
    pub text: &'a str,
    /// Its event-log source, if given.
    pub source: Option<&'a str>,
    /// Its event-log type, if given.
    pub log_type: Option<&'a str>,
    /// A cluster-log line it carries, `*` as in `text`, if given.
    pub line: Option<&'a str>,
}

/// Some event of `node` with id `id` has a text matching `text`, the
/// given source and type, and carries a matching cluster-log line.
pub fn event_text(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    id: u32,
    want: Expected<'_>,
) -> CheckResult {
    let Expected {
        text,
        source,
        log_type,
        line,
    } = want;
    let start = trace.start().unwrap_or(0);
    let with_id: Vec<&Event> = trace
        .events(Some(node), None)
        .filter(|e| e.id == Some(id))
        .collect();
    let fits = |e: &Event| {
        wildcard_match(text, &e.message)
            && source.is_none_or(|s| e.log_source.as_deref() == Some(s))
            && log_type.is_none_or(|t| e.log_type.as_deref() == Some(t))
            && line.is_none_or(|l| e.data.cluster_log().iter().any(|x| wildcard_match(l, x)))
    };
    if let Some(e) = with_id.iter().find(|e| fits(e)) {
        return CheckResult::new(
            spec,
            Verdict::Pass,
            format!(
                "{id} at {:+.3} s on `{node}` ({}, {}): {}",
                ms_between(start, e.t) / 1e3,
                e.log_source.as_deref().unwrap_or("no source"),
                e.log_type.as_deref().unwrap_or("no type"),
                e.message
            ),
        );
    }
    match with_id.first() {
        None => lost(spec, trace, node, 0, format!("no event {id} on `{node}`")),
        Some(e) => CheckResult::new(
            spec,
            Verdict::Fail,
            format!(
                "{} event(s) {id} on `{node}`, none reads as expected; the first is {} {}: {:?} (cluster log {:?}), expected {} {}: {text:?}{}",
                with_id.len(),
                e.log_source.as_deref().unwrap_or("(no source)"),
                e.log_type.as_deref().unwrap_or("(no type)"),
                e.message,
                e.data.cluster_log(),
                source.unwrap_or("(any source)"),
                log_type.unwrap_or("(any type)"),
                line.map(|l| format!(" with cluster-log line {l:?}")).unwrap_or_default(),
            ),
        ),
    }
}

/// `kinds` appear on `node` in this order, each after the one before.
pub fn event_sequence(
    spec: &CheckSpec,
    trace: &Trace,
    node: &str,
    kinds: &[EventKind],
) -> CheckResult {
    let start = trace.start().unwrap_or(0);
    let mut after: Option<(u64, u64)> = None;
    let mut said = Vec::new();
    for k in kinds {
        let next = trace
            .events(Some(node), Some(*k))
            .find(|e| after.is_none_or(|a| (e.t, e.seq) > a));
        match next {
            Some(e) => {
                said.push(format!(
                    "{} {:+.3} s",
                    snake_name(k),
                    ms_between(start, e.t) / 1e3
                ));
                after = Some((e.t, e.seq));
            }
            None => {
                let earlier = trace.events(Some(node), Some(*k)).next().is_some();
                let why = format!(
                    "on `{node}`, {} never followed {}{}",
                    snake_name(k),
                    said.join(" -> "),
                    if earlier {
                        " (it appeared only before)"
                    } else {
                        ""
                    }
                );
                // Records of the node lost after the last match may hold it.
                return lost(spec, trace, node, after.map_or(0, |a| a.0), why);
            }
        }
    }
    CheckResult::new(spec, Verdict::Pass, said.join(" -> "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::run_check;
    use faultline_agent::events::Source;

    #[test]
    fn wildcards_match_runs_of_characters() {
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a*c", "ac"));
        assert!(wildcard_match(
            "ID '*', for '2' seconds.",
            "ID '42', for '2' seconds."
        ));
        assert!(!wildcard_match(
            "ID '*', for '2' seconds.",
            "ID '42', for '2000' seconds."
        ));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
        assert!(!wildcard_match("a*b*a", "ab"));
        assert!(wildcard_match("a*b*a", "abba"));
    }

    fn trace_with_1118(text: &str, source: &str) -> Trace {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        let e = b.event("n2", Source::Service, EventKind::Poisoned, 3000.0);
        e.data = faultline_agent::events::EventData::Poisoned(faultline_agent::events::Poisoned {
            from: "n1".into(),
            from_id: 1,
            cluster_log: vec![
                "INFO [ClMsg] Received poison event.".into(),
                "ERR [RGP] Node 2: REGROUP ERROR: poison packet received from node 1".into(),
            ],
        });
        e.id = Some(1118);
        e.message = text.into();
        e.log_source = Some(source.into());
        e.log_type = Some("Error".into());
        b.settled(6000).end(6100).build()
    }

    fn text_spec(source: Option<&str>) -> CheckSpec {
        CheckSpec::EventText {
            node: "n2".into(),
            id: 1118,
            text: "Cluster service was terminated as requested by Node *.".into(),
            source: source.map(str::to_string),
            log_type: Some("Error".into()),
            line: None,
        }
    }

    #[test]
    fn event_text_checks_the_cluster_log_lines_an_event_carries() {
        let good = trace_with_1118(
            "Cluster service was terminated as requested by Node 1.",
            "ClusNet",
        );
        let with_line = |l: &str| {
            let mut spec = text_spec(None);
            if let CheckSpec::EventText { line, .. } = &mut spec {
                *line = Some(l.into());
            }
            spec
        };
        let r = run_check(
            &with_line("ERR [RGP] Node *: REGROUP ERROR: poison packet received from node 1"),
            &good,
        );
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let r = run_check(&with_line("INFO [ClMsg] Received poison event."), &good);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let r = run_check(
            &with_line("ERR [RGP] Node 2: REGROUP ERROR: poisoned"),
            &good,
        );
        assert_eq!(r.verdict, Verdict::Fail);
    }

    #[test]
    fn event_text_passes_on_the_seeds_wording_and_fails_on_another() {
        let good = trace_with_1118(
            "Cluster service was terminated as requested by Node 1.",
            "ClusNet",
        );
        let r = run_check(&text_spec(Some("ClusNet")), &good);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let reworded = trace_with_1118(
            "The Cluster service was terminated as requested by node 1",
            "ClusNet",
        );
        let r = run_check(&text_spec(Some("ClusNet")), &reworded);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("none reads as expected"), "{}", r.detail);
        let r = run_check(&text_spec(Some("ClusSvc")), &good);
        assert_eq!(r.verdict, Verdict::Fail, "the source is compared too");
        let r = run_check(
            &CheckSpec::EventText {
                node: "n1".into(),
                id: 1118,
                text: "*".into(),
                source: None,
                log_type: None,
                line: None,
            },
            &good,
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("no event 1118 on `n1`"), "{}", r.detail);
    }

    #[test]
    fn event_sequence_needs_each_kind_after_the_one_before() {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.event("n2", Source::Service, EventKind::IpConflict, 3000.0);
        b.event("n2", Source::Service, EventKind::GroupOnlineFailed, 3001.0);
        b.event("n2", Source::Service, EventKind::GroupFailed, 3500.0);
        let t = b.settled(6000).end(6100).build();
        let spec = |kinds: Vec<EventKind>| CheckSpec::EventSequence {
            node: "n2".into(),
            kinds,
        };
        let r = run_check(
            &spec(vec![
                EventKind::IpConflict,
                EventKind::GroupOnlineFailed,
                EventKind::GroupFailed,
            ]),
            &t,
        );
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        let r = run_check(
            &spec(vec![EventKind::GroupFailed, EventKind::IpConflict]),
            &t,
        );
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r.detail.contains("appeared only before"), "{}", r.detail);
        let r = run_check(&spec(vec![EventKind::Poisoned]), &t);
        assert_eq!(r.verdict, Verdict::Fail);
    }
}
