//! A chat model as a grounding checker, the way Bespoke-MiniCheck is run (MiniCheck's `LLMCheck`,
//! Tang et al. 2024, Liyan06/MiniCheck `minicheck/inference.py` and `utils.py`): the document and
//! the claim in its user prompt under its system prompt, one step of the assistant's answer read,
//! and P(supported) the probability of the tokens that spell "yes" (any case) among the five most
//! likely (the authors read vLLM's top-5 log-probabilities). Any GGUF chat model candor's judge runs
//! can be asked this way; the graders then take the maximum over a document's chunks and, with
//! `[support] aggregation = "min"`, the minimum over claim sentences, as the authors score a claim.
//!
//! Each document's prompt, up to "Claim:", runs once, and every claim read against it continues
//! from its cached keys and values (the authors' vLLM prefix caching).

use std::sync::Mutex;

use candle_core::Device;

use super::batch::TextTokenizer;
use super::judge::{JudgeModel, Piece};
use super::RunStats;
use crate::error::{Error, Result};
use crate::models::ResolvedModel;

/// `SYSTEM_PROMPT` of MiniCheck's utils.py.
pub const SYSTEM_PROMPT: &str = "Determine whether the provided claim is consistent with the corresponding document. Consistency in this context implies that all information presented in the claim is substantiated by the document. If not, it should be considered inconsistent. Please assess the claim's consistency with the document by responding with either \"Yes\" or \"No\".";

/// How many of the most likely next tokens are read (vLLM's `logprobs=5` in the authors' code).
pub const TOP: usize = 5;

/// P(supported) from one row of next-token logits: the softmax probability of the `yes` tokens
/// among the [`TOP`] most likely.
pub fn support_probability(logits: &[f32], yes: &[u32]) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let total: f64 = logits.iter().map(|&l| ((l - max) as f64).exp()).sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let p: f32 = order.iter().take(TOP).filter(|&&i| yes.contains(&(i as u32))).map(|&i| (((logits[i] - max) as f64).exp() / total) as f32).sum();
    // An empty sum is -0.0: written into results as "-0.0".
    p + 0.0
}

/// A judge model asked whether a document supports a claim.
pub struct DecoderChecker {
    judge: Mutex<JudgeModel>,
    tokenizer: TextTokenizer,
    yes: Vec<u32>,
    runtime: String,
    id: String,
}

impl DecoderChecker {
    /// Loads a registry judge model (one `.gguf` file) as a checker. Its registry `max_tokens` is the
    /// context: chunks are sized to leave room for the prompt and the claim.
    pub fn load(model: &ResolvedModel, device: &Device) -> Result<Self> {
        let judge = JudgeModel::load(model, device)?;
        let t = judge.template();
        let frame = judge.encode(&[Piece::Template(format!("{}Document: \nClaim:{}", t.open(SYSTEM_PROMPT), t.close()))])?.len();
        let context = model.entry.max_tokens.min(judge.network().max_positions());
        let room = context.checked_sub(frame + 16).filter(|&r| r >= 64).ok_or_else(|| Error::Unsupported {
            model: model.entry.name.clone(),
            reason: format!("a context of {context} tokens leaves no room for a document beside the checker's prompt ({frame} tokens)"),
        })?;
        let tokenizer = TextTokenizer::from_tokenizer(judge.data_tokenizer().clone(), room, &model.entry.name)?;
        // Every token that decodes to "yes" in any case, with or without a leading space.
        let vocab = judge.data_tokenizer().get_vocab_size(true) as u32;
        let yes = (0..vocab).filter(|&i| judge.decode(&[i]).is_ok_and(|t| t.trim().eq_ignore_ascii_case("yes"))).collect::<Vec<_>>();
        if yes.is_empty() {
            return Err(Error::Unsupported { model: model.entry.name.clone(), reason: "no token of its vocabulary spells \"yes\"".into() });
        }
        Ok(Self { id: judge.id().to_string(), runtime: super::device::runtime(device, crate::kernels::int8::Precision::F32), judge: Mutex::new(judge), tokenizer, yes })
    }

