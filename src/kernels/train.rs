//! Differentiable CPU kernels for training (f32, AVX-512 or AVX2): the ops of a BERT layer with a backward
//! pass each, so that `candor train` runs its forward and backward passes through the packed
//! matrix-multiply micro-kernel of [`super::cpu`] instead of candle's generic CPU ops.
//!
//! - [`linear`]: y = x W^T + b; backward dx = dy W, dW = dy^T x, db = column sums of dy, each product
//!   through the packed kernel (W, or x, packed as the "weight" of a layer).
//! - [`gelu`]: the exact (erf) GELU and its derivative Phi(x) + x phi(x).
//! - [`layer_norm`]: LayerNorm over the last dimension with its weight and bias.
//! - [`attention_varlen`]: multi-head self-attention over sequences packed back to back (no padding),
//!   forward by the inference kernel, backward recomputing the probabilities per sequence and head.
//!
//! Each is a candle custom op whose `bwd` returns tensors computed by these kernels (not
//! differentiable again: training needs first derivatives only). They run where [`available`] is
//! true; elsewhere the encoders compose candle's ops, which are the reference the tests compare the
//! gradients against.

use candle_core::{bail, CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::{self, f32_slice, PackedLinear};

/// True when the training kernels run on this CPU: those of [`super::cpu`] (AVX-512 or AVX2 with
/// FMA), not switched off.
pub fn available() -> bool {
    cpu::available()
}

/// Runs `f` on the values of an f32 CPU tensor, read in place (made contiguous first where it is not).
pub fn with_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else { bail!("the training kernels take CPU tensors") };
    Ok(f(f32_slice(cpu, layout, "training kernel")?))
}

fn check_cpu_f32(ts: &[&Tensor], op: &str) -> Result<()> {
    if !available() {
        bail!("{op}: the CPU training kernels are not available here");
    }
    for t in ts {
        if !t.device().is_cpu() || t.dtype() != candle_core::DType::F32 {
            bail!("{op} takes f32 tensors on the CPU");
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Linear

/// y = x W^T + b for `x` (..., k), `weight` (n, k) as upstream stores it, `bias` (n): differentiable
/// in all three.
pub fn linear(x: &Tensor, weight: &Tensor, bias: &Tensor) -> Result<Tensor> {
    check_cpu_f32(&[x, weight, bias], "training linear")?;
    let (n, k) = weight.dims2()?;
    if x.dim(candle_core::D::Minus1)? != k || bias.dims1()? != n {
        bail!("training linear: input {:?}, weight {:?}, bias {:?} do not fit", x.dims(), weight.dims(), bias.dims());
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LinearTrain)
}

struct LinearTrain;

impl CustomOp3 for LinearTrain {
    fn name(&self) -> &'static str {
        "candor-train-linear"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1, "linear")?, f32_slice(s2, l2, "linear")?, f32_slice(s3, l3, "linear")?);
        let (n, k) = l2.shape().dims2()?;
        let m = if k == 0 { 0 } else { x.len() / k };
        let packed = PackedLinear::from_slice(w, n, k, false, Some(b));
        let y = packed.matmul_ex(x, m, false, false);
        let mut shape = l1.shape().dims().to_vec();
        if let Some(last) = shape.last_mut() {
            *last = n;
        }
        Ok((CpuStorage::F32(y), Shape::from(shape)))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (n, k) = w.dims2()?;
        let (dx, dw, db) = with_f32(x, |xs| {
            with_f32(w, |ws| {
                with_f32(dy, |dys| {
                    let m = if n == 0 { 0 } else { dys.len() / n };
                    // dx (m x k) = dy (m x n) W (n x k): W read as the transposed weight of a
                    // k-output layer.
                    let dx = PackedLinear::from_slice(ws, k, n, true, None).matmul_ex(dys, m, false, false);
                    // dW (n x k) = dy^T (n x m) x (m x k): x read as the transposed weight of a
                    // k-output layer, dy given transposed.
                    let dw = PackedLinear::from_slice(xs, k, m, true, None).matmul_ex(dys, n, true, false);
                    (dx, dw, column_sums(dys, m, n))
                })
            })
        })???;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), dev)?),
            Some(Tensor::from_vec(dw, (n, k), dev)?),
            Some(Tensor::from_vec(db, n, dev)?),
        ))
    }
}

