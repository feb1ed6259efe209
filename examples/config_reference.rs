//! Prints docs/config.md, the candor.toml reference generated from the config types:
//!
//! ```sh
//! cargo run --example config_reference > docs/config.md
//! ```

fn main() {
    print!("{}", candor::config::reference_markdown());
}
