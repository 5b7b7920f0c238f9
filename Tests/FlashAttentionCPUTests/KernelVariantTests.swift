import FlashAttention
import FlashAttentionCPU
import Testing

/// Tests that switch the process-wide kernel variant, and the tests that compare bits between
/// runs (which need the variant not to change meanwhile), serialized with each other.
@Suite(.serialized) struct KernelVariantTests {
  /// Every variant this CPU supports (not only the one chosen by default) against the reference
  /// over the quick grid, float32 and float16.
  @Test func everySupportedVariantMatchesReference() {
    let original = CPUKernelVariant.active
    defer { CPUKernelVariant.select(original) }
    #expect(CPUKernelVariant.supported.contains(.portable))
    for variant in CPUKernelVariant.supported where variant != original {
      #expect(CPUKernelVariant.select(variant))
      #expect(CPUKernelVariant.active == variant)
      let outcomes = AttentionVerifier(backend: CPUBackend()).verify(VerificationGrid.quick)
      #expect(outcomes.count == 2 * VerificationGrid.quick.count)
      for outcome in outcomes {
        #expect(outcome.status == .passed, "\(variant.displayName): \(outcome.tableRow)")
      }
    }
  }

  @Test(arguments: AttentionAlgorithm.allCases)
  func repeatedRunsAreBitIdentical(_ algorithm: AttentionAlgorithm) throws {
    // Several lanes on many key blocks with GQA: any write race or order-dependent
    // accumulation in dQ/dK/dV would show as differing bits between runs.
    let p = try AttentionProblem(batch: 2, queryHeads: 4, keyValueHeads: 1, seqlenQ: 300, seqlenK: 333, headDim: 32)
    let q = KernelPropertyTests.random(p.queryShape, seed: 31), k = KernelPropertyTests.random(p.keyValueShape, seed: 32)
    let v = KernelPropertyTests.random(p.keyValueShape, seed: 33), g = KernelPropertyTests.random(p.queryShape, seed: 34)
    defer { withExtendedLifetime((q, k, v, g)) {} }  // the views below hold raw pointers
    let first = try KernelPropertyTests.run(p, algorithm, q: q.view(), k: k.view(), v: v.view(), dO: g.view(), threads: 3)
    for _ in 0..<3 {
      let again = try KernelPropertyTests.run(p, algorithm, q: q.view(), k: k.view(), v: v.view(), dO: g.view(), threads: 3)
      #expect(again == first)
    }
  }

  @Test(arguments: AttentionAlgorithm.allCases)
  func headsMajorViewsGiveTheSameResult(_ algorithm: AttentionAlgorithm) throws {
    let p = try AttentionProblem(batch: 2, queryHeads: 4, keyValueHeads: 2, seqlenQ: 70, seqlenK: 90, headDim: 24, mask: .causal)
    let q = KernelPropertyTests.random(p.queryShape, seed: 11), k = KernelPropertyTests.random(p.keyValueShape, seed: 12)
    let v = KernelPropertyTests.random(p.keyValueShape, seed: 13), g = KernelPropertyTests.random(p.queryShape, seed: 14)
    defer { withExtendedLifetime((q, k, v, g)) {} }  // the views below hold raw pointers
    let contiguous = try KernelPropertyTests.run(p, algorithm, q: q.view(), k: k.view(), v: v.view(), dO: g.view())

    let qh = KernelPropertyTests.headsMajor(q, p.queryShape), kh = KernelPropertyTests.headsMajor(k, p.keyValueShape)
    let vh = KernelPropertyTests.headsMajor(v, p.keyValueShape), gh = KernelPropertyTests.headsMajor(g, p.queryShape)
    func view(_ t: Tensor<Float>, _ s: TensorShape) -> TensorView<Float> { TensorView(base: t.pointer, shape: s, strides: .headsMajor(s)) }
    defer { withExtendedLifetime((qh, kh, vh, gh)) {} }
    let strided = try KernelPropertyTests.run(
      p, algorithm, q: view(qh, p.queryShape), k: view(kh, p.keyValueShape), v: view(vh, p.keyValueShape),
      dO: view(gh, p.queryShape), layout: TensorStrides.headsMajor)
    // Same arithmetic in the same order: bit-identical, whatever the memory order.
    #expect(strided == contiguous)
    // And right: against the reference.
    let reference = ReferenceAttention.forward(p, q: try q.view(), k: try k.view(), v: try v.view())
    #expect(ErrorMetrics.relativeL2(strided[0], reference.output) < 1e-5)
  }
}
