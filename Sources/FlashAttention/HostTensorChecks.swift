extension AttentionProblem {
  /// The shape of LSE, `(batch, queryHeads, seqlenQ)`.
  public var lseShape: [Int] { [batch, queryHeads, seqlenQ] }

  /// Throws `.shapeMismatch` naming the first host tensor that does not fit the forward:
  /// Q `queryShape`, K and V `keyValueShape`. Every backend's host entry point checks this.
  public func checkForwardInputs(q: AnyTensor, k: AnyTensor, v: AnyTensor) throws(AttentionError) {
    try Self.require(q.shape, queryShape, "q")
    try Self.require(k.shape, keyValueShape, "k")
    try Self.require(v.shape, keyValueShape, "v")
  }

  /// The forward's checks, plus O and dO shaped like Q and LSE `(batch, queryHeads, seqlenQ)`.
  public func checkBackwardInputs(
    q: AnyTensor, k: AnyTensor, v: AnyTensor, output: AnyTensor, dOutput: AnyTensor, lse: Tensor<Float>
  ) throws(AttentionError) {
    try checkForwardInputs(q: q, k: k, v: v)
    try Self.require(output.shape, queryShape, "output")
    try Self.require(dOutput.shape, queryShape, "dOutput")
    guard lse.shape == lseShape else {
      throw .shapeMismatch(
        argument: "lse", shape: lse.shape,
        expected: "(batch, queryHeads, seqlenQ) = (\(lseShape.map(String.init).joined(separator: ", ")))")
    }
  }

  private static func require(_ shape: [Int], _ expected: TensorShape, _ name: String) throws(AttentionError) {
    guard shape == expected.dimensions else {
      throw .shapeMismatch(argument: name, shape: shape, expected: expected.description)
    }
  }
}
