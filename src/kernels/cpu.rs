//! CPU kernels for inference, where candle's generic CPU path leaves speed on the table.
//!
//! - [`PackedLinear`]: a linear layer whose weight is packed once, at load time, into column panels
//!   for an AVX-512 f32 matrix-multiply micro-kernel (12 rows x 32 columns of the output held in
//!   registers), with the bias and, optionally, the exact (erf) GELU fused into its epilogue. Rows are
//!   split over rayon's threads in blocks of [`MC`]. candle's CPU matmul (the `gemm` crate) runs its
//!   AVX2 kernel on stable Rust even where the CPU has AVX-512, and GELU runs as a separate scalar pass.
//!   The epilogue's GELU computes erf after Abramowitz and Stegun 7.1.26 (|error| below 2e-7).
//! - [`attention`], [`attention_varlen`], [`attention_varlen_first`]: multi-head attention in one
//!   pass over the stacked Q, K, V projections, on padded batches or on sequences packed without
//!   padding.
//!
//! Each kernel has an AVX-512 form and an AVX2 (with FMA) form over the same packed operands
//! ([`Isa`], chosen once at run time by CPU features): the AVX2 micro-kernel computes a 12 x 32 tile
//! as four 6 x 16 parts (twelve accumulators in the sixteen 256-bit registers), attention works on
//! 8 keys a vector. Every test runs each form the CPU has against candle's composed ops.
//!
//! All are candle custom ops without a backward pass: the encoders use them only in evaluation mode,
//! on the CPU, in f32, for models loaded for inference (whose weights do not change). Training runs
//! the same micro-kernel and attention kernel through [`super::train`], whose ops have backward
//! passes (on AVX-512 CPUs only: its element-wise ops have no AVX2 form). Where the CPU has neither
//! (or on other architectures) nothing is packed and candle's own ops run. The composed candle ops
//! are the reference the tests compare against.

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Rows of the output a micro-kernel call computes.
pub const MR: usize = 12;
/// Columns of the output a micro-kernel call computes (two AVX-512 vectors).
pub const NR: usize = 32;
/// Depth of one block of the inner dimension: the whole of a 384-wide model's, so that its output
/// tiles are written once (chosen by measurement, with [`MC`], on a 2-core AVX-512 Xeon: 150-165
/// GFLOP/s against 100 for 256 x 96; see benches/README.md).
pub const KC: usize = 384;
/// Rows of the output one thread takes at a time (an A block of MC x KC f32 is 72 KiB: level-2 cache).
pub const MC: usize = 48;

/// The vector instruction set the kernels run with: AVX-512F, or AVX2 with FMA (the x86-64 CPUs
/// without AVX-512, older Intel and AMD before Zen 4, that CI runners often are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// 16 lanes, mask registers: the kernels' first form.
    Avx512,
    /// 8 lanes: the same packing and tiles, each 12 x 32 tile computed as four 6 x 16 halves.
    Avx2,
}

/// True when this CPU has the instructions of `isa`.
pub fn detected(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// The instruction set the kernels run with on this CPU: the widest detected, or none. The
/// environment variable `CANDOR_CPU_KERNELS` (read once) switches them off (`off` or `0`: candle's
/// own ops, for comparison) or asks for the AVX2 kernels on an AVX-512 CPU (`avx2`).
pub fn isa() -> Option<Isa> {
    static ISA: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| {
        let asked = std::env::var("CANDOR_CPU_KERNELS").unwrap_or_default();
        match asked.as_str() {
            "off" | "0" => None,
            "avx2" => Some(Isa::Avx2).filter(|&i| detected(i)),
            _ => [Isa::Avx512, Isa::Avx2].into_iter().find(|&i| detected(i)),
        }
    })
}

/// True when this CPU runs candor's kernels (AVX-512 or AVX2), and they are not switched off.
pub fn available() -> bool {
    isa().is_some()
}

/// A linear layer (y = x W^T + b) with W packed for the micro-kernel (AVX-512 or AVX2).
#[derive(Debug)]
pub struct PackedLinear {
    k: usize,
    n: usize,
    /// ceil(n / NR) panels, each k rows of NR weights (columns past n are zero).
    panels: Vec<f32>,
    /// The bias, zero-padded to a multiple of NR.
    bias: Vec<f32>,
}

impl PackedLinear {
    /// Packs `weight` (out x in, as upstream stores it) and `bias` (out). `None` where the kernels do
    /// not apply: neither AVX-512 nor AVX2, or weights that are not f32 on the CPU.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>) -> Result<Option<Arc<Self>>> {
        if !available() || !weight.device().is_cpu() || weight.dtype() != DType::F32 {
            return Ok(None);
        }
        let (n, k) = weight.dims2()?;
        let w: Vec<f32> = weight.flatten_all()?.to_vec1()?;
        let b: Option<Vec<f32>> = bias.map(|b| b.to_vec1()).transpose()?;
        if let Some(v) = &b {
            if v.len() != n {
                bail!("bias of {} for {n} outputs", v.len());
            }
        }
        Ok(Some(Arc::new(Self::from_slice(&w, n, k, false, b.as_deref()))))
    }

    /// Packs an n x k weight held in `w`: row-major n x k (as upstream stores a linear layer's
    /// weight), or, when `transposed`, row-major k x n (so that y = a w runs as a layer too).
    /// `bias` has n values when given. Callers check [`available`] before multiplying.
    pub(crate) fn from_slice(w: &[f32], n: usize, k: usize, transposed: bool, bias: Option<&[f32]>) -> Self {
        debug_assert_eq!(w.len(), n * k);
        let np = n.div_ceil(NR);
        let mut panels = vec![0f32; np * k * NR];
        if transposed {
            for kk in 0..k {
                let row = &w[kk * n..kk * n + n];
                for p in 0..np {
                    let cols = NR.min(n - p * NR);
                    panels[p * k * NR + kk * NR..p * k * NR + kk * NR + cols].copy_from_slice(&row[p * NR..p * NR + cols]);
                }
            }
        } else {
            for (j, row) in w.chunks_exact(k.max(1)).take(n).enumerate() {
                let (p, c) = (j / NR, j % NR);
                for (kk, &v) in row.iter().enumerate() {
                    panels[p * k * NR + kk * NR + c] = v;
                }
            }
        }
        let mut b = vec![0f32; np * NR];
        if let Some(v) = bias {
            b[..n].copy_from_slice(&v[..n]);
        }
        Self { k, n, panels, bias: b }
    }


    /// Applies the layer to `xs` (..., in) f32 on the CPU, then the exact GELU when `gelu`.
    pub fn forward(self: &Arc<Self>, xs: &Tensor, gelu: bool) -> Result<Tensor> {
        xs.contiguous()?.apply_op1_no_bwd(&LinearOp { packed: self.clone(), gelu })
    }

    /// y = a W^T + b for `m` rows of `a` (row-major, m x k).
    fn matmul(&self, a: &[f32], m: usize, gelu: bool) -> Vec<f32> {
        self.matmul_ex(a, m, false, gelu)
    }

    /// y = a W^T + b for `m` rows of `a`: `a` row-major m x k, or, when `a_transposed`, row-major
    /// k x m (a^T is given). Panics where `a` is shorter than m x k; only where [`available`].
    pub(crate) fn matmul_ex(&self, a: &[f32], m: usize, a_transposed: bool, gelu: bool) -> Vec<f32> {
        let isa = isa().expect("packed matmul on a CPU without the kernels' instructions");
        self.matmul_on(isa, a, m, a_transposed, gelu)
    }

    /// [`PackedLinear::matmul_ex`] with the kernel of `isa`. Panics where `a` is shorter than
    /// m x k or the CPU lacks `isa`.
    pub(crate) fn matmul_on(&self, isa: Isa, a: &[f32], m: usize, a_transposed: bool, gelu: bool) -> Vec<f32> {
        let (k, n) = (self.k, self.n);
        assert!(a.len() >= m * k, "matmul: {} values for {m} x {k}", a.len());
        assert!(detected(isa), "packed matmul with {isa:?} on a CPU without it");
        if m == 0 || n == 0 {
            return vec![0f32; m * n];
        }
        // The output is not zeroed first: every element is written below (each tile stores all its
        // rows and columns on the first block of k; k == 0 writes the bias).
        let mut c: Vec<f32> = Vec::with_capacity(m * n);
        c.spare_capacity_mut().par_chunks_mut(MC * n).enumerate().for_each(|(chunk, cs)| {
            let row0 = chunk * MC;
            let rows = cs.len() / n;
            let cbase = cs.as_mut_ptr().cast::<f32>();
            let mut apack = vec![0f32; rows.div_ceil(MR) * MR * KC];
            let mut k0 = 0;
            // k == 0: the output is the bias (and its GELU).
            if k == 0 {
                for r in 0..rows {
                    for j in 0..n {
                        let v = self.bias[j];
                        cs[r * n + j].write(if gelu { gelu_scalar(v) } else { v });
                    }
                }
                return;
            }
            while k0 < k {
                let kc = KC.min(k - k0);
                if a_transposed {
                    pack_a_transposed(a, m, row0, rows, k0, kc, &mut apack);
                } else {
                    pack_a(a, k, row0, rows, k0, kc, &mut apack);
                }
                let last = k0 + kc == k;
                for p in 0..n.div_ceil(NR) {
                    let cols = NR.min(n - p * NR);
                    let panel = &self.panels[p * k * NR + k0 * NR..p * k * NR + (k0 + kc) * NR];
                    for mb in 0..rows.div_ceil(MR) {
                        let r = MR.min(rows - mb * MR);
                        let ap = &apack[mb * kc * MR..(mb + 1) * kc * MR];
                        let tile = Tile { rows: r, cols, ldc: n, first: k0 == 0, gelu: gelu && last };
                        // SAFETY: the CPU has `isa` (asserted above); `ap` holds kc x MR values, `panel`
                        // kc x NR, `self.bias[p*NR..]` NR, and the tile's `r` rows of `cols` columns
                        // from row mb MR, column p NR lie inside this chunk's `rows` x n outputs (read
                        // only where this call wrote them before).
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            let cp = cbase.add(mb * MR * n + p * NR);
                            let bias = &self.bias[p * NR..p * NR + NR];
                            match isa {
                                Isa::Avx512 => avx512::kernel(kc, ap, panel, bias, cp, tile),
                                Isa::Avx2 => avx2::kernel(kc, ap, panel, bias, cp, tile),
                            }
                        };
                        #[cfg(not(target_arch = "x86_64"))]
                        {
                            let _ = (ap, panel, cbase, tile);
                            unreachable!("packed layers exist only on x86-64");
                        }
                    }
                }
                k0 += kc;
            }
        });
        // SAFETY: every one of the m x n elements was written above.
        unsafe { c.set_len(m * n) };
        c
    }
}

