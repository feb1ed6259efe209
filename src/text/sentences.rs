//! A rule-based sentence splitter for model outputs and source passages.
//!
//! It survives what LLM answers are made of: abbreviations (`Dr.`, `e.g.`, `U.S.`), decimals and
//! versions (`3.5`, `v1.2.3`), numbered and bulleted lists, quotes and brackets after the full stop,
//! inline and fenced code, and citation markers, which stay with the sentence they close
//! (`... 30 days.[1] Next` and `... 30 days. [1] Next` both cite from the first sentence).

use std::ops::Range;

/// Words that take a full stop without ending a sentence (compared lower-case, without the stop).
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "ft", "gen", "gov", "sen", "rep", "rev", "capt", "col", "lt",
    "sgt", "vs", "v", "etc", "e.g", "i.e", "cf", "al", "approx", "appx", "ca", "inc", "ltd", "co", "corp", "llc", "dept",
    "univ", "assn", "bros", "no", "nos", "vol", "vols", "p", "pp", "fig", "figs", "eq", "sec", "ch", "art", "para", "jan",
    "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "wed", "thu", "fri",
    "sat", "sun", "a.m", "p.m", "est", "min", "max", "avg", "dept", "ext", "tel", "u.s", "u.k", "u.n", "e.u", "ph.d",
    "m.d", "b.a", "m.a", "b.sc", "m.sc", "viz", "resp", "incl", "excl", "govt", "nr", "bzw", "z.b", "usw", "ggf", "vgl", "evtl",
    "inkl", "zzgl",
];

/// Month names after which a day written as an ordinal with a full stop goes on ("am 14. März
/// 1879", German and the languages that write dates so): compared lower-case.
const ORDINAL_MONTHS: &[&str] = &[
    "januar", "jänner", "februar", "märz", "april", "mai", "juni", "juli", "august", "september", "oktober", "november", "dezember",
];

/// Whether `word` (before a full stop) is a day of the month written as an ordinal ("14") and
/// `next_word` opens with a month name that follows such a day ([`ORDINAL_MONTHS`]).
fn day_before_month(word: &str, next_word: &str) -> bool {
    let day = word.len() <= 2 && word.parse::<u8>().is_ok_and(|d| (1..=31).contains(&d));
    let month: String = next_word.chars().take_while(|c| c.is_alphabetic()).collect::<String>().to_lowercase();
    day && ORDINAL_MONTHS.contains(&month.as_str())
}

/// Abbreviations that often end a sentence too: they split when a capitalised word follows.
const TERMINAL_ABBREVIATIONS: &[&str] = &["etc", "inc", "ltd", "co", "corp", "llc", "a.m", "p.m"];

