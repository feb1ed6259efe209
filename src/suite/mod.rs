//! Reading suites: JSON Lines of cases, as `suite-format.md` defines them, with the field names of the
//! most used peer tools accepted as aliases.
//!
//! Bad lines are never dropped silently: each becomes a [`SuiteProblem`] with its line number, the
//! field at fault and the reason. The caller decides whether to go on with the rest or stop.

use std::collections::{BTreeMap, HashSet};
use std::io::BufRead;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

pub mod promptfoo;
pub mod reviewers;

/// One source passage of a case.
#[derive(Debug, Clone, PartialEq)]
pub struct Context {
    /// Its id: given, or "1", "2", ... by position.
    pub id: String,
    /// The passage.
    pub text: String,
    /// Other keys of the object (title, url, ...), kept as they are.
    pub extra: Map<String, Value>,
}

/// One case of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// 1-based line number in the suite file (in a suite written as one JSON array: the item's
    /// 1-based position).
    pub line: usize,
    /// Unique id within the suite.
    pub id: String,
    /// The user's question or prompt.
    pub input: Option<String>,
    /// The text being graded.
    pub output: String,
    /// Source passages the output must be grounded in.
    pub contexts: Vec<Context>,
    /// A gold answer.
    pub reference: Option<String>,
    /// Other outputs for the same input.
    pub samples: Vec<String>,
    /// Segment tags (key -> value).
    pub segments: BTreeMap<String, String>,
    /// A human verdict, kept as given.
    pub label: Option<Value>,
    /// Anything; carried through untouched.
    pub metadata: Option<Value>,
    /// The case's own deterministic checks (`graders::checks`), beside candor.toml's; an item that
    /// is not a check (a misspelt key, a wrong value) is kept as its error, and fails the case.
    pub checks: Vec<std::result::Result<crate::config::CheckSpec, String>>,
    /// How long the application took to answer, in milliseconds (for `max_latency_ms` checks).
    pub latency_ms: Option<f64>,
    /// What the answer cost, in the user's unit (for `max_cost` checks).
    pub cost: Option<f64>,
    /// Whether the application should have declined (`refusal = "from_case"` checks).
    pub expect_refusal: Option<bool>,
    /// sha256 (first 16 hex digits) of the case's JSON object written canonically
    /// ([`case_hash`]), so that a resumed run knows which results were made from another version of
    /// the case.
    pub input_hash: String,
    /// Top-level fields of the line that candor does not know (ignored; the reader counts them, so
    /// that a misspelt `retrieved_context` is reported instead of passing silently).
    pub unknown_fields: Vec<String>,
    /// The line had no `id`: its line number is the id.
    pub id_from_line: bool,
    /// Fields set aside because another that names the same thing takes precedence: (field, the
    /// field graded instead), e.g. DeepEval's `context` beside `retrieval_context`.
    pub shadowed: Vec<(String, String)>,
    /// Fields read under another name (`--field from=to`): the `from`s this case had.
    pub renamed: Vec<String>,
    /// Known fields written in another case or style, read under their name ((as written, as
    /// read): `Question` as `question`, `actualOutput` as `actual_output`).
    pub respelt: Vec<(String, String)>,
}

/// A line that could not be read as a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteProblem {
    /// 1-based line number.
    pub line: usize,
    /// The field at fault, if one is.
    pub field: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for SuiteProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "line {}: field `{}`: {}", self.line, field, self.reason),
            None => write!(f, "line {}: {}", self.line, self.reason),
        }
    }
}

pub(crate) const INPUT: &[&str] = &["input", "user_input", "question", "query"];
pub(crate) const OUTPUT: &[&str] = &["output", "response", "actual_output", "answer"];
/// In this order of precedence: where a case gives two, the first is graded and the other set aside.
/// TruLens's ground-truth sets name the ideal chunks `expected_chunks` and the answer `expected_response`.
pub(crate) const CONTEXTS: &[&str] = &["contexts", "retrieved_contexts", "retrieval_context", "context", "documents", "expected_chunks"];
pub(crate) const REFERENCE: &[&str] = &["reference", "expected_output", "ground_truth", "ground_truths", "expected_response"];
/// SelfCheckGPT's `predict(..., sampled_passages=...)` and its WikiBio set's `gpt3_text_samples`.
pub(crate) const SAMPLES: &[&str] = &["samples", "sampled_passages", "gpt3_text_samples"];
/// promptfoo writes `latencyMs`.
const LATENCY: &[&str] = &["latency_ms", "latencyMs"];
const COST: &[&str] = &["cost"];

/// Every top-level field name a case may carry (aliases included).
pub fn known_fields() -> Vec<&'static str> {
    let mut all: Vec<&str> = ["id", "segments", "label", "metadata", "checks", "expect_refusal"].to_vec();
    all.extend_from_slice(LATENCY);
    all.extend_from_slice(COST);
    for names in [INPUT, OUTPUT, CONTEXTS, REFERENCE, SAMPLES] {
        all.extend_from_slice(names);
    }
    all
}

/// One line on fields candor does not know: each with its count of cases and, where one is close,
/// the known field it may have meant; `None` when there are none.
pub fn describe_unknown_fields(unknown: &BTreeMap<String, usize>) -> Option<String> {
    describe_unknown(unknown, None)
}

/// [`describe_unknown_fields`] as said while a suite is read, when the fields are first seen on
/// `line`: without counts, which only the whole suite has (said again at the end, with them).
pub fn describe_unknown_fields_at(unknown: &BTreeMap<String, usize>, line: usize) -> Option<String> {
    describe_unknown(unknown, Some(line))
}

fn describe_unknown(unknown: &BTreeMap<String, usize>, first_seen: Option<usize>) -> Option<String> {
    if unknown.is_empty() {
        return None;
    }
    // promptfoo assertions candor does not run are said as such, apart from misspelt fields.
    let (asserts, fields): (BTreeMap<&String, &usize>, BTreeMap<&String, &usize>) = unknown.iter().partition(|(k, _)| k.starts_with("assert."));
    let kinds: Vec<(&str, &usize)> = asserts.iter().map(|(k, n)| (&k["assert.".len()..], *n)).collect();
    let hints: Vec<String> =
        kinds.iter().filter_map(|(kind, _)| promptfoo::measured_instead(kind).map(|h| format!("`{kind}` is {h}"))).collect();
    let count = |n: &usize| if first_seen.is_some() { String::new() } else { format!(" ({n} case(s))") };
    let asserts: Vec<String> = kinds.iter().map(|(kind, n)| format!("`{kind}`{}", count(n))).collect();
    let asserts = (!asserts.is_empty()).then(|| {
        let instead = if hints.is_empty() { String::new() } else { format!(". What candor measures instead: {}", hints.join("; ")) };
        format!("promptfoo assertion(s) candor does not run, not checked: {}{instead}", asserts.join(", "))
    });
    if fields.is_empty() {
        return asserts;
    }
    let unknown: BTreeMap<String, usize> = fields.into_iter().map(|(k, n)| (k.clone(), *n)).collect();
    let known = known_fields();
    let items: Vec<String> = unknown
        .iter()
        .map(|(name, n)| {
            if name.is_empty() {
                // pandas writes its index as a column without a header.
                return format!("a column without a name{}", count(n));
            }
            match (meant_field(name), first_seen) {
                (Some(k), None) => format!("`{name}` ({n} case(s); did you mean `{k}`?)"),
                (Some(k), Some(_)) => format!("`{name}` (did you mean `{k}`?)"),
                (None, _) => format!("`{name}`{}", count(n)),
            }
        })
        .collect();
    let fields = format!("field(s) candor does not know, not graded: {} (known: {}; keep your own data under `metadata`)", items.join(", "), known.join(", "));
    let fields = match first_seen {
        Some(line) => format!("line {line}: {fields}; how many cases have each is said at the end"),
        None => fields,
    };
    Some(match asserts {
        Some(a) => format!("{fields}; {a}"),
        None => fields,
    })
}

/// The known field an unknown one seems a misspelling of ("retreival_context" for
/// `retrieval_context`): the nearest by edit distance, within 2 or a quarter of its length.
pub fn meant_field(name: &str) -> Option<&'static str> {
    known_fields()
        .into_iter()
        .map(|k| (edit_distance(&name.to_lowercase(), k), k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

/// The fields candor does not know that may hold a case's source passages, most cases first: names
/// that say context, document, passage, source, chunk, evidence or knowledge, other than an
/// embedding, link, title, id or index of one (UpTrain's rows carry `document_text` beside
/// `document_title`, `document_link` and `context_embeddings`).
pub fn context_candidates(unknown: &BTreeMap<String, usize>) -> Vec<(&str, usize)> {
    const SAYS: &[&str] = &["context", "document", "passage", "source", "chunk", "evidence", "knowledge", "retriev"];
    const NOT: &[&str] = &[
        "embedding", "link", "url", "title", "id", "idx", "index", "name", "count", "score", "len", "label", "relevance", "rating",
        "annotated", "judgement", "judgment",
    ];
    let plural_of = |p: &str, n: &str| p == n || p.strip_suffix('s') == Some(n);
    let mut found: Vec<(&str, usize, bool)> = unknown
        .iter()
        .filter_map(|(name, n)| {
            let lower = name.to_lowercase();
            let parts: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()).collect();
            let says = SAYS.iter().any(|w| lower.contains(w)) && !parts.iter().any(|p| NOT.iter().any(|n| plural_of(p, n)));
            // A name that is one such word ("Document", "sources") before one that holds it.
            let plain = parts.len() == 1 && SAYS.iter().any(|w| plural_of(parts[0], w));
            says.then_some((name.as_str(), *n, plain))
        })
        .collect();
    found.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
    found.into_iter().map(|(name, n, _)| (name, n)).collect()
}

/// A field name in snake case, lower-case: `Question` -> `question`, `actualOutput` ->
/// `actual_output`, `Retrieved Contexts` -> `retrieved_contexts`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut prev: Option<char> = None;
    for c in name.trim().chars() {
        if c.is_uppercase() && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
            out.push('_');
        }
        match c {
            ' ' | '-' => out.push('_'),
            c => out.extend(c.to_lowercase()),
        }
        prev = Some(c);
    }
    out
}

/// The known name a field written in another case or style may stand for: its snake case
/// ([`snake_case`]), a single `document` read as `documents` (one text is a list of one).
fn known_spelling(name: &str) -> String {
    let snake = snake_case(name);
    if snake == "document" { "documents".to_string() } else { snake }
}

/// Reads the text fields of a case written in another case or style under their name (ARES's
/// `Question`, `Document` and `Answer`; camel-case exports' `actualOutput`; `Retrieved Contexts`),
/// and a single `document` as `documents` (one text is a list of one); returns (as written, as
/// read) for each. A field is read so only where the case gives no name of that field as it is
/// (`answer` beside `Response` stays the output; `Response` stays unknown, and is reported as such;
/// contexts only where that very name is not given, and then by their precedence, `CONTEXTS`)
/// and its value is of the field's kind (a text; for contexts, a list too): a `Label`, `ID` or
/// `Cost` column, or an `Input` holding an object, stays what it was, an unknown field.
fn respell(obj: &mut Map<String, Value>) -> Vec<(String, String)> {
    let known = known_fields();
    let unknown: Vec<String> = obj.keys().filter(|k| !known.contains(&k.as_str())).cloned().collect();
    let mut respelt = vec![];
    for from in unknown {
        let spelling = known_spelling(&from);
        let name = spelling.as_str();
        let Some((group, to)) = [INPUT, OUTPUT, CONTEXTS, REFERENCE].into_iter().find_map(|g| g.iter().find(|n| **n == name).map(|n| (g, *n))) else {
            continue;
        };
        let contexts = CONTEXTS.contains(&to);
        let fits = match obj.get(&from) {
            Some(Value::String(_)) => true,
            Some(Value::Array(_)) => contexts,
            _ => false,
        };
        // Contexts given twice are graded by their precedence, with a note (DeepEval's camel-case
        // `retrievalContext` beside `context` is the retrieval context, as its snake case is).
        let taken = if contexts { obj.contains_key(to) } else { group.iter().any(|n| obj.contains_key(*n)) };
        if !fits || taken {
            continue;
        }
        if let Some(v) = obj.remove(&from) {
            obj.insert(to.to_string(), v);
            respelt.push((from, to.to_string()));
        }
    }
    respelt
}

/// One line on the known fields read under their name from another case or style, or `None`.
pub fn describe_respelt(respelt: &BTreeMap<(String, String), usize>) -> Option<String> {
    if respelt.is_empty() {
        return None;
    }
    let items: Vec<String> = respelt.iter().map(|((from, to), n)| format!("`{from}` read as `{to}` in {n} case(s)")).collect();
    Some(items.join("; "))
}

/// One line per field set aside for another that takes precedence, or `None` when none was.
pub fn describe_shadowed(shadowed: &BTreeMap<(String, String), usize>) -> Option<String> {
    if shadowed.is_empty() {
        return None;
    }
    let items: Vec<String> = shadowed
        .iter()
        .map(|((field, by), n)| format!("`{field}` given beside `{by}` in {n} case(s): `{by}` is graded, `{field}` set aside"))
        .collect();
    Some(items.join("; "))
}

