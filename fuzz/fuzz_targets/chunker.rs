#![no_main]

#[path = "../checks.rs"]
mod checks;

use std::sync::OnceLock;

static TOKENIZER: OnceLock<candor::engine::TextTokenizer> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    checks::chunker(TOKENIZER.get_or_init(checks::tokenizer), data);
});