/// Splits `text` into sentences. Returns byte ranges into `text`, trimmed of surrounding
/// whitespace, in order; empty sentences are dropped.
///
/// Time is linear in the length of `text`: each byte is looked at a bounded number of times (the
/// code regions are found by a cursor and a binary search, and nothing looks back to the start of
/// its line), so a 10 MB output on one line splits in a fraction of a second.
pub fn split_sentences(text: &str) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    // In order, without overlaps.
    let code = code_regions(text);
    let in_code = |i: usize| {
        let after = code.partition_point(|r| r.start <= i);
        after > 0 && code[after - 1].contains(&i)
    };
    // The first code region that does not start before `i`.
    let mut next_code = 0;
    // Bytes `blank_from..blank_to` are whitespace, and `blank_to` is not (or is the end): where the
    // first non-blank character after a line break is, found once for a run of blank lines.
    let (mut blank_from, mut blank_to) = (0, 0);
    let mut cuts: Vec<usize> = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        while code.get(next_code).is_some_and(|r| r.start < i) {
            next_code += 1;
        }
        if let Some(r) = code.get(next_code).filter(|r| r.start == i) {
            // A fenced block is a sentence of its own; an inline span belongs to its sentence.
            if text[r.clone()].starts_with("```") {
                cuts.push(r.start);
                cuts.push(r.end);
            }
            i = r.end;
            continue;
        }
        let c = bytes[i];
        if c == b'\n' {
            // Blank lines end a paragraph; a new line that starts a list item or a heading starts a
            // sentence.
            let next_line_start = i + 1;
            let rest = &text[next_line_start..];
            let blank = rest.trim_start_matches([' ', '\t', '\r']).starts_with('\n');
            if !(blank_from..=blank_to).contains(&next_line_start) {
                blank_from = next_line_start;
                blank_to = next_line_start + (rest.len() - rest.trim_start().len());
            }
            let heading = text[blank_to..].starts_with('#');
            if blank || starts_list_item(rest) || heading || ends_heading_line(text, i) {
                cuts.push(next_line_start);
            }
            i += 1;
            continue;
        }
        if matches!(c, b'.' | b'!' | b'?') || text[i..].starts_with('…') {
            let punct_len = if c == b'.' || c == b'!' || c == b'?' { 1 } else { '…'.len_utf8() };
            match sentence_end(text, i, punct_len, &in_code) {
                Ok(end) => {
                    cuts.push(end);
                    i = end;
                }
                // The rest of a run of punctuation ("...", "?!") ends no sentence where its start
                // does not: what follows the run decides for all of it.
                Err(run_end) => i = run_end,
            }
            continue;
        }
        i += text[i..].chars().next().map_or(1, char::len_utf8);
    }
    cuts.push(text.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .filter_map(|w| {
            let r = trim_range(text, w[0]..w[1]);
            (!r.is_empty() && text[r.clone()].chars().any(char::is_alphanumeric)).then_some(r)
        })
        .collect()
}

/// The sentences of `text` as string slices.
pub fn sentences(text: &str) -> Vec<&str> {
    split_sentences(text).into_iter().map(|r| &text[r]).collect()
}

/// Decides whether the punctuation at `i` ends a sentence: `Ok` with where the next one starts, or
/// `Err` with the end of the run of punctuation that starts at `i`, where the search goes on.
fn sentence_end(text: &str, i: usize, punct_len: usize, in_code: &dyn Fn(usize) -> bool) -> Result<usize, usize> {
    let bytes = text.as_bytes();
    // Runs of punctuation ("?!", "...") end together.
    let mut j = i + punct_len;
    while j < bytes.len() && matches!(bytes[j], b'.' | b'!' | b'?') {
        j += 1;
    }
    let is_dot = bytes[i] == b'.' && j == i + 1;
    let run_end = j;
    // Closing quotes and brackets belong to the sentence they close.
    loop {
        let rest = &text[j..];
        let Some(ch) = rest.chars().next() else { break };
        if matches!(ch, '"' | '\'' | '”' | '’' | ')' | '»' | '*' | '_') {
            j += ch.len_utf8();
        } else {
            break;
        }
    }
    // Citation markers right after the stop, with or without a space, close the sentence too.
    let mut k = j;
    loop {
        let spaces = text[k..].len() - text[k..].trim_start_matches([' ', '\t']).len();
        let rest = &text[k + spaces..];
        match citation_like(rest) {
            Some(len) => k += spaces + len,
            None => break,
        }
    }
    let after = &text[k..];
    let Some(first) = after.chars().next() else { return Ok(k) };
    if !first.is_whitespace() {
        // "3.5", "e.g.", "example.com", "v1.2": no space, no boundary.
        return Err(run_end);
    }
    let next_word = after.trim_start();
    let Some(next_char) = next_word.chars().next() else { return Ok(k) };
    if is_dot {
        let word = word_before(text, i);
        let lower = word.to_lowercase();
        if ABBREVIATIONS.contains(&lower.as_str()) {
            let terminal = TERMINAL_ABBREVIATIONS.contains(&lower.as_str()) && next_char.is_uppercase();
            if !terminal {
                return Err(run_end);
            }
        }
        // A single capital initial ("J. Smith") or an acronym with stops ("U.S.", "N.Y."); a day
        // before its month ("14. März").
        if is_initial(&word) || day_before_month(&word, next_word) {
            return Err(run_end);
        }
        // "1." or "a." opening a numbered list line.
        if is_list_number(text, i, &word) {
            return Err(run_end);
        }
    }
    if next_char.is_lowercase() && !in_code(k) {
        // "approx. five", "the U.S. economy": a lower-case continuation is not a new sentence.
        return Err(run_end);
    }
    Ok(k)
}