/// Whether `a` is within `n` edits of `b` (a likely typo of it).
pub fn within_edits(a: &str, b: &str, n: usize) -> bool {
    a.chars().count().abs_diff(b.chars().count()) <= n && edit_distance(a, b) <= n
}

/// The hint for a case with no output field whose text fields have names made of an output's
/// ("model_answer", "llm_response", "generated_output", "gpt3_text"; not "gold_answer" or
/// "expected_output", which name a reference): those fields, and the `--field` that reads one as
/// the output. Beside samples, `passage` is SelfCheckGPT's name for the text they were drawn with.
fn output_like(obj: &Map<String, Value>) -> Option<String> {
    const OUTPUT_WORDS: &[&str] =
        &["answer", "response", "output", "completion", "generation", "generated", "prediction", "reply", "gpt", "gpt3", "gpt4", "llm"];
    let has_samples = SAMPLES.iter().any(|n| obj.get(*n).is_some_and(|v| !v.is_null()));
    const REFERENCE_WORDS: &[&str] =
        &["gold", "expected", "reference", "ref", "correct", "ideal", "truth", "target", "true", "golden", "label"];
    // The words of a field name in any style ("model_answer", "llmResponse", "Model Answer").
    let words = |k: &str| -> Vec<String> { snake_case(k).split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect() };
    let found: Vec<&String> = obj
        .iter()
        .filter(|(_, v)| v.is_string())
        .map(|(k, _)| k)
        .filter(|k| {
            let w = words(k);
            (w.iter().any(|w| OUTPUT_WORDS.contains(&w.as_str()) || OUTPUT_WORDS.iter().any(|o| w.strip_suffix('s') == Some(o)))
                || (has_samples && w == ["passage"]))
                && !w.iter().any(|w| REFERENCE_WORDS.contains(&w.as_str()))
        })
        .collect();
    let first = found.first()?;
    let names = found.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
    Some(format!("; this case has {names}, text that may be the output: pass `--field {first}=output` (or rename the field)"))
}

/// The hint for a case written as a fact-checking or NLI pair (MiniCheck's and LLM-AggreFact's
/// `doc`, `claim`, `label`; FEVER-style `evidence`, `claim`; NLI's `premise`, `hypothesis`): the
/// `--field`s that read it as a case, its 0/1 label included where it has one.
fn pair_shaped(obj: &Map<String, Value>) -> Option<String> {
    const PAIRS: &[(&str, &str)] = &[("claim", "doc"), ("claim", "document"), ("claim", "evidence"), ("hypothesis", "premise")];
    let (claim, source) = PAIRS.iter().find(|(c, d)| obj.get(*c).is_some_and(Value::is_string) && obj.contains_key(*d))?;
    let label = match obj.get("label") {
        Some(Value::Number(_) | Value::Bool(_)) => " --field label=label.supported",
        _ => "",
    };
    Some(format!("; this case is a claim and its source (`{claim}`, `{source}`): pass `--field {claim}=output --field {source}=contexts{label}`"))
}

/// Levenshtein distance in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The hash of a case that results carry as `input_hash`: sha256 of the case's JSON object written
/// canonically (keys sorted at every level, no spaces), first 16 hex digits. The same case written
/// with its keys in another order, or spaced differently, has the same hash; any change of a value
/// changes it.
pub fn case_hash(case: &Map<String, Value>) -> String {
    use sha2::Digest as _;
    fn object(m: &Map<String, Value>, out: &mut Vec<u8>) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        out.push(b'{');
        for (i, k) in keys.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
            out.push(b':');
            value(&m[k], out);
        }
        out.push(b'}');
    }
    fn value(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(m) => object(m, out),
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    value(x, out);
                }
                out.push(b']');
            }
            other => out.extend_from_slice(other.to_string().as_bytes()),
        }
    }
    let mut bytes = Vec::new();
    object(case, &mut bytes);
    hex::encode(&sha2::Sha256::digest(&bytes)[..8])
}

/// Parses one suite line (without its newline). `line` is its 1-based number, for messages.
pub fn parse_case(line: usize, text: &str) -> std::result::Result<Case, SuiteProblem> {
    parse_case_with(line, text, &[])
}

/// A yes/no label cell as peers write it: a boolean, 1 or 0, or the words true/false, yes/no (any
/// case); `None` for anything else.
fn label_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(x) if x == 1.0 => Some(true),
            Some(x) if x == 0.0 => Some(false),
            _ => None,
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "1" | "1.0" | "true" | "yes" => Some(true),
            "0" | "0.0" | "false" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// A cell's value for a message: a string quoted, cut at 40 characters.
fn shown(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text,
    }
}

/// The label keys `--field COLUMN=label.KEY` may fill: one per built-in metric measured against people.
fn label_keys() -> Vec<&'static str> {
    crate::config::BUILT_IN_METRICS.iter().filter_map(|m| crate::config::label_key(m)).collect()
}

/// [`parse_case`], with each field `from` of `renames` read as the field `to` (`--field from=to`:
/// Phoenix's eval frames name the retrieved context `reference`). The case's hash is taken after
/// the renaming, so that another mapping of the same file is another case.
pub fn parse_case_with(line: usize, text: &str, renames: &[(String, String)]) -> std::result::Result<Case, SuiteProblem> {
    let problem = |field: Option<&str>, reason: String| SuiteProblem { line, field: field.map(str::to_string), reason };
    let value: TopLevel = serde_json::from_str(text).map_err(|e| problem(None, format!("not valid JSON: {e}")))?;
    let mut obj = match value {
        TopLevel::Object(entries) => {
            // serde_json keeps the last of repeated keys: a repeated field would lose data silently.
            let mut obj = Map::new();
            for (k, v) in entries {
                if obj.contains_key(&k) {
                    return Err(problem(Some(&k), "appears twice in this case; give it once".into()));
                }
                obj.insert(k, v);
            }
            obj
        }
        TopLevel::Other => return Err(problem(None, "a case must be a JSON object".into())),
    };
    // All at once: `a=b b=c` moves a to b and b to c, not a to c.
    let mut renamed = vec![];
    let mut moved = vec![];
    for (from, to) in renames {
        if let Some(v) = obj.remove(from) {
            renamed.push(from.clone());
            moved.push((from, to, v));
        }
    }
    for (from, to, v) in moved {
        // `--field COLUMN=label.supported`: a peer's 1/0 (or true/false, yes/no) label column read
        // as one key of the case's `label` (ARES's `Answer_Faithfulness_Label`).
        if let Some(key) = to.strip_prefix("label.") {
            let Some(yes) = label_bool(&v) else {
                return Err(problem(Some(from), format!("`--field {from}={to}` reads `{from}` as a yes/no label: 1 or 0, true or false, yes or no, not {}", shown(&v))));
            };
            let label = obj.entry("label").or_insert_with(|| Value::Object(Map::new()));
            if label.is_null() {
                *label = Value::Object(Map::new());
            }
            match label.as_object_mut() {
                Some(l) if !l.contains_key(key) => {
                    l.insert(key.to_string(), Value::Bool(yes));
                }
                _ => return Err(problem(Some(from), format!("`--field {from}={to}` reads `{from}` as `{to}`, and this case has a `{to}` of its own"))),
            }
            continue;
        }
        // A `to` given as null is absent (peers export unset fields as null).
        if obj.get(to).is_some_and(|x| !x.is_null()) {
            return Err(problem(Some(from), format!("`--field {from}={to}` reads `{from}` as `{to}`, and this case has a `{to}` of its own")));
        }
        obj.insert(to.clone(), v);
    }
    let respelt = respell(&mut obj);
    let input_hash = case_hash(&obj);
    let id_given = obj.get("id").filter(|v| !v.is_null()).map(|_| ());
    let mut shadowed: Vec<(String, String)> = Vec::new();
    let id = match obj.remove("id") {
        Some(Value::String(s)) if !s.trim().is_empty() => s,
        // Integer ids are kept exactly; others (1.5, 1e30) would not survive as text.
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(Value::Number(n)) => {
            return Err(problem(Some("id"), format!("{n} is not an integer that fits 64 bits; write the id as a string")))
        }
        Some(Value::String(_)) => return Err(problem(Some("id"), "is empty".into())),
        // Peer tools' files rarely carry ids: the line number stands in (results then pair with
        // the line, so a suite whose lines move should carry ids of its own).
        None | Some(Value::Null) => line.to_string(),
        Some(other) => return Err(problem(Some("id"), format!("must be a string or a number, not {}", kind(&other)))),
    };
    // DeepEval's goldens carry both `retrieval_context` (what the application retrieved: what the
    // output must be grounded in) and `context` (the ideal context): by the precedence of
    // CONTEXTS the retrieved one is graded and the other set aside and said.
    let output = match take_first(&mut obj, OUTPUT, &mut shadowed) {
        Some((_, Value::String(s))) => s,
        Some((name, other)) => return Err(problem(Some(&name), format!("must be a string, not {}", kind(&other)))),
        None => {
            // A misspelt name is the usual cause: the field nearest an output name is named.
            let near = obj
                .keys()
                .filter_map(|k| OUTPUT.iter().map(|o| (edit_distance(&k.to_lowercase(), o), k, *o)).filter(|(d, _, _)| *d <= 2).min())
                .min()
                .map(|(_, k, o)| match obj.get(k) {
                    // A rename would not read it: say what it holds (RAGTruth's `responses` is a
                    // list of response objects).
                    Some(v) if !v.is_string() => format!(
                        "; this case has `{k}`, {}, not a text: candor grades one output (a text) per case, so write each of its items as a case of its own with its text under `output`",
                        kind(v)
                    ),
                    _ => format!("; this case has `{k}`: did you mean `{o}`? (rename it, or pass `--field {k}=output`)"),
                });
            let hint = pair_shaped(&obj)
                .or(near)
                .or_else(|| output_like(&obj))
                .unwrap_or_else(|| format!(" under any of the names {}", OUTPUT.join(", ")));
            return Err(problem(Some("output"), format!("is missing or null (the text to grade){hint}")));
        }
    };
    let input = optional_string(take_first(&mut obj, INPUT, &mut shadowed)).map_err(|(f, r)| problem(Some(&f), r))?;
    // RAGAS's legacy `ground_truths` is a list of answers: its first is the reference.
    let reference = match take_first(&mut obj, REFERENCE, &mut shadowed) {
        Some((name, Value::Array(items))) if name == "ground_truths" => match items.into_iter().next() {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => return Err(problem(Some(&name), format!("item 1 must be a string, not {}", kind(&other)))),
        },
        other => optional_string(other).map_err(|(f, r)| problem(Some(&f), r))?,
    };
    let contexts = match take_first(&mut obj, CONTEXTS, &mut shadowed) {
        None | Some((_, Value::Null)) => vec![],
        Some((name, v)) => parse_contexts(v).map_err(|r| problem(Some(&name), r))?,
    };
    let samples = match take_first(&mut obj, SAMPLES, &mut shadowed) {
        None | Some((_, Value::Null)) => vec![],
        Some((name, Value::Array(items))) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s),
                other => Err(problem(Some(&name), format!("item {} must be a string, not {}", i + 1, kind(&other)))),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some((name, other)) => return Err(problem(Some(&name), format!("must be a list of strings, not {}", kind(&other)))),
    };
    let segments = match obj.remove("segments") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k, s)),
                other => Err(problem(Some("segments"), format!("`{k}` must map to a string, not {}", kind(&other)))),
            })
            .collect::<std::result::Result<_, _>>()?,
        Some(other) => return Err(problem(Some("segments"), format!("must be an object of strings, not {}", kind(&other)))),
    };
    let label = match obj.remove("label") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => {
            // Several people's labels go under `label.reviewers`; a wrong shape there is an error, not
            // a label silently left out of the agreement.
            reviewers::check_reviewers(&v).map_err(|reason| problem(Some("label"), reason))?;
            Some(v)
        }
        Some(other) => {
            return Err(problem(
                Some("label"),
                format!("must be an object such as {{\"supported\": true}}, not {} (a yes/no column reads with `--field label=label.supported`)", kind(&other)),
            ))
        }
    };
    let metadata = obj.remove("metadata");
    let checks = match obj.remove("checks") {
        None | Some(Value::Null) => vec![],
        // Each item on its own: a bad one fails the case (saying why) instead of dropping the line,
        // so that a misspelt check can never let its case pass unchecked.
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match serde_json::from_value::<crate::config::CheckSpec>(v) {
                Ok(spec) if spec.segment.is_some() => Err("`segment` is for candor.toml's checks; a case's own checks apply to it".to_string()),
                Ok(spec) => Ok(spec),
                Err(e) => Err(e.to_string()),
            })
            .collect(),
        Some(other) => return Err(problem(Some("checks"), format!("must be a list of checks such as [{{\"contains\": \"$500\"}}], not {}", kind(&other)))),
    };
    let mut number = |names: &[&str]| -> std::result::Result<Option<f64>, SuiteProblem> {
        match take_first(&mut obj, names, &mut shadowed) {
            None => Ok(None),
            Some((_, Value::Number(x))) if x.as_f64().is_some_and(|f| f.is_finite() && f >= 0.0) => Ok(x.as_f64()),
            Some((n, other)) => Err(problem(Some(&n), format!("must be a number, 0 or more, not {other}"))),
        }
    };
    let latency_ms = number(LATENCY)?;
    let cost = number(COST)?;
    let expect_refusal = match obj.remove("expect_refusal") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(b),
        Some(other) => return Err(problem(Some("expect_refusal"), format!("must be true or false, not {}", kind(&other)))),
    };
    let unknown_fields = obj.keys().cloned().collect();
    let id_from_line = id_given.is_none();
    Ok(Case {
        line,
        id,
        input,
        output,
        contexts,
        reference,
        samples,
        segments,
        label,
        metadata,
        checks,
        latency_ms,
        cost,
        expect_refusal,
        input_hash,
        unknown_fields,
        id_from_line,
        shadowed,
        renamed,
        respelt,
    })
}

