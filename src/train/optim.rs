//! AdamW (Loshchilov & Hutter 2019) with its state exposed for checkpoints, the warmup + linear decay
//! schedule, and gradient clipping by global norm.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var};

use crate::error::{Error, Result};

/// AdamW hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdamWParams {
    /// Peak learning rate.
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay (not applied to biases and LayerNorm weights).
    pub weight_decay: f64,
}

impl Default for AdamWParams {
    fn default() -> Self {
        Self { lr: 5e-5, beta1: 0.9, beta2: 0.999, eps: 1e-6, weight_decay: 0.01 }
    }
}

/// AdamW over named variables, whose moments can be saved and restored exactly.
pub struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    /// Updates applied so far.
    pub t: u64,
    /// Hyper-parameters.
    pub params: AdamWParams,
}

/// Whether a parameter is exempt from weight decay (biases and LayerNorm), as is customary.
pub fn no_decay(name: &str) -> bool {
    name.ends_with(".bias") || name.contains("LayerNorm") || name.contains("layer_norm")
}

impl AdamW {
    /// An optimizer over `vars` (sorted by name, so that state files are stable).
    pub fn new(mut vars: Vec<(String, Var)>, params: AdamWParams) -> Result<Self> {
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let zeros = |v: &Var| v.as_tensor().zeros_like().map_err(Error::from);
        let m = vars.iter().map(|(_, v)| zeros(v)).collect::<Result<Vec<_>>>()?;
        let v = vars.iter().map(|(_, v)| zeros(v)).collect::<Result<Vec<_>>>()?;
        Ok(Self { vars, m, v, t: 0, params })
    }

    /// The variables, by name.
    pub fn vars(&self) -> &[(String, Var)] {
        &self.vars
    }

    /// Global L2 norm of the gradients.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sq = 0f64;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                if g.device().is_cpu() && g.dtype() == DType::F32 {
                    // One pass over the values in place, summed in f64 in a fixed order.
                    sq += crate::kernels::train::with_f32(g, |v| v.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>())?;
                } else {
                    sq += g.to_dtype(DType::F32)?.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
                }
            }
        }
        Ok(sq.sqrt())
    }

    /// One update at learning rate `lr`, with gradients scaled by `grad_scale` (for clipping).
    pub fn step(&mut self, grads: &GradStore, lr: f64, grad_scale: f64) -> Result<()> {
        self.t += 1;
        let p = self.params;
        let t = self.t as i32;
        let bc1 = 1.0 - p.beta1.powi(t);
        let bc2 = 1.0 - p.beta2.powi(t);
        for (i, (name, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            let decay = if no_decay(name) { 0.0 } else { p.weight_decay };
            if let Some((theta, m, v)) = fused_cpu_update(var.as_tensor(), &self.m[i], &self.v[i], g, &p, lr, grad_scale, (bc1, bc2), decay)? {
                var.set(&theta)?;
                self.m[i] = m;
                self.v[i] = v;
                continue;
            }
            let g = (g * grad_scale)?;
            let m = ((&self.m[i] * p.beta1)? + (&g * (1.0 - p.beta1))?)?;
            let v = ((&self.v[i] * p.beta2)? + (g.sqr()? * (1.0 - p.beta2))?)?;
            let update = ((&m / bc1)? / ((&v / bc2)?.sqrt()? + p.eps)?)?;
            let theta = var.as_tensor();
            let decayed = if no_decay(name) || p.weight_decay == 0.0 {
                theta.clone()
            } else {
                (theta * (1.0 - lr * p.weight_decay))?
            };
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(())
    }

    /// Saves the moments (`m.NAME`, `v.NAME`) to a safetensors file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut map = BTreeMap::new();
        for (i, (name, _)) in self.vars.iter().enumerate() {
            map.insert(format!("m.{name}"), self.m[i].clone());
            map.insert(format!("v.{name}"), self.v[i].clone());
        }
        let map: std::collections::HashMap<_, _> = map.into_iter().collect();
        candle_core::safetensors::save(&map, path).map_err(Error::from)
    }

    /// Restores the moments saved by [`AdamW::save`].
    pub fn load(&mut self, path: &Path, t: u64, device: &Device) -> Result<()> {
        let map = candle_core::safetensors::load(path, device)?;
        for (i, (name, _)) in self.vars.iter().enumerate() {
            let get = |k: String| {
                map.get(&k).cloned().ok_or_else(|| Error::Input {
                    location: path.display().to_string(),
                    reason: format!("optimizer state lacks `{k}`"),
                })
            };
            self.m[i] = get(format!("m.{name}"))?;
            self.v[i] = get(format!("v.{name}"))?;
        }
        self.t = t;
        Ok(())
    }
}

