//! Sentences that speak of the sources instead of the world.
//!
//! Answers written from retrieved passages often talk about what they were given: "The context does
//! not mention CLOUD_PROVIDER_LAUNCH_FAILURE.", "Based on the context, it is not explicitly stated
//! whether the metastore is in the data plane.", "The context explains how to configure audit
//! logging." An NLI model reads such a sentence against the very passages it describes and finds it
//! entailed: on ARES's human-annotated answers the default model passed all three of those (0.74,
//! 0.45, 0.63), where the people who read them marked each answer unfaithful. None of them says
//! anything about the world that a source could support. So:
//!
//! - a sentence saying the sources lack something ([`About::Lacks`]: "the context does not
//!   mention X", "X is not explicitly stated in the documents", "there is no information on
//!   whether X", "I could not find X in the context") is an abstention: it is not graded as a
//!   claim, and an output of nothing else claims nothing (`no_claim`), as "I don't know" does;
//! - a sentence describing the sources ([`About::Describes`]: "The context explains how to X", "It
//!   also lists the types of logs") is graded as it stands, since it can carry a detail the sources
//!   lack ("The document describes a 90-day refund period"); but an output of nothing but such
//!   sentences answers nothing, and claims nothing;
//! - a claim framed by its source ("According to the context, X", "The document states that X") is
//!   graded as X ([`framed_claim`]): the frame is not what the sources are asked about.
//!
//! English only, and only the generic names of sources (context, document, passage, excerpt,
//! source; text, information, article, page, documentation or content when qualified as "the
//! provided text", "the information given"): "The Declaration describes rights" or "The article 5
//! provides for ..." are claims about the world and read as such.

use std::ops::Range;

/// What a sentence about the sources does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum About {
    /// It says the sources lack something: an abstention, not a claim.
    Lacks,
    /// It describes the sources: graded as a claim, but it answers nothing.
    Describes,
}

/// Names of the sources that stand alone after a determiner ("the context", "these passages").
const SOURCE_NOUNS: &[&str] = &[
    "context", "contexts", "document", "documents", "passage", "passages", "excerpt", "excerpts", "snippet", "snippets",
    "source", "sources",
];

/// Names of the sources only when qualified ("the provided text", "the information given"): alone
/// they name things of the world ("the text message", "the article 5").
const QUALIFIED_NOUNS: &[&str] = &[
    "text", "texts", "information", "article", "articles", "page", "pages", "documentation", "content", "material",
    "materials", "data", "reference", "references", "search", "results",
];

/// Words that open a name of the sources.
const DETERMINERS: &[&str] = &["the", "this", "these", "that", "those", "your", "each", "both", "all"];

/// Words that qualify a name as the sources' ("the provided context", "the text above").
const QUALIFIERS: &[&str] = &[
    "provided", "given", "above", "supplied", "retrieved", "attached", "available", "cited", "referenced", "following",
    "shared", "reference", "search", "source",
];

/// Adverbs that may stand between a subject and its verb ("the context also explains").
const ADVERBS: &[&str] = &[
    "also", "only", "mainly", "primarily", "briefly", "merely", "simply", "further", "then", "clearly", "explicitly",
    "specifically", "directly", "actually", "generally", "largely", "mostly", "just", "instead", "really", "even",
    "unfortunately", "however", "still", "seemingly", "apparently", "indeed",
];

/// Verbs with which a text says something; after a negation they say the sources lack it.
const SAY_VERBS: &[&str] = &[
    "mention", "say", "state", "specify", "provide", "contain", "include", "give", "offer", "address", "cover", "discuss",
    "explain", "describe", "answer", "indicate", "clarify", "tell", "list", "detail", "show", "reference", "talk", "touch",
    "seem", "appear", "have", "define", "document", "confirm", "support", "suggest", "specify", "make", "cite", "name",
];

