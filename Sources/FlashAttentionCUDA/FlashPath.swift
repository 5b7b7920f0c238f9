import FlashAttention
import Foundation

/// The one place the backend meets the generated flash kernels' planners: the Hopper
/// forward (`HopperForwardPlanner`, sm_90a) where it takes the problem, else the
/// FlashAttention-2 kernels (`FlashAttentionKernels`, every sm_80+ GPU, forward and backward).
enum FlashPath {
  /// `FLASH_ATTN_HOPPER=0` keeps Hopper on the FlashAttention-2 forward (for comparisons).
  static var hopperEnabled: Bool { ProcessInfo.processInfo.environment["FLASH_ATTN_HOPPER"] != "0" }

  /// Throws `.unsupported` unless flash forward and backward can run `problem` in `dtype`.
  static func check(problem: AttentionProblem, dtype: DType, arch: GPUArch) throws(AttentionError) {
    try FlashAttentionKernels.check(problem: problem, dtype: dtype, arch: arch)
  }

  static func forward(
    problem: AttentionProblem, dtype: DType, arch: GPUArch, driver: CUDADriver, q: DeviceTensorRef,
    k: DeviceTensorRef, v: DeviceTensorRef, output: DeviceTensorRef, lse: UInt64, multiprocessorCount: Int? = nil,
    tileCounter: UInt64? = nil
  ) throws(AttentionError) -> [KernelLaunch] {
    if hopperEnabled, driver.supportsTensorMaps,
      HopperForwardPlanner.unsupportedReason(problem: problem, dtype: dtype, arch: arch, q: q, k: k, v: v, output: output)
        == nil
    {
      return try HopperForwardPlanner.plan(
        problem: problem, dtype: dtype, arch: arch, q: q, k: k, v: v, output: output, lse: lse,
        multiprocessorCount: multiprocessorCount, tileCounter: tileCounter,
        encodeTensorMap: driver.hopperTensorMapEncoder())
    }
    return try FlashAttentionKernels.forward(
      problem: problem, dtype: dtype, arch: arch, q: q, k: k, v: v, output: output, lse: lse)
  }

  static func backwardScratchBytes(problem: AttentionProblem, arch: GPUArch, deterministic: Bool) -> Int {
    FlashAttentionKernels.backwardScratchBytes(problem: problem, arch: arch, deterministic: deterministic)
  }

  static func backward(
    problem: AttentionProblem, dtype: DType, arch: GPUArch, q: DeviceTensorRef, k: DeviceTensorRef,
    v: DeviceTensorRef, output: DeviceTensorRef, dOutput: DeviceTensorRef, lse: UInt64, dq: DeviceTensorRef,
    dk: DeviceTensorRef, dv: DeviceTensorRef, scratch: UInt64, deterministic: Bool
  ) throws(AttentionError) -> [KernelLaunch] {
    try FlashAttentionKernels.backward(
      problem: problem, dtype: dtype, arch: arch, q: q, k: k, v: v, output: output, dOutput: dOutput, lse: lse,
      dq: dq, dk: dk, dv: dv, scratch: scratch, deterministic: deterministic)
  }

  /// Every flash kernel for `arch` (the Hopper family too on sm_90a).
  static func catalog(arch: GPUArch) -> [GeneratedKernel] {
    FlashAttentionKernels.catalog(arch: arch) + (arch == .sm90a ? HopperForwardPlanner.catalog() : [])
  }
}