/// Learning rate at `step` (0-based) of `total`: linear warmup over `warmup` steps, then linear decay
/// to zero.
pub fn lr_at(peak: f64, step: u64, warmup: u64, total: u64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else if total <= warmup {
        peak
    } else {
        peak * (total.saturating_sub(step)) as f64 / (total - warmup) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((lr_at(1.0, 0, 10, 100) - 0.1).abs() < 1e-12);
        assert!((lr_at(1.0, 9, 10, 100) - 1.0).abs() < 1e-12);
        assert!((lr_at(1.0, 10, 10, 100) - 1.0).abs() < 1e-12);
        assert!((lr_at(1.0, 55, 10, 100) - 0.5).abs() < 1e-12);
        assert_eq!(lr_at(1.0, 100, 10, 100), 0.0);
    }

    #[test]
    fn adamw_first_step_moves_each_weight_by_lr_against_its_gradient() {
        // With bias correction, Adam's first update is lr * g / (|g| + eps) ~ lr * sign(g).
        let w = Var::from_slice(&[1.0f32, -2.0, 3.0], 3, &Device::Cpu).unwrap();
        let mut opt = AdamW::new(vec![("w.bias".into(), w.clone())], AdamWParams { lr: 0.1, ..Default::default() }).unwrap();
        let loss = (w.as_tensor() * &Tensor::new(&[2.0f32, -1.0, 0.5], &Device::Cpu).unwrap()).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        assert!((opt.grad_norm(&grads).unwrap() - (4.0f64 + 1.0 + 0.25).sqrt()).abs() < 1e-6);
        opt.step(&grads, 0.1, 1.0).unwrap();
        let got = w.as_tensor().to_vec1::<f32>().unwrap();
        for (g, want) in got.iter().zip([0.9f32, -1.9, 2.9]) {
            assert!((g - want).abs() < 1e-4, "{got:?}");
        }
    }

    #[test]
    fn weight_decay_skips_biases() {
        assert!(no_decay("bert.encoder.layer.0.output.LayerNorm.weight"));
        assert!(no_decay("classifier.bias"));
        assert!(!no_decay("classifier.weight"));
    }
}

/// The AdamW update of one f32 CPU variable in one pass over its values (the composed tensor ops
/// make a dozen passes and as many allocations): (new value, new m, new v), or `None` where the
/// tensors are not f32 on the CPU. The same arithmetic as the composed path, element by element.
#[allow(clippy::too_many_arguments)]
fn fused_cpu_update(
    theta: &Tensor,
    m: &Tensor,
    v: &Tensor,
    g: &Tensor,
    p: &AdamWParams,
    lr: f64,
    grad_scale: f64,
    (bc1, bc2): (f64, f64),
    decay: f64,
) -> Result<Option<(Tensor, Tensor, Tensor)>> {
    use rayon::prelude::*;
    if ![theta, m, v, g].iter().all(|t| t.device().is_cpu() && t.dtype() == DType::F32) || g.shape() != theta.shape() {
        return Ok(None);
    }
    use crate::kernels::train::with_f32 as with;
    let n = theta.elem_count();
    let (mut nt, mut nm, mut nv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    let (b1, b2, eps) = (p.beta1 as f32, p.beta2 as f32, p.eps as f32);
    let (scale, lr32, keep) = (grad_scale as f32, lr as f32, (1.0 - lr * decay) as f32);
    let (ibc1, ibc2) = ((1.0 / bc1) as f32, (1.0 / bc2) as f32);
    const CHUNK: usize = 1 << 15;
    with(theta, |ts: &[f32]| {
        with(m, |ms: &[f32]| {
            with(v, |vs: &[f32]| {
                with(g, |gs: &[f32]| {
                    nt.par_chunks_mut(CHUNK)
                        .zip(nm.par_chunks_mut(CHUNK))
                        .zip(nv.par_chunks_mut(CHUNK))
                        .enumerate()
                        .for_each(|(c, ((ot, om), ov))| {
                            let r = c * CHUNK..c * CHUNK + ot.len();
                            let (ts, ms, vs, gs) = (&ts[r.clone()], &ms[r.clone()], &vs[r.clone()], &gs[r]);
                            for i in 0..ot.len() {
                                let gi = gs[i] * scale;
                                let mi = ms[i] * b1 + gi * (1.0 - b1);
                                let vi = vs[i] * b2 + gi * gi * (1.0 - b2);
                                let update = (mi * ibc1) / ((vi * ibc2).sqrt() + eps);
                                ot[i] = ts[i] * keep - update * lr32;
                                om[i] = mi;
                                ov[i] = vi;
                            }
                        })
                })
            })
        })
    })????;
    let (shape, dev) = (theta.shape(), theta.device());
    Ok(Some((Tensor::from_vec(nt, shape, dev)?, Tensor::from_vec(nm, shape, dev)?, Tensor::from_vec(nv, shape, dev)?)))
}