/// A suite line's top level: the entries of an object in order, repeated keys kept (so that they can
/// be refused), or anything else.
enum TopLevel {
    Object(Vec<(String, Value)>),
    Other,
}

impl<'de> serde::Deserialize<'de> for TopLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = TopLevel;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<TopLevel, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    entries.push((k, v));
                }
                Ok(TopLevel::Object(entries))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<TopLevel, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other)
            }
            fn visit_bool<E>(self, _: bool) -> std::result::Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_i64<E>(self, _: i64) -> std::result::Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_u64<E>(self, _: u64) -> std::result::Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_f64<E>(self, _: f64) -> std::result::Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_str<E>(self, _: &str) -> std::result::Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
            fn visit_unit<E>(self) -> std::result::Result<TopLevel, E> {
                Ok(TopLevel::Other)
            }
        }
        d.deserialize_any(Visit)
    }
}

/// The first of `names` (in that precedence) that the case gives, taken out of `obj` with its name;
/// a name given as null is absent (peers export unset fields as null). Peers name one field several
/// ways (UpTrain rows carry both `response` and `answer`): the later names the case also gives are
/// taken out and recorded in `shadowed` as set aside for the first, said once per run
/// ([`describe_shadowed`]).
fn take_first(obj: &mut Map<String, Value>, names: &[&str], shadowed: &mut Vec<(String, String)>) -> Option<(String, Value)> {
    obj.retain(|k, v| !(v.is_null() && names.contains(&k.as_str())));
    let present: Vec<&str> = names.iter().copied().filter(|n| obj.contains_key(*n)).collect();
    for other in present.iter().skip(1) {
        obj.remove(*other);
        shadowed.push((other.to_string(), present[0].to_string()));
    }
    present.first().and_then(|n| obj.remove(*n).map(|v| (n.to_string(), v)))
}

fn optional_string(v: Option<(String, Value)>) -> std::result::Result<Option<String>, (String, String)> {
    match v {
        None | Some((_, Value::Null)) => Ok(None),
        Some((_, Value::String(s))) => Ok(Some(s)),
        Some((name, other)) => Err((name, format!("must be a string, not {}", kind(&other)))),
    }
}

fn parse_contexts(v: Value) -> std::result::Result<Vec<Context>, String> {
    let items = match v {
        Value::Array(items) => items,
        // A single passage given as a string is accepted as a list of one.
        Value::String(s) => vec![Value::String(s)],
        other => return Err(format!("must be a list of strings or of {{id, text}} objects, not {}", kind(&other))),
    };
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let ctx = match item {
            Value::String(text) => Context { id: (i + 1).to_string(), text, extra: Map::new() },
            Value::Object(mut m) => {
                let id = match m.remove("id") {
                    None | Some(Value::Null) => (i + 1).to_string(),
                    Some(Value::String(s)) => s,
                    Some(Value::Number(n)) => n.to_string(),
                    Some(other) => return Err(format!("item {}: `id` must be a string or a number, not {}", i + 1, kind(&other))),
                };
                let text = match m.remove("text").or_else(|| m.remove("content")) {
                    Some(Value::String(s)) => s,
                    Some(other) => return Err(format!("item {}: `text` must be a string, not {}", i + 1, kind(&other))),
                    None => return Err(format!("item {}: has no `text`", i + 1)),
                };
                Context { id, text, extra: m }
            }
            other => return Err(format!("item {} must be a string or an {{id, text}} object, not {}", i + 1, kind(&other))),
        };
        if !seen.insert(ctx.id.clone()) {
            return Err(format!("item {}: context id `{}` is repeated", i + 1, ctx.id));
        }
        out.push(ctx);
    }
    Ok(out)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads suites line by line, checking ids for uniqueness across the whole file.
///
/// A line that is not valid UTF-8 is a [`SuiteProblem`] like any bad line, and reading goes on. A
/// read error (a failing disk, a directory given as the suite) ends the reading: the iterator stops,
/// and [`SuiteReader::finish`] returns the error, which the caller must check before taking the
/// cases read as the whole suite.
pub struct SuiteReader<R> {
    reader: R,
    buf: Vec<u8>,
    line: usize,
    ids: HashSet<String>,
    /// The read error that ended the reading, and the line it was reading.
    failed: Option<(usize, std::io::Error)>,
    /// Fields candor does not know, with the number of cases that carry each.
    unknown: BTreeMap<String, usize>,
    /// Cases without an id, given their line number.
    ids_from_lines: usize,
    /// Fields set aside for another, with the number of cases.
    shadowed: BTreeMap<(String, String), usize>,
    /// Known fields read from another spelling ((as written, as read) -> cases).
    respelt: BTreeMap<(String, String), usize>,
    /// Whether the first bytes were looked at (a JSON array or JSON Lines).
    sniffed: bool,
    /// The items of a suite written as one JSON array, and the position of the next.
    array: Option<std::iter::Enumerate<std::vec::IntoIter<Box<serde_json::value::RawValue>>>>,
    /// How the suite is written.
    format: SuiteFormat,
    /// The rows of a CSV suite, each as a JSON object's text (or the problem of its row), with the
    /// line it starts on.
    rows: Option<std::vec::IntoIter<(usize, std::result::Result<String, String>)>>,
    /// Fields read under another name (`--field from=to`).
    renames: Vec<(String, String)>,
    /// The `from`s of `renames` some case had.
    renames_seen: HashSet<String>,
    ended: bool,
}

/// How a suite is written. JSON covers JSON Lines and one JSON array (told apart by the first
/// character); CSV and TSV are read by [`csv_rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SuiteFormat {
    /// JSON Lines, or one JSON array of cases.
    #[default]
    Json,
    /// Comma-separated values with a header row (RFC 4180).
    Csv,
    /// Tab-separated values with a header row.
    Tsv,
    /// promptfoo's YAML tests ([`promptfoo::yaml_rows`]).
    Yaml,
}

impl SuiteFormat {
    /// The format a file's extension names: `.csv`, `.tsv`, `.yaml` and `.yml`, else JSON.
    pub fn for_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => SuiteFormat::Csv,
            Some("tsv") => SuiteFormat::Tsv,
            Some("yaml" | "yml") => SuiteFormat::Yaml,
            _ => SuiteFormat::Json,
        }
    }
}

/// Fields whose cells hold a list, besides every name of contexts ([`CONTEXTS`]) and samples
/// ([`SAMPLES`]): a JSON list (`["a", "b"]`), a Python list as pandas and RAGAS write them
/// (`['a', "b"]`), or one text (a list of one).
const LIST_FIELDS: &[&str] = &["ground_truths", "checks"];
/// Fields whose cells hold a JSON object (or list), parsed when they do.
const JSON_FIELDS: &[&str] = &["segments", "label", "metadata"];
/// Fields whose cells hold a number.
const NUMBER_FIELDS: &[&str] = &["latency_ms", "latencyMs", "cost", "id"];

/// The rows of a CSV (or TSV) suite as JSON objects' texts, by its header: an empty cell is an absent
/// field; list, object, number and boolean fields are read as such (see [`LIST_FIELDS`]); a column
/// `segments.KEY` (or `segment.KEY`) gives the segment KEY. Each row comes with the line it starts on
/// (the header is line 1), or the problem of that row.
pub fn csv_rows(bytes: &[u8], delimiter: u8) -> std::result::Result<Vec<(usize, std::result::Result<String, String>)>, String> {
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(false).from_reader(bytes);
    let header: Vec<String> = reader.headers().map_err(|e| format!("the header row cannot be read: {e}"))?.iter().map(|h| h.trim().trim_start_matches('\u{feff}').to_string()).collect();
    // Which columns hold lists, once: a list column under another spelling (`Retrieved Contexts`,
    // `Document`) is one too.
    let list_columns: Vec<bool> =
        header.iter().map(|h| [LIST_FIELDS, CONTEXTS, SAMPLES].iter().any(|names| names.contains(&known_spelling(h).as_str()))).collect();
    let mut rows = vec![];
    // Lines counted here from byte offsets, in one pass over the rows: the reader's own count is
    // one short in a file whose lines end in "\r\n" (ARES's TSV said "line 1" of its first row,
    // which is line 2 under the header).
    let (mut counted_to, mut line_there) = (0usize, 1usize);
    let mut line_at = |byte: u64| {
        // A row's position may sit on the line end before it (the "\n" of a "\r\n").
        let mut byte = (byte as usize).min(bytes.len()).max(counted_to);
        while bytes.get(byte).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            byte += 1;
        }
        line_there += bytes[counted_to..byte].iter().filter(|&&b| b == b'\n').count();
        counted_to = byte;
        line_there
    };
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map_or(0, |p| line_at(p.byte()));
                rows.push((line, Err(format!("not a CSV row: {e}"))));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| line_at(p.byte()));
        let mut obj = Map::new();
        let mut segments = Map::new();
        let mut bad: Option<String> = None;
        for ((name, cell), &list_column) in header.iter().zip(record.iter()).zip(&list_columns) {
            if cell.is_empty() {
                continue;
            }
            if let Some(key) = name.strip_prefix("segments.").or_else(|| name.strip_prefix("segment.")) {
                segments.insert(key.to_string(), Value::String(cell.to_string()));
                continue;
            }
            let value = if list_column {
                match list_cell(cell) {
                    Ok(v) => v,
                    Err(why) => {
                        bad = Some(format!("column `{name}`: {why}"));
                        break;
                    }
                }
            } else if JSON_FIELDS.contains(&name.as_str()) {
                match serde_json::from_str::<Value>(cell) {
                    Ok(v) if v.is_object() || v.is_array() => v,
                    // Meant as JSON and not valid: said as such, not as "a string".
                    Err(e) if cell.trim_start().starts_with(['{', '[']) => {
                        bad = Some(format!("column `{name}`: not valid JSON: {e}"));
                        break;
                    }
                    _ => Value::String(cell.to_string()),
                }
            } else if NUMBER_FIELDS.contains(&name.as_str()) {
                serde_json::from_str::<Value>(cell.trim()).ok().filter(Value::is_number).unwrap_or_else(|| Value::String(cell.to_string()))
            } else if name == "expect_refusal" {
                match cell.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" => Value::Bool(true),
                    "false" | "0" | "no" => Value::Bool(false),
                    _ => Value::String(cell.to_string()),
                }
            } else {
                Value::String(cell.to_string())
            };
            obj.insert(name.clone(), value);
        }
        if let Some(why) = bad {
            rows.push((line, Err(why)));
            continue;
        }
        if !segments.is_empty() {
            obj.insert("segments".into(), Value::Object(segments));
        }
        rows.push((line, Ok(Value::Object(obj).to_string())));
    }
    Ok(rows)
}

/// A list cell: JSON, a Python list of strings, or one text. A cell that opens as a list of quoted
/// texts (`['...`, `["...`) and cannot be read as one is refused: taking it for one passage, brackets
/// and quotes included, would grade against text no one wrote.
fn list_cell(cell: &str) -> std::result::Result<Value, String> {
    let t = cell.trim();
    if t.starts_with('[') {
        if let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(t) {
            return Ok(v);
        }
        if let Some(items) = python_str_list(t) {
            return Ok(Value::Array(items.into_iter().map(Value::String).collect()));
        }
        if t[1..].trim_start().starts_with(['\'', '"']) {
            let shown: String = t.chars().take(60).collect();
            return Err(format!("`{shown}`... opens a list of texts and cannot be read as one (a quote or bracket unclosed?)"));
        }
    }
    Ok(Value::Array(vec![Value::String(cell.to_string())]))
}

/// Parses a Python list of string literals (`['a', "b's"]`, with `\\`, `\'`, `\"` and `\n`
/// escapes), as pandas writes a list column to CSV; `None` for anything else.
fn python_str_list(t: &str) -> Option<Vec<String>> {
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    let mut items = vec![];
    let mut chars = inner.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(quote) = chars.next() else { break };
        if quote != '\'' && quote != '"' {
            return None;
        }
        let mut item = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => item.push('\n'),
                    't' => item.push('\t'),
                    other => item.push(other),
                },
                c if c == quote => break,
                c => item.push(c),
            }
        }
        items.push(item);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => break,
            Some(',') => continue,
            Some(_) => return None,
        }
    }
    Some(items)
}

impl<R: BufRead> SuiteReader<R> {
    /// Wraps a reader.
    pub fn new(reader: R) -> Self {
        Self::with_format(reader, SuiteFormat::Json)
    }