/// Verbs with which a text is described ("the context explains how to ...").
const DESCRIBE_VERBS: &[&str] = &[
    "explains", "explain", "describes", "describe", "provides", "provide", "mentions", "mention", "discusses", "discuss",
    "covers", "cover", "contains", "contain", "includes", "include", "lists", "list", "gives", "give", "offers", "offer",
    "outlines", "outline", "talks", "talk", "focuses", "focus", "presents", "present", "details", "detail", "introduces",
    "introduce", "summarizes", "summarize", "summarises", "summarise", "deals", "deal", "addresses", "address", "highlights",
    "highlight", "shows", "show", "refers", "refer", "covers", "documents", "concerns", "concern", "answers", "answer",
    "walks", "demonstrates", "demonstrate", "defines", "define", "illustrates", "illustrate", "goes",
];

/// Forms of "to be" and its kin with which a text is described ("the context is about ...", "the
/// document seems to be a page of ...").
const DESCRIBE_COPULAS: &[&str] = &["is", "are", "seems", "seem", "appears", "appear"];

/// What follows such a verb when it describes the text ("is about", "is a documentation page", "is
/// focused on"); "was signed in 1776" speaks of the world.
const DESCRIBED_AS: &[&str] =
    &["about", "a", "an", "focused", "related", "concerned", "titled", "entitled", "mostly", "mainly", "primarily", "largely", "limited"];

/// Verbs that report a claim in a that-clause ("the document states that X").
const REPORT_VERBS: &[&str] = &[
    "states", "state", "says", "say", "mentions", "mention", "explains", "explain", "notes", "note", "indicates",
    "indicate", "suggests", "suggest", "confirms", "confirm", "specifies", "specify", "shows", "show", "clarifies",
    "clarify", "emphasizes", "emphasises", "emphasize", "highlights", "highlight", "reports", "report", "claims", "claim",
    "implies", "imply", "describes", "describe", "stated", "said", "mentioned", "explained", "noted", "indicated",
];

/// Negated auxiliaries, written as one word.
const NEGATED: &[&str] =
    &["doesn't", "don't", "didn't", "cannot", "can't", "couldn't", "won't", "wouldn't", "isn't", "aren't", "wasn't", "weren't"];

/// Auxiliaries that take a following "not".
const AUXILIARIES: &[&str] = &["does", "do", "did", "can", "could", "will", "would", "is", "are", "was", "were"];

/// Past participles with which something is said to be missing ("X is not mentioned").
const NOT_SAID: &[&str] = &[
    "mentioned", "stated", "specified", "said", "provided", "given", "addressed", "covered", "discussed", "described",
    "explained", "listed", "included", "found", "documented", "defined", "detailed", "indicated",
    "available", "clarified", "answered", "shown", "present", "referenced", "confirmed",
];

/// What "it is not ..." says of a question the sources leave open ("it is not clear whether").
const NOT_SETTLED: &[&str] = &["clear", "known", "certain", "evident", "obvious"];

/// What may be said to be missing ("there is no information", "no mention is made").
const MISSING: &[&str] = &[
    "information", "mention", "answer", "indication", "detail", "details", "data", "reference", "explanation",
    "description", "discussion", "specifics", "statement", "info", "documentation", "guidance",
];

/// Adjectives before what is missing ("no clear information").
const MISSING_ADJECTIVES: &[&str] =
    &["clear", "direct", "explicit", "specific", "relevant", "further", "additional", "such", "detailed", "definitive", "precise"];

/// Discourse words an answer's sentence may open with.
const OPENERS: &[&str] = &[
    "however", "additionally", "also", "moreover", "furthermore", "but", "unfortunately", "so", "overall", "finally",
    "still", "yet", "therefore", "thus", "again", "and", "sadly", "regrettably", "instead", "otherwise", "specifically",
];

