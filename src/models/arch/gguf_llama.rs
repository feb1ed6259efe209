//! Llama-family decoders in GGUF form (llama, and qwen2, which is llama with q/k/v biases and
//! NeoX-style rotary embeddings), quantized weights as llama.cpp writes them.
//!
//! The same network as candle-transformers' `quantized_llama`/`quantized_qwen2`, reorganised for
//! scoring rather than chatting: the KV cache is a value ([`KvCache`]) that the caller keeps, so a
//! rubric's shared prompt prefix is computed once and every case continues from it; and a batch of
//! different-length continuations runs as one right-padded forward pass, returning the logits at each
//! row's own last token. With right padding a plain causal mask is enough: a real token never sees
//! a padding token, since padding only ever follows it.

use std::sync::Arc;

use candle_core::quantized::{gguf_file, QMatMul};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_nn::Embedding;

use crate::kernels::cpu::PackedLinear;

/// Hyper-parameters, read from the GGUF metadata under the architecture's prefix
/// (`llama.*`, `qwen2.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `general.architecture`.
    pub architecture: String,
    /// Transformer blocks.
    pub block_count: usize,
    /// Hidden width.
    pub embedding_length: usize,
    /// Query heads.
    pub head_count: usize,
    /// Key/value heads (grouped-query attention when fewer than the query heads).
    pub head_count_kv: usize,
    /// Rotary dimensions per head.
    pub rope_dimension: usize,
    /// Rotary base frequency.
    pub rope_freq_base: f32,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Longest context the model was trained for.
    pub context_length: usize,
}

impl Config {
    /// Reads the configuration of a GGUF file.
    pub fn from_gguf(ct: &gguf_file::Content) -> Result<Self> {
        let architecture = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_else(|| "llama".into());
        let get = |k: &str| -> Result<&gguf_file::Value> {
            let key = format!("{architecture}.{k}");
            ct.metadata.get(&key).ok_or_else(|| candle_core::Error::Msg(format!("GGUF metadata has no `{key}`")))
        };
        let embedding_length = get("embedding_length")?.to_u32()? as usize;
        let head_count = get("attention.head_count")?.to_u32()? as usize;
        Ok(Self {
            block_count: get("block_count")?.to_u32()? as usize,
            head_count_kv: get("attention.head_count_kv").and_then(|v| v.to_u32()).map_or(head_count, |v| v as usize),
            rope_dimension: get("rope.dimension_count")
                .and_then(|v| v.to_u32())
                .map_or(embedding_length / head_count, |v| v as usize),
            rope_freq_base: get("rope.freq_base").and_then(|v| v.to_f32()).unwrap_or(10_000.0),
            rms_norm_eps: get("attention.layer_norm_rms_epsilon")?.to_f32()? as f64,
            context_length: get("context_length").and_then(|v| v.to_u32()).map_or(4096, |v| v as usize),
            embedding_length,
            head_count,
            architecture,
        })
    }

    /// Whether rotary embeddings rotate halves (NeoX) rather than interleaved pairs, as llama.cpp
    /// decides by architecture.
    pub fn rope_is_neox(&self) -> bool {
        matches!(self.architecture.as_str(), "qwen" | "qwen2" | "qwen2moe" | "qwen3" | "phi3" | "stablelm" | "starcoder2")
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.embedding_length / self.head_count
    }
}

/// A weight matrix, ready to multiply.
#[derive(Debug, Clone)]
enum Weight {
    /// Quantized (or f32/f16) through candle.
    Q(QMatMul),
    /// Dequantized to f32 and packed for candor's f32 kernel (kernels::cpu).
    Packed(Arc<PackedLinear>),
}

impl Weight {
    /// On the CPU, candle has SIMD dot products for Q4_0, Q8_0 and the k-quants but only scalar code
    /// for Q4_1, Q5_0 and Q5_1 (about 10x slower): those are dequantized once at load, which is exact
    /// (the f32 values are the quantized weights), and run on candor's packed f32 kernel where the
    /// CPU has AVX-512 or AVX2, else on candle's f32 GEMM.
    fn new(qt: candle_core::quantized::QTensor, device: &Device) -> Result<Self> {
        use candle_core::quantized::GgmlDType as G;
        if device.is_cpu() && matches!(qt.dtype(), G::Q4_1 | G::Q5_0 | G::Q5_1) {
            let w = qt.dequantize(device)?;
            return Ok(match PackedLinear::new(&w, None)? {
                Some(p) => Weight::Packed(p),
                None => Weight::Q(QMatMul::Tensor(w)),
            });
        }
        Ok(Weight::Q(QMatMul::from_qtensor(qt)?))
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Weight::Q(q) => q.forward(x),
            Weight::Packed(p) => p.forward(x, false),
        }
    }
}

#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(ct: &gguf_file::Content, r: &mut (impl std::io::Read + std::io::Seek), name: &str, eps: f64, dev: &Device) -> Result<Self> {
        Ok(Self { weight: ct.tensor(r, name, dev)?.dequantize(dev)?, eps: eps as f32 })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        candle_nn::ops::rms_norm(x, &self.weight, self.eps)
    }
}

