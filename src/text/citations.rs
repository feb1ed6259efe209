//! Citation markers inside an output: `[1]`, `[1][3]`, `[1, 3]`, `[doc2]`.
//!
//! A marker is a bracketed, comma-separated list of ids. An id counts when it contains a digit
//! (`1`, `doc2`, `S-12`) or is exactly one of the case's context ids (so `[policy]` cites a context
//! named `policy`); a context id after a footnote caret or a word such as "Source" or "doc" (`[^1]`,
//! `[Source 1]`, `[doc1]`, as other tools write markers) cites that context. Markdown links (`[text](url)`) and bracketed prose (`[citation needed]`) are not
//! markers, and neither is anything inside code spans.

use std::ops::Range;

/// One citation marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The ids it names, in order, trimmed.
    pub ids: Vec<String>,
    /// Its byte range in the text, brackets included.
    pub span: Range<usize>,
}

/// Finds the citation markers of `text`. `known_ids` are the case's context ids.
pub fn find_markers(text: &str, known_ids: &[&str]) -> Vec<Marker> {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut in_code = false;
    while i < bytes.len() {
        match bytes[i] {
            b'`' => {
                in_code = !in_code;
                i += 1;
            }
            b'[' if !in_code => {
                if let Some((ids, len)) = parse_marker(&text[i..], known_ids) {
                    out.push(Marker { ids, span: i..i + len });
                    i += len;
                } else {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    out
}

fn parse_marker(s: &str, known_ids: &[&str]) -> Option<(Vec<String>, usize)> {
    let inner_end = s[1..].find(|c| c == ']' || c == '[' || c == '\n')? + 1;
    if s.as_bytes()[inner_end] != b']' {
        return None;
    }
    let inner = &s[1..inner_end];
    if inner.trim().is_empty() || inner.len() > 64 || s[inner_end + 1..].starts_with('(') {
        return None;
    }
    let ids: Option<Vec<String>> = inner.split(',').map(|p| resolve(p.trim(), known_ids)).collect();
    ids.map(|ids| (ids, inner_end + 1))
}

/// Words an output may put before a context's id in a marker ("[Source 1]", "[doc2]", "[ref 3]").
const ID_WORDS: &[&str] = &["sources", "source", "documents", "document", "docs", "doc", "references", "reference", "refs", "ref", "contexts", "context", "passages", "passage", "chunks", "chunk"];

/// The id a marker's part names: a context id as written; a context id written with a footnote
/// caret or after one of [`ID_WORDS`] ("[^1]", "[Source 1]", "[doc1]" cite the context `1`); else
/// the part itself where it holds a digit and only letters, digits, `-`, `_` and `.`, or so written
/// after a caret or such a word ("[Source 7]" names `7`): an id no context has, a fabricated
/// citation. `None`: not an id, so no marker.
fn resolve(id: &str, known_ids: &[&str]) -> Option<String> {
    if id.is_empty() {
        return None;
    }
    if known_ids.contains(&id) {
        return Some(id.to_string());
    }
    let bare = id.strip_prefix('^').unwrap_or(id);
    let lower = bare.to_lowercase();
    let after_word = ID_WORDS.iter().find_map(|w| lower.strip_prefix(w)).map(|r| r.trim_start_matches([' ', '_', '-', '#']));
    for candidate in [Some(bare), after_word].into_iter().flatten() {
        if let Some(k) = known_ids.iter().find(|k| k.eq_ignore_ascii_case(candidate)) {
            return Some(k.to_string());
        }
    }
    let plain = |id: &str| id.chars().any(|c| c.is_ascii_digit()) && id.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.');
    // The part as written, else as written after a caret or such a word.
    let named = [Some(id), after_word, (bare != id).then_some(bare)].into_iter().flatten().find(|c| plain(c)).map(str::to_string);
    named
}

/// `text` with the given markers removed and the spacing they leave tidied
/// ("30 days [1]." becomes "30 days.").
pub fn strip_markers(text: &str, markers: &[Marker]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for m in markers {
        if m.span.start < last {
            continue;
        }
        out.push_str(&text[last..m.span.start]);
        last = m.span.end;
    }
    out.push_str(&text[last..]);
    tidy_spaces(&out)
}

fn tidy_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '.' | ',' | ';' | ':' | '!' | '?' | ')') && out.ends_with(' ') {
            out.pop();
        }
        if ch == ' ' && out.ends_with(' ') {
            continue;
        }
        out.push(ch);
    }
    out.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str, known: &[&str]) -> Vec<Vec<String>> {
        find_markers(text, known).into_iter().map(|m| m.ids).collect()
    }

    #[test]
    fn markers_written_as_other_tools_write_them_cite_their_context() {
        let ids = |text: &str, known: &[&str]| find_markers(text, known).into_iter().map(|m| m.ids.join(",")).collect::<Vec<_>>();
        let known = ["1", "2"];
        assert_eq!(ids("Refunds take 30 days [Source 1].", &known), ["1"]);
        assert_eq!(ids("Refunds take 30 days [^2].", &known), ["2"]);
        assert_eq!(ids("Refunds take 30 days [doc1][ref 2].", &known), ["1", "2"]);
        assert_eq!(ids("Refunds take 30 days [source 1, source 2].", &known), ["1,2"]);
        // An id no context has is still a marker (fabricated) where it looks like one ...
        assert_eq!(ids("Refunds take 30 days [doc7].", &known), ["doc7"]);
        // ... so is one written as a source or a footnote ("[Source 7]" names 7, which no context
        // has) ...
        assert_eq!(ids("Refunds take 30 days [Source 7].", &known), ["7"]);
        assert_eq!(ids("Refunds take 30 days [^7].", &known), ["7"]);
        assert_eq!(ids("Refunds take 30 days [Sources 1, 2].", &known), ["1,2"]);
        // ... and prose is no marker.
        assert!(ids("See [the policy] for more.", &known).is_empty());
        assert!(ids("See [Source code] for more.", &known).is_empty());
    }

    #[test]
    fn the_four_forms() {
        assert_eq!(ids("a [1] b", &[]), vec![vec!["1"]]);
        assert_eq!(ids("a [1][3] b", &[]), vec![vec!["1"], vec!["3"]]);
        assert_eq!(ids("a [1, 3] b", &[]), vec![vec!["1", "3"]]);
        assert_eq!(ids("a [doc2] b", &[]), vec![vec!["doc2"]]);
    }

    #[test]
    fn spans_cover_the_brackets() {
        let t = "Refunds take 30 days [1][2].";
        let m = find_markers(t, &[]);
        assert_eq!(&t[m[0].span.clone()], "[1]");
        assert_eq!(&t[m[1].span.clone()], "[2]");
    }

    #[test]
    fn not_markers() {
        assert!(ids("see [the docs](https://x.y/1) and [citation needed]", &[]).is_empty());
        assert!(ids("an array `a[1]` in code", &[]).is_empty());
        assert!(ids("empty [] or [ ]", &[]).is_empty());
        assert!(ids("unclosed [1 and more", &[]).is_empty());
    }

    #[test]
    fn named_ids_need_to_be_known() {
        assert!(ids("per [policy]", &[]).is_empty());
        assert_eq!(ids("per [policy]", &["policy"]), vec![vec!["policy"]]);
    }

    #[test]
    fn stripping_tidies_spaces() {
        let t = "Refunds take 30 days [1]. Credit [2, 3], then cash.";
        let m = find_markers(t, &[]);
        assert_eq!(strip_markers(t, &m), "Refunds take 30 days. Credit, then cash.");
    }
}