    /// Wraps a reader of a suite written in `format`.
    pub fn with_format(reader: R, format: SuiteFormat) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            line: 0,
            ids: HashSet::new(),
            failed: None,
            ended: false,
            unknown: BTreeMap::new(),
            ids_from_lines: 0,
            shadowed: BTreeMap::new(),
            respelt: BTreeMap::new(),
            sniffed: false,
            array: None,
            format,
            rows: None,
            renames: Vec::new(),
            renames_seen: HashSet::new(),
        }
    }

    /// Reads each field `from` as the field `to` (`--field from=to`); `to` must be a field candor
    /// knows ([`known_fields`]), or the problem is said.
    pub fn with_renames(mut self, renames: Vec<(String, String)>) -> std::result::Result<Self, String> {
        let known = known_fields();
        for (i, (from, _)) in renames.iter().enumerate() {
            if renames[..i].iter().any(|(f, _)| f == from) {
                return Err(format!("--field {from}=...: `{from}` is given twice; read it as one field"));
            }
        }
        for (from, to) in &renames {
            if let Some(key) = to.strip_prefix("label.") {
                if !label_keys().contains(&key) {
                    return Err(format!("--field {from}={to}: `{key}` is not a label key candor measures (label keys: {})", label_keys().join(", ")));
                }
                continue;
            }
            if !known.contains(&to.as_str()) {
                return Err(format!(
                    "--field {from}={to}: `{to}` is not a field candor reads (known: {}; a yes/no label column reads as label.{})",
                    known.join(", "),
                    label_keys().join(", label.")
                ));
            }
        }
        self.renames = renames;
        Ok(self)
    }

    /// `--field from=to` whose `from` no case read so far had (a misspelt column leaves its field
    /// ungraded): one line saying so, or `None`.
    pub fn unused_renames(&self) -> Option<String> {
        // A field the suite has that is near the one named: "did you mean" it.
        let near = |f: &str| {
            self.unknown
                .keys()
                .map(|k| (edit_distance(&f.to_lowercase(), &k.to_lowercase()), k))
                .filter(|(d, k)| *d <= 2.max(k.len() / 4))
                .min()
                .map(|(_, k)| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default()
        };
        let unused: Vec<String> =
            self.renames.iter().filter(|(f, _)| !self.renames_seen.contains(f)).map(|(f, t)| format!("--field {f}={t}{}", near(f))).collect();
        (!unused.is_empty()).then(|| format!("{}: no case has that field, so nothing was read through it", unused.join(", ")))
    }

    /// The line of the case read last (0 before the first).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The top-level fields of the cases read so far that candor does not know, with how many cases
    /// carry each.
    pub fn unknown_fields(&self) -> &BTreeMap<String, usize> {
        &self.unknown
    }

    /// Fields set aside for another that takes precedence ((field, graded instead) -> cases), each
    /// said once by the caller ([`describe_shadowed`]).
    pub fn shadowed_fields(&self) -> &BTreeMap<(String, String), usize> {
        &self.shadowed
    }

    /// Known fields read under their name from another case or style, with the number of cases,
    /// said once by the caller ([`describe_respelt`]).
    pub fn respelt_fields(&self) -> &BTreeMap<(String, String), usize> {
        &self.respelt
    }

    /// How many of the cases read so far had no `id` and were given their line number.
    pub fn ids_from_lines(&self) -> usize {
        self.ids_from_lines
    }

    /// The reader, given back (what it read so far is consumed).
    pub fn into_inner(self) -> R {
        self.reader
    }

    /// The read error that stopped the reading early, if one did.
    pub fn io_error(&self) -> Option<&std::io::Error> {
        self.failed.as_ref().map(|(_, e)| e)
    }

    /// Ok when the reading ended at the end of the input (or has not ended yet); the read error that
    /// ended it otherwise, naming `path` and the line.
    pub fn finish(&mut self, path: &Path) -> Result<()> {
        match self.failed.take() {
            None => Ok(()),
            Some((line, e)) => Err(Error::Input {
                location: format!("{}:{line}", path.display()),
                reason: format!("cannot be read ({e}); stopped reading the suite here"),
            }),
        }
    }
}

impl<R: BufRead> Iterator for SuiteReader<R> {
    type Item = std::result::Result<Case, SuiteProblem>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.sniffed {
            self.sniffed = true;
            if let Some(problem) = self.sniff_utf16() {
                return Some(Err(problem));
            }
            let problem = match self.format {
                SuiteFormat::Json => self.sniff_array(),
                SuiteFormat::Csv => self.read_csv(b','),
                SuiteFormat::Tsv => self.read_csv(b'\t'),
                SuiteFormat::Yaml => self.read_yaml(),
            };
            if let Some(problem) = problem {
                return Some(Err(problem));
            }
        }
        if let Some(rows) = self.rows.as_mut() {
            let (line, row) = rows.next()?;
            self.line = line;
            let parsed = match row {
                Ok(text) => Self::parse(&self.renames, &mut self.renames_seen, line, &text),
                Err(reason) => Err(SuiteProblem { line, field: None, reason }),
            };
            return Some(self.admit(parsed));
        }
        if let Some(items) = self.array.as_mut() {
            let (i, v) = items.next()?;
            self.line = i + 1;
            let parsed = Self::parse(&self.renames, &mut self.renames_seen, i + 1, v.get());
            return Some(self.admit(parsed));
        }
        loop {
            if self.ended {
                return None;
            }
            self.buf.clear();
            match self.reader.read_until(b'\n', &mut self.buf) {
                Ok(0) => {
                    self.ended = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    // A read error does not go away by reading again (a directory answers every
                    // read with the same error): stop here.
                    self.ended = true;
                    self.failed = Some((self.line + 1, e));
                    return None;
                }
            }
            self.line += 1;
            let text = match std::str::from_utf8(&self.buf) {
                Ok(t) => t,
                Err(e) => {
                    return Some(Err(SuiteProblem { line: self.line, field: None, reason: format!("is not valid UTF-8 ({e})") }));
                }
            };
            let trimmed = text.trim();
            if trimmed.is_empty() {
                continue;
            }
            let parsed = Self::parse(&self.renames, &mut self.renames_seen, self.line, trimmed.trim_start_matches('\u{feff}'));
            return Some(self.admit(parsed));
        }
    }
}

impl<R: BufRead> SuiteReader<R> {
    /// Parses one case with the reader's renames. A case that fails still counts the renames of
    /// fields it has as used: it failed on what such a field holds, not for want of it (a `--field
    /// responses=output` on a list said "no case has that field" as well as the real problem).
    /// (A function of the two fields, not of the reader: the line read is borrowed from it.)
    fn parse(
        renames: &[(String, String)],
        seen: &mut HashSet<String>,
        line: usize,
        text: &str,
    ) -> std::result::Result<Case, SuiteProblem> {
        let parsed = parse_case_with(line, text, renames);
        if parsed.is_err() && !renames.is_empty() {
            if let Ok(obj) = serde_json::from_str::<Map<String, Value>>(text) {
                seen.extend(renames.iter().filter(|(from, _)| obj.contains_key(from)).map(|(from, _)| from.clone()));
            }
        }
        parsed
    }

    /// Counts a parsed case's unknown fields and line-number id, and refuses a repeated id.
    fn admit(&mut self, parsed: std::result::Result<Case, SuiteProblem>) -> std::result::Result<Case, SuiteProblem> {
        parsed.and_then(|case| {
            for f in &case.unknown_fields {
                *self.unknown.entry(f.clone()).or_default() += 1;
            }
            self.ids_from_lines += usize::from(case.id_from_line);
            self.renames_seen.extend(case.renamed.iter().cloned());
            for pair in &case.shadowed {
                *self.shadowed.entry(pair.clone()).or_default() += 1;
            }
            for pair in &case.respelt {
                *self.respelt.entry(pair.clone()).or_default() += 1;
            }
            if self.ids.insert(case.id.clone()) {
                Ok(case)
            } else {
                Err(SuiteProblem {
                    line: case.line,
                    field: Some("id".into()),
                    reason: format!("`{}` repeats an id used earlier in the suite", case.id),
                })
            }
        })
    }

    /// Reads a CSV or TSV suite whole into rows ([`csv_rows`]); the problem when its header cannot be read.
    fn read_csv(&mut self, delimiter: u8) -> Option<SuiteProblem> {
        let mut bytes = Vec::new();
        self.ended = true;
        if let Err(e) = self.reader.read_to_end(&mut bytes) {
            self.failed = Some((1, e));
            return None;
        }
        match csv_rows(&bytes, delimiter) {
            Ok(rows) => {
                self.rows = Some(rows.into_iter());
                None
            }
            Err(reason) => Some(SuiteProblem { line: 1, field: None, reason }),
        }
    }

    /// Reads a promptfoo YAML suite whole into rows ([`promptfoo::yaml_rows`]); the problem when the
    /// file is not YAML of that shape.
    fn read_yaml(&mut self) -> Option<SuiteProblem> {
        let mut bytes = Vec::new();
        self.ended = true;
        if let Err(e) = self.reader.read_to_end(&mut bytes) {
            self.failed = Some((1, e));
            return None;
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => return Some(SuiteProblem { line: 1, field: None, reason: format!("is not valid UTF-8 ({e})") }),
        };
        match promptfoo::yaml_rows(&text) {
            Ok(rows) => {
                self.rows = Some(rows.into_iter());
                None
            }
            Err((line, reason)) => Some(SuiteProblem { line, field: None, reason }),
        }
    }

    /// A suite in UTF-16 (what Windows PowerShell's `>` writes: a byte-order mark FF FE or FE FF, or
    /// a zero byte beside each ASCII letter): one problem saying so and how to convert it, and
    /// reading ends, not a "not valid UTF-8" per line.
    fn sniff_utf16(&mut self) -> Option<SuiteProblem> {
        let buf = self.reader.fill_buf().ok()?;
        let head = &buf[..buf.len().min(64)];
        let bom = head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]);
        let zeros = head.len() >= 4 && (head.iter().step_by(2).all(|&b| b == 0) || head.iter().skip(1).step_by(2).all(|&b| b == 0));
        if !bom && !zeros {
            return None;
        }
        self.ended = true;
        Some(SuiteProblem {
            line: 1,
            field: None,
            reason: "the suite is UTF-16 text (Windows PowerShell's `>` writes it), not UTF-8: convert it (`iconv -f UTF-16 -t UTF-8 SUITE > SUITE.utf8`, or `Out-File -Encoding utf8` in PowerShell) and grade that".to_string(),
        })
    }

    /// A suite whose first character (after blanks and a byte-order mark) is `[` is one JSON array
    /// of cases (pretty-printed or not, as peer tools export them): it is read whole and its items
    /// served as cases, numbered by position from 1. Returns the problem when it does not parse.
    fn sniff_array(&mut self) -> Option<SuiteProblem> {
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None, // the line reader meets the error again and reports it
            };
            if buf.is_empty() {
                return None;
            }
            let skip = if buf.starts_with("\u{feff}".as_bytes()) {
                3
            } else {
                buf.iter().take_while(|b| b.is_ascii_whitespace()).count()
            };
            if skip == 0 {
                // One JSON object written over several lines (a tool's export: its first line is
                // the opening brace alone, or an object cut off at the line's end; a case of JSON
                // Lines is neither, and a cut-off first line of JSON Lines is told apart below).
                let first_line = buf.iter().position(|&b| b == b'\n').map(|n| &buf[..n]);
                let object = first_line.is_some_and(|l| l.trim_ascii() == b"{" || cut_off_object(l));
                if buf[0] != b'[' && !object {
                    return None;
                }
                break;
            }
            // Blank lines before the first case count as lines, as the line reader counts them.
            self.line += buf[..skip].iter().filter(|&&b| b == b'\n').count();
            self.reader.consume(skip);
        }
        let mut bytes = Vec::new();
        if let Err(e) = self.reader.read_to_end(&mut bytes) {
            self.ended = true;
            self.failed = Some((self.line + 1, e));
            return None;
        }
        self.ended = true;
        if bytes.first() == Some(&b'{') {
            // The object's fields kept as their raw text, as an array's items are (parsed once).
            let object = serde_json::from_slice::<BTreeMap<String, Box<serde_json::value::RawValue>>>(&bytes);
            // A first line cut off that does not begin a whole-file object is a broken line of
            // JSON Lines: the lines are read as lines, each one case or one problem.
            let first_line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
            if first_line.trim_ascii() != b"{" && object.is_err() {
                self.rows = Some(lines_as_rows(&bytes, self.line).into_iter());
                return None;
            }
            return self.wrapped_cases(object);
        }
        // Items are kept as their raw text, so that each is parsed as a line is (a key repeated in
        // an item is refused, not silently merged).
        match serde_json::from_slice::<Vec<Box<serde_json::value::RawValue>>>(&bytes) {
            Ok(items) => {
                self.array = Some(items.into_iter().enumerate());
                None
            }
            Err(e) => Some(SuiteProblem {
                line: self.line + e.line(),
                field: None,
                reason: format!("the suite starts with `[` but is not a JSON array of cases ({e}); write one case per line (JSON Lines) or one JSON array"),
            }),
        }
    }

    /// A suite written as one JSON object over several lines: its cases are the array under one of
    /// [`CASE_LISTS`] (read as a JSON array of cases); any other object is one problem that says
    /// what the file holds and what candor reads, not a line-by-line wall of parse errors.
    fn wrapped_cases(&mut self, object: serde_json::Result<BTreeMap<String, Box<serde_json::value::RawValue>>>) -> Option<SuiteProblem> {
        let fail = |line: usize, reason: String| Some(SuiteProblem { line, field: None, reason });
        let object = match object {
            Ok(o) => o,
            Err(e) => return fail(self.line + e.line(), format!("the suite starts with a JSON object written over several lines, which does not parse ({e}); write one case per line (JSON Lines) or one JSON array of cases")),
        };
        for key in CASE_LISTS {
            // Items are kept as their raw text, so that each is parsed as a line is.
            if let Some(items) = object.get(*key).and_then(|raw| serde_json::from_str::<Vec<Box<serde_json::value::RawValue>>>(raw.get()).ok()) {
                self.array = Some(items.into_iter().enumerate());
                return None;
            }
        }
        let keys: Vec<&str> = object.keys().map(String::as_str).take(8).collect();
        let results_within = |r: &serde_json::value::RawValue| serde_json::from_str::<BTreeMap<String, serde::de::IgnoredAny>>(r.get()).is_ok_and(|m| m.contains_key("results"));
        let promptfoo = object.contains_key("evalId") || object.get("results").is_some_and(|r| results_within(r));
        let hint = if promptfoo {
            " (a promptfoo results file: grade the test cases themselves, `promptfoo` YAML or JSON tests with `vars`, or export each result's `response.output` as a case's `output`)"
        } else {
            ""
        };
        fail(
            self.line + 1,
            format!(
                "the suite is one JSON object (keys: {}), not cases{hint}: write one case per line (JSON Lines) or one JSON array of cases, or put the cases in an array under one of {}",
                keys.join(", "),
                CASE_LISTS.join(", ")
            ),
        )
    }
}

