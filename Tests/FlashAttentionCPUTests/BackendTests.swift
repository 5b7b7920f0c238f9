import FlashAttention
import FlashAttentionCPU
import Testing

/// The `AttentionBackend` surface: names, bad input, the benchmark entry point.
@Suite struct BackendTests {
  @Test func describesItself() {
    let backend = CPUBackend(threads: 2)
    #expect(backend.kind == "cpu")
    #expect(backend.deviceName.hasSuffix(", 2 threads"))
    #expect(CPUBackend().threads >= 1)
  }

  @Test func standardRefusesWhatDoesNotFitBeforeAllocating() throws {
    // S and P alone: 2 × 64·32·65536² floats ≈ 70 TB.
    let p = try AttentionProblem(batch: 64, queryHeads: 32, seqlenQ: 65536, headDim: 64)
    let before = HostMemory.currentBytes
    #expect(throws: AttentionError.self) {
      _ = try CPUBackend().prepare(p, algorithm: .standard, pass: .forward, dtype: .float32, seed: 1)
    }
    do {
      _ = try CPUBackend().prepare(p, algorithm: .standard, pass: .forward, dtype: .float32, seed: 1)
    } catch {
      guard case .outOfMemory(let device, let bytes) = error else {
        Issue.record("expected outOfMemory, got \(error)")
        return
      }
      #expect(device == "cpu")
      #expect(bytes == 2 * 64 * 32 * 65536 * 65536 * 4)
    }
    // Nothing of the problem's size is held: Q alone would be 32 GiB, S 35 TB. The margin is
    // 1 GiB, not 0, because the counter is process-wide and other tests run concurrently (CI
    // once saw 1.5 MB more held between the two reads, against a 1 MiB margin).
    #expect(HostMemory.currentBytes <= before + 1 << 30)
  }

  @Test func rejectsBadInputWithNamedErrors() throws {
    let backend = CPUBackend()
    let p = try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 8, seqlenK: 9, headDim: 4)
    let q = AnyTensor(Tensor<Float>(shape: [1, 8, 2, 4], randomIn: -1...1, seed: 1))
    let k = AnyTensor(Tensor<Float>(shape: [1, 9, 2, 4], randomIn: -1...1, seed: 2))
    let wrong = AnyTensor(Tensor<Float>(shape: [1, 8, 2, 4], randomIn: -1...1, seed: 3))
    #expect(throws: AttentionError.shapeMismatch(argument: "v", shape: [1, 8, 2, 4], expected: "(1, 9, 2, 4)")) {
      _ = try backend.forward(p, algorithm: .flash, q: q, k: k, v: wrong, dtype: nil)
    }
    #expect(throws: AttentionError.self) {
      _ = try backend.forward(p, algorithm: .flash, q: q, k: k, v: k, dtype: .bfloat16)
    }
    let lse = Tensor<Float>(shape: [1, 2, 7], repeating: 0)
    #expect(throws: AttentionError.self) {
      _ = try backend.backward(p, algorithm: .flash, q: q, k: k, v: k, output: q, dOutput: q, lse: lse, dtype: nil)
    }
    let o = Tensor<Float>(shape: [1, 8, 2, 4], repeating: 0)
    let k32 = try k.floats32()
    #expect(throws: AttentionError.invalidArgument(argument: "threads", value: "0", expected: "an integer ≥ 1")) {
      try withExtendedLifetime((o, k32, lse)) {
        try CPUAttention.forward(
          p, q: o.view(), k: k32.view(), v: k32.view(), output: o.mutableView(), lse: lse.pointer, threads: 0)
      }
    }
  }

  @Test(arguments: AttentionPass.allCases)
  func preparedRunsMeasureAndAgree(_ pass: AttentionPass) throws {
    let backend = CPUBackend()
    let p = try AttentionProblem(batch: 1, queryHeads: 2, seqlenQ: 100, seqlenK: 130, headDim: 32, mask: .causal)
    var results: [[String: [Float]]] = []
    for algorithm in AttentionAlgorithm.allCases {
      let prepared = try backend.prepare(p, algorithm: algorithm, pass: pass, dtype: .float32, seed: 7)
      let times = try prepared.measure(warmup: 1, repeats: 2)
      #expect(times.count == 2 && times.allSatisfy { $0 > 0 })
      // At least the outputs; flash adds only per-lane tiles, standard the quadratic S and P.
      #expect(prepared.peakExtraBytes > 0)
      results.append(try prepared.results())
    }
    #expect(results[0].keys.sorted() == results[1].keys.sorted())
    for (key, flash) in results[0] {
      let standard = results[1][key]!.map(Double.init)
      #expect(ErrorMetrics.relativeL2(flash, standard) < 1e-5, "\(key)")
    }
  }
}

extension AnyTensor {
  /// The tensor as float32 (test helper).
  func floats32() throws -> Tensor<Float> { Tensor(shape: shape, elements: floats()) }
}