/// Length of a citation marker (`[1]`, `[1, 3]`, `[doc2]`) at the start of `s`.
fn citation_like(s: &str) -> Option<usize> {
    const LONGEST: usize = 40;
    let rest = s.strip_prefix('[')?;
    // A marker is short: look no further for its `]` (a `[` with no `]` after it must not send each
    // full stop to the end of the text).
    let close = rest.as_bytes().iter().take(LONGEST + 1).position(|&b| b == b']')?;
    let inner = &rest[..close];
    if inner.is_empty() || inner.len() > LONGEST {
        return None;
    }
    let ok = inner.split(',').all(|p| {
        let p = p.trim();
        !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') && p.chars().any(|c| c.is_ascii_digit())
    });
    (ok && !rest[close + 1..].starts_with('(')).then_some(close + 2)
}

/// The word (letters, digits and inner stops) that ends just before byte `i`.
fn word_before(text: &str, i: usize) -> String {
    let head = &text[..i];
    let start = head
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '.')
        .last()
        .map_or(i, |(p, _)| p);
    head[start..].trim_start_matches('.').to_string()
}

/// "J", "U.S", "N.Y": single capitals separated by stops.
fn is_initial(word: &str) -> bool {
    !word.is_empty() && word.split('.').all(|p| p.chars().count() == 1 && p.chars().all(char::is_uppercase))
}

/// Whether the stop at `i` follows a list number at the start of a line ("1.", "12.", "a.", "iv."):
/// `word` (which ends at `i`) has only whitespace before it on its line. That is read back from the
/// word, over the whitespace, not from the start of the line: a long line is not read once per stop.
fn is_list_number(text: &str, i: usize, word: &str) -> bool {
    let head = &text[..i];
    let Some(before) = head.strip_suffix(word) else { return false };
    let at_line_start = before.chars().rev().find(|c| *c == '\n' || !c.is_whitespace()).is_none_or(|c| c == '\n');
    at_line_start
        && (word.chars().all(|c| c.is_ascii_digit())
            || (word.chars().count() == 1 && word.chars().all(|c| c.is_ascii_lowercase()))
            || (!word.is_empty() && word.chars().all(|c| matches!(c, 'i' | 'v' | 'x'))))
}

/// Whether a line starts with a list marker: `- `, `* `, `+ `, `• `, `1. `, `1) `, `a) `.
fn starts_list_item(line: &str) -> bool {
    let l = line.trim_start_matches([' ', '\t']);
    if ["- ", "* ", "+ ", "• ", "– "].iter().any(|m| l.starts_with(m)) {
        return true;
    }
    let digits = l.chars().take_while(char::is_ascii_digit).count();
    let after = &l[digits..];
    (digits > 0 && digits < 4 && (after.starts_with(". ") || after.starts_with(") ")))
        || (l.len() > 2 && l.as_bytes()[0].is_ascii_lowercase() && l[1..].starts_with(") "))
}

/// Whether the line that ends at byte `nl` is a heading or ends with a colon (it then stands alone).
fn ends_heading_line(text: &str, nl: usize) -> bool {
    let line_start = text[..nl].rfind('\n').map_or(0, |p| p + 1);
    let line = text[line_start..nl].trim();
    line.starts_with('#') || line.ends_with(':')
}

