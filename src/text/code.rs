//! Fenced code in an output, checked against the sources line by line.
//!
//! An NLI model trained on sentences has nothing to say of a code block: on UpTrain's documentation
//! answers it read blocks copied from the page beside them as unsupported (0.05) and blocks from
//! another page as `contradicted`, which says more than code can. What a reader asks of code in a
//! grounded answer is whether it comes from the sources. So a fenced block's lines are looked up in
//! the contexts, word for word (case, punctuation, spacing and markdown escapes aside: `plotly\_chart`
//! is `plotly_chart`), and the block is scored by the share of its words that sit on lines found
//! there. A block adapted from the sources (a renamed variable) keeps most of its score; a block
//! from elsewhere, or an invented call, loses it. It is never `contradicted`: nothing was read that
//! could say so.

use std::ops::Range;

use super::words::plain_words_at as words;

/// Whether a claim is a fenced code block (it opens with three backticks, as the sentence splitter
/// cuts them: a fenced block is a sentence of its own).
pub fn is_fenced(text: &str) -> bool {
    text.trim_start().starts_with("```")
}

/// Where the lines of a code block were found.
#[derive(Debug, Clone, PartialEq)]
pub struct CodeSupport {
    /// The share of the block's words that sit on lines found in a context, in [0, 1].
    pub score: f32,
    /// The context (index) with the most of the block's words, and the byte range there from its
    /// first to its last line found; `None` when no line was found.
    pub evidence: Option<(usize, Range<usize>)>,
}

/// A context's words joined by single spaces, with a space at either end, and where each word
/// starts in that string: so that a line's words are found as a run with `str::find`.
struct Joined {
    text: String,
    starts: Vec<usize>,
    spans: Vec<Range<usize>>,
}

impl Joined {
    fn new(context: &str) -> Self {
        let mut text = String::from(" ");
        let (mut starts, mut spans) = (vec![], vec![]);
        for (w, r) in words(context) {
            starts.push(text.len());
            spans.push(r);
            text.push_str(&w);
            text.push(' ');
        }
        Joined { text, starts, spans }
    }

    /// The byte range in the context of the first run of `line` (words joined as here), if any.
    fn find(&self, line: &str, count: usize) -> Option<Range<usize>> {
        let at = self.text.find(line)? + 1;
        let first = self.starts.binary_search(&at).ok()?;
        let last = first + count - 1;
        Some(self.spans[first].start..self.spans.get(last)?.end)
    }
}

/// Checks a fenced code block (`block`, fences included) against the contexts: each line's words
/// are looked for as a run in each context. Lines without a letter or digit (a closing bracket) and
/// the fence lines (with their language tag) count for nothing. `None` when the block has no words.
pub fn support(block: &str, contexts: &[&str]) -> Option<CodeSupport> {
    let lines: Vec<Vec<String>> = block
        .lines()
        .filter(|l| !l.trim_start().starts_with("```"))
        .map(|l| words(l).into_iter().map(|(w, _)| w).collect::<Vec<_>>())
        .filter(|w| !w.is_empty())
        .collect();
    let total: usize = lines.iter().map(Vec::len).sum();
    if total == 0 {
        return None;
    }
    let joined: Vec<Joined> = contexts.iter().map(|c| Joined::new(c)).collect();
    let mut found_words = 0;
    // Per context: words found there and the span of its lines found.
    let mut per_context: Vec<(usize, Option<Range<usize>>)> = vec![(0, None); contexts.len()];
    for line in &lines {
        let needle = format!(" {} ", line.join(" "));
        let mut anywhere = false;
        for (k, j) in joined.iter().enumerate() {
            if let Some(r) = j.find(&needle, line.len()) {
                anywhere = true;
                let (n, span) = &mut per_context[k];
                *n += line.len();
                *span = Some(match span.take() {
                    Some(s) => s.start.min(r.start)..s.end.max(r.end),
                    None => r,
                });
            }
        }
        if anywhere {
            found_words += line.len();
        }
    }
    // The context holding the most of the block (the first on a tie).
    let best = per_context.iter().enumerate().filter(|(_, (n, _))| *n > 0).max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.0.cmp(&a.0)));
    let evidence = best.and_then(|(k, (_, span))| span.clone().map(|s| (k, s)));
    Some(CodeSupport { score: found_words as f32 / total as f32, evidence })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "## Plotly\n\nst.plotly\\_chart(figure\\_or\\_data, use\\_container\\_width=False)\n\n```python\nimport streamlit as st\nimport plotly.express as px\n\ndf = px.data.iris()\nfig = px.scatter(df, x=\"sepal_width\")\nst.plotly_chart(fig, theme=\"streamlit\")\n```\n";

    #[test]
    fn a_block_copied_from_the_source_is_found_whole() {
        let block = "```python\nimport streamlit as st\ndf = px.data.iris()\nst.plotly_chart(fig, theme=\"streamlit\")\n```";
        let s = support(block, &["Unrelated text.", PAGE]).expect("words");
        assert_eq!(s.score, 1.0);
        let (k, r) = s.evidence.expect("found");
        assert_eq!(k, 1);
        assert!(PAGE[r].starts_with("import streamlit as st"));
    }

    #[test]
    fn escapes_spacing_and_case_do_not_matter() {
        let block = "```\nst.plotly_chart( figure_or_data,use_container_width = False )\n```";
        assert_eq!(support(block, &[PAGE]).expect("words").score, 1.0);
    }

    #[test]
    fn an_adapted_block_keeps_part_of_its_score_and_an_invented_one_none() {
        let adapted = "```\nimport streamlit as st\ndata = px.data.iris()\nst.plotly_chart(fig, theme=\"streamlit\")\n```";
        let s = support(adapted, &[PAGE]).expect("words").score;
        assert!(s > 0.5 && s < 1.0, "{s}");
        let invented = "```\nimport streamlit as st\nst.plotly_chart(fig, theme=\"dark\", animate=True)\n```";
        let s = support(invented, &[PAGE]).expect("words").score;
        assert!(s < 0.5, "{s}");
        let none = support("```\nprint(hello_world())\n```", &[PAGE]).expect("words");
        assert_eq!(none.score, 0.0);
        assert_eq!(none.evidence, None);
    }

    #[test]
    fn a_line_must_be_found_as_a_run_of_whole_words() {
        // Each word of the line is in the page, but not in this order, nor as whole words ("st" in "streamlit").
        assert_eq!(support("```\nfig st import\n```", &[PAGE]).expect("words").score, 0.0);
        assert_eq!(support("```\nreamlit\n```", &[PAGE]).expect("words").score, 0.0);
    }

    #[test]
    fn a_block_without_words_checks_nothing() {
        assert_eq!(support("```\n)\n]\n```", &[PAGE]), None);
        assert_eq!(support("```python\n```", &[PAGE]), None);
        assert!(is_fenced("```\nx = 1\n```") && is_fenced("  ```py\nx\n```") && !is_fenced("Use `x` here."));
    }
}