/// Where a micro-kernel writes: the valid part of its MR x NR tile and what to do there.
#[derive(Debug, Clone, Copy)]
struct Tile {
    rows: usize,
    cols: usize,
    ldc: usize,
    /// First block of the inner dimension: start from the bias, not from the output.
    first: bool,
    /// Last block, with GELU: apply it before storing.
    gelu: bool,
}

/// Copies rows `row0..row0+rows`, columns `k0..k0+kc` of `a` (row-major, `k` wide) into `out` as
/// micro-row blocks: for each block of MR rows, kc steps of MR values (rows past the end are zero).
fn pack_a(a: &[f32], k: usize, row0: usize, rows: usize, k0: usize, kc: usize, out: &mut [f32]) {
    for mb in 0..rows.div_ceil(MR) {
        let block = &mut out[mb * kc * MR..(mb + 1) * kc * MR];
        for r in 0..MR {
            let row = mb * MR + r;
            if row < rows {
                let src = &a[(row0 + row) * k + k0..(row0 + row) * k + k0 + kc];
                for (kk, &v) in src.iter().enumerate() {
                    block[kk * MR + r] = v;
                }
            } else {
                for kk in 0..kc {
                    block[kk * MR + r] = 0.0;
                }
            }
        }
    }
}

/// [`pack_a`] for a given transposed: `at` is row-major k x m (column `row` of it is row `row` of a).
fn pack_a_transposed(at: &[f32], m: usize, row0: usize, rows: usize, k0: usize, kc: usize, out: &mut [f32]) {
    for mb in 0..rows.div_ceil(MR) {
        let block = &mut out[mb * kc * MR..(mb + 1) * kc * MR];
        let r0 = row0 + mb * MR;
        let valid = MR.min(rows - mb * MR);
        for kk in 0..kc {
            let src = &at[(k0 + kk) * m + r0..(k0 + kk) * m + r0 + valid];
            let dst = &mut block[kk * MR..kk * MR + MR];
            dst[..valid].copy_from_slice(src);
            dst[valid..].fill(0.0);
        }
    }
}

struct LinearOp {
    packed: Arc<PackedLinear>,
    gelu: bool,
}

impl CustomOp1 for LinearOp {
    fn name(&self) -> &'static str {
        "candor-packed-linear"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        linear_fwd(storage, layout, "packed linear", (self.packed.k, self.packed.n), |data, m| self.packed.matmul(data, m, self.gelu))
    }
}

/// The forward pass of a linear custom op over the last axis: checks that the input is `k` wide,
/// calls `matmul` on its rows (the slice and the row count) and shapes the `n`-wide result.
pub(crate) fn linear_fwd(
    storage: &CpuStorage,
    layout: &Layout,
    op: &str,
    (k_layer, n): (usize, usize),
    matmul: impl Fn(&[f32], usize) -> Vec<f32>,
) -> Result<(CpuStorage, Shape)> {
    let data = f32_slice(storage, layout, op)?;
    let dims = layout.shape().dims();
    let k = dims.last().copied().unwrap_or(0);
    if k != k_layer {
        bail!("{op} of width {k_layer} applied to input of width {k}");
    }
    let m = if k == 0 { dims[..dims.len().saturating_sub(1)].iter().product() } else { data.len() / k };
    let out = matmul(data, m);
    let mut shape = dims.to_vec();
    if let Some(last) = shape.last_mut() {
        *last = n;
    }
    Ok((CpuStorage::F32(out), Shape::from(shape)))
}

/// Abramowitz and Stegun 7.1.26's erf: p, then a5 down to a1 (Horner's order).
pub(crate) const ERF_AS: (f32, [f32; 5]) = (0.327_591_1, [1.061_405_4, -1.453_152, 1.421_413_7, -0.284_496_74, 0.254_829_6]);
/// e^r on |r| <= ln 2 / 2 by Taylor to degree 7, in Horner's order (1/7! first).
pub(crate) const EXP_TAYLOR: [f32; 8] = [1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0];