/// Prepositions that open a frame naming the sources ("According to the context, ...").
const FRAME_OPENERS: &[&[&str]] = &[
    &["according", "to"],
    &["based", "on"],
    &["based", "upon"],
    &["judging", "from"],
    &["judging", "by"],
    &["from"],
    &["in"],
    &["per"],
    &["as", "stated", "in"],
    &["as", "mentioned", "in"],
    &["as", "described", "in"],
    &["as", "noted", "in"],
    &["as", "explained", "in"],
    &["as", "shown", "in"],
    &["as", "per"],
];

/// One word of a sentence: lower-case, curly apostrophes straight, the punctuation around it off;
/// its byte range in the sentence, and whether a comma (or colon) follows it.
#[derive(Debug)]
struct Word {
    text: String,
    range: Range<usize>,
    comma: bool,
}

fn words_of(sentence: &str) -> Vec<Word> {
    let mut out = vec![];
    let mut offset = 0;
    for raw in sentence.split_inclusive(char::is_whitespace) {
        let start = offset;
        offset += raw.len();
        let token = raw.trim_end();
        let inner_start = token.find(|c: char| c.is_alphanumeric()).map(|i| start + i);
        let inner_end = token.rfind(|c: char| c.is_alphanumeric()).map(|i| start + i + token[i..].chars().next().map_or(1, char::len_utf8));
        let (Some(s), Some(e)) = (inner_start, inner_end) else { continue };
        let text = sentence[s..e].to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
        let comma = token[e - start..].contains([',', ':']);
        out.push(Word { text, range: s..e, comma });
    }
    out
}

fn is(words: &[Word], i: usize, list: &[&str]) -> bool {
    words.get(i).is_some_and(|w| list.contains(&w.text.as_str()))
}

fn is_word(words: &[Word], i: usize, word: &str) -> bool {
    words.get(i).is_some_and(|w| w.text == word)
}

/// Past the discourse words a sentence opens with ("However, ...").
fn past_openers(words: &[Word], mut i: usize) -> usize {
    while is(words, i, OPENERS) {
        i += 1;
    }
    i
}

fn past_adverbs(words: &[Word], mut i: usize) -> usize {
    while is(words, i, ADVERBS) {
        i += 1;
    }
    i
}

/// The end of a name of the sources starting at `i` ("the provided context", "the text above", "the
/// context you provided", "the information provided in the documents"), if one starts there.
fn source_name(words: &[Word], i: usize) -> Option<usize> {
    if !is(words, i, DETERMINERS) {
        return None;
    }
    let mut j = i + 1;
    let mut qualified = false;
    // Qualifiers before the noun: "the provided context", "the search results", "the source documents".
    while is(words, j, QUALIFIERS) && (is(words, j + 1, SOURCE_NOUNS) || is(words, j + 1, QUALIFIED_NOUNS) || is(words, j + 1, QUALIFIERS)) {
        qualified = true;
        j += 1;
    }
    let noun_alone = is(words, j, SOURCE_NOUNS);
    if !noun_alone && !is(words, j, QUALIFIED_NOUNS) {
        return None;
    }
    // "in the context of naval warfare", "the source of the Nile": an idiom, or a source of
    // something in the world.
    if is(words, j, &["context", "source", "sources"]) && is_word(words, j + 1, "of") {
        return None;
    }
    j += 1;
    // After the noun: "provided", "above", "you provided", "that you gave", "provided by you".
    let after = j;
    if is_word(words, j, "that") && is_word(words, j + 1, "you") {
        j += 1;
    }
    if is(words, j, &["you", "i", "we"]) && is(words, j + 1, &["provided", "gave", "shared", "sent", "supplied", "have", "had", "were", "was"]) {
        j += if is(words, j + 1, &["have", "had", "were", "was"]) { 3 } else { 2 };
    } else if is(words, j, &["provided", "given", "above", "supplied", "retrieved", "shown", "here", "below", "attached"]) {
        j += 1;
        if is_word(words, j, "by") && is(words, j + 1, &["you", "the", "your"]) {
            j += 2;
        }
    }
    qualified |= j > after;
    (noun_alone || qualified).then_some(j)
}