/// Sums of the columns of a row-major m x n matrix, rows split over threads.
fn column_sums(a: &[f32], m: usize, n: usize) -> Vec<f32> {
    if n == 0 {
        return vec![];
    }
    let rows_per = 256usize;
    a[..m * n]
        .par_chunks(rows_per * n)
        .map(|block| {
            let mut acc = vec![0f32; n];
            for row in block.chunks_exact(n) {
                for (s, v) in acc.iter_mut().zip(row) {
                    *s += v;
                }
            }
            acc
        })
        // Collected in order and added in order: the same sums whatever the threads did, so that a
        // resumed run reproduces an uninterrupted one bit for bit.
        .collect::<Vec<_>>()
        .into_iter()
        .fold(vec![0f32; n], |mut a, b| {
            for (x, y) in a.iter_mut().zip(&b) {
                *x += y;
            }
            a
        })
}

// ---------------------------------------------------------------------------------------------
// GELU

/// The exact GELU, x Phi(x), differentiable.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    check_cpu_f32(&[x], "training gelu")?;
    x.contiguous()?.apply_op1(GeluTrain)
}

struct GeluTrain;

impl CustomOp1 for GeluTrain {
    fn name(&self) -> &'static str {
        "candor-train-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = f32_slice(s, l, "gelu")?;
        let mut y = x.to_vec();
        y.par_chunks_mut(1 << 14).for_each(|c| elementwise::gelu(c));
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        let mut g = dy.flatten_all()?.to_vec1::<f32>()?;
        with_f32(x, |xs| g.par_chunks_mut(1 << 14).zip(xs.par_chunks(1 << 14)).for_each(|(g, x)| elementwise::gelu_grad(g, x)))?;
        Ok(Some(Tensor::from_vec(g, x.shape(), x.device())?))
    }
}

mod elementwise {
    //! Element-wise GELU and its gradient, 16 (AVX-512) or 8 (AVX2) values at a time.
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::*;

    use crate::kernels::cpu::{isa, Isa};

