//! candor grades the outputs of LLM applications locally: is each claim supported by the sources, does
//! each citation entail what cites it, do outputs agree with each other and with the reference.
//!
//! The library knows nothing of the command line. Its modules, from the bottom up:
//! - [`models`]: the model registry, model provisioning and verification, and the architectures;
//! - [`engine`]: devices, tokenisation, token-budget batching and de-duplication, and the runtimes
//!   ([`engine::CrossEncoder`], [`engine::Embedder`]) that the graders call.

#![warn(missing_docs)]

pub mod engine;
pub mod error;
pub mod models;
pub mod stats;

pub use error::{Error, Result};
