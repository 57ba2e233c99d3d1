//! `report.html` of `faultline bench --out DIR`: sections of the report's
//! [`Page`]: the summary per setting, the comparison table, histograms of
//! latency and overshoot per setting side by side (one x axis per figure,
//! shared by the settings, so the bars compare by eye), lab times, and
//! every trial with a link to its trace. Pure: the report in, text out.

use std::fmt::Write;

use super::stats::{self, Distribution, Hist, Sample};
use super::Report;
use crate::report::html::{Page, Section};
use crate::report::svg::{esc, nice_step, Svg};

/// A sample's values of one figure.
type Values = fn(&Sample) -> &Vec<f64>;

/// Bars per histogram.
const BINS: usize = 30;
const W: f64 = 420.0;
const H: f64 = 190.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 34.0;
const TOP: f64 = 14.0;
/// One colour per setting, in order.
const COLOURS: [&str; 4] = ["#2f6fdf", "#d93025", "#1e8e3e", "#8e24aa"];

/// The whole page. `trace_links` maps a sample's trace path to the link
/// written (relative to the page), or drops it.
pub fn page(report: &Report, trace_links: &dyn Fn(&str) -> Option<String>) -> String {
    let mut parts: Vec<Box<dyn Section + '_>> = vec![Box::new(Summary(report))];
    if !report.comparisons.is_empty() {
        parts.push(Box::new(Comparisons(report)));
    }
    let mut scenarios: Vec<&str> = report.summary.iter().map(|s| s.scenario.as_str()).collect();
    scenarios.dedup();
    for (i, sc) in scenarios.iter().enumerate() {
        parts.push(Box::new(Histograms {
            report,
            scenario: sc,
            index: i,
        }));
    }
    let links: Vec<Option<String>> = report
        .samples
        .iter()
        .map(|s| s.trace.as_deref().and_then(trace_links))
        .collect();
    parts.push(Box::new(Trials {
        samples: &report.samples,
        links,
    }));
    // The page holds owned sections: each is rendered here.
    let sections: Vec<Box<dyn Section>> = parts
        .iter()
        .map(|p| {
            Box::new(Rendered {
                id: p.id(),
                html: p.render(),
            }) as Box<dyn Section>
        })
        .collect();
    Page {
        title: "faultline bench".into(),
        sections,
    }
    .render()
}

/// A section already rendered.
struct Rendered {
    id: String,
    html: String,
}

impl Section for Rendered {
    fn id(&self) -> String {
        self.id.clone()
    }

    fn render(&self) -> String {
        self.html.clone()
    }
}

struct Summary<'a>(&'a Report);

fn dist_cells(d: Option<Distribution>) -> String {
    match d {
        None => "<td class=\"num\" colspan=\"6\">-</td>".into(),
        Some(d) => format!(
            "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>",
            d.count,
            stats::ms(Some(d.min)),
            stats::ms(Some(d.p50)),
            stats::ms(Some(d.p90)),
            stats::ms(Some(d.p99)),
            stats::ms(Some(d.max))
        ),
    }
}

