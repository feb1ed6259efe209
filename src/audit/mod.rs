//! Decisions about the suite and the grader themselves, beside the grades: does the traffic still
//! look like the suite (`drift`), does the suite stand for the traffic (`coverage`), do the people
//! who labelled the cases agree with each other and with the grader (`agreement`), and does the
//! grader catch edits that must change its verdict (`probe`).
//!
//! Each report is a plain value (serialised as JSON) and a [`Doc`] of headings, paragraphs and tables
//! that prints as Markdown or a self-contained HTML page, so that every command speaks one format.

pub mod agreement;
pub mod coverage;
pub mod drift;
pub mod probe;
pub mod twosample;

use crate::report::escape;

/// Where the docs of these analyses live in candor's source, for links from reports (each has its
/// section: `#drift`, `#coverage`, `#agreement`, `#probe`).
pub use crate::report::AUDIT_DOCS as DOCS;

/// One block of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A section heading.
    Heading(String),
    /// A paragraph (plain text).
    Para(String),
    /// A table: header and rows of cells (plain text).
    Table(Vec<String>, Vec<Vec<String>>),
}

/// A report as headings, paragraphs and tables.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Doc {
    /// The report's title.
    pub title: String,
    /// Its section of [`DOCS`] (`drift`, ...).
    pub anchor: String,
    /// Its content, in order.
    pub blocks: Vec<Block>,
}

impl Doc {
    /// An empty report, documented in `DOCS#anchor`.
    pub fn new(title: impl Into<String>, anchor: &str) -> Self {
        Self { title: title.into(), anchor: anchor.into(), blocks: vec![] }
    }

    /// Adds a heading.
    pub fn heading(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Heading(s.into()));
    }

    /// Adds a paragraph.
    pub fn para(&mut self, s: impl Into<String>) {
        self.blocks.push(Block::Para(s.into()));
    }

    /// Adds a table.
    pub fn table(&mut self, head: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table(head.iter().map(|h| h.to_string()).collect(), rows));
    }

    /// The report as Markdown.
    pub fn markdown(&self) -> String {
        let mut s = format!("# {}\n\nHow to read it: {DOCS}#{} in candor's source.\n", escape::markdown(&self.title), self.anchor);
        for b in &self.blocks {
            match b {
                Block::Heading(h) => s.push_str(&format!("\n## {}\n", escape::markdown(h))),
                Block::Para(p) => s.push_str(&format!("\n{}\n", escape::markdown(p))),
                Block::Table(head, rows) => {
                    let cell = |c: &String| escape::markdown(&c.replace(['\n', '\r'], " "));
                    s.push('\n');
                    s.push_str(&format!("| {} |\n", head.iter().map(cell).collect::<Vec<_>>().join(" | ")));
                    s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                    for r in rows {
                        s.push_str(&format!("| {} |\n", r.iter().map(cell).collect::<Vec<_>>().join(" | ")));
                    }
                }
            }
        }
        s
    }

    /// The report as plain text for a terminal: the Markdown layout without Markdown's escapes (a
    /// table cell's `|` is still escaped, and control characters are made visible).
    pub fn text(&self) -> String {
        let t = |s: &str| escape::terminal(s).into_owned();
        let mut s = format!("{}\n\nHow to read it: {DOCS}#{} in candor's source.\n", t(&self.title), self.anchor);
        for b in &self.blocks {
            match b {
                Block::Heading(h) => s.push_str(&format!("\n## {}\n", t(h))),
                Block::Para(p) => s.push_str(&format!("\n{}\n", t(p))),
                Block::Table(head, rows) => {
                    let cell = |c: &String| t(&c.replace(['\n', '\r'], " ")).replace('|', "\\|");
                    s.push('\n');
                    s.push_str(&format!("| {} |\n", head.iter().map(cell).collect::<Vec<_>>().join(" | ")));
                    s.push_str(&format!("|{}\n", "---|".repeat(head.len())));
                    for r in rows {
                        s.push_str(&format!("| {} |\n", r.iter().map(cell).collect::<Vec<_>>().join(" | ")));
                    }
                }
            }
        }
        s
    }

    /// The report as one self-contained HTML page.
    pub fn html(&self) -> String {
        let mut s = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n<style>body{{font:14px/1.5 system-ui,sans-serif;max-width:70em;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}}th{{background:#f4f4f4}}</style></head><body>\n<h1>{t}</h1>\n",
            t = escape::html(&self.title)
        );
        for b in &self.blocks {
            match b {
                Block::Heading(h) => s.push_str(&format!("<h2>{}</h2>\n", escape::html(h))),
                Block::Para(p) => s.push_str(&format!("<p>{}</p>\n", escape::html(p))),
                Block::Table(head, rows) => {
                    s.push_str("<table><thead><tr>");
                    for h in head {
                        s.push_str(&format!("<th>{}</th>", escape::html(h)));
                    }
                    s.push_str("</tr></thead><tbody>\n");
                    for r in rows {
                        s.push_str("<tr>");
                        for c in r {
                            s.push_str(&format!("<td>{}</td>", escape::html(c)));
                        }
                        s.push_str("</tr>\n");
                    }
                    s.push_str("</tbody></table>\n");
                }
            }
        }
        s.push_str(&format!(
            "<p>How to read this report: <a href=\"{DOCS}#{a}\">{DOCS}#{a}</a> in candor's source.</p>\n</body></html>\n",
            a = escape::html(&self.anchor)
        ));
        s
    }
}

/// A value to three decimals, or `-`.
pub fn fmt3(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.3}"))
}

/// A p-value: four decimals, or `< 0.0001`.
pub fn fmt_p(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

/// A text cut to `n` characters for a table cell.
pub fn clip(s: &str, n: usize) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= n {
        s
    } else {
        format!("{}…", s.chars().take(n).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_doc_prints_as_markdown_and_escaped_html() {
        let mut d = Doc::new("Drift", "drift");
        d.heading("inputs");
        d.para("p <b> & more");
        d.table(&["a", "b"], vec![vec!["x|y".into(), "<script>".into()]]);
        let md = d.markdown();
        assert!(md.starts_with("# Drift\n") && md.contains("docs/audit.md#drift") && md.contains("| a | b |\n|---|---|\n") && md.contains("| x\\|y |"), "{md}");
        assert!(md.contains("&lt;script&gt;"), "Markdown renders HTML: escaped");
        let text = d.text();
        assert!(text.contains("| x\\|y | <script> |") && text.contains("p <b> & more"), "{text}");
        let html = d.html();
        assert!(html.contains("<th>a</th>") && html.contains("&lt;script&gt;") && !html.contains("<script>"), "{html}");
        assert!(html.contains("p &lt;b&gt; &amp; more"));
        assert_eq!(clip("a  b\nc", 10), "a b c");
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(fmt_p(0.00001), "< 0.0001");
    }
}
