//! Choosing the device models run on: `auto`, `cpu`, `cuda[:N]` or `metal[:N]`.

use std::str::FromStr;

use candle_core::{DType, Device};

use crate::error::{Error, Result};

/// A device as the user names it on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    /// A GPU when this build has one and it answers, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// The CUDA GPU with this ordinal.
    Cuda(usize),
    /// The Metal GPU with this ordinal.
    Metal(usize),
}

impl FromStr for DeviceSpec {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Device { spec: s.to_string(), reason: reason.to_string() };
        let (kind, ordinal) = match s.split_once(':') {
            Some((k, n)) => (k, Some(n.parse::<usize>().map_err(|_| bad("the ordinal after ':' must be a number"))?)),
            None => (s, None),
        };
        match (kind.to_ascii_lowercase().as_str(), ordinal) {
            ("auto", None) => Ok(DeviceSpec::Auto),
            ("cpu", None) => Ok(DeviceSpec::Cpu),
            ("cuda" | "gpu", n) => Ok(DeviceSpec::Cuda(n.unwrap_or(0))),
            ("metal", n) => Ok(DeviceSpec::Metal(n.unwrap_or(0))),
            _ => Err(bad("expected auto, cpu, cuda[:N] or metal[:N]")),
        }
    }
}

impl std::fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceSpec::Metal(n) => write!(f, "metal:{n}"),
        }
    }
}

impl DeviceSpec {
    /// Opens the device. `auto` tries CUDA, then Metal (when compiled in), then falls back to the CPU.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !candle_core::utils::cuda_is_available() {
                    return Err(Error::Device {
                        spec: self.to_string(),
                        reason: "this binary was built without CUDA (build with --features cuda)".into(),
                    });
                }
                Device::new_cuda(n).map_err(|e| Error::Device { spec: self.to_string(), reason: e.to_string() })
            }
            DeviceSpec::Metal(n) => {
                if !candle_core::utils::metal_is_available() {
                    return Err(Error::Device {
                        spec: self.to_string(),
                        reason: "this binary was built without Metal (build with --features metal)".into(),
                    });
                }
                Device::new_metal(n).map_err(|e| Error::Device { spec: self.to_string(), reason: e.to_string() })
            }
            DeviceSpec::Auto => {
                if candle_core::utils::cuda_is_available() {
                    if let Ok(d) = Device::new_cuda(0) {
                        return Ok(d);
                    }
                }
                if candle_core::utils::metal_is_available() {
                    if let Ok(d) = Device::new_metal(0) {
                        return Ok(d);
                    }
                }
                Ok(Device::Cpu)
            }
        }
    }
}

/// The dtype models run in on a device: f32 on the CPU, f16 on GPUs.
pub fn default_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::F16
    }
}

/// Device, number type and kernel path, as a run's manifest and the score cache key name them:
/// `cpu F32 avx512` and `cpu F32 avx2` (candor's kernels), `cpu F32 int8` (`[engine] precision = "int8"`),
/// `cpu F32 candle`, `cuda F16 candle`. Scores made on two runtimes may differ in their last digits,
/// so they are not taken for each other.
pub fn runtime(device: &Device, precision: crate::kernels::int8::Precision) -> String {
    let kernels = match (device.is_cpu(), precision) {
        (true, crate::kernels::int8::Precision::Int8) => "int8",
        (true, _) => match crate::kernels::cpu::isa() {
            Some(crate::kernels::cpu::Isa::Avx512) => "avx512",
            Some(crate::kernels::cpu::Isa::Avx2) => "avx2",
            None => "candle",
        },
        _ => "candle",
    };
    format!("{} {:?} {kernels}", describe(device), default_dtype(device))
}

/// A short name for a device, for messages and results.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".to_string(),
        Device::Cuda(_) => "cuda".to_string(),
        Device::Metal(_) => "metal".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse::<DeviceSpec>().unwrap(), DeviceSpec::Auto);
        assert_eq!("cpu".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(3));
        assert_eq!("metal".parse::<DeviceSpec>().unwrap(), DeviceSpec::Metal(0));
        assert!("cuda:x".parse::<DeviceSpec>().is_err());
        assert!("tpu".parse::<DeviceSpec>().is_err());
        assert!("cpu:1".parse::<DeviceSpec>().is_err());
    }

    #[test]
    fn the_runtime_names_the_precision_it_is_given() {
        use crate::kernels::int8::Precision;
        assert_eq!(runtime(&Device::Cpu, Precision::Int8), "cpu F32 int8");
        let f32_kernels = runtime(&Device::Cpu, Precision::F32);
        assert!(f32_kernels.starts_with("cpu F32 ") && !f32_kernels.ends_with("int8"), "{f32_kernels}");
    }

    #[test]
    fn auto_falls_back_to_cpu_without_a_gpu_build() {
        let d = DeviceSpec::Auto.open().unwrap();
        if !candle_core::utils::cuda_is_available() && !candle_core::utils::metal_is_available() {
            assert!(d.is_cpu());
            assert!(DeviceSpec::Cuda(0).open().is_err());
        }
    }
}
