//! Reading the crate's own sources, for the tests that check rules about them (tests/layering.rs,
//! tests/install.rs).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The crate's src/ folder.
pub fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, and `dir.rs` beside it if there is one.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let flat = dir.with_extension("rs");
    if flat.is_file() {
        out.push(flat);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The text with `//` and `/* */` comments blanked (string and char literals kept, so that a `//`
/// inside a string does not hide the code after it).
pub fn strip_comments(text: &str) -> String {
    mask(text, false)
}

/// The text with comments blanked and, when `strings`, the insides of string literals too. Every
/// blanked byte becomes a space (a newline stays a newline), so offsets into the result are offsets
/// into `text`.
pub fn mask(text: &str, strings: bool) -> String {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let blank = |out: &mut Vec<u8>, part: &[u8]| out.extend(part.iter().map(|&c| if c == b'\n' { b'\n' } else { b' ' }));
    let mut i = 0;
    while i < b.len() {
        let rest = &b[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if rest.starts_with(b"/*") {
            let end = rest.windows(2).position(|w| w == b"*/").map_or(b.len(), |n| i + n + 2);
            blank(&mut out, &b[i..end]);
            i = end;
        } else if rest.starts_with(b"'\"'") || rest.starts_with(b"'\\\"'") {
            // A char literal holding a quote.
            let n = if rest.starts_with(b"'\"'") { 3 } else { 4 };
            out.extend_from_slice(&rest[..n]);
            i += n;
        } else if rest.starts_with(b"\"") {
            // A string literal (raw strings are rare enough in these sources to be read as code).
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            if strings && end - i >= 2 {
                out.push(b'"');
                blank(&mut out, &b[i + 1..end - 1]);
                out.push(b'"');
            } else {
                out.extend_from_slice(&b[i..end]);
            }
            i = end;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    // Whole characters are copied or blanked byte by byte (into spaces): the result is UTF-8.
    String::from_utf8(out).expect("masking keeps UTF-8")
}
