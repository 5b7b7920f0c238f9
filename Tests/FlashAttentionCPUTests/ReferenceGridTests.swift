import FlashAttention
import FlashAttentionCPU
import Testing

/// Flash and standard, forward and backward, float32 and float16 storage, against the float64
/// reference over the whole correctness grid (the same runner `flash-attn verify` uses).
@Suite struct ReferenceGridTests {
  static let backend = CPUBackend()

  @Test(arguments: VerificationGrid.full, [DType.float32, .float16])
  func matchesReference(_ testCase: VerificationCase, dtype: DType) {
    let outcome = AttentionVerifier(backend: Self.backend).verify(testCase, dtype: dtype)
    #expect(outcome.status == .passed, "\(outcome.tableRow)")
    // Every quantity was actually compared (nothing skipped silently).
    #expect(outcome.errors.count == VerifiedQuantity.allCases.count)
  }

  /// On one lane, enough work items make the forward take 256-row query blocks and the backward
  /// 128-key blocks (the grid above, on all cores, mostly runs the 64- and 128-row ones): odd
  /// lengths, GQA, both masks, both dtypes.
  @Test(arguments: [AttentionMask.none, .causal])
  func largestBlocksMatchReference(_ mask: AttentionMask) throws {
    let p = try AttentionProblem(
      batch: 1, queryHeads: 4, keyValueHeads: 2, seqlenQ: 520, seqlenK: 530, headDim: 24, mask: mask)
    let verifier = AttentionVerifier(backend: CPUBackend(threads: 1))
    for dtype in [DType.float32, .float16] {
      let outcome = verifier.verify(VerificationCase(name: "520x530 GQA 4/2 d24", problem: p), dtype: dtype)
      #expect(outcome.status == .passed, "\(outcome.tableRow)")
    }
  }

  @Test func bfloat16InputsAreComputedInFloat32() throws {
    let p = try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 33, seqlenK: 47, headDim: 24, mask: .causal)
    let q = AnyTensor(Tensor<Float>(shape: p.queryShape.dimensions, randomIn: -1...1, seed: 1)).converted(to: .bfloat16)
    let k = AnyTensor(Tensor<Float>(shape: p.keyValueShape.dimensions, randomIn: -1...1, seed: 2)).converted(to: .bfloat16)
    let v = AnyTensor(Tensor<Float>(shape: p.keyValueShape.dimensions, randomIn: -1...1, seed: 3)).converted(to: .bfloat16)
    let result = try Self.backend.forward(p, algorithm: .flash, q: q, k: k, v: v, dtype: nil)
    #expect(result.output.dtype == .bfloat16)
    // The reference sees exactly the rounded bfloat16 values (tensors kept alive for the views).
    let qf = Tensor(shape: q.shape, elements: q.floats())
    let kf = Tensor(shape: k.shape, elements: k.floats())
    let vf = Tensor(shape: v.shape, elements: v.floats())
    let reference = withExtendedLifetime((qf, kf, vf)) {
      ReferenceAttention.forward(p, q: try! qf.view(), k: try! kf.view(), v: try! vf.view())
    }
    #expect(ErrorMetrics.relativeL2(result.output.floats(), reference.output) < 0x1p-8)
    #expect(ErrorMetrics.relativeL2(result.lse.elements, reference.lse) < 1e-6)
  }
}
