//! `report.html`: one self-contained page (inline CSS and SVG; no script,
//! no font, nothing fetched) that tells each run's story: a summary table,
//! then per scenario its timeline, its checks (failures first) and links to
//! the files kept beside it.
//!
//! A [`Page`] is a title and a list of [`Section`]s, so other views (the
//! bench's histograms and comparison table) can be added as sections of
//! their own. Pure: traces and results in, text out; the caller writes it.

use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

use faultline_agent::events::EventData;

use super::svg::esc;
use super::{figures, timeline, FIGURES};
use crate::checks::{CheckResult, ScenarioResult, Verdict};
use crate::report::lanes::lanes;
use crate::report::terminal::describe;
use crate::trace::Trace;

/// A part of the page.
pub trait Section {
    /// Its anchor id (unique on the page).
    fn id(&self) -> String;
    /// Its markup: one `<section>` element.
    fn render(&self) -> String;
}

/// A whole report page.
pub struct Page {
    /// Its title.
    pub title: String,
    /// Its sections, in order.
    pub sections: Vec<Box<dyn Section>>,
}

impl Page {
    /// The page as one HTML document.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/><meta name=\"viewport\" content=\"width=device-width\"/><title>{}</title><style>{CSS}</style></head><body><h1>{}</h1>",
            esc(&self.title),
            esc(&self.title)
        );
        for s in &self.sections {
            out.push_str(&s.render());
        }
        out.push_str("</body></html>\n");
        out
    }
}

/// One scenario to draw.
pub struct ScenarioInput<'a> {
    /// How it was judged.
    pub result: &'a ScenarioResult,
    /// Its trace (`None`: the run failed before it had one).
    pub trace: Option<&'a Trace>,
    /// Files kept beside it, as links relative to the report: (link, what).
    pub files: Vec<(String, String)>,
}

/// The report of a `run` or `check`: a summary, then each scenario.
pub fn report(title: &str, scenarios: &[ScenarioInput]) -> String {
    let mut sections: Vec<Box<dyn Section>> = vec![Box::new(Summary {
        rows: scenarios
            .iter()
            .enumerate()
            .map(|(i, s)| (anchor(i, s.result), s.result.clone()))
            .collect(),
    })];
    for (i, s) in scenarios.iter().enumerate() {
        sections.push(Box::new(ScenarioSection {
            id: anchor(i, s.result),
            body: scenario_body(i, s),
        }));
    }
    Page {
        title: title.to_string(),
        sections,
    }
    .render()
}

