//! Fused ops for the hot steps that candle runs as several launches, as candle custom ops.
//!
//! - [`pool_normalize`]: masked mean-pool over the sequence and L2 normalisation (the embedder's
//!   tail: five to seven launches composed, one fused).
//! - [`softmax_gather`]: softmax over a classifier's logits in f32 and the probabilities of chosen
//!   labels (the cross-encoder's tail: cast, softmax and gather composed, one fused).
//!
//! Each op has a CPU implementation, which is the reference the CUDA kernel (kernels/candor.cu) is
//! tested against, and the composed candle ops are the reference for both. On Metal the composed
//! candle ops run (no Metal kernel of ours has been built or run).

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor, D};

/// Masked mean-pool of token states, then L2 normalisation when `normalize`:
/// (batch, seq, hidden) in any float dtype x (batch, seq) 0/1 mask -> (batch, hidden) f32.
pub fn pool_normalize(states: &Tensor, mask: &Tensor, normalize: bool) -> Result<Tensor> {
    if states.device().is_metal() {
        return composed_pool_normalize(states, mask, normalize);
    }
    let states = states.contiguous()?;
    let mask = mask.to_dtype(DType::U32)?.contiguous()?;
    states.apply_op2_no_bwd(&mask, &PoolNormalize { normalize })
}

/// The same as [`pool_normalize`] from elementary candle ops (the reference, and the Metal path).
pub fn composed_pool_normalize(states: &Tensor, mask: &Tensor, normalize: bool) -> Result<Tensor> {
    let states = states.to_dtype(DType::F32)?;
    let m = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
    let sum = states.broadcast_mul(&m)?.sum(1)?;
    let count = m.sum(1)?.clamp(1e-9, f64::MAX)?;
    let pooled = sum.broadcast_div(&count)?;
    if !normalize {
        return Ok(pooled);
    }
    let norm = pooled.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    pooled.broadcast_div(&norm)
}

/// Softmax over the last dimension of (rows, labels) logits in any float dtype, computed in f32,
/// keeping the probabilities of `columns` in that order: (rows, columns.len()) f32.
pub fn softmax_gather(logits: &Tensor, columns: &[usize]) -> Result<Tensor> {
    let (_, labels) = logits.dims2()?;
    if let Some(bad) = columns.iter().find(|&&c| c >= labels) {
        bail!("softmax_gather: column {bad} of {labels} labels");
    }
    if logits.device().is_metal() {
        return composed_softmax_gather(logits, columns);
    }
    let cols: Vec<u32> = columns.iter().map(|&c| c as u32).collect();
    let cols = Tensor::new(cols.as_slice(), logits.device())?;
    logits.contiguous()?.apply_op2_no_bwd(&cols, &SoftmaxGather)
}

/// The same as [`softmax_gather`] from elementary candle ops.
pub fn composed_softmax_gather(logits: &Tensor, columns: &[usize]) -> Result<Tensor> {
    let probs = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
    let cols: Vec<u32> = columns.iter().map(|&c| c as u32).collect();
    probs.index_select(&Tensor::new(cols.as_slice(), logits.device())?, 1)
}

/// Reads a contiguous float storage as f32.
fn floats(storage: &CpuStorage, layout: &Layout) -> Result<Vec<f32>> {
    let Some((a, b)) = layout.contiguous_offsets() else { bail!("fused ops need contiguous inputs") };
    Ok(match storage {
        CpuStorage::F32(v) => v[a..b].to_vec(),
        CpuStorage::F16(v) => v[a..b].iter().map(|x| x.to_f32()).collect(),
        CpuStorage::BF16(v) => v[a..b].iter().map(|x| x.to_f32()).collect(),
        other => bail!("fused ops take float inputs, not {:?}", other.dtype()),
    })
}

/// Reads a contiguous u32 storage.
fn u32s<'a>(storage: &'a CpuStorage, layout: &Layout) -> Result<&'a [u32]> {
    let Some((a, b)) = layout.contiguous_offsets() else { bail!("fused ops need contiguous inputs") };
    match storage {
        CpuStorage::U32(v) => Ok(&v[a..b]),
        other => bail!("expected u32 indices, not {:?}", other.dtype()),
    }
}

/// The custom op behind [`pool_normalize`].
#[derive(Debug, Clone, Copy)]
pub struct PoolNormalize {
    /// Divide each pooled row by its L2 norm.
    pub normalize: bool,
}