#[derive(Debug, Clone)]
struct Linear {
    w: Weight,
    b: Option<Tensor>,
}

impl Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.w.forward(x)?;
        match &self.b {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

#[derive(Debug, Clone)]
struct Block {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: RmsNorm,
    gate: Weight,
    up: Weight,
    down: Weight,
}

/// The keys and values of every block for a (batch of) token sequence(s): (batch, kv heads, len, dim).
#[derive(Debug, Clone)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    len: usize,
}

impl KvCache {
    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows of the cache.
    pub fn batch(&self) -> usize {
        self.layers.first().map_or(1, |(k, _)| k.dims()[0])
    }
}

/// A quantized llama-family decoder.
#[derive(Debug, Clone)]
pub struct GgufLlama {
    config: Config,
    embed: Embedding,
    blocks: Vec<Block>,
    norm: RmsNorm,
    output: Weight,
    cos: Tensor,
    sin: Tensor,
    device: Device,
}

impl GgufLlama {
    /// Loads the network from a parsed GGUF file.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(ct: &gguf_file::Content, r: &mut R, device: &Device) -> Result<Self> {
        let config = Config::from_gguf(ct)?;
        let eps = config.rms_norm_eps;
        let embed_q = ct.tensor(r, "token_embd.weight", device)?;
        let embed = Embedding::new(embed_q.dequantize(device)?, config.embedding_length);
        let output = match ct.tensor(r, "output.weight", device) {
            Ok(t) => Weight::new(t, device)?,
            Err(_) => Weight::new(embed_q, device)?, // tied embeddings
        };
        let linear = |r: &mut R, name: &str| -> Result<Linear> {
            let w = Weight::new(ct.tensor(r, &format!("{name}.weight"), device)?, device)?;
            let b = match ct.tensor_infos.contains_key(&format!("{name}.bias")) {
                true => Some(ct.tensor(r, &format!("{name}.bias"), device)?.dequantize(device)?),
                false => None,
            };
            Ok(Linear { w, b })
        };
        let mut blocks = Vec::with_capacity(config.block_count);
        for i in 0..config.block_count {
            let p = format!("blk.{i}");
            blocks.push(Block {
                q: linear(r, &format!("{p}.attn_q"))?,
                k: linear(r, &format!("{p}.attn_k"))?,
                v: linear(r, &format!("{p}.attn_v"))?,
                o: linear(r, &format!("{p}.attn_output"))?,
                attn_norm: RmsNorm::load(ct, r, &format!("{p}.attn_norm.weight"), eps, device)?,
                ffn_norm: RmsNorm::load(ct, r, &format!("{p}.ffn_norm.weight"), eps, device)?,
                gate: Weight::new(ct.tensor(r, &format!("{p}.ffn_gate.weight"), device)?, device)?,
                up: Weight::new(ct.tensor(r, &format!("{p}.ffn_up.weight"), device)?, device)?,
                down: Weight::new(ct.tensor(r, &format!("{p}.ffn_down.weight"), device)?, device)?,
            });
        }
        let norm = RmsNorm::load(ct, r, "output_norm.weight", eps, device)?;
        let max_pos = config.context_length.min(32_768);
        let mut theta: Vec<f32> = (0..config.rope_dimension)
            .step_by(2)
            .map(|i| 1.0 / config.rope_freq_base.powf(i as f32 / config.rope_dimension as f32))
            .collect();
        // Llama 3.1/3.2 scale the rotary frequencies: llama.cpp stores the divisors as `rope_freqs`.
        if ct.tensor_infos.contains_key("rope_freqs.weight") {
            let f: Vec<f32> = ct.tensor(r, "rope_freqs.weight", device)?.dequantize(&Device::Cpu)?.to_vec1()?;
            if f.len() != theta.len() {
                candle_core::bail!("rope_freqs has {} factors for {} frequencies", f.len(), theta.len());
            }
            theta.iter_mut().zip(&f).for_each(|(t, f)| *t /= f);
        }
        let theta = Tensor::new(theta.as_slice(), device)?;
        let pos = Tensor::arange(0, max_pos as u32, device)?.to_dtype(DType::F32)?.reshape((max_pos, 1))?;
        let angles = pos.matmul(&theta.reshape((1, ()))?)?;
        Ok(Self { cos: angles.cos()?, sin: angles.sin()?, config, embed, blocks, norm, output, device: device.clone() })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The device it runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Longest sequence (prefix and continuation together) it takes.
    pub fn max_positions(&self) -> usize {
        self.cos.dims()[0]
    }

    /// Runs `rows` (token ids, any lengths >= 1) as one right-padded batch after `past` (a cache of
    /// one row, shared by all, or of as many rows as `rows`; `None` for no prefix). Returns the
    /// next-token logits after each row's last token, (rows, vocab) in f32, and the cache extended by
    /// the batch (padding included; only a cache from equal-length rows is meaningful to extend).
    pub fn forward(&self, rows: &[Vec<u32>], past: Option<&KvCache>) -> Result<(Tensor, KvCache)> {
        self.forward_padded(rows, past, 0)
    }

