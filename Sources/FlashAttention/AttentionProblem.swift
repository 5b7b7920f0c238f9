/// Which (query, key) pairs take part in the softmax.
public enum AttentionMask: String, Hashable, Sendable, CaseIterable, Codable {
  /// Every query sees every key.
  case none
  /// Causal, aligned to the bottom-right corner (as flash-attn ≥ 2.1): query row `i`
  /// sees key `j` when `j ≤ i + seqlenK − seqlenQ`. When seqlenQ > seqlenK the first
  /// `seqlenQ − seqlenK` rows see no key; their output is 0 and their LSE is −∞.
  case causal
}

/// The shape and options of one attention call, validated on construction.
///
/// Tensors are `(batch, seqlen, heads, headDim)`: Q has `queryHeads` heads and
/// `seqlenQ` rows; K and V have `keyValueHeads` heads and `seqlenK` rows. Query head
/// `h` reads key/value head `h / (queryHeads / keyValueHeads)` (GQA; MQA when
/// `keyValueHeads` is 1). The scores are `scale · q·k`.
public struct AttentionProblem: Hashable, Sendable, Codable, CustomStringConvertible {
  public let batch: Int
  public let queryHeads: Int
  public let keyValueHeads: Int
  public let seqlenQ: Int
  public let seqlenK: Int
  public let headDim: Int
  /// Multiplies the scores before the softmax; `1/√headDim` by default.
  public let scale: Float
  public let mask: AttentionMask

  /// The largest headDim any backend accepts; a backend may accept fewer.
  public static let headDimRange = 1...256

  /// Validates every field and throws `AttentionError.invalidArgument` naming the first bad one.
  public init(
    batch: Int, queryHeads: Int, keyValueHeads: Int? = nil,
    seqlenQ: Int, seqlenK: Int? = nil, headDim: Int,
    scale: Float? = nil, mask: AttentionMask = .none
  ) throws(AttentionError) {
    let kvHeads = keyValueHeads ?? queryHeads
    let seqK = seqlenK ?? seqlenQ
    try Self.requirePositive(batch, "batch")
    try Self.requirePositive(queryHeads, "queryHeads")
    try Self.requirePositive(kvHeads, "keyValueHeads")
    guard queryHeads % kvHeads == 0 else {
      throw .invalidArgument(
        argument: "keyValueHeads", value: String(kvHeads),
        expected: "a divisor of queryHeads (\(queryHeads))")
    }
    try Self.requirePositive(seqlenQ, "seqlenQ")
    try Self.requirePositive(seqK, "seqlenK")
    guard Self.headDimRange.contains(headDim) else {
      throw .invalidArgument(
        argument: "headDim", value: String(headDim),
        expected: "\(Self.headDimRange.lowerBound)...\(Self.headDimRange.upperBound)")
    }
    let s = scale ?? 1 / Float(headDim).squareRoot()
    guard s.isFinite, s != 0 else {
      throw .invalidArgument(argument: "scale", value: String(s), expected: "a finite non-zero number")
    }
    self.batch = batch
    self.queryHeads = queryHeads
    self.keyValueHeads = kvHeads
    self.seqlenQ = seqlenQ
    self.seqlenK = seqK
    self.headDim = headDim
    self.scale = s
    self.mask = mask
  }

  private static func requirePositive(_ value: Int, _ name: String) throws(AttentionError) {
    guard value >= 1 else {
      throw .invalidArgument(argument: name, value: String(value), expected: "an integer ≥ 1")
    }
  }

  /// Query heads that share one key/value head.
  public var groupSize: Int { queryHeads / keyValueHeads }

  /// The key/value head read by query head `h`.
  @inlinable public func keyValueHead(forQueryHead h: Int) -> Int { h / (queryHeads / keyValueHeads) }

  /// Number of keys query row `row` sees: keys `0..<visibleKeys(row)` (prefix, since the
  /// causal mask is a prefix per row). 0 means a fully masked row.
  @inlinable public func visibleKeys(forQueryRow row: Int) -> Int {
    switch mask {
    case .none: return seqlenK
    case .causal: return max(0, min(seqlenK, row + seqlenK - seqlenQ + 1))
    }
  }

  /// (query, key) pairs that take part in one head's softmax.
  public var visiblePairsPerHead: Int {
    switch mask {
    case .none: return seqlenQ * seqlenK
    case .causal: return (0..<seqlenQ).reduce(0) { $0 + visibleKeys(forQueryRow: $1) }
    }
  }

  /// Floating-point operations of the forward: two matrix products of `2·Nq·Nk·D` each
  /// per head, counted over the visible pairs only (exactly half-plus-diagonal when causal
  /// and Nq = Nk).
  public var forwardFLOPs: Double {
    4 * Double(batch) * Double(queryHeads) * Double(visiblePairsPerHead) * Double(headDim)
  }

  /// The backward does five matrix products to the forward's two: 2.5× its FLOPs.
  public var backwardFLOPs: Double { 2.5 * forwardFLOPs }

  /// Expected shapes, `(batch, seqlen, heads, headDim)`.
  public var queryShape: TensorShape { TensorShape(batch: batch, seqlen: seqlenQ, heads: queryHeads, headDim: headDim) }
  public var keyValueShape: TensorShape { TensorShape(batch: batch, seqlen: seqlenK, heads: keyValueHeads, headDim: headDim) }
  /// LSE is `(batch, queryHeads, seqlenQ)`.
  public var lseCount: Int { batch * queryHeads * seqlenQ }

  public var description: String {
    "batch=\(batch) heads=\(queryHeads)/\(keyValueHeads) seqlen=\(seqlenQ)x\(seqlenK) headDim=\(headDim) mask=\(mask.rawValue)"
  }
}

extension AttentionProblem {
  /// Derives the problem from the shapes of Q and K (each `(batch, seqlen, heads, headDim)`),
  /// checking that V matches K and that the heads divide.
  public init(
    queryShape q: [Int], keyShape k: [Int], valueShape v: [Int],
    scale: Float? = nil, mask: AttentionMask = .none,
    names: (q: String, k: String, v: String) = ("q", "k", "v")
  ) throws(AttentionError) {
    let expected4 = "(batch, seqlen, heads, headDim)"
    guard q.count == 4 else { throw .shapeMismatch(argument: names.q, shape: q, expected: expected4) }
    guard k.count == 4 else { throw .shapeMismatch(argument: names.k, shape: k, expected: expected4) }
    guard v == k else {
      throw .shapeMismatch(argument: names.v, shape: v, expected: "the shape of \(names.k) \(k)")
    }
    guard k[0] == q[0] else {
      throw .shapeMismatch(argument: names.k, shape: k, expected: "batch \(q[0]) as in \(names.q)")
    }
    guard k[3] == q[3] else {
      throw .shapeMismatch(argument: names.k, shape: k, expected: "headDim \(q[3]) as in \(names.q)")
    }
    guard k[2] >= 1, q[2] % k[2] == 0 else {
      throw .shapeMismatch(
        argument: names.k, shape: k,
        expected: "heads dividing the \(q[2]) heads of \(names.q)")
    }
    try self.init(
      batch: q[0], queryHeads: q[2], keyValueHeads: k[2], seqlenQ: q[1], seqlenK: k[1],
      headDim: q[3], scale: scale, mask: mask)
  }
}
