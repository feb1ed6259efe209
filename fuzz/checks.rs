//! The properties the fuzz targets check, shared with `tests/fuzz_corpus.rs`, which replays the
//! committed corpus through them on every `cargo test`.
//!
//! Each function panics (and so makes libFuzzer report a crash) when a property fails. Besides "never
//! panics", they check that nothing is lost silently: every non-blank suite line becomes a case or a
//! problem, every word of an output lands in a sentence, every word of a passage lands in a chunk.

#![allow(dead_code)]

use std::io::Cursor;

use candor::engine::TextTokenizer;
use candor::suite::SuiteReader;
use candor::text::{analyse_output, chunk_text, about_sources, claim_form, code, find_markers, split_sentences, strip_markers};

/// The suite reader on arbitrary bytes.
pub fn suite_reader(data: &[u8]) {
    // UTF-16 (a byte-order mark FF FE or FE FF, or a zero byte at every other place of its first 64
    // bytes, at least 4): one problem saying so.
    let head = &data[..data.len().min(64)];
    let zeros = head.len() >= 4 && (head.iter().step_by(2).all(|&b| b == 0) || head.iter().skip(1).step_by(2).all(|&b| b == 0));
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) || zeros {
        let items: Vec<_> = SuiteReader::new(Cursor::new(data)).collect();
        assert!(items.len() == 1 && items[0].as_ref().is_err_and(|p| p.reason.contains("UTF-16")), "UTF-16 must give one problem: {items:?}");
        return;
    }
    // A suite whose first character (after blanks and byte-order marks) is `[` is one JSON array:
    // each item gives exactly one case or one problem, numbered by position; a malformed array gives
    // exactly one problem.
    let mut rest = data;
    loop {
        if let Some(r) = rest.strip_prefix("\u{feff}".as_bytes()) {
            rest = r;
        } else if rest.first().is_some_and(|b| b.is_ascii_whitespace()) {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    // One JSON object over several lines (its first line the brace alone, or an object cut off at
    // the line's end that the whole file completes): its cases under a known key, or one problem.
    let first = rest.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let cut_off = first.starts_with(b"{") && serde_json::from_slice::<serde::de::IgnoredAny>(first).is_err_and(|e| e.is_eof());
    let whole = serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(rest).is_ok();
    if rest.contains(&b'\n') && (first.trim_ascii() == b"{" || (cut_off && whole)) {
        let items: Vec<_> = SuiteReader::new(Cursor::new(data)).collect();
        let lines: Vec<usize> = items.iter().map(|i| i.as_ref().map_or_else(|p| p.line, |c| c.line)).collect();
        let one_problem = items.len() == 1 && items[0].is_err();
        assert!(one_problem || lines == (1..=items.len()).collect::<Vec<_>>(), "an object must give its cases in order, or one problem: {items:?}");
        return;
    }
    if rest.first() == Some(&b'[') {
        let items: Vec<_> = SuiteReader::new(Cursor::new(data)).collect();
        match serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(rest) {
            Ok(array) => {
                let lines: Vec<usize> = items.iter().map(|i| i.as_ref().map_or_else(|p| p.line, |c| c.line)).collect();
                assert_eq!(lines, (1..=array.len()).collect::<Vec<_>>(), "each item of an array must give one case or one problem, in order");
            }
            Err(_) => assert!(items.len() == 1 && items[0].is_err(), "a malformed array must give one problem: {items:?}"),
        }
        return;
    }
    // What `BufRead::lines` sees: lines split at '\n', a trailing '\r' removed, the final empty piece
    // after a last newline not a line.
    let mut expected = Vec::new();
    let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    for (i, piece) in pieces.iter().enumerate() {
        let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
        match std::str::from_utf8(piece) {
            Ok(s) if s.trim().is_empty() => {}
            _ => expected.push(i + 1),
        }
    }
    let mut seen_lines = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for item in SuiteReader::new(Cursor::new(data)) {
        match item {
            Ok(case) => {
                assert!(ids.insert(case.id.clone()), "id {:?} returned twice", case.id);
                assert!(!case.id.trim().is_empty(), "empty id accepted");
                seen_lines.push(case.line);
            }
            Err(problem) => {
                assert!(!problem.reason.is_empty(), "a problem without a reason");
                let shown = problem.to_string();
                assert!(shown.starts_with(&format!("line {}", problem.line)), "message without its line: {shown}");
                seen_lines.push(problem.line);
            }
        }
    }
    assert_eq!(seen_lines, expected, "each non-blank line must give exactly one case or one problem, in order");
}

fn assert_boundaries(text: &str, r: &std::ops::Range<usize>, what: &str) {
    assert!(r.start <= r.end && r.end <= text.len(), "{what} {r:?} out of bounds (len {})", text.len());
    assert!(text.is_char_boundary(r.start) && text.is_char_boundary(r.end), "{what} {r:?} splits a character");
}

/// The sentence splitter and the output analysis on arbitrary text.
pub fn sentences(text: &str) {
    let spans = split_sentences(text);
    let mut last_end = 0;
    for r in &spans {
        assert_boundaries(text, r, "sentence");
        assert!(r.start >= last_end, "sentences overlap or go backwards: {spans:?}");
        assert!(!r.is_empty(), "empty sentence");
        let s = &text[r.clone()];
        assert_eq!(s, s.trim(), "sentence not trimmed");
        last_end = r.end;
    }
    // No word is lost: every alphanumeric character lies in a sentence.
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() {
            assert!(spans.iter().any(|r| r.contains(&i)), "character {c:?} at byte {i} is in no sentence");
        }
    }
    let analysed = analyse_output(text, &["1", "policy"]);
    assert_eq!(analysed.iter().map(|s| s.span.clone()).collect::<Vec<_>>(), spans);
    // Every sentence reads as a claim; markdown removal only removes; a code block looks itself
    // up in the text it came from.
    for s in &analysed {
        let _ = claim_form::read(&s.text, s.is_claim, Some("Is it so?"));
        if let Some(plain) = claim_form::without_markup(&s.text) {
            assert!(plain.chars().count() < s.text.trim().chars().count(), "markup removal added to {:?}: {plain:?}", s.text);
        }
        // A frame naming the sources only comes off: what is left is the sentence's own end.
        let _ = about_sources::about_sources(&s.text, true);
        if let Some(claim) = about_sources::framed_claim(&s.text) {
            let rest: String = claim.chars().skip(1).collect();
            assert!(s.text.trim().ends_with(&rest) && claim.len() < s.text.trim().len(), "frame removal changed {:?}: {claim:?}", s.text);
        }
        if code::is_fenced(&s.text) {
            if let Some(found) = code::support(&s.text, &[text]) {
                assert!((0.0..=1.0).contains(&found.score), "code score {}", found.score);
                if let Some((k, r)) = found.evidence {
                    assert_eq!(k, 0);
                    assert_boundaries(text, &r, "code evidence");
                }
            }
        }
    }
}