/// Scalar exact GELU (the same approximation of erf as the vector code).
pub fn gelu_scalar(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_as(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// erf after Abramowitz and Stegun 7.1.26 (|error| <= 1.5e-7).
fn erf_as(x: f32) -> f32 {
    let (p, a) = ERF_AS;
    let ax = x.abs();
    let t = 1.0 / (1.0 + p * ax);
    let poly = a[1..].iter().fold(a[0], |acc, &c| acc * t + c);
    let y = 1.0 - poly * t * (-ax * ax).exp();
    y.copysign(x)
}

/// Multi-head self-attention on the CPU in one pass, for evaluation: `qkv` is (batch, seq, 3 x hidden),
/// the stacked Q, K and V projections as the encoders compute them; `bias` is the additive key mask
/// (batch, 1, 1, seq) or (batch, seq) f32; the result is the attention context (batch, seq, hidden),
/// softmax(Q K^T / sqrt(d) + bias) V per head, with the heads side by side as upstream lays them out.
/// It replaces the split, transposes, two batched matmuls, the softmax and the merge, and never
/// materialises the (batch, heads, seq, seq) scores. Needs [`available`] and a head width that is a multiple
/// of 16 and at most 128 ([`attention_applies`]).
pub fn attention(qkv: &Tensor, bias: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, s, h3) = qkv.dims3()?;
    check_heads(h3, heads)?;
    if bias.elem_count() != b * s || bias.dtype() != DType::F32 {
        bail!("cpu attention: bias must be {b} x {s} f32");
    }
    let bias = bias.reshape((b, s))?.contiguous()?;
    qkv.contiguous()?.apply_op2_no_bwd(&bias, &AttentionOp { heads, isa: kernel_isa()? })
}

/// Checks that stacked projections `h3` wide split into `heads` heads the kernel takes.
pub(crate) fn check_heads(h3: usize, heads: usize) -> Result<()> {
    if h3 % 3 != 0 || heads == 0 || (h3 / 3) % heads != 0 || !attention_applies(h3 / 3 / heads) {
        bail!("cpu attention: {h3} / 3 does not split into {heads} heads of a multiple of 16 up to 128");
    }
    Ok(())
}

/// The f32 values of a contiguous CPU tensor, or an error naming the op.
pub(crate) fn f32_slice<'a>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = storage else { bail!("{op} takes f32 input") };
    let Some((start, end)) = layout.contiguous_offsets() else { bail!("{op} takes contiguous input") };
    Ok(&data[start..end])
}

/// The instruction set the kernels run with, or an error where there is none.
fn kernel_isa() -> Result<Isa> {
    match isa() {
        Some(i) => Ok(i),
        None => bail!("cpu attention: this CPU has neither AVX-512 nor AVX2 with FMA (or the kernels are off)"),
    }
}

/// True when [`attention`] runs for heads of width `head_dim` on this CPU.
pub fn attention_applies(head_dim: usize) -> bool {
    available() && head_dim % 16 == 0 && head_dim > 0 && head_dim <= 128
}

struct AttentionOp {
    heads: usize,
    isa: Isa,
}

impl candle_core::CustomOp2 for AttentionOp {
    fn name(&self) -> &'static str {
        "candor-cpu-attention"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(qkv), CpuStorage::F32(bias)) = (s1, s2) else { bail!("cpu attention takes f32") };
        let (Some((a0, a1)), Some((b0, b1))) = (l1.contiguous_offsets(), l2.contiguous_offsets()) else {
            bail!("cpu attention takes contiguous inputs")
        };
        let (qkv, bias) = (&qkv[a0..a1], &bias[b0..b1]);
        let (b, s, h3) = l1.shape().dims3()?;
        let h = h3 / 3;
        let mut out = vec![0f32; b * s * h];
        if b * s == 0 {
            return Ok((CpuStorage::F32(out), Shape::from((b, s, h))));
        }
        let (heads, isa) = (self.heads, self.isa);
        out.par_chunks_mut(s * h).enumerate().for_each(|(bi, ctx)| {
            attend_sequence(isa, &qkv[bi * s * h3..(bi + 1) * s * h3], s, s, heads, &bias[bi * s..(bi + 1) * s], ctx)
        });
        Ok((CpuStorage::F32(out), Shape::from((b, s, h))))
    }
}

/// Attention within one sequence of `s` rows of stacked Q, K, V (`rows`, s x 3h) with the additive
/// key mask `mask` (s), into `ctx`: the first `queries` rows' contexts (queries x h; `queries` = s
/// for all of them, 1 for the first token's alone), with the kernels of `isa`.
fn attend_sequence(isa: Isa, rows: &[f32], s: usize, queries: usize, heads: usize, mask: &[f32], ctx: &mut [f32]) {
    assert!(detected(isa) && mask.len() >= s && ctx.len() >= queries * (rows.len() / s.max(1) / 3));
    let h3 = rows.len() / s.max(1);
    let h = h3 / 3;
    let d = h / heads.max(1);
    assert!(heads > 0 && h % heads == 0 && d % 16 == 0 && d > 0 && d <= 128, "cpu attention: heads of {d}");
    let ld = s.next_multiple_of(16);
    let mut kt = vec![0f32; d * ld];
    let mut scores = vec![0f32; 4 * ld];
    for hd in 0..heads {
        // K of this head transposed, (d, seq padded to 16), so that 16 keys are one vector.
        for j in 0..s {
            let k = &rows[j * h3 + h + hd * d..j * h3 + h + hd * d + d];
            for (dd, &v) in k.iter().enumerate() {
                kt[dd * ld + j] = v;
            }
        }
        let (q, v) = (rows[hd * d..].as_ptr(), rows[2 * h + hd * d..].as_ptr());
        let o = ctx[hd * d..].as_mut_ptr();
        let scale = 1.0 / (d as f32).sqrt();
        let mut i = 0;
        while i < queries {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has `isa` (asserted above); the heads are ones `attention_applies`
            // takes (d = 16 NV with NV from 1 to 8: `check_heads` before every op); `kt` is d x ld,
            // `scores` 4 x ld, and rows i..i+r of q, V (h3 apart) and of the output (h apart) lie
            // inside `rows` and `ctx`.
            let r = unsafe {
                let (q, o) = (q.add(i * h3), o.add(i * h));
                match isa {
                    Isa::Avx512 => {
                        let r = if queries - i >= 4 && d <= 64 { 4 } else { 1 };
                        macro_rules! go {
                            ($r:literal, $nv:literal) => {
                                avx512::attend_rows::<$r, $nv>(q, h3, &kt, ld, s, mask, v, h3, &mut scores, o, h, scale)
                            };
                        }
                        match (r, d / 16) {
                            (4, 1) => go!(4, 1),
                            (4, 2) => go!(4, 2),
                            (4, 3) => go!(4, 3),
                            (4, 4) => go!(4, 4),
                            (_, 1) => go!(1, 1),
                            (_, 2) => go!(1, 2),
                            (_, 3) => go!(1, 3),
                            (_, 4) => go!(1, 4),
                            (_, 5) => go!(1, 5),
                            (_, 6) => go!(1, 6),
                            (_, 7) => go!(1, 7),
                            _ => go!(1, 8),
                        }
                        r
                    }
                    Isa::Avx2 => {
                        // Two rows where their accumulators fit the 16 registers (d <= 32).
                        let r = if queries - i >= 2 && d <= 32 { 2 } else { 1 };
                        macro_rules! go {
                            ($r:literal, $nv:literal) => {
                                avx2::attend_rows::<$r, $nv>(q, h3, &kt, ld, s, mask, v, h3, &mut scores, o, h, scale)
                            };
                        }
                        match (r, d / 8) {
                            (2, 2) => go!(2, 2),
                            (2, 4) => go!(2, 4),
                            (_, 2) => go!(1, 2),
                            (_, 4) => go!(1, 4),
                            (_, 6) => go!(1, 6),
                            (_, 8) => go!(1, 8),
                            (_, 10) => go!(1, 10),
                            (_, 12) => go!(1, 12),
                            (_, 14) => go!(1, 14),
                            _ => go!(1, 16),
                        }
                        r
                    }
                }
            };
            #[cfg(not(target_arch = "x86_64"))]
            let r = {
                let _ = (q, v, o, scale, mask, &mut scores, &kt);
                unreachable!("cpu attention runs only on x86-64")
            };
            i += r;
        }
    }
}

/// Attention over sequences packed back to back without padding (variable length): `qkv` is
/// (total rows, 3 x hidden), the rows of sequence i being the `lens[i]` after those of the sequences
/// before it; the result is (total rows, hidden). Each sequence attends only to itself. Needs what
/// [`attention`] needs.
pub fn attention_varlen(qkv: &Tensor, lens: &[usize], heads: usize) -> Result<Tensor> {
    varlen(qkv, lens, heads, false)
}