impl CustomOp2 for PoolNormalize {
    fn name(&self) -> &'static str {
        "candor-pool-normalize"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, s, h) = l1.shape().dims3()?;
        if l2.shape().dims() != [b, s] {
            bail!("pool_normalize: mask {:?} for states {:?}", l2.shape(), l1.shape());
        }
        let x = floats(s1, l1)?;
        let m = u32s(s2, l2)?;
        let mut out = vec![0f32; b * h];
        for (r, row) in out.chunks_mut(h).enumerate() {
            let mask = &m[r * s..(r + 1) * s];
            let count = mask.iter().filter(|&&v| v != 0).count() as f32;
            for (t, _) in mask.iter().enumerate().filter(|(_, &v)| v != 0) {
                let state = &x[(r * s + t) * h..(r * s + t + 1) * h];
                row.iter_mut().zip(state).for_each(|(o, v)| *o += v);
            }
            let inv = 1.0 / count.max(1e-9);
            row.iter_mut().for_each(|o| *o *= inv);
            if self.normalize {
                let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
                row.iter_mut().for_each(|o| *o /= norm);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, h))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let (b, s, h) = l1.shape().dims3()?;
        if l2.shape().dims() != [b, s] {
            bail!("pool_normalize: mask {:?} for states {:?}", l2.shape(), l1.shape());
        }
        cuda::pool_normalize(s1, l1, s2, l2, (b, s, h), self.normalize)
    }
}

/// The custom op behind [`softmax_gather`].
#[derive(Debug, Clone, Copy)]
pub struct SoftmaxGather;

