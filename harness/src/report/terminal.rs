//! Live progress and the verdict, for a person at a terminal or reading a CI
//! log. Heartbeats are counted, not printed; everything else that happens on
//! the timeline gets one line, stamped relative to the timeline's start.

use std::io::{IsTerminal, Write};

use faultline_agent::events::{EventData, EventKind, BUGCHECK_CODE};

use super::{figures, FIGURES};
use crate::checks::{CheckResult, ScenarioResult, Verdict};
use crate::plan::snake_name;
use crate::trace::{FaultPhase, Record};

/// Writes progress lines to stdout.
pub struct Terminal {
    color: bool,
    start: Option<u64>,
    out: Box<dyn Write>,
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new(Box::new(std::io::stdout()), std::io::stdout().is_terminal())
    }
}

impl Terminal {
    /// A reporter writing to `out`.
    pub fn new(out: Box<dyn Write>, color: bool) -> Self {
        Terminal {
            color,
            start: None,
            out,
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// A line, as is.
    pub fn line(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
        let _ = self.out.flush();
    }

    /// A scenario begins.
    pub fn scenario(&mut self, suite: &str, name: &str) {
        self.start = None;
        let title = self.paint("1", &format!("{suite}/{name}"));
        self.line(&format!("\n{title}"));
    }

    /// One record, as it is recorded.
    pub fn record(&mut self, rec: &Record) {
        if let Record::Start { t } = rec {
            self.start = Some(*t);
        }
        let Some(text) = describe(rec) else { return };
        let stamp = match self.start {
            Some(s) if rec.t() >= s => format!("+{:>7.3}s", (rec.t() - s) as f64 / 1e9),
            Some(s) => format!("-{:>7.3}s", (s - rec.t()) as f64 / 1e9),
            None => "        ".to_string(),
        };
        let stamp = self.paint("2", &stamp);
        self.line(&format!("  {stamp}  {text}"));
    }

    /// The scenario's checks and verdict.
    pub fn result(&mut self, r: &ScenarioResult) {
        if let Some(err) = &r.error {
            let tag = self.paint("1;33", "ERROR");
            self.line(&format!("  {tag} {err}"));
        }
        for c in &r.checks {
            let tag = self.check_tag(c);
            self.line(&format!("  {tag} {}: {}", c.label(), c.detail));
        }
        let verdict = self.verdict_tag(r.verdict);
        self.line(&format!("  => {verdict} {}/{}", r.suite, r.name));
    }

    fn check_tag(&self, c: &CheckResult) -> String {
        match (c.verdict, c.expected_failure) {
            (Verdict::Pass, false) => self.paint("32", "PASS "),
            (Verdict::Fail, true) => self.paint("36", "XFAIL"),
            (Verdict::Pass, true) => self.paint("1;31", "XPASS"),
            (Verdict::Fail, false) => self.paint("1;31", "FAIL "),
            (Verdict::Error, _) => self.paint("1;33", "ERROR"),
            (Verdict::Inconclusive, _) => self.paint("1;35", "INCNC"),
        }
    }

    fn verdict_tag(&self, v: Verdict) -> String {
        self.paint(verdict_colour(v), &snake_name(&v))
    }

    /// The closing lines over every scenario: the counts, then a table of
    /// scenarios, verdicts and key figures ([`FIGURES`]; `-` where none was
    /// measured).
    pub fn summary(&mut self, results: &[ScenarioResult]) {
        let count = |v| results.iter().filter(|r| r.verdict == v).count();
        self.line(&format!(
            "\n{} scenario(s): {} passed, {} failed, {} inconclusive, {} error(s)",
            results.len(),
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Inconclusive),
            count(Verdict::Error)
        ));
        if results.is_empty() {
            return;
        }
        let mut rows: Vec<[String; 6]> = vec![[
            "scenario".into(),
            "verdict".into(),
            FIGURES[0].1.into(),
            FIGURES[1].1.into(),
            FIGURES[2].1.into(),
            FIGURES[3].1.into(),
        ]];
        for r in results {
            let f = figures(r).map(|v| v.unwrap_or_else(|| "-".into()));
            let [a, b, c, d] = f;
            rows.push([
                format!("{}/{}", r.suite, r.name),
                snake_name(&r.verdict),
                a,
                b,
                c,
                d,
            ]);
        }
        let widths: Vec<usize> = (0..6)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        self.line("");
        for (n, row) in rows.iter().enumerate() {
            let mut line = String::from(" ");
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                let text = if i < 2 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                };
                let text = match (n, i) {
                    (0, _) => self.paint("1", &text),
                    (_, 1) => self.paint(verdict_colour(results[n - 1].verdict), &text),
                    _ => text,
                };
                line.push(' ');
                line.push_str(&text);
                line.push(' ');
            }
            self.line(line.trim_end());
        }
    }
}

fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "1;32",
        Verdict::Fail => "1;31",
        Verdict::Error => "1;33",
        Verdict::Inconclusive => "1;35",
    }
}

/// The one-line description of a record, or `None` for records not worth a
/// line (heartbeats, the header).
pub fn describe(rec: &Record) -> Option<String> {
    Some(match rec {
        Record::Header(_)
        | Record::Event(faultline_agent::events::Event {
            data: EventData::Heartbeat(_),
            ..
        }) => return None,
        Record::Start { .. } => "timeline starts: every node is up".to_string(),
        Record::Settled { .. } => {
            "timeline ends: the state now is what is judged; stopping nodes".to_string()
        }
        Record::Arp(a) => match a.op {
            faultline_agent::arp::ArpKind::Announcement => {
                format!(
                    "wire: {} announces {} ({})",
                    a.sender_mac, a.sender_ip, a.bridge
                )
            }
            _ => return None,
        },
        Record::Addr(a) => format!(
            "{}: {} {} ({})",
            a.node,
            if a.held { "holds" } else { "no longer holds" },
            a.ip,
            a.iface
        ),
        Record::Client(_) => return None,
        Record::Note(n) => match &n.node {
            Some(node) => format!("{node}: {}", n.text),
            None => n.text.clone(),
        },
        Record::Gap(g) => format!(
            "{}: {} record(s) of its {} (pid {}) never reached the trace, between {:.1} ms before and now",
            g.node,
            g.missing,
            snake_name(&g.source),
            g.pid,
            g.t.saturating_sub(g.after) as f64 / 1e6
        ),
        Record::Observer(o) => format!(
            "observer {} {}{}",
            o.observer,
            match o.phase {
                crate::trace::ObserverPhase::Up => "up",
                crate::trace::ObserverPhase::Down => "DOWN",
            },
            if o.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", o.detail)
            }
        ),
        Record::End { reason, .. } => format!("run ends ({reason})"),
        Record::Power {
            node, on, reason, ..
        } => {
            format!(
                "{node}: power {} ({reason})",
                if *on { "on" } else { "off" }
            )
        }
        Record::Fault(f) => match f.phase {
            FaultPhase::Injected => format!(
                "{}: fault {} in effect, confirmed {:.1} ms after the request ({})",
                f.node,
                snake_name(&f.kind),
                (f.t.saturating_sub(f.requested)) as f64 / 1e6,
                f.evidence
            ),
            FaultPhase::Healed => format!(
                "{}: fault {} healed ({})",
                f.node,
                snake_name(&f.kind),
                f.evidence
            ),
            FaultPhase::Failed => format!(
                "{}: fault {} FAILED: {}",
                f.node,
                snake_name(&f.kind),
                f.evidence
            ),
            FaultPhase::Skipped => format!(
                "{}: fault {} not injected: {}",
                f.node,
                snake_name(&f.kind),
                f.evidence
            ),
        },
        Record::Event(e) => {
            let id = match e.id {
                Some(BUGCHECK_CODE) if e.kind() == EventKind::HangDetected => " 0x9E".to_string(),
                Some(id) => format!(" {id}"),
                None => String::new(),
            };
            let kind = snake_name(&e.kind());
            let source = format!("{:?}", e.source).to_lowercase();
            let mut s = format!("{}: {source} {kind}{id}", e.node);
            if !e.message.is_empty() {
                s.push_str(&format!(": {}", e.message));
            }
            s
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer the test can read after the terminal is done with it.
    #[derive(Clone, Default)]
    struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_summary_ends_with_a_table_of_verdicts_and_figures() {
        let out = Shared::default();
        let mut t = Terminal::new(Box::new(out.clone()), false);
        let mut results = crate::report::tests::sample();
        results[1].checks[0]
            .measured
            .insert("downtime_ms".into(), 3858.04);
        t.summary(&results);
        let text = String::from_utf8(out.0.borrow().clone()).unwrap();
        insta::assert_snapshot!(text);
        let last = text.lines().last().unwrap();
        let cells: Vec<&str> = last.split_whitespace().collect();
        assert_eq!(
            cells,
            ["demo/observer-died", "inconclusive", "-", "-", "-", "-"]
        );
    }
}