/// [`attention_varlen`] for the first token of each sequence only: (sequences, hidden). A classifier
/// that reads the first token's state needs no other row of its last layer. Every length must be
/// at least 1.
pub fn attention_varlen_first(qkv: &Tensor, lens: &[usize], heads: usize) -> Result<Tensor> {
    if lens.contains(&0) {
        bail!("cpu attention: an empty sequence has no first token");
    }
    varlen(qkv, lens, heads, true)
}

/// The checks and the op behind [`attention_varlen`] and [`attention_varlen_first`].
fn varlen(qkv: &Tensor, lens: &[usize], heads: usize, first_only: bool) -> Result<Tensor> {
    check_varlen(qkv, lens, heads)?;
    qkv.contiguous()?.apply_op1_no_bwd(&VarlenAttentionOp::new(heads, lens, first_only)?)
}

/// What variable-length attention needs: (rows, 3 x hidden) stacked projections, heads the kernel
/// takes, lengths adding up to the rows.
pub(crate) fn check_varlen(qkv: &Tensor, lens: &[usize], heads: usize) -> Result<()> {
    let (t, h3) = qkv.dims2()?;
    check_heads(h3, heads)?;
    if lens.iter().sum::<usize>() != t {
        bail!("cpu attention: sequence lengths add up to {}, not {t} rows", lens.iter().sum::<usize>());
    }
    Ok(())
}

/// The row at which each of the sequences of `lens`, packed back to back, starts.
pub fn sequence_starts(lens: &[usize]) -> Vec<u32> {
    lens.iter()
        .scan(0u32, |at, &n| {
            let s = *at;
            *at += n as u32;
            Some(s)
        })
        .collect()
}

/// Variable-length attention as a candle op (no backward here; `kernels::train` wraps it in one).
pub(crate) struct VarlenAttentionOp {
    pub(crate) heads: usize,
    pub(crate) lens: Vec<usize>,
    pub(crate) first_only: bool,
    isa: Isa,
}

impl VarlenAttentionOp {
    /// The op over sequences of `lens`, with this CPU's kernels (an error where there are none).
    pub(crate) fn new(heads: usize, lens: &[usize], first_only: bool) -> Result<Self> {
        Ok(Self { heads, lens: lens.to_vec(), first_only, isa: kernel_isa()? })
    }
}

impl CustomOp1 for VarlenAttentionOp {
    fn name(&self) -> &'static str {
        "candor-cpu-attention-varlen"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let qkv = f32_slice(storage, layout, "cpu attention")?;
        let (t, h3) = layout.shape().dims2()?;
        let out = varlen_slices(self.isa, qkv, t, h3, &self.lens, self.heads, self.first_only);
        let rows_out = if self.first_only { self.lens.len() } else { t };
        Ok((CpuStorage::F32(out), Shape::from((rows_out, h3 / 3))))
    }
}


fn varlen_slices(isa: Isa, qkv: &[f32], t: usize, h3: usize, lens: &[usize], heads: usize, first_only: bool) -> Vec<f32> {
    assert!(lens.iter().sum::<usize>() == t && qkv.len() == t * h3 && h3 % 3 == 0 && heads > 0 && check_heads(h3, heads).is_ok());
    let h = h3 / 3;
    let rows_out = if first_only { lens.len() } else { t };
    let mut out = vec![0f32; rows_out * h];
    let mut parts: Vec<(&[f32], usize, &mut [f32])> = Vec::with_capacity(lens.len());
    let (mut rest_in, mut rest_out) = (qkv, out.as_mut_slice());
    for &len in lens {
        let (a, b) = rest_in.split_at(len * h3);
        let (c, d) = std::mem::take(&mut rest_out).split_at_mut(if first_only { h } else { len * h });
        parts.push((a, len, c));
        rest_in = b;
        rest_out = d;
    }
    let longest = lens.iter().copied().max().unwrap_or(0);
    let zeros = vec![0f32; longest];
    parts.into_par_iter().filter(|p| p.1 > 0).for_each(|(rows, len, ctx)| {
        attend_sequence(isa, rows, len, if first_only { 1 } else { len }, heads, &zeros[..len], ctx)
    });
    out
}

