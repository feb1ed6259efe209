//! Int8 linear layers for CPU inference (`[engine] precision = "int8"`).
//!
//! The scheme is the one ONNX Runtime's `quantize_dynamic` and PyTorch's dynamic quantization apply
//! to transformer encoders: the weight is quantized once, at load time, symmetrically per output
//! channel (w ≈ q_w · s_c, q_w in [-127, 127], s_c = max |w_c| / 127); each input row is quantized
//! when the layer runs, symmetrically per row (x ≈ q_x · s_r, s_r = max |x_r| / 127). The dot
//! products of the quantized values are exact in 32-bit integers; y = acc · s_r · s_c + b, then the
//! exact GELU where fused. Only the matrix products are quantized: attention, LayerNorm and the
//! softmax stay in f32.
//!
//! The products run on AVX2 (`vpmaddwd`: pairs of 16-bit products summed into 32-bit lanes, 16
//! multiply-adds an instruction, twice f32 FMA's 8; 8-bit values widened to 16 bits so that no sum
//! saturates, unlike `vpmaddubsw`), with the scaling, bias and GELU in the same registers, else on a
//! portable loop. Both compute the same integers and the same fused multiply-add, so their outputs
//! are bit-identical without GELU and within 1e-6 with it (tested).

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Output columns a micro-kernel call computes (two AVX2 vectors of 32-bit sums).
const NR: usize = 16;
/// Output rows a micro-kernel call computes.
const MR: usize = 6;
/// Rows one thread takes at a time.
const MC: usize = 48;

/// The numeric precision of the encoders' matrix products on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit floating point throughout (the default).
    #[default]
    F32,
    /// Linear layers in 8-bit integers (weights per channel, inputs per row), the rest in f32.
    Int8,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::F32 => "f32",
            Precision::Int8 => "int8",
        })
    }
}

impl std::str::FromStr for Precision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(Precision::F32),
            "int8" => Ok(Precision::Int8),
            other => Err(format!("`{other}`: expected f32 or int8")),
        }
    }
}

/// True where the AVX2 kernel runs (AVX2 and FMA; else the portable loop computes the same integers).
fn avx2() -> bool {
    crate::kernels::cpu::detected(crate::kernels::cpu::Isa::Avx2)
}

/// A linear layer (y = x W^T + b) with W quantized to 8 bits per output channel.
#[derive(Debug)]
pub struct QuantLinear {
    k: usize,
    n: usize,
    /// k rounded up to even (the kernel takes pairs of the inner dimension).
    kp: usize,
    /// ceil(n / NR) panels, each kp / 2 steps of NR columns x 2 values (a column's pair adjacent);
    /// columns past n and the pad of k are zero.
    panels: Vec<i16>,
    /// Per output channel: max |w| / 127 (0 for an all-zero channel), zero-padded to the panels.
    scales: Vec<f32>,
    /// The bias (zeros where none), zero-padded to the panels.
    bias: Vec<f32>,
}

/// Where value `kk` of the inner dimension of lane `lane` (a column of a weight panel, a row of an
/// input block) goes in a block `width` lanes wide: pairs of the inner dimension, lanes side by side.
fn pair_slot(kk: usize, lane: usize, width: usize) -> usize {
    (kk / 2) * 2 * width + 2 * lane + kk % 2
}

/// Symmetric 8-bit quantization of `v` into `out` (values in [-127, 127]); returns the scale.
fn quantize_into(v: &[f32], out: &mut [i16]) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max == 0.0 || !max.is_finite() {
        out.iter_mut().for_each(|o| *o = 0);
        return if max.is_finite() { 0.0 } else { f32::NAN };
    }
    let scale = max / 127.0;
    let inv = 127.0 / max;
    for (o, &x) in out.iter_mut().zip(v) {
        // Round half away from zero without a call to `roundf`; |x inv| <= 127 by construction.
        let y = x * inv;
        *o = ((y + 0.5f32.copysign(y)) as i32).clamp(-127, 127) as i16;
    }
    scale
}