/// The citation parser on arbitrary text.
pub fn citations(text: &str) {
    let known = ["1", "doc2", "policy", "a b"];
    let markers = find_markers(text, &known);
    let mut last_end = 0;
    for m in &markers {
        assert_boundaries(text, &m.span, "marker");
        assert!(m.span.start >= last_end, "markers overlap: {markers:?}");
        last_end = m.span.end;
        let s = &text[m.span.clone()];
        assert!(s.starts_with('[') && s.ends_with(']'), "marker {s:?} is not bracketed");
        assert!(!m.ids.is_empty(), "marker without ids");
        for id in &m.ids {
            assert!(!id.is_empty() && s.contains(id.as_str()), "id {id:?} not in its marker {s:?}");
        }
    }
    let stripped = strip_markers(text, &markers);
    assert!(stripped.len() <= text.len(), "stripping markers made the text longer");
    for s in analyse_output(text, &known) {
        assert_boundaries(text, &s.span, "sentence");
        for id in &s.cites {
            assert!(markers.iter().any(|m| m.ids.contains(id)), "cited id {id:?} from no marker");
        }
    }
}

/// The chunker with the shipped model's tokenizer. The first two bytes choose the window and overlap.
pub fn chunker(tokenizer: &TextTokenizer, data: &[u8]) {
    let [w, o, rest @ ..] = data else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let window = 8 + *w as usize;
    let overlap = *o as usize % 64;
    let offsets = match tokenizer.token_offsets(text) {
        Ok(o) => o,
        Err(_) => return,
    };
    let chunks = chunk_text(text, window, overlap, &|t| tokenizer.token_offsets(t)).expect("offsets worked once");
    let mut last_start = 0;
    for c in &chunks {
        assert_boundaries(text, &c.span, "chunk");
        assert!(!c.span.is_empty(), "empty chunk");
        assert!(c.span.start >= last_start, "chunks go backwards");
        last_start = c.span.start;
        assert!(c.tokens >= 1, "chunk without tokens");
        assert!(c.tokens <= window, "chunk of {} tokens over the window {window}", c.tokens);
        // The model reads the chunk on its own: as it tokenises it, the chunk fits the window.
        let read = tokenizer.count_tokens(&text[c.span.clone()]).expect("offsets worked once");
        assert!(read <= window, "chunk reads as {read} tokens, over the window {window}");
    }
    // Every token, whatever it holds, is in some chunk (not only those with letters or digits).
    for &(s, e) in &offsets {
        if s < e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e) && !text[s..e].trim().is_empty() {
            assert!(chunks.iter().any(|c| c.span.start <= s && e <= c.span.end), "token {:?} at {s} is not wholly in a chunk", &text[s..e]);
        }
    }
    // No word is lost: every token with a letter or digit starts inside some chunk.
    for &(s, e) in &offsets {
        if s < e && e <= text.len() && text.is_char_boundary(s) && text.is_char_boundary(e) && text[s..e].chars().any(char::is_alphanumeric) {
            assert!(chunks.iter().any(|c| c.span.start <= s && s < c.span.end), "token {:?} at {s} is in no chunk", &text[s..e]);
        }
    }
}

/// The shipped model's tokenizer, which the chunker fuzzes with.
pub fn tokenizer() -> TextTokenizer {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = if path.join("models").exists() { path.to_path_buf() } else { path.join("..") };
    TextTokenizer::from_file(&path.join("models/candor-nli-minilm/tokenizer.json"), 512).expect("the shipped tokenizer")
}
