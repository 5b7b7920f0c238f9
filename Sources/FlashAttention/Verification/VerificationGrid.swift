/// One shape of the correctness grid.
public struct VerificationCase: Sendable, Hashable, CustomStringConvertible {
  /// Short label for tables, e.g. `"113x203 causal"`.
  public var name: String
  public var problem: AttentionProblem

  public init(name: String, problem: AttentionProblem) {
    self.name = name
    self.problem = problem
  }
  public var description: String { "\(name) [\(problem)]" }
}

/// The correctness grid of the foundation issue: seqlen 1, seqlens that are not multiples of any
/// block size (113×203, 1023×1024, 1×239 and swapped), seqlenQ > seqlenK under the causal mask
/// (fully masked rows), GQA and MQA, and every headDim class (1, 3, 40, 59, 64, 111, 128, 256).
public enum VerificationGrid {
  /// Every case.
  public static var full: [VerificationCase] {
    var cases: [VerificationCase] = []
    func add(
      _ name: String, batch: Int = 1, heads: Int = 2, kvHeads: Int? = nil,
      _ nq: Int, _ nk: Int, d: Int = 64, masks: [AttentionMask] = [.none, .causal]
    ) {
      for mask in masks {
        // Every shape here is valid, so construction cannot fail; `try!` would hide a bug in
        // the grid itself, which the tests would then report loudly.
        let p = try! AttentionProblem(
          batch: batch, queryHeads: heads, keyValueHeads: kvHeads, seqlenQ: nq, seqlenK: nk,
          headDim: d, mask: mask)
        cases.append(VerificationCase(name: "\(name)\(mask == .causal ? " causal" : "")", problem: p))
      }
    }
    add("1x1", 1, 1)
    add("113x203", 113, 203)
    add("203x113", 203, 113)  // causal: the first 90 rows see no key
    add("1023x1024", heads: 1, 1023, 1024)
    add("1x239", 1, 239)
    add("239x1", 239, 1)       // causal: all but the last row masked
    add("GQA 6/2 97x131", batch: 2, heads: 6, kvHeads: 2, 97, 131)
    add("MQA 4/1 131x97", heads: 4, kvHeads: 1, 131, 97)
    for d in [1, 3, 40, 59, 64, 111, 128, 256] {
      add("d\(d) 77x129", batch: 2, 77, 129, d: d)
    }
    return cases
  }

  /// A subset that runs in seconds: one case of each kind.
  public static var quick: [VerificationCase] {
    let names: Set = [
      "1x1", "113x203 causal", "203x113 causal", "1x239", "239x1 causal",
      "GQA 6/2 97x131 causal", "MQA 4/1 131x97", "d3 77x129", "d59 77x129 causal", "d128 77x129",
      "d256 77x129 causal",
    ]
    return full.filter { names.contains($0.name) }
  }
}