/// Byte ranges of inline code (`...`) and fenced code blocks (```...```).
fn code_regions(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = text[i..].find('`') {
        let start = i + p;
        if text[start..].starts_with("```") {
            let end = text[start + 3..].find("```").map_or(text.len(), |q| start + 3 + q + 3);
            out.push(start..end);
            i = end;
        } else {
            match text[start + 1..].find('`') {
                Some(q) if !text[start + 1..start + 1 + q].contains('\n') => {
                    out.push(start..start + 1 + q + 1);
                    i = start + q + 2;
                }
                _ => i = start + 1,
            }
        }
        if i >= text.len() {
            break;
        }
    }
    out
}

fn trim_range(text: &str, r: Range<usize>) -> Range<usize> {
    let s = &text[r.clone()];
    let lead = s.len() - s.trim_start().len();
    let trail = s.len() - s.trim_end().len();
    if lead + trail >= s.len() {
        r.start..r.start
    } else {
        r.start + lead..r.end - trail
    }
}

/// The splitter as it was before it was made linear (it read back to the start of the line at each
/// full stop, and went over every code region at each byte), kept to check that the linear one
/// finds the very same sentences.
#[cfg(test)]
mod reference {
    use std::ops::Range;

    use super::{code_regions, day_before_month, ends_heading_line, is_initial, starts_list_item, trim_range, word_before};
    use super::{ABBREVIATIONS, TERMINAL_ABBREVIATIONS};

    /// Splits `text` into sentences. Returns byte ranges into `text`, trimmed of surrounding
    /// whitespace, in order; empty sentences are dropped.
    pub(super) fn split_sentences(text: &str) -> Vec<Range<usize>> {
        let bytes = text.as_bytes();
        let code = code_regions(text);
        let in_code = |i: usize| code.iter().any(|r| r.contains(&i));
        let mut cuts: Vec<usize> = vec![0];
        let mut i = 0;
        while i < bytes.len() {
            if let Some(r) = code.iter().find(|r| r.start == i) {
                // A fenced block is a sentence of its own; an inline span belongs to its sentence.
                if text[r.clone()].starts_with("```") {
                    cuts.push(r.start);
                    cuts.push(r.end);
                }
                i = r.end;
                continue;
            }
            let c = bytes[i];
            if c == b'\n' {
                // Blank lines end a paragraph; a new line that starts a list item or a heading starts a
                // sentence.
                let next_line_start = i + 1;
                let rest = &text[next_line_start..];
                let blank = rest.trim_start_matches([' ', '\t', '\r']).starts_with('\n');
                if blank || starts_list_item(rest) || rest.trim_start().starts_with('#') || ends_heading_line(text, i) {
                    cuts.push(next_line_start);
                }
                i += 1;
                continue;
            }
            if matches!(c, b'.' | b'!' | b'?') || text[i..].starts_with('…') {
                let punct_len = if c == b'.' || c == b'!' || c == b'?' { 1 } else { '…'.len_utf8() };
                if let Some(end) = sentence_end(text, i, punct_len, &in_code) {
                    cuts.push(end);
                    i = end;
                    continue;
                }
                i += punct_len;
                continue;
            }
            i += text[i..].chars().next().map_or(1, char::len_utf8);
        }
        cuts.push(text.len());
        cuts.sort_unstable();
        cuts.dedup();
        cuts.windows(2)
            .filter_map(|w| {
                let r = trim_range(text, w[0]..w[1]);
                (!r.is_empty() && text[r.clone()].chars().any(char::is_alphanumeric)).then_some(r)
            })
            .collect()
    }

