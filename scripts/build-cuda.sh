#!/usr/bin/env bash
# Builds candor with CUDA on any x86-64 Linux machine, with or without a GPU or a CUDA toolkit.
#
#   scripts/build-cuda.sh [CAP] [cargo build arguments...]
#
# CAP is the GPU's compute capability without the dot: 90 for H100/H200 (the default), 80 for A100,
# 89 for L4/RTX 4090, 86 for A10/RTX 3090. Extra arguments go to cargo, e.g. `--bins --tests --benches`.
#
# What it does:
#   1. installs the CUDA 13.0 compiler, headers and libraries from NVIDIA's wheels (pinned and
#      checksummed in scripts/cuda-requirements.txt) into a private virtualenv, target/cuda-venv;
#   2. makes target/cuda-link: the link-time names of those libraries and a stub libcuda.so (the real one comes with the GPU driver and is loaded at run time);
#   3. runs `cargo build --release --no-default-features --features cuda` into target/cuda.
#
# The binary is target/cuda/release/candor. It is built without the `bundled-model` feature (the
# default NLI model, 45 MB, compiled in), so that it stays small enough to carry to a GPU machine; there
# it finds models/candor-nli-minilm-6 (the default) through the built-in registry's relative path, resolved against the
# working directory and then the binary's folder and the three above it: run it from the checkout, or
# leave it at target/cuda/release/candor inside one (or point CANDOR_MODELS at a folder of models).
# On the GPU machine it needs a driver for CUDA 13.0 or newer (580+) and, on LD_LIBRARY_PATH,
# libcudart.so.13, libcublas.so.13, libcublasLt.so.13, libcurand.so.10 and libnvrtc.so.13:
# target/cuda-venv/.../nvidia/cu13/lib has them, and so does a PyTorch built for CUDA 13. `scripts/build-cuda.sh --print-env` prints the variables to export for running it.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${CANDOR_CUDA_VENV:-$ROOT/target/cuda-venv}"
LINK="$ROOT/target/cuda-link"
TARGET_DIR="${CANDOR_CUDA_TARGET:-$ROOT/target/cuda}"

cap=90
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then cap="$1"; shift; fi

if [[ ! -x "$VENV/bin/nvcc-ok" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --no-deps --require-hashes -r "$ROOT/scripts/cuda-requirements.txt"
  touch "$VENV/bin/nvcc-ok" && chmod +x "$VENV/bin/nvcc-ok"
fi
C="$(echo "$VENV"/lib/python3*/site-packages/nvidia/cu13)"
[[ -x "$C/bin/nvcc" ]] || { echo "build-cuda: nvcc not found under $C" >&2; exit 1; }

if [[ "${1:-}" == "--print-env" ]]; then
  echo "export LD_LIBRARY_PATH=$C/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
  exit 0
fi

export PATH="$C/bin:$PATH" CUDA_ROOT="$C" CUDA_PATH="$C" CUDA_HOME="$C" CUDA_COMPUTE_CAP="$cap"
export NVCC_PREPEND_FLAGS="-I$C/include ${NVCC_PREPEND_FLAGS:-}"
nvcc --version | tail -2

# Link-time names for the versioned libraries of the wheels. RUSTFLAGS is set before the first cargo
# call: a change between two calls would rebuild everything.
mkdir -p "$LINK"
export RUSTFLAGS="-L $LINK ${RUSTFLAGS:-}"
for lib in cudart:13 cublas:13 cublasLt:13 curand:10 nvrtc:13; do
  name="${lib%%:*}" ver="${lib##*:}"
  ln -sf "$C/lib/lib$name.so.$ver" "$LINK/lib$name.so"
done

# A stub libcuda.so for the linker: every driver function the CUDA bindings (cudarc) declare, with an
# empty body. SONAME libcuda.so.1, so that at run time the driver's own library is loaded instead. The
# names come from cudarc's source (the release profile's LTO leaves only bitcode in its rlib, which nm
# cannot read).
if [[ ! -f "$LINK/libcuda.so" ]]; then
  sys="$(cargo metadata --format-version 1 --features cuda --manifest-path "$ROOT/Cargo.toml" \
    | python3 -c 'import json,sys,os; m=json.load(sys.stdin); print(next(os.path.join(os.path.dirname(p["manifest_path"]),"src/driver/sys/mod.rs") for p in m["packages"] if p["name"]=="cudarc"))')"
  grep -ho '^pub unsafe fn cu[A-Z][A-Za-z0-9_]*' "$sys" | awk '{print $4}' | sort -u \
    | awk '{print "void " $1 "(void) {}"}' > "$LINK/cuda_stub.c"
  [[ -s "$LINK/cuda_stub.c" ]] || { echo "build-cuda: no driver symbols found in $sys" >&2; exit 1; }
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$LINK/libcuda.so" "$LINK/cuda_stub.c"
  echo "build-cuda: stub libcuda.so with $(wc -l < "$LINK/cuda_stub.c") symbols"
fi

# No default features: the model is not bundled (see above).
cargo build --release --no-default-features --features cuda --target-dir "$TARGET_DIR" "$@"
echo "build-cuda: done; run with: $("$0" --print-env)"
