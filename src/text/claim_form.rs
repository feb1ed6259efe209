//! The form in which a claim is graded: what an NLI model is asked about an answer.
//!
//! An NLI model checks a hypothesis against a premise; a bare answer is no hypothesis. "Los Angeles,
//! California" or "yes" states nothing without the question it answers, and a model asked about it
//! alone answers about the words, whatever the question was. So:
//!
//! - an answer too short to stand on its own ([`is_bare`]: at most [`BARE_WORDS`] words, or a fragment
//!   the sentence splitter does not call a claim) is graded together with its question, as
//!   "question answer" ([`with_question`]), where the case has one ([`question_of`]);
//! - a leading answer particle ("Yes, ...", "No, ...") is read off a claim that stands without it
//!   ([`strip_particle`]): "Yes, purchases can be refunded within 30 days" is graded as "purchases can
//!   be refunded within 30 days", which the policy it copies entails word for word;
//! - a bare "yes" or "no" to a yes/no question ([`polar_answer`], [`is_polar_question`]) is graded
//!   against the opposite answer: read with the question both ways, it is supported only as far as
//!   the sources favour it over its opposite ([`opposite_answer`]). The question-and-answer form
//!   alone cannot tell them apart: the default model gave "yes" and "no" to the same question the
//!   same high P(entailment), so both passed;
//! - a claim negated at an auxiliary ("you do not need to notify HR") is weighed against its
//!   affirmative ([`Form::AgainstAffirmative`]): a small NLI model reads past a "not";
//! - an output that claims nothing ([`claims_nothing`]: an abstention such as "I don't know", a bare
//!   "yes" with no question to carry it, punctuation or emoji, a placeholder such as `<EMPTY
//!   MESSAGE>`) or only restates its question ([`restates_question`]) is never graded as supported.
//!
//! What was graded is reported beside each claim, so a reader sees the form the model read.

/// Answers of at most this many words are graded with their question.
pub const BARE_WORDS: usize = 4;

/// A question of more than this many words is not prefixed to an answer (it would crowd the model's
/// window); the answer is then graded as it stands.
pub const MAX_QUESTION_WORDS: usize = 64;

/// Answer particles read off the front of a claim, compared lower-case.
const PARTICLES: &[&str] = &[
    "yes", "no", "yeah", "yep", "nope", "sure", "correct", "indeed", "absolutely", "certainly", "right", "true", "false",
    "incorrect", "definitely",
];

/// Openings of an output that declines to answer, compared lower-case with straight apostrophes.
const ABSTENTIONS: &[&str] = &[
    "i don't know",
    "i do not know",
    "i dont know",
    "i'm not sure",
    "i am not sure",
    "i'm unsure",
    "i cannot answer",
    "i can't answer",
    "i can not answer",
    "i cannot say",
    "i can't say",
    "i have no information",
    "i don't have information",
    "i do not have information",
    "i don't have enough information",
    "i do not have enough information",
    "i don't have that information",
    "i'm unable to answer",
    "i am unable to answer",
    "no answer",
    "not sure",
    "unknown",
    "n/a",
    "no comment",
    "cannot be determined",
    "it is not possible to determine",
    "there is not enough information",
    "there isn't enough information",
    "the context does not say",
    "the context doesn't say",
    "the provided context does not",
    "the documents do not say",
];

fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace().filter(|w| w.chars().any(char::is_alphanumeric))
}

/// Lower-case with curly apostrophes straightened.
fn folded(text: &str) -> String {
    text.trim().to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
}

/// The words of a folded text without the punctuation around them ("Yes," → "yes", "isn't." →
/// "isn't").
fn bare_words(folded: &str) -> Vec<String> {
    words(folded).map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()).to_string()).collect()
}

/// The first word of a text, folded, without the punctuation around it: what a question opens with.
fn opening_word(text: &str) -> Option<String> {
    text.split_whitespace().next().map(|w| folded(w).trim_matches(|c: char| !c.is_alphabetic()).to_string())
}

/// Whether `answer` is too short to be a claim on its own: at most [`BARE_WORDS`] words, or a
/// sentence `is_claim` rejected (a fragment).
pub fn is_bare(answer: &str, is_claim: bool) -> bool {
    !is_claim || words(answer).count() <= BARE_WORDS
}

/// Particles that answer "no"; every other particle answers "yes".
const NO_PARTICLES: &[&str] = &["no", "nope", "false", "incorrect"];

/// Words that may follow a particle in a bare polar answer ("Yes, it is.", "No, they didn't."):
/// pronouns, auxiliaries and "not", compared lower-case with straight apostrophes.
const ECHO_WORDS: &[&str] = &[
    "it", "he", "she", "they", "we", "i", "you", "there", "that", "this", "is", "are", "was", "were", "am", "do", "does", "did",
    "can", "could", "will", "would", "should", "shall", "has", "have", "had", "may", "might", "must", "not", "isn't", "aren't",
    "wasn't", "weren't", "don't", "doesn't", "didn't", "can't", "cannot", "couldn't", "won't", "wouldn't", "shouldn't",
    "hasn't", "haven't", "hadn't", "it's", "they're", "both", "so",
];

/// Auxiliary verbs that open a yes/no question ("Is ...?", "Did ...?", "Can ...?").
const POLAR_OPENERS: &[&str] = &[
    "is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "will", "would", "should", "shall", "has", "have",
    "had", "may", "might", "must", "isn't", "aren't", "wasn't", "weren't", "don't", "doesn't", "didn't", "can't", "won't",
];

/// The answer a bare polar output gives: `Some(true)` for "yes" ("Yes.", "yes, it is", "Correct!"),
/// `Some(false)` for "no" ("No, they didn't."): an answer particle followed by at most three words
/// that only echo the question (pronouns, auxiliaries, "not"). `None` for anything that says more.
pub fn polar_answer(answer: &str) -> Option<bool> {
    let t = folded(answer);
    let bare = bare_words(&t);
    let (first, rest) = bare.split_first()?;
    if !is_particle(first) || rest.len() > 3 || !rest.iter().all(|w| ECHO_WORDS.contains(&w.as_str()) || is_particle(w)) {
        return None;
    }
    Some(!NO_PARTICLES.contains(&first.as_str()))
}

/// The question words ("Which is older, X or Y?").
const WH: &[&str] = &["who", "whom", "whose", "what", "which", "when", "where", "why", "how"];