    /// GELU in place. Only where the kernels are available (the ops check it).
    pub(super) fn gelu(xs: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the instruction set `isa()` names; masked loads and stores stay
        // inside `xs`.
        unsafe {
            match isa() {
                Some(Isa::Avx512) => crate::kernels::cpu::avx512::gelu_in_place(xs),
                Some(Isa::Avx2) => crate::kernels::cpu::avx2::gelu_in_place(xs),
                None => panic!("training gelu on a CPU without the kernels"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("the training kernels run only on x86-64")
    }

    /// g *= GELU'(x), in place. Only where the kernels are available.
    pub(super) fn gelu_grad(g: &mut [f32], x: &[f32]) {
        assert_eq!(g.len(), x.len());
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has the instruction set `isa()` names; `g` and `x` have the same length
        // and masked loads and stores stay inside them.
        unsafe {
            match isa() {
                Some(Isa::Avx512) => gelu_grad_avx512(g, x),
                Some(Isa::Avx2) => gelu_grad_avx2(g, x),
                None => panic!("training gelu on a CPU without the kernels"),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("the training kernels run only on x86-64")
    }

    /// GELU'(x) = Phi(x) + x phi(x) = (1 + erf(x / sqrt 2)) / 2 + x e^(-x^2 / 2) / sqrt(2 pi).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    unsafe fn gelu_grad_avx512(g: &mut [f32], x: &[f32]) {
        use crate::kernels::cpu::avx512::{erf, exp};
        let n = g.len();
        let (gp, xp) = (g.as_mut_ptr(), x.as_ptr());
        let inv_sqrt_2pi = _mm512_set1_ps(0.398_942_3);
        let half = _mm512_set1_ps(0.5);
        let mut i = 0;
        while i < n {
            let m: __mmask16 = if n - i >= 16 { 0xFFFF } else { ((1u32 << (n - i)) - 1) as u16 };
            let v = _mm512_maskz_loadu_ps(m, xp.add(i));
            let cdf = _mm512_fmadd_ps(half, erf(_mm512_mul_ps(v, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2))), half);
            let pdf = _mm512_mul_ps(inv_sqrt_2pi, exp(_mm512_mul_ps(_mm512_set1_ps(-0.5), _mm512_mul_ps(v, v))));
            let d = _mm512_fmadd_ps(v, pdf, cdf);
            let gv = _mm512_maskz_loadu_ps(m, gp.add(i));
            _mm512_mask_storeu_ps(gp.add(i), m, _mm512_mul_ps(gv, d));
            i += 16;
        }
    }

    /// [`gelu_grad_avx512`] on 8 lanes.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn gelu_grad_avx2(g: &mut [f32], x: &[f32]) {
        use crate::kernels::cpu::avx2::{erf8, exp8, lanes};
        let n = g.len();
        let (gp, xp) = (g.as_mut_ptr(), x.as_ptr());
        let inv_sqrt_2pi = _mm256_set1_ps(0.398_942_3);
        let half = _mm256_set1_ps(0.5);
        let mut i = 0;
        while i < n {
            let m = lanes(n - i);
            let v = _mm256_maskload_ps(xp.add(i), m);
            let cdf = _mm256_fmadd_ps(half, erf8(_mm256_mul_ps(v, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2))), half);
            let pdf = _mm256_mul_ps(inv_sqrt_2pi, exp8(_mm256_mul_ps(_mm256_set1_ps(-0.5), _mm256_mul_ps(v, v))));
            let d = _mm256_fmadd_ps(v, pdf, cdf);
            let gv = _mm256_maskload_ps(gp.add(i), m);
            _mm256_maskstore_ps(gp.add(i), m, _mm256_mul_ps(gv, d));
            i += 8;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

/// LayerNorm over the last dimension of `x` with `weight` and `bias` (its width), differentiable in
/// all three.
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    check_cpu_f32(&[x, weight, bias], "training layer norm")?;
    let h = weight.dims1()?;
    if x.dim(candle_core::D::Minus1)? != h || bias.dims1()? != h {
        bail!("training layer norm: input {:?}, weight {:?}, bias {:?} do not fit", x.dims(), weight.dims(), bias.dims());
    }
    x.contiguous()?.apply_op3(&weight.contiguous()?, &bias.contiguous()?, LayerNormTrain { eps: eps as f32 })
}

struct LayerNormTrain {
    eps: f32,
}

/// Mean and 1 / standard deviation of a row.
fn moments(row: &[f32], eps: f32) -> (f32, f32) {
    let h = row.len().max(1) as f32;
    let mean = row.iter().sum::<f32>() / h;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / h;
    (mean, 1.0 / (var + eps).sqrt())
}

impl CustomOp3 for LayerNormTrain {
    fn name(&self) -> &'static str {
        "candor-train-layer-norm"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout, s3: &CpuStorage, l3: &Layout) -> Result<(CpuStorage, Shape)> {
        let (x, w, b) = (f32_slice(s1, l1, "layer norm")?, f32_slice(s2, l2, "layer norm")?, f32_slice(s3, l3, "layer norm")?);
        let h = w.len();
        let mut y = vec![0f32; x.len()];
        if h > 0 {
            y.par_chunks_mut(h).zip(x.par_chunks(h)).for_each(|(out, row)| {
                let (mean, rstd) = moments(row, self.eps);
                for (((o, v), g), bb) in out.iter_mut().zip(row).zip(w).zip(b) {
                    *o = (v - mean) * rstd * g + bb;
                }
            });
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _res: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw, db) = with_f32(x, |xs| with_f32(w, |ws| with_f32(dy, |dys| self.backward(xs, ws, dys))))???;
        let (dev, h) = (x.device(), dw.len());
        Ok((Some(Tensor::from_vec(dx, x.shape(), dev)?), Some(Tensor::from_vec(dw, h, dev)?), Some(Tensor::from_vec(db, h, dev)?)))
    }
}

impl LayerNormTrain {
    /// (dx, dweight, dbias) from the input, the weight and the output's gradient.
    fn backward(&self, xs: &[f32], ws: &[f32], dys: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let h = ws.len();
        let mut dx = vec![0f32; xs.len()];
        let (dw, db) = if h == 0 {
            (vec![], vec![])
        } else {
            dx.par_chunks_mut(h * 64)
                .zip(xs.par_chunks(h * 64))
                .zip(dys.par_chunks(h * 64))
                .map(|((dxb, xb), dyb)| {
                    let (mut dw, mut db) = (vec![0f32; h], vec![0f32; h]);
                    let mut g = vec![0f32; h];
                    let mut xhat = vec![0f32; h];
                    for ((dxr, xr), dyr) in dxb.chunks_exact_mut(h).zip(xb.chunks_exact(h)).zip(dyb.chunks_exact(h)) {
                        let (mean, rstd) = moments(xr, self.eps);
                        for i in 0..h {
                            xhat[i] = (xr[i] - mean) * rstd;
                            g[i] = dyr[i] * ws[i];
                            dw[i] += dyr[i] * xhat[i];
                            db[i] += dyr[i];
                        }
                        let mg = g.iter().sum::<f32>() / h as f32;
                        let mgx = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f32>() / h as f32;
                        for i in 0..h {
                            dxr[i] = rstd * (g[i] - mg - xhat[i] * mgx);
                        }
                    }
                    (dw, db)
                })
                .collect::<Vec<_>>()
                .into_iter()
                .fold((vec![0f32; h], vec![0f32; h]), |(mut a, mut b), (c, d)| {
                    a.iter_mut().zip(&c).for_each(|(x, y)| *x += y);
                    b.iter_mut().zip(&d).for_each(|(x, y)| *x += y);
                    (a, b)
                })
        };
        (dx, dw, db)
    }
}

// ---------------------------------------------------------------------------------------------
// Attention

/// Multi-head self-attention over sequences packed back to back: `qkv` (total rows, 3 x hidden) the
/// stacked Q, K and V projections, `lens` the sequences' lengths; the result is the context (total
/// rows, hidden), softmax(Q K^T / sqrt(d)) V per sequence and head. Differentiable in `qkv`.
pub fn attention_varlen(qkv: &Tensor, lens: &[usize], heads: usize) -> Result<Tensor> {
    check_cpu_f32(&[qkv], "training attention")?;
    cpu::check_varlen(qkv, lens, heads)?;
    qkv.contiguous()?.apply_op1(AttentionTrain(cpu::VarlenAttentionOp::new(heads, lens, false)?))
}

/// [`attention_varlen`] for the first token of each sequence only: (sequences, hidden). Its
/// gradient reaches the keys and values of every row and the first row's query. Every length must
/// be at least 1.
pub fn attention_varlen_first(qkv: &Tensor, lens: &[usize], heads: usize) -> Result<Tensor> {
    if lens.contains(&0) {
        bail!("training attention: an empty sequence has no first token");
    }
    check_cpu_f32(&[qkv], "training attention")?;
    cpu::check_varlen(qkv, lens, heads)?;
    qkv.contiguous()?.apply_op1(AttentionTrain(cpu::VarlenAttentionOp::new(heads, lens, true)?))
}

/// The inference op with a backward pass.
struct AttentionTrain(cpu::VarlenAttentionOp);

impl CustomOp1 for AttentionTrain {
    fn name(&self) -> &'static str {
        "candor-train-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        self.0.cpu_fwd(s, l)
    }

    fn bwd(&self, qkv: &Tensor, _res: &Tensor, dctx: &Tensor) -> Result<Option<Tensor>> {
        let op = &self.0;
        let dctx = if op.first_only {
            // The other rows' contexts were not computed: their gradient is zero.
            let (t, h3) = qkv.dims2()?;
            let idx = Tensor::from_vec(cpu::sequence_starts(&op.lens), op.lens.len(), qkv.device())?;
            Tensor::zeros((t, h3 / 3), candle_core::DType::F32, qkv.device())?.index_add(&idx, &dctx.contiguous()?, 0)?
        } else {
            dctx.contiguous()?
        };
        let d = qkv.apply_op2_no_bwd(&dctx, &AttentionBackward { heads: op.heads, lens: op.lens.clone() })?;
        Ok(Some(d))
    }
}

struct AttentionBackward {
    heads: usize,
    lens: Vec<usize>,
}

impl CustomOp2 for AttentionBackward {
    fn name(&self) -> &'static str {
        "candor-train-attention-backward"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (qkv, dctx) = (f32_slice(s1, l1, "attention backward")?, f32_slice(s2, l2, "attention backward")?);
        let (t, h3) = l1.shape().dims2()?;
        let h = h3 / 3;
        if dctx.len() != t * h {
            bail!("attention backward: gradient of {} values for {t} x {h}", dctx.len());
        }
        let mut dqkv = vec![0f32; t * h3];
        let mut parts = Vec::with_capacity(self.lens.len());
        let (mut q_rest, mut dc_rest, mut d_rest) = (qkv, dctx, dqkv.as_mut_slice());
        for &len in &self.lens {
            let (a, b) = q_rest.split_at(len * h3);
            let (c, d) = dc_rest.split_at(len * h);
            let (e, f) = std::mem::take(&mut d_rest).split_at_mut(len * h3);
            parts.push((a, c, e, len));
            (q_rest, dc_rest, d_rest) = (b, d, f);
        }
        let heads = self.heads;
        parts.into_par_iter().filter(|p| p.3 > 0).for_each(|(rows, dc, out, s)| sequence_backward(rows, dc, out, s, heads));
        Ok((CpuStorage::F32(dqkv), l1.shape().clone()))
    }
}

