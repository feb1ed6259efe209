#!/usr/bin/env bash
# Runs candor's unsafe CPU kernels under Miri, the Rust interpreter that checks every memory
# access: the library tests whose names end in `in_bounds` (src/kernels/*.rs), which drive each
# kernel through its safe boundary on shapes with ragged edges and touch no candle op.
#
# Needs a nightly toolchain with the miri component:
#   rustup toolchain install nightly --component miri rust-src
# The interpreter reports CPU features from the compile-time target features, so the AVX2 and FMA
# kernels are the ones it runs (it does not implement the AVX-512 intrinsics the other kernels use).
# Slow: building the library's dependencies for the interpreter takes several minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+avx2,+fma"
# Tree Borrows: the kernels run under rayon, whose crossbeam-epoch breaks the default Stacked Borrows
# model and is checked by its authors under Tree Borrows (crossbeam-rs/crossbeam#996, #545).
# -Zmiri-ignore-leaks: rayon's pool threads outlive the tests (they are never joined).
export MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-tree-borrows -Zmiri-ignore-leaks"
exec cargo +nightly miri test --lib "$@" -- in_bounds
