import FlashAttention

/// Makes the CUDA backend for callers that should not depend on its types (the CLI's
/// device selection): throws `backendUnavailable` where there is no driver or GPU, so the
/// caller can fall back to the CPU.
public enum CUDABackendFactory {
  public static func make() throws(AttentionError) -> any AttentionBackend {
    try CUDABackend(device: 0)
  }
  public static func make(device ordinal: Int) throws(AttentionError) -> any AttentionBackend {
    try CUDABackend(device: ordinal)
  }
}

/// Attention on an NVIDIA GPU (sm_80 and newer). Kernels compute from fp16 or bf16 with
/// float32 accumulation; float32 inputs are converted on the host to the chosen dtype
/// (bf16 unless told otherwise) and results converted back to Q's dtype.
///
/// - `flash`: the generated FlashAttention kernels (`FlashAttentionKernels`).
/// - `standard`: S and P materialised, cuBLAS products, our softmax (`StandardPlan`).
///
/// The host-tensor API copies in, runs on the backend's stream and copies out; outputs are
/// filled with NaN first, so an element no kernel writes cannot pass a check.
public final class CUDABackend: AttentionBackend, @unchecked Sendable {
  public let runtime: DeviceRuntime
  /// The flash backward's deterministic mode (no atomics in dQ's accumulation).
  public var deterministic = false

  public init(device ordinal: Int = 0, cache: KernelCache = .shared) throws(AttentionError) {
    runtime = try cuda { () throws(CUDAError) in
      let driver = try CUDADriver.shared()
      // Without NVRTC no kernel can be built: report it now so callers fall back early.
      _ = try NVRTC.shared()
      return try DeviceRuntime(device: driver.device(ordinal), cache: cache)
    }
  }

  public var kind: String { "cuda" }
  public var deviceName: String { runtime.device.properties.name }
  public var supportedDTypes: [DType] { [.float16, .bfloat16] }

  /// The compute dtype: the one asked for, else Q's when it is fp16/bf16, else bf16.
  func computeDType(_ requested: DType?, _ q: DType) -> DType {
    requested ?? (supportedDTypes.contains(q) ? q : .bfloat16)
  }

  public func check(_ problem: AttentionProblem, algorithm: AttentionAlgorithm, dtype: DType) throws(AttentionError) {
    guard supportedDTypes.contains(dtype) else {
      throw .unsupported(
        argument: "dtype", value: dtype.shortName, supported: "fp16, bf16 on the GPU (fp32 inputs are converted)")
    }
    switch algorithm {
    case .standard:
      // cuBLAS takes 32-bit dimensions; P's pitch is 2·seqlenK.
      guard 2 * problem.seqlenK <= Int(Int32.max), problem.seqlenQ <= Int(Int32.max) else {
        throw .unsupported(argument: "seqlenK", value: String(problem.seqlenK), supported: "≤ \(Int32.max / 2) for standard attention")
      }
    case .flash:
      try FlashPath.check(problem: problem, dtype: dtype, arch: runtime.arch)
    }
  }

  public func forward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, q: AnyTensor, k: AnyTensor, v: AnyTensor,
    dtype: DType?
  ) throws(AttentionError) -> ForwardResult {
    let dt = computeDType(dtype, q.dtype)
    try check(problem, algorithm: algorithm, dtype: dt)
    try problem.checkForwardInputs(q: q, k: k, v: v)
    let allocator = runtime.allocator
    let (qd, kd, vd) = try cuda { () throws(CUDAError) in
      (
        try DeviceTensor(allocator: allocator, uploading: q, shape: problem.queryShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: k, shape: problem.keyValueShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: v, shape: problem.keyValueShape, as: dt)
      )
    }
    let run = try AttentionRun(runtime: runtime, problem: problem, algorithm: algorithm, dtype: dt, q: qd, k: kd, v: vd)
    try run.poisonOutputs(.forward)
    try run.forward()
    return try cuda { () throws(CUDAError) in
      try runtime.stream.synchronize()
      let lse = try run.lse.floats()
      return ForwardResult(
        output: try run.output.download(as: q.dtype),
        lse: Tensor(shape: problem.lseShape, elements: lse))
    }
  }

  public func backward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, q: AnyTensor, k: AnyTensor, v: AnyTensor,
    output: AnyTensor, dOutput: AnyTensor, lse: Tensor<Float>, dtype: DType?
  ) throws(AttentionError) -> BackwardResult {
    let dt = computeDType(dtype, q.dtype)
    try check(problem, algorithm: algorithm, dtype: dt)
    try problem.checkBackwardInputs(q: q, k: k, v: v, output: output, dOutput: dOutput, lse: lse)
    let allocator = runtime.allocator
    let lseShape = AttentionRun.lseShape(problem)
    let tensors = try cuda { () throws(CUDAError) in
      [
        try DeviceTensor(allocator: allocator, uploading: q, shape: problem.queryShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: k, shape: problem.keyValueShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: v, shape: problem.keyValueShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: output, shape: problem.queryShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: dOutput, shape: problem.queryShape, as: dt),
        try DeviceTensor(allocator: allocator, uploading: .float32(lse), shape: lseShape, as: .float32),
      ]
    }
    let run = try AttentionRun(
      runtime: runtime, problem: problem, algorithm: algorithm, dtype: dt, q: tensors[0], k: tensors[1],
      v: tensors[2], output: tensors[3], lse: tensors[5], dOutput: tensors[4], deterministic: deterministic)
    try run.poisonOutputs(.backward)
    try run.backward(afterForward: false)
    return try cuda { () throws(CUDAError) in
      try runtime.stream.synchronize()
      return BackwardResult(
        dq: try run.dq!.download(as: q.dtype), dk: try run.dk!.download(as: q.dtype),
        dv: try run.dv!.download(as: q.dtype))
    }
  }

  public func prepare(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, pass: AttentionPass, dtype: DType, seed: UInt64
  ) throws(AttentionError) -> any PreparedAttention {
    try check(problem, algorithm: algorithm, dtype: dtype)
    return try CUDAPreparedAttention(backend: self, problem: problem, algorithm: algorithm, pass: pass, dtype: dtype, seed: seed)
  }
}