impl CustomOp2 for SoftmaxGather {
    fn name(&self) -> &'static str {
        "candor-softmax-gather"
    }

    fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout, s2: &CpuStorage, l2: &Layout) -> Result<(CpuStorage, Shape)> {
        let (rows, labels) = l1.shape().dims2()?;
        let x = floats(s1, l1)?;
        let cols = u32s(s2, l2)?;
        let mut out = Vec::with_capacity(rows * cols.len());
        for row in x.chunks(labels.max(1)).take(rows) {
            let mx = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = row.iter().map(|v| (v - mx).exp()).sum();
            out.extend(cols.iter().map(|&c| (row[c as usize] - mx).exp() / sum));
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, cols.len()))))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        s2: &candle_core::CudaStorage,
        l2: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        cuda::softmax_gather(s1, l1, s2, l2)
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    //! Launches of kernels/candor.cu.
    use candle_core::cuda_backend::cudarc::driver::{CudaSlice, DeviceRepr, LaunchConfig, PushKernelArg};
    use candle_core::backend::BackendStorage;
    use candle_core::cuda_backend::WrapErr;
    use candle_core::{bail, CudaStorage, DType, Layout, Result, Shape};

    const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/candor_kernels.ptx"));
    const MODULE: &str = "candor_kernels";

    fn suffix(dtype: DType) -> Result<&'static str> {
        Ok(match dtype {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            other => bail!("fused ops take float inputs, not {other:?}"),
        })
    }

    fn contiguous<'a, T: DeviceRepr>(
        s: &'a CudaSlice<T>,
        l: &Layout,
    ) -> Result<candle_core::cuda_backend::cudarc::driver::CudaView<'a, T>> {
        match l.contiguous_offsets() {
            Some((a, b)) => Ok(s.slice(a..b)),
            None => bail!("fused ops need contiguous inputs"),
        }
    }

    /// Runs `launch` with the input slice typed as its dtype.
    macro_rules! with_float {
        ($storage:expr, $layout:expr, |$x:ident| $body:expr) => {
            match $storage.dtype() {
                DType::F32 => {
                    let $x = contiguous($storage.as_cuda_slice::<f32>()?, $layout)?;
                    $body
                }
                DType::F16 => {
                    let $x = contiguous($storage.as_cuda_slice::<half::f16>()?, $layout)?;
                    $body
                }
                DType::BF16 => {
                    let $x = contiguous($storage.as_cuda_slice::<half::bf16>()?, $layout)?;
                    $body
                }
                other => bail!("fused ops take float inputs, not {other:?}"),
            }
        };
    }

    /// Loads `{kernel}_{dtype}` and launches it with the signature both kernels share: the float
    /// input, u32 indices (the mask or the label columns), an f32 output of `out_len` values, and
    /// three ints.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        kernel: &str,
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        out_len: usize,
        cfg: LaunchConfig,
        [a, b, c]: [i32; 3],
    ) -> Result<CudaStorage> {
        let dev = &s1.device;
        let func = dev.get_or_load_custom_func(&format!("{kernel}_{}", suffix(s1.dtype())?), MODULE, PTX)?;
        let idx = contiguous(s2.as_cuda_slice::<u32>()?, l2)?;
        // SAFETY: every element is written by the kernel.
        let out = unsafe { dev.alloc::<f32>(out_len)? };
        with_float!(s1, l1, |x| {
            let mut builder = func.builder();
            builder.arg(&x);
            builder.arg(&idx);
            builder.arg(&out);
            candle_core::builder_arg!(builder, a, b, c);
            // SAFETY: the argument list matches the kernels' signature; sizes were checked by the
            // callers.
            unsafe { builder.launch(cfg) }.w()?;
        });
        Ok(CudaStorage::wrap_cuda_slice(out, dev.clone()))
    }

    pub fn pool_normalize(
        s1: &CudaStorage,
        l1: &Layout,
        s2: &CudaStorage,
        l2: &Layout,
        (b, s, h): (usize, usize, usize),
        normalize: bool,
    ) -> Result<(CudaStorage, Shape)> {
        let threads = h.next_power_of_two().clamp(32, 1024) as u32;
        let cfg = LaunchConfig { grid_dim: (b as u32, 1, 1), block_dim: (threads, 1, 1), shared_mem_bytes: threads * 4 };
        let out = launch("pool_normalize", s1, l1, s2, l2, b * h, cfg, [s as i32, h as i32, normalize as i32])?;
        Ok((out, Shape::from((b, h))))
    }

    pub fn softmax_gather(s1: &CudaStorage, l1: &Layout, s2: &CudaStorage, l2: &Layout) -> Result<(CudaStorage, Shape)> {
        let (rows, labels) = l1.shape().dims2()?;
        let picked = l2.shape().elem_count();
        let cfg = LaunchConfig::for_num_elems(rows.max(1) as u32);
        let out = launch("softmax_gather", s1, l1, s2, l2, rows * picked, cfg, [rows as i32, labels as i32, picked as i32])?;
        Ok((out, Shape::from((rows, picked))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let b = b.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(a.len(), b.len());
        let num: f32 = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt();
        let den: f32 = b.iter().map(|y| y * y).sum::<f32>().sqrt();
        num / den
    }

    fn random_mask(b: usize, s: usize) -> Tensor {
        // Row r has r % s + 1 real tokens, then padding; row 0 of a second shape has none at all.
        let mut m = vec![0u32; b * s];
        for r in 0..b {
            for t in 0..(r * 7 % s) + 1 {
                m[r * s + t] = 1;
            }
        }
        Tensor::from_vec(m, (b, s), &Device::Cpu).unwrap()
    }

    #[test]
    fn pool_normalize_matches_the_composed_ops() {
        let dev = Device::Cpu;
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let states = Tensor::randn(0f32, 1.0, (5, 9, 24), &dev).unwrap().to_dtype(dtype).unwrap();
            let mask = random_mask(5, 9);
            for normalize in [false, true] {
                let fused = pool_normalize(&states, &mask, normalize).unwrap();
                let composed = composed_pool_normalize(&states, &mask, normalize).unwrap();
                assert_eq!(fused.dims(), &[5, 24]);
                assert!(max_rel(&fused, &composed) < 1e-5, "{dtype:?} normalize={normalize}");
            }
        }
        let normed = pool_normalize(&Tensor::randn(0f32, 1.0, (3, 4, 8), &dev).unwrap(), &random_mask(3, 4), true).unwrap();
        for n in normed.sqr().unwrap().sum(1).unwrap().to_vec1::<f32>().unwrap() {
            assert!((n - 1.0).abs() < 1e-5);
        }
    }

    #[test]
    fn pool_of_an_all_padding_row_is_zero_not_nan() {
        let states = Tensor::randn(0f32, 1.0, (2, 3, 4), &Device::Cpu).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 0], [0, 0, 0]], &Device::Cpu).unwrap();
        let out = pool_normalize(&states, &mask, true).unwrap().to_vec2::<f32>().unwrap();
        assert!(out[1].iter().all(|v| *v == 0.0));
        assert!(out[0].iter().all(|v| v.is_finite() && *v != 0.0));
    }

    #[test]
    fn softmax_gather_matches_the_composed_ops() {
        let dev = Device::Cpu;
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            let logits = (Tensor::randn(0f32, 3.0, (17, 3), &dev).unwrap() + 2.0).unwrap().to_dtype(dtype).unwrap();
            for cols in [vec![0, 1, 2], vec![2, 0], vec![1]] {
                let fused = softmax_gather(&logits, &cols).unwrap();
                let composed = composed_softmax_gather(&logits, &cols).unwrap();
                assert_eq!(fused.dims(), &[17, cols.len()]);
                assert!(max_rel(&fused, &composed) < 1e-5, "{dtype:?} {cols:?}");
            }
        }
        let all = softmax_gather(&Tensor::new(&[[1000f32, 0.0, -1000.0]], &dev).unwrap(), &[0, 1, 2]).unwrap();
        assert_eq!(all.to_vec2::<f32>().unwrap()[0], vec![1.0, 0.0, 0.0]);
        assert!(softmax_gather(&Tensor::zeros((2, 3), DType::F32, &dev).unwrap(), &[3]).is_err());
    }
}