    /// [`Self::forward`] with every row padded to `width` tokens (0: to the longest row).
    ///
    /// A row's logits depend on the padded width (the CPU kernels' blocking, and the quantized
    /// activations' rounding, change with the matrix shapes) but not on the other rows: a caller that
    /// chooses the width from the row alone gets results that do not depend on how rows were batched.
    pub fn forward_padded(&self, rows: &[Vec<u32>], past: Option<&KvCache>, width: usize) -> Result<(Tensor, KvCache)> {
        let b = rows.len();
        let lens: Vec<usize> = rows.iter().map(Vec::len).collect();
        let s = lens.iter().copied().max().unwrap_or(0).max(width);
        if b == 0 || lens.contains(&0) {
            candle_core::bail!("every row needs at least one token");
        }
        let start = past.map_or(0, KvCache::len);
        if start + s > self.max_positions() {
            candle_core::bail!("{} positions are more than the model's {}", start + s, self.max_positions());
        }
        if let Some(p) = past {
            if p.batch() != 1 && p.batch() != b {
                candle_core::bail!("a cache of {} rows cannot continue {} rows", p.batch(), b);
            }
        }
        let mut flat = Vec::with_capacity(b * s);
        for r in rows {
            flat.extend_from_slice(r);
            flat.extend(std::iter::repeat_n(0u32, s - r.len()));
        }
        let ids = Tensor::from_vec(flat, (b, s), &self.device)?;
        let mask = if s > 1 { Some(causal_mask(s, start, &self.device)?) } else { None };
        let cos = self.cos.narrow(0, start, s)?;
        let sin = self.sin.narrow(0, start, s)?;
        let (nh, nkv, hd) = (self.config.head_count, self.config.head_count_kv, self.config.head_dim());
        // Token states stay (b * s, hidden) between attention blocks: every projection is one 2-D
        // matrix product (a batched one would copy the broadcast weights once per row).
        let mut x = self.embed.forward(&ids)?.reshape((b * s, ()))?;
        let mut cache = Vec::with_capacity(self.blocks.len());
        for (i, blk) in self.blocks.iter().enumerate() {
            let h = blk.attn_norm.forward(&x)?;
            let q = blk.q.forward(&h)?.reshape((b, s, nh, hd))?.transpose(1, 2)?.contiguous()?;
            let k = blk.k.forward(&h)?.reshape((b, s, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let v = blk.v.forward(&h)?.reshape((b, s, nkv, hd))?.transpose(1, 2)?.contiguous()?;
            let (q, k) = if self.config.rope_is_neox() {
                (candle_nn::rotary_emb::rope(&q, &cos, &sin)?, candle_nn::rotary_emb::rope(&k, &cos, &sin)?)
            } else {
                (candle_nn::rotary_emb::rope_i(&q, &cos, &sin)?, candle_nn::rotary_emb::rope_i(&k, &cos, &sin)?)
            };
            let (k, v) = match past {
                None => (k, v),
                Some(p) => {
                    let (pk, pv) = &p.layers[i];
                    let shape = |t: &Tensor| (b, nkv, t.dims()[2], hd);
                    let pk = pk.broadcast_as(shape(pk))?;
                    let pv = pv.broadcast_as(shape(pv))?;
                    (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?)
                }
            };
            cache.push((k.clone(), v.clone()));
            let k = repeat_kv(k, nh / nkv)?;
            let v = repeat_kv(v, nh / nkv)?;
            let att = (q.matmul(&k.t()?)? / (hd as f64).sqrt())?;
            let att = match &mask {
                Some(m) => att.broadcast_add(m)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att.matmul(&v.contiguous()?)?.transpose(1, 2)?.reshape((b * s, nh * hd))?;
            x = (blk.o.forward(&y)? + x)?;
            let h = blk.ffn_norm.forward(&x)?;
            let g = candle_nn::ops::silu(&blk.gate.forward(&h)?)?;
            let y = blk.down.forward(&(g * blk.up.forward(&h)?)?)?;
            x = (y + x)?;
        }
        // Only each row's last real token goes through the head.
        let last: Vec<Tensor> = lens.iter().enumerate().map(|(r, &l)| x.i(r * s + l - 1)).collect::<Result<_>>()?;
        let last = Tensor::stack(&last, 0)?;
        let logits = self.output.forward(&self.norm.forward(&last)?)?.to_dtype(DType::F32)?;
        Ok((logits, KvCache { layers: cache, len: start + s }))
    }
}

/// Additive causal mask (s, start + s): query i sees keys 0..=start + i.
fn causal_mask(s: usize, start: usize, device: &Device) -> Result<Tensor> {
    let t = start + s;
    let data: Vec<f32> =
        (0..s).flat_map(|i| (0..t).map(move |j| if j > start + i { f32::NEG_INFINITY } else { 0.0 })).collect();
    Tensor::from_vec(data, (s, t), device)
}

fn repeat_kv(x: Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x);
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?.broadcast_as((b, h, n, t, d))?.reshape((b, h * n, t, d))
}
