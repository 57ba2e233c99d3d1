//! A tiny writer of HTML and SVG text: escaping and the few shapes the
//! report draws. It knows nothing about traces or checks, so the bench's
//! histograms can draw with it too. It must stay free of I/O; everything it
//! writes is well-formed XML (every element closed, only numeric entities).

use std::fmt::Write;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for element text and
/// attribute values alike.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

/// An SVG document being written.
pub struct Svg {
    out: String,
}

impl Svg {
    /// A new `<svg>` of `width` x `height` user units, scaled to its
    /// container's width; `class` names it for the page's CSS and tests.
    pub fn new(width: f64, height: f64, class: &str, label: &str) -> Self {
        let mut out = String::new();
        let _ = write!(
            out,
            r#"<svg xmlns="http://www.w3.org/2000/svg" class="{}" viewBox="0 0 {width:.0} {height:.0}" width="100%" role="img" aria-label="{}">"#,
            esc(class),
            esc(label)
        );
        Svg { out }
    }

    /// Raw SVG markup (must be well-formed).
    pub fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// A rectangle; `title` (if not empty) is its tooltip.
    #[expect(
        clippy::too_many_arguments,
        reason = "a rectangle is four numbers plus style"
    )]
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, class: &str, fill: &str, title: &str) {
        let fill = if fill.is_empty() {
            String::new()
        } else {
            format!(r#" fill="{}""#, esc(fill))
        };
        let _ = write!(
            self.out,
            r#"<rect class="{}" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"{fill}>"#,
            esc(class),
            w.max(0.5)
        );
        self.title(title);
        self.out.push_str("</rect>");
    }

    /// A line segment.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, class: &str) {
        let _ = write!(
            self.out,
            r#"<line class="{}" x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}"/>"#,
            esc(class)
        );
    }

    /// Text anchored at (`x`, `y`): `anchor` is `start`, `middle` or `end`.
    pub fn text(&mut self, x: f64, y: f64, anchor: &str, class: &str, text: &str) {
        let _ = write!(
            self.out,
            r#"<text class="{}" x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#,
            esc(class),
            esc(text)
        );
    }

    /// A closed polygon through `points`, with a tooltip.
    pub fn polygon(&mut self, points: &[(f64, f64)], class: &str, title: &str) {
        let pts: Vec<String> = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect();
        let _ = write!(
            self.out,
            r#"<polygon class="{}" points="{}">"#,
            esc(class),
            pts.join(" ")
        );
        self.title(title);
        self.out.push_str("</polygon>");
    }

    fn title(&mut self, title: &str) {
        if !title.is_empty() {
            let _ = write!(self.out, "<title>{}</title>", esc(title));
        }
    }

    /// The finished `<svg>` element.
    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

/// A round step for an axis over `span` units with at most `max_ticks`
/// ticks: 1, 2 or 5 times a power of ten.
pub fn nice_step(span: f64, max_ticks: usize) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / max_ticks.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_drops_control_characters() {
        assert_eq!(
            esc("a<b>&\"c'\u{1b}[31m"),
            "a&lt;b&gt;&amp;&quot;c&#39;[31m"
        );
    }

    #[test]
    fn steps_are_round_and_few() {
        assert_eq!(nice_step(9.0, 10), 1.0);
        assert_eq!(nice_step(11.0, 10), 2.0);
        assert_eq!(nice_step(40.0, 10), 5.0);
        assert_eq!(nice_step(0.3, 10), 0.05);
        assert_eq!(nice_step(0.0, 10), 1.0);
    }

    #[test]
    fn every_element_is_closed() {
        let mut s = Svg::new(10.0, 10.0, "t", "a <test>");
        s.rect(0.0, 0.0, 1.0, 1.0, "r", "#fff", "tip & more");
        s.line(0.0, 0.0, 1.0, 1.0, "l");
        s.text(0.0, 0.0, "start", "x", "1 < 2");
        s.polygon(&[(0.0, 0.0), (1.0, 1.0)], "p", "");
        let out = s.finish();
        assert!(out.starts_with("<svg "), "{out}");
        assert!(out.ends_with("</svg>"), "{out}");
        assert!(
            out.contains("<title>tip &amp; more</title></rect>"),
            "{out}"
        );
        assert!(out.contains(">1 &lt; 2</text>"), "{out}");
    }
}