    /// Decides whether the punctuation at `i` ends a sentence; returns where the next one starts.
    fn sentence_end(text: &str, i: usize, punct_len: usize, in_code: &dyn Fn(usize) -> bool) -> Option<usize> {
        let bytes = text.as_bytes();
        // Runs of punctuation ("?!", "...") end together.
        let mut j = i + punct_len;
        while j < bytes.len() && matches!(bytes[j], b'.' | b'!' | b'?') {
            j += 1;
        }
        let is_dot = bytes[i] == b'.' && j == i + 1;
        // Closing quotes and brackets belong to the sentence they close.
        loop {
            let rest = &text[j..];
            let Some(ch) = rest.chars().next() else { break };
            if matches!(ch, '"' | '\'' | '”' | '’' | ')' | '»' | '*' | '_') {
                j += ch.len_utf8();
            } else {
                break;
            }
        }
        // Citation markers right after the stop, with or without a space, close the sentence too.
        let mut k = j;
        loop {
            let spaces = text[k..].len() - text[k..].trim_start_matches([' ', '\t']).len();
            let rest = &text[k + spaces..];
            match citation_like(rest) {
                Some(len) => k += spaces + len,
                None => break,
            }
        }
        let after = &text[k..];
        if after.is_empty() {
            return Some(k);
        }
        let first = after.chars().next()?;
        if !first.is_whitespace() {
            // "3.5", "e.g.", "example.com", "v1.2": no space, no boundary.
            return None;
        }
        let next_word = after.trim_start();
        let Some(next_char) = next_word.chars().next() else { return Some(k) };
        if is_dot {
            let word = word_before(text, i);
            let lower = word.to_lowercase();
            if ABBREVIATIONS.contains(&lower.as_str()) {
                let terminal = TERMINAL_ABBREVIATIONS.contains(&lower.as_str()) && next_char.is_uppercase();
                if !terminal {
                    return None;
                }
            }
            // A single capital initial ("J. Smith") or an acronym with stops ("U.S.", "N.Y."); a
            // day before its month ("14. März").
            if is_initial(&word) || day_before_month(&word, next_word) {
                return None;
            }
            // "1." or "a." opening a numbered list line.
            if is_list_number(text, i, &word) {
                return None;
            }
        }
        if next_char.is_lowercase() && !in_code(k) {
            // "approx. five", "the U.S. economy": a lower-case continuation is not a new sentence.
            return None;
        }
        Some(k)
    }

    /// Length of a citation marker (`[1]`, `[1, 3]`, `[doc2]`) at the start of `s`.
    fn citation_like(s: &str) -> Option<usize> {
        let rest = s.strip_prefix('[')?;
        let close = rest.find(']')?;
        let inner = &rest[..close];
        if inner.is_empty() || inner.len() > 40 {
            return None;
        }
        let ok = inner.split(',').all(|p| {
            let p = p.trim();
            !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_') && p.chars().any(|c| c.is_ascii_digit())
        });
        (ok && !rest[close + 1..].starts_with('(')).then_some(close + 2)
    }

    /// Whether the stop at `i` follows a list number at the start of a line ("1.", "12.", "a.", "iv.").
    fn is_list_number(text: &str, i: usize, word: &str) -> bool {
        let line_start = text[..i].rfind('\n').map_or(0, |p| p + 1);
        let before = text[line_start..i].trim_start();
        before == word
            && (word.chars().all(|c| c.is_ascii_digit())
                || (word.chars().count() == 1 && word.chars().all(|c| c.is_ascii_lowercase()))
                || (!word.is_empty() && word.chars().all(|c| matches!(c, 'i' | 'v' | 'x'))))
    }
}

#[cfg(test)]
mod tests {
    use super::sentences;

    #[test]
    fn plain_sentences() {
        assert_eq!(sentences("One two. Three four! Five six?"), vec!["One two.", "Three four!", "Five six?"]);
    }

    #[test]
    fn a_day_before_its_month_and_german_abbreviations_do_not_split() {
        let t = "Einstein wurde am 14. März 1879 in Ulm geboren. Nr. 5 ist richtig. Er starb 1955. Danach kam nichts.";
        assert_eq!(sentences(t), vec!["Einstein wurde am 14. März 1879 in Ulm geboren.", "Nr. 5 ist richtig.", "Er starb 1955.", "Danach kam nichts."]);
        assert_eq!(sentences("Die Frist endet am 1. Juli 2025. Danach nicht.").len(), 2);
        assert_eq!(sentences("The score was 40. Maybe next time.").len(), 2, "40 is no day");
        assert_eq!(sentences("She finished 3. May was next.").len(), 2, "English month names do not follow a day so");
    }

