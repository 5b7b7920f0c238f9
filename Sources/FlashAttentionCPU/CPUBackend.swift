import FlashAttention

/// Exact attention on the CPU: float32 compute over float32 or float16 storage (bfloat16
/// inputs are converted to float32), all cores.
public final class CPUBackend: AttentionBackend {
  /// Lanes (threads) every pass runs on.
  public let threads: Int

  /// - Parameter threads: lanes to use; default (and any value < 1): every core.
  public init(threads: Int? = nil) {
    self.threads = max(1, threads ?? CPUMachine.coreCount)
  }

  public var kind: String { "cpu" }
  /// e.g. `"AMD EPYC, 2 threads"`.
  public var deviceName: String { "\(CPUMachine.modelName), \(threads) thread\(threads == 1 ? "" : "s")" }
  public var supportedDTypes: [DType] { [.float32, .float16] }

  public func check(_ problem: AttentionProblem, algorithm: AttentionAlgorithm, dtype: DType) throws(AttentionError) {
    guard supportedDTypes.contains(dtype) else {
      throw .unsupported(argument: "dtype", value: dtype.shortName, supported: "fp32, fp16 on the CPU (bf16 inputs are converted to fp32)")
    }
  }

  /// The storage the kernels read: `dtype` when given, else Q's (bfloat16 → float32).
  func storage(for q: AnyTensor, requested: DType?) -> DType {
    requested ?? (q.dtype == .bfloat16 ? .float32 : q.dtype)
  }

  public func forward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm,
    q: AnyTensor, k: AnyTensor, v: AnyTensor, dtype: DType?
  ) throws(AttentionError) -> ForwardResult {
    let storage = storage(for: q, requested: dtype)
    try check(problem, algorithm: algorithm, dtype: storage)
    try problem.checkForwardInputs(q: q, k: k, v: v)
    let lse = Tensor<Float>(shape: problem.lseShape, repeating: .nan)
    let output: AnyTensor
    switch storage {
    case .float16:
      output = try runForward(Float16.self, problem, algorithm, q, k, v, lse)
    default:
      output = try runForward(Float.self, problem, algorithm, q, k, v, lse)
    }
    return ForwardResult(output: output.converted(to: q.dtype), lse: lse)
  }

  public func backward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm,
    q: AnyTensor, k: AnyTensor, v: AnyTensor, output: AnyTensor, dOutput: AnyTensor,
    lse: Tensor<Float>, dtype: DType?
  ) throws(AttentionError) -> BackwardResult {
    let storage = storage(for: q, requested: dtype)
    try check(problem, algorithm: algorithm, dtype: storage)
    try problem.checkBackwardInputs(q: q, k: k, v: v, output: output, dOutput: dOutput, lse: lse)
    let result: (AnyTensor, AnyTensor, AnyTensor)
    switch storage {
    case .float16:
      result = try runBackward(Float16.self, problem, algorithm, q, k, v, output, dOutput, lse)
    default:
      result = try runBackward(Float.self, problem, algorithm, q, k, v, output, dOutput, lse)
    }
    return BackwardResult(
      dq: result.0.converted(to: q.dtype), dk: result.1.converted(to: q.dtype), dv: result.2.converted(to: q.dtype))
  }

  public func prepare(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, pass: AttentionPass,
    dtype: DType, seed: UInt64
  ) throws(AttentionError) -> any PreparedAttention {
    try check(problem, algorithm: algorithm, dtype: dtype)
    if algorithm == .standard {
      // Before any allocation, so that a benchmark records OOM instead of thrashing.
      try StandardAttention<Float>.checkMemory(problem, budget: CPUMachine.memoryBudget)
    }
    switch dtype {
    case .float16:
      return try PreparedCPUAttention<Float16>(problem, algorithm, pass, seed: seed, threads: threads)
    default:
      return try PreparedCPUAttention<Float>(problem, algorithm, pass, seed: seed, threads: threads)
    }
  }

  // MARK: Helpers

  /// `t` as a `Tensor<S>` (converted when its dtype differs).
  static func typed<S: TensorScalar>(_ t: AnyTensor, _: S.Type) -> Tensor<S> {
    switch t.converted(to: S.dtype) {
    case let .float32(x): return x as! Tensor<S>
    case let .float16(x): return x as! Tensor<S>
    case let .bfloat16(x): return x as! Tensor<S>
    }
  }

  private func runForward<S: TensorScalar>(
    _: S.Type, _ problem: AttentionProblem, _ algorithm: AttentionAlgorithm,
    _ q: AnyTensor, _ k: AnyTensor, _ v: AnyTensor, _ lse: Tensor<Float>
  ) throws(AttentionError) -> AnyTensor {
    let qt = Self.typed(q, S.self), kt = Self.typed(k, S.self), vt = Self.typed(v, S.self)
    // Poisoned with NaN so that an element a kernel fails to write cannot pass verification.
    let out = Tensor<S>(shape: qt.shape, repeating: S(Float.nan))
    // Views hold raw pointers: keep their owners alive until the kernels are done.
    try withExtendedLifetime((qt, kt, vt, out, lse)) { () throws(AttentionError) in
      try CPUAttention.forward(
        problem, algorithm: algorithm, q: qt.view(named: "q"), k: kt.view(named: "k"), v: vt.view(named: "v"),
        output: out.mutableView(named: "output"), lse: lse.pointer, threads: threads)
    }
    return AnyTensor(out)
  }

  private func runBackward<S: TensorScalar>(
    _: S.Type, _ problem: AttentionProblem, _ algorithm: AttentionAlgorithm,
    _ q: AnyTensor, _ k: AnyTensor, _ v: AnyTensor, _ o: AnyTensor, _ dO: AnyTensor, _ lse: Tensor<Float>
  ) throws(AttentionError) -> (AnyTensor, AnyTensor, AnyTensor) {
    let qt = Self.typed(q, S.self), kt = Self.typed(k, S.self), vt = Self.typed(v, S.self)
    let ot = Self.typed(o, S.self), dot = Self.typed(dO, S.self)
    let dq = Tensor<S>(shape: qt.shape, repeating: S(Float.nan))
    let dk = Tensor<S>(shape: kt.shape, repeating: S(Float.nan))
    let dv = Tensor<S>(shape: kt.shape, repeating: S(Float.nan))
    try withExtendedLifetime((qt, kt, vt, ot, dot, lse, dq, dk, dv)) { () throws(AttentionError) in
      try CPUAttention.backward(
        problem, algorithm: algorithm, q: qt.view(named: "q"), k: kt.view(named: "k"), v: vt.view(named: "v"),
        output: ot.view(named: "output"), dOutput: dot.view(named: "dOutput"), lse: lse.pointer,
        dq: dq.mutableView(named: "dq"), dk: dk.mutableView(named: "dk"), dv: dv.mutableView(named: "dv"),
        threads: threads)
    }
    return (AnyTensor(dq), AnyTensor(dk), AnyTensor(dv))
  }
}
