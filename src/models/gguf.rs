//! What a GGUF chat model carries besides its weights: its tokenizer and its chat template.
//!
//! llama.cpp's converters store the byte-level BPE vocabulary, merges, special tokens and the name of
//! the pre-tokenizer in the file's metadata. [`tokenizer_from_gguf`] rebuilds the equivalent Hugging
//! Face tokenizer from them (as a `tokenizer.json` document), so no separate tokenizer file is needed;
//! [`ChatTemplate`] renders the two template families the registry's judges use (ChatML and Llama 3)
//! without a template engine.

use candle_core::quantized::gguf_file::{Content, Value};
use serde_json::json;
use tokenizers::Tokenizer;

use crate::error::{Error, Result};

fn meta<'a>(ct: &'a Content, key: &str) -> Result<&'a Value> {
    ct.metadata.get(key).ok_or_else(|| Error::Tokenizer(format!("the GGUF file has no `{key}`")))
}

fn strings(v: &Value, key: &str) -> Result<Vec<String>> {
    v.to_vec()
        .map_err(|e| Error::Tokenizer(format!("`{key}`: {e}")))?
        .iter()
        .map(|s| s.to_string().cloned().map_err(|e| Error::Tokenizer(format!("`{key}`: {e}"))))
        .collect()
}

/// The pre-tokenizer llama.cpp names `tokenizer.ggml.pre`, as a Hugging Face pre-tokenizer.
fn pre_tokenizer(name: &str) -> Result<serde_json::Value> {
    // The regular expressions are those of llama.cpp's llama-vocab.cpp and the upstream tokenizer.json.
    const QWEN2: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    const LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    let byte_level = |use_regex: bool| json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": use_regex});
    let split = |re: &str| json!({"type": "Split", "pattern": {"Regex": re}, "behavior": "Isolated", "invert": false});
    Ok(match name {
        "smollm" | "starcoder" | "refact" | "codeshell" => json!({"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": true}, byte_level(true)]}),
        "qwen2" | "deepseek-r1-qwen" => json!({"type": "Sequence", "pretokenizers": [split(QWEN2), byte_level(false)]}),
        "llama-bpe" | "llama3" | "smaug-bpe" => json!({"type": "Sequence", "pretokenizers": [split(LLAMA3), byte_level(false)]}),
        "gpt2" | "default" | "gpt-2" => byte_level(true),
        other => return Err(Error::Tokenizer(format!("GGUF pre-tokenizer `{other}` is not supported (supported: smollm, qwen2, llama-bpe, gpt2)"))),
    })
}

/// Rebuilds the tokenizer of a GGUF file whose `tokenizer.ggml.model` is `gpt2` (byte-level BPE).
pub fn tokenizer_from_gguf(ct: &Content) -> Result<Tokenizer> {
    let model = meta(ct, "tokenizer.ggml.model")?.to_string().map_err(|e| Error::Tokenizer(e.to_string()))?;
    if model != "gpt2" {
        return Err(Error::Tokenizer(format!("GGUF tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)")));
    }
    let tokens = strings(meta(ct, "tokenizer.ggml.tokens")?, "tokenizer.ggml.tokens")?;
    let merges = strings(meta(ct, "tokenizer.ggml.merges")?, "tokenizer.ggml.merges")?;
    let types: Vec<i32> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v.to_vec().map_err(|e| Error::Tokenizer(e.to_string()))?.iter().map(|t| t.to_i32().unwrap_or(1)).collect(),
        None => vec![1; tokens.len()],
    };
    let pre = match ct.metadata.get("tokenizer.ggml.pre") {
        Some(v) => v.to_string().map_err(|e| Error::Tokenizer(e.to_string()))?.clone(),
        None => "gpt2".into(),
    };
    let vocab: serde_json::Map<String, serde_json::Value> =
        tokens.iter().enumerate().map(|(i, t)| (t.clone(), json!(i))).collect();
    // Control (3) and user-defined (4) tokens match as whole units before BPE runs.
    let added: Vec<serde_json::Value> = tokens
        .iter()
        .zip(&types)
        .enumerate()
        .filter(|(_, (_, &ty))| ty == 3 || ty == 4)
        .map(|(i, (t, &ty))| {
            json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": ty == 3})
        })
        .collect();
    let doc = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer(&pre)?,
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges},
    });
    Tokenizer::from_bytes(serde_json::to_vec(&doc).map_err(|e| Error::Tokenizer(e.to_string()))?)
        .map_err(|e| Error::Tokenizer(format!("rebuilding the GGUF tokenizer: {e}")))
}

/// The chat template families candor renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n` (Qwen2, SmolLM2, many others).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>` (Llama 3).
    Llama3,
}

impl ChatTemplate {
    /// Recognises the family of a GGUF's `tokenizer.chat_template`.
    pub fn from_gguf(ct: &Content) -> Result<Self> {
        let t = match ct.metadata.get("tokenizer.chat_template") {
            Some(v) => v.to_string().map_err(|e| Error::Tokenizer(e.to_string()))?.clone(),
            None => String::new(),
        };
        if t.contains("<|im_start|>") {
            Ok(Self::ChatMl)
        } else if t.contains("<|start_header_id|>") {
            Ok(Self::Llama3)
        } else {
            Err(Error::Tokenizer("the GGUF's chat template is neither ChatML nor Llama 3; candor renders only those".into()))
        }
    }

    /// The text of a system message and the start of a user message, up to where `user` begins.
    pub fn open(&self, system: &str) -> String {
        match self {
            Self::ChatMl => format!("<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"),
            Self::Llama3 => format!(
                "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{system}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
            ),
        }
    }

    /// The end of the user message and the start of the assistant's turn.
    pub fn close(&self) -> &'static str {
        match self {
            Self::ChatMl => "<|im_end|>\n<|im_start|>assistant\n",
            Self::Llama3 => "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
        }
    }

    /// The end of the assistant's message and the start of the next user message (for examples
    /// shown as earlier turns).
    pub fn next_user(&self) -> &'static str {
        match self {
            Self::ChatMl => "<|im_end|>\n<|im_start|>user\n",
            Self::Llama3 => "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n",
        }
    }

    /// The special token that ends a turn.
    pub fn end_of_turn(&self) -> &'static str {
        match self {
            Self::ChatMl => "<|im_end|>",
            Self::Llama3 => "<|eot_id|>",
        }
    }
}