    /// `name@sha-prefix` of the weights.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tokenizer that sizes documents for the checker's context.
    pub fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    /// Device, number type and kernel path.
    pub fn runtime(&self) -> &str {
        &self.runtime
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, JudgeModel>> {
        self.judge.lock().map_err(|_| Error::Judge("the checker's model was poisoned by an earlier failure".into()))
    }

    /// The prompt's tokens for a document, up to "Claim:" (shared by its claims).
    fn document_prompt(judge: &JudgeModel, doc: &str) -> Result<Vec<u32>> {
        judge.encode(&[
            Piece::Template(format!("{}Document: ", judge.template().open(SYSTEM_PROMPT))),
            Piece::Data(doc.to_string()),
            Piece::Template("\nClaim:".into()),
        ])
    }

    /// The rest of the prompt for one claim: the claim, the end of the user's turn and the start of
    /// the assistant's.
    fn claim_prompt(judge: &JudgeModel, claim: &str) -> Result<Vec<u32>> {
        judge.encode(&[Piece::Data(format!(" {}", claim.trim_start())), Piece::Template(judge.template().close().into())])
    }

    /// The whole prompt the model reads for one pair, decoded (for tests and for showing it).
    pub fn prompt_text(&self, doc: &str, claim: &str) -> Result<String> {
        let judge = self.lock()?;
        let ids = [Self::document_prompt(&judge, doc)?, Self::claim_prompt(&judge, claim)?].concat();
        judge.decode(&ids)
    }

    /// Whether each document's prompt runs once for all its claims (on by default; off runs every
    /// pair from its first token, for checking that the reuse changes nothing).
    pub fn set_prefix_reuse(&self, on: bool) -> Result<()> {
        let mut judge = self.lock()?;
        judge.reuse_prefix = on;
        Ok(())
    }

    /// P(supported) for each (document, claim) pair, in input order; whether each prompt was cut to
    /// fit; what was computed. Pairs of one document share its prompt's prefix. `progress` gets the
    /// pairs done after each document.
    pub fn support(&self, pairs: &[(&str, &str)], progress: &(dyn Fn(usize) + Sync)) -> Result<(Vec<f32>, Vec<bool>, RunStats)> {
        let mut judge = self.lock()?;
        let before = judge.stats;
        // Documents in order of first appearance, each with the indices of its pairs.
        let mut docs: Vec<(&str, Vec<usize>)> = vec![];
        let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, (doc, _)) in pairs.iter().enumerate() {
            let k = *at.entry(doc).or_insert_with(|| {
                docs.push((doc, vec![]));
                docs.len() - 1
            });
            docs[k].1.push(i);
        }
        let mut probs = vec![0f32; pairs.len()];
        let mut cut = vec![false; pairs.len()];
        let mut done = 0;
        for (doc, members) in docs {
            let prefix = Self::document_prompt(&judge, doc)?;
            let claims = members.iter().map(|&i| Self::claim_prompt(&judge, pairs[i].1)).collect::<Result<Vec<_>>>()?;
            let (rows, truncated) = judge.next_token_logits(&prefix, &claims)?;
            for ((&i, row), t) in members.iter().zip(&rows).zip(truncated) {
                probs[i] = support_probability(row, &self.yes);
                cut[i] = t;
            }
            done += members.len();
            progress(done);
        }
        let after = judge.stats;
        let stats = RunStats {
            inputs: pairs.len(),
            computed: pairs.len(),
            batches: after.batches - before.batches,
            tokens: after.tokens - before.tokens,
            padded_tokens: after.padded_tokens - before.padded_tokens,
            truncated: cut.iter().filter(|&&c| c).count(),
            model_time: after.model_time.saturating_sub(before.model_time),
        };
        Ok((probs, cut, stats))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The authors' reading: the "yes" tokens' probabilities among the five most likely, nothing
    /// from a "yes" token outside them.
    #[test]
    fn support_is_the_yes_mass_among_the_top_five() {
        // Vocabulary of 8: ids 2 and 6 spell "yes"; id 6 is seventh most likely.
        let logits = [3.0f32, 2.0, 1.0, 0.5, 0.4, 0.3, -5.0, -6.0];
        let total: f32 = logits.iter().map(|l| l.exp()).sum();
        let p = support_probability(&logits, &[2, 6]);
        assert!((p - 1f32.exp() / total).abs() < 1e-6, "{p}");
        let none = support_probability(&[0.0, 9.0, 1.0], &[]);
        assert!(none == 0.0 && none.is_sign_positive(), "{none}");
        let sure = support_probability(&[0.0, 20.0, 0.0], &[1]);
        assert!(sure > 0.999);
    }
}
