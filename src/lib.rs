//! candor grades the outputs of LLM applications locally: is each claim supported by the sources, does
//! each citation entail what cites it, do outputs agree with each other and with the reference.
//!
//! The library knows nothing of the command line. Its modules, from the bottom up (the first three
//! use no module listed after them: tests/layering.rs enforces it, so that no import cycle returns):
//! - [`kernels`]: candor's own compute kernels (AVX-512 CPU kernels, fused tails and their CUDA
//!   launches), on candle alone;
//! - [`models`]: the model registry, model provisioning and verification (and the default NLI model
//!   bundled in the binary), and the architectures, which run on [`kernels`];
//! - [`engine`]: devices, tokenisation, token-budget batching and de-duplication, and the runtimes
//!   ([`engine::CrossEncoder`], [`engine::Embedder`]) that the graders call;
//! - [`suite`] and [`text`]: reading suites, and sentences, claims, citations and chunks;
//! - [`graders`]: support, citation and consistency, configured by [`config`];
//! - [`report`]: summaries of results;
//! - [`train`]: fine-tuning cross-encoders;
//! - [`io`]: guards on what the commands write (no output is an input; no result holds NaN).

#![warn(missing_docs)]

pub mod audit;
pub mod config;
pub mod engine;
pub mod error;
pub mod graders;
pub mod io;
pub mod kernels;
pub mod models;
pub mod report;
pub mod run;
pub mod stats;
pub mod suite;
pub mod text;
pub mod train;

pub use error::{Error, Result};