/// Whether a line opens a JSON object that it does not close (`{"testFile": "x.py",`).
fn cut_off_object(line: &[u8]) -> bool {
    line.trim_ascii_start().starts_with(b"{") && serde_json::from_slice::<serde::de::IgnoredAny>(line).is_err_and(|e| e.is_eof())
}

/// JSON Lines read whole (`bytes`, after `before` lines already counted), as rows of their
/// non-blank lines: each line's number and its text, or the problem of a line not in UTF-8.
fn lines_as_rows(bytes: &[u8], before: usize) -> Vec<(usize, std::result::Result<String, String>)> {
    let mut pieces: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|p| p.is_empty()) {
        pieces.pop();
    }
    pieces
        .into_iter()
        .enumerate()
        .filter_map(|(i, piece)| match std::str::from_utf8(piece) {
            Ok(t) if t.trim().is_empty() => None,
            Ok(t) => Some((before + i + 1, Ok(t.trim().trim_start_matches('\u{feff}').to_string()))),
            Err(e) => Some((before + i + 1, Err(format!("is not valid UTF-8 ({e})")))),
        })
        .collect()
}

/// Keys under which a suite written as one JSON object holds its cases (DeepEval's test-run file
/// `testCases`, and the usual names of a list of rows).
const CASE_LISTS: &[&str] = &["testCases", "test_cases", "cases", "goldens", "examples", "data", "rows"];

/// A reader that hashes (sha256) and counts the bytes that pass through it: a suite is read once,
/// and its hash and progress come from that one reading.
pub struct HashingReader<R> {
    inner: R,
    hash: sha2::Sha256,
    read: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<R> HashingReader<R> {
    /// Wraps `inner`; `read` counts the bytes read (shared, for progress from another thread).
    pub fn new(inner: R, read: std::sync::Arc<std::sync::atomic::AtomicU64>) -> Self {
        use sha2::Digest as _;
        Self { inner, hash: sha2::Sha256::new(), read }
    }

    /// The lower-case hex sha256 of every byte read.
    pub fn sha256(self) -> String {
        use sha2::Digest as _;
        hex::encode(self.hash.finalize())
    }
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens a suite file for reading, refusing a directory (which would open, and then fail every
/// read).
pub fn open(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::Input {
            location: path.display().to_string(),
            reason: "is a directory; a suite is one JSON Lines file".into(),
        });
    }
    Ok(file)
}

/// Counts the lines of a suite file (for progress), stopping with an error at the first read error.
pub fn count_lines(path: &Path) -> Result<usize> {
    let mut reader = std::io::BufReader::new(open(path)?);
    let (mut lines, mut last) = (0usize, b'\n');
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        if chunk.is_empty() {
            break;
        }
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
        last = chunk[chunk.len() - 1];
        let n = chunk.len();
        reader.consume(n);
    }
    Ok(lines + usize::from(last != b'\n'))
}

/// Reads a whole suite file: the good cases, and a problem for each bad line. A read error fails
/// the whole reading.
pub fn read_suite(path: &Path) -> Result<(Vec<Case>, Vec<SuiteProblem>)> {
    let file = open(path)?;
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    let mut reader = SuiteReader::with_format(std::io::BufReader::new(file), SuiteFormat::for_path(path));
    for item in reader.by_ref() {
        match item {
            Ok(c) => cases.push(c),
            Err(p) => problems.push(p),
        }
    }
    reader.finish(path)?;
    Ok((cases, problems))
}

/// One of N shards of a suite, for grading a suite on many machines. Written `K/N` with K counted
/// from 1 (`1/3`, `2/3`, `3/3`), as Playwright, Jest and cargo-nextest write theirs. Shard K holds the
/// cases whose `fnv1a64(id) mod N` is K - 1, so the assignment depends on the id alone (not on its
/// line or on the other cases), is the same on every machine and every version of candor, and a case
/// keeps its shard when cases are added or removed. `0/N` is refused rather than read as the first
/// shard: before shards counted from 1 it named the first, and a run written for that numbering must
/// fail, not silently grade another split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, 1 <= number <= count.
    number: u64,
    /// How many shards.
    count: u64,
}

impl Shard {
    /// Shard `number` of `count`, counted from 1; an error saying why when there is no such shard.
    pub fn new(number: u64, count: u64) -> std::result::Result<Self, String> {
        if count == 0 {
            return Err(format!("`{number}/{count}` is not a shard: there must be at least one shard (N >= 1)"));
        }
        if number == 0 {
            return Err(format!(
                "`0/{count}` is not a shard: shards count from 1, so the shards of {count} are 1/{count} to {count}/{count} \
                 (candor used to count them from 0: add 1 to K)"
            ));
        }
        if number > count {
            return Err(format!("`{number}/{count}` is not a shard: K must be from 1 to N, here 1 to {count}"));
        }
        Ok(Self { number, count })
    }

    /// This shard's number K, from 1 to [`Shard::count`].
    pub fn number(&self) -> u64 {
        self.number
    }

    /// How many shards there are (N).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// True when the case with this id belongs to this shard: `fnv1a64(id) mod N == K - 1`.
    pub fn contains(&self, id: &str) -> bool {
        fnv1a64(id.as_bytes()) % self.count == self.number - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad = || format!("`{s}` is not a shard: write K/N with 1 <= K <= N, e.g. 1/4 for the first of four");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let number: u64 = k.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        Self::new(number, count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.number, self.count)
    }
}

