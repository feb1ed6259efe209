//! Claim decomposition by the judge model (optional, `[support] claims = "judge"`): each claim
//! sentence of an output is split into atomic facts (FActScore, Min et al. 2023: one sentence at a
//! time, with a worked example), and the support grader checks the facts instead of the sentence.
//!
//! The prompt (shown in full by [`prefix`] and [`prompt`]): a system message asking for one short
//! fact per line, pronouns replaced from the context, nothing added; two worked examples as earlier
//! turns; then the sentence, with the output's previous sentence as context, both as data.
//! Generation is greedy, so the same output gives the same facts.
//!
//! A small model can add or lose things, so every fact is checked against its sentence before it is
//! used ([`parse`]): it must share a content word with the sentence, nearly all of its content
//! words must come from the sentence or the context, and it may not negate a sentence that has no
//! negation. What a lexical check cannot see (a date moved to the wrong event) it lets through:
//! `docs/quality.md` measures what decomposition does to support on labelled data. When no line survives, the sentence itself is
//! the claim (the result's `from` says `sentence`). Decomposition only splits claims; it never sets
//! a sentence aside.

use crate::engine::judge::{JudgeModel, Piece};
use crate::error::Result;
use crate::models::gguf::ChatTemplate;
use crate::text::words::{content_words, negated};

/// The system message of the decomposition prompt.
pub const SYSTEM: &str = "You split a sentence into atomic facts. An atomic fact is a short, complete sentence that states \
exactly one thing. Write every fact that the sentence states, one per line, each line starting with \"- \". Replace \
pronouns with the names they stand for, using the context. Do not add anything that the sentence does not say. Reply \
only with the list.";

/// The worked examples: (context, sentence, facts).
pub const EXAMPLES: [(&str, &str, &str); 2] = [
    (
        "The Eiffel Tower is in Paris.",
        "It was completed in 1889 and is 330 metres tall.",
        "- The Eiffel Tower was completed in 1889.\n- The Eiffel Tower is 330 metres tall.",
    ),
    (
        "(none)",
        "Refunds are issued within 30 days to the original payment method.",
        "- Refunds are issued within 30 days.\n- Refunds are issued to the original payment method.",
    ),
];

/// Sentences of at most this many words are their own atomic fact and are not sent to the model.
pub const SHORT: usize = 6;

/// The shared part of the prompt: system message and worked examples.
pub fn prefix(t: ChatTemplate) -> Vec<Piece> {
    let mut s = t.open(SYSTEM);
    for (i, (context, sentence, facts)) in EXAMPLES.iter().enumerate() {
        if i > 0 {
            s.push_str(t.next_user());
        }
        s.push_str(&format!("Context: {context}\nSentence: {sentence}{}{facts}", t.close()));
    }
    s.push_str(t.next_user());
    vec![Piece::Template(s)]
}

/// The part of the prompt for one sentence.
pub fn prompt(t: ChatTemplate, context: &str, sentence: &str) -> Vec<Piece> {
    let context = if context.trim().is_empty() { "(none)" } else { context.trim() };
    vec![
        Piece::Template("Context: ".into()),
        Piece::Data(context.to_string()),
        Piece::Template("\nSentence: ".into()),
        Piece::Data(sentence.trim().to_string()),
        Piece::Template(t.close().into()),
    ]
}

/// The facts in the model's reply, each checked against its sentence and context, or `None` when no
/// line is usable (the caller then checks the sentence itself).
pub fn parse(reply: &str, context: &str, sentence: &str) -> Option<Vec<String>> {
    let own: std::collections::HashSet<String> = content_words(sentence).into_iter().collect();
    let known: std::collections::HashSet<String> = content_words(context).into_iter().chain(own.iter().cloned()).collect();
    let sentence_negated = negated(sentence);
    let mut facts: Vec<String> = Vec::new();
    for line in reply.lines() {
        let t = line.trim().trim_start_matches(['-', '*', '•']).trim();
        let t = t.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start_matches(['.', ')']).trim();
        if t.split_whitespace().count() < 3 {
            continue;
        }
        let words = content_words(t);
        let from_sentence = words.iter().filter(|w| own.contains(*w)).count();
        let unknown = words.iter().filter(|w| !known.contains(*w)).count();
        // Nothing from the sentence, or more than one word from nowhere: not a fact of this sentence.
        if from_sentence == 0 || unknown > 1 || (unknown == 1 && words.len() < 4) {
            continue;
        }
        // A negation the sentence does not have turns its meaning around.
        if negated(t) && !sentence_negated {
            continue;
        }
        let mut fact = t.to_string();
        if !fact.ends_with(['.', '!', '?']) {
            fact.push('.');
        }
        if !facts.contains(&fact) {
            facts.push(fact);
        }
        if facts.len() == 8 {
            break;
        }
    }
    (!facts.is_empty()).then_some(facts)
}

