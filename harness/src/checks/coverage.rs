//! What the trace did not record: lost records of an emitter (`gap`
//! records) and spans an observer did not observe. Checks ask here whether
//! the span their verdict rests on was fully recorded, and name the hole
//! when it was not. This module judges nothing itself.

use faultline_agent::events::Source;

use crate::plan::snake_name;
use crate::trace::{ms_between, GapRecord, Trace};

/// `+1.250 s`: a time relative to the timeline's start.
pub(crate) fn rel(trace: &Trace, t: u64) -> String {
    let start = trace.start().unwrap_or(0);
    format!("{:+.3} s", ms_between(start, t) / 1e3)
}

/// Gaps of `node`'s `sources` whose lost records may lie in `(from, to]`.
pub(crate) fn gaps_within<'a>(
    trace: &'a Trace,
    node: &str,
    sources: &[Source],
    from: u64,
    to: u64,
) -> Vec<&'a GapRecord> {
    trace
        .records
        .iter()
        .filter_map(|r| match r {
            crate::trace::Record::Gap(g)
                if g.node == node && sources.contains(&g.source) && g.after < to && g.t > from =>
            {
                Some(g)
            }
            _ => None,
        })
        .collect()
}

/// Gaps of any node's agents whose lost records may lie in `(from, to]`.
pub(crate) fn any_gaps_within(trace: &Trace, from: u64, to: u64) -> Vec<&GapRecord> {
    trace
        .records
        .iter()
        .filter_map(|r| match r {
            crate::trace::Record::Gap(g) if g.after < to && g.t > from => Some(g),
            _ => None,
        })
        .collect()
}

/// One sentence naming lost records.
pub(crate) fn describe_gaps(trace: &Trace, gaps: &[&GapRecord]) -> String {
    gaps.iter()
        .map(|g| {
            format!(
                "{} record(s) of `{}`'s {} (pid {}) were lost between {} and {}",
                g.missing,
                g.node,
                snake_name(&g.source),
                g.pid,
                rel(trace, g.after),
                rel(trace, g.t)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The result a check gives when its verdict would rest on lost records.
pub(crate) fn inconclusive_gaps(
    spec: &crate::plan::CheckSpec,
    trace: &Trace,
    gaps: &[&GapRecord],
    would: &str,
) -> super::CheckResult {
    super::CheckResult::new(
        spec,
        super::Verdict::Inconclusive,
        format!(
            "inconclusive: {}; without them the check would say: {would}",
            describe_gaps(trace, gaps)
        ),
    )
}

/// The parts of `[from, to]` that `observer` did not observe, named, or
/// `None` when it observed all of it.
pub(crate) fn unobserved_text(trace: &Trace, observer: &str, from: u64, to: u64) -> Option<String> {
    if trace.observed_spans(observer).is_empty() {
        return Some(format!(
            "observer `{observer}` has no record of observing at all (a trace without observer records)"
        ));
    }
    let holes = trace.unobserved(observer, from, to);
    if holes.is_empty() {
        return None;
    }
    let spans: Vec<String> = holes
        .iter()
        .map(|(a, b)| format!("from {} to {}", rel(trace, *a), rel(trace, *b)))
        .collect();
    Some(format!(
        "observer `{observer}` did not observe {}",
        spans.join(", ")
    ))
}