/// The end of a chain of names of the sources ("the information provided in the context").
fn source_chain(words: &[Word], i: usize) -> Option<usize> {
    let mut end = source_name(words, i)?;
    while is(words, end, &["in", "from", "of", "within"]) {
        match source_name(words, end + 1) {
            Some(e) => end = e,
            None => break,
        }
    }
    Some(end)
}

/// Whether the sentence names the sources anywhere ("... in the provided documents").
fn names_sources(words: &[Word]) -> bool {
    (0..words.len()).any(|i| source_name(words, i).is_some())
}

/// The end of a frame naming the sources ("Based on the context provided,"): its opening words, a
/// name of the sources, and a comma.
fn frame(words: &[Word], i: usize) -> Option<usize> {
    FRAME_OPENERS.iter().find_map(|opener| {
        let matches = opener.iter().enumerate().all(|(k, w)| is_word(words, i + k, w));
        let end = source_chain(words, i + opener.len()).filter(|_| matches)?;
        (end > 0 && words[end - 1].comma).then_some(end)
    })
}

/// The subject of a sentence about the sources at `i`: a name of them, or (after a sentence about
/// them, `after`) a pronoun. Returns the index past it and whether it is a pronoun.
fn subject(words: &[Word], i: usize, after: bool) -> Option<(usize, bool)> {
    if after && is(words, i, &["it", "they"]) {
        return Some((i + 1, true));
    }
    source_chain(words, i).map(|e| (e, false))
}

/// Whether the words from `j` on say the subject before them lacks something ("does not mention",
/// "makes no mention of", "lacks", "is silent on", "fails to say").
fn says_lack(words: &[Word], j: usize) -> bool {
    let k = if is(words, j, NEGATED) {
        Some(j + 1)
    } else if is(words, j, AUXILIARIES) && is_word(words, j + 1, "not") {
        Some(j + 2)
    } else if is_word(words, j, "fails") && is_word(words, j + 1, "to") {
        Some(j + 2)
    } else {
        None
    };
    if let Some(k) = k {
        let k = past_adverbs(words, k);
        return is(words, k, SAY_VERBS) || is(words, k, NOT_SAID) || is(words, k, &["any", "anything", "a"]);
    }
    is(words, j, &["lacks", "lack", "omits", "omit"])
        || is(words, j, &["makes", "has", "have", "contains", "contain", "provides", "provide", "gives", "give", "offers", "includes", "include", "says", "mentions", "holds"])
            && is(words, j + 1, &["no", "nothing"])
        || is(words, j, &["is", "are"]) && is_word(words, j + 1, "silent")
}

/// Whether a sentence says that something is missing, wherever its subject is ("it is not explicitly
/// stated whether ...", "X is not mentioned in the context", "there is no information on ...", "no
/// details are provided", "I could not find it in the documents"). `sources`: whether the sentence
/// names the sources (or opens with a frame naming them).
fn states_absence(words: &[Word], start: usize, sources: bool) -> bool {
    const WH: &[&str] = &["whether", "if", "what", "which", "who", "when", "where", "why", "how"];
    for i in start..words.len() {
        // "(it|X) is not (explicitly) stated/mentioned/clear ..."
        if is(words, i, &["is", "are", "was", "were"]) && is_word(words, i + 1, "not") || is(words, i, &["isn't", "aren't", "wasn't", "weren't"]) {
            let k = past_adverbs(words, i + if is_word(words, i + 1, "not") { 2 } else { 1 });
            let it = i > start && is_word(words, i - 1, "it");
            if is(words, k, NOT_SAID) || it && is(words, k, NOT_SETTLED) {
                if sources || it && (is(words, k + 1, WH) || is(words, k + 1, &["in", "from"])) {
                    return true;
                }
            }
        }
        // "there is no (clear) information on ..."
        if is_word(words, i, "there") && is(words, i + 1, &["is", "are", "was", "were", "seems", "appears"]) {
            let mut k = i + 2;
            if is(words, k, &["to", "be"]) {
                k += if is_word(words, k, "to") { 2 } else { 1 };
            }
            if is_word(words, k, "no") {
                k += 1;
                while is(words, k, MISSING_ADJECTIVES) {
                    k += 1;
                }
                if is(words, k, MISSING) && sources {
                    return true;
                }
            }
        }
        // "no (specific) details are provided"
        if is_word(words, i, "no") && (i == start || !is(words, i - 1, &["is", "are", "has", "have"])) {
            let mut k = i + 1;
            while is(words, k, MISSING_ADJECTIVES) {
                k += 1;
            }
            if is(words, k, MISSING) && is(words, k + 1, &["is", "are", "was", "were"]) && is(words, k + 2, NOT_SAID) {
                return true;
            }
        }
        // "I could not find (any) information ..." / "I cannot determine ..."
        if is(words, i, &["i", "we"]) && i <= start + 1 {
            let k = if is(words, i + 1, NEGATED) {
                i + 2
            } else if is(words, i + 1, AUXILIARIES) && is_word(words, i + 2, "not") {
                i + 3
            } else {
                continue;
            };
            let k = past_adverbs(words, k);
            if is(words, k, &["find", "see", "locate", "determine", "confirm", "tell", "identify", "answer", "verify"]) {
                return true;
            }
        }
    }
    false
}

