//! Escaping what a case carries (ids, segment names and values, claim text: anything a user wrote)
//! for each place the reports print it. Every renderer calls these; none escapes on its own.
//!
//! - [`terminal`]: control characters (C0, DEL, C1), bidirectional overrides and line separators are
//!   shown as visible escapes (`\x1b`, `\u{202e}`), so no escape sequence reaches the terminal and no
//!   value breaks a table row;
//! - [`xml`]: the five XML specials as entities, tab and line breaks as character references (they
//!   survive attribute normalisation), and what XML 1.0 forbids (C0 controls other than tab, line
//!   feed and carriage return; U+FFFE, U+FFFF) as visible escapes;
//! - [`html`]: the HTML specials as entities, controls as visible escapes;
//! - [`markdown`] and [`markdown_code`]: text and code spans that cannot break a table, open an HTML
//!   tag or a link, or end the span they sit in;
//! - [`json_in_html`]: JSON that can sit inside a `<script>` element without ending it or opening a
//!   comment (`<` as `\u003c`, and `>`, `&`, U+2028, U+2029 likewise).

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a character is shown as a visible escape on a terminal: a C0 control (line breaks and
/// tabs included: a value must not break the row it sits in), DEL, a C1 control, a bidirectional
/// embedding, override or isolate (they reorder what follows on screen), or a line or paragraph
/// separator.
fn unprintable(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// The visible escape of a character: `\n`, `\r`, `\t`, `\xNN` below U+0100, `\u{NNNN}` above.
fn push_visible(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// `s` for a terminal: every control character, DEL, C1 control, bidirectional control and line
/// separator as a visible escape (`\x1b`, `\n`, `\u{202e}`); everything else as it is.
pub fn terminal(s: &str) -> Cow<'_, str> {
    let Some(first) = s.find(unprintable) else { return Cow::Borrowed(s) };
    let mut o = String::with_capacity(s.len() + 16);
    o.push_str(&s[..first]);
    for c in s[first..].chars() {
        if unprintable(c) {
            push_visible(&mut o, c);
        } else {
            o.push(c);
        }
    }
    Cow::Owned(o)
}

/// `s` for XML 1.0 text or attribute values (in double or single quotes): `& < > " '` as entities,
/// tab, line feed and carriage return as character references (kept through attribute-value
/// normalisation), and characters XML 1.0 does not allow (other C0 controls, U+FFFE, U+FFFF) as
/// visible escapes (`\x1b`).
pub fn xml(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            '\t' => o.push_str("&#9;"),
            '\n' => o.push_str("&#10;"),
            '\r' => o.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => push_visible(&mut o, c),
            c => o.push(c),
        }
    }
    o
}

/// `s` for HTML text or a quoted attribute value: `& < > " '` as entities, controls (line breaks
/// and tabs aside) as visible escapes.
pub fn html(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            '\n' | '\t' => o.push(c),
            c if unprintable(c) => push_visible(&mut o, c),
            c => o.push(c),
        }
    }
    o
}

/// `s` as Markdown text, in a table cell or a list item: it shows as written. Markdown's
/// punctuation (`\`, `|`, `` ` ``, `*`, `_`, `[`, `]`, `~`) is backslash-escaped, `< > &` become
/// entities (no HTML tag, no autolink), and line breaks and other controls are visible escapes (no
/// new row, no new block).
pub fn markdown(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '\\' | '|' | '`' | '*' | '_' | '[' | ']' | '~' => {
                o.push('\\');
                o.push(c);
            }
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            c if unprintable(c) => push_visible(&mut o, c),
            c => o.push(c),
        }
    }
    o
}

