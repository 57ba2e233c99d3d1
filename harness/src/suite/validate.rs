//! Validation: raw suite structs -> plan types, every problem collected
//! with its file, line and column. Reads nothing from the host.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

use faultline_agent::events::{EventKind, RecoveryAction};
use serde_saphyr::Spanned;

use super::raw::{RawCheck, RawFault, RawGroup, RawNode, RawScenario, RawSuite, Scalar};
use super::{
    default_duration, valid_node_name, SuiteIssue, CLIENT_HOST, DEFAULT_CONFLICT_WINDOW,
    DEFAULT_SLACK, NODE_HOST_BASE, PUBLIC_NET,
};
use crate::duration::parse_duration;
use crate::plan::{
    forms_cluster, CheckSpec, FaultKind, FaultPlan, GroupPlan, GroupState, Network, NodePlan,
    NodeSettings, ScenarioPlan, SuitePlan,
};

pub(super) struct Validator {
    pub(super) file: String,
    pub(super) issues: Vec<SuiteIssue>,
}

impl Validator {
    fn issue<T>(&mut self, at: &Spanned<T>, message: impl Into<String>) {
        self.issues.push(SuiteIssue {
            file: self.file.clone(),
            line: at.referenced.line(),
            column: at.referenced.column(),
            message: message.into(),
        });
    }