/// The gradient of one sequence's attention: `rows` (s x 3h) its stacked Q, K, V, `dctx` (s x h) the
/// gradient of its context, into `out` (s x 3h). Per head, with P = softmax(scale Q K^T) recomputed:
/// dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(P * dP)), dQ = scale dS K, dK = scale dS^T Q; the
/// five products through the packed matrix-multiply kernel.
fn sequence_backward(rows: &[f32], dctx: &[f32], out: &mut [f32], s: usize, heads: usize) {
    assert!(available() && rows.len() == out.len() && s > 0 && rows.len() % s == 0);
    let h3 = rows.len() / s;
    let h = h3 / 3;
    let d = h / heads;
    let scale = 1.0 / (d as f32).sqrt();
    let head = |src: &[f32], ld: usize, off: usize| -> Vec<f32> {
        let mut m = Vec::with_capacity(s * d);
        for i in 0..s {
            m.extend_from_slice(&src[i * ld + off..i * ld + off + d]);
        }
        m
    };
    for hd in 0..heads {
        let (qo, ko, vo) = (hd * d, h + hd * d, 2 * h + hd * d);
        let (q, k, v) = (head(rows, h3, qo), head(rows, h3, ko), head(rows, h3, vo));
        let dout = head(dctx, h, qo);
        // Scores Q K^T (s x s): K as the weight of an s-output layer.
        let mut p = PackedLinear::from_slice(&k, s, d, false, None).matmul_ex(&q, s, false, false);
        for row in p.chunks_exact_mut(s) {
            row.iter_mut().for_each(|x| *x *= scale);
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum = exp_shifted(row, mx);
            let inv = 1.0 / sum;
            row.iter_mut().for_each(|x| *x *= inv);
        }
        // dV = P^T dO (P given transposed; dO read as the transposed weight of a d-output layer).
        let dv = PackedLinear::from_slice(&dout, d, s, true, None).matmul_ex(&p, s, true, false);
        // dP = dO V^T, then dS = P (dP - rowsum(P dP)) scaled, in place of dP.
        let mut ds = PackedLinear::from_slice(&v, s, d, false, None).matmul_ex(&dout, s, false, false);
        for (dsr, pr) in ds.chunks_exact_mut(s).zip(p.chunks_exact(s)) {
            let dot: f32 = dsr.iter().zip(pr).map(|(a, b)| a * b).sum();
            dsr.iter_mut().zip(pr).for_each(|(x, pv)| *x = pv * (*x - dot) * scale);
        }
        // dQ = dS K and dK = dS^T Q (K and Q read as transposed weights of d-output layers).
        let dq = PackedLinear::from_slice(&k, d, s, true, None).matmul_ex(&ds, s, false, false);
        let dk = PackedLinear::from_slice(&q, d, s, true, None).matmul_ex(&ds, s, true, false);
        for i in 0..s {
            out[i * h3 + qo..i * h3 + qo + d].copy_from_slice(&dq[i * d..(i + 1) * d]);
            out[i * h3 + ko..i * h3 + ko + d].copy_from_slice(&dk[i * d..(i + 1) * d]);
            out[i * h3 + vo..i * h3 + vo + d].copy_from_slice(&dv[i * d..(i + 1) * d]);
        }
    }
}

