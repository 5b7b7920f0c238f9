import FlashAttention

/// Everything one configuration needs on the device — inputs, outputs, workspace and the
/// planned launches — so that a pass can be queued repeatedly with no allocation.
final class AttentionRun: @unchecked Sendable {
  let runtime: DeviceRuntime
  let problem: AttentionProblem
  let algorithm: AttentionAlgorithm
  let dtype: DType
  let deterministic: Bool
  let q, k, v: DeviceTensor
  let output: DeviceTensor
  let lse: DeviceTensor
  private(set) var dOutput, dq, dk, dv: DeviceTensor?
  private var scratch: DeviceBuffer?
  private var standard: StandardPlan?
  private var flashForward: [DeviceRuntime.ResolvedLaunch] = []
  private var flashBackward: [DeviceRuntime.ResolvedLaunch] = []

  /// LSE viewed as a `(1, lseCount, 1, 1)` tensor so it shares the tensor helpers.
  static func lseShape(_ p: AttentionProblem) -> TensorShape { TensorShape(batch: 1, seqlen: p.lseCount, heads: 1, headDim: 1) }

  /// Allocates O and LSE (and, with `gradients`, dQ/dK/dV and the workspace) for inputs
  /// already on the device, and plans the launches. `dOutput` is required for a backward.
  init(
    runtime: DeviceRuntime, problem: AttentionProblem, algorithm: AttentionAlgorithm, dtype: DType,
    q: DeviceTensor, k: DeviceTensor, v: DeviceTensor, output: DeviceTensor? = nil, lse: DeviceTensor? = nil,
    dOutput: DeviceTensor? = nil, deterministic: Bool = false
  ) throws(AttentionError) {
    self.runtime = runtime
    self.problem = problem
    self.algorithm = algorithm
    self.dtype = dtype
    self.deterministic = deterministic
    self.q = q
    self.k = k
    self.v = v
    let allocator = runtime.allocator
    if let output {
      self.output = output
    } else {
      self.output = try cuda { () throws(CUDAError) in try DeviceTensor(allocator: allocator, shape: problem.queryShape, dtype: dtype) }
    }
    if let lse {
      self.lse = lse
    } else {
      self.lse = try cuda { () throws(CUDAError) in try DeviceTensor(allocator: allocator, shape: Self.lseShape(problem), dtype: .float32) }
    }
    self.dOutput = dOutput
    if dOutput != nil {
      dq = try cuda { () throws(CUDAError) in try DeviceTensor(allocator: allocator, shape: problem.queryShape, dtype: dtype) }
      dk = try cuda { () throws(CUDAError) in try DeviceTensor(allocator: allocator, shape: problem.keyValueShape, dtype: dtype) }
      dv = try cuda { () throws(CUDAError) in try DeviceTensor(allocator: allocator, shape: problem.keyValueShape, dtype: dtype) }
    }
    try plan()
  }

  private func plan() throws(AttentionError) {
    let arch = runtime.arch
    switch algorithm {
    case .standard:
      let gradients = dOutput.map {
        StandardPlan.Gradients(dOutput: $0.ref, dq: dq!.ref, dk: dk!.ref, dv: dv!.ref)
      }
      let tensors = StandardPlan.Tensors(q: q.ref, k: k.ref, v: v.ref, output: output.ref, lse: lse.buffer.address)
      standard = try cuda { () throws(CUDAError) in
        try StandardPlan(runtime: runtime, problem: problem, dtype: dtype, tensors: tensors, gradients: gradients)
      }
    case .flash:
      let forwardLaunches = try FlashPath.forward(
        problem: problem, dtype: dtype, arch: arch, driver: runtime.device.driver, q: q.ref, k: k.ref, v: v.ref, output: output.ref,
        lse: lse.buffer.address, multiprocessorCount: runtime.device.properties.multiprocessorCount,
        tileCounter: runtime.tileCounter.address)
      let runtime = self.runtime
      flashForward = try cuda { () throws(CUDAError) in try runtime.resolve(forwardLaunches) }
      if let dOutput, let dq, let dk, let dv {
        let bytes = FlashPath.backwardScratchBytes(problem: problem, arch: arch, deterministic: deterministic)
        let allocator = runtime.allocator
        let scratchBuffer = try cuda { () throws(CUDAError) in try allocator.allocate(byteCount: max(bytes, 16)) }
        scratch = scratchBuffer
        let backwardLaunches = try FlashPath.backward(
          problem: problem, dtype: dtype, arch: arch, q: q.ref, k: k.ref, v: v.ref, output: output.ref,
          dOutput: dOutput.ref, lse: lse.buffer.address, dq: dq.ref, dk: dk.ref, dv: dv.ref,
          scratch: scratchBuffer.address, deterministic: deterministic)
        flashBackward = try cuda { () throws(CUDAError) in try runtime.resolve(backwardLaunches) }
      }
    }
  }

  /// Frees the workspace (S/P, scratch) once the run is done with; outputs stay.
  func releaseWorkspace() {
    standard = nil
    scratch = nil
    flashForward = []
    flashBackward = []
  }

  /// Queues the forward (O, LSE) on the runtime's stream.
  func forward() throws(AttentionError) {
    switch algorithm {
    case .standard: try cuda { () throws(CUDAError) in try standard!.forward() }
    case .flash: try cuda { () throws(CUDAError) in try runtime.run(flashForward) }
    }
  }

  /// Queues the backward (dQ, dK, dV) from O and LSE. `afterForward`: a `forward()` of this
  /// run was queued just before (standard attention then reuses its P).
  func backward(afterForward: Bool) throws(AttentionError) {
    guard dOutput != nil else { throw .invalidArgument(argument: "dOutput", value: "missing", expected: "the output gradient") }
    switch algorithm {
    case .standard: try cuda { () throws(CUDAError) in try standard!.backward(reuseProbabilities: afterForward) }
    case .flash: try cuda { () throws(CUDAError) in try runtime.run(flashBackward) }
    }
  }

  /// NaN into every output of `pass`, so unwritten elements fail any check.
  func poisonOutputs(_ pass: AttentionPass) throws(AttentionError) {
    try cuda { () throws(CUDAError) in
      if pass != .backward {
        try output.poison()
        try lse.poison()
      }
      if pass != .forward {
        try dq?.poison()
        try dk?.poison()
        try dv?.poison()
      }
    }
  }
}

/// Runs `body`, turning the runtime's errors into the core's.
@inline(__always)
func cuda<T>(_ body: () throws(CUDAError) -> T) throws(AttentionError) -> T {
  do { return try body() } catch { throw error.attentionError }
}