#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::{Tile, MR, NR};

    /// The MR x NR micro-kernel: acc = sum over kc of a[k][r] * b[k][c], then the epilogue (start from
    /// the bias on the first block or from the output otherwise, GELU on the last block when asked)
    /// and a masked store of the valid rows and columns.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn kernel(kc: usize, a: &[f32], b: &[f32], bias: &[f32], c: *mut f32, t: Tile) {
        debug_assert!(a.len() >= kc * MR && b.len() >= kc * NR && bias.len() >= NR);
        debug_assert!(t.rows >= 1 && t.rows <= MR && t.cols <= NR);
        let mut acc = [[_mm512_setzero_ps(); 2]; MR];
        let (ap, bp) = (a.as_ptr(), b.as_ptr());
        for kk in 0..kc {
            let b0 = _mm512_loadu_ps(bp.add(kk * NR));
            let b1 = _mm512_loadu_ps(bp.add(kk * NR + 16));
            let arow = ap.add(kk * MR);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm512_set1_ps(*arow.add(r));
                acc_r[0] = _mm512_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm512_fmadd_ps(av, b1, acc_r[1]);
            }
        }
        let m0: __mmask16 = if t.cols >= 16 { 0xFFFF } else { ((1u32 << t.cols) - 1) as u16 };
        let m1: __mmask16 = if t.cols >= 32 {
            0xFFFF
        } else if t.cols > 16 {
            ((1u32 << (t.cols - 16)) - 1) as u16
        } else {
            0
        };
        let cp = c;
        for (r, acc_r) in acc.iter().enumerate().take(t.rows) {
            let row = cp.add(r * t.ldc);
            // The second half's address may lie past the output where the tile has 16 columns or
            // fewer (m1 is then empty and nothing is accessed there): wrapping arithmetic, since an
            // offset pointer must otherwise stay inside its allocation (found by Miri, scripts/miri.sh).
            let row1 = row.wrapping_add(16);
            let (mut v0, mut v1) = (acc_r[0], acc_r[1]);
            if t.first {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(bias.as_ptr()));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(bias.as_ptr().add(16)));
            } else {
                v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
                v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row1));
            }
            if t.gelu {
                v0 = gelu(v0);
                v1 = gelu(v1);
            }
            _mm512_mask_storeu_ps(row, m0, v0);
            _mm512_mask_storeu_ps(row1, m1, v1);
        }
    }

    /// R query rows of one head at once (R independent accumulator chains, so that the FMA latency
    /// is hidden): scores against the `s` keys of `kt` (d x ld, transposed), scaled, plus `mask`;
    /// softmax; then the weighted sum of the V rows (`v`, rows `ldv` apart) into `out` (rows `ldo`
    /// apart). `q` holds the R query rows `ldq` apart; d = 16 NV; `scores` holds R x ld.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn attend_rows<const R: usize, const NV: usize>(
        q: *const f32,
        ldq: usize,
        kt: &[f32],
        ld: usize,
        s: usize,
        mask: &[f32],
        v: *const f32,
        ldv: usize,
        scores: &mut [f32],
        out: *mut f32,
        ldo: usize,
        scale: f32,
    ) {
        let d = NV * 16;
        debug_assert!(kt.len() >= d * ld && scores.len() >= R * ld && mask.len() >= s && s > 0);
        let kp = kt.as_ptr();
        let sp = scores.as_mut_ptr();
        let neg = _mm512_set1_ps(f32::NEG_INFINITY);
        let mut maxes = [neg; R];
        let mut j = 0;
        while j < s {
            let m: __mmask16 = if s - j >= 16 { 0xFFFF } else { ((1u32 << (s - j)) - 1) as u16 };
            let mut acc = [_mm512_setzero_ps(); R];
            for dd in 0..d {
                let kv = _mm512_loadu_ps(kp.add(dd * ld + j));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(*q.add(r * ldq + dd)), kv, *a);
                }
            }
            let mk = _mm512_maskz_loadu_ps(m, mask.as_ptr().add(j));
            for r in 0..R {
                let x = _mm512_mask_blend_ps(m, neg, _mm512_fmadd_ps(acc[r], _mm512_set1_ps(scale), mk));
                maxes[r] = _mm512_max_ps(maxes[r], x);
                _mm512_storeu_ps(sp.add(r * ld + j), x);
            }
            j += 16;
        }
        let mut inv = [0f32; R];
        for r in 0..R {
            let mx = _mm512_set1_ps(_mm512_reduce_max_ps(maxes[r]));
            let mut sum = _mm512_setzero_ps();
            let mut j = 0;
            while j < s {
                let m: __mmask16 = if s - j >= 16 { 0xFFFF } else { ((1u32 << (s - j)) - 1) as u16 };
                let e = _mm512_maskz_mov_ps(m, exp(_mm512_sub_ps(_mm512_loadu_ps(sp.add(r * ld + j)), mx)));
                sum = _mm512_add_ps(sum, e);
                _mm512_storeu_ps(sp.add(r * ld + j), e);
                j += 16;
            }
            inv[r] = 1.0 / _mm512_reduce_add_ps(sum);
        }
        let mut acc = [[_mm512_setzero_ps(); NV]; R];
        for jj in 0..s {
            let row = v.add(jj * ldv);
            let mut vv = [_mm512_setzero_ps(); NV];
            for (t, x) in vv.iter_mut().enumerate() {
                *x = _mm512_loadu_ps(row.add(t * 16));
            }
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let p = _mm512_set1_ps(*sp.add(r * ld + jj));
                for (a, x) in acc_r.iter_mut().zip(&vv) {
                    *a = _mm512_fmadd_ps(p, *x, *a);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let iv = _mm512_set1_ps(inv[r]);
            for (t, a) in acc_r.iter().enumerate() {
                _mm512_storeu_ps(out.add(r * ldo + t * 16), _mm512_mul_ps(*a, iv));
            }
        }
    }

    /// GELU over a slice, 16 values at a time (the epilogue's function; for `kernels::train` and the
    /// epilogue's test).
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn gelu_in_place(xs: &mut [f32]) {
        let n = xs.len();
        let p = xs.as_mut_ptr();
        let mut i = 0;
        while i < n {
            let m: __mmask16 = if n - i >= 16 { 0xFFFF } else { ((1u32 << (n - i)) - 1) as u16 };
            let v = _mm512_maskz_loadu_ps(m, p.add(i));
            _mm512_mask_storeu_ps(p.add(i), m, gelu(v));
            i += 16;
        }
    }

    /// x/2 (1 + erf(x / sqrt 2)), erf after Abramowitz and Stegun 7.1.26.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn gelu(x: __m512) -> __m512 {
        let erf = erf(_mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
        let half = _mm512_mul_ps(x, _mm512_set1_ps(0.5));
        _mm512_fmadd_ps(half, erf, half)
    }

    /// erf after Abramowitz and Stegun 7.1.26 (|error| <= 1.5e-7).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn erf(z: __m512) -> __m512 {
        let az = _mm512_abs_ps(z);
        let t = _mm512_div_ps(_mm512_set1_ps(1.0), _mm512_fmadd_ps(_mm512_set1_ps(0.327_591_1), az, _mm512_set1_ps(1.0)));
        let mut poly = _mm512_set1_ps(1.061_405_4);
        poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-1.453_152));
        poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(1.421_413_7));
        poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(-0.284_496_74));
        poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(0.254_829_6));
        poly = _mm512_mul_ps(poly, t);
        let e = exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), az), az));
        let erf_abs = _mm512_fnmadd_ps(poly, e, _mm512_set1_ps(1.0));
        // erf(z) = sign(z) * erf(|z|).
        let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
        _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign))
    }

    /// e^x for x <= 0 (inputs below -87 give 0), relative error about 2e-7.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn exp(x: __m512) -> __m512 {
        let x = _mm512_max_ps(x, _mm512_set1_ps(-87.0));
        // x = n ln 2 + r, |r| <= ln 2 / 2, with ln 2 split in two for precision.
        let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm512_mul_ps(
            x,
            _mm512_set1_ps(std::f32::consts::LOG2_E),
        ));
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_145_75), x);
        let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428_606_8e-6), r);
        // Taylor to degree 7 on |r| <= 0.347: truncation error below 1e-8.
        let mut p = _mm512_set1_ps(1.0 / 5040.0);
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 720.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 120.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 24.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0 / 6.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0));
        _mm512_scalef_ps(p, n)
    }
}

