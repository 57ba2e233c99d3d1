//! Validation: raw suite structs -> plan types, every problem collected
//! with its file, line and column. Reads nothing from the host.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use faultline_agent::events::RecoveryAction;
use serde_saphyr::Spanned;

use super::raw::{RawEntry, RawGroup, RawNode, RawScenario, RawSuite, Scalar};
use super::{default_duration, valid_node_name, valid_path_name, SuiteIssue, MAX_NAME_LEN};
use crate::duration::{format_duration, parse_duration, MAX_DURATION};
use crate::plan::{
    forms_cluster, FaultPlan, GroupPlan, NodePlan, NodeSettings, ScenarioPlan, SuitePlan,
    WatchdogPriority,
};
use crate::topology::{self, PREFIX_LEN};

pub(super) struct Validator {
    pub(super) file: String,
    pub(super) issues: Vec<SuiteIssue>,
}

impl Validator {
    pub(super) fn issue<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.issues.push(SuiteIssue {
            file: self.file.clone(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        });
    }

    pub(super) fn suite(&mut self, raw: RawSuite) -> SuitePlan {
        if !valid_path_name(&raw.suite.value) {
            self.issue(&raw.suite, name_rule("suite", &raw.suite.value));
        }
        let defaults = match &raw.defaults {
            Some(d) => self.settings(&d.value, &NodeSettings::default()),
            None => NodeSettings::default(),
        };
        if raw.scenarios.value.is_empty() {
            self.issue(&raw.scenarios, "a suite needs at least one scenario");
        }
        let mut names = BTreeSet::new();
        let mut scenarios = Vec::new();
        for sc in raw.scenarios.value {
            if !names.insert(sc.value.name.value.clone()) {
                self.issue(
                    &sc.value.name,
                    format!("scenario `{}` is named twice", sc.value.name.value),
                );
            }
            scenarios.push(self.scenario(sc.value, &defaults));
        }
        SuitePlan {
            name: raw.suite.value,
            path: self.file.clone(),
            scenarios,
        }
    }

