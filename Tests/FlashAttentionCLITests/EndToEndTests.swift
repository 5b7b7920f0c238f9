import FlashAttention
import Foundation
import Testing

/// `flash-attn forward` and `backward` through the real binary against the float64
/// reference: inputs written as `.npy`, outputs read back, relative L2 errors bounded.
@Suite struct EndToEndTests {
  struct Shape: CustomTestStringConvertible, Sendable {
    var batch: Int, seqlenQ: Int, seqlenK: Int, heads: Int, kvHeads: Int, headDim: Int
    var causal: Bool
    var dtype: DType
    var testDescription: String {
      "\(batch)x\(seqlenQ)x\(seqlenK) heads \(heads)/\(kvHeads) d\(headDim)\(causal ? " causal" : "") \(dtype)"
    }
  }

  static let shapes: [Shape] = [
    Shape(batch: 1, seqlenQ: 113, seqlenK: 203, heads: 2, kvHeads: 2, headDim: 64, causal: false, dtype: .float32),
    // seqlenQ > seqlenK, causal: the first 26 rows see no key.
    Shape(batch: 2, seqlenQ: 67, seqlenK: 41, heads: 4, kvHeads: 2, headDim: 40, causal: true, dtype: .float32),
    Shape(batch: 1, seqlenQ: 1, seqlenK: 239, heads: 3, kvHeads: 1, headDim: 59, causal: true, dtype: .float32),
    Shape(batch: 1, seqlenQ: 53, seqlenK: 53, heads: 4, kvHeads: 1, headDim: 32, causal: true, dtype: .float16),
  ]

  /// Float32: ≤ 1e-4 (the numpy check's bound). Float16 outputs carry float16 rounding
  /// (unit roundoff 2⁻¹¹ ≈ 4.9e-4), so they are held to 2e-3.
  static func tolerance(_ dtype: DType) -> Double { dtype == .float32 ? 1e-4 : 2e-3 }