impl Section for Summary<'_> {
    fn id(&self) -> String {
        "bench-summary".into()
    }

    fn render(&self) -> String {
        let r = self.0;
        let mut out = format!(
            "<section id=\"{}\"><h2>Summary</h2><p class=\"meta\">{}<br/>linux {}, {} core(s), cgroup {}, load {} at the start, {} at the end; {} fault trial(s) per setting, {} control(s) per scenario{}</p>",
            self.id(),
            esc(&r.command),
            esc(&r.host.kernel),
            r.host.cores,
            esc(&r.host.cgroup_layout),
            esc(&r.host.load_average_start),
            esc(&r.host.load_average_end),
            r.trials,
            r.controls,
            if r.complete { "" } else { "; <b>stopped early</b>" }
        );
        out.push_str("<table class=\"bench-summary\"><thead><tr><th>scenario</th><th>setting</th><th>figure (ms)</th><th class=\"num\">n</th><th class=\"num\">min</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr></thead><tbody>");
        for s in &r.summary {
            for (name, d) in [
                ("latency from onset", s.latency),
                ("overshoot past deadline", s.overshoot),
                ("failover", s.failover),
                ("client downtime", s.downtime),
            ] {
                if d.is_none() && matches!(name, "failover" | "client downtime") {
                    continue;
                }
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td>{name}</td>{}</tr>",
                    esc(&s.scenario),
                    esc(&s.setting),
                    dist_cells(d)
                );
            }
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td colspan=\"7\">{} trial(s), {} error(s) ({} attempt(s) run again), {} missed detection(s), {} early; {} control(s), <b>{} false detection(s)</b></td></tr>",
                esc(&s.scenario),
                esc(&s.setting),
                s.trials,
                s.errors,
                s.retries,
                s.missed,
                s.early,
                s.controls,
                s.false_detections
            );
        }
        out.push_str("</tbody></table><h3>Lab bring-up and teardown</h3><table><thead><tr><th>nodes</th><th>phase (ms)</th><th class=\"num\">n</th><th class=\"num\">min</th><th class=\"num\">p50</th><th class=\"num\">p90</th><th class=\"num\">p99</th><th class=\"num\">max</th></tr></thead><tbody>");
        for l in &r.lab {
            for (phase, d) in [("bring-up", l.up), ("teardown", l.teardown)] {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{phase}</td>{}</tr>",
                    l.nodes,
                    dist_cells(d)
                );
            }
        }
        let _ = write!(
            out,
            "</tbody></table><p class=\"meta\">wall time {:.1} s for {:.1} s of planned scenario time: {}; the trials themselves (last attempts, lab to judged) {:.1} s: {}</p></section>",
            r.overhead.wall_ms / 1e3,
            r.overhead.planned_ms / 1e3,
            stats::times(r.overhead.ratio),
            r.overhead.trials_ms / 1e3,
            stats::times(r.overhead.trials_ratio)
        );
        out
    }
}

struct Comparisons<'a>(&'a Report);

impl Section for Comparisons<'_> {
    fn id(&self) -> String {
        "bench-comparison".into()
    }

    fn render(&self) -> String {
        let mut out = format!("<section id=\"{}\"><h2>Comparison</h2>", self.id());
        for c in &self.0.comparisons {
            let _ = write!(
                out,
                "<h3>{}</h3><table class=\"comparison\"><thead><tr><th>figure (ms)</th><th class=\"num\">{}</th><th class=\"num\">{}</th><th class=\"num\">ratio (second / first)</th></tr></thead><tbody>",
                esc(&c.scenario),
                esc(&c.a),
                esc(&c.b)
            );
            for row in &c.rows {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                    esc(&row.figure),
                    stats::ms(row.a),
                    stats::ms(row.b),
                    stats::times(row.ratio)
                );
            }
            out.push_str("</tbody></table>");
        }
        out.push_str("</section>");
        out
    }
}

struct Histograms<'a> {
    report: &'a Report,
    scenario: &'a str,
    index: usize,
}

impl Section for Histograms<'_> {
    fn id(&self) -> String {
        format!("bench-histograms-{}", self.index)
    }

    fn render(&self) -> String {
        let mut out = format!(
            "<section id=\"{}\"><h2>{}</h2>",
            self.id(),
            esc(self.scenario)
        );
        let settings: Vec<&str> = self
            .report
            .summary
            .iter()
            .filter(|s| s.scenario == self.scenario)
            .map(|s| s.setting.as_str())
            .collect();
        let figures: [(&str, Values); 2] = [
            ("detection latency from the confirmed onset", |s| {
                &s.latency_ms
            }),
            (
                "overshoot past the deadline (last heartbeat + hang_timeout)",
                |s| &s.overshoot_ms,
            ),
        ];
        for (title, get) in figures {
            let per: Vec<Vec<f64>> = settings
                .iter()
                .map(|set| {
                    self.report
                        .samples
                        .iter()
                        .filter(|s| !s.control && s.scenario == self.scenario && s.setting == *set)
                        .flat_map(|s| get(s).iter().copied())
                        .collect()
                })
                .collect();
            let all = per.iter().flatten().copied();
            let hi = all.clone().fold(0.0f64, f64::max);
            let min = all.fold(f64::INFINITY, f64::min).max(0.0);
            // From 0 ms (early firings count as 0), unless the values sit
            // far from it (latency near hang_timeout): then from a round
            // value below the smallest.
            let lo = if min.is_finite() && min > hi - min {
                let step = nice_step(hi - min, 6);
                (min / step).floor() * step
            } else {
                0.0
            };
            if per.iter().all(Vec::is_empty) {
                continue;
            }
            let _ = write!(
                out,
                "<h3>{}</h3><div style=\"display:flex;gap:16px;flex-wrap:wrap\">",
                esc(title)
            );
            for (i, (set, values)) in settings.iter().zip(&per).enumerate() {
                let _ = write!(
                    out,
                    "<figure style=\"flex:1 1 380px\">{}<figcaption>{}: {} value(s)</figcaption></figure>",
                    histogram(values, lo, hi, COLOURS[i % COLOURS.len()], &format!("{title}, {set}")),
                    esc(set),
                    values.len()
                );
            }
            out.push_str("</div>");
        }
        out.push_str("</section>");
        out
    }
}