/// Replaces each v of `xs` (all at most `mx`) by e^(v - mx); returns their sum.
fn exp_shifted(xs: &mut [f32], mx: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the CPU has the instruction set `isa()` names; masked loads and stores stay inside `xs`.
    unsafe {
        match cpu::isa() {
            Some(cpu::Isa::Avx512) => exp_shifted_avx512(xs, mx),
            Some(cpu::Isa::Avx2) => exp_shifted_avx2(xs, mx),
            None => panic!("training attention on a CPU without the kernels"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("the training kernels run only on x86-64")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn exp_shifted_avx512(xs: &mut [f32], mx: f32) -> f32 {
    use std::arch::x86_64::*;
    let n = xs.len();
    let p = xs.as_mut_ptr();
    let m512 = _mm512_set1_ps(mx);
    let mut sum = _mm512_setzero_ps();
    let mut i = 0;
    while i < n {
        let m: __mmask16 = if n - i >= 16 { 0xFFFF } else { ((1u32 << (n - i)) - 1) as u16 };
        let e = _mm512_maskz_mov_ps(m, cpu::avx512::exp(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, p.add(i)), m512)));
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(p.add(i), m, e);
        i += 16;
    }
    _mm512_reduce_add_ps(sum)
}

/// [`exp_shifted_avx512`] on 8 lanes (the sum in 8 lanes, then across them).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shifted_avx2(xs: &mut [f32], mx: f32) -> f32 {
    use std::arch::x86_64::*;
    let n = xs.len();
    let p = xs.as_mut_ptr();
    let shift = _mm256_set1_ps(mx);
    let mut sum = _mm256_setzero_ps();
    let mut i = 0;
    while i < n {
        let m = cpu::avx2::lanes(n - i);
        let e = _mm256_and_ps(_mm256_castsi256_ps(m), cpu::avx2::exp8(_mm256_sub_ps(_mm256_maskload_ps(p.add(i), m), shift)));
        sum = _mm256_add_ps(sum, e);
        _mm256_maskstore_ps(p.add(i), m, e);
        i += 8;
    }
    let mut lanes = [0f32; 8];
    _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
    lanes.iter().sum()
}

#[cfg(test)]
mod tests {
    //! Each kernel's value and gradients against candle's composed ops (autograd) on random inputs,
    //! with shapes that are not multiples of the kernels' tiles.
    use super::*;
    use candle_core::{DType, Device, Var, D};

    use crate::kernels::cpu::tests::{max_rel, random};

    /// Runs `kernel` and `reference` on the same variables, a random weighting of the output as the
    /// loss, and checks the outputs and every input's gradient agree within `tol` (relative to the
    /// largest reference value).
    fn check(inputs: &[Tensor], kernel: impl Fn(&[Tensor]) -> Tensor, reference: impl Fn(&[Tensor]) -> Tensor, tol: f32) {
        let vars: Vec<Var> = inputs.iter().map(|t| Var::from_tensor(t).unwrap()).collect();
        let ts: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (yk, yr) = (kernel(&ts), reference(&ts));
        assert_eq!(yk.dims(), yr.dims());
        let e = max_rel(&yk, &yr);
        assert!(e < tol, "outputs differ: {e}");
        let w = random(yr.dims(), 99);
        let gk = (yk * &w).unwrap().sum_all().unwrap().backward().unwrap();
        let gr = (yr * &w).unwrap().sum_all().unwrap().backward().unwrap();
        for (i, v) in vars.iter().enumerate() {
            let (a, b) = (gk.get(v.as_tensor()).expect("kernel gradient"), gr.get(v.as_tensor()).expect("reference gradient"));
            let e = max_rel(a, b);
            assert!(e < tol, "gradient of input {i} differs: {e}");
        }
    }

    /// Touches no candle op, so that Miri can run it (`scripts/miri.sh`): the element-wise kernels'
    /// masked loads and stores on lengths around the vector width, against scalar formulas.
    #[test]
    fn elementwise_kernels_in_bounds() {
        if !available() {
            eprintln!("skipped: no AVX-512 or AVX2");
            return;
        }
        for n in [1usize, 7, 8, 9, 17] {
            let x: Vec<f32> = (0..n).map(|i| (i as f32 - n as f32 / 2.0) * 0.7).collect();
            let mut y = x.clone();
            elementwise::gelu(&mut y);
            for (a, b) in y.iter().zip(&x) {
                assert!((a - cpu::gelu_scalar(*b)).abs() < 2e-6, "gelu({b}) = {a}");
            }
            let mut g = vec![2f32; n];
            elementwise::gelu_grad(&mut g, &x);
            for (a, v) in g.iter().zip(&x) {
                let phi = (-0.5 * v * v).exp() / (2.0 * std::f32::consts::PI).sqrt();
                // Phi(v) = GELU(v) / v.
                let cdf = if *v == 0.0 { 0.5 } else { cpu::gelu_scalar(*v) / v };
                let want = 2.0 * (cdf + v * phi);
                assert!((a - want).abs() < 1e-5, "gelu'({v}) x 2 = {a}, want {want}");
            }
            let mut e = x.clone();
            let mx = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            let sum = exp_shifted(&mut e, mx);
            let want: Vec<f32> = x.iter().map(|v| (v - mx).exp()).collect();
            for (a, b) in e.iter().zip(&want) {
                assert!((a - b).abs() < 1e-6, "exp: {a} vs {b}");
            }
            assert!((sum - want.iter().sum::<f32>()).abs() < 1e-5 * n as f32);
        }
    }

    #[test]
    fn linear_value_and_gradients_match_candle() {
        if !available() {
            return;
        }
        // Rows, inputs and outputs off the 12 x 32 tiles and the 384 block; one input past a block.
        for (m, k, n) in [(1, 7, 5), (37, 50, 33), (130, 400, 97)] {
            let inputs = [random(&[m, k], 1), random(&[n, k], 2), random(&[n], 3)];
            check(
                &inputs,
                |t| linear(&t[0], &t[1], &t[2]).unwrap(),
                |t| t[0].matmul(&t[1].t().unwrap()).unwrap().broadcast_add(&t[2]).unwrap(),
                1e-5,
            );
        }
        // Leading dimensions are kept.
        let y = linear(&random(&[2, 3, 8], 4), &random(&[5, 8], 5), &random(&[5], 6)).unwrap();
        assert_eq!(y.dims(), &[2, 3, 5]);
    }

    #[test]
    fn gelu_value_and_gradient_match_candle() {
        if !available() {
            return;
        }
        let x = (random(&[3, 70], 7) * 4.0).unwrap();
        check(&[x], |t| gelu(&t[0]).unwrap(), |t| t[0].gelu_erf().unwrap(), 1e-5);
    }

    #[test]
    fn layer_norm_value_and_gradients_match_composed_ops() {
        if !available() {
            return;
        }
        let inputs = [(random(&[300, 48], 8) * 3.0).unwrap(), random(&[48], 9), random(&[48], 10)];
        let eps = 1e-12;
        check(
            &inputs,
            |t| layer_norm(&t[0], &t[1], &t[2], eps).unwrap(),
            |t| {
                let mean = t[0].mean_keepdim(D::Minus1).unwrap();
                let c = t[0].broadcast_sub(&mean).unwrap();
                let var = c.sqr().unwrap().mean_keepdim(D::Minus1).unwrap();
                let n = c.broadcast_div(&(var + eps).unwrap().sqrt().unwrap()).unwrap();
                n.broadcast_mul(&t[1]).unwrap().broadcast_add(&t[2]).unwrap()
            },
            1e-4,
        );
    }

    #[test]
    fn attention_value_and_gradient_match_composed_ops() {
        if !available() {
            return;
        }
        let (heads, d) = (3, 32);
        let h = heads * d;
        // Lengths off the kernels' blocks of 4 queries and 16 keys, one of a single token.
        let lens = [1usize, 5, 17, 40];
        let t: usize = lens.iter().sum();
        let qkv = (random(&[t, 3 * h], 11) * 2.0).unwrap();
        let composed = |qkv: &Tensor| -> Tensor {
            let mut out = vec![];
            let mut at = 0;
            for &s in &lens {
                let rows = qkv.narrow(0, at, s).unwrap();
                let split = |i: usize| rows.narrow(1, i * h, h).unwrap().reshape((s, heads, d)).unwrap().transpose(0, 1).unwrap().contiguous().unwrap();
                let (q, k, v) = (split(0), split(1), split(2));
                let scores = (q.matmul(&k.t().unwrap()).unwrap() / (d as f64).sqrt()).unwrap();
                let p = candle_nn::ops::softmax(&scores, D::Minus1).unwrap();
                out.push(p.matmul(&v).unwrap().transpose(0, 1).unwrap().reshape((s, h)).unwrap());
                at += s;
            }
            Tensor::cat(&out, 0).unwrap()
        };
        check(&[qkv.clone()], |x| attention_varlen(&x[0], &lens, heads).unwrap(), |x| composed(&x[0]), 1e-4);
        // The first token of each sequence alone: the rows of the full context at the starts.
        let starts = Tensor::new(&[0u32, 1, 6, 23], &Device::Cpu).unwrap();
        check(
            &[qkv],
            |x| attention_varlen_first(&x[0], &lens, heads).unwrap(),
            |x| composed(&x[0]).index_select(&starts, 0).unwrap(),
            1e-4,
        );
        assert!(attention_varlen_first(&random(&[3, 3 * h], 1), &[3, 0], heads).is_err(), "an empty sequence has no first token");
    }

    #[test]
    fn ops_refuse_what_they_cannot_run() {
        if !available() {
            return;
        }
        let x = random(&[4, 8], 1);
        assert!(linear(&x, &random(&[3, 9], 2), &random(&[3], 3)).is_err());
        assert!(layer_norm(&x, &random(&[7], 2), &random(&[8], 3), 1e-5).is_err());
        assert!(attention_varlen(&random(&[5, 3 * 64], 1), &[2, 2], 2).is_err(), "lengths must add up to the rows");
        assert!(attention_varlen(&random(&[5, 3 * 24], 1), &[5], 3).is_err(), "heads of 8 are not taken");
        assert!(linear(&x.to_dtype(DType::F16).unwrap(), &random(&[3, 8], 2), &random(&[3], 3)).is_err());
    }
}
