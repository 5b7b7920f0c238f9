import FlashAttention

/// The one place the backend meets the generated flash kernels' planner
/// (`FlashAttentionKernels` in `Codegen/`). Until that lands the flash algorithm is
/// reported as unsupported on the GPU.
enum FlashPath {
  static let notBuilt = AttentionError.unsupported(
    argument: "algorithm", value: "flash", supported: "standard (the generated flash kernels are not built yet)")

  static func forward(
    problem: AttentionProblem, dtype: DType, arch: GPUArch, q: DeviceTensorRef, k: DeviceTensorRef,
    v: DeviceTensorRef, output: DeviceTensorRef, lse: UInt64
  ) throws(AttentionError) -> [KernelLaunch] {
    throw notBuilt
  }

  static func backwardScratchBytes(problem: AttentionProblem, arch: GPUArch, deterministic: Bool) -> Int { 0 }

  static func backward(
    problem: AttentionProblem, dtype: DType, arch: GPUArch, q: DeviceTensorRef, k: DeviceTensorRef,
    v: DeviceTensorRef, output: DeviceTensorRef, dOutput: DeviceTensorRef, lse: UInt64, dq: DeviceTensorRef,
    dk: DeviceTensorRef, dv: DeviceTensorRef, scratch: UInt64, deterministic: Bool
  ) throws(AttentionError) -> [KernelLaunch] {
    throw notBuilt
  }

  static func catalog(arch: GPUArch) -> [GeneratedKernel] { [] }
}
