// swift-tools-version:6.0
import PackageDescription

let package = Package(
  name: "FlashAttention",
  products: [
    .library(name: "FlashAttention", targets: ["FlashAttention"]),
    .library(name: "FlashAttentionCPU", targets: ["FlashAttentionCPU"]),
    .library(name: "FlashAttentionCUDA", targets: ["FlashAttentionCUDA"]),
    .library(name: "FlashAttentionBench", targets: ["FlashAttentionBench"]),
    .executable(name: "flash-attn", targets: ["flash-attn"]),
  ],
  dependencies: [
    // The command-line interface of `flash-attn`; nothing else is needed.
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
  ],
  targets: [
    // Core: problem description, tensors, errors, float64 reference, backend protocol, .npy.
    .target(name: "FlashAttention"),
    // Tiled flash and standard attention on the CPU, all cores.
    // SIMD micro-kernels in C, one build per instruction set, chosen at run time by CPUID.
    .target(name: "CFlashAttentionKernels"),
    .target(name: "FlashAttentionCPU", dependencies: ["FlashAttention", "CFlashAttentionKernels"]),
    // NVIDIA GPUs: dlopen'ed driver + NVRTC, kernels generated from Swift.
    .target(name: "FlashAttentionCUDA", dependencies: ["FlashAttention"]),
    // `flash-attn bench`: sweeps, measurement, reports, charts.
    .target(name: "FlashAttentionBench", dependencies: ["FlashAttention", "FlashAttentionCPU", "FlashAttentionCUDA"]),
    .executableTarget(
      name: "flash-attn",
      dependencies: [
        "FlashAttention", "FlashAttentionCPU", "FlashAttentionCUDA", "FlashAttentionBench",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .testTarget(name: "FlashAttentionTests", dependencies: ["FlashAttention"]),
    .testTarget(name: "FlashAttentionBenchTests", dependencies: ["FlashAttention", "FlashAttentionCPU", "FlashAttentionBench"]),
    .testTarget(name: "FlashAttentionCUDATests", dependencies: ["FlashAttention", "FlashAttentionCUDA"]),
    // .npy I/O and the `flash-attn` binary run as a subprocess (the dependency builds it).
    .testTarget(name: "FlashAttentionCLITests", dependencies: ["FlashAttention", "FlashAttentionBench", "flash-attn"]),
    .testTarget(name: "FlashAttentionCPUTests", dependencies: ["FlashAttention", "FlashAttentionCPU"]),
  ]
)