impl QuantLinear {
    /// Quantizes `weight` (out x in, as upstream stores it) and `bias` (out). `None` where the
    /// weight is not f32 on the CPU.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Option<Arc<Self>>> {
        if !weight.device().is_cpu() || weight.dtype() != DType::F32 {
            return Ok(None);
        }
        let (n, k) = weight.dims2()?;
        let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
        let b: Option<Vec<f32>> = bias.map(|b| b.to_vec1()).transpose()?;
        if b.as_ref().is_some_and(|v| v.len() != n) {
            bail!("bias of {} for {n} outputs", b.map_or(0, |v| v.len()));
        }
        Ok(Some(Arc::new(Self::from_slice(&w, n, k, b.as_deref()))))
    }

    /// Quantizes and packs an n x k row-major weight; `bias` has n values when given.
    pub fn from_slice(w: &[f32], n: usize, k: usize, bias: Option<&[f32]>) -> Self {
        assert_eq!(w.len(), n * k, "weight of {} values for {n} x {k}", w.len());
        let kp = k + k % 2;
        let np = n.div_ceil(NR);
        let mut panels = vec![0i16; np * kp * NR];
        let mut scales = vec![0f32; np * NR];
        let mut row = vec![0i16; k];
        for j in 0..n {
            scales[j] = quantize_into(&w[j * k..(j + 1) * k], &mut row);
            let (p, c) = (j / NR, j % NR);
            for (kk, &q) in row.iter().enumerate() {
                panels[p * kp * NR + pair_slot(kk, c, NR)] = q;
            }
        }
        let mut b = vec![0f32; np * NR];
        if let Some(v) = bias {
            b[..n].copy_from_slice(&v[..n]);
        }
        Self { k, n, kp, panels, scales, bias: b }
    }

    /// Applies the layer to `xs` (..., in) f32 on the CPU, then the exact GELU when `gelu`.
    pub fn forward(self: &Arc<Self>, xs: &Tensor, gelu: bool) -> Result<Tensor> {
        xs.contiguous()?.apply_op1_no_bwd(&QuantOp { layer: self.clone(), gelu })
    }

    /// y = quantized(a) quantized(W)^T, scaled back, + b for `m` rows of `a` (row-major m x k).
    pub fn matmul(&self, a: &[f32], m: usize, gelu: bool) -> Vec<f32> {
        self.matmul_on(a, m, gelu, avx2())
    }

    /// [`QuantLinear::matmul`] on the AVX2 kernel when `simd` (and the CPU has AVX2), else the
    /// portable loop.
    fn matmul_on(&self, a: &[f32], m: usize, gelu: bool, simd: bool) -> Vec<f32> {
        let (k, n, kp) = (self.k, self.n, self.kp);
        assert!(a.len() >= m * k, "matmul: {} values for {m} x {k}", a.len());
        let simd = simd && avx2();
        let mut c = vec![0f32; m * n];
        if n == 0 {
            return c;
        }
        c.par_chunks_mut(MC * n).enumerate().for_each(|(chunk, cs)| {
            let row0 = chunk * MC;
            let rows = cs.len() / n;
            // The rows' quantized values as pairs of the inner dimension, MR rows interleaved:
            // for each block of MR rows, kp / 2 steps of MR pairs (rows past the end are zero).
            let blocks = rows.div_ceil(MR);
            let mut apack = vec![0i16; blocks * kp * MR];
            let mut ascale = vec![0f32; blocks * MR];
            let mut q = vec![0i16; kp];
            for r in 0..rows {
                ascale[r] = quantize_into(&a[(row0 + r) * k..(row0 + r + 1) * k], &mut q[..k]);
                let (mb, rr) = (r / MR, r % MR);
                let block = &mut apack[mb * kp * MR..(mb + 1) * kp * MR];
                for (kk, &v) in q.iter().enumerate() {
                    block[pair_slot(kk, rr, MR)] = v;
                }
            }
            let mut acc = [0i32; MR * NR];
            let mut tile = [0f32; MR * NR];
            for p in 0..n.div_ceil(NR) {
                let panel = &self.panels[p * kp * NR..(p + 1) * kp * NR];
                let (scales, bias) = (&self.scales[p * NR..(p + 1) * NR], &self.bias[p * NR..(p + 1) * NR]);
                let cols = NR.min(n - p * NR);
                for mb in 0..blocks {
                    let ap = &apack[mb * kp * MR..(mb + 1) * kp * MR];
                    let sr = &ascale[mb * MR..(mb + 1) * MR];
                    if simd {
                        // SAFETY: `avx2()` is true (AVX2 and FMA); the kernel asserts the lengths
                        // it reads and writes (`ap` kp x MR, `panel` kp x NR, MR row scales, NR
                        // column scales and biases, an MR x NR tile).
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            avx2::kernel(kp / 2, ap, panel, sr, scales, bias, gelu, &mut tile)
                        };
                    } else {
                        portable_kernel(kp / 2, ap, panel, &mut acc);
                        for (i, t) in tile.iter_mut().enumerate() {
                            let (r, c) = (i / NR, i % NR);
                            let v = (acc[i] as f32).mul_add(sr[r] * scales[c], bias[c]);
                            *t = if gelu { crate::kernels::cpu::gelu_scalar(v) } else { v };
                        }
                    }
                    for rr in 0..MR.min(rows - mb * MR) {
                        let at = (mb * MR + rr) * n + p * NR;
                        cs[at..at + cols].copy_from_slice(&tile[rr * NR..rr * NR + cols]);
                    }
                }
            }
        });
        c
    }
}

