//! Draws a scenario's [`Lanes`] as one SVG: a time axis in seconds from the
//! timeline's start, then a lane per node, per virtual IP and per client.
//! Colours come from the page's CSS classes (status: heartbeat, fault,
//! detection, conflict, unobserved) and from [`node_colour`] (who: the node
//! that held an IP or answered the client). Pure: lanes in, markup out.

use super::lanes::{Lanes, MarkKind, Span};
use super::svg::{esc, nice_step, Svg};

const WIDTH: f64 = 1200.0;
const X0: f64 = 190.0;
const X1: f64 = 1180.0;
const AXIS_H: f64 = 28.0;
const NODE_H: f64 = 74.0;
const IP_H: f64 = 46.0;
const CLIENT_H: f64 = 30.0;
/// Roughly how wide one character of a 10 px label is.
const CHAR_W: f64 = 5.8;

/// Node colours, in plan order: none is red, green, orange or grey, which
/// say what happened rather than who.
const PALETTE: [&str; 8] = [
    "#2f6fdf", "#8e44ad", "#0f9b9b", "#8d6e63", "#d63c9a", "#5d6d7e", "#b7950b", "#1a5276",
];

/// The colour of the `i`-th node.
pub fn node_colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

struct Scale {
    t0: u64,
    t_end: u64,
}

impl Scale {
    fn x(&self, t: u64) -> f64 {
        let t = t.clamp(self.t0, self.t_end);
        X0 + (t - self.t0) as f64 / (self.t_end - self.t0).max(1) as f64 * (X1 - X0)
    }

    fn w(&self, s: Span) -> f64 {
        (self.x(s.to) - self.x(s.from)).max(1.0)
    }

    fn rel(&self, t: u64) -> String {
        format!("{:+.3} s", (t as f64 - self.t0 as f64) / 1e9)
    }
}