/// Whether `question` asks yes or no: it, or its last sentence ("Here is my order. Can I get a
/// refund?"), opens with an auxiliary verb ("Is ...", "Did ...") or is a question that opens with
/// no question word ("X and Y, are both genera of plants?"; "Which is older, X or Y?" is not).
pub fn is_polar_question(question: &str) -> bool {
    let q = question.trim();
    let last = super::sentences::split_sentences(q).last().map_or(q, |r| q[r.clone()].trim());
    [q, last].iter().any(|s| match opening_word(s) {
        Some(w) => POLAR_OPENERS.contains(&w.as_str()) || (s.trim_end().ends_with('?') && !WH.contains(&w.as_str())),
        None => false,
    })
}

/// The two answers a polar output is weighed between: "yes" and "no", its own first.
pub fn opposite_answer(yes: bool) -> (&'static str, &'static str) {
    if yes { ("yes", "no") } else { ("no", "yes") }
}

/// Whether `particle` (a whole word, lower-case) is an answer particle.
fn is_particle(word: &str) -> bool {
    PARTICLES.contains(&word)
}

/// The answer a text opens with: `Some(true)` for "yes" and `Some(false)` for "no" where it is a
/// bare polar answer ([`polar_answer`]) or opens with an answer particle followed by a comma, full
/// stop, dash, semicolon or exclamation mark ("No, Canberra is the capital."); `None` otherwise
/// ("No one may enter." opens with no answer).
pub fn answer_polarity(text: &str) -> Option<bool> {
    if let Some(p) = polar_answer(text) {
        return Some(p);
    }
    let t = folded(text);
    let end = t.find(|c: char| !c.is_alphabetic()).unwrap_or(t.len());
    let first = &t[..end];
    let after = &t[end..];
    let marked = after.starts_with([',', '.', '!', ';']) || after.trim_start().starts_with(['—', '–', '-']);
    (end > 0 && is_particle(first) && marked).then(|| !NO_PARTICLES.contains(&first))
}

/// The claim without a leading answer particle, when one stands before a comma, full stop, dash or
/// exclamation mark and a claim of at least three words follows it: "Yes, refunds are accepted." →
/// "refunds are accepted." `None` when there is no such particle.
pub fn strip_particle(claim: &str) -> Option<&str> {
    let t = claim.trim_start();
    let end = t.find(|c: char| !c.is_alphabetic()).unwrap_or(t.len());
    if end == 0 || !is_particle(&t[..end].to_lowercase()) {
        return None;
    }
    let rest = &t[end..];
    let rest = rest.strip_prefix([',', '.', '!', ';', '—', '–', '-'])?.trim_start();
    // "Yes, it is." echoes the question; nothing stands behind the particle.
    (words(rest).count() >= 3 && polar_answer(t).is_none()).then_some(rest)
}

/// The question a case's `input` asks, for grading short answers with it: the input itself when it
/// is one short question, else its last sentence when that is a question; `None` when the input
/// asks nothing (an instruction) or is too long to prefix.
pub fn question_of(input: &str) -> Option<&str> {
    let input = input.trim();
    if input.is_empty() {
        return None;
    }
    let last = super::sentences::split_sentences(input).last().map_or(input, |r| &input[r.clone()]).trim();
    let q = if words(input).count() <= MAX_QUESTION_WORDS && looks_like_question(input) { input } else { last };
    (looks_like_question(q) && words(q).count() <= MAX_QUESTION_WORDS).then_some(q)
}

/// Whether `text` reads as a question: it ends with a question mark or opens with a question word.
fn looks_like_question(text: &str) -> bool {
    const OPENERS: &[&str] = &[
        "who", "whom", "whose", "what", "which", "when", "where", "why", "how", "is", "are", "was", "were", "do", "does",
        "did", "can", "could", "will", "would", "should", "shall", "has", "have", "had", "may", "might", "must", "name",
        "list", "tell",
    ];
    let t = text.trim_end();
    t.ends_with('?') || opening_word(t).is_some_and(|w| OPENERS.contains(&w.as_str()))
}

/// The hypothesis for a bare answer with its question: "question answer", the question closed with a
/// question mark, the answer without a closing full stop ("Canberra." and "Canberra" are one answer;
/// the model read the first at 0.26 and the second at 0.99 after the same question).
pub fn with_question(question: &str, answer: &str) -> String {
    let q = question.trim();
    let sep = if q.ends_with(['?', '.', '!', ':']) { " " } else { "? " };
    let a = answer.trim();
    let a = a.strip_suffix('.').filter(|r| !r.ends_with('.') && !r.is_empty()).unwrap_or(a);
    format!("{q}{sep}{a}")
}

/// How a claim is read ([`read`]), where it is not read as written; results carry it as
/// `graded.form`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// A bare answer ("Los Angeles") read with its question: "Where is it based? Los Angeles".
    WithQuestion,
    /// A claim read without its leading answer particle: "Yes, refunds ..." as "refunds ...".
    ParticleRemoved,
    /// A bare "yes" or "no" to a yes/no question, read with the question and weighed against the
    /// opposite answer: its score is P(entailment) of "question yes" less that of "question no" (or
    /// the reverse), so "yes" and "no" to one question are never both supported.
    AgainstOpposite,
    /// A claim negated at an auxiliary verb, weighed against the same claim without its "not": its
    /// score is P(entailment) as read, unless the sources favour the affirmative more, and then at
    /// most 1 less the affirmative's (a model that reads past the "not" cannot pass both).
    AgainstAffirmative,
    /// A claim read without its emoji and pictographic symbols: "Einstein was born in Ulm 🎉🇩🇪."
    /// as "Einstein was born in Ulm." (an NLI model trained on plain text scores the decorated
    /// claim 0.14 and the plain one 0.93 against the same source).
    SymbolsRemoved,
    /// A claim read without its markdown: "By default, [Session State](https://docs.x.io/state)
    /// keeps `st.session_state` values." as "By default, Session State keeps st.session_state
    /// values." (links to their text, code spans to their code, escapes and emphasis marks off, a
    /// list or quote marker off): what a model trained on plain sentences reads.
    MarkupRemoved,
    /// A claim read without the frame naming its source: "According to the context, refunds take
    /// 30 days." or "The document states that refunds take 30 days." as "Refunds take 30 days."
    /// ([`super::about_sources::framed_claim`]): the sources are asked about the claim, not about
    /// themselves.
    SourceFrameRemoved,
    /// A claim a question carries, read without the question: "The movie was directed by Ben
    /// Affleck, would you like to know more?" as "The movie was directed by Ben Affleck.", and "Did
    /// you know that Under the Dome is a romance novel?" as "Under the Dome is a romance novel."
    /// ([`asserted_in_question`]). A chat answer states its facts this way, and a question mark
    /// must not hide them from the grader.
    QuestionRemoved,
    /// A claim with its lengths of time written as its sources write them: "The warranty lasts 2
    /// years." against "a warranty of 24 months" as "The warranty lasts 24 months."
    /// ([`super::specifics::Lengths::in_source_units`]; a small NLI model does not convert units).
    /// Only where no other form applies; another form's graded text shows the same rewriting.
    UnitsAsInSources,
    /// A fenced code block, not read by the NLI model: its lines are looked up in the sources
    /// ([`super::code`]), and its score is the share of its words on lines found there.
    Code,
}