    fn scenario(&mut self, raw: RawScenario, defaults: &NodeSettings) -> ScenarioPlan {
        if !valid_path_name(&raw.name.value) {
            self.issue(&raw.name, name_rule("scenario", &raw.name.value));
        }
        let mut nodes = Vec::new();
        if raw.nodes.value.is_empty() {
            self.issue(&raw.nodes, "a scenario needs at least one node");
        }
        if raw.nodes.value.len() > topology::MAX_NODES {
            self.issue(
                &raw.nodes,
                format!(
                    "{} nodes: a scenario has at most {} (the addresses of the public network)",
                    raw.nodes.value.len(),
                    topology::MAX_NODES
                ),
            );
        }
        for (name, node) in &raw.nodes.value {
            if !valid_node_name(name) {
                self.issue(
                    node,
                    format!("node name `{name}` must be 1-10 lowercase letters or digits, starting with a letter"),
                );
            }
            let settings = match &node.value {
                Some(n) => self.settings(n, defaults),
                None => defaults.clone(),
            };
            nodes.push(NodePlan {
                name: name.clone(),
                settings,
            });
        }
        let known: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
        let mut groups = Vec::new();
        if let Some(raw_groups) = &raw.groups {
            for (name, g) in &raw_groups.value {
                if let Some(group) = self.group(name, g, &known, nodes.len()) {
                    groups.push(group);
                }
            }
            let mut ips = BTreeSet::new();
            for g in &groups {
                if !ips.insert(g.ip) {
                    self.issue(
                        raw_groups,
                        format!("two groups share the virtual IP {}", g.ip),
                    );
                }
            }
        }
        // Every named group counts as known, valid or not, so that one bad
        // group definition is reported once, not again by every check.
        let group_names: Vec<&str> = raw
            .groups
            .as_ref()
            .map(|g| g.value.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let witness = match &raw.witness {
            Some(w) => self.boolean(w, "witness").unwrap_or(false),
            None => false,
        };
        let failover_window = match &raw.failover_window {
            Some(d) => self.duration(d).unwrap_or(Duration::from_secs(60)),
            None => Duration::from_secs(60),
        };
        let is_cluster = forms_cluster(nodes.len(), !groups.is_empty(), witness);
        let mut faults: Vec<(FaultPlan, &Spanned<RawEntry>)> = Vec::new();
        for f in &raw.faults {
            if let Some(fault) = self.fault(f, &known, is_cluster) {
                faults.push((fault, f));
            }
        }
        faults.sort_by_key(|(f, _)| f.at);
        let mut checks = Vec::new();
        match &raw.checks {
            Some(c) if !c.value.is_empty() => {
                for c in &c.value {
                    if let Some(check) = self.check(c, &known, &group_names) {
                        checks.push(check);
                    }
                }
            }
            Some(c) => self.issue(c, NO_CHECKS),
            None => self.issue(&raw.name, NO_CHECKS),
        }
        let mut expect_fail = Vec::new();
        if let Some(expect) = &raw.expect {
            for k in &expect.value.fail {
                if !checks.iter().any(|c| c.kind() == k.value) {
                    self.issue(
                        k,
                        format!(
                            "`expect.fail` names `{}`, which is not a check of this scenario",
                            k.value
                        ),
                    );
                }
                expect_fail.push(k.value.clone());
            }
        }
        let plans: Vec<FaultPlan> = faults.iter().map(|(f, _)| f.clone()).collect();
        let duration = match &raw.duration {
            Some(d) => self.duration(d).unwrap_or(MAX_DURATION),
            None => {
                let d = default_duration(&nodes, &plans);
                if d > MAX_DURATION {
                    self.issue(
                        &raw.name,
                        format!(
                            "the scenario's default duration ({}: the last fault's end, the slowest \
                             recovery and 1.5s) is longer than the limit of 24h: give a `duration`",
                            format_duration(d)
                        ),
                    );
                }
                d.min(MAX_DURATION)
            }
        };
        self.timeline(&faults, duration, raw.duration.is_some());
        let faults = plans;
        ScenarioPlan {
            name: raw.name.value,
            nodes,
            faults,
            checks,
            expect_fail,
            duration,
            groups,
            witness,
            failover_window,
        }
    }

    /// `base` changed by the settings `raw` gives.
    pub(super) fn settings(&mut self, raw: &RawNode, base: &NodeSettings) -> NodeSettings {
        let mut s = base.clone();
        if let Some(d) = &raw.hang_timeout {
            if let Some(d) = self.duration(d) {
                s.hang_timeout = d;
            }
        }
        if let Some(a) = &raw.hang_recovery_action {
            if let Some(a) = self.action(a) {
                s.hang_recovery_action = a;
            }
        }
        if let Some(d) = &raw.restart_delay {
            if let Some(d) = self.duration(d) {
                s.restart_delay = d;
            }
        }
        if let Some(d) = &raw.service_restart_delay {
            if let Some(d) = self.duration(d) {
                s.service_restart_delay = d;
            }
        }
        if let Some(d) = &raw.node_heartbeat {
            if let Some(d) = self.duration(d) {
                s.node_heartbeat = d;
            }
        }
        if let Some(m) = &raw.missed_heartbeats {
            if let Some(n) = self.count(m, "missed_heartbeats", 1, 1000) {
                s.missed_heartbeats = n;
            }
        }
        if let Some(n) = &raw.arp_probes {
            if let Some(n) = self.count(n, "arp_probes", 1, 10) {
                s.arp.probes = n;
            }
        }
        if let Some(n) = &raw.arp_announcements {
            if let Some(n) = self.count(n, "arp_announcements", 0, 10) {
                s.arp.announcements = n;
            }
        }
        for (raw_d, slot) in [
            (&raw.arp_probe_interval, &mut s.arp.probe_interval),
            (&raw.arp_probe_wait, &mut s.arp.probe_wait),
            (&raw.arp_announce_interval, &mut s.arp.announce_interval),
        ] {
            if let Some(d) = raw_d.as_ref().and_then(|d| self.duration(d)) {
                *slot = d;
            }
        }
        if let Some(b) = &raw.arp_probe {
            if let Some(b) = self.boolean(b, "arp_probe") {
                s.arp_probe = b;
            }
        }
        if let Some(p) = &raw.watchdog_priority {
            match &p.value {
                Scalar::Str(name) if WatchdogPriority::parse(name).is_some() => {
                    s.watchdog_priority = WatchdogPriority::parse(name).expect("checked");
                }
                other => self.issue(
                    p,
                    format!(
                        "watchdog_priority `{other}` must be one of {}",
                        WatchdogPriority::NAMES.join(", ")
                    ),
                ),
            }
        }
        if s.hang_timeout < Duration::from_millis(40) {
            if let Some(d) = &raw.hang_timeout {
                self.issue(d, "hang_timeout must be at least 40ms (the service heartbeats every hang_timeout/4)");
            }
        }
        s
    }

    pub(super) fn duration(&mut self, raw: &Spanned<Scalar>) -> Option<Duration> {
        let text = match &raw.value {
            Scalar::Str(s) => s.clone(),
            Scalar::Bool(b) => {
                self.issue(
                    raw,
                    format!("`{b}` is not a duration: write a number and a unit, e.g. `1s`"),
                );
                return None;
            }
            other => {
                self.issue(
                    raw,
                    format!("duration `{other}` needs a unit: ms, s or m (e.g. `{other}s`)"),
                );
                return None;
            }
        };
        match parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.issue(raw, e.to_string());
                None
            }
        }
    }

    pub(super) fn action(&mut self, raw: &Spanned<Scalar>) -> Option<RecoveryAction> {
        let parsed = match &raw.value {
            Scalar::Int(i) => u8::try_from(*i).ok().and_then(RecoveryAction::from_code),
            Scalar::Str(s) => match s.as_str() {
                "disabled" | "off" | "none" => Some(RecoveryAction::Disabled),
                "log" => Some(RecoveryAction::Log),
                "terminate" => Some(RecoveryAction::Terminate),
                "bugcheck" => Some(RecoveryAction::Bugcheck),
                _ => None,
            },
            _ => None,
        };
        if parsed.is_none() {
            self.issue(
                raw,
                format!(
                    "hang_recovery_action `{}` must be 0-3 or one of disabled, log, terminate, bugcheck",
                    raw.value
                ),
            );
        }
        parsed
    }

    pub(super) fn node_ref(&mut self, raw: &Spanned<String>, known: &[&str]) -> bool {
        if known.contains(&raw.value.as_str()) {
            return true;
        }
        self.issue(
            raw,
            format!(
                "unknown node `{}` (this scenario has: {})",
                raw.value,
                known.join(", ")
            ),
        );
        false
    }

    fn count(&mut self, raw: &Spanned<Scalar>, key: &str, min: u32, max: u32) -> Option<u32> {
        match raw.value {
            Scalar::Int(n) if (i128::from(min)..=i128::from(max)).contains(&n) => {
                u32::try_from(n).ok()
            }
            _ => {
                self.issue(
                    raw,
                    format!(
                        "{key} `{}` must be a whole number from {min} to {max}",
                        raw.value
                    ),
                );
                None
            }
        }
    }

    fn boolean(&mut self, raw: &Spanned<Scalar>, key: &str) -> Option<bool> {
        match raw.value {
            Scalar::Bool(b) => Some(b),
            _ => {
                self.issue(
                    raw,
                    format!("`{key}` must be true or false, not `{}`", raw.value),
                );
                None
            }
        }
    }

    fn group(
        &mut self,
        name: &str,
        raw: &Spanned<RawGroup>,
        known: &[&str],
        node_count: usize,
    ) -> Option<GroupPlan> {
        let g = &raw.value;
        if !valid_node_name(name) {
            self.issue(raw, format!("group name `{name}` must be 1-10 lowercase letters or digits, starting with a letter"));
        }
        let ip = match g.ip.value.split_once('/') {
            Some((ip, len)) => ip.parse::<Ipv4Addr>().ok().zip(len.parse::<u8>().ok()),
            None => None,
        };
        let ip = match ip {
            Some((ip, len)) => match topology::vip_refusal(ip, len, node_count) {
                None => Some(ip),
                Some(why) => {
                    self.issue(&g.ip, format!("virtual IP `{}` {why}", g.ip.value));
                    None
                }
            },
            None => {
                self.issue(
                    &g.ip,
                    format!(
                        "virtual IP `{}` must be an address of the public network {}/{PREFIX_LEN}, written with /{PREFIX_LEN}",
                        g.ip.value,
                        topology::Network::Public.subnet()
                    ),
                );
                None
            }
        };
        let mut owners = Vec::new();
        if g.owners.value.is_empty() {
            self.issue(&g.owners, "a group needs at least one owner");
        }
        for o in &g.owners.value {
            if self.node_ref(o, known) {
                if owners.contains(&o.value) {
                    self.issue(o, format!("owner `{}` is listed twice", o.value));
                }
                owners.push(o.value.clone());
            }
        }
        let disk = match &g.disk {
            Some(d) => self.boolean(d, "disk")?,
            None => false,
        };
        Some(GroupPlan {
            name: name.to_string(),
            ip: ip?,
            prefix_len: PREFIX_LEN,
            owners,
            disk,
        })
    }
}

const NO_CHECKS: &str =
    "a scenario needs at least one check: a scenario with no checks proves nothing";

fn name_rule(what: &str, name: &str) -> String {
    format!(
        "{what} name `{name}` must be 1-{MAX_NAME_LEN} letters, digits, `-`, `_` or `.`, \
         not starting with `.` (it becomes a folder name under --out)"
    )
}
