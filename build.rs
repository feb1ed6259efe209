//! Compiles kernels/*.cu to PTX when the `cuda` feature is on (nvcc on PATH, or under CUDA_ROOT;
//! `CUDA_COMPUTE_CAP` picks the target, 90 by default). Without the feature it does nothing.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=kernels/candor.cu");
    println!("cargo:rerun-if-env-changed=CUDA_COMPUTE_CAP");
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        return;
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let cap = std::env::var("CUDA_COMPUTE_CAP").unwrap_or_else(|_| "90".into());
    let nvcc = std::env::var_os("CUDA_ROOT")
        .map(|r| PathBuf::from(r).join("bin/nvcc"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nvcc"));
    let mut cmd = Command::new(&nvcc);
    cmd.args(["--ptx", "-O3", "--use_fast_math", &format!("-arch=compute_{cap}"), "-o"])
        .arg(out.join("candor_kernels.ptx"))
        .arg("kernels/candor.cu");
    if let Some(root) = std::env::var_os("CUDA_ROOT") {
        cmd.arg(format!("-I{}", PathBuf::from(root).join("include").display()));
    }
    let status = cmd.status().unwrap_or_else(|e| panic!("cannot run {}: {e} (set CUDA_ROOT or put nvcc on PATH)", nvcc.display()));
    assert!(status.success(), "nvcc failed on kernels/candor.cu");
}