  @Test(arguments: shapes, ["flash", "standard"])
  func forwardAndBackwardMatchTheReference(shape s: Shape, algorithm: String) throws {
    let folder = try TemporaryFolder()
    let qShape = [s.batch, s.seqlenQ, s.heads, s.headDim]
    let kShape = [s.batch, s.seqlenK, s.kvHeads, s.headDim]
    func random(_ shape: [Int], seed: UInt64) -> AnyTensor {
      AnyTensor.float32(Tensor(shape: shape, randomIn: -1...1, seed: seed)).converted(to: s.dtype)
    }
    let q = random(qShape, seed: 11), k = random(kShape, seed: 12), v = random(kShape, seed: 13)
    let dO = random(qShape, seed: 14)
    for (name, t) in [("q", q), ("k", k), ("v", v), ("do", dO)] {
      try NumPyFile.write(t, to: folder.file("\(name).npy"))
    }
    let problem = try AttentionProblem(
      batch: s.batch, queryHeads: s.heads, keyValueHeads: s.kvHeads, seqlenQ: s.seqlenQ, seqlenK: s.seqlenK,
      headDim: s.headDim, mask: s.causal ? .causal : .none)
    let (refForward, refBackward) = try Self.reference(problem, q: q, k: k, v: v, dO: dO)

    var common = ["--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--device", "cpu", "--algorithm", algorithm]
    if s.causal { common.append("--causal") }

    let forward = try FlashAttnProcess.run(["forward"] + common + ["--out", "o.npy", "--lse", "lse.npy"], in: folder.path)
    try #require(forward.status == 0, "forward failed: \(forward.standardError)")
    #expect(forward.standardError.isEmpty, "no notes with --device cpu: \(forward.standardError)")
    #expect(forward.standardOutput.split(whereSeparator: \.isNewline).count == 1)

    let o = try NumPyFile.read(path: folder.file("o.npy"))
    let lse = try NumPyFile.readFloat32(path: folder.file("lse.npy"))
    #expect(o.dtype == s.dtype && o.shape == qShape)
    #expect(lse.shape == [s.batch, s.heads, s.seqlenQ])
    let tol = Self.tolerance(s.dtype)
    #expect(ErrorMetrics.relativeL2(o.floats(), refForward.output) <= tol)
    #expect(ErrorMetrics.relativeL2(lse.elements, refForward.lse) <= 1e-5)
    // Rows that see no key: O exactly 0, LSE −∞.
    let hidden = (0..<s.seqlenQ).filter { problem.visibleKeys(forQueryRow: $0) == 0 }
    if s.causal && s.seqlenQ > s.seqlenK { #expect(hidden.count == s.seqlenQ - s.seqlenK) }
    for row in hidden {
      #expect(lse.pointer[row] == -.infinity)
      let rowStart = row * s.heads * s.headDim
      #expect(o.floats()[rowStart..<(rowStart + s.heads * s.headDim)].allSatisfy { $0 == 0 })
    }

    // Backward with the LSE from the forward, then with the LSE recomputed.
    for lseArguments in [["--lse", "lse.npy"], []] {
      let outputs = ["--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy"]
      let backward = try FlashAttnProcess.run(
        ["backward"] + common + ["--out", "o.npy", "--dout", "do.npy"] + lseArguments + outputs, in: folder.path)
      try #require(backward.status == 0, "backward failed: \(backward.standardError)")
      let dq = try NumPyFile.read(path: folder.file("dq.npy"))
      let dk = try NumPyFile.read(path: folder.file("dk.npy"))
      let dv = try NumPyFile.read(path: folder.file("dv.npy"))
      #expect(dq.dtype == s.dtype && dq.shape == qShape)
      #expect(dk.dtype == s.dtype && dk.shape == kShape)
      #expect(dv.dtype == s.dtype && dv.shape == kShape)
      let label = lseArguments.isEmpty ? "LSE recomputed" : "LSE given"
      #expect(ErrorMetrics.relativeL2(dq.floats(), refBackward.dq) <= tol, "\(label): dQ")
      #expect(ErrorMetrics.relativeL2(dk.floats(), refBackward.dk) <= tol, "\(label): dK")
      #expect(ErrorMetrics.relativeL2(dv.floats(), refBackward.dv) <= tol, "\(label): dV")
    }
    #expect(try folder.entries() == ["dk.npy", "do.npy", "dq.npy", "dv.npy", "k.npy", "lse.npy", "o.npy", "q.npy", "v.npy"])
  }

  /// The float64 reference from the same (possibly float16-rounded) inputs.
  static func reference(
    _ p: AttentionProblem, q: AnyTensor, k: AnyTensor, v: AnyTensor, dO: AnyTensor
  ) throws -> (ReferenceAttention.Forward, ReferenceAttention.Backward) {
    switch (q, k, v, dO) {
    case let (.float32(q), .float32(k), .float32(v), .float32(dO)):
      let views = (try q.view(), try k.view(), try v.view(), try dO.view())
      return (
        ReferenceAttention.forward(p, q: views.0, k: views.1, v: views.2),
        ReferenceAttention.backward(p, q: views.0, k: views.1, v: views.2, dOutput: views.3))
    case let (.float16(q), .float16(k), .float16(v), .float16(dO)):
      let views = (try q.view(), try k.view(), try v.view(), try dO.view())
      return (
        ReferenceAttention.forward(p, q: views.0, k: views.1, v: views.2),
        ReferenceAttention.backward(p, q: views.0, k: views.1, v: views.2, dOutput: views.3))
    default:
      throw AttentionError.invalidArgument(argument: "dtype", value: "\(q.dtype)", expected: "one dtype for all inputs")
    }
  }

  @Test func autoDeviceNotesItsChoiceAndOverwritesOutputs() throws {
    let folder = try TemporaryFolder()
    try NumPyFile.write(.float32(Tensor(shape: [1, 3, 2, 4], randomIn: -1...1, seed: 1)), to: folder.file("q.npy"))
    try NumPyFile.write(.float32(Tensor(shape: [1, 5, 1, 4], randomIn: -1...1, seed: 2)), to: folder.file("k.npy"))
    try folder.write(Array("stale".utf8), to: "o.npy")
    let result = try FlashAttnProcess.run(
      ["forward", "--q", "q.npy", "--k", "k.npy", "--v", "k.npy", "--out", "o.npy", "--device", "auto"], in: folder.path)
    try #require(result.status == 0, "\(result.standardError)")
    #expect(result.errorLines.count == 1)
    #expect(result.standardError.hasPrefix("note: --device auto chose "))
    #expect(try NumPyFile.read(path: folder.file("o.npy")).shape == [1, 3, 2, 4])
    #expect(try folder.entries() == ["k.npy", "o.npy", "q.npy"])
  }
}