/// One histogram as SVG: `BINS` bars over `lo..hi` ms.
pub fn histogram(values: &[f64], lo: f64, hi: f64, colour: &str, label: &str) -> String {
    let hi = if hi <= lo { lo + 1.0 } else { hi * 1.02 };
    let hist = Hist::of(values.iter().copied());
    let bins = hist.bins(lo, hi, BINS);
    let top = bins.iter().copied().max().unwrap_or(0).max(1);
    let mut svg = Svg::new(W, H, "histogram", label);
    let (pw, ph) = (W - LEFT - 10.0, H - BOTTOM - TOP);
    let bw = pw / BINS as f64;
    let bin_w = (hi - lo) / BINS as f64;
    for (i, n) in bins.iter().enumerate() {
        if *n == 0 {
            continue;
        }
        let h = ph * *n as f64 / top as f64;
        let from = lo + i as f64 * bin_w;
        svg.rect(
            LEFT + i as f64 * bw + 0.5,
            TOP + ph - h,
            bw - 1.0,
            h,
            "bar",
            colour,
            &format!(
                "{} trial(s) at {}-{} ms",
                n,
                stats::ms(Some(from)),
                stats::ms(Some(from + bin_w))
            ),
        );
    }
    svg.raw(&format!(
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" stroke="#888"/>"##,
        y = TOP + ph,
        x2 = LEFT + pw
    ));
    let step = nice_step(hi - lo, 6);
    let mut x = (lo / step).ceil() * step;
    while x <= hi + 1e-9 {
        let px = LEFT + (x - lo) / (hi - lo) * pw;
        svg.raw(&format!(
            r##"<line x1="{px:.1}" y1="{y1:.1}" x2="{px:.1}" y2="{y2:.1}" stroke="#888"/><text x="{px:.1}" y="{ty:.1}" text-anchor="middle" font-size="10" fill="#444">{}</text>"##,
            esc(&trim_num(x)),
            y1 = TOP + ph,
            y2 = TOP + ph + 4.0,
            ty = TOP + ph + 15.0
        ));
        x += step;
    }
    svg.raw(&format!(
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10" fill="#666">ms</text><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#444">{top}</text><text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10" fill="#444">0</text>"##,
        LEFT + pw / 2.0,
        H - 4.0,
        LEFT - 4.0,
        TOP + 8.0,
        LEFT - 4.0,
        TOP + ph
    ));
    svg.finish()
}

