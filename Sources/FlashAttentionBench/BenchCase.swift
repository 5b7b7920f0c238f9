import FlashAttention

/// One configuration of a sweep: a shape, a mask, a storage dtype and a pass. Each
/// implementation of a run measures every case once.
public struct BenchCase: Hashable, Sendable, Codable, CustomStringConvertible {
  public var batch: Int
  public var heads: Int
  public var kvHeads: Int
  public var seqlenQ: Int
  public var seqlenK: Int
  public var headDim: Int
  public var causal: Bool
  public var dtype: DType
  public var pass: AttentionPass

  public init(
    batch: Int, heads: Int, kvHeads: Int? = nil, seqlenQ: Int, seqlenK: Int? = nil, headDim: Int,
    causal: Bool = false, dtype: DType = .float32, pass: AttentionPass = .forward
  ) {
    self.batch = batch
    self.heads = heads
    self.kvHeads = kvHeads ?? heads
    self.seqlenQ = seqlenQ
    self.seqlenK = seqlenK ?? seqlenQ
    self.headDim = headDim
    self.causal = causal
    self.dtype = dtype
    self.pass = pass
  }

  /// The embedding (model) dimension the seed reports sweep: heads × headDim.
  public var embeddingDim: Int { heads * headDim }

  /// The validated problem; throws the core's typed error for a bad shape.
  public func problem() throws(AttentionError) -> AttentionProblem {
    try AttentionProblem(
      batch: batch, queryHeads: heads, keyValueHeads: kvHeads, seqlenQ: seqlenQ, seqlenK: seqlenK,
      headDim: headDim, mask: causal ? .causal : .none)
  }

  /// Floating-point operations of one run of `pass`: the forward counts `4·B·Hq·D` per
  /// visible (query, key) pair (the exact causal count), the backward 2.5× that, and
  /// forward + backward 3.5×.
  public var flops: Double {
    guard let p = try? problem() else { return 0 }
    switch pass {
    case .forward: return p.forwardFLOPs
    case .backward: return p.backwardFLOPs
    case .forwardBackward: return p.forwardFLOPs + p.backwardFLOPs
    }
  }

  /// Bytes of Q, K, V in storage (and of dO and O for passes with a backward).
  public var inputBytes: Int {
    let q = batch * seqlenQ * heads * headDim
    let kv = batch * seqlenK * kvHeads * headDim
    let base = q + 2 * kv
    return dtype.byteCount * (pass == .forward ? base : base + 2 * q)
  }

  /// Bytes the standard algorithm materialises: S and P `(batch, heads, seqlenQ, seqlenK)`
  /// in float32 (plus dP/dS in the backward). Used to refuse a baseline that cannot fit.
  public var standardScoreBytes: Int {
    let matrix = batch * heads * seqlenQ * seqlenK * 4
    return pass == .forward ? 2 * matrix : 3 * matrix
  }

  /// The same case with another pass or dtype.
  public func with(pass: AttentionPass) -> BenchCase {
    var c = self
    c.pass = pass
    return c
  }

  public var description: String {
    var s = "B\(batch) H\(heads)"
    if kvHeads != heads { s += "/\(kvHeads)" }
    s += seqlenQ == seqlenK ? " N\(seqlenQ)" : " N\(seqlenQ)x\(seqlenK)"
    s += " D\(headDim)\(causal ? " causal" : "") \(dtype.shortName) \(pass.rawValue)"
    return s
  }
}
