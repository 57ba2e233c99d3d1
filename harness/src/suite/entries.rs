//! Validation of faults and checks: the `kind` picks the vocabulary
//! table's entry, whose keys are the only ones accepted and whose parse
//! function reads them; then the rules of a scenario's timeline (faults
//! before the end, no overlap of one kind on one target).

use std::time::Duration;

use serde_saphyr::Spanned;

use super::checks::{check_def, CHECKS};
use super::faults::{FaultDef, COMMON_KEYS, FAULTS};
use super::params::Params;
use super::raw::{RawEntry, Scalar, Value};
use super::validate::Validator;
use crate::duration::format_duration;
use crate::plan::{CheckSpec, FaultKind, FaultPlan};

impl Validator {
    /// Keys of `raw` that are not in `allowed`, each reported.
    fn refuse_unknown_keys(&mut self, raw: &RawEntry, allowed: &[&str], owner: &str) {
        for (key, _) in &raw.keys {
            if !allowed.contains(&key.value.as_str()) {
                self.issue(
                    key,
                    format!(
                        "`{}` does not apply to {owner} (its keys: {})",
                        key.value,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    /// The `kind` of a fault or check, and where it is written.
    fn kind<'r>(
        &mut self,
        raw: &'r Spanned<RawEntry>,
        what: &str,
        known: &[&str],
    ) -> Option<(&'r Spanned<Value>, String)> {
        let Some((_, kind)) = raw.value.keys.iter().find(|(k, _)| k.value == "kind") else {
            self.issue(
                raw,
                format!("a {what} needs a `kind` (known: {})", known.join(", ")),
            );
            return None;
        };
        match &kind.value {
            Value::Scalar(Scalar::Str(name)) if known.contains(&name.as_str()) => {
                Some((kind, name.clone()))
            }
            Value::Scalar(other) => {
                self.issue(
                    kind,
                    format!("unknown {what} `{other}` (known: {})", known.join(", ")),
                );
                None
            }
            Value::List(_) => {
                self.issue(
                    kind,
                    format!(
                        "a {what}'s `kind` is one name (known: {})",
                        known.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn params<'a>(
        &'a mut self,
        owner: String,
        at: &'a Spanned<Value>,
        allowed: &'static [&'static str],
        given: &'a [(String, Spanned<Value>)],
        nodes: &'a [&'a str],
        groups: &'a [&'a str],
    ) -> Params<'a> {
        Params {
            v: self,
            owner,
            at,
            allowed,
            given,
            nodes,
            groups,
            fault_node: None,
        }
    }

    pub(super) fn fault(
        &mut self,
        raw: &Spanned<RawEntry>,
        known: &[&str],
        is_cluster: bool,
    ) -> Option<FaultPlan> {
        let names: Vec<&str> = FAULTS.iter().map(|d| d.name).collect();
        let kind = self.kind(raw, "fault", &names);
        let def: Option<&FaultDef> = kind
            .as_ref()
            .and_then(|(_, name)| FaultKind::parse(name))
            .map(FaultKind::def);
        let owner = match &def {
            Some(d) => format!("fault `{}`", d.name),
            None => "a fault".to_string(),
        };
        if let Some(def) = def {
            let allowed: Vec<&str> = COMMON_KEYS.iter().chain(def.params).copied().collect();
            self.refuse_unknown_keys(&raw.value, &allowed, &owner);
        }
        let common: Vec<(String, Spanned<Value>)> = raw
            .value
            .keys
            .iter()
            .filter(|(k, _)| COMMON_KEYS.contains(&k.value.as_str()))
            .map(|(k, v)| (k.value.clone(), v.clone()))
            .collect();
        // Where a problem of the whole fault is reported: its kind, or the
        // fault itself when the kind is missing.
        let whole = Spanned::new(Value::List(Vec::new()), raw.referenced, raw.defined);
        let at_kind = kind.as_ref().map_or(&whole, |(k, _)| *k);
        // A kind that lists `node` among its own parameters reads it itself
        // (optional, or refused) and names the fault's node from them.
        let own_node = def.is_some_and(|d| d.params.contains(&"node"));
        let mut p = self.params(owner.clone(), at_kind, COMMON_KEYS, &common, known, &[]);
        let node = if own_node {
            Some(None)
        } else {
            let node = p.node("node");
            p.required("node", node).map(Some)
        };
        let at = p.duration("at");
        let duration = p.duration("for");
        let at = p.required("at", at);
        let duration = p.required("for", duration);
        let def = def?;
        if def.needs_cluster && !is_cluster {
            self.issue(
                at_kind,
                format!("{owner} needs a cluster (two or more nodes, a group or a witness)"),
            );
        }
        let own: Vec<(String, Spanned<Value>)> = raw
            .value
            .keys
            .iter()
            .filter(|(k, _)| def.params.contains(&k.value.as_str()))
            .map(|(k, v)| (k.value.clone(), v.clone()))
            .collect();
        let mut p = self.params(owner, at_kind, def.params, &own, known, &[]);
        let spec = (def.parse)(&mut p);
        let node = match node? {
            Some(node) => node,
            None => p.fault_node.take()?,
        };
        Some(FaultPlan {
            node,
            at: at?,
            duration: duration?,
            spec: spec?,
        })
    }

    /// The rules of a scenario's timeline: every fault starts before the
    /// end, and two faults of one kind on one target never overlap.
    pub(super) fn timeline(
        &mut self,
        faults: &[(FaultPlan, &Spanned<RawEntry>)],
        duration: Duration,
        explicit: bool,
    ) {
        for (f, raw) in faults {
            if f.at >= duration {
                let why = if explicit {
                    "the scenario's `duration`"
                } else {
                    "the scenario's default duration"
                };
                self.issue(
                    *raw,
                    format!(
                        "fault `{}` on {} starts at {}, at or after the end of the timeline ({}, {why}): it would never be injected",
                        f.kind().name(),
                        f.node,
                        format_duration(f.at),
                        format_duration(duration)
                    ),
                );
            }
        }
        for (i, (a, raw_a)) in faults.iter().enumerate() {
            for (b, raw_b) in &faults[i + 1..] {
                if a.kind() != b.kind() || a.end().min(duration) <= b.at {
                    continue;
                }
                let (ta, tb) = ((a.kind().def().targets)(a), (a.kind().def().targets)(b));
                if !ta.iter().any(|t| tb.contains(t)) {
                    continue;
                }
                let message = format!(
                    "fault `{}` on {} from {} to {} overlaps the one at {}:{} (from {} to {}): \
                     two faults of one kind on one target must not overlap",
                    b.kind().name(),
                    b.node,
                    format_duration(b.at),
                    format_duration(b.end()),
                    raw_a.referenced.line(),
                    raw_a.referenced.column(),
                    format_duration(a.at),
                    format_duration(a.end()),
                );
                self.issue(*raw_b, message);
            }
        }
    }

    pub(super) fn check(
        &mut self,
        raw: &Spanned<RawEntry>,
        known: &[&str],
        groups: &[&str],
    ) -> Option<CheckSpec> {
        let names: Vec<&str> = CHECKS.iter().map(|d| d.name).collect();
        let (kind_at, name) = self.kind(raw, "check", &names)?;
        let def = check_def(&name)?;
        let owner = format!("check `{name}`");
        let allowed: Vec<&str> = ["kind"].iter().chain(def.keys).copied().collect();
        self.refuse_unknown_keys(&raw.value, &allowed, &owner);
        let own: Vec<(String, Spanned<Value>)> = raw
            .value
            .keys
            .iter()
            .filter(|(k, _)| def.keys.contains(&k.value.as_str()))
            .map(|(k, v)| (k.value.clone(), v.clone()))
            .collect();
        let mut p = self.params(owner, kind_at, def.keys, &own, known, groups);
        (def.parse)(&mut p)
    }
}