/// Whether `sentence` speaks of the sources rather than the world, and how; `after`: whether the
/// sentence before it in the output did (so that "It also explains ..." follows "The context
/// explains ...").
pub fn about_sources(sentence: &str, after: bool) -> Option<About> {
    let words = words_of(sentence);
    let mut i = past_openers(&words, 0);
    let framed = frame(&words, i);
    if let Some(end) = framed {
        i = past_openers(&words, end);
    }
    if states_absence(&words, i, framed.is_some() || names_sources(&words)) {
        return Some(About::Lacks);
    }
    let (j, pronoun) = subject(&words, i, after)?;
    let j = past_adverbs(&words, j);
    if says_lack(&words, j) {
        return Some(About::Lacks);
    }
    // "The document states that X" is X, framed: a claim.
    if is(&words, j, REPORT_VERBS) && is_word(&words, j + 1, "that") {
        return None;
    }
    // A pronoun after a sentence about the sources describes them with a verb of describing; "It
    // is 330 m tall" speaks of the world.
    let copula = is(&words, j, DESCRIBE_COPULAS) && {
        let k = if is_word(&words, j + 1, "to") && is_word(&words, j + 2, "be") { j + 3 } else { j + 1 };
        is(&words, k, DESCRIBED_AS)
    };
    (is(&words, j, DESCRIBE_VERBS) || !pronoun && copula).then_some(About::Describes)
}

/// [`about_sources`] of each sentence of an output, in order, each read knowing whether the one
/// before it spoke of the sources.
pub fn in_order<'s>(sentences: impl IntoIterator<Item = &'s str>) -> Vec<Option<About>> {
    let mut after = false;
    sentences
        .into_iter()
        .map(|s| {
            let about = about_sources(s, after);
            after = about.is_some();
            about
        })
        .collect()
}