/// The timeline of `lanes` as an `<svg class="timeline">`; `id` makes its
/// pattern ids unique on the page.
pub fn draw(lanes: &Lanes, id: &str, title: &str) -> String {
    let height = AXIS_H
        + lanes.nodes.len() as f64 * NODE_H
        + lanes.ips.len() as f64 * IP_H
        + lanes.clients.len() as f64 * CLIENT_H
        + 6.0;
    let sc = Scale {
        t0: lanes.t0,
        t_end: lanes.t_end,
    };
    let hatch = format!("hatch-{id}");
    let mut s = Svg::new(WIDTH, height, "timeline", title);
    s.raw(&format!(
        r##"<defs><pattern id="{h}" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect width="6" height="6" fill="#f2f2f2"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9a9a9a" stroke-width="2.5"/></pattern></defs>"##,
        h = esc(&hatch)
    ));
    let unobserved_fill = format!("url(#{hatch})");
    axis(&mut s, &sc, height);
    let colour_of = |node: &str| {
        lanes
            .nodes
            .iter()
            .position(|n| n.name == node)
            .map_or("#555555", node_colour)
    };
    let mut y = AXIS_H;
    for (i, n) in lanes.nodes.iter().enumerate() {
        lane_frame(&mut s, y, NODE_H, &n.name, node_colour(i), "node");
        let band = (y + 34.0, 24.0);
        for (span, why) in &n.lost {
            s.rect(
                sc.x(span.from),
                band.0,
                sc.w(*span),
                band.1,
                "unobserved",
                &unobserved_fill,
                &format!("records lost: {why}"),
            );
        }
        for f in &n.faults {
            let Some(onset) = f.onset else {
                s.rect(
                    sc.x(f.requested) - 1.0,
                    band.0,
                    3.0,
                    band.1,
                    "fault-failed",
                    "",
                    &format!("{} {}", f.kind, f.evidence),
                );
                continue;
            };
            let end = f.healed.unwrap_or(sc.t_end);
            s.rect(
                sc.x(f.requested),
                band.0 - 4.0,
                sc.w(Span {
                    from: f.requested,
                    to: onset,
                }),
                4.0,
                "fault-requested",
                "",
                &format!(
                    "{} requested at {}, in effect at {}",
                    f.kind,
                    sc.rel(f.requested),
                    sc.rel(onset)
                ),
            );
            let span = Span {
                from: onset,
                to: end,
            };
            let tip = format!(
                "fault {}: in effect from {} ({}) to {}",
                f.kind,
                sc.rel(onset),
                f.evidence,
                match f.healed {
                    Some(h) => format!("{} (healed)", sc.rel(h)),
                    None => "the end".to_string(),
                }
            );
            s.rect(sc.x(onset), band.0, sc.w(span), band.1, "fault", "", &tip);
            if sc.w(span) > f.kind.len() as f64 * CHAR_W + 8.0 {
                s.text(
                    sc.x(onset) + 4.0,
                    band.0 + band.1 - 4.0,
                    "start",
                    "fault-label",
                    &f.kind,
                );
            }
        }
        for span in &n.off {
            s.rect(
                sc.x(span.from),
                band.0,
                sc.w(*span),
                band.1,
                "off",
                "",
                &format!(
                    "{} powered off from {} to {}",
                    n.name,
                    sc.rel(span.from),
                    sc.rel(span.to)
                ),
            );
        }
        let mut last_px = (f64::NEG_INFINITY, false);
        for &(t, counted) in &n.heartbeats {
            let x = sc.x(t).round();
            if last_px == (x, counted) {
                continue;
            }
            last_px = (x, counted);
            let class = if counted { "hb" } else { "hb-uncounted" };
            s.line(x, band.0 + 5.0, x, band.0 + band.1 - 5.0, class);
        }
        for c in &n.countdowns {
            let cy = band.0 + band.1 + 8.0;
            s.line(sc.x(c.from), cy, sc.x(c.to), cy, "countdown");
            s.line(sc.x(c.from), cy - 3.0, sc.x(c.from), cy + 3.0, "countdown");
            s.line(sc.x(c.to), cy - 3.0, sc.x(c.to), cy + 3.0, "countdown");
        }
        let mut rows: [Vec<(f64, f64)>; 2] = [Vec::new(), Vec::new()];
        for m in &n.marks {
            let x = sc.x(m.t);
            let top = band.0;
            let class = mark_class(m.kind);
            let shape: Vec<(f64, f64)> = match m.kind {
                MarkKind::PowerOff => vec![(x - 5.0, top - 8.0), (x + 5.0, top - 8.0), (x, top)],
                MarkKind::PowerOn => vec![(x - 5.0, top), (x + 5.0, top), (x, top - 8.0)],
                _ => vec![
                    (x, top - 9.0),
                    (x + 5.0, top - 4.0),
                    (x, top + 1.0),
                    (x - 5.0, top - 4.0),
                ],
            };
            s.polygon(&shape, class, &m.detail);
            let w = m.label.chars().count() as f64 * CHAR_W;
            let (from, to) = (x - w / 2.0, x + w / 2.0);
            if let Some(r) = rows
                .iter()
                .position(|row| row.iter().all(|&(a, b)| to + 3.0 < a || from - 3.0 > b))
            {
                rows[r].push((from, to));
                let ly = y + 11.0 + r as f64 * 11.0;
                s.text(x, ly, "middle", &format!("mark-label {class}"), &m.label);
            }
        }
        y += NODE_H;
    }
    for ip in &lanes.ips {
        lane_frame(
            &mut s,
            y,
            IP_H,
            &format!("{} ({})", ip.ip, ip.group),
            "#333333",
            "ip",
        );
        s.text(X0 - 6.0, y + 20.0, "end", "row-label", "held by");
        s.text(X0 - 6.0, y + 38.0, "end", "row-label", "ARP");
        let held = (y + 7.0, 17.0);
        let wire = (y + 29.0, 12.0);
        for span in &ip.unobserved {
            s.rect(
                sc.x(span.from),
                held.0,
                sc.w(*span),
                held.1,
                "unobserved",
                &unobserved_fill,
                "the addr observer was not observing",
            );
        }
        for span in &ip.wire_unobserved {
            s.rect(
                sc.x(span.from),
                wire.0,
                sc.w(*span),
                wire.1,
                "unobserved",
                &unobserved_fill,
                "the arp observer was not observing",
            );
        }
        for (node, span) in &ip.held {
            let tip = format!(
                "{node} held {} from {} to {}",
                ip.ip,
                sc.rel(span.from),
                sc.rel(span.to)
            );
            s.rect(
                sc.x(span.from),
                held.0,
                sc.w(*span),
                held.1,
                "held",
                colour_of(node),
                &tip,
            );
            let in_double = ip
                .double
                .iter()
                .any(|(d, _)| (d.from..d.to).contains(&span.from));
            if !in_double && sc.w(*span) > node.len() as f64 * CHAR_W + 6.0 {
                s.text(
                    sc.x(span.from) + 3.0,
                    held.0 + 12.5,
                    "start",
                    "held-label",
                    node,
                );
            }
        }
        for (span, who) in &ip.double {
            let who = who.join(" + ");
            s.rect(
                sc.x(span.from),
                held.0 - 2.0,
                sc.w(*span),
                held.1 + 4.0,
                "double",
                "",
                &format!(
                    "{} held by {who} at once from {} to {}",
                    ip.ip,
                    sc.rel(span.from),
                    sc.rel(span.to)
                ),
            );
            let label = format!("{who} at once");
            if sc.w(*span) > label.len() as f64 * CHAR_W + 6.0 {
                s.text(
                    sc.x(span.from) + 3.0,
                    held.0 + 12.5,
                    "start",
                    "double-label",
                    &label,
                );
            }
        }
        for span in &ip.wire_double {
            s.rect(
                sc.x(span.from) - 1.0,
                wire.0 - 1.0,
                sc.w(*span) + 2.0,
                wire.1 + 2.0,
                "double",
                "",
                &format!(
                    "two MACs answered ARP for {} between {} and {}",
                    ip.ip,
                    sc.rel(span.from),
                    sc.rel(span.to)
                ),
            );
        }
        let mut last: Option<(f64, &str)> = None;
        for (t, mac, node) in &ip.wire {
            let x = sc.x(*t).round();
            if last == Some((x, mac.as_str())) {
                continue;
            }
            last = Some((x, mac.as_str()));
            let colour = node.as_deref().map_or("#555555", colour_of);
            s.raw(&format!(
                r#"<line class="arp" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{colour}"/>"#,
                wire.0 + 1.0,
                wire.0 + wire.1 - 1.0
            ));
        }
        y += IP_H;
    }
    for c in &lanes.clients {
        lane_frame(
            &mut s,
            y,
            CLIENT_H,
            &format!("client → {}", c.group),
            "#333333",
            "client",
        );
        let row = (y + 7.0, 16.0);
        for span in &c.unobserved {
            s.rect(
                sc.x(span.from),
                row.0,
                sc.w(*span),
                row.1,
                "unobserved",
                &unobserved_fill,
                "the client observer was not observing",
            );
        }
        for (span, by, error) in &c.probes {
            let (class, fill, tip) = match by {
                Some(node) => (
                    "answered",
                    colour_of(node),
                    format!("{}: answered by {node}", sc.rel(span.from)),
                ),
                None => (
                    "unanswered",
                    "",
                    format!("{}: no answer ({error})", sc.rel(span.from)),
                ),
            };
            s.rect(
                sc.x(span.from),
                row.0,
                sc.w(*span),
                row.1,
                class,
                fill,
                &tip,
            );
        }
        y += CLIENT_H;
    }
    s.finish()
}