/// Emoji, pictographs and the characters that join or modify them (flags, skin tones, variation
/// selectors, zero-width joiners, keycaps, tags).
fn is_pictograph(c: char) -> bool {
    matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0xFE00..=0xFE0F | 0x200D | 0x20E3 | 0xE0020..=0xE007F)
}

/// The text without its emoji and pictographs, the spaces they leave tidied ("Ulm 🎉." -> "Ulm."),
/// when it has any and keeps a letter or digit; `None` otherwise.
pub fn without_pictographs(text: &str) -> Option<String> {
    if !text.chars().any(is_pictograph) {
        return None;
    }
    let kept: String = text.chars().filter(|&c| !is_pictograph(c)).collect();
    let mut out = String::with_capacity(kept.len());
    for word in kept.split_whitespace() {
        let glued = word.chars().all(|c| matches!(c, '.' | ',' | '!' | '?' | ';' | ':' | ')'));
        if !out.is_empty() && !glued {
            out.push(' ');
        }
        out.push_str(word);
    }
    out.chars().any(char::is_alphanumeric).then_some(out)
}

/// The text without its markdown, where it has any and keeps a letter or digit; `None` otherwise:
/// a link or image as its text (`[Session State](https://...)` -> `Session State`), an inline code
/// span as its code, a backslash escape as the character (`plotly\_chart` -> `plotly_chart`),
/// `*` and `**` emphasis marks off, and a leading list, quote or heading marker off. An
/// autolink (`<https://x.io>`) keeps its address, which is what it says.
pub fn without_markup(text: &str) -> Option<String> {
    let t = text.trim();
    // A leading marker: "- ", "* ", "+ ", "> ", "1. ", "2) ", "## ".
    let digits = t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let lead = if let Some(rest) = t.strip_prefix(['-', '*', '+', '>', '•']).filter(|r| r.starts_with(' ')) {
        t.len() - rest.len() + 1
    } else if digits > 0 && digits <= 3 && t[digits..].starts_with(['.', ')']) && t[digits + 1..].starts_with(' ') {
        digits + 2
    } else if t.starts_with('#') {
        let hashes = t.len() - t.trim_start_matches('#').len();
        if t[hashes..].starts_with(' ') { hashes + 1 } else { 0 }
    } else {
        0
    };
    let body = &t[lead..];
    let chars: Vec<char> = body.chars().collect();
    let mut out = String::with_capacity(body.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            // An escaped character is itself, and no markup: `\*\*kwargs` is `**kwargs`.
            '\\' if chars.get(i + 1).is_some_and(|n| n.is_ascii_punctuation()) => {
                out.push(chars[i + 1]);
                i += 2;
            }
            // [text](target) and ![alt](target): the text.
            '[' | '!' => {
                let open = if c == '!' { i + 1 } else { i };
                let link = (chars.get(open) == Some(&'['))
                    .then(|| chars[open + 1..].iter().position(|&x| x == ']').map(|p| open + 1 + p))
                    .flatten()
                    .filter(|&close| chars.get(close + 1) == Some(&'('))
                    .and_then(|close| target_end(&chars, close + 2).map(|end| (close, end)))
                    .filter(|&(close, end)| !chars[close + 2..end].iter().any(|c| c.is_whitespace()));
                match link {
                    Some((close, end)) => {
                        out.extend(without_markup(&chars[open + 1..close].iter().collect::<String>()).map_or_else(
                            || chars[open + 1..close].iter().collect::<String>(),
                            |inner| inner,
                        ).chars());
                        i = end + 1;
                    }
                    None => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            // Runs of backticks stay: FEVER's text writes quotes as `` and ''.
            '`' if chars.get(i + 1) == Some(&'`') => {
                let run = chars[i..].iter().take_while(|&&x| x == '`').count();
                out.extend(&chars[i..i + run]);
                i += run;
            }
            // A code span: its code, as written.
            '`' => match chars[i + 1..].iter().position(|&x| x == '`') {
                Some(p) if p > 0 => {
                    out.extend(&chars[i + 1..i + 1 + p]);
                    i += p + 2;
                }
                _ => {
                    out.push(c);
                    i += 1;
                }
            },
            // Emphasis: a run of `*` that opens or closes a word (on one side only: `5*3` and
            // `2 * 3` keep theirs). Underscores stay: `__init__` and `snake_case` are names.
            '*' => {
                let run = chars[i..].iter().take_while(|&&x| x == '*').count();
                let opens = chars.get(i + run).is_some_and(|&n| n.is_alphanumeric() || matches!(n, '[' | '(' | '`' | '"' | '\''));
                let closes = i.checked_sub(1).and_then(|b| chars.get(b)).is_some_and(|b| !b.is_whitespace());
                if opens != closes {
                    i += run;
                } else {
                    out.extend(&chars[i..i + run]);
                    i += run;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    (out != t && out.chars().any(char::is_alphanumeric)).then_some(out)
}

/// The index of the ")" that closes a link target starting at `from`, past any parentheses the
/// address holds (`https://en.wikipedia.org/wiki/Mercury_(planet)`).
fn target_end(chars: &[char], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &c) in chars.iter().enumerate().skip(from) {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some(i),
            ')' => depth -= 1,
            _ => {}
        }
    }
    None
}

/// What an NLI model reads for a claim: the hypothesis, the opposite answer's hypothesis (for a
/// bare "yes" or "no"), and the form, where it is not the claim as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// The hypothesis.
    pub hypothesis: String,
    /// For [`Form::AgainstOpposite`]: the question with the opposite answer.
    pub opposite: Option<String>,
    /// How the hypothesis was made; `None` when it is the claim as written.
    pub form: Option<Form>,
}

/// How the grader reads a claim (`text`; `is_claim`: whether the sentence splitter calls it a
/// claim) given the question the case asks: a bare "yes" or "no" to a yes/no question with its
/// question and against the opposite answer, another bare answer with its question, a claim
/// without its leading answer particle, a fenced code block as code (looked up, not read), or as
/// it stands. The trainer reads labelled answers the
/// same way (`train::data`'s `questions` key), so that a model learns the form it is asked.
pub fn read(text: &str, is_claim: bool, question: Option<&str>) -> Reading {
    if super::code::is_fenced(text) {
        return Reading { hypothesis: text.to_string(), opposite: None, form: Some(Form::Code) };
    }
    // Markdown and emoji first: the forms below read the words, and a claim the model reads has
    // neither. Once: what an escape gave (`\*\*kwargs` -> `**kwargs`) is text, not markup.
    if let Some(plain) = without_markup(text) {
        let mut r = read_plain(&plain, is_claim, question);
        if r.form.is_none() {
            r.form = Some(Form::MarkupRemoved);
        }
        return r;
    }
    read_plain(text, is_claim, question)
}

/// [`read`] for a claim without markdown.
fn read_plain(text: &str, is_claim: bool, question: Option<&str>) -> Reading {
    if let Some(plain) = without_pictographs(text) {
        let mut r = read_plain(&plain, is_claim, question);
        if r.form.is_none() {
            r.form = Some(Form::SymbolsRemoved);
        }
        return r;
    }
    if let Some(claim) = asserted_in_question(text) {
        let mut r = read_plain(&claim, true, question);
        if r.form.is_none() {
            r.form = Some(Form::QuestionRemoved);
        }
        return r;
    }
    if let Some(claim) = super::about_sources::framed_claim(text) {
        let mut r = read_plain(&claim, is_claim, question);
        if r.form.is_none() {
            r.form = Some(Form::SourceFrameRemoved);
        }
        return r;
    }
    // A polar answer first: "No, it is not." says only "no" ("it is not." read alone would claim
    // nothing the sources could check).
    if let (Some(q), Some(yes)) = (question.filter(|q| is_polar_question(q)), polar_answer(text)) {
        let (own, other) = opposite_answer(yes);
        return Reading { hypothesis: with_question(q, own), opposite: Some(with_question(q, other)), form: Some(Form::AgainstOpposite) };
    }
    if let Some(rest) = strip_particle(text) {
        return against_affirmative(Reading { hypothesis: rest.to_string(), opposite: None, form: Some(Form::ParticleRemoved) });
    }
    match question.filter(|_| is_bare(text, is_claim)) {
        Some(q) => Reading { hypothesis: with_question(q, text), opposite: None, form: Some(Form::WithQuestion) },
        None => against_affirmative(Reading { hypothesis: text.to_string(), opposite: None, form: None }),
    }
}

/// A claim negated at an auxiliary verb ("you do not need to notify HR") weighed against the same
/// claim without its "not" ("you do need to notify HR"); any other reading as it is. A small NLI
/// model reads past a "not": the default one gave "No, you do not need to notify HR before your
/// leave starts." P(entailment) 0.71 against "Employees must notify HR at least 30 days before the
/// leave starts.". The support grader keeps such a claim supported only where the sources do not
/// favour its affirmative more.
///
/// Left as it is: a negation of what the speaker thinks, has or did ("I don't think so.", "I have
/// not seen it"), which no source speaks to, a "not" inside a title ("Boys Don't Cry"), "not ...
/// until", which says when ("did not arrive in Europe until the late 16th century"), and "not
/// only" ("not just", "not merely"), which says more. On
/// HaluEval's dialogue turns and Factcheck-GPT's claims these made up the verdicts the weighing
/// turned, wrongly.
/// Auxiliaries and adverbs that may stand between a subject and its "never" ("I have never", "we
/// would never", "I really never").
const BEFORE_NEGATION: &[&str] = &[
    "have", "has", "had", "would", "will", "should", "could", "can", "did", "do", "does", "am", "is", "are", "was", "were",
    "might", "may", "must", "shall", "really", "actually", "just", "also",
];

fn against_affirmative(reading: Reading) -> Reading {
    let h = &reading.hypothesis;
    // Only where a "not" comes off (where the claim has none, `negation` would add one), or else a
    // "never" ("are never refunded", "He never visited").
    // "cannot" is not weighed: on Factcheck-GPT's held-out claims it turned two that people marked
    // supported ("'land' cannot be found on the Sun.", 0.51 -> 0.24) and none rightly. A claim
    // that a context states but for its "cannot" is still denied (`negations` in the grader); a
    // later "not" is weighed ("They cannot swim and are not fast.").
    let negation = super::perturb::negation_past_cannot(h).filter(|n| n.removed.is_some()).or_else(|| super::perturb::without_never(h));
    let Some(super::perturb::Negation { text: affirmative, auxiliary, removed: Some(not) }) = negation else {
        return reading;
    };
    // The subject: the word before the auxiliary ("do" of "do not", "don't") or before "never",
    // past any auxiliaries ("I have never", "I've never": "I").
    let subject = h[..auxiliary]
        .split_whitespace()
        .rev()
        .map(|w| folded(w).trim_matches(|c: char| !c.is_alphabetic()).split('\'').next().unwrap_or_default().to_string())
        .find(|w| !BEFORE_NEGATION.contains(&w.as_str()));
    let speaker = subject.as_deref().is_some_and(|w| matches!(w, "i" | "we"));
    let title = h[not.start..].starts_with(|c: char| c.is_uppercase());
    // "did not arrive until 1570" says when it arrived, and "is not only free but fast" says both:
    // the "not" is no negation.
    let until = bare_words(&folded(&h[not.start..])).iter().any(|w| w == "until" || w == "till");
    let only = bare_words(&folded(&h[not.end..])).first().is_some_and(|w| matches!(w.as_str(), "only" | "just" | "merely"));
    if speaker || title || until || only {
        return reading;
    }
    Reading { hypothesis: reading.hypothesis, opposite: Some(affirmative), form: Some(Form::AgainstAffirmative) }
}

/// Whether a folded output is a placeholder an application wrote for no answer: one `<...>` or
/// `[...]` and nothing else (`<EMPTY MESSAGE>` in UpTrain's rows, `[no response]`).
fn is_placeholder(folded: &str) -> bool {
    let t = folded.trim().trim_end_matches('.');
    [('<', '>'), ('[', ']')].iter().any(|&(open, close)| {
        t.strip_prefix(open).and_then(|r| r.strip_suffix(close)).is_some_and(|inner| !inner.contains([open, close]) && !inner.trim().is_empty())
    })
}

/// Whether an output (citation markers removed) claims nothing checkable: no letter or digit, an
/// abstention, or only answer particles while no question carries them (`has_question`).
pub fn claims_nothing(output: &str, has_question: bool) -> bool {
    let t = folded(output);
    if !t.chars().any(char::is_alphanumeric) {
        return true;
    }
    let bare = bare_words(&t);
    if !has_question && !bare.is_empty() && bare.iter().all(|w| is_particle(w)) {
        return true;
    }
    if is_placeholder(&t) {
        return true;
    }
    // An abstention, alone or with a reason that asserts nothing about the sources
    // ("I don't know." / "I'm not sure, sorry.").
    // A one-word abstention ("Unknown.") must be the whole output: "Unknown soldiers fought" claims.
    ABSTENTIONS.iter().any(|a| {
        let n = words(a).count();
        t.starts_with(a) && bare.len() <= if n == 1 { 1 } else { n + 3 }
    })
}

/// Openers of a question that asks the reader something ("would you like ...", "do you ...",
/// "what about ..."): after a comma, what comes before them was stated, not asked.
fn asks_the_reader(tail: &str) -> bool {
    const AUX: &[&str] = &[
        "would", "do", "did", "have", "has", "are", "is", "was", "were", "can", "could", "will", "shall", "should", "may",
        "want",
    ];
    const WHO: &[&str] = &["you", "i", "we", "it", "there", "that", "this", "he", "she", "they"];
    let w: Vec<String> = words(tail).take(3).map(str::to_lowercase).collect();
    match w.as_slice() {
        [a, b, ..] if AUX.contains(&a.as_str()) && WHO.contains(&b.as_str()) => true,
        [a, b, ..] if (a == "what" || a == "how") && b == "about" => true,
        [a, b, ..] if matches!(a.as_str(), "isn't" | "aren't" | "don't" | "doesn't" | "wasn't" | "didn't") && WHO.contains(&b.as_str()) => true,
        [a] => matches!(a.as_str(), "right" | "correct" | "no"),
        _ => false,
    }
}

/// What a "did you know ..." question states: "Did you know that X?" and "Have you heard that X?"
/// state X; "Do you know who X?" asks.
fn known_that(question: &str) -> Option<&str> {
    const OPENERS: &[&str] = &[
        "did you know", "do you know", "did you hear", "have you heard", "were you aware", "are you aware",
        "did you realize", "did you realise",
    ];
    // Compared byte for byte, ASCII case folded: a lower-cased copy can differ in length (the
    // Kelvin sign lower-cases to "k"), and its offsets would not fit the question.
    let rest = OPENERS.iter().find_map(|o| {
        let rest = question.get(o.len()..).filter(|_| question.as_bytes()[..o.len()].eq_ignore_ascii_case(o.as_bytes()))?;
        (!rest.starts_with(char::is_alphanumeric)).then_some(rest)
    })?;
    let rest = rest.trim_start();
    let rest = rest.strip_prefix("that ").or_else(|| rest.strip_prefix("That ")).unwrap_or(rest).trim();
    let first = words(rest).next()?.to_lowercase();
    const ASKS: &[&str] = &["whether", "if", "of", "about", "anything", "any"];
    (!WH.contains(&first.as_str()) && !ASKS.contains(&first.as_str()) && words(rest).count() >= 3 && !rest.contains('?')).then_some(rest)
}

/// The claim a question sentence carries, as a sentence of its own; `None` for a question that
/// asks without stating. Two shapes, in English: a statement with a question after a comma ("It
/// stars Will Smith, do you know him?" states "It stars Will Smith."), and a question that states
/// what the reader may not know ("Did you know that he won in 2007?" states "He won in 2007.");
/// both at once ("Yes, did you know that ...?") state each part. A question that asks ("Do you like
/// Tron, or would you prefer Dune?", "Have you seen it?") carries none.
pub fn asserted_in_question(sentence: &str) -> Option<String> {
    let t = sentence.trim();
    let body = t.strip_suffix('?')?.trim_end_matches('?').trim_end();
    let sentence_of = |x: &str| {
        let x = x.trim().trim_end_matches([',', ';', ':', ' ']);
        let mut c = x.chars();
        let first = c.next()?;
        Some(format!("{}{}.", first.to_uppercase(), c.as_str()))
    };
    if let Some(stated) = known_that(body) {
        return sentence_of(stated);
    }
    // The first comma after which the reader is asked something; what comes before it is stated.
    let (head, tail) = body.char_indices().filter(|&(_, c)| c == ',').map(|(i, _)| (&body[..i], &body[i + 1..])).find(|(_, tail)| asks_the_reader(tail) || known_that(tail.trim()).is_some())?;
    let head_states = super::is_claim(head) && !head.contains('?') && !asks_the_reader(head) && known_that(head).is_none() && !starts_with_question_word(head);
    let tail_states = known_that(tail.trim());
    match (head_states, tail_states) {
        (true, Some(t)) => Some(format!("{} {}", sentence_of(head)?, sentence_of(t)?)),
        (true, None) => sentence_of(head),
        (false, Some(t)) => sentence_of(t),
        (false, None) => None,
    }
}

/// Whether a text opens as a question does ("What ...", "Do you ...").
fn starts_with_question_word(text: &str) -> bool {
    let first = words(text).next().map(str::to_lowercase).unwrap_or_default();
    WH.contains(&first.as_str()) || asks_the_reader(text)
}

/// Whether an output only restates what its case asks (`input`: a question, or a query such as
/// "shallow clone table performance"): the same content words ([`super::words::content_words`]), none
/// added and none left out. An echo answers nothing, yet an NLI model reads "What is the refund
/// period? The refund period." as entailed by any passage that names one. Not an echo: an answer to
/// a yes/no question ("Is the refund 30 days?" / "The refund is 30 days." says yes), a negation the
/// question lacks ("... have no film in common."), a choice between alternatives the question
/// offers ("A or B?" / "A is older than B."), and, where the input is no question, an output that is
/// a sentence of its own (more than [`BARE_WORDS`] words).
pub fn restates_question(output: &str, input: &str) -> bool {
    use super::words::{content_words, negated};
    let question = question_of(input);
    let q = question.unwrap_or(input.trim());
    if q.is_empty() || words(q).count() > MAX_QUESTION_WORDS || is_polar_question(q) {
        return false;
    }
    let said: std::collections::HashSet<String> = content_words(output).into_iter().collect();
    let asked: std::collections::HashSet<String> = content_words(q).into_iter().collect();
    let offers_choice = |t: &str| bare_words(&folded(t)).iter().any(|w| w == "or");
    !said.is_empty()
        && said == asked
        && (negated(q) || !negated(output))
        && (offers_choice(output) || !offers_choice(q))
        && (question.is_some() || words(output).count() <= BARE_WORDS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn questions_that_state_a_claim_are_graded_without_the_question() {
        let q = |s: &str| asserted_in_question(s);
        // HaluEval dialogue's turns, which passed as claiming nothing.
        assert_eq!(q("The movie was directed by Ben Affleck, would you like to know other films he worked on?").as_deref(), Some("The movie was directed by Ben Affleck."));
        assert_eq!(q("It stars Will Smith, do you know him?").as_deref(), Some("It stars Will Smith."));
        assert_eq!(q("Nice, do you know him?"), None, "one word before the comma states nothing");
        assert_eq!(q("Did you know that he is in a relationship with Sofia Vergara?").as_deref(), Some("He is in a relationship with Sofia Vergara."));
        assert_eq!(q("Did you know that Under the Dome was actually a romance novel set in space?").as_deref(), Some("Under the Dome was actually a romance novel set in space."));
        assert_eq!(q("No problem, do you need any other information?"), None);
        assert_eq!(q("Yes that is correct, did you know that Kate Nelligan also starred in Wolf?").as_deref(), Some("Yes that is correct. Kate Nelligan also starred in Wolf."));
        assert_eq!(q("Sure, Tron is an action movie starring Jeff Bridges, do you like action?").as_deref(), Some("Sure, Tron is an action movie starring Jeff Bridges."));
        assert_eq!(q("Jim Carrey also starred in Yes Man, have you seen this movie yet?").as_deref(), Some("Jim Carrey also starred in Yes Man."));
        // Questions that ask.
        for asks in [
            "Is there anything else I can help you with?",
            "Have you heard of The Throne of Fire or City of Glass?",
            "Do you know who directed it?",
            "Do you like Tron, or would you prefer Dune?",
            "I agree, do you like speculative fiction books?",
            "What is the refund policy, do you know?",
            "Refunds take 30 days.",
            "Did you know?",
            "\u{212a}",
            "Did you \u{212a}now that it works?",
        ] {
            assert_eq!(q(asks), None, "{asks}");
        }
        // Read as a claim with its form.
        let r = read("The movie was directed by Ben Affleck, would you like to know more?", true, None);
        assert_eq!((r.form, r.hypothesis.as_str()), (Some(Form::QuestionRemoved), "The movie was directed by Ben Affleck."));
        let s = crate::text::analyse_output("It is a drama. Did you know it was released in 2007?", &[]);
        assert!(s[1].is_claim, "a question stating a fact is a claim");
    }

    #[test]
    fn questions_on_random_text_never_panic_and_give_a_sentence() {
        use crate::text::testing::Rng;
        const PIECES: &[&str] = &[
            "did you know that ", "Did You Know ", ", would you like ", ", do you ", "? ", "?", ", ", "it ", "stars ", "Will Smith",
            "\u{212a}", "\u{130}", "日本", "🙂", " ", "that ", "right", "who ", "Have you heard that ", ",", "isn't it",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..5000 {
            let n = rng.below(12);
            let t: String = (0..n).map(|_| PIECES[rng.below(PIECES.len())]).collect();
            let t = format!("{t}?");
            if let Some(c) = asserted_in_question(&t) {
                assert!(c.ends_with('.') && c.chars().count() >= 2 && !c.contains('?'), "{t:?} -> {c:?}");
            }
            let _ = read(&t, true, Some("Is it?"));
        }
    }

    #[test]
    fn a_bare_answer_loses_its_closing_full_stop_only() {
        assert_eq!(with_question("What is the capital of Australia?", "Canberra."), "What is the capital of Australia? Canberra");
        assert_eq!(with_question("What is the capital of Australia", "Canberra"), "What is the capital of Australia? Canberra");
        assert_eq!(with_question("Who wrote it?", "J.R.R. Tolkien."), "Who wrote it? J.R.R. Tolkien");
        assert_eq!(with_question("Which one?", "etc..."), "Which one? etc...");
    }

    use super::*;

    #[test]
    fn a_placeholder_claims_nothing() {
        for o in ["<EMPTY MESSAGE>", "[no response]", " <empty>. "] {
            assert!(claims_nothing(o, true), "{o:?}");
        }
        for o in ["<b>Refunds take 30 days.</b>", "Refunds take 30 days <see policy>.", "[Refunds] take 30 days."] {
            assert!(!claims_nothing(o, true), "{o:?}");
        }
    }

    #[test]
    fn a_negated_claim_is_weighed_against_its_affirmative() {
        let r = read("No, you do not need to notify HR before your leave starts.", true, None);
        assert_eq!(r.form, Some(Form::AgainstAffirmative));
        assert_eq!(r.hypothesis, "you do not need to notify HR before your leave starts.", "the particle is still read off");
        assert_eq!(r.opposite.as_deref(), Some("you do need to notify HR before your leave starts."));
        let r = read("Refunds aren't available after 30 days.", true, None);
        assert_eq!(r.opposite.as_deref(), Some("Refunds are available after 30 days."));
        // No "not" at an auxiliary: as it stands (negate would add one).
        assert_eq!(read("Refunds are available for 30 days.", true, None).form, None);
        assert_eq!(read("Refunds come without a fee.", true, None).form, None);
        // A "never" comes off, with or without an auxiliary.
        let r = read("Refunds are never available after 30 days.", true, None);
        assert_eq!((r.form, r.opposite.as_deref()), (Some(Form::AgainstAffirmative), Some("Refunds are available after 30 days.")));
        let r = read("The company never opened an office in Ohio.", true, None);
        assert_eq!(r.opposite.as_deref(), Some("The company opened an office in Ohio."));
        let r = read("Yes, it is open daily and never closes", true, None);
        assert_eq!(r.opposite.as_deref(), Some("it is open daily and closes"), "an auxiliary without a not does not stop it");
        assert_eq!(read("I never said that.", true, None).form, None, "the speaker's own");
        for t in ["I have never heard of her.", "No I've never heard of her.", "but i never watched it", "We would never have guessed."] {
            assert_eq!(read(t, true, None).form, None, "{t:?}: the speaker's own");
        }
        assert_eq!(read("She has never starred in a film.", true, None).form, Some(Form::AgainstAffirmative));
        assert_eq!(read("Never Let Me Go is a novel by Ishiguro.", true, None).form, None, "a title");
        assert_eq!(read("She never left Paris until 1950.", true, None).form, None, "says when");
        assert_eq!(read("Nevertheless, refunds are available.", true, None).form, None, "a word, not a part of one");
        // What the speaker thinks or did, and a title, are left as they are.
        assert_eq!(read("I don't think so.", true, None).form, None);
        assert_eq!(read("No I did not but they are not doing well.", true, None).form, None);
        assert_eq!(read("We have not seen Happy Gilmore.", true, None).form, None);
        assert_eq!(read("She starred in The Core and Boys Don't Cry.", true, None).form, None);
        assert_eq!(read("It doesn't open on Sundays.", true, None).form, Some(Form::AgainstAffirmative));
        assert_eq!(read("Potatoes did not arrive in Europe until 1570.", true, None).form, None, "says when");
        assert_eq!(read("Refunds are not only free but fast.", true, None).form, None, "says both");
        assert_eq!(read("Refunds aren't just free.", true, None).form, None);
        assert_eq!(read("Refunds are not free.", true, None).form, Some(Form::AgainstAffirmative));
        assert_eq!(read("'land' cannot be found on the Sun.", true, None).form, None, "cannot is not weighed (Factcheck-GPT)");
        let r = read("Gift cards cannot be sold and are not refundable.", true, None);
        assert_eq!(r.opposite.as_deref(), Some("Gift cards cannot be sold and are refundable."), "a later not is");
        assert_eq!(read("It can not be found on the Sun.", true, None).form, Some(Form::AgainstAffirmative));
        // A bare answer read with its question keeps that form.
        assert_eq!(read("Not 30 days", false, Some("How long is the refund period?")).form, Some(Form::WithQuestion));
    }

    #[test]
    fn an_answer_that_restates_its_question_is_an_echo() {
        // ARES's human-annotated file: query and answer the same words; a person judged it unfaithful.
        assert!(restates_question("Shallow clone table performance.", "shallow clone table performance"));
        assert!(restates_question("The refund period.", "What is the refund period?"));
        assert!(restates_question("The founder of Hotcourses Group was born in 1966.", "What Hotcourses Group founder was born in 1966?"));
        assert!(restates_question("Refund policy", "Where is the refund policy?"));
        // Answers, not echoes.
        assert!(!restates_question("30 days.", "What is the refund period?"), "a word the question lacks");
        assert!(!restates_question("The refund is 30 days.", "Is the refund 30 days?"), "says yes to a yes/no question");
        assert!(!restates_question("Lawton and Levy have no film in common.", "What film do Lawton and Levy have in common?"));
        assert!(!restates_question("Tscherkassky is older than Ferrara.", "Who is older, Tscherkassky or Ferrara?"), "makes a choice");
        assert!(restates_question("Older: Tscherkassky or Ferrara.", "Who is older, Tscherkassky or Ferrara?"), "does not choose");
        assert!(!restates_question("Golf Magazine", "El Nuevo Cojo and Golf Magazine: which one is owned by Time Inc?"), "names one of two");
        assert!(!restates_question("The refund policy is 30 days.", "refund policy 30 days"), "a sentence of its own");
        assert!(!restates_question("Refunds take 30 days.", ""), "no input");
        assert!(!restates_question("...", "What is it?"), "no words at all is another rule's");
    }

    #[test]
    fn emoji_are_not_read_and_say_so() {
        let r = read("Einstein was born in Ulm 🎉🇩🇪.", true, None);
        assert_eq!((r.hypothesis.as_str(), r.form), ("Einstein was born in Ulm.", Some(Form::SymbolsRemoved)));
        let r = read("Refunds take 30 days 👍 and are free ❤️.", true, None);
        assert_eq!(r.hypothesis, "Refunds take 30 days and are free.");
        // Another form applies to the plain text; a claim without emoji is as it stands.
        let r = read("Yes 👍, refunds take 30 days.", true, None);
        assert_eq!((r.hypothesis.as_str(), r.form), ("refunds take 30 days.", Some(Form::ParticleRemoved)));
        assert_eq!(read("Refunds take 30 days.", true, None).form, None);
        assert_eq!(without_pictographs("🎉🎉"), None, "nothing left to read");
        assert_eq!(without_pictographs("Grüße aus Köln, 東京 — ok."), None, "letters of every script stay");
    }

    #[test]
    fn bare_answers_and_fragments() {
        assert!(is_bare("Los Angeles, California", true));
        assert!(is_bare("SM Entertainment", false));
        assert!(is_bare("yes", false));
        assert!(is_bare("The answer is Paris.", true));
        assert!(!is_bare("Refunds are accepted within 30 days of delivery.", true));
    }

    #[test]
    fn the_answer_a_text_opens_with() {
        assert_eq!(answer_polarity("Yes."), Some(true));
        assert_eq!(answer_polarity("no"), Some(false));
        assert_eq!(answer_polarity("No, Canberra is the capital of Australia."), Some(false));
        assert_eq!(answer_polarity("Yes - refunds are accepted within 30 days."), Some(true));
        assert_eq!(answer_polarity("No one may enter after 9 pm."), None);
        assert_eq!(answer_polarity("Canberra."), None);
    }

    #[test]
    fn particles_come_off_claims_that_stand_without_them() {
        assert_eq!(
            strip_particle("Yes, purchases can be refunded within 30 days of delivery."),
            Some("purchases can be refunded within 30 days of delivery.")
        );
        assert_eq!(strip_particle("No. Refunds end after 30 days."), Some("Refunds end after 30 days."));
        assert_eq!(strip_particle("Yes."), None, "nothing stands behind it");
        assert_eq!(strip_particle("Yes, it is."), None, "too short to stand alone");
        assert_eq!(strip_particle("Nobody can get a refund after 30 days."), None, "a word that starts like a particle");
        assert_eq!(strip_particle("Refunds are accepted."), None);
    }

    #[test]
    fn the_question_of_an_input() {
        assert_eq!(question_of("Where is the company based?"), Some("Where is the company based?"));
        assert_eq!(question_of("who founded SM Entertainment"), Some("who founded SM Entertainment"));
        assert_eq!(question_of("Here is my order. Can I get a refund?"), Some("Here is my order. Can I get a refund?"));
        assert_eq!(question_of("Summarise the article."), None, "an instruction asks nothing");
        let long = format!("{} Can I return it?", "This is background text. ".repeat(40));
        assert_eq!(question_of(&long), Some("Can I return it?"), "a long input gives its last question");
        assert_eq!(question_of(""), None);
    }

    #[test]
    fn answers_are_graded_with_their_question() {
        assert_eq!(with_question("Where is it based?", "Los Angeles."), "Where is it based? Los Angeles");
        assert_eq!(with_question("where is it based", "Los Angeles"), "where is it based? Los Angeles");
    }

    #[test]
    fn polar_answers_and_questions() {
        for (a, yes) in [("Yes.", true), ("no", false), ("No, it isn't.", false), ("Yes, they did!", true), ("Correct.", true), ("Nope", false), ("yes, it’s", true)] {
            assert_eq!(polar_answer(a), Some(yes), "{a:?}");
        }
        for a in ["Yes, refunds are accepted within 30 days.", "No refunds after 30 days.", "Paris", "Yes, it is not so clear to me", ""] {
            assert_eq!(polar_answer(a), None, "{a:?}");
        }
        assert!(is_polar_question("Is the refund window 30 days?"));
        assert!(is_polar_question("Here is my order. Can I get a refund?"));
        assert!(is_polar_question("did he win"));
        assert!(!is_polar_question("Where is the company based?"));
        assert!(!is_polar_question("Which magazine was started first?"));
        assert!(is_polar_question("Morning glory and Sorbus are both a genus of plants?"));
        assert!(!is_polar_question("Tell me who founded it"));
        assert_eq!(opposite_answer(false), ("no", "yes"));
        assert_eq!(polar_answer("False."), Some(false));
        assert_eq!(polar_answer("Yes, definitely."), Some(true));
    }

    #[test]
    fn a_polar_answer_is_read_against_its_opposite_whatever_follows_its_particle() {
        let q = Some("Is the office open on Sundays?");
        for (a, own, other) in [("No, it is not.", "no", "yes"), ("Yes, it is", "yes", "no"), ("Nope", "no", "yes")] {
            let r = read(a, true, q);
            assert_eq!(r.form, Some(Form::AgainstOpposite), "{a}");
            assert_eq!(r.hypothesis, format!("Is the office open on Sundays? {own}"));
            assert_eq!(r.opposite.as_deref(), Some(format!("Is the office open on Sundays? {other}").as_str()));
        }
        // A particle before a claim of its own: the claim is read without it.
        let r = read("No, the office is closed on Sundays.", true, q);
        assert_eq!((r.form, r.hypothesis.as_str()), (Some(Form::ParticleRemoved), "the office is closed on Sundays."));
        // No yes/no question: a bare answer with its question, or as written.
        assert_eq!(read("Paris", true, Some("Where is it?")).form, Some(Form::WithQuestion));
        assert_eq!(read("No, it is not.", true, Some("Where is it?")).form, Some(Form::WithQuestion));
        assert_eq!(read("Paris", true, None).form, None);
    }

    #[test]
    fn outputs_that_claim_nothing() {
        for o in ["I don't know.", "I don’t know.", "...", "🙂", "Yes.", "no", "I'm not sure, sorry.", "N/A", " — "] {
            assert!(claims_nothing(o, false), "{o:?}");
        }
        assert!(!claims_nothing("Yes.", true), "a question carries the answer");
        assert!(claims_nothing("I don't know.", true));
        for o in ["Paris.", "Refunds are accepted within 30 days.", "I don't know the exact date, but it was in 1879 in Ulm, Germany.", "Unknown soldiers fought there."] {
            assert!(!claims_nothing(o, false), "{o:?}");
        }
    }

    #[test]
    fn markdown_is_read_off_a_claim() {
        let cases = [
            ("By default, Streamlit's [Session State](https://docs.streamlit.io/state) keeps values.", "By default, Streamlit's Session State keeps values."),
            ("- Use `theme=None` to disable it.", "Use theme=None to disable it."),
            ("st.plotly\\_chart takes figure\\_or\\_data and \\*\\*kwargs.", "st.plotly_chart takes figure_or_data and **kwargs."),
            ("**Note:** the *theme* is on by default.", "Note: the theme is on by default."),
            ("> 3. ![A chart](img/chart.png) shows the [**theme**](https://x.io).", "3. A chart shows the theme."),
            ("## Plotly charts are themed", "Plotly charts are themed"),
            ("12) Refunds take 30 days.", "Refunds take 30 days."),
            ("• Refunds take 30 days.", "Refunds take 30 days."),
        ];
        for (text, plain) in cases {
            assert_eq!(without_markup(text).as_deref(), Some(plain), "{text:?}");
        }
        for text in [
            "Refunds take 30 days.",
            "It costs 2 * 3 = 6 dollars, or 5*3 in all.",
            "Call __init__ with snake_case names.",
            "See <https://plot.ly/python/> for examples.",
            "Brackets [like these] (and these) stay.",
            "- ",
            "•",
            "•x",
            "`x`",
            "Duane Chapman 's nickname is `` Dog . ``",
        ] {
            let got = without_markup(text);
            assert!(got.is_none() || got.as_deref() == Some("x"), "{text:?} -> {got:?}");
        }
        assert_eq!(without_markup("`x`").as_deref(), Some("x"));
        // The reading says so, and the forms below apply to the plain claim; an escape's character
        // is not read as markup again.
        let r = read("**No**, refunds are not available after 30 days.", true, None);
        assert_eq!(r.hypothesis, "refunds are not available after 30 days.");
        assert_eq!(r.form, Some(Form::AgainstAffirmative));
        let r = read("Pass any \\*\\*kwargs to Plotly.", true, None);
        assert_eq!((r.hypothesis.as_str(), r.form), ("Pass any **kwargs to Plotly.", Some(Form::MarkupRemoved)));
        // An address with parentheses leaves none behind.
        assert_eq!(
            without_markup("See [Mercury](https://en.wikipedia.org/wiki/Mercury_(planet)) for more.").as_deref(),
            Some("See Mercury for more.")
        );
    }
}
