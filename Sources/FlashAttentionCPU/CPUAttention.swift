import FlashAttention

/// Attention on the CPU over strided views — the entry point for Swift code that already holds
/// its tensors (in `(batch, seqlen, heads, headDim)` or, through strides, `(batch, heads,
/// seqlen, headDim)` memory order). Float32 compute; `Scalar` is the storage of every operand.
///
/// Views do not own memory: every buffer must stay valid and must not overlap an output
/// during the call.
public enum CPUAttention {
  /// Writes O (shaped like Q) and LSE (`(batch, queryHeads, seqlenQ)` float32, contiguous,
  /// `problem.lseCount` elements; −∞ for a row that sees no key, whose output is 0).
  /// - Parameter threads: lanes to run on (default: every core).
  public static func forward<Scalar: TensorScalar>(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm = .flash,
    q: TensorView<Scalar>, k: TensorView<Scalar>, v: TensorView<Scalar>,
    output: MutableTensorView<Scalar>, lse: UnsafeMutablePointer<Float>,
    threads: Int? = nil
  ) throws(AttentionError) {
    try checkStorage(Scalar.self)
    try checkShape(q.shape, problem.queryShape, "q")
    try checkShape(k.shape, problem.keyValueShape, "k")
    try checkShape(v.shape, problem.keyValueShape, "v")
    try checkShape(output.shape, problem.queryShape, "output")
    let lanes = try resolveThreads(threads)
    switch algorithm {
    case .flash:
      FlashForward(problem: problem, q: q, k: k, v: v, output: output, lse: lse, threads: lanes).run(threads: lanes)
    case .standard:
      try StandardAttention<Scalar>.checkMemory(problem, budget: CPUMachine.memoryBudget)
      StandardAttention<Scalar>(problem: problem, threads: lanes)
        .forward(q: q, k: k, v: v, output: output, lse: lse)
    }
  }

  /// Writes dQ (shaped like Q) and dK, dV (shaped like K; summed over each group's query
  /// heads) from the forward's `output` and `lse` and the output gradient `dOutput`.
  public static func backward<Scalar: TensorScalar>(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm = .flash,
    q: TensorView<Scalar>, k: TensorView<Scalar>, v: TensorView<Scalar>,
    output: TensorView<Scalar>, dOutput: TensorView<Scalar>, lse: UnsafePointer<Float>,
    dq: MutableTensorView<Scalar>, dk: MutableTensorView<Scalar>, dv: MutableTensorView<Scalar>,
    threads: Int? = nil
  ) throws(AttentionError) {
    try checkStorage(Scalar.self)
    try checkShape(q.shape, problem.queryShape, "q")
    try checkShape(k.shape, problem.keyValueShape, "k")
    try checkShape(v.shape, problem.keyValueShape, "v")
    try checkShape(output.shape, problem.queryShape, "output")
    try checkShape(dOutput.shape, problem.queryShape, "dOutput")
    try checkShape(dq.shape, problem.queryShape, "dq")
    try checkShape(dk.shape, problem.keyValueShape, "dk")
    try checkShape(dv.shape, problem.keyValueShape, "dv")
    let lanes = try resolveThreads(threads)
    switch algorithm {
    case .flash:
      FlashBackward(
        problem: problem, q: q, k: k, v: v, output: output, dOutput: dOutput, lse: lse,
        dq: dq, dk: dk, dv: dv, threads: lanes
      ).run(threads: lanes)
    case .standard:
      try StandardAttention<Scalar>.checkMemory(problem, budget: CPUMachine.memoryBudget)
      StandardAttention<Scalar>(problem: problem, threads: lanes).backward(
        q: q, k: k, v: v, output: output, dOutput: dOutput, lse: lse, dq: dq, dk: dk, dv: dv)
    }
  }

  static func checkStorage<Scalar: TensorScalar>(_: Scalar.Type) throws(AttentionError) {
    guard Scalar.dtype == .float32 || Scalar.dtype == .float16 else {
      throw .unsupported(argument: "dtype", value: Scalar.dtype.shortName, supported: "fp32, fp16 on the CPU")
    }
  }

  static func checkShape(_ got: TensorShape, _ expected: TensorShape, _ name: String) throws(AttentionError) {
    guard got == expected else {
      throw .shapeMismatch(argument: name, shape: got.dimensions, expected: expected.description)
    }
  }

  static func resolveThreads(_ threads: Int?) throws(AttentionError) -> Int {
    guard let threads else { return CPUMachine.coreCount }
    guard threads >= 1 else {
      throw .invalidArgument(argument: "threads", value: String(threads), expected: "an integer ≥ 1")
    }
    return threads
  }
}