fn mark_class(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Detection => "m-detect",
        MarkKind::Recovery => "m-recover",
        MarkKind::PowerOff | MarkKind::PowerOn => "m-power",
        MarkKind::Group => "m-group",
        MarkKind::Trouble => "m-trouble",
        MarkKind::Membership => "m-member",
    }
}

fn lane_frame(s: &mut Svg, y: f64, h: f64, label: &str, colour: &str, kind: &str) {
    s.rect(0.0, y, WIDTH, h, &format!("lane lane-{kind}"), "", "");
    s.line(0.0, y, WIDTH, y, "lane-sep");
    s.raw(&format!(
        r#"<rect x="4" y="{:.1}" width="5" height="{:.1}" fill="{colour}"/>"#,
        y + 4.0,
        h - 8.0
    ));
    // The label column holds about 26 characters; a longer name is cut,
    // whole in its tooltip.
    let shown: String = if label.chars().count() > 26 {
        label.chars().take(25).chain(['…']).collect()
    } else {
        label.to_string()
    };
    s.raw(&format!(
        r#"<text class="lane-label" x="14" y="{:.1}"><title>{}</title>{}</text>"#,
        y + h / 2.0 + 4.0,
        esc(label),
        esc(&shown)
    ));
}

fn axis(s: &mut Svg, sc: &Scale, height: f64) {
    let span_s = (sc.t_end - sc.t0) as f64 / 1e9;
    let step = nice_step(span_s, 10);
    let decimals = if step >= 1.0 {
        0
    } else {
        (-step.log10().floor()) as usize
    };
    s.text(X0 - 6.0, 16.0, "end", "axis-label", "seconds");
    let mut k = 0u32;
    loop {
        let sec = f64::from(k) * step;
        if sec > span_s + 1e-9 {
            break;
        }
        let x = X0 + sec / span_s.max(1e-9) * (X1 - X0);
        s.line(x, AXIS_H - 6.0, x, height, "grid");
        s.text(
            x,
            16.0,
            "middle",
            "axis-label",
            &format!("{sec:.decimals$}"),
        );
        k += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::TraceBuilder;
    use crate::report::lanes::lanes;
    use faultline_agent::events::{EventKind, RecoveryAction, Source};

    #[test]
    fn a_cluster_timeline_has_a_lane_per_node_ip_and_client() {
        let mut b = TraceBuilder::cluster(&["n1", "n2", "n3"]);
        b.heartbeats("n1", 0, 3000, 500)
            .freeze("n1", 1000, 5000)
            .hang_detected("n1", 3000.0, RecoveryAction::Bugcheck)
            .addr("n1", -10.0, true)
            .addr("n2", 3500.0, true)
            .addr("n1", 4000.0, false)
            .arp_answer(3600.0, "n2")
            .arp_answer(3700.0, "n1")
            .client(100.0, Some("n1"))
            .client(3000.0, None)
            .client(4500.0, Some("n2"));
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3003.0);
        b.settled(6000);
        let svg = draw(&lanes(&b.build()).unwrap(), "0", "t");
        assert_eq!(svg.matches(r#"class="lane lane-node""#).count(), 3);
        assert_eq!(svg.matches(r#"class="lane lane-ip""#).count(), 1);
        assert_eq!(svg.matches(r#"class="lane lane-client""#).count(), 1);
        // Double ownership in both rows: namespaces and the wire.
        assert_eq!(svg.matches(r#"class="double""#).count(), 2, "{svg}");
        assert_eq!(svg.matches(r#"class="fault""#).count(), 1);
        assert_eq!(svg.matches(r#"class="unanswered""#).count(), 1);
        assert_eq!(svg.matches(r#"class="hb""#).count(), 7);
        assert!(svg.contains(">0x9E</text>"), "{svg}");
        assert!(svg.contains(">fenced</text>"), "{svg}");
        assert!(svg.contains("<title>10.77.0.100 (sql)</title>10.77.0.100 (sql)</text>"));
        // Axis: 0 to 6 s in whole seconds.
        for sec in 0..=6 {
            assert!(svg.contains(&format!(">{sec}</text>")), "{sec}");
        }
    }

    #[test]
    fn a_long_lane_name_is_cut_and_whole_in_its_tooltip() {
        let mut s = Svg::new(10.0, 10.0, "t", "t");
        let name = "a-node-with-a-name-far-too-long-for-the-column";
        lane_frame(&mut s, 0.0, 20.0, name, "#000", "node");
        let out = s.finish();
        assert!(
            out.contains(&format!(
                "<title>{name}</title>a-node-with-a-name-far-to…</text>"
            )),
            "{out}"
        );
    }

    #[test]
    fn labels_that_would_collide_move_to_a_second_row_or_are_left_to_the_tooltip() {
        let mut b = TraceBuilder::one_node(1000, RecoveryAction::Bugcheck);
        b.hang_detected("n1", 3000.0, RecoveryAction::Bugcheck);
        b.event("n1", Source::Watchdog, EventKind::DumpWritten, 3001.0);
        b.event("n1", Source::Watchdog, EventKind::NodeFenced, 3002.0);
        b.settled(9000);
        let svg = draw(&lanes(&b.build()).unwrap(), "0", "t");
        assert_eq!(svg.matches("<polygon").count(), 3);
        assert_eq!(svg.matches(r#"class="mark-label"#).count(), 2, "{svg}");
    }
}
