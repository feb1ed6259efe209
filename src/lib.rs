//! candor grades the outputs of LLM applications locally: is each claim supported by the sources, does
//! each citation entail what cites it, do outputs agree with each other and with the reference.
//!
//! The library knows nothing of the command line. Its modules, from the bottom up:
//! - [`models`]: the model registry, model provisioning and verification, and the architectures;
//! - [`engine`]: devices, tokenisation, token-budget batching and de-duplication, and the runtimes
//!   ([`engine::CrossEncoder`], [`engine::Embedder`]) that the graders call;
//! - [`suite`] and [`text`]: reading suites, and sentences, claims, citations and chunks;
//! - [`graders`]: support, citation and consistency, configured by [`config`];
//! - [`report`]: summaries of results;
//! - [`train`]: fine-tuning cross-encoders;
//! - [`io`]: guards on what the commands write (no output is an input; no result holds NaN).

#![warn(missing_docs)]

pub mod config;
pub mod engine;
pub mod error;
pub mod graders;
pub mod io;
pub mod models;
pub mod report;
pub mod stats;
pub mod suite;
pub mod text;
pub mod train;

pub use error::{Error, Result};