/// Decomposes each (context, sentence) pair; `None` where the sentence is kept as it is (short, or
/// no usable fact came back). `done` is called with the number of sentences decomposed so far, after
/// each (for a progress bar).
pub fn decompose(judge: &mut JudgeModel, items: &[(String, String)], done: &dyn Fn(usize)) -> Result<Vec<Option<Vec<String>>>> {
    let t = judge.template();
    let prefix = judge.encode(&prefix(t))?;
    let mut out = vec![None; items.len()];
    let mut prompts = Vec::new();
    let mut which = Vec::new();
    for (i, (context, sentence)) in items.iter().enumerate() {
        if sentence.split_whitespace().count() > SHORT {
            prompts.push(judge.encode(&prompt(t, context, sentence))?);
            which.push(i);
        }
    }
    // Facts restate the sentence's words: a few times its length is room enough.
    let budgets: Vec<usize> = prompts.iter().map(|p| (p.len() * 3 + 24).min(256)).collect();
    let replies = judge.generate(&prefix, &prompts, &budgets, done)?;
    for (i, reply) in which.into_iter().zip(replies) {
        out[i] = parse(&reply, &items[i].0, &items[i].1);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_read_one_per_line_and_checked_against_the_sentence() {
        let s = "Marie Curie won the Nobel Prize in 1903 and again in 1911.";
        let reply = "- Marie Curie won the Nobel Prize in 1903.\n- Marie Curie won the Nobel Prize in 1911\n2. Marie Curie won the Nobel Prize in 1903.";
        assert_eq!(
            parse(reply, "", s).unwrap(),
            ["Marie Curie won the Nobel Prize in 1903.", "Marie Curie won the Nobel Prize in 1911."]
        );
        // Pronouns resolved from the context are allowed; invented content is not.
        let ctx = "Marie Curie was a physicist.";
        assert_eq!(parse("- Marie Curie won in 1911.", ctx, "She won in 1911.").unwrap(), ["Marie Curie won in 1911."]);
        assert!(parse("- Marie Curie was born in Warsaw in 1867.", ctx, "She won in 1911.").is_none());
        // A negation the sentence does not have is dropped.
        assert_eq!(parse("- The tent is waterproof.\n- The tent is not waterproof.", "", "The tent is waterproof and light.").unwrap(), ["The tent is waterproof."]);
        assert_eq!(parse("- The tent isn't light.", "", "The tent is not light.").unwrap(), ["The tent isn't light."]);
        // Lines that copy only the context, fragments and chatter are dropped.
        assert!(parse("- Marie Curie was a physicist.\n- ok\nSure!", ctx, "She won in 1911.").is_none());
        assert!(parse("", ctx, s).is_none());
    }

    #[test]
    fn the_prompt_shows_the_examples_as_turns_and_the_sentence_as_data() {
        let p: String = prefix(ChatTemplate::ChatMl)
            .iter()
            .map(|p| match p {
                Piece::Template(t) | Piece::Data(t) => t.clone(),
            })
            .collect();
        assert!(p.starts_with("<|im_start|>system\nYou split a sentence"));
        assert_eq!(p.matches("<|im_start|>assistant\n- ").count(), EXAMPLES.len());
        assert!(p.ends_with("<|im_start|>user\n"));
        let q = prompt(ChatTemplate::ChatMl, "", "<|im_start|>It works.");
        assert_eq!(q[1], Piece::Data("(none)".into()));
        assert_eq!(q[3], Piece::Data("<|im_start|>It works.".into()));
        assert!(matches!(&q[4], Piece::Template(t) if t.ends_with("assistant\n")));
    }
}
