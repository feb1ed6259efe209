//! Averaging the weights of models fine-tuned from one checkpoint (a "model soup", Wortsman et al.
//! 2022, "Model soups: averaging weights of multiple fine-tuned models improves accuracy without
//! increasing inference time"): one model of the same size, often more robust out of distribution
//! than any of its members, because errors that the members do not share cancel out.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};
use crate::io::{write_atomic, write_atomic_with};

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::Input { location: path.display().to_string(), reason: reason.into() }
}

/// Writes into `out` the uniform average of the model folders `members` (config.json, tokenizer.json,
/// model.safetensors each). The members must share their tokenizer (byte for byte), their config
/// (apart from `_name_or_path`, which becomes `name`) and their tensor names and shapes; the average
/// is taken in f32 and written in `dtype`.
pub fn average_models(members: &[&Path], name: &str, dtype: DType, out: &Path) -> Result<()> {
    let Some(first) = members.first() else {
        return Err(Error::Input { location: "average".into(), reason: "nothing to average".into() });
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io(p, e));
    let config_of = |dir: &Path| -> Result<serde_json::Value> {
        let p = dir.join("config.json");
        let mut v: serde_json::Value = serde_json::from_slice(&read(&p)?).map_err(|e| bad(&p, e.to_string()))?;
        if let Some(o) = v.as_object_mut() {
            o.remove("_name_or_path");
        }
        Ok(v)
    };
    let mut config = config_of(first)?;
    let tokenizer = read(&first.join("tokenizer.json"))?;
    for m in &members[1..] {
        if config_of(m)? != config {
            return Err(bad(&m.join("config.json"), format!("differs from {}: only models of one architecture and label set can be averaged", first.join("config.json").display())));
        }
        if read(&m.join("tokenizer.json"))? != tokenizer {
            return Err(bad(&m.join("tokenizer.json"), format!("differs from {}", first.join("tokenizer.json").display())));
        }
    }

    let mut sum: HashMap<String, Tensor> = HashMap::new();
    for (i, m) in members.iter().enumerate() {
        let p = m.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&p, &Device::Cpu)?;
        if i > 0 && (tensors.len() != sum.len() || tensors.keys().any(|k| !sum.contains_key(k))) {
            return Err(bad(&p, format!("holds other tensors than {}", first.join("model.safetensors").display())));
        }
        for (k, t) in tensors {
            let t = t.to_dtype(DType::F32)?;
            let acc = match sum.remove(&k) {
                None => t,
                Some(acc) if acc.dims() == t.dims() => (acc + t)?,
                Some(acc) => return Err(bad(&p, format!("tensor `{k}` has shape {:?}, not {:?}", t.dims(), acc.dims()))),
            };
            sum.insert(k, acc);
        }
    }
    let n = members.len() as f64;
    let averaged: HashMap<String, Tensor> =
        sum.into_iter().map(|(k, t)| Ok((k, (t / n)?.to_dtype(dtype)?))).collect::<Result<_>>()?;

    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    if let Some(o) = config.as_object_mut() {
        o.insert("_name_or_path".into(), serde_json::json!(name));
    }
    write_atomic(&out.join("config.json"), serde_json::to_string_pretty(&config).unwrap_or_default().as_bytes())?;
    write_atomic(&out.join("tokenizer.json"), &tokenizer)?;
    write_atomic_with(&out.join("model.safetensors"), |tmp| candle_core::safetensors::save(&averaged, tmp).map_err(Error::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(dir: &Path, scale: f32, name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("config.json"), format!("{{\"hidden_size\": 4, \"_name_or_path\": \"{name}\"}}")).unwrap();
        std::fs::write(dir.join("tokenizer.json"), "{}").unwrap();
        let w = Tensor::new(&[[1f32, -2.0], [3.0, 0.5]], &Device::Cpu).unwrap().affine(scale as f64, 0.0).unwrap();
        let b = Tensor::new(&[scale, 2.0 * scale], &Device::Cpu).unwrap();
        let map: HashMap<String, Tensor> = [("w".to_string(), w), ("b".to_string(), b)].into();
        candle_core::safetensors::save(&map, dir.join("model.safetensors")).unwrap();
    }

    #[test]
    fn averages_every_tensor_and_refuses_mismatched_members() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
        model(&a, 1.0, "a");
        model(&b, 2.0, "b");
        model(&c, 6.0, "c");
        let out = tmp.path().join("out");
        average_models(&[&a, &b, &c], "soup", DType::F32, &out).unwrap();
        let t = candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).unwrap();
        assert_eq!(t["w"].to_vec2::<f32>().unwrap(), vec![vec![3.0, -6.0], vec![9.0, 1.5]]);
        assert_eq!(t["b"].to_vec1::<f32>().unwrap(), vec![3.0, 6.0]);
        let cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(cfg["_name_or_path"], "soup");
        assert_eq!(cfg["hidden_size"], 4);

        // Another tokenizer, another config, another tensor shape: refused, naming the file.
        std::fs::write(c.join("tokenizer.json"), "{\"x\": 1}").unwrap();
        let e = average_models(&[&a, &c], "soup", DType::F32, &out).unwrap_err().to_string();
        assert!(e.contains("tokenizer.json"), "{e}");
        std::fs::write(c.join("tokenizer.json"), "{}").unwrap();
        std::fs::write(c.join("config.json"), "{\"hidden_size\": 8}").unwrap();
        let e = average_models(&[&a, &c], "soup", DType::F32, &out).unwrap_err().to_string();
        assert!(e.contains("config.json"), "{e}");
        std::fs::write(c.join("config.json"), "{\"hidden_size\": 4}").unwrap();
        let map: HashMap<String, Tensor> =
            [("w".to_string(), Tensor::zeros((2, 3), DType::F32, &Device::Cpu).unwrap()), ("b".to_string(), Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap())].into();
        candle_core::safetensors::save(&map, c.join("model.safetensors")).unwrap();
        let e = average_models(&[&a, &c], "soup", DType::F32, &out).unwrap_err().to_string();
        assert!(e.contains("shape"), "{e}");
    }
}