/// acc[r][c] = sum over `steps` pairs of a's row r pair times b's column c pair (the portable
/// twin of [`avx2::kernel`]: the same integers).
fn portable_kernel(steps: usize, a: &[i16], b: &[i16], acc: &mut [i32; MR * NR]) {
    acc.fill(0);
    for s in 0..steps {
        let ar = &a[s * 2 * MR..(s + 1) * 2 * MR];
        let br = &b[s * 2 * NR..(s + 1) * 2 * NR];
        for r in 0..MR {
            let (a0, a1) = (ar[2 * r] as i32, ar[2 * r + 1] as i32);
            for c in 0..NR {
                acc[r * NR + c] += a0 * br[2 * c] as i32 + a1 * br[2 * c + 1] as i32;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{MR, NR};
    use crate::kernels::cpu::avx2::gelu8;

    /// The MR x NR micro-kernel on 16-bit pairs: for each step, one broadcast 32-bit pair of each
    /// row times the 16 column pairs of `b` (two vectors) through `vpmaddwd`, summed in 32 bits;
    /// then tile = sum · (row scale · column scale) + bias (one fused multiply-add, as the portable
    /// epilogue computes it), and the exact GELU when `gelu`.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA. (Lengths are asserted.)
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel(steps: usize, a: &[i16], b: &[i16], sr: &[f32], sc: &[f32], bias: &[f32], gelu: bool, tile: &mut [f32; MR * NR]) {
        assert!(a.len() >= steps * 2 * MR && b.len() >= steps * 2 * NR && sr.len() >= MR && sc.len() >= NR && bias.len() >= NR);
        let mut c = [[_mm256_setzero_si256(); 2]; MR];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for s in 0..steps {
            // SAFETY: s < steps, so these reads lie inside the lengths asserted above.
            unsafe {
                let b0 = _mm256_loadu_si256(bp.add(s * 2 * NR).cast());
                let b1 = _mm256_loadu_si256(bp.add(s * 2 * NR + 16).cast());
                let arow = ap.add(s * 2 * MR).cast::<i32>();
                for (r, cr) in c.iter_mut().enumerate() {
                    let av = _mm256_set1_epi32(arow.add(r).read_unaligned());
                    cr[0] = _mm256_add_epi32(cr[0], _mm256_madd_epi16(av, b0));
                    cr[1] = _mm256_add_epi32(cr[1], _mm256_madd_epi16(av, b1));
                }
            }
        }
        // SAFETY: sc and bias hold NR = 16 values (asserted); the tile MR x NR, row r's at r NR.
        unsafe {
            let (sc0, sc1) = (_mm256_loadu_ps(sc.as_ptr()), _mm256_loadu_ps(sc.as_ptr().add(8)));
            let (b0, b1) = (_mm256_loadu_ps(bias.as_ptr()), _mm256_loadu_ps(bias.as_ptr().add(8)));
            for (r, cr) in c.iter().enumerate() {
                let s = _mm256_set1_ps(sr[r]);
                let mut v0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(cr[0]), _mm256_mul_ps(s, sc0), b0);
                let mut v1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(cr[1]), _mm256_mul_ps(s, sc1), b1);
                if gelu {
                    v0 = gelu8(v0);
                    v1 = gelu8(v1);
                }
                _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR), v0);
                _mm256_storeu_ps(tile.as_mut_ptr().add(r * NR + 8), v1);
            }
        }
    }
}