/// The AVX2 (with FMA) kernels: the AVX-512 ones' work on 8 lanes, with the same packing.
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::{Tile, MR, NR};

    /// Rows and columns of one of the four parts of an MR x NR tile: 6 x 16 keeps twelve
    /// accumulators, two B vectors and a broadcast within the 16 registers.
    const HR: usize = MR / 2;
    const HC: usize = NR / 2;

    /// The lanes below `n` (0 to 8) set, for masked loads and stores.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn lanes(n: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(n.min(8) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// The MR x NR micro-kernel of [`super::avx512::kernel`] (same operands, same epilogue), as four
    /// 6 x 16 parts; parts wholly outside the tile's valid rows or columns are skipped.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn kernel(kc: usize, a: &[f32], b: &[f32], bias: &[f32], c: *mut f32, t: Tile) {
        debug_assert!(a.len() >= kc * MR && b.len() >= kc * NR && bias.len() >= NR);
        debug_assert!(t.rows >= 1 && t.rows <= MR && t.cols <= NR);
        for r0 in (0..t.rows).step_by(HR) {
            for c0 in (0..t.cols).step_by(HC) {
                part(kc, a, b, bias, c, t, r0, c0);
            }
        }
    }

    /// Rows r0..r0+6, columns c0..c0+16 of the tile.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn part(kc: usize, a: &[f32], b: &[f32], bias: &[f32], c: *mut f32, t: Tile, r0: usize, c0: usize) {
        let mut acc = [[_mm256_setzero_ps(); 2]; HR];
        let (ap, bp) = (a.as_ptr().add(r0), b.as_ptr().add(c0));
        for kk in 0..kc {
            let b0 = _mm256_loadu_ps(bp.add(kk * NR));
            let b1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
            let arow = ap.add(kk * MR);
            for (r, acc_r) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_ss(&*arow.add(r));
                acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
                acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
            }
        }
        let cols = (t.cols - c0).min(HC);
        let (m0, m1) = (lanes(cols), lanes(cols.saturating_sub(8)));
        let bias = bias.as_ptr().add(c0);
        for (r, acc_r) in acc.iter().enumerate().take((t.rows - r0).min(HR)) {
            let row = c.add((r0 + r) * t.ldc + c0);
            // Past the output where the part has 8 columns or fewer (m1 empty, nothing accessed):
            // wrapping arithmetic, as in the AVX-512 kernel.
            let row1 = row.wrapping_add(8);
            let (mut v0, mut v1) = (acc_r[0], acc_r[1]);
            if t.first {
                v0 = _mm256_add_ps(v0, _mm256_loadu_ps(bias));
                v1 = _mm256_add_ps(v1, _mm256_loadu_ps(bias.add(8)));
            } else {
                v0 = _mm256_add_ps(v0, _mm256_maskload_ps(row, m0));
                v1 = _mm256_add_ps(v1, _mm256_maskload_ps(row1, m1));
            }
            if t.gelu {
                v0 = gelu8(v0);
                v1 = gelu8(v1);
            }
            _mm256_maskstore_ps(row, m0, v0);
            _mm256_maskstore_ps(row1, m1, v1);
        }
    }

    /// The largest of the eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_max(v: __m256) -> f32 {
        let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
        _mm_cvtss_f32(_mm_max_ss(m, _mm_shuffle_ps::<1>(m, m)))
    }

    /// The sum of the eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn reduce_add(v: __m256) -> f32 {
        let m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let m = _mm_add_ps(m, _mm_movehl_ps(m, m));
        _mm_cvtss_f32(_mm_add_ss(m, _mm_shuffle_ps::<1>(m, m)))
    }

    /// [`super::avx512::attend_rows`] on 8 lanes: R query rows of one head (d = 8 NV), their scores
    /// against the `s` keys of `kt` (d x ld), softmax, and the weighted sum of V into `out`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn attend_rows<const R: usize, const NV: usize>(
        q: *const f32,
        ldq: usize,
        kt: &[f32],
        ld: usize,
        s: usize,
        mask: &[f32],
        v: *const f32,
        ldv: usize,
        scores: &mut [f32],
        out: *mut f32,
        ldo: usize,
        scale: f32,
    ) {
        let d = NV * 8;
        debug_assert!(kt.len() >= d * ld && scores.len() >= R * ld && mask.len() >= s && s > 0 && ld % 8 == 0);
        let kp = kt.as_ptr();
        let sp = scores.as_mut_ptr();
        let neg = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut maxes = [neg; R];
        let mut j = 0;
        while j < s {
            let m = lanes(s - j);
            let mut acc = [_mm256_setzero_ps(); R];
            for dd in 0..d {
                let kv = _mm256_loadu_ps(kp.add(dd * ld + j));
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = _mm256_fmadd_ps(_mm256_broadcast_ss(&*q.add(r * ldq + dd)), kv, *a);
                }
            }
            let mk = _mm256_maskload_ps(mask.as_ptr().add(j), m);
            for r in 0..R {
                let x = _mm256_blendv_ps(neg, _mm256_fmadd_ps(acc[r], _mm256_set1_ps(scale), mk), _mm256_castsi256_ps(m));
                maxes[r] = _mm256_max_ps(maxes[r], x);
                _mm256_storeu_ps(sp.add(r * ld + j), x);
            }
            j += 8;
        }
        let mut inv = [0f32; R];
        for r in 0..R {
            let mx = _mm256_set1_ps(reduce_max(maxes[r]));
            let mut sum = _mm256_setzero_ps();
            let mut j = 0;
            while j < s {
                let m = _mm256_castsi256_ps(lanes(s - j));
                let e = _mm256_and_ps(m, exp8(_mm256_sub_ps(_mm256_loadu_ps(sp.add(r * ld + j)), mx)));
                sum = _mm256_add_ps(sum, e);
                _mm256_storeu_ps(sp.add(r * ld + j), e);
                j += 8;
            }
            inv[r] = 1.0 / reduce_add(sum);
        }
        let mut acc = [[_mm256_setzero_ps(); NV]; R];
        for jj in 0..s {
            let row = v.add(jj * ldv);
            let mut p = [_mm256_setzero_ps(); R];
            for (r, pr) in p.iter_mut().enumerate() {
                *pr = _mm256_broadcast_ss(&*sp.add(r * ld + jj));
            }
            for t in 0..NV {
                let x = _mm256_loadu_ps(row.add(t * 8));
                for r in 0..R {
                    acc[r][t] = _mm256_fmadd_ps(p[r], x, acc[r][t]);
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            let iv = _mm256_set1_ps(inv[r]);
            for (t, a) in acc_r.iter().enumerate() {
                _mm256_storeu_ps(out.add(r * ldo + t * 8), _mm256_mul_ps(*a, iv));
            }
        }
    }

    /// GELU over a slice, 8 values at a time (the epilogue's function; for `kernels::train` and the
    /// epilogue's test).
    #[target_feature(enable = "avx2,fma")]
    pub(crate) unsafe fn gelu_in_place(xs: &mut [f32]) {
        let n = xs.len();
        let p = xs.as_mut_ptr();
        let mut i = 0;
        while i < n {
            let m = lanes(n - i);
            _mm256_maskstore_ps(p.add(i), m, gelu8(_mm256_maskload_ps(p.add(i), m)));
            i += 8;
        }
    }

    /// x/2 (1 + erf(x / sqrt 2)), erf after Abramowitz and Stegun 7.1.26 (the AVX-512 kernels'
    /// formula, eight lanes; the AVX2 f32 and int8 epilogues').
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn gelu8(x: __m256) -> __m256 {
        let erf = erf8(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2)));
        let half = _mm256_mul_ps(x, _mm256_set1_ps(0.5));
        _mm256_fmadd_ps(half, erf, half)
    }

    /// erf after Abramowitz and Stegun 7.1.26 (|error| <= 1.5e-7), eight lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn erf8(z: __m256) -> __m256 {
        let sign = _mm256_and_ps(z, _mm256_set1_ps(-0.0));
        let az = _mm256_andnot_ps(_mm256_set1_ps(-0.0), z);
        let (p, a) = crate::kernels::cpu::ERF_AS;
        let t = _mm256_div_ps(_mm256_set1_ps(1.0), _mm256_fmadd_ps(_mm256_set1_ps(p), az, _mm256_set1_ps(1.0)));
        let mut poly = _mm256_set1_ps(a[0]);
        for &c in &a[1..] {
            poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(c));
        }
        poly = _mm256_mul_ps(poly, t);
        let e = exp8(_mm256_mul_ps(_mm256_sub_ps(_mm256_setzero_ps(), az), az));
        _mm256_or_ps(_mm256_fnmadd_ps(poly, e, _mm256_set1_ps(1.0)), sign)
    }

    /// e^x for x <= 0 (inputs below -87 give e^-87), relative error about 2e-7.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(crate) fn exp8(x: __m256) -> __m256 {
        let x = _mm256_max_ps(x, _mm256_set1_ps(-87.0));
        let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)));
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_145_75), x);
        let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428_606_8e-6), r);
        let taylor = crate::kernels::cpu::EXP_TAYLOR;
        let mut p = _mm256_set1_ps(taylor[0]);
        for &c in &taylor[1..] {
            p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
        }
        // 2^n for n in [-126, 0]: the exponent field n + 127.
        let pow2 = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127))));
        _mm256_mul_ps(p, pow2)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{Linear, Module};

    /// Uniform numbers in [-1, 1) from SplitMix64 (the generator of `models::arch::layers`, which
    /// this module may not import).
    pub(crate) fn random(shape: &[usize], seed: u64) -> Tensor {
        let mut state = seed;
        let mut next_f32 = || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        };
        let n: usize = shape.iter().product();
        let v: Vec<f32> = (0..n).map(|_| next_f32() * 2.0 - 1.0).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// The additive attention bias the encoders pass to [`attention`] for a (batch, seq) 0/1 mask:
    /// 0 where attended, -30000 where padded, shaped (batch, 1, 1, seq).
    fn attention_bias(mask: &Tensor) -> Tensor {
        let (b, s) = mask.dims2().unwrap();
        let m = mask.to_dtype(DType::F32).unwrap();
        ((m - 1.0).unwrap() * 30000.0).unwrap().reshape((b, 1, 1, s)).unwrap()
    }

    pub(crate) fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
        let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "reference is all zeros");
        a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max) / scale
    }

    /// The instruction sets this CPU has, each of which the tests run (an AVX-512 CPU runs the
    /// AVX2 kernels too).
    fn isas() -> Vec<Isa> {
        let found: Vec<Isa> = [Isa::Avx512, Isa::Avx2].into_iter().filter(|&i| detected(i)).collect();
        if found.is_empty() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2 with FMA");
        }
        found
    }

    /// The packed layer applied to `x` (m x k) with the kernel of `isa`.
    fn forward_on(packed: &PackedLinear, isa: Isa, x: &Tensor, gelu: bool) -> Tensor {
        let (m, _) = x.dims2().unwrap();
        let a: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        Tensor::from_vec(packed.matmul_on(isa, &a, m, false, gelu), (m, packed.n), &Device::Cpu).unwrap()
    }

    #[test]
    fn packed_linear_matches_candle_on_ragged_shapes() {
        let isas = isas();
        if isas.is_empty() {
            return;
        }
        // Shapes that exercise every edge: rows not a multiple of MR or MC, columns not a multiple of
        // NR, depth not a multiple of KC, and a width of 1 and 3 (classifier heads).
        for (i, &(m, k, n)) in
            [(1, 384, 384), (13, 384, 1152), (97, 1536, 384), (200, 300, 33), (5, 7, 3), (130, 257, 1), (12, 32, 32)]
                .iter()
                .enumerate()
        {
            let x = random(&[m, k], 10 + i as u64);
            let w = random(&[n, k], 100 + i as u64);
            let b = random(&[n], 1000 + i as u64);
            let reference = Linear::new(w.clone(), Some(b.clone())).forward(&x).unwrap();
            let packed = PackedLinear::new(&w, Some(&b)).unwrap().unwrap();
            let got = packed.forward(&x, false).unwrap();
            assert_eq!(got.dims(), reference.dims());
            let err = max_rel(&got, &reference);
            assert!(err < 1e-5, "({m}, {k}, {n}): max relative error {err}");
            for &isa in &isas {
                let err = max_rel(&forward_on(&packed, isa, &x, false), &reference);
                assert!(err < 1e-5, "{isa:?} ({m}, {k}, {n}): max relative error {err}");
                let err = max_rel(&forward_on(&packed, isa, &x, true), &reference.gelu_erf().unwrap());
                assert!(err < 1e-5, "{isa:?} ({m}, {k}, {n}) with GELU: max relative error {err}");
            }
        }
    }

    #[test]
    fn packed_linear_keeps_leading_dimensions() {
        if !available() {
            eprintln!("skipped: no AVX-512 or AVX2");
            return;
        }
        let x = random(&[3, 5, 64], 1);
        let w = random(&[40, 64], 2);
        let packed = PackedLinear::new(&w, None).unwrap().unwrap();
        let got = packed.forward(&x, false).unwrap();
        let reference = Linear::new(w, None).forward(&x).unwrap();
        assert_eq!(got.dims(), &[3, 5, 40]);
        assert!(max_rel(&got, &reference) < 1e-5);
    }

    #[test]
    fn gelu_matches_candle_exact_gelu() {
        // The kernel epilogue's vector GELU over a wide range, tails included, and a length that is
        // not a multiple of 16.
        let x = (random(&[4099], 7) * 12.0).unwrap();
        let reference = x.gelu_erf().unwrap();
        let mut a: Vec<f32> = x.to_vec1().unwrap();
        if detected(Isa::Avx512) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX-512F is present.
            unsafe {
                avx512::gelu_in_place(&mut a)
            };
        } else {
            a.iter_mut().for_each(|v| *v = gelu_scalar(*v));
        }
        let b: Vec<f32> = reference.to_vec1().unwrap();
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(worst < 2e-6, "max abs error {worst}");
        if detected(Isa::Avx2) {
            let mut a: Vec<f32> = x.to_vec1().unwrap();
            #[cfg(target_arch = "x86_64")]
            // SAFETY: AVX2 and FMA are present.
            unsafe {
                avx2::gelu_in_place(&mut a)
            };
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(worst < 2e-6, "AVX2: max abs error {worst}");
        }
        for v in [-100f32, -10.0, -1.0, 0.0, 1e-8, 1.0, 10.0, 100.0] {
            let exact = v.gelu_reference();
            assert!((gelu_scalar(v) - exact).abs() < 2e-6, "{v}: {} vs {exact}", gelu_scalar(v));
        }
    }

    trait GeluReference {
        fn gelu_reference(self) -> f32;
    }
    impl GeluReference for f32 {
        fn gelu_reference(self) -> f32 {
            let t = Tensor::new(&[self], &Device::Cpu).unwrap().gelu_erf().unwrap();
            t.to_vec1::<f32>().unwrap()[0]
        }
    }

    #[test]
    fn attention_matches_the_composed_ops() {
        if !available() {
            eprintln!("skipped: no AVX-512 or AVX2");
            return;
        }
        // 2 sequences of 37 tokens (not a multiple of 16 or 8), the second padded after 20 tokens;
        // heads of every width class the kernels split on (16, 32: several rows at once, 64, 128).
        for (case, &(heads, d)) in [(4usize, 32usize), (3, 16), (2, 64), (1, 128)].iter().enumerate() {
            let (b, s) = (2, 37);
            let h = heads * d;
            let qkv = (random(&[b, s, 3 * h], 5 + case as u64) * 3.0).unwrap();
            let mut mask = vec![1u32; b * s];
            for m in &mut mask[s + 20..] {
                *m = 0;
            }
            let mask = Tensor::from_vec(mask, (b, s), &Device::Cpu).unwrap();
            let bias = attention_bias(&mask);
            let got = attention(&qkv, &bias, heads).unwrap();
            let flat_bias = bias.reshape((b, s)).unwrap();
            let on: Vec<(Isa, Tensor)> =
                isas().into_iter().map(|isa| (isa, qkv.apply_op2_no_bwd(&flat_bias, &AttentionOp { heads, isa }).unwrap())).collect();
            // Reference: split, scale, matmul, softmax, matmul, merge, as the encoders compose it.
            let split = |t: Tensor| t.reshape((b, s, heads, d)).unwrap().transpose(1, 2).unwrap().contiguous().unwrap();
            let q = (split(qkv.narrow(2, 0, h).unwrap()) * (1.0 / (d as f64).sqrt())).unwrap();
            let k = split(qkv.narrow(2, h, h).unwrap());
            let v = split(qkv.narrow(2, 2 * h, h).unwrap());
            let scores = q.matmul(&k.t().unwrap()).unwrap().broadcast_add(&bias).unwrap();
            let probs = candle_nn::ops::softmax_last_dim(&scores).unwrap();
            let reference = probs.matmul(&v).unwrap().transpose(1, 2).unwrap().reshape((b, s, h)).unwrap();
            assert_eq!(got.dims(), reference.dims());
            let err = max_rel(&got, &reference);
            assert!(err < 1e-5, "heads of {d}: max relative error {err}");
            assert_eq!(on.len(), isas().len());
            for (isa, got) in on {
                let err = max_rel(&got, &reference);
                assert!(err < 1e-5, "{isa:?}, heads of {d}: max relative error {err}");
            }
        }
    }

    #[test]
    fn attention_refuses_heads_it_cannot_run() {
        let qkv = Tensor::zeros((1, 4, 3 * 24), DType::F32, &Device::Cpu).unwrap();
        let bias = Tensor::zeros((1, 4), DType::F32, &Device::Cpu).unwrap();
        assert!(attention(&qkv, &bias, 2).is_err(), "heads of 12 are not a multiple of 16");
    }

    #[test]
    fn varlen_attention_matches_padded_attention() {
        if !available() {
            eprintln!("skipped: no AVX-512 or AVX2");
            return;
        }
        let (heads, d) = (2, 16);
        let h = heads * d;
        let lens = [7usize, 1, 19, 0, 16];
        let s = 19;
        let padded = (random(&[lens.len(), s, 3 * h], 9) * 2.0).unwrap();
        let mut mask = vec![0u32; lens.len() * s];
        for (i, &n) in lens.iter().enumerate() {
            mask[i * s..i * s + n].iter_mut().for_each(|m| *m = 1);
        }
        let mask = Tensor::from_vec(mask, (lens.len(), s), &Device::Cpu).unwrap();
        let bias = attention_bias(&mask);
        let reference = attention(&padded, &bias, heads).unwrap();
        let rows: Vec<Tensor> = lens.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| padded.get(i).unwrap().narrow(0, 0, n).unwrap()).collect();
        let packed = Tensor::cat(&rows, 0).unwrap();
        let got = attention_varlen(&packed, &lens, heads).unwrap();
        let want: Vec<Tensor> = lens.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, &n)| reference.get(i).unwrap().narrow(0, 0, n).unwrap()).collect();
        let want = Tensor::cat(&want, 0).unwrap();
        assert!(max_rel(&got, &want) < 1e-6, "{}", max_rel(&got, &want));
        for isa in isas() {
            let got = packed.apply_op1_no_bwd(&VarlenAttentionOp { heads, lens: lens.to_vec(), first_only: false, isa }).unwrap();
            assert!(max_rel(&got, &want) < 2e-6, "{isa:?}: {}", max_rel(&got, &want));
        }
        assert!(attention_varlen(&packed, &[3, 3], heads).is_err(), "lengths must cover the rows");
        // The first token of each sequence alone.
        let nonempty: Vec<usize> = lens.iter().copied().filter(|&n| n > 0).collect();
        let first = attention_varlen_first(&packed, &nonempty, heads).unwrap();
        let want: Vec<Tensor> = lens.iter().enumerate().filter(|(_, &n)| n > 0).map(|(i, _)| reference.get(i).unwrap().narrow(0, 0, 1).unwrap()).collect();
        let want = Tensor::cat(&want, 0).unwrap();
        assert_eq!(first.dims(), want.dims());
        assert!(max_rel(&first, &want) < 1e-6);
        assert!(attention_varlen_first(&packed, &lens, heads).is_err(), "an empty sequence has no first token");
    }

    // The tests below whose names end in `in_bounds` touch no candle op, so that Miri can run them:
    // each drives an unsafe kernel through its safe boundary on shapes with ragged edges and
    // compares it with plain loops (`scripts/miri.sh`; in the interpreter the AVX2 kernels run).

    /// y = a W^T + b, then the exact GELU when `gelu`, by plain loops (`a` m x k, `w` n x k).
    fn plain_linear(a: &[f32], w: &[f32], bias: &[f32], (m, n, k): (usize, usize, usize), gelu: bool) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let v = bias[j] + (0..k).map(|kk| a[i * k + kk] * w[j * k + kk]).sum::<f32>();
                y[i * n + j] = if gelu { gelu_scalar(v) } else { v };
            }
        }
        y
    }

    fn plain_values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!((g - w).abs() <= tol * scale, "{what} at {i}: {g} vs {w}");
        }
    }

    #[test]
    fn packed_matmul_in_bounds() {
        // A partial row block (MR + 1 rows), two row chunks (MC + 1), a partial panel (NR + 1
        // columns, and 1), a second block of the inner dimension (KC + 3), and k = 0 (the bias).
        let shapes: &[(usize, usize, usize)] =
            if cfg!(miri) { &[(MR + 1, NR + 1, 5), (2, 1, KC + 3), (MC + 1, 3, 2), (3, 4, 0)] } else { &[(MR + 1, NR + 1, 5), (2, 1, KC + 3), (MC + 1, 3, 2), (3, 4, 0), (50, 70, 800)] };
        for isa in isas() {
            for (case, &(m, n, k)) in shapes.iter().enumerate() {
                let a = plain_values(m * k, 1 + case as u64);
                let w = plain_values(n * k, 50 + case as u64);
                let bias = plain_values(n, 90 + case as u64);
                let packed = PackedLinear::from_slice(&w, n, k, false, Some(&bias));
                let mut wt = vec![0f32; n * k];
                let mut at = vec![0f32; m * k];
                for (j, row) in w.chunks(k.max(1)).enumerate().take(n) {
                    row.iter().enumerate().for_each(|(kk, &v)| wt[kk * n + j] = v);
                }
                for (i, row) in a.chunks(k.max(1)).enumerate().take(m) {
                    row.iter().enumerate().for_each(|(kk, &v)| at[kk * m + i] = v);
                }
                let from_transposed = PackedLinear::from_slice(&wt, n, k, true, Some(&bias));
                for gelu in [false, true] {
                    let want = plain_linear(&a, &w, &bias, (m, n, k), gelu);
                    let what = format!("{isa:?} {m}x{n}x{k} gelu {gelu}");
                    close(&packed.matmul_on(isa, &a, m, false, gelu), &want, 1e-5, &what);
                    close(&packed.matmul_on(isa, &at, m, true, gelu), &want, 1e-5, &format!("{what}, a transposed"));
                    close(&from_transposed.matmul_on(isa, &a, m, false, gelu), &want, 1e-5, &format!("{what}, w transposed"));
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "matmul")]
    fn packed_matmul_refuses_a_short_input_in_bounds() {
        let packed = PackedLinear::from_slice(&[1.0; 6], 2, 3, false, None);
        let isa = isas().first().copied().unwrap_or(Isa::Avx2);
        let _ = packed.matmul_on(isa, &[1.0; 5], 2, false, false);
    }

    /// Softmax attention of `queries` rows of one sequence by plain loops (`rows` s x 3h).
    fn plain_attention(rows: &[f32], s: usize, queries: usize, heads: usize, mask: &[f32]) -> Vec<f32> {
        let h3 = rows.len() / s;
        let (h, d) = (h3 / 3, h3 / 3 / heads);
        let mut out = vec![0f32; queries * h];
        for hd in 0..heads {
            for i in 0..queries {
                let q = &rows[i * h3 + hd * d..i * h3 + hd * d + d];
                let scores: Vec<f32> = (0..s)
                    .map(|j| {
                        let k = &rows[j * h3 + h + hd * d..j * h3 + h + hd * d + d];
                        q.iter().zip(k).map(|(a, b)| a * b).sum::<f32>() / (d as f32).sqrt() + mask[j]
                    })
                    .collect();
                let mx = scores.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
                let e: Vec<f32> = scores.iter().map(|v| (v - mx).exp()).collect();
                let z: f32 = e.iter().sum();
                for (j, p) in e.iter().enumerate() {
                    for dd in 0..d {
                        out[i * h + hd * d + dd] += p / z * rows[j * h3 + 2 * h + hd * d + dd];
                    }
                }
            }
        }
        out
    }

    #[test]
    fn attention_kernels_in_bounds() {
        // Heads of 16 and 32 (several query rows at once) and 48 (one row), a sequence not a
        // multiple of 8 or 16, a masked key, all queries and the first alone.
        for isa in isas() {
            for (case, &(heads, d, s)) in [(2usize, 16usize, 5usize), (1, 32, 3), (1, 48, 2)].iter().enumerate() {
                let h = heads * d;
                let rows: Vec<f32> = plain_values(s * 3 * h, 7 + case as u64).iter().map(|v| v * 2.0).collect();
                let mut mask = vec![0f32; s];
                mask[s - 1] = -30000.0;
                for queries in [s, 1] {
                    let mut ctx = vec![0f32; queries * h];
                    attend_sequence(isa, &rows, s, queries, heads, &mask, &mut ctx);
                    close(&ctx, &plain_attention(&rows, s, queries, heads, &mask), 1e-5, &format!("{isa:?} heads of {d}, {queries} of {s}"));
                }
            }
            // Sequences packed back to back, an empty one among them.
            let (heads, d, lens) = (2usize, 16usize, [2usize, 0, 3]);
            let (h3, t) = (3 * heads * d, lens.iter().sum::<usize>());
            let qkv = plain_values(t * h3, 3);
            for first_only in [false, true] {
                let got = varlen_slices(isa, &qkv, t, h3, &lens, heads, first_only);
                let mut want = Vec::new();
                let mut start = 0;
                for &len in &lens {
                    if len == 0 {
                        if first_only {
                            want.extend(std::iter::repeat_n(0f32, h3 / 3));
                        }
                        continue;
                    }
                    let rows = &qkv[start * h3..(start + len) * h3];
                    want.extend(plain_attention(rows, len, if first_only { 1 } else { len }, heads, &vec![0f32; len]));
                    start += len;
                }
                close(&got, &want, 1e-5, &format!("{isa:?} varlen, first only {first_only}"));
            }
        }
    }

    #[test]
    fn nothing_is_packed_for_other_dtypes() {
        let w = random(&[8, 8], 3).to_dtype(DType::F16).unwrap();
        assert!(PackedLinear::new(&w, None).unwrap().is_none());
    }
}