    pub(super) fn suite(&mut self, raw: RawSuite) -> SuitePlan {
        if raw.suite.value.trim().is_empty() {
            self.issue(&raw.suite, "suite name is empty");
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
        if raw.name.value.trim().is_empty() {
            self.issue(&raw.name, "scenario name is empty");
        }
        let mut nodes = Vec::new();
        if raw.nodes.value.is_empty() {
            self.issue(&raw.nodes, "a scenario needs at least one node");
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
        let mut faults = Vec::new();
        for f in &raw.faults {
            if f.value.kind.value == "forged_poison" && !is_cluster {
                self.issue(
                    &f.value.kind,
                    "fault `forged_poison` needs a cluster (two or more nodes, a group or a witness)",
                );
            }
            if let Some(fault) = self.fault(&f.value, &known) {
                faults.push(fault);
            }
        }
        faults.sort_by_key(|f| f.at);
        let mut checks = Vec::new();
        for c in &raw.checks {
            if let Some(check) = self.check(&c.value, &known, &group_names) {
                checks.push(check);
            }
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
        let duration = match &raw.duration {
            Some(d) => self.duration(d).unwrap_or(Duration::from_secs(1)),
            None => default_duration(&nodes, &faults),
        };
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

    fn settings(&mut self, raw: &RawNode, base: &NodeSettings) -> NodeSettings {
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
        if s.hang_timeout < Duration::from_millis(40) {
            if let Some(d) = &raw.hang_timeout {
                self.issue(d, "hang_timeout must be at least 40ms (the service heartbeats every hang_timeout/4)");
            }
        }
        s
    }

    fn duration(&mut self, raw: &Spanned<Scalar>) -> Option<Duration> {
        let text = match &raw.value {
            Scalar::Str(s) => s.clone(),
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

    fn action(&mut self, raw: &Spanned<Scalar>) -> Option<RecoveryAction> {
        let parsed = match &raw.value {
            Scalar::Int(i) if (0..=3).contains(i) => RecoveryAction::from_code(*i as u8),
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

    fn node_ref(&mut self, raw: &Spanned<String>, known: &[&str]) -> bool {
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

    fn fault(&mut self, raw: &RawFault, known: &[&str]) -> Option<FaultPlan> {
        let kind = FaultKind::parse(&raw.kind.value);
        if kind.is_none() {
            self.issue(
                &raw.kind,
                format!(
                    "unknown fault `{}` (known: {})",
                    raw.kind.value,
                    FaultKind::ALL.join(", ")
                ),
            );
        }
        let node_ok = self.node_ref(&raw.node, known);
        let at = self.duration(&raw.at);
        let duration = self.duration(&raw.duration);
        let networks = match (kind, &raw.network) {
            (Some(FaultKind::LinkDown), None) => {
                self.issue(
                    &raw.kind,
                    "fault `link_down` needs a `network`: public, private or all",
                );
                None
            }
            (Some(FaultKind::LinkDown), Some(n)) => match n.value.as_str() {
                "public" => Some(vec![Network::Public]),
                "private" => Some(vec![Network::Private]),
                "all" => Some(vec![Network::Public, Network::Private]),
                other => {
                    self.issue(
                        n,
                        format!("network `{other}` must be public, private or all"),
                    );
                    None
                }
            },
            (Some(k), Some(n)) => {
                self.issue(
                    n,
                    format!(
                        "`network` does not apply to fault `{}`",
                        FaultKind::ALL[k as usize]
                    ),
                );
                None
            }
            (None, Some(_)) => None,
            (_, None) => Some(Vec::new()),
        };
        Some(FaultPlan {
            kind: kind?,
            node: node_ok.then(|| raw.node.value.clone())?,
            at: at?,
            duration: duration?,
            networks: networks?,
        })
    }

    fn check(&mut self, raw: &RawCheck, known: &[&str], groups: &[&str]) -> Option<CheckSpec> {
        let kind = raw.kind.value.as_str();
        let allowed: &[&str] = match kind {
            "detected_within" => &["node", "slack"],
            "recovery_action" => &["node", "action"],
            "no_detection" => &["node"],
            "failover_within" => &["group", "within"],
            "no_ip_conflict" => &["group", "window"],
            "group_state" => &["group", "state", "node"],
            "client_downtime" => &["group", "max"],
            "events" => &["node", "must", "must_not"],
            "quorum" => &["held", "lost"],
            _ => {
                self.issue(
                    &raw.kind,
                    format!(
                        "unknown check `{kind}` (known: {})",
                        CheckSpec::KINDS.join(", ")
                    ),
                );
                return None;
            }
        };
        let present: [(&str, Option<(u64, u64)>); 12] = [
            ("node", raw.node.as_ref().map(loc)),
            ("slack", raw.slack.as_ref().map(loc)),
            ("action", raw.action.as_ref().map(loc)),
            ("group", raw.group.as_ref().map(loc)),
            ("within", raw.within.as_ref().map(loc)),
            ("window", raw.window.as_ref().map(loc)),
            ("state", raw.state.as_ref().map(loc)),
            ("max", raw.max.as_ref().map(loc)),
            ("must", raw.must.as_ref().map(loc)),
            ("must_not", raw.must_not.as_ref().map(loc)),
            ("held", raw.held.as_ref().map(loc)),
            ("lost", raw.lost.as_ref().map(loc)),
        ];
        for (key, at) in present {
            if let (Some((line, column)), false) = (at, allowed.contains(&key)) {
                self.issues.push(SuiteIssue {
                    file: self.file.clone(),
                    line,
                    column,
                    message: format!("`{key}` does not apply to check `{kind}`"),
                });
            }
        }
        let node_required = matches!(kind, "detected_within" | "recovery_action");
        let node = match &raw.node {
            Some(n) if allowed.contains(&"node") => {
                self.node_ref(n, known).then(|| n.value.clone())
            }
            None if node_required => {
                self.issue(&raw.kind, format!("check `{kind}` needs a `node`"));
                return None;
            }
            _ => None,
        };
        let group = if allowed.contains(&"group") {
            match &raw.group {
                Some(g) if groups.contains(&g.value.as_str()) => Some(g.value.clone()),
                Some(g) => {
                    self.issue(
                        g,
                        format!(
                            "unknown group `{}` (this scenario has: {})",
                            g.value,
                            groups.join(", ")
                        ),
                    );
                    return None;
                }
                None => {
                    self.issue(&raw.kind, format!("check `{kind}` needs a `group`"));
                    return None;
                }
            }
        } else {
            None
        };
        let required_duration =
            |v: &mut Self, d: &Option<Spanned<Scalar>>, key: &str| -> Option<Duration> {
                match d {
                    Some(d) => v.duration(d),
                    None => {
                        v.issue(&raw.kind, format!("check `{kind}` needs `{key}`"));
                        None
                    }
                }
            };
        Some(match kind {
            "detected_within" => CheckSpec::DetectedWithin {
                node: node?,
                slack: match &raw.slack {
                    Some(s) => self.duration(s)?,
                    None => DEFAULT_SLACK,
                },
            },
            "recovery_action" => CheckSpec::RecoveryAction {
                node: node?,
                action: match &raw.action {
                    Some(a) => Some(self.action(a)?),
                    None => None,
                },
            },
            "no_detection" => CheckSpec::NoDetection { node },
            "failover_within" => CheckSpec::FailoverWithin {
                group: group?,
                within: required_duration(self, &raw.within, "within")?,
            },
            "no_ip_conflict" => CheckSpec::NoIpConflict {
                group: group?,
                window: match &raw.window {
                    Some(w) => self.duration(w)?,
                    None => DEFAULT_CONFLICT_WINDOW,
                },
            },
            "group_state" => CheckSpec::GroupState {
                group: group?,
                state: match raw.state.as_ref().map(|s| (s, s.value.as_str())) {
                    Some((_, "online")) => GroupState::Online,
                    Some((_, "failed")) => GroupState::Failed,
                    Some((_, "offline")) => GroupState::Offline,
                    Some((s, other)) => {
                        self.issue(
                            s,
                            format!("group state `{other}` must be online, failed or offline"),
                        );
                        return None;
                    }
                    None => {
                        self.issue(
                            &raw.kind,
                            "check `group_state` needs a `state`: online, failed or offline",
                        );
                        return None;
                    }
                },
                node,
            },
            "client_downtime" => CheckSpec::ClientDowntime {
                group: group?,
                max: required_duration(self, &raw.max, "max")?,
            },
            "events" => {
                let must = self.event_kinds(raw.must.as_ref());
                let must_not = self.event_kinds(raw.must_not.as_ref());
                if raw.must.is_none() && raw.must_not.is_none() {
                    self.issue(&raw.kind, "check `events` needs `must` or `must_not`");
                }
                CheckSpec::Events {
                    node,
                    must: must?,
                    must_not: must_not?,
                }
            }
            _ => {
                let held = self.node_list(raw.held.as_ref(), known);
                let lost = self.node_list(raw.lost.as_ref(), known);
                if raw.held.is_none() && raw.lost.is_none() {
                    self.issue(&raw.kind, "check `quorum` needs `held` or `lost`");
                }
                CheckSpec::Quorum {
                    held: held?,
                    lost: lost?,
                }
            }
        })
    }

    fn event_kinds(
        &mut self,
        raw: Option<&Spanned<Vec<Spanned<String>>>>,
    ) -> Option<Vec<EventKind>> {
        let mut kinds = Vec::new();
        let mut ok = true;
        for k in raw.map(|r| r.value.as_slice()).unwrap_or_default() {
            match serde_json::from_value::<EventKind>(serde_json::Value::String(k.value.clone())) {
                Ok(kind) => kinds.push(kind),
                Err(_) => {
                    self.issue(k, format!("unknown event kind `{}`", k.value));
                    ok = false;
                }
            }
        }
        ok.then_some(kinds)
    }

    fn node_list(
        &mut self,
        raw: Option<&Spanned<Vec<Spanned<String>>>>,
        known: &[&str],
    ) -> Option<Vec<String>> {
        let mut nodes = Vec::new();
        let mut ok = true;
        for n in raw.map(|r| r.value.as_slice()).unwrap_or_default() {
            ok &= self.node_ref(n, known);
            nodes.push(n.value.clone());
        }
        ok.then_some(nodes)
    }

    fn count(&mut self, raw: &Spanned<Scalar>, key: &str, min: i64, max: i64) -> Option<u32> {
        match raw.value {
            Scalar::Int(n) if (min..=max).contains(&n) => Some(n as u32),
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
            Some((ip, 24)) if ip.octets()[..3] == PUBLIC_NET[..] => {
                let host = ip.octets()[3];
                if (NODE_HOST_BASE..NODE_HOST_BASE + node_count as u8).contains(&host)
                    || host == CLIENT_HOST
                    || host == 0
                    || host == 255
                {
                    self.issue(&g.ip, format!("virtual IP {ip} is a node's, the client's or a reserved address of the public network"));
                    None
                } else {
                    Some(ip)
                }
            }
            _ => {
                self.issue(&g.ip, format!("virtual IP `{}` must be an address of the public network 10.77.0.0/24, written with /24", g.ip.value));
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
            prefix_len: 24,
            owners,
            disk,
        })
    }
}

fn loc<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}