/// A claim framed by its source, without the frame: "According to the context, refunds take 30
/// days." -> "Refunds take 30 days."; "The document states that refunds take 30 days." -> "Refunds
/// take 30 days." `None` when the sentence has no such frame, or what follows it is too short to
/// be a claim (three words).
pub fn framed_claim(sentence: &str) -> Option<String> {
    let words = words_of(sentence);
    let i = past_openers(&words, 0);
    let rest_from = if let Some(end) = frame(&words, i) {
        end
    } else {
        let (j, _) = subject(&words, i, false)?;
        let j = past_adverbs(&words, j);
        (is(&words, j, REPORT_VERBS) && is_word(&words, j + 1, "that")).then_some(j + 2)?
    };
    if words.len() < rest_from + 3 {
        return None;
    }
    let rest = sentence[words[rest_from].range.start..].trim();
    let mut chars = rest.chars();
    let first = chars.next()?;
    Some(first.to_uppercase().chain(chars).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_saying_the_sources_lack_something_are_abstentions() {
        for s in [
            "CLOUD_PROVIDER_LAUNCH_FAILURE is not explicitly mentioned in the context.",
            "Based on the context, it is not explicitly stated whether the Unity Catalog metastore is in the data plane or not.",
            "Based on the context, there is no clear information on whether Unity Catalog works with Informatica.",
            "However, it does not provide information on whether a given set of settings is required.",
            "The provided context does not mention the refund period.",
            "The documents don't say how long shipping takes.",
            "The context makes no mention of Graviton instances.",
            "I could not find any information about the warranty in the documents.",
            "It is not clear whether the policy applies to contractors.",
            "The passage is silent on the matter of fees.",
            "No specific details are provided about the pricing.",
            "The information provided does not specify the deadline.",
            "The context you provided doesn't cover altering a table.",
        ] {
            assert_eq!(about_sources(s, s.starts_with("However")), Some(About::Lacks), "{s}");
        }
    }

    #[test]
    fn sentences_describing_the_sources_are_found() {
        assert_eq!(about_sources("The context explains how to configure audit logging in Databricks.", false), Some(About::Describes));
        assert_eq!(about_sources("It also explains how to enable verbose audit logs.", true), Some(About::Describes));
        assert_eq!(about_sources("The context you provided is about the DataType class in PySpark.", false), Some(About::Describes));
        assert_eq!(
            about_sources("Based on the context provided, the document explains how to read data from Snowflake.", false),
            Some(About::Describes)
        );
        assert_eq!(about_sources("These passages cover the history of the company.", false), Some(About::Describes));
    }

    #[test]
    fn claims_about_the_world_are_not_about_the_sources() {
        for (s, after) in [
            ("The refund period is 30 days.", false),
            ("The text message was sent on Monday.", false),
            ("The article was published in 2019.", false),
            ("The source of the Nile is Lake Victoria.", false),
            ("The source of the Nile is not mentioned in the Bible.", false),
            ("There is no evidence that vaccines cause autism.", false),
            ("The document was signed in 1776.", false),
            ("Article 5 provides for freedom of speech.", false),
            ("It is 330 metres tall.", true),
            ("It is not possible to refund a gift card.", false),
            ("The company is not mentioned in the Fortune 500 list.", false),
            ("According to the context, refunds take 30 days.", false),
            ("The document states that refunds take 30 days.", false),
            ("Employees do not need to notify HR.", false),
            ("There is no fee for the first transfer.", false),
            ("However, there is no mention of NATO standard ZIPPOs in the context of naval warfare.", false),
            ("There is no information about his whereabouts after 1945.", false),
            ("No refunds are given after 30 days.", false),
            ("They do not offer refunds.", false),
        ] {
            assert_eq!(about_sources(s, after), None, "{s}");
        }
    }

    #[test]
    fn a_frame_naming_the_sources_is_read_off_the_claim() {
        assert_eq!(framed_claim("According to the context, refunds take 30 days.").as_deref(), Some("Refunds take 30 days."));
        assert_eq!(framed_claim("Based on the information provided in the documents, the fee is $5.").as_deref(), Some("The fee is $5."));
        assert_eq!(framed_claim("The document states that refunds take 30 days.").as_deref(), Some("Refunds take 30 days."));
        assert_eq!(framed_claim("However, the passage also notes that the fee is waived.").as_deref(), Some("The fee is waived."));
        assert_eq!(framed_claim("According to Smith, refunds take 30 days."), None, "a person is no source named here");
        assert_eq!(framed_claim("In the context of tax law, deductions are limited."), None, "no comma after the name");
        assert_eq!(framed_claim("The refund period is 30 days."), None);
        assert_eq!(framed_claim("According to the context, yes."), None, "too short to be a claim");
    }
}