/// `s` as a Markdown code span, backticks included: fenced by more backticks than any run in `s`
/// (padded with a space where `s` starts or ends with one), controls as visible escapes; in a table
/// cell (`in_table`), `|` as `\|`, which tables read inside code spans too.
pub fn markdown_code(s: &str, in_table: bool) -> String {
    let body = terminal(s);
    let body = if in_table { Cow::Owned(body.replace('|', "\\|")) } else { body };
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    if body.is_empty() {
        return "` `".into();
    }
    let pad = if body.starts_with('`') || body.ends_with('`') { " " } else { "" };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// JSON text (as `serde_json` writes it) made safe inside an HTML `<script>` element: `<`, `>`, `&`,
/// U+2028 and U+2029 as `\u` escapes. They can only occur inside JSON strings, where the escape
/// means the same character, so the JSON parses to the same value; and without a `<`, nothing in it
/// can end the script (`</script>`) or open a comment (`<!--`).
pub fn json_in_html(json: &str) -> String {
    let mut o = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => o.push_str("\\u003c"),
            '>' => o.push_str("\\u003e"),
            '&' => o.push_str("\\u0026"),
            '\u{2028}' => o.push_str("\\u2028"),
            '\u{2029}' => o.push_str("\\u2029"),
            c => o.push(c),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const NASTY: &str = "\u{1}\u{1b}[31m<&>\"'";

    #[test]
    fn terminal_shows_controls_as_visible_escapes() {
        assert_eq!(terminal(NASTY), "\\x01\\x1b[31m<&>\"'");
        assert_eq!(terminal("a\nb\tc\rd\u{7f}\u{85}\u{9b}e"), "a\\nb\\tc\\rd\\x7f\\x85\\x9be");
        assert_eq!(terminal("x\u{202e}y\u{2028}"), "x\\u{202e}y\\u{2028}");
        // Ordinary text, accents and emoji included, is left as it is, and not copied.
        assert!(matches!(terminal("billing-017 é ü 日本 🙂"), Cow::Borrowed("billing-017 é ü 日本 🙂")));
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let t = terminal(&c.to_string()).into_owned();
            assert!(!t.chars().any(|x| x.is_control()), "{c:?} -> {t:?}");
        }
    }

    #[test]
    fn xml_escapes_specials_and_replaces_what_xml_forbids() {
        assert_eq!(xml(NASTY), "\\x01\\x1b[31m&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(xml("a\tb\nc\rd"), "a&#9;b&#10;c&#13;d");
        assert_eq!(xml("\u{fffe}\u{ffff}\u{fffd}"), "\\u{fffe}\\u{ffff}\u{fffd}");
        // Every character left is one XML 1.0 allows.
        let all: String = (0u32..0x11000).filter_map(char::from_u32).collect();
        for c in xml(&all).chars() {
            let allowed = matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..);
            assert!(allowed && !"<>\"'".contains(c), "{c:?}");
        }
    }

    #[test]
    fn html_escapes_specials() {
        assert_eq!(html(NASTY), "\\x01\\x1b[31m&lt;&amp;&gt;&quot;&#39;");
        assert_eq!(html("<script>a</script>"), "&lt;script&gt;a&lt;/script&gt;");
    }

    #[test]
    fn markdown_text_cannot_break_a_table_or_open_html() {
        let m = markdown("a|b `c` <img src=x onerror=alert(1)>\n| x | y |\n*d* [l](u) &amp;");
        assert!(!m.contains('\n') && !m.contains('<') && !m.contains('>'), "{m}");
        // Every `|` and backtick is escaped.
        let b = m.as_bytes();
        for (i, &c) in b.iter().enumerate() {
            if c == b'|' || c == b'`' || c == b'*' || c == b'[' {
                assert_eq!(b[i - 1], b'\\', "{m}");
            }
        }
        assert!(m.contains("&amp;amp;"), "{m}");
        assert_eq!(markdown("plain text, 3.5 (ok)"), "plain text, 3.5 (ok)");
    }

    #[test]
    fn markdown_code_spans_hold_any_text() {
        assert_eq!(markdown_code("billing-017", false), "`billing-017`");
        assert_eq!(markdown_code("a`b", false), "``a`b``");
        assert_eq!(markdown_code("`x``", false), "``` `x`` ```");
        assert_eq!(markdown_code("a|b\nc", true), "`a\\|b\\nc`");
        assert_eq!(markdown_code("", false), "` `");
    }

    #[test]
    fn json_in_html_hides_every_tag_and_parses_back() {
        let ids = ["<!--<script>", "</script><script>alert(1)</script>", "a&b>c\u{2028}\u{2029}"];
        let json = serde_json::to_string(&ids).unwrap();
        let safe = json_in_html(&json);
        assert!(!safe.contains('<') && !safe.contains('>') && !safe.contains('&'), "{safe}");
        assert!(!safe.contains('\u{2028}') && !safe.contains('\u{2029}'));
        let back: Vec<String> = serde_json::from_str(&safe).unwrap();
        assert_eq!(back, ids);
    }
}
