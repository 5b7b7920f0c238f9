import FlashAttention
import Testing

@Suite struct AttentionProblemTests {
  @Test func defaultsAndDerivedValues() throws {
    let p = try AttentionProblem(batch: 2, queryHeads: 8, keyValueHeads: 2, seqlenQ: 5, seqlenK: 7, headDim: 64)
    #expect(p.scale == 0.125)
    #expect(p.groupSize == 4)
    #expect(p.keyValueHead(forQueryHead: 5) == 1)
    #expect(p.forwardFLOPs == 4 * 2 * 8 * 5 * 7 * 64)
  }

  @Test func causalIsBottomRightAligned() throws {
    // seqlenQ > seqlenK: the first two rows see nothing.
    let tall = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 5, seqlenK: 3, headDim: 4, mask: .causal)
    #expect((0..<5).map(tall.visibleKeys(forQueryRow:)) == [0, 0, 1, 2, 3])
    // seqlenQ < seqlenK: the last row sees every key.
    let wide = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 2, seqlenK: 4, headDim: 4, mask: .causal)
    #expect((0..<2).map(wide.visibleKeys(forQueryRow:)) == [3, 4])
    let square = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 4, headDim: 4, mask: .causal)
    #expect(square.visiblePairsPerHead == 10)
  }

  @Test func invalidArgumentsAreNamed() {
    let cases: [(String, () throws -> AttentionProblem)] = [
      ("batch", { try AttentionProblem(batch: 0, queryHeads: 1, seqlenQ: 1, headDim: 1) }),
      ("queryHeads", { try AttentionProblem(batch: 1, queryHeads: 0, seqlenQ: 1, headDim: 1) }),
      ("keyValueHeads", { try AttentionProblem(batch: 1, queryHeads: 6, keyValueHeads: 4, seqlenQ: 1, headDim: 1) }),
      ("seqlenQ", { try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 0, headDim: 1) }),
      ("seqlenK", { try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 1, seqlenK: -3, headDim: 1) }),
      ("headDim", { try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 1, headDim: 257) }),
      ("scale", { try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 1, headDim: 4, scale: .nan) }),
    ]
    for (argument, make) in cases {
      do {
        _ = try make()
        Issue.record("expected an error for \(argument)")
      } catch {
        guard case let .invalidArgument(name, _, expected) = error as? AttentionError else {
          Issue.record("unexpected error \(error)")
          continue
        }
        #expect(name == argument)
        #expect(!expected.isEmpty)
      }
    }
  }

  @Test func shapesMustAgree() {
    #expect(throws: AttentionError.self) {
      try AttentionProblem(queryShape: [1, 4, 4, 8], keyShape: [1, 4, 3, 8], valueShape: [1, 4, 3, 8])
    }
    #expect(throws: AttentionError.self) {
      try AttentionProblem(queryShape: [1, 4, 4, 8], keyShape: [1, 4, 2, 8], valueShape: [1, 5, 2, 8])
    }
  }

  @Test func bfloat16RoundsToNearestEven() {
    #expect(BFloat16(1.0).floatValue == 1.0)
    #expect(BFloat16(Float(bitPattern: 0x3F80_8000)).bitPattern == 0x3F80)  // tie → even
    #expect(BFloat16(Float(bitPattern: 0x3F81_8000)).bitPattern == 0x3F82)  // tie → even (up)
    #expect(BFloat16(Float.nan).floatValue.isNaN)
  }

  @Test func referenceMatchesHandComputedCase() throws {
    // One query, two keys, headDim 1, scale 1: p = softmax([1·1, 1·2]).
    let p = try AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 1, seqlenK: 2, headDim: 1, scale: 1)
    let q = Tensor<Float>(shape: [1, 1, 1, 1], elements: [1])
    let k = Tensor<Float>(shape: [1, 2, 1, 1], elements: [1, 2])
    let v = Tensor<Float>(shape: [1, 2, 1, 1], elements: [10, 20])
    let r = ReferenceAttention.forward(p, q: try q.view(), k: try k.view(), v: try v.view())
    let e = 1 / (1 + 2.718281828459045)  // weight of the first key
    #expect(abs(r.output[0] - (10 * e + 20 * (1 - e))) < 1e-12)
    #expect(abs(r.lse[0] - (2 + log1p(exp(-1.0)))) < 1e-12)
  }
}

import Foundation
