// candor's own CUDA kernels, wired into candle as custom ops by src/engine/fused.rs, which also holds
// their CPU reference implementations. Compiled to PTX by build.rs when the `cuda` feature is on.
//
// Each kernel is instantiated for f32, f16 and bf16 inputs; accumulation and outputs are f32.
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <stdint.h>

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

// Masked mean-pool over the sequence, then (optionally) L2 normalisation, in one launch.
//   states: (batch, seq, hidden), contiguous; mask: (batch, seq) u32, 0 for padding
//   out: (batch, hidden) f32
// One block per batch row; threads stride over the hidden units. The squared norm is reduced in
// shared memory. A row with no real token gives zeros (as the composed ops do: sum 0 / count 1e-9).
template <typename T>
__device__ void pool_normalize(const T* states, const uint32_t* mask, float* out,
                               int seq, int hidden, int normalize) {
  extern __shared__ float shm[];
  const int b = blockIdx.x;
  const T* rows = states + (size_t)b * seq * hidden;
  const uint32_t* m = mask + (size_t)b * seq;
  float count = 0.f;
  for (int t = 0; t < seq; ++t) count += m[t] ? 1.f : 0.f;
  const float inv = 1.f / fmaxf(count, 1e-9f);
  float sq = 0.f;
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) {
    float acc = 0.f;
    for (int t = 0; t < seq; ++t) {
      if (m[t]) acc += to_f32(rows[(size_t)t * hidden + j]);
    }
    acc *= inv;
    out[(size_t)b * hidden + j] = acc;
    sq += acc * acc;
  }
  if (!normalize) return;
  shm[threadIdx.x] = sq;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) shm[threadIdx.x] += shm[threadIdx.x + s];
    __syncthreads();
  }
  const float scale = 1.f / fmaxf(sqrtf(shm[0]), 1e-12f);
  for (int j = threadIdx.x; j < hidden; j += blockDim.x) out[(size_t)b * hidden + j] *= scale;
}

// Softmax over each row of logits, computed in f32, and the probabilities of the selected labels
// gathered into the output, in one launch.
//   logits: (rows, labels), contiguous; cols: (picked) u32 label indices; out: (rows, picked) f32
// One thread per row: classifier heads have a handful of labels.
template <typename T>
__device__ void softmax_gather(const T* logits, const uint32_t* cols, float* out,
                               int rows, int labels, int picked) {
  const int r = blockIdx.x * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const T* x = logits + (size_t)r * labels;
  float mx = -INFINITY;
  for (int k = 0; k < labels; ++k) mx = fmaxf(mx, to_f32(x[k]));
  float sum = 0.f;
  for (int k = 0; k < labels; ++k) sum += __expf(to_f32(x[k]) - mx);
  const float inv = 1.f / sum;
  for (int p = 0; p < picked; ++p) {
    out[(size_t)r * picked + p] = __expf(to_f32(x[cols[p]]) - mx) * inv;
  }
}

#define INSTANTIATE(T, SUFFIX)                                                                    \
  extern "C" __global__ void pool_normalize_##SUFFIX(const T* states, const uint32_t* mask,      \
                                                     float* out, int seq, int hidden,            \
                                                     int normalize) {                            \
    pool_normalize<T>(states, mask, out, seq, hidden, normalize);                                 \
  }                                                                                               \
  extern "C" __global__ void softmax_gather_##SUFFIX(const T* logits, const uint32_t* cols,      \
                                                     float* out, int rows, int labels,           \
                                                     int picked) {                               \
    softmax_gather<T>(logits, cols, out, rows, labels, picked);                                   \
  }

INSTANTIATE(float, f32)
INSTANTIATE(__half, f16)
INSTANTIATE(__nv_bfloat16, bf16)