/// 64-bit FNV-1a (Fowler, Noll, Vo): a fixed, portable hash for shard assignment.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_suites_read_as_ragas_and_pandas_write_them() {
        // A RAGAS-style export: contexts as a Python list (pandas' to_csv), a quoted answer with a
        // comma, a newline and a doubled quote (RFC 4180), a segment column, an empty cell.
        let text = "question,answer,contexts,ground_truth,segments.task,latency_ms\n\
            Where was Einstein born?,\"Ulm, Germany.\nHe said \"\"hi\"\".\",\"['Einstein was born in Ulm.', \"\"It's in Germany.\"\"]\",Ulm,bio,1200\n\
            Who?,Nobody,[\"a JSON list\"],,,\n\
            Plain?,Yes,just one passage,,,\n";
        let items: Vec<_> = SuiteReader::with_format(text.as_bytes(), SuiteFormat::Csv).collect();
        assert_eq!(items.len(), 3, "{items:?}");
        let a = items[0].as_ref().unwrap();
        assert_eq!(a.input.as_deref(), Some("Where was Einstein born?"));
        assert_eq!(a.output, "Ulm, Germany.\nHe said \"hi\".");
        let ctx: Vec<&str> = a.contexts.iter().map(|c| c.text.as_str()).collect();
        assert_eq!(ctx, ["Einstein was born in Ulm.", "It's in Germany."]);
        assert_eq!(a.reference.as_deref(), Some("Ulm"));
        assert_eq!(a.segments.get("task").map(String::as_str), Some("bio"));
        assert_eq!(a.latency_ms, Some(1200.0));
        assert_eq!((a.id.as_str(), a.id_from_line), ("2", true), "the row's line is its id");
        let b = items[1].as_ref().unwrap();
        assert_eq!(b.contexts.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["a JSON list"]);
        assert_eq!(b.reference, None, "an empty cell is an absent field");
        // The second row spans two lines of the file: the third starts on line 5.
        let c = items[2].as_ref().unwrap();
        assert_eq!((c.line, c.contexts[0].text.as_str()), (5, "just one passage"));
        // A row with too many cells is a problem of its line, and the others still read.
        let bad = "output,contexts\nfine,x\ntoo,many,cells\nalso fine,y\n";
        let items: Vec<_> = SuiteReader::with_format(bad.as_bytes(), SuiteFormat::Csv).collect();
        assert_eq!(items.len(), 3);
        let p = items[1].as_ref().unwrap_err();
        assert_eq!(p.line, 3, "{p}");
        assert!(items[2].is_ok());
        // TSV, and the format from the extension.
        let tsv = "output\tcontexts\nan answer\ta passage\n";
        let items: Vec<_> = SuiteReader::with_format(tsv.as_bytes(), SuiteFormat::Tsv).collect();
        assert_eq!(items[0].as_ref().unwrap().contexts[0].text, "a passage");
        assert_eq!(SuiteFormat::for_path(Path::new("x/ragas.CSV")), SuiteFormat::Csv);
        assert_eq!(SuiteFormat::for_path(Path::new("x.jsonl")), SuiteFormat::Json);
        assert_eq!(python_str_list(r#"['a\'b', "c, d"]"#), Some(vec!["a'b".to_string(), "c, d".to_string()]));
        assert_eq!(python_str_list("[1, 2]"), None);
    }

    #[test]
    fn fnv1a64_matches_the_published_test_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shards_partition_the_ids_evenly() {
        let n = 4u64;
        let shards: Vec<Shard> = (1..=n).map(|k| format!("{k}/{n}").parse().unwrap()).collect();
        let mut sizes = vec![0usize; n as usize];
        for i in 0..10_000 {
            let id = format!("case-{i}");
            let owners: Vec<usize> = (0..n as usize).filter(|&k| shards[k].contains(&id)).collect();
            assert_eq!(owners.len(), 1, "{id} belongs to {owners:?}");
            sizes[owners[0]] += 1;
        }
        for s in sizes {
            assert!((2200..2800).contains(&s), "uneven shards: {s} of 10,000 in one of 4");
        }
    }

    #[test]
    fn shard_k_holds_the_ids_whose_hash_mod_n_is_k_minus_1() {
        // The assignment of ids to shards is the one candor always had (fnv1a64(id) mod N); only
        // the numbering moved: shard K here is what `K-1/N` was.
        for n in [1u64, 2, 3, 7] {
            let shards: Vec<Shard> = (1..=n).map(|k| Shard::new(k, n).unwrap()).collect();
            for i in 0..500 {
                let id = format!("id-{i}");
                let owners: Vec<u64> = shards.iter().filter(|s| s.contains(&id)).map(|s| s.number()).collect();
                assert_eq!(owners, vec![fnv1a64(id.as_bytes()) % n + 1], "{id} of {n}");
            }
        }
        // One shard holds everything.
        assert!(["", "a", "case-1"].iter().all(|id| Shard::new(1, 1).unwrap().contains(id)));
    }

    #[test]
    fn a_case_without_an_id_gets_its_line_number() {
        let text = "{\"output\": \"a\"}\n\n{\"id\": null, \"output\": \"b\"}\n{\"id\": \"1\", \"output\": \"c\"}\n";
        let mut r = SuiteReader::new(text.as_bytes());
        let items: Vec<_> = r.by_ref().collect();
        let a = items[0].as_ref().unwrap();
        assert_eq!((a.id.as_str(), a.id_from_line), ("1", true));
        assert_eq!(items[1].as_ref().unwrap().id, "3");
        // An explicit id that repeats a line number is a repeated id, as any other.
        let p = items[2].as_ref().unwrap_err();
        assert_eq!((p.line, p.field.as_deref()), (4, Some("id")));
        assert_eq!(r.ids_from_lines(), 2);
    }

    #[test]
    fn a_json_array_of_cases_is_read_as_a_suite() {
        let text = "\u{feff}\n  [\n  {\"user_input\": \"q\", \"response\": \"a\", \"retrieved_contexts\": [\"c\"]},\n  {\"id\": \"x\", \"output\": 3},\n  {\"response\": \"b\"}\n]\n";
        let mut r = SuiteReader::new(text.as_bytes());
        let items: Vec<_> = r.by_ref().collect();
        assert_eq!(items.len(), 3);
        let first = items[0].as_ref().unwrap();
        assert_eq!((first.id.as_str(), first.output.as_str(), first.contexts.len()), ("1", "a", 1));
        let p = items[1].as_ref().unwrap_err();
        assert_eq!((p.line, p.field.as_deref()), (2, Some("output")));
        assert_eq!(items[2].as_ref().unwrap().id, "3");
        assert!(r.finish(Path::new("s.json")).is_ok());
        // A key repeated inside an item is refused, as on a line (not merged into its last value).
        let items: Vec<_> = SuiteReader::new(r#"[{"output": "a", "output": "b"}]"#.as_bytes()).collect();
        assert!(items[0].as_ref().unwrap_err().reason.contains("appears twice"), "{items:?}");
        // Not an array after all: one problem saying so, nothing else.
        let items: Vec<_> = SuiteReader::new("[{\"output\": \"a\"},".as_bytes()).collect();
        assert_eq!(items.len(), 1);
        assert!(items[0].as_ref().unwrap_err().reason.contains("not a JSON array of cases"), "{items:?}");
        // JSON Lines still read line by line.
        let items: Vec<_> = SuiteReader::new("\n{\"output\": \"a\"}\n".as_bytes()).collect();
        assert_eq!(items[0].as_ref().unwrap().id, "2");
    }

    #[test]
    fn a_claim_and_its_source_are_told_how_to_load() {
        let e = parse_case(1, r#"{"doc": "A group of students study in the library.", "claim": "The students are on vacation.", "label": 0}"#).unwrap_err();
        assert!(e.reason.contains("pass `--field claim=output --field doc=contexts --field label=label.supported`"), "{e}");
        let e = parse_case(1, r#"{"premise": "p", "hypothesis": "h", "label": "entailment"}"#).unwrap_err();
        assert!(e.reason.contains("pass `--field hypothesis=output --field premise=contexts`"), "{e}");
        // Read so, it loads.
        let renames = [("claim".to_string(), "output".to_string()), ("doc".to_string(), "contexts".to_string()), ("label".to_string(), "label.supported".to_string())];
        let c = parse_case_with(1, r#"{"doc": "A group of students study.", "claim": "They are on vacation.", "label": 0}"#, &renames).unwrap();
        assert_eq!((c.output.as_str(), c.contexts.len()), ("They are on vacation.", 1));
    }

    #[test]
    fn a_utf16_suite_is_one_problem_saying_so() {
        let line = "{\"output\": \"a\"}\r\n{\"output\": \"b\"}\r\n";
        for bom in [true, false] {
            let mut bytes: Vec<u8> = if bom { vec![0xFF, 0xFE] } else { vec![] };
            bytes.extend(line.encode_utf16().flat_map(u16::to_le_bytes));
            let items: Vec<_> = SuiteReader::new(bytes.as_slice()).collect();
            assert_eq!(items.len(), 1, "{items:?}");
            let e = items[0].as_ref().unwrap_err();
            assert!(e.reason.contains("UTF-16") && e.reason.contains("iconv"), "{e}");
        }
        // UTF-8 with its byte-order mark is read as it is.
        let items: Vec<_> = SuiteReader::new("\u{feff}{\"output\": \"a\"}\n".as_bytes()).collect();
        assert!(items.len() == 1 && items[0].is_ok(), "{items:?}");
    }

    #[test]
    fn a_suite_written_as_one_object_is_read_or_said_once() {
        // DeepEval's test-run file: its cases under `testCases`, in camel case.
        let run = "{\n  \"testFile\": \"test_app.py\",\n  \"testCases\": [\n    {\"input\": \"q\", \"actualOutput\": \"a\", \"retrievalContext\": [\"r\"]},\n    {\"input\": \"q2\", \"actualOutput\": \"b\"}\n  ]\n}\n";
        let items: Vec<_> = SuiteReader::new(run.as_bytes()).collect();
        assert_eq!(items.len(), 2, "{items:?}");
        let first = items[0].as_ref().unwrap();
        assert_eq!((first.id.as_str(), first.output.as_str(), first.contexts.len()), ("1", "a", 1));
        // promptfoo's results file: one problem naming it, not a parse error per line.
        let promptfoo = "{\n  \"evalId\": \"eval-1\",\n  \"results\": {\"results\": [{\"response\": {\"output\": \"x\"}}]}\n}\n";
        let items: Vec<_> = SuiteReader::new(promptfoo.as_bytes()).collect();
        assert_eq!(items.len(), 1, "{items:?}");
        let e = items[0].as_ref().unwrap_err();
        assert!(e.reason.contains("one JSON object (keys: evalId, results)") && e.reason.contains("promptfoo results file"), "{e}");
        // An object whose first line holds a key too (not the brace alone).
        let compact = "{\"testFile\": \"x.py\",\n \"testCases\": [{\"input\": \"q\", \"actualOutput\": \"a\"}]\n}\n";
        let items: Vec<_> = SuiteReader::new(compact.as_bytes()).collect();
        assert!(items.len() == 1 && items[0].as_ref().is_ok_and(|c| c.output == "a"), "{items:?}");
        // A first line of JSON Lines cut off is one problem of its line, and the next lines are read.
        let cut = "{\"output\": \"a\",\n{\"output\": \"b\"}\n\n{\"output\": \"c\"}\n";
        let items: Vec<_> = SuiteReader::new(cut.as_bytes()).collect();
        let lines: Vec<usize> = items.iter().map(|i| i.as_ref().map_or_else(|p| p.line, |c| c.line)).collect();
        assert_eq!(lines, [1, 2, 4], "{items:?}");
        assert!(items[0].is_err() && items[1].is_ok() && items[2].is_ok(), "{items:?}");
        // A case on one line is still a line of JSON Lines.
        let items: Vec<_> = SuiteReader::new("{\"output\": \"a\"}\n{\"output\": \"b\"}\n".as_bytes()).collect();
        assert_eq!(items.len(), 2);
        assert!(items.iter().all(|i| i.is_ok()));
    }

    #[test]
    fn deepeval_goldens_grade_the_retrieval_context() {
        let line = r#"{"input": "q", "actual_output": "a", "expected_output": "e", "retrieval_context": ["r"], "context": ["ideal"]}"#;
        let mut r = SuiteReader::new(line.as_bytes());
        let c = r.next().unwrap().unwrap();
        assert_eq!(c.contexts.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(), ["r"]);
        assert_eq!((c.output.as_str(), c.reference.as_deref()), ("a", Some("e")));
        assert!(c.unknown_fields.is_empty());
        let said = describe_shadowed(r.shadowed_fields()).unwrap();
        assert!(said.contains("`context` given beside `retrieval_context` in 1 case(s)"), "{said}");
        // The same in DeepEval's camel case (a new user's file: `context` was graded, silently).
        let c = parse_case(1, r#"{"actualOutput": "a", "retrievalContext": ["r"], "context": ["ideal"]}"#).unwrap();
        assert_eq!(c.contexts.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(), ["r"]);
        assert_eq!(c.shadowed, [("context".to_string(), "retrieval_context".to_string())]);
        // A null retrieval_context (a golden with no retrieval) leaves `context` to be graded.
        let c = parse_case(1, r#"{"actual_output": "a", "retrieval_context": null, "context": ["ideal"]}"#).unwrap();
        assert_eq!(c.contexts.len(), 1);
        assert!(c.shadowed.is_empty());
        // Other collisions follow the documented precedence too: the first name graded, the other said.
        let c = parse_case(1, r#"{"output": "a", "contexts": ["x"], "documents": ["y"]}"#).unwrap();
        assert_eq!(c.contexts.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(), ["x"]);
        assert_eq!(c.shadowed, [("documents".to_string(), "contexts".to_string())]);
        // UpTrain's rows carry `response` and `answer`: `response` is graded, `answer` set aside.
        let mut r = SuiteReader::new(&b"{\"question\": \"q\", \"response\": \"graded\", \"answer\": \"aside\", \"context\": \"c\"}\n"[..]);
        let c = r.next().unwrap().unwrap();
        assert_eq!(c.output, "graded");
        assert!(c.unknown_fields.is_empty());
        let said = describe_shadowed(r.shadowed_fields()).unwrap();
        assert!(said.contains("`answer` given beside `response` in 1 case(s)"), "{said}");
        // Two latencies: the first name wins.
        let c = parse_case(1, r#"{"output": "a", "latency_ms": 5, "latencyMs": 7}"#).unwrap();
        assert_eq!(c.latency_ms, Some(5.0));
    }

    #[test]
    fn fields_read_under_another_name_and_trulens_names() {
        // Phoenix's eval frame: `reference` is the retrieved context there.
        let phoenix = "{\"input\": \"q\", \"output\": \"a\", \"reference\": \"the passage\"}\n";
        let renames = vec![("reference".to_string(), "contexts".to_string())];
        let mut r = SuiteReader::new(phoenix.as_bytes()).with_renames(renames.clone()).unwrap();
        let c = r.next().unwrap().unwrap();
        assert_eq!((c.contexts.len(), c.reference.as_deref()), (1, None));
        assert_eq!(c.contexts[0].text, "the passage");
        // Another mapping of the same line is another case (its hash differs).
        assert_ne!(c.input_hash, parse_case(1, phoenix.trim()).unwrap().input_hash);
        // A case that has the target too is refused, naming both; an unknown target is refused.
        let p = parse_case_with(3, r#"{"output": "a", "reference": "x", "contexts": ["y"]}"#, &renames).unwrap_err();
        assert!(p.reason.contains("has a `contexts` of its own") && p.line == 3, "{p}");
        assert!(r.unused_renames().is_none());
        // A FROM no case has is said; renames apply at once; a null target is absent.
        let mut r = SuiteReader::new(phoenix.as_bytes()).with_renames(vec![("refrence".into(), "contexts".into())]).unwrap();
        r.next().unwrap().unwrap();
        assert!(r.unused_renames().unwrap().contains("--field refrence=contexts: no case has that field"));
        let swap = vec![("output".to_string(), "reference".to_string()), ("reference".to_string(), "output".to_string())];
        let c = parse_case_with(1, r#"{"output": "o", "reference": "r", "contexts": null}"#, &swap).unwrap();
        assert_eq!((c.output.as_str(), c.reference.as_deref()), ("r", Some("o")));
        let c = parse_case_with(1, r#"{"output": "o", "reference": "the passage", "contexts": null}"#, &renames).unwrap();
        assert_eq!(c.contexts.len(), 1);
        assert!(SuiteReader::new(&b""[..]).with_renames(vec![("a".into(), "contexts".into()), ("a".into(), "reference".into())]).is_err());
        // A case without its output says which of its fields was probably meant.
        let e = parse_case(4, r#"{"question": "q", "anwser": "a", "contexts": ["c"]}"#).unwrap_err();
        assert!(e.reason.contains("`anwser`: did you mean `answer`?"), "{}", e.reason);
        // FinanceBench's results: the answer is `model_answer`, the reference `gold_answer`.
        let e = parse_case(4, r#"{"question": "q", "gold_answer": "1577", "model_answer": "It is $1,577 million.", "context": "c"}"#).unwrap_err();
        assert!(e.reason.contains("this case has `model_answer`, text that may be the output: pass `--field model_answer=output`"), "{}", e.reason);
        assert!(!e.reason.contains("gold_answer"), "{}", e.reason);
        let e = parse_case(4, r#"{"llmResponse": "a", "expectedOutput": "r"}"#).unwrap_err();
        assert!(e.reason.contains("`llmResponse`") && !e.reason.contains("expectedOutput"), "{}", e.reason);
        let e = parse_case(4, r#"{"question": "q", "answer": null, "contexts": ["c"]}"#).unwrap_err();
        assert!(e.reason.contains("missing or null") && e.reason.contains("response"), "{}", e.reason);
        // SelfCheckGPT's WikiBio set: the output is `gpt3_text`, not `wiki_bio_text`; its own
        // `predict` names the output `passage` beside `sampled_passages`.
        let e = parse_case(4, r#"{"gpt3_text": "a", "wiki_bio_text": "w", "gpt3_text_samples": ["s"]}"#).unwrap_err();
        assert!(e.reason.contains("this case has `gpt3_text`, text that may be the output") && !e.reason.contains("wiki_bio_text"), "{}", e.reason);
        let e = parse_case(4, r#"{"passage": "a", "sampled_passages": ["s1", "s2"]}"#).unwrap_err();
        assert!(e.reason.contains("pass `--field passage=output`"), "{}", e.reason);
        let e = parse_case(4, r#"{"question": "q", "passage": "p"}"#).unwrap_err();
        assert!(!e.reason.contains("passage"), "a passage beside no samples is no output: {}", e.reason);
        let err = SuiteReader::new(&b""[..]).with_renames(vec![("a".into(), "contxts".into())]).err().unwrap();
        assert!(err.contains("`contxts` is not a field candor reads"), "{err}");
        // TruLens's ground truth: expected_response is the reference, expected_chunks the contexts.
        let c = parse_case(1, r#"{"query": "q", "output": "a", "expected_response": "r", "expected_chunks": [{"text": "c1"}, {"text": "c2"}]}"#).unwrap();
        assert_eq!((c.input.as_deref(), c.reference.as_deref(), c.contexts.len()), (Some("q"), Some("r"), 2));
        assert!(c.unknown_fields.is_empty());
    }

    #[test]
    fn a_yes_no_column_reads_as_a_label_key() {
        // ARES's TSV: `Answer_Faithfulness_Label` holds 1 or 0 (a CSV cell arrives as text).
        let renames = vec![("Answer_Faithfulness_Label".to_string(), "label.supported".to_string())];
        for (cell, want) in [("\"1\"", true), ("0", false), ("\"No\"", false), ("true", true), ("\" yes \"", true)] {
            let c = parse_case_with(2, &format!(r#"{{"output": "a", "Answer_Faithfulness_Label": {cell}}}"#), &renames).unwrap();
            assert_eq!(c.label, Some(serde_json::json!({"supported": want})), "{cell}");
        }
        // Beside a label of the case's own, another key is added; the same key is refused.
        let c = parse_case_with(2, r#"{"output": "a", "F": 1, "label": {"attributable": false}}"#, &[("F".into(), "label.supported".into())]).unwrap();
        assert_eq!(c.label, Some(serde_json::json!({"attributable": false, "supported": true})));
        let e = parse_case_with(2, r#"{"output": "a", "F": 1, "label": {"supported": false}}"#, &[("F".into(), "label.supported".into())]).unwrap_err();
        assert!(e.reason.contains("has a `label.supported` of its own"), "{e}");
        // A cell that is not yes/no is a problem of its line, naming the column and the value.
        let e = parse_case_with(7, r#"{"output": "a", "F": "maybe"}"#, &[("F".into(), "label.supported".into())]).unwrap_err();
        assert!(e.line == 7 && e.field.as_deref() == Some("F") && e.reason.contains("not \"maybe\""), "{e}");
        // Only the keys candor measures.
        let err = SuiteReader::new(&b""[..]).with_renames(vec![("F".into(), "label.suported".into())]).err().unwrap();
        assert!(err.contains("`suported` is not a label key candor measures (label keys: supported, attributable, consistent)"), "{err}");
        // A label cell meant as JSON and not valid is said as such (it was "not a string").
        let rows = csv_rows(b"output,label\na,\"{\"\"supported\"\": tru}\"\n", b',').unwrap();
        let why = rows[0].1.clone().unwrap_err();
        assert!(why.contains("column `label`: not valid JSON"), "{why}");
        let e = parse_case(2, r#"{"output": "a", "label": "1"}"#).unwrap_err();
        assert!(e.reason.contains("`--field label=label.supported`"), "{e}");
        let c = parse_case_with(2, r#"{"output": "a", "label": "1"}"#, &[("label".into(), "label.supported".into())]).unwrap();
        assert_eq!(c.label, Some(serde_json::json!({"supported": true})));
        let err = SuiteReader::new(&b""[..]).with_renames(vec![("F".into(), "labels".into())]).err().unwrap();
        assert!(err.contains("a yes/no label column reads as label.supported, label.attributable, label.consistent"), "{err}");
    }

    #[test]
    fn rows_are_numbered_by_the_line_they_start_on_whatever_the_line_ends() {
        for text in ["q\ta\nx\t\"two\nlines\"\ny\tz\n", "q\ta\r\nx\t\"two\r\nlines\"\r\ny\tz\r\n"] {
            let rows = csv_rows(text.as_bytes(), b'\t').unwrap();
            let lines: Vec<usize> = rows.iter().map(|r| r.0).collect();
            assert_eq!(lines, [2, 4], "{text:?}: under the header, and past a cell of two lines");
        }
    }

    #[test]
    fn a_list_cell_that_cannot_be_read_fails_its_row() {
        let csv = "question,answer,contexts\nq,a,\"['Penicillin was found in 1928.', 'unterminated]\"\nq2,b,[1] A passage that starts with a marker\n";
        let rows = csv_rows(csv.as_bytes(), b',').unwrap();
        let err = rows[0].1.as_ref().unwrap_err();
        assert!(err.contains("column `contexts`") && err.contains("cannot be read as one"), "{err}");
        assert_eq!(rows[0].0, 2);
        // Text that merely starts with a bracket is one passage.
        let ok: Value = serde_json::from_str(rows[1].1.as_ref().unwrap()).unwrap();
        assert_eq!(ok["contexts"], serde_json::json!(["[1] A passage that starts with a marker"]));
    }

    #[test]
    fn ragas_legacy_ground_truths_give_the_reference() {
        let c = parse_case(1, r#"{"question": "q", "answer": "a", "contexts": ["c"], "ground_truths": ["first", "second"]}"#).unwrap();
        assert_eq!(c.reference.as_deref(), Some("first"));
        assert!(c.unknown_fields.is_empty());
        let p = parse_case(1, r#"{"answer": "a", "ground_truths": [3]}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("ground_truths"));
        let c = parse_case(1, r#"{"answer": "a", "ground_truth": "x", "ground_truths": ["y"]}"#).unwrap();
        assert_eq!(c.reference.as_deref(), Some("x"));
    }

    #[test]
    fn promptfoo_assertions_not_run_name_the_metric_that_measures_them() {
        let unknown: BTreeMap<String, usize> =
            [("assert.context-faithfulness".to_string(), 9), ("assert.javascript".to_string(), 1)].into_iter().collect();
        let line = describe_unknown_fields(&unknown).unwrap();
        assert!(line.starts_with("promptfoo assertion(s) candor does not run, not checked: `context-faithfulness` (9 case(s)), `javascript` (1 case(s))"), "{line}");
        assert!(line.contains("`context-faithfulness` is candor's `support` metric") && line.contains("not by this assertion's threshold"), "{line}");
        assert!(!line.contains("`javascript` is"), "{line}");
        let plain: BTreeMap<String, usize> = [("assert.javascript".to_string(), 1)].into_iter().collect();
        assert!(!describe_unknown_fields(&plain).unwrap().contains("instead"));
    }

    #[test]
    fn unknown_fields_are_counted_and_named_with_a_guess() {
        let text = "{\"id\": \"1\", \"output\": \"a\", \"retrieved_context\": [\"c\"]}\n{\"id\": \"2\", \"output\": \"b\", \"passages\": [\"c\"], \"retrieved_context\": [\"c\"]}\n";
        let mut r = SuiteReader::new(std::io::Cursor::new(text.as_bytes()));
        assert_eq!(r.by_ref().filter(|c| c.is_ok()).count(), 2);
        let unknown = r.unknown_fields().clone();
        assert_eq!(unknown.get("retrieved_context"), Some(&2));
        assert_eq!(unknown.get("passages"), Some(&1));
        let line = describe_unknown_fields(&unknown).unwrap();
        assert!(line.contains("`retrieved_context` (2 case(s); did you mean `retrieved_contexts`?)"), "{line}");
        assert!(line.contains("`passages` (1 case(s))"), "{line}");
        assert!(describe_unknown_fields(&BTreeMap::new()).is_none());
        // Said as the suite is read: where first seen, without counts that only the end knows.
        let early = describe_unknown_fields_at(&unknown, 2).unwrap();
        assert!(early.starts_with("line 2: field(s) candor does not know"), "{early}");
        assert!(early.contains("`retrieved_context` (did you mean `retrieved_contexts`?)") && early.contains("`passages`,"), "{early}");
        assert!(!early.contains("case(s)") && early.ends_with("how many cases have each is said at the end"), "{early}");
    }

    #[test]
    fn the_case_hash_ignores_key_order_and_spacing_but_not_values() {
        let a = parse_case(1, r#"{"id": "1", "output": "x", "contexts": [{"text": "c", "title": "t"}]}"#).unwrap();
        let b = parse_case(1, r#"{"contexts":[{"title":"t","text":"c"}],"output":"x","id":"1"}"#).unwrap();
        let c = parse_case(1, r#"{"id": "1", "output": "y", "contexts": [{"text": "c", "title": "t"}]}"#).unwrap();
        assert_eq!(a.input_hash, b.input_hash);
        assert_ne!(a.input_hash, c.input_hash);
        assert_eq!(a.input_hash.len(), 16);
    }

    #[test]
    fn shard_syntax_is_checked() {
        for (text, k, n) in [("1/3", 1, 3), ("3/3", 3, 3), ("2/5", 2, 5), ("1/1", 1, 1), (" 2 / 4 ", 2, 4)] {
            let s: Shard = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((s.number(), s.count()), (k, n), "{text}");
            assert_eq!(s.to_string(), format!("{k}/{n}"), "{text}");
            assert_eq!(s.to_string().parse::<Shard>(), Ok(s));
        }
        // 0/N named the first shard when shards counted from 0: refused, saying how they count now.
        let e = "0/3".parse::<Shard>().unwrap_err();
        assert!(e.contains("count from 1") && e.contains("1/3 to 3/3"), "{e}");
        let e = "4/3".parse::<Shard>().unwrap_err();
        assert!(e.contains("from 1 to N, here 1 to 3"), "{e}");
        for bad in ["1/0", "0/0", "x/2", "3", "-1/2", "1/-2", "", "/", "1/2/3", "1.0/2", "18446744073709551616/2"] {
            let e = bad.parse::<Shard>().expect_err(bad);
            assert!(e.contains("is not a shard"), "{bad}: {e}");
        }
        assert!(Shard::new(0, 2).is_err() && Shard::new(3, 2).is_err() && Shard::new(1, 0).is_err());
    }

    #[test]
    fn bad_input_catalogue_never_panics_and_names_line_and_field() {
        // Each bad line: (text, field the problem must name or None, words the reason must contain).
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let deep_field = format!(r#"{{"id": "d", "output": "x", "metadata": {}{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        let cases: Vec<(String, Option<&str>, &str)> = vec![
            ("{not json".into(), None, "not valid JSON"),
            (r#"{"id": "a", "output": "x", "output": "y"}"#.into(), Some("output"), "appears twice"),
            (r#"{"id": true, "output": "x"}"#.into(), Some("id"), "string or a number"),
            (r#"{"id": [1], "output": "x"}"#.into(), Some("id"), "string or a number"),
            (r#"{"id": 1.5, "output": "x"}"#.into(), Some("id"), "write the id as a string"),
            (r#"{"id": 123456789012345678901234567890, "output": "x"}"#.into(), Some("id"), "write the id as a string"),
            (r#"{"id": "a", "output": NaN}"#.into(), None, "not valid JSON"),
            (r#"{"id": "a", "output": "x", "label": {"score": 1e999}}"#.into(), None, "not valid JSON"),
            ("{\"id\": \"a\", \"output\": \"raw \u{1} control\"}".into(), None, "not valid JSON"),
            (deep, None, "JSON object"),
            (deep_field, None, "not valid JSON"),
            ("[1, 2]".into(), None, "JSON object"),
            ("42".into(), None, "JSON object"),
            (r#"{"id": "a"}"#.into(), Some("output"), "missing"),
            (r#"{"id": "a", "output": 3}"#.into(), Some("output"), "must be a string"),
            (r#"{"id": "a", "output": "x", "contexts": [{"id": "1", "text": "p"}, {"id": "1", "text": "q"}]}"#.into(), Some("contexts"), "repeated"),
        ];
        for (text, field, words) in &cases {
            let p = parse_case(7, text).expect_err(&text[..text.len().min(60)]);
            assert_eq!(p.line, 7);
            assert_eq!(p.field.as_deref(), *field, "{p}");
            assert!(p.reason.contains(words), "{p}");
        }
        // Accepted as they are: escaped control characters, an empty output (graded as
        // `empty_output`), integer ids at the 64-bit limits, 10,000 contexts and a 10 MB output.
        assert_eq!(parse_case(1, r#"{"id": "a", "output": "tab\tand \u0000 nul"}"#).unwrap().output, "tab\tand \u{0} nul");
        assert_eq!(parse_case(1, r#"{"id": "e", "output": "   "}"#).unwrap().output, "   ");
        assert_eq!(parse_case(1, r#"{"id": 18446744073709551615, "output": "x"}"#).unwrap().id, "18446744073709551615");
        assert_eq!(parse_case(1, r#"{"id": -9223372036854775808, "output": "x"}"#).unwrap().id, "-9223372036854775808");
        let many: Vec<String> = (0..10_000).map(|i| format!("\"passage {i}\"")).collect();
        let c = parse_case(1, &format!(r#"{{"id": "m", "output": "x", "contexts": [{}]}}"#, many.join(","))).unwrap();
        assert_eq!(c.contexts.len(), 10_000);
        let big = "word ".repeat(2_000_000);
        assert_eq!(parse_case(1, &format!(r#"{{"id": "b", "output": "{big}"}}"#)).unwrap().output.len(), big.len());
    }

    #[test]
    fn reader_survives_bom_crlf_and_invalid_utf8() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice("\u{feff}{\"id\": \"a\", \"output\": \"x\"}\r\n".as_bytes());
        bytes.extend_from_slice(b"{\"id\": \"b\", \"output\": \"\xff\xfe\"}\r\n");
        bytes.extend_from_slice(b"{\"id\": \"c\", \"output\": \"y\"}\r\n");
        let items: Vec<_> = SuiteReader::new(std::io::Cursor::new(bytes)).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[0].as_ref().unwrap().id, "a");
        let bad = items[1].as_ref().unwrap_err();
        assert_eq!(bad.line, 2);
        assert!(bad.reason.contains("UTF-8"), "{bad}");
        let c = items[2].as_ref().unwrap();
        assert_eq!((c.id.as_str(), c.output.as_str(), c.line), ("c", "y", 3));
    }

    #[test]
    fn full_case() {
        let c = parse_case(
            1,
            r#"{"id": "b-1", "input": "q?", "output": "a [1].", "contexts": [{"id": "1", "text": "t", "url": "u"}],
                "reference": "r", "samples": ["s"], "segments": {"risk": "high"}, "label": {"supported": true}, "metadata": {"k": 1}}"#,
        )
        .unwrap();
        assert_eq!(c.id, "b-1");
        assert_eq!(c.contexts[0].extra["url"], "u");
        assert_eq!(c.segments["risk"], "high");
        assert_eq!(c.samples, vec!["s"]);
    }

    #[test]
    fn fields_that_may_hold_contexts_are_named() {
        // UpTrain's rows as they ship.
        let unknown: BTreeMap<String, usize> = ["document_text", "document_title", "document_link", "context_embeddings", "row_idx", "persona", "source_passages", "doc_id"]
            .iter()
            .enumerate()
            .map(|(i, k)| (k.to_string(), 90 - i))
            .collect();
        assert_eq!(context_candidates(&unknown), vec![("document_text", 90), ("source_passages", 84)]);
        assert!(context_candidates(&BTreeMap::new()).is_empty());
        // ARES's columns: a label that names the context is not one; the plain `Document` comes first.
        let unknown: BTreeMap<String, usize> = ["Context_Relevance_Label", "Answer_Faithfulness_Label", "Document", "Sources", "Reaction"]
            .iter()
            .map(|k| (k.to_string(), 40))
            .collect();
        assert_eq!(context_candidates(&unknown), vec![("Document", 40), ("Sources", 40)]);
    }

    #[test]
    fn a_rename_no_case_uses_suggests_the_field_meant() {
        let text = "{\"id\": \"1\", \"output\": \"a\", \"document_text\": \"c\"}\n";
        let renames = vec![("document_txt".to_string(), "contexts".to_string())];
        let mut reader = SuiteReader::with_format(text.as_bytes(), SuiteFormat::Json).with_renames(renames).unwrap();
        assert!(reader.by_ref().all(|c| c.is_ok()));
        let line = reader.unused_renames().unwrap();
        assert!(line.contains("--field document_txt=contexts (did you mean `document_text`?)"), "{line}");
    }

    #[test]
    fn aliases_and_positional_contexts() {
        let c = parse_case(3, r#"{"id": 7, "question": "q", "response": "a", "retrieved_contexts": ["x", "y"], "ground_truth": "g"}"#).unwrap();
        assert_eq!(c.id, "7");
        assert_eq!(c.input.as_deref(), Some("q"));
        assert_eq!(c.output, "a");
        assert_eq!(c.reference.as_deref(), Some("g"));
        assert_eq!(c.contexts.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), vec!["1", "2"]);
    }

    #[test]
    fn selfcheckgpt_names_for_samples_are_read_as_samples() {
        let c = parse_case(1, r#"{"output": "a", "sampled_passages": ["s1", "s2"]}"#).unwrap();
        assert_eq!(c.samples, ["s1", "s2"]);
        assert!(c.unknown_fields.is_empty(), "{:?}", c.unknown_fields);
        let c = parse_case(1, r#"{"output": "a", "gpt3_text_samples": ["s1"], "samples": ["own"]}"#).unwrap();
        assert_eq!(c.samples, ["own"]);
        assert_eq!(c.shadowed, [("gpt3_text_samples".to_string(), "samples".to_string())]);
        let e = parse_case(1, r#"{"output": "a", "sampled_passages": "s1"}"#).unwrap_err();
        assert_eq!((e.field.as_deref(), e.reason.as_str()), (Some("sampled_passages"), "must be a list of strings, not a string"));
        let e = parse_case(1, r#"{"output": "a", "sampled_passages": ["s1", 2]}"#).unwrap_err();
        assert!(e.reason.contains("item 2 must be a string"), "{}", e.reason);
        // A CSV column of samples under any of its names holds a list.
        let csv = "output,sampled_passages\na,\"['one', 'two']\"\n";
        let cases: Vec<_> = SuiteReader::with_format(csv.as_bytes(), SuiteFormat::Csv).collect();
        assert_eq!(cases[0].as_ref().unwrap().samples, ["one", "two"]);
    }

    #[test]
    fn known_fields_in_another_case_or_style_are_read_and_said() {
        // ARES's columns, a camel-case export, a title-case header with a space.
        let c = parse_case(1, r#"{"Query": "q", "Answer": "a", "Document": "d"}"#).unwrap();
        assert_eq!((c.input.as_deref(), c.output.as_str(), c.contexts.len()), (Some("q"), "a", 1));
        assert_eq!(c.contexts[0].text, "d");
        assert!(c.respelt.contains(&("Query".to_string(), "query".to_string())), "{:?}", c.respelt);
        assert!(c.respelt.contains(&("Document".to_string(), "documents".to_string())), "{:?}", c.respelt);
        assert!(c.unknown_fields.is_empty(), "{:?}", c.unknown_fields);
        let c = parse_case(2, r#"{"input": "q", "actualOutput": "a", "Retrieved Contexts": ["x"], "ExpectedOutput": "e"}"#).unwrap();
        assert_eq!((c.output.as_str(), c.contexts.len(), c.reference.as_deref()), ("a", 1, Some("e")));
        // A name of the field as it is wins, whatever the precedence of the other spelling's name
        // (`response` comes before `answer`): the other stays unknown, and is reported as such.
        let c = parse_case(3, r#"{"output": "a", "Output": "b"}"#).unwrap();
        assert_eq!(c.output, "a");
        assert_eq!(c.unknown_fields, ["Output"]);
        assert!(c.respelt.is_empty());
        let c = parse_case(4, r#"{"answer": "a", "Response": "r", "documents": ["d"], "Context": "c"}"#).unwrap();
        assert_eq!(c.output.as_str(), "a");
        assert_eq!(c.unknown_fields, ["Response"]);
        // Contexts are the exception: two context fields are two fields, graded by their
        // precedence with a note (DeepEval's `retrievalContext` beside `context`), so `Context`
        // is read as `context`, which comes before `documents`.
        assert_eq!(c.contexts[0].text.as_str(), "c");
        assert_eq!(c.shadowed, [("documents".to_string(), "context".to_string())]);
        // Fields of other kinds, or of the wrong type, are not read under another spelling: they
        // load as they did, unknown.
        let c = parse_case(5, r#"{"output": "a", "Label": "SUPPORTS", "ID": 3, "Cost": "high", "Input": {"q": 1}}"#).unwrap();
        assert_eq!((c.id.as_str(), c.label.is_none(), c.input.is_none()), ("5", true, true));
        assert_eq!(c.unknown_fields, ["Cost", "ID", "Input", "Label"]);
        // A CSV list column under another spelling is read as a list.
        let csv = "Question,Answer,Retrieved Contexts\nq,a,\"['one', 'two']\"\n";
        let cases: Vec<_> = SuiteReader::with_format(csv.as_bytes(), SuiteFormat::Csv).collect();
        let c = cases[0].as_ref().unwrap();
        assert_eq!(c.contexts.iter().map(|c| c.text.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        let text = "{\"Answer\": \"a\"}\n{\"Answer\": \"b\"}\n";
        let mut reader = SuiteReader::with_format(text.as_bytes(), SuiteFormat::Json);
        assert!(reader.by_ref().all(|c| c.is_ok()));
        assert_eq!(describe_respelt(reader.respelt_fields()).as_deref(), Some("`Answer` read as `answer` in 2 case(s)"));
    }

    #[test]
    fn a_rename_of_a_field_a_failing_case_has_is_not_said_unused() {
        let text = "{\"responses\": [{\"response\": \"a\"}]}\n";
        let renames = vec![("responses".to_string(), "output".to_string())];
        let mut reader = SuiteReader::with_format(text.as_bytes(), SuiteFormat::Json).with_renames(renames).unwrap();
        let items: Vec<_> = reader.by_ref().collect();
        assert!(items[0].as_ref().is_err_and(|p| p.reason.contains("must be a string, not a list")), "{items:?}");
        assert_eq!(reader.unused_renames(), None);
    }

    #[test]
    fn a_near_output_field_that_is_no_text_is_not_offered_as_a_rename() {
        let p = parse_case(1, r#"{"source": {"question": "q"}, "responses": [{"response": "a"}]}"#).unwrap_err();
        assert!(p.reason.contains("this case has `responses`, a list, not a text"), "{p}");
        assert!(!p.reason.contains("--field responses=output"), "{p}");
    }

    #[test]
    fn problems_name_line_and_field() {
        let p = parse_case(4, r#"{"id": "x"}"#).unwrap_err();
        assert_eq!((p.line, p.field.as_deref()), (4, Some("output")));
        let p = parse_case(5, r#"{"id": "x", "output": 3}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("output"));
        assert!(p.to_string().contains("line 5"), "{p}");
        let p = parse_case(6, r#"{"id": "x", "output": "a", "segments": {"risk": 1}}"#).unwrap_err();
        assert_eq!(p.field.as_deref(), Some("segments"));
        // Two names of one field are not a problem: the first is graded, the other set aside.
        let c = parse_case(7, r#"{"id": "x", "output": "a", "answer": "b"}"#).unwrap();
        assert_eq!((c.output.as_str(), c.shadowed.as_slice()), ("a", &[("answer".to_string(), "output".to_string())][..]));
        let p = parse_case(8, "{not json").unwrap_err();
        assert!(p.reason.contains("not valid JSON"));
        let p = parse_case(9, r#"{"id": "x", "output": "a", "contexts": [{"id": "1", "text": "a"}, {"id": "1", "text": "b"}]}"#).unwrap_err();
        assert!(p.reason.contains("repeated"));
    }

    #[test]
    fn reader_reports_repeated_ids_and_skips_blank_lines() {
        let text = "{\"id\": \"a\", \"output\": \"x\"}\n\n{\"id\": \"a\", \"output\": \"y\"}\n{\"id\": \"b\", \"output\": \"z\"}\n";
        let items: Vec<_> = SuiteReader::new(text.as_bytes()).collect();
        assert_eq!(items.len(), 3);
        assert!(items[0].is_ok() && items[2].is_ok());
        let p = items[1].as_ref().unwrap_err();
        assert_eq!((p.line, p.field.as_deref()), (3, Some("id")));
    }

    /// A reader that gives some lines, then fails every read, as a directory or a dying disk does.
    struct FailsAfter(std::io::Cursor<Vec<u8>>);

    impl std::io::Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(std::io::Error::other("device gone")),
                n => Ok(n),
            }
        }
    }

    #[test]
    fn reader_stops_at_the_first_read_error_and_finish_reports_it() {
        let text = "{\"id\": \"a\", \"output\": \"x\"}\n{\"id\": \"b\", \"output\": \"y\"}\n";
        let mut reader = SuiteReader::new(std::io::BufReader::new(FailsAfter(std::io::Cursor::new(text.as_bytes().to_vec()))));
        // Bounded: an endless stream of errors would never end this loop.
        let items: Vec<_> = reader.by_ref().take(100).collect();
        assert_eq!(items.len(), 2, "the two good lines, then the end");
        assert!(items.iter().all(|i| i.is_ok()));
        assert!(reader.next().is_none(), "stays ended");
        assert!(reader.io_error().is_some());
        let e = reader.finish(Path::new("s.jsonl")).unwrap_err().to_string();
        assert!(e.contains("s.jsonl:3") && e.contains("device gone"), "{e}");
    }

    #[test]
    fn a_directory_is_refused_as_a_suite() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_suite(dir.path()).unwrap_err().to_string();
        assert!(e.contains("is a directory"), "{e}");
        assert!(count_lines(dir.path()).is_err());
        // And a directory read through the reader anyway ends at once, with the error kept.
        let file = std::fs::File::open(dir.path()).unwrap();
        let mut reader = SuiteReader::new(std::io::BufReader::new(file));
        assert_eq!(reader.by_ref().take(10).count(), 0);
        assert!(reader.finish(dir.path()).is_err());
    }

    #[test]
    fn lines_are_counted_with_or_without_a_last_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.jsonl");
        for (text, n) in [("", 0), ("a", 1), ("a\n", 1), ("a\n\nb", 3), ("a\nb\n", 2)] {
            std::fs::write(&p, text).unwrap();
            assert_eq!(count_lines(&p).unwrap(), n, "{text:?}");
        }
        std::fs::write(&p, "x\n".repeat(20_000)).unwrap();
        assert_eq!(count_lines(&p).unwrap(), 20_000);
    }
}
