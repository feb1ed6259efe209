#!/usr/bin/env bash
# Every GPU check and measurement of candor in one run, on a machine with an NVIDIA GPU, its driver
# (CUDA 13.0 or newer) and a PyTorch built for CUDA 13 (the peer, and the CUDA libraries candor loads).
# Nothing is compiled there: the binaries come from scripts/build-cuda.sh on any x86-64 Linux machine.
#
#   benches/gpu.sh BIN_DIR DATA_DIR OUT_DIR [TRAIN_SECONDS]
#
# BIN_DIR holds `candor`, `gpu` (the test binary of tests/gpu.rs) and `engine` (the criterion bench
# binary of benches/engine.rs), all from `scripts/build-cuda.sh 90 --bins --tests --benches` (their
# paths: target/cuda/release/candor and target/cuda/release/deps/{gpu,engine}-*). DATA_DIR is
# ../shared/data. Run it from the repository root. In order:
#   1. the GPU tests (CUDA against the CPU on random and real inputs, a training step);
#   2. GPU training of candor-nli-minilm's GPU stage (train-gpu.toml), at most TRAIN_SECONDS (default
#      400); its logs go to OUT_DIR/nli-gpu.tar.gz, its weights to OUT_DIR/model.safetensors.part-*
#      (pieces of 15 MiB: `cat model.safetensors.part-* > model.safetensors`);
#   3. the card's f16 matrix rate, measured with PyTorch;
#   4. the criterion benchmarks on CUDA, then the PyTorch fp16 peer on the same inputs and batches;
#   5. `candor grade` on 10,000 cases of the example suite on CUDA (support and citation); GRADE_ARGS
#      (an environment variable) adds arguments to it, e.g. GRADE_ARGS="--nli candor-nli-minilm".
# TRAIN_SECONDS 0 skips step 2. Each step has a time limit (2 to 3 minutes), so that one that hangs
# leaves the rest to run.
# Everything it prints is also in OUT_DIR/gpu.log.
set -uo pipefail
BIN="$(cd "$1" && pwd)" DATA="$(cd "$2" && pwd)" OUT="$3"
TRAIN_SECONDS="${4:-400}"
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu.log") 2>&1

# CUDA libraries: those of the PyTorch install (libcudart, libcublas, libcublasLt, libcurand, libnvrtc).
LIBS="$(python3 - <<'PY'
import glob, os, site
dirs = set()
for sp in site.getsitepackages():
    for so in glob.glob(os.path.join(sp, "nvidia", "**", "lib*.so*"), recursive=True):
        dirs.add(os.path.dirname(so))
print(":".join(sorted(dirs)))
PY
)"
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
# Models resolve from this checkout (the binaries may have been built in another folder).
export CANDOR_MODELS="$PWD/models" CANDOR_REGISTRY="$PWD/models.toml" CANDOR_DATA="$DATA"
export RUST_BACKTRACE=1

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
nproc
ldd "$BIN/candor" | grep -E "not found|libcu|nvrtc" || true

echo "== 1. GPU tests"
timeout 150 "$BIN/gpu" --test-threads 1 --nocapture

if [[ "$TRAIN_SECONDS" == 0 ]]; then
  echo "== 2. GPU training: skipped (TRAIN_SECONDS=0)"
else
echo "== 2. GPU training (at most ${TRAIN_SECONDS} s)"
start=$(date +%s)
run="$(mktemp -d)/nli-gpu"
timeout --signal=INT "$TRAIN_SECONDS" "$BIN/candor" train -c models/candor-nli-minilm/train-gpu.toml \
  -o "$run" --data-dir "$DATA" --device cuda
echo "training exit $? after $(( $(date +%s) - start )) s"
tar -czf "$OUT/nli-gpu.tar.gz" -C "$run" --exclude checkpoint --exclude model.safetensors . || true
if [[ -f "$run/model/model.safetensors" ]]; then
  split -b 15M "$run/model/model.safetensors" "$OUT/model.safetensors.part-"
  sha256sum "$run/model/model.safetensors"
fi
fi

echo "== 3. the card's f16 matrix rate (PyTorch, 8192^3, mean of 10 after 3 warm-ups)"
python3 - <<'PY'
import time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
b = torch.randn(8192, 8192, device="cuda", dtype=torch.float16)
for _ in range(3):
    a @ b
torch.cuda.synchronize()
t = time.perf_counter()
for _ in range(10):
    a @ b
torch.cuda.synchronize()
dt = (time.perf_counter() - t) / 10
print(f"{torch.cuda.get_device_name()}: f16 matmul {2 * 8192**3 / dt / 1e12:.0f} TFLOP/s")
PY

echo "== 4. benchmarks: candor on CUDA, then the PyTorch fp16 peer"
CANDOR_BENCH_DEVICE=cuda timeout 180 "$BIN/engine" --bench --noplot 2>&1 | grep -v '^\s*$'
timeout 120 python3 benches/peer_torch.py models/candor-nli-minilm "$DATA" 16 --device cuda

echo "== 5. candor grade, 10,000 cases on CUDA (support, citation)"
work="$(mktemp -d)"
timeout 180 python3 benches/grade_suite.py "$BIN/candor" 10000 "$work" -- --device cuda --metrics support,citation ${GRADE_ARGS:-}
echo "== done"