    #[test]
    fn abbreviations_do_not_split() {
        assert_eq!(
            sentences("Dr. Smith visited the U.S. Embassy at 9 a.m. on Monday. He left, e.g. at noon."),
            vec!["Dr. Smith visited the U.S. Embassy at 9 a.m. on Monday.", "He left, e.g. at noon."]
        );
        assert_eq!(sentences("Bring pens, paper, etc. The rest is provided."), vec!["Bring pens, paper, etc.", "The rest is provided."]);
        assert_eq!(sentences("See J. R. R. Tolkien. He wrote books."), vec!["See J. R. R. Tolkien.", "He wrote books."]);
    }

    #[test]
    fn decimals_and_versions_do_not_split() {
        assert_eq!(
            sentences("The rate is 3.5% in v2.1.0 of the plan. It was 4.25 before."),
            vec!["The rate is 3.5% in v2.1.0 of the plan.", "It was 4.25 before."]
        );
    }

    #[test]
    fn numbered_and_bulleted_lists() {
        let text = "Steps:\n1. Open the app.\n2. Tap Settings\n3. Choose Billing.\n- Keep the receipt\n- Call us";
        assert_eq!(
            sentences(text),
            vec!["Steps:", "1. Open the app.", "2. Tap Settings", "3. Choose Billing.", "- Keep the receipt", "- Call us"]
        );
    }

    #[test]
    fn quotes_and_brackets_stay_with_their_sentence() {
        assert_eq!(
            sentences("He said \"Stop.\" Then he left. (It was late.) We waited."),
            vec!["He said \"Stop.\"", "Then he left.", "(It was late.)", "We waited."]
        );
    }

    #[test]
    fn code_spans_are_not_split() {
        assert_eq!(
            sentences("Run `make build. && ./x` first. Then test."),
            vec!["Run `make build. && ./x` first.", "Then test."]
        );
        let fenced = "Use this:\n```\nfoo. Bar.\n```\nDone.";
        assert_eq!(sentences(fenced), vec!["Use this:", "```\nfoo. Bar.\n```", "Done."]);
    }

    #[test]
    fn citation_markers_stay_with_the_sentence_they_close() {
        assert_eq!(
            sentences("Refunds take 30 days [1]. Credit is offered.[2][3] Call us. [4] Bye."),
            vec!["Refunds take 30 days [1].", "Credit is offered.[2][3]", "Call us. [4]", "Bye."]
        );
    }

    #[test]
    fn lower_case_continuation_and_ellipsis() {
        assert_eq!(sentences("It costs approx. five dollars... Then more."), vec!["It costs approx. five dollars...", "Then more."]);
        assert_eq!(sentences("Wait... what? No!"), vec!["Wait... what?", "No!"]);
    }

    #[test]
    fn the_linear_splitter_finds_what_the_naive_one_did() {
        use crate::text::testing::{random_text, Rng};
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        for round in 0..3000 {
            let len = rng.below(200);
            let t = random_text(&mut rng, len);
            assert_eq!(super::split_sentences(&t), super::reference::split_sentences(&t), "round {round}: {t:?}");
        }
        // Long lines, long runs of stops, a `[` with no `]`, blank lines of form feeds.
        for t in [
            "a. ".repeat(5000),
            format!("Wait{} then. Go.", ".".repeat(3000)),
            format!("x. [{} Done. Next.", "y".repeat(300)),
            "\n\u{c}".repeat(2000) + "# Title\nText. More.",
        ] {
            assert_eq!(super::split_sentences(&t), super::reference::split_sentences(&t));
        }
    }

    #[test]
    fn empty_and_whitespace() {
        assert!(sentences("").is_empty());
        assert!(sentences("  \n ").is_empty());
        assert_eq!(sentences("No final stop"), vec!["No final stop"]);
    }
}
