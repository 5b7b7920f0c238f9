import FlashAttention
import FlashAttentionCPU
import Testing

/// Properties of the CPU kernels beyond agreement with the reference: strided layouts, masked
/// rows, determinism.
@Suite struct KernelPropertyTests {
  static func random(_ shape: TensorShape, seed: UInt64) -> Tensor<Float> {
    Tensor(shape: shape.dimensions, randomIn: -1...1, seed: seed)
  }

  /// Runs forward + backward through the view API and returns O, LSE, dQ, dK, dV.
  static func run(
    _ p: AttentionProblem, _ algorithm: AttentionAlgorithm, q: TensorView<Float>, k: TensorView<Float>,
    v: TensorView<Float>, dO: TensorView<Float>, threads: Int? = nil,
    layout: (TensorShape) -> TensorStrides = TensorStrides.contiguous
  ) throws -> [[Float]] {
    let o = Tensor<Float>(shape: [p.queryShape.elementCount], repeating: .nan)
    let lse = Tensor<Float>(shape: [p.lseCount], repeating: .nan)
    let dq = Tensor<Float>(shape: [p.queryShape.elementCount], repeating: .nan)
    let dk = Tensor<Float>(shape: [p.keyValueShape.elementCount], repeating: .nan)
    let dv = Tensor<Float>(shape: [p.keyValueShape.elementCount], repeating: .nan)
    func view(_ t: Tensor<Float>, _ s: TensorShape) -> MutableTensorView<Float> {
      MutableTensorView(base: t.pointer, shape: s, strides: layout(s))
    }
    let ov = view(o, p.queryShape)
    try CPUAttention.forward(p, algorithm: algorithm, q: q, k: k, v: v, output: ov, lse: lse.pointer, threads: threads)
    try CPUAttention.backward(
      p, algorithm: algorithm, q: q, k: k, v: v, output: ov.readOnly, dOutput: dO, lse: lse.pointer,
      dq: view(dq, p.queryShape), dk: view(dk, p.keyValueShape), dv: view(dv, p.keyValueShape), threads: threads)
    // Back to (batch, seqlen, heads, headDim) order for comparison.
    func gather(_ t: Tensor<Float>, _ s: TensorShape) -> [Float] {
      let v = view(t, s)
      var out: [Float] = []
      for b in 0..<s.batch { for i in 0..<s.seqlen { for h in 0..<s.heads { for x in 0..<s.headDim { out.append(v.row(b, i, h)[x]) } } } }
      return out
    }
    return [gather(o, p.queryShape), lse.elements, gather(dq, p.queryShape), gather(dk, p.keyValueShape), gather(dv, p.keyValueShape)]
  }

  /// Copies a C-ordered tensor into `(batch, heads, seqlen, headDim)` memory order.
  static func headsMajor(_ t: Tensor<Float>, _ s: TensorShape) -> Tensor<Float> {
    let out = Tensor<Float>(shape: [s.elementCount], repeating: .nan)
    let dst = MutableTensorView(base: out.pointer, shape: s, strides: .headsMajor(s))
    let src = TensorView(base: t.pointer, shape: s)
    for b in 0..<s.batch { for i in 0..<s.seqlen { for h in 0..<s.heads { for x in 0..<s.headDim { dst.row(b, i, h)[x] = src.row(b, i, h)[x] } } } }
    return out
  }

  @Test(arguments: AttentionAlgorithm.allCases)
  func fullyMaskedRowsAreZeroWithInfiniteLSE(_ algorithm: AttentionAlgorithm) throws {
    // seqlenQ > seqlenK with the bottom-right causal mask: rows 0..<(150 − 40) see no key.
    let p = try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 150, seqlenK: 40, headDim: 16, mask: .causal)
    let q = Self.random(p.queryShape, seed: 21), k = Self.random(p.keyValueShape, seed: 22)
    let v = Self.random(p.keyValueShape, seed: 23), g = Self.random(p.queryShape, seed: 24)
    defer { withExtendedLifetime((q, k, v, g)) {} }  // the views below hold raw pointers
    let r = try Self.run(p, algorithm, q: q.view(), k: k.view(), v: v.view(), dO: g.view())
    for values in r { #expect(!values.contains { $0.isNaN }) }
    let masked = p.seqlenQ - p.seqlenK
    let d = p.headDim, heads = p.queryHeads
    for i in 0..<p.seqlenQ {
      for h in 0..<heads {
        let row = (i * heads + h) * d
        let lse = r[1][h * p.seqlenQ + i]
        if i < masked {
          #expect(lse == -.infinity)
          #expect(r[0][row..<(row + d)].allSatisfy { $0 == 0 })
          #expect(r[2][row..<(row + d)].allSatisfy { $0 == 0 })
        } else {
          #expect(lse.isFinite)
        }
      }
    }
  }
}