fn anchor(i: usize, r: &ScenarioResult) -> String {
    let clean: String = format!("{}-{}", r.suite, r.name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!("s{i}-{clean}")
}

/// The table of every scenario with its verdict and key figures.
struct Summary {
    rows: Vec<(String, ScenarioResult)>,
}

impl Section for Summary {
    fn id(&self) -> String {
        "summary".into()
    }

    fn render(&self) -> String {
        let count = |v| self.rows.iter().filter(|(_, r)| r.verdict == v).count();
        let mut out = format!(
            r#"<section id="{}"><p class="counts">{} scenario(s): {} passed, {} failed, {} inconclusive, {} error(s)</p><table class="summary"><thead><tr><th>scenario</th><th>verdict</th>"#,
            self.id(),
            self.rows.len(),
            count(Verdict::Pass),
            count(Verdict::Fail),
            count(Verdict::Inconclusive),
            count(Verdict::Error)
        );
        for (_, title) in FIGURES {
            let _ = write!(out, r#"<th class="num">{title}</th>"#);
        }
        out.push_str("</tr></thead><tbody>");
        for (id, r) in &self.rows {
            let _ = write!(
                out,
                r##"<tr><td><a href="#{id}">{}/{}</a></td><td>{}</td>"##,
                esc(&r.suite),
                esc(&r.name),
                badge(r.verdict, false)
            );
            for f in figures(r) {
                let _ = write!(
                    out,
                    r#"<td class="num">{}</td>"#,
                    esc(f.as_deref().unwrap_or("–"))
                );
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></section>");
        out
    }
}

struct ScenarioSection {
    id: String,
    body: String,
}

impl Section for ScenarioSection {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn render(&self) -> String {
        format!(
            r#"<section class="scenario" id="{}">{}</section>"#,
            esc(&self.id),
            self.body
        )
    }
}

fn badge(v: Verdict, expected_failure: bool) -> String {
    let (class, text) = match (v, expected_failure) {
        (Verdict::Pass, false) => ("pass", "pass"),
        (Verdict::Pass, true) => ("fail", "xpass"),
        (Verdict::Fail, true) => ("xfail", "xfail"),
        (Verdict::Fail, false) => ("fail", "fail"),
        (Verdict::Error, _) => ("error", "error"),
        (Verdict::Inconclusive, _) => ("inconclusive", "inconclusive"),
    };
    format!(r#"<span class="badge {class}">{text}</span>"#)
}

/// The order checks are listed in: what needs a person first.
fn urgency(c: &CheckResult) -> u8 {
    match (c.verdict, c.expected_failure) {
        (Verdict::Fail, false) | (Verdict::Pass, true) => 0,
        (Verdict::Error, _) => 1,
        (Verdict::Inconclusive, _) => 2,
        (Verdict::Fail, true) => 3,
        (Verdict::Pass, false) => 4,
    }
}

fn scenario_body(i: usize, s: &ScenarioInput) -> String {
    let r = s.result;
    let mut out = format!(
        "<h2>{} / {} {}</h2>",
        esc(&r.suite),
        esc(&r.name),
        badge(r.verdict, false)
    );
    if let Some(h) = s.trace.and_then(Trace::header) {
        let nodes: Vec<&str> = h.scenario.nodes.iter().map(|n| n.name.as_str()).collect();
        let _ = write!(
            out,
            r#"<p class="meta">run {} · {} node(s): {} · planned {:.1} s · host {}</p>"#,
            esc(&h.run_id),
            nodes.len(),
            esc(&nodes.join(", ")),
            h.scenario.duration.as_secs_f64(),
            esc(&h.host)
        );
    }
    if let Some(err) = &r.error {
        let _ = write!(out, r#"<p class="run-error">error: {}</p>"#, esc(err));
    }
    if let Some(l) = s.trace.and_then(lanes) {
        let title = format!("timeline of {}/{}", r.suite, r.name);
        let _ = write!(
            out,
            r#"<figure>{}<figcaption>{LEGEND}</figcaption></figure>"#,
            timeline::draw(&l, &i.to_string(), &title)
        );
    }
    out.push_str(&checks_table(&r.checks));
    if !s.files.is_empty() {
        out.push_str(r#"<h3>Files</h3><ul class="files">"#);
        for (link, what) in &s.files {
            let _ = write!(
                out,
                r#"<li><a href="{}">{}</a> {}</li>"#,
                esc(link),
                esc(link),
                esc(what)
            );
        }
        out.push_str("</ul>");
    }
    if let Some(t) = s.trace {
        let start = t.start().unwrap_or(0);
        let lines: Vec<String> = t
            .records
            .iter()
            .filter_map(|rec| {
                let text = describe(rec)?;
                let ms = (rec.t() as f64 - start as f64) / 1e6;
                Some(format!("{:+10.3} s  {}", ms / 1e3, esc(&text)))
            })
            .collect();
        let _ = write!(
            out,
            r#"<details><summary>The run as the terminal told it ({} lines)</summary><pre class="story">{}</pre></details>"#,
            lines.len(),
            lines.join("\n")
        );
    }
    out
}

fn checks_table(checks: &[CheckResult]) -> String {
    if checks.is_empty() {
        return r#"<p class="meta">no check was judged</p>"#.to_string();
    }
    let mut sorted: Vec<&CheckResult> = checks.iter().collect();
    sorted.sort_by_key(|c| urgency(c));
    let mut out = String::from(
        r#"<h3>Checks</h3><table class="checks"><thead><tr><th>verdict</th><th>check</th><th>what was found</th><th>measured</th></tr></thead><tbody>"#,
    );
    for c in sorted {
        let measured: Vec<String> = c
            .measured
            .iter()
            .map(|(k, v)| format!("{} = {v}", esc(k)))
            .collect();
        let _ = write!(
            out,
            r#"<tr class="v-{}"><td>{}</td><td class="label">{}</td><td>{}</td><td class="measured">{}</td></tr>"#,
            urgency(c),
            badge(c.verdict, c.expected_failure),
            esc(&c.label()),
            esc(&c.detail),
            measured.join("<br/>")
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The files a run keeps beside its trace, relative to the scenario's
/// folder, with what each is: the trace, each node's logs, and the dumps
/// its watchdog said it wrote.
pub fn expected_files(trace: &Trace) -> Vec<(String, String)> {
    let mut out = vec![("trace.jsonl".to_string(), "the trace".to_string())];
    let Some(h) = trace.header() else { return out };
    for n in &h.scenario.nodes {
        let dir = format!("nodes/{}", n.name);
        out.push((
            format!("{dir}/events.jsonl"),
            format!("{}: its events", n.name),
        ));
        out.push((
            format!("{dir}/cluster.log"),
            format!("{}: cluster log", n.name),
        ));
        out.push((
            format!("{dir}/agent.log"),
            format!("{}: agent output", n.name),
        ));
        for e in trace.events(Some(&n.name), None) {
            if let EventData::DumpWritten(d) = &e.data {
                if let Some(file) = Path::new(&d.path).file_name() {
                    out.push((
                        format!("{dir}/dumps/{}", file.to_string_lossy()),
                        format!("{}: dump", n.name),
                    ));
                }
            }
        }
    }
    out
}

/// The path from folder `from` to `to`, both absolute and normalized
/// (`None` when either is not absolute).
pub fn relative(from: &Path, to: &Path) -> Option<PathBuf> {
    if !from.is_absolute() || !to.is_absolute() {
        return None;
    }
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..a.len() {
        out.push("..");
    }
    for c in &b[common..] {
        out.push(c);
    }
    Some(out)
}

const LEGEND: &str = r#"<span class="key"><i class="k-hb"></i>heartbeat received by the watchdog (grey: not counted)</span><span class="key"><i class="k-fault"></i>fault in effect (thin bar: requested → confirmed)</span><span class="key"><i class="k-countdown"></i>countdown: last heartbeat → detection</span><span class="key"><i class="k-detect"></i>detection</span><span class="key"><i class="k-recover"></i>recovery step</span><span class="key"><i class="k-group"></i>group event</span><span class="key"><i class="k-member"></i>membership</span><span class="key"><i class="k-off"></i>powered off</span><span class="key"><i class="k-double"></i>two owners at once / trouble</span><span class="key"><i class="k-unanswered"></i>client not answered</span><span class="key"><i class="k-unobserved"></i>not observed (records lost, observer down)</span><span class="key">IP and client lanes are coloured by the node that held or answered</span>"#;

const CSS: &str = r#"
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d1d1f;margin:24px auto;max-width:1280px;padding:0 16px;background:#fafafa}
h1{font-size:22px;margin:0 0 8px}h2{font-size:18px;margin:0 0 4px}h3{font-size:15px;margin:18px 0 6px}
section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:16px 18px;margin:0 0 20px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{font-weight:600;color:#555;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.measured{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap;color:#333}
td.label{font:13px ui-monospace,SFMono-Regular,Menlo,monospace;white-space:nowrap}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;vertical-align:middle}
.badge.pass{background:#1e8e3e}.badge.fail{background:#d93025}.badge.xfail{background:#5f6368}.badge.error{background:#b06000}.badge.inconclusive{background:#8e24aa}
tr.v-0 td,tr.v-1 td{background:#fdecea}tr.v-2 td{background:#f6edf8}
.meta{color:#666;margin:0 0 10px;font-size:13px}.counts{margin:0 0 8px;font-weight:600}
.run-error{color:#b06000;font-weight:600}
figure{margin:8px 0}figcaption{font-size:12px;color:#444;margin-top:6px}
.key{display:inline-block;margin:0 14px 4px 0;white-space:nowrap}.key i{display:inline-block;width:14px;height:10px;margin-right:5px;vertical-align:middle;border-radius:2px}
.k-hb{background:#1e8e3e;width:3px!important}.k-fault{background:#f5a623;opacity:.75}.k-countdown{background:#d93025;height:2px!important}
.k-detect{background:#d93025;transform:rotate(45deg);width:9px!important;height:9px!important}.k-recover{background:#6a1b9a;transform:rotate(45deg);width:9px!important;height:9px!important}
.k-group{background:#2f6fdf;transform:rotate(45deg);width:9px!important;height:9px!important}.k-member{background:#00897b;transform:rotate(45deg);width:9px!important;height:9px!important}
.k-off{background:#3c4043}.k-double{background:#d93025}.k-unanswered{background:#f28b82}
.k-unobserved{background:repeating-linear-gradient(45deg,#f2f2f2 0 3px,#9a9a9a 3px 5px)}
svg.timeline{display:block;background:#fff;border:1px solid #e3e3e3;border-radius:4px}
svg.timeline text{font:11px system-ui,sans-serif;fill:#222}
svg.timeline .axis-label{fill:#666;font-size:10px}svg.timeline .row-label{fill:#888;font-size:9px}
svg.timeline .lane-label{font-weight:600;font-size:12px}
svg.timeline .lane{fill:#fff}svg.timeline .lane-node{fill:#fcfcfc}
svg.timeline .lane-sep{stroke:#ddd}svg.timeline .grid{stroke:#ececec}
svg.timeline .hb{stroke:#1e8e3e;stroke-width:1.5}svg.timeline .hb-uncounted{stroke:#9aa0a6;stroke-width:1.5}
svg.timeline .fault{fill:#f5a623;fill-opacity:.45;stroke:#e69500}svg.timeline .fault-requested{fill:#f5a623;fill-opacity:.9}
svg.timeline .fault-failed{fill:#d93025}svg.timeline .fault-label{fill:#8a5300;font-size:10px;font-weight:600}
svg.timeline .off{fill:#3c4043;fill-opacity:.8}
svg.timeline .countdown{stroke:#d93025;stroke-width:1.5}
svg.timeline .m-detect{fill:#d93025}svg.timeline .m-recover{fill:#6a1b9a}svg.timeline .m-power{fill:#202124}
svg.timeline .m-group{fill:#2f6fdf}svg.timeline .m-trouble{fill:#d93025;stroke:#5c0000}svg.timeline .m-member{fill:#00897b}
svg.timeline text.mark-label{font-size:10px;font-weight:600;fill:#333}svg.timeline text.m-detect,svg.timeline text.m-trouble{fill:#b3261e}
svg.timeline .held{fill-opacity:.85}svg.timeline .held-label{fill:#fff;font-size:10px;font-weight:600}
svg.timeline .double{fill:#d93025;fill-opacity:.55;stroke:#a50e0e;stroke-width:2}svg.timeline .double-label{fill:#fff;font-size:10px;font-weight:700}svg.timeline .arp{stroke-width:1.5}
svg.timeline .answered{fill-opacity:.75}svg.timeline .unanswered{fill:#f28b82}
.files{columns:2;margin:0;padding-left:18px;font-size:13px}
pre.story{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,monospace;max-height:420px;overflow:auto;background:#f6f6f6;padding:8px;border-radius:4px}
details summary{cursor:pointer;color:#1a5276;margin-top:12px}
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::checks::judge;
    use crate::plan::CheckSpec;
    use faultline_agent::events::{EventKind, RecoveryAction, Source};

    fn cluster_run() -> Trace {
        let mut b = TraceBuilder::cluster(&["n1", "n2"]);
        b.check(CheckSpec::NoIpConflict {
            group: "sql".into(),
            window: std::time::Duration::from_secs(1),
        });
        b.check(CheckSpec::NoDetection { node: None });
        b.heartbeats("n1", 0, 2000, 500)
            .freeze("n1", 2100, 6000)
            .hang_detected("n1", 4000.0, RecoveryAction::Terminate)
            .addr("n1", -10.0, true)
            .addr("n2", 4500.0, true)
            .arp_answer(4600.0, "n1")
            .arp_answer(4700.0, "n2")
            .client(100.0, Some("n1"))
            .client(4200.0, None);
        b.event(
            "n1",
            Source::Supervisor,
            EventKind::ServiceTerminated,
            4001.0,
        )
        .data = EventKind::ServiceTerminated.default_data();
        b.observer_down("client:sql", 5000.0, 5500.0);
        b.settled(7000).end(7100);
        b.build()
    }

    fn page(trace: &Trace) -> String {
        let result = judge(trace);
        let input = ScenarioInput {
            result: &result,
            trace: Some(trace),
            files: expected_files(trace)
                .into_iter()
                .map(|(l, w)| (format!("unit/s/{l}"), w))
                .collect(),
        };
        report("faultline report", &[input])
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = page(&cluster_run());
        for banned in [
            "<script", "http://", "https://", "@import", "url(http", "<link",
        ] {
            let allowed = html.matches("http://www.w3.org/2000/svg").count();
            let found = html.matches(banned).count();
            let found = if banned == "http://" {
                found - allowed
            } else {
                found
            };
            assert_eq!(found, 0, "{banned} in the page");
        }
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<style>"));
    }

    #[test]
    fn failures_then_inconclusive_then_expected_failures_then_passes() {
        let sample = crate::report::tests::sample();
        let mut r = sample[0].clone();
        // pass, xfail, fail, inconclusive, inconclusive in plan order.
        r.checks.extend(sample[1].checks.iter().cloned());
        r.checks.extend(sample[2].checks.iter().cloned());
        let html = report(
            "r",
            &[ScenarioInput {
                result: &r,
                trace: None,
                files: Vec::new(),
            }],
        );
        let order: Vec<&str> = html
            .split(r#"<td class="label">"#)
            .skip(1)
            .filter_map(|s| s.split('<').next())
            .collect();
        assert_eq!(
            order,
            [
                "no_detection",
                "detected_within[n1]",
                "no_ip_conflict[sql]",
                "recovery_action[n1]",
                "detected_within[n1]"
            ]
        );
        assert!(html.contains(r#"<span class="badge inconclusive">"#));
        assert!(html.contains("latency_ms = 900.4<br/>overshoot_ms = 0.4"));
        // The summary row carries the key figures.
        assert!(
            html.contains(r#"<td class="num">900.4 ms</td><td class="num">0.400 ms</td>"#),
            "{html}"
        );
    }

    #[test]
    fn the_timeline_and_links_are_there() {
        let html = page(&cluster_run());
        assert_eq!(
            html.matches(r#"<svg xmlns="http://www.w3.org/2000/svg" class="timeline""#)
                .count(),
            1
        );
        assert!(html.contains(r#"<a href="unit/s/trace.jsonl">"#));
        assert!(html.contains(r#"<a href="unit/s/nodes/n2/cluster.log">"#));
        // The client observer's down span is hatched.
        assert!(html.contains(r#"<title>the client observer was not observing</title>"#));
        assert!(html.contains(r##"<a href="#s0-unit-s">unit/s</a>"##));
        assert!(html.contains("The run as the terminal told it"));
    }

    #[test]
    fn a_scenario_without_a_trace_shows_its_error() {
        let result = ScenarioResult {
            name: "x".into(),
            suite: "y".into(),
            verdict: Verdict::Error,
            error: Some("the lab <could not> be built".into()),
            checks: Vec::new(),
        };
        let html = report(
            "r",
            &[ScenarioInput {
                result: &result,
                trace: None,
                files: Vec::new(),
            }],
        );
        assert!(html.contains("error: the lab &lt;could not&gt; be built"));
        assert!(!html.contains("<svg"));
    }

    #[test]
    fn dumps_the_watchdog_wrote_are_linked() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.event("n1", Source::Watchdog, EventKind::DumpWritten, 10.0)
            .data = EventData::DumpWritten(faultline_agent::events::DumpWritten {
            path: "/tmp/x/nodes/n1/dumps/bugcheck-1.json".into(),
            error: None,
        });
        let files = expected_files(&b.build());
        assert!(
            files
                .iter()
                .any(|(l, _)| l == "nodes/n1/dumps/bugcheck-1.json"),
            "{files:?}"
        );
        assert_eq!(files[0].0, "trace.jsonl");
    }

    #[test]
    fn relative_paths_climb_and_descend() {
        let r = |a: &str, b: &str| {
            relative(Path::new(a), Path::new(b)).map(|p| p.display().to_string())
        };
        assert_eq!(r("/out", "/out/demo/s").as_deref(), Some("demo/s"));
        assert_eq!(r("/tmp/a", "/out/demo").as_deref(), Some("../../out/demo"));
        assert_eq!(r("/out", "/out").as_deref(), Some(""));
        assert_eq!(r("out", "/out"), None);
    }
}
