//! Kernels: candor's own compute kernels, as candle custom ops, at the bottom of the crate.
//!
//! - [`cpu`]: the AVX-512 and AVX2 CPU kernels of inference (the packed linear layer, attention);
//! - [`train`]: the same kernels with a backward pass each (linear, GELU, LayerNorm, attention), for
//!   `candor train` on the CPU;
//! - [`int8`]: linear layers in 8-bit integers for CPU inference (`[engine] precision = "int8"`);
//! - [`fused`]: the fused tails of the runtimes (pooling and normalisation, softmax and gather), with
//!   their CUDA kernels (kernels/candor.cu) under the `cuda` feature.
//!
//! This module depends on candle only: it imports neither [`crate::models`] nor [`crate::engine`],
//! so that the architectures ([`crate::models::arch`]) and the runtimes ([`crate::engine`]) can both
//! use it without a cycle (tests/layering.rs enforces it).

pub mod cpu;
pub mod fused;
pub mod int8;
pub mod train;