struct QuantOp {
    layer: Arc<QuantLinear>,
    gelu: bool,
}

impl CustomOp1 for QuantOp {
    fn name(&self) -> &'static str {
        "candor-int8-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let layer = &self.layer;
        crate::kernels::cpu::linear_fwd(storage, layout, "int8 linear", (layer.k, layer.n), |data, m| layer.matmul(data, m, self.gelu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> f32 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((*seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn f32_reference(a: &[f32], w: &[f32], b: &[f32], m: usize, n: usize, k: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                y[i * n + j] = b[j] + (0..k).map(|kk| a[i * k + kk] * w[j * k + kk]).sum::<f32>();
            }
        }
        y
    }

    #[test]
    fn avx2_and_portable_give_the_same_bits_and_stay_near_f32() {
        // Odd sizes on every axis: partial row blocks, partial panels, an odd inner dimension,
        // more rows than one thread chunk.
        for &(m, n, k) in &[(1, 1, 1), (7, 17, 3), (53, 33, 385), (100, 40, 64), (5, 16, 2)] {
            let mut seed = (m * 1000 + n * 10 + k) as u64;
            let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| 0.1 * lcg(&mut seed)).collect();
            let b: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
            let q = QuantLinear::from_slice(&w, n, k, Some(&b));
            let simd = q.matmul_on(&a, m, false, true);
            let portable = q.matmul_on(&a, m, false, false);
            assert_eq!(simd.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{m}x{n}x{k}");
            // With GELU the vector erf and exp stand in for libm's: within 1e-6.
            let (simd_gelu, portable_gelu) = (q.matmul_on(&a, m, true, true), q.matmul_on(&a, m, true, false));
            for (x, y) in simd_gelu.iter().zip(&portable_gelu) {
                assert!((x - y).abs() <= 1e-6, "{m}x{n}x{k}: GELU {x} vs {y}");
            }
            // Each product's error is at most half a step of each factor: |y - y_f32| is bounded by
            // k (sa sw / 4 + |a| sw / 2 + |w| sa / 2) summed; check against a looser, simple bound.
            let reference = f32_reference(&a, &w, &b, m, n, k);
            for (i, (x, y)) in portable.iter().zip(&reference).enumerate() {
                let bound = 0.02 * (k as f32).sqrt() * 0.1 + 1e-5;
                assert!((x - y).abs() <= bound, "{m}x{n}x{k} at {i}: {x} vs {y} (bound {bound})");
            }
        }
    }

    /// Touches no candle op, so that Miri can run it (`scripts/miri.sh`): the AVX2 kernel through
    /// its safe boundary on a partial row block, a partial panel, two row chunks and an odd depth,
    /// bit for bit against the portable loop.
    #[test]
    fn int8_kernel_in_bounds() {
        if !avx2() {
            eprintln!("skipped: no AVX2 with FMA");
            return;
        }
        for &(m, n, k) in &[(1, 1, 1), (MR + 1, NR + 1, 3), (MC + 1, 2, 5), (2, 3, 0)] {
            let mut seed = (m * 1000 + n * 10 + k) as u64 + 7;
            let a: Vec<f32> = (0..m * k).map(|_| lcg(&mut seed)).collect();
            let w: Vec<f32> = (0..n * k).map(|_| lcg(&mut seed)).collect();
            let b: Vec<f32> = (0..n).map(|_| lcg(&mut seed)).collect();
            let q = QuantLinear::from_slice(&w, n, k, Some(&b));
            let (simd, portable) = (q.matmul_on(&a, m, false, true), q.matmul_on(&a, m, false, false));
            assert_eq!(simd.len(), m * n);
            assert_eq!(simd.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), portable.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{m}x{n}x{k}");
        }
    }

    #[test]
    fn gelu_is_fused_and_zero_rows_and_channels_are_exact() {
        let (m, n, k) = (3, 5, 4);
        let mut a = vec![0.5f32; m * k];
        a[k..2 * k].fill(0.0); // an all-zero row: scale 0, output = bias
        let mut w = vec![0.25f32; n * k];
        w[..k].fill(0.0); // an all-zero channel: output = bias
        let b: Vec<f32> = (0..n).map(|j| j as f32 * 0.1).collect();
        let q = QuantLinear::from_slice(&w, n, k, Some(&b));
        let y = q.matmul(&a, m, false);
        let g = q.matmul(&a, m, true);
        for j in 0..n {
            assert_eq!(y[n + j], b[j]);
        }
        for i in 0..m {
            assert_eq!(y[i * n], b[0]);
        }
        for (x, yg) in y.iter().zip(&g) {
            assert!((crate::kernels::cpu::gelu_scalar(*x) - yg).abs() < 1e-6);
        }
        // 0.5 and 0.25 are exact on the grid: 4 x 0.125 + bias.
        assert!((y[1] - (0.5 + b[1])).abs() < 1e-6, "{}", y[1]);
    }

    #[test]
    fn the_candle_op_matches_the_slice_product_and_checks_the_width() {
        let w = Tensor::new(&[[1f32, -2.0, 0.5], [0.0, 3.0, -1.0]], &candle_core::Device::Cpu).unwrap();
        let b = Tensor::new(&[0.5f32, -0.5], &candle_core::Device::Cpu).unwrap();
        let q = QuantLinear::new(&w, Some(&b)).unwrap().unwrap();
        let x = Tensor::new(&[[[1f32, 1.0, 1.0]], [[2.0, 0.0, -1.0]]], &candle_core::Device::Cpu).unwrap();
        let y = q.forward(&x, false).unwrap();
        assert_eq!(y.dims(), &[2, 1, 2]);
        let got: Vec<f32> = y.flatten_all().unwrap().to_vec1().unwrap();
        let want = [1.0 - 2.0 + 0.5 + 0.5, 3.0 - 1.0 - 0.5, 2.0 - 0.5 + 0.5, 1.0 - 0.5];
        for (g, e) in got.iter().zip(want) {
            assert!((g - e).abs() < 0.05, "{got:?} vs {want:?}");
        }
        let wrong = Tensor::ones((1, 4), DType::F32, &candle_core::Device::Cpu).unwrap();
        assert!(q.forward(&wrong, false).is_err());
        assert_eq!("int8".parse::<Precision>(), Ok(Precision::Int8));
        assert!("fp8".parse::<Precision>().is_err());
    }
}
