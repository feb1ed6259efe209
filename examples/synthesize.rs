//! Prints the synthetic pairs (`candor::text::perturb`) that `candor train --synthesize` would make
//! from a folder or JSON Lines file of documents, one JSON object per line, so they can be read
//! before training on them:
//!
//! ```sh
//! cargo run --release --example synthesize -- DOCS [MAX_DOCUMENTS]
//! ```

use candor::text::perturb::{synthesize, Options};
use candor::train::data::read_documents;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else { anyhow::bail!("usage: synthesize DOCS [MAX_DOCUMENTS]") };
    let mut docs = read_documents(std::path::Path::new(path))?;
    if let Some(n) = args.get(1) {
        docs.truncate(n.parse()?);
    }
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    for p in synthesize(&refs, &Options::default()) {
        println!("{}", serde_json::to_string(&p)?);
    }
    Ok(())
}