fn trim_num(x: f64) -> String {
    let s = format!("{x:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

struct Trials<'a> {
    samples: &'a [Sample],
    links: Vec<Option<String>>,
}

impl Section for Trials<'_> {
    fn id(&self) -> String {
        "bench-trials".into()
    }

    fn render(&self) -> String {
        let mut out = format!(
            "<section id=\"{}\"><h2>Trials</h2><table><thead><tr><th class=\"num\">#</th><th>scenario</th><th>setting</th><th>kind</th><th>verdict</th><th class=\"num\">latency</th><th class=\"num\">overshoot</th><th class=\"num\">wall (ms)</th><th>trace</th></tr></thead><tbody>",
            self.id()
        );
        for (s, link) in self.samples.iter().zip(&self.links) {
            let list = |v: &[f64]| {
                if v.is_empty() {
                    "-".to_string()
                } else {
                    v.iter()
                        .map(|x| stats::ms(Some(*x)))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            let kind = if s.control {
                format!("control: {} false detection(s)", s.false_detections)
            } else {
                "fault".into()
            };
            let trace = match link {
                Some(l) => format!("<a href=\"{}\">trace.jsonl</a>", esc(l)),
                None => "-".into(),
            };
            let verdict = match &s.error {
                Some(e) => format!("{} ({})", esc(&s.verdict), esc(e)),
                None => esc(&s.verdict),
            };
            let _ = write!(
                out,
                "<tr><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{kind}</td><td>{verdict}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.0}</td><td>{trace}</td></tr>",
                s.trial,
                esc(&s.scenario),
                esc(&s.setting),
                list(&s.latency_ms),
                list(&s.overshoot_ms),
                s.wall_ms
            );
        }
        out.push_str("</tbody></table></section>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::stats::tests::{check, result};
    use super::super::{HostInfo, Report, Setting};
    use super::*;

    fn sample(n: usize, setting: &str, overshoot: f64, control: bool) -> Sample {
        let mut s = Sample::new(n, "bench/cpu-rt_hog", setting, control);
        let (kind, figures): (&str, &[(&str, f64)]) = if control {
            ("no_detection", &[("detections", 0.0)])
        } else {
            (
                "detected_within",
                &[
                    ("latency_ms", 900.0 + overshoot),
                    ("overshoot_ms", overshoot),
                ],
            )
        };
        s.take_figures(&result(vec![check(kind, figures)]));
        s.trace = Some(format!("/o/trials/{n:03}/trace.jsonl"));
        s.nodes = 2;
        s.lab_up_ms = Some(80.0);
        s.teardown_ms = Some(40.0);
        s.planned_ms = 3000.0;
        s
    }

    fn report() -> Report {
        let settings = [
            Setting {
                label: "watchdog_priority=fifo".into(),
                node_setting: Some(("watchdog_priority".into(), "fifo".into())),
            },
            Setting {
                label: "watchdog_priority=normal".into(),
                node_setting: Some(("watchdog_priority".into(), "normal".into())),
            },
        ];
        let samples = vec![
            sample(1, "watchdog_priority=fifo", 0.2, false),
            sample(2, "watchdog_priority=normal", 180.0, false),
            sample(3, "watchdog_priority=fifo", 0.3, true),
        ];
        let host = HostInfo {
            kernel: "6.18".into(),
            cores: 2,
            cgroup_layout: "v1-hybrid".into(),
            load_average_start: "1.0 1.0 1.0".into(),
            load_average_end: "2.0 1.0 1.0".into(),
        };
        Report::new(
            "faultline bench".into(),
            host,
            1,
            1,
            true,
            samples,
            &settings,
            9500.0,
        )
    }

    #[test]
    fn the_page_has_histograms_side_by_side_and_the_comparison() {
        let html = page(&report(), &|p| {
            Some(p.trim_start_matches("/o/").to_string())
        });
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg").count(), 4, "2 figures x 2 settings");
        assert_eq!(html.matches("<svg").count(), html.matches("</svg>").count());
        assert!(html.contains("id=\"bench-comparison\""));
        assert!(html.contains("overshoot p99"));
        assert!(html.contains("900.0x"), "180 / 0.2");
        assert!(html.contains("href=\"trials/001/trace.jsonl\""));
        assert!(html.contains("1 false detection") || html.contains("0 false detection"));
        assert!(
            !html.contains("http://") || !html.contains("src=\"http"),
            "nothing fetched"
        );
        assert!(!html.contains("<script"));
    }

    #[test]
    fn the_terminal_summary_has_both_settings_and_their_ratio() {
        let text = report().text();
        assert!(
            text.contains("host: linux 6.18, 2 core(s), cgroup v1-hybrid"),
            "{text}"
        );
        let rows: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("bench/") && l.contains(" overshoot "))
            .collect();
        assert_eq!(rows.len(), 2, "{text}");
        // Columns line up whatever the names' lengths.
        assert_eq!(rows[0].find(" overshoot "), rows[1].find(" overshoot "));
        assert!(text.contains("overshoot p99"), "{text}");
        assert!(text.contains("900.0x"), "{text}");
        assert!(
            text.contains("1 of 1 control") || text.contains("controls 1, false detections 0"),
            "{text}"
        );
    }

    #[test]
    fn a_histogram_draws_one_bar_per_filled_bin() {
        let svg = histogram(&[1.0, 1.0, 50.0], 0.0, 50.0, "#000", "x");
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("2 trial(s) at"));
    }
}
