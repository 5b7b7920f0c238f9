import CFlashAttentionKernels
import FlashAttention
import Foundation

/// Standard attention on the CPU — the baseline the seed reports call "PyTorch": the scores
/// S = scale·QKᵀ and the probabilities P = softmax(S) are materialised for every (batch, head)
/// at once, as `q @ k.T; softmax; @ v` does, and the products are blocked GEMMs on all lanes.
///
/// S and P are separate buffers in the forward (like PyTorch's out-of-place softmax), so its
/// peak memory is what the seed reports measure; the backward holds P and dS.
struct StandardAttention<Scalar: TensorScalar> {
  let problem: AttentionProblem
  let threads: Int

  /// Bytes of the two `(batch, queryHeads, seqlenQ, seqlenK)` float32 matrices either pass holds.
  static func quadraticBytes(_ p: AttentionProblem) -> Int {
    let (product, overflow) = (p.batch * p.queryHeads).multipliedReportingOverflow(by: p.seqlenQ * p.seqlenK)
    return overflow ? Int.max : product.multipliedReportingOverflow(by: 8).partialValue
  }

  /// Throws `.outOfMemory` when S and P would not fit in `budget` bytes — before allocating.
  static func checkMemory(_ p: AttentionProblem, budget: Int) throws(AttentionError) {
    let bytes = quadraticBytes(p)
    if bytes > budget { throw .outOfMemory(device: "cpu", requestedBytes: bytes) }
  }

  // MARK: Operands as float32 strided matrices

  /// A `(batch, seqlen, heads, headDim)` operand as float32: in place when it already is,
  /// else converted once into a contiguous copy (owned by the returned holder).
  final class FloatOperand: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let strides: TensorStrides
    private let owned: Int

    init(_ view: TensorView<Scalar>) {
      if Scalar.self == Float.self {
        base = UnsafeMutableRawPointer(mutating: view.base).assumingMemoryBound(to: Float.self)
        strides = view.strides
        owned = 0
      } else {
        let s = view.shape
        owned = s.elementCount
        base = HostMemory.allocate(Float.self, count: owned)
        strides = .contiguous(s)
        for b in 0..<s.batch {
          for i in 0..<s.seqlen {
            for h in 0..<s.heads {
              let src = view.row(b, i, h), dst = base + b * strides.batch + i * strides.seqlen + h * strides.head
              for x in 0..<s.headDim { dst[x] = src[x].floatValue }
            }
          }
        }
      }
    }
    /// Uninitialised contiguous float32 storage for an output of `shape`.
    init(uninitialised shape: TensorShape) {
      owned = shape.elementCount
      base = HostMemory.allocate(Float.self, count: owned)
      strides = .contiguous(shape)
    }
    deinit { if owned > 0 { HostMemory.deallocate(base, count: owned) } }

    /// The (seqlen × headDim) matrix of head `h` of batch entry `b`.
    func matrix(_ b: Int, _ h: Int) -> StridedMatrix {
      StridedMatrix(base: base + b * strides.batch + h * strides.head, rowStride: strides.seqlen, columnStride: 1)
    }
    func copy(to out: MutableTensorView<Scalar>) {
      let s = out.shape
      for b in 0..<s.batch {
        for i in 0..<s.seqlen {
          for h in 0..<s.heads {
            let src = base + b * strides.batch + i * strides.seqlen + h * strides.head, dst = out.row(b, i, h)
            for x in 0..<s.headDim { dst[x] = Scalar(src[x]) }
          }
        }
      }
    }
  }

  /// A `(batch·queryHeads) × seqlenQ × seqlenK` float32 matrix set.
  final class ScoreMatrices: @unchecked Sendable {
    let base: UnsafeMutablePointer<Float>
    let count: Int
    let rows: Int, columns: Int
    init(entries: Int, rows: Int, columns: Int) {
      self.rows = rows
      self.columns = columns
      count = entries * rows * columns
      base = HostMemory.allocate(Float.self, count: count)
    }
    deinit { HostMemory.deallocate(base, count: count) }
    func matrix(_ entry: Int) -> StridedMatrix {
      StridedMatrix(base: base + entry * rows * columns, rowStride: columns, columnStride: 1)
    }
    func row(_ entry: Int, _ i: Int) -> UnsafeMutablePointer<Float> { base + (entry * rows + i) * columns }
  }

  // MARK: Forward

  func forward(
    q qView: TensorView<Scalar>, k kView: TensorView<Scalar>, v vView: TensorView<Scalar>,
    output: MutableTensorView<Scalar>, lse: UnsafeMutablePointer<Float>
  ) {
    let p = problem
    let q = FloatOperand(qView), k = FloatOperand(kView), v = FloatOperand(vView)
    let entries = p.batch * p.queryHeads
    let hq = p.queryHeads
    let scores = ScoreMatrices(entries: entries, rows: p.seqlenQ, columns: p.seqlenK)
    // S = Q Kᵀ
    BatchedGEMM(
      entries: entries, terms: 1, m: p.seqlenQ, n: p.seqlenK, k: p.headDim,
      a: { e, _ in q.matrix(e / hq, e % hq) },
      b: { e, _ in k.matrix(e / hq, p.keyValueHead(forQueryHead: e % hq)).transposed },
      c: { e in scores.matrix(e) }
    ).run(threads: threads)
    // P = softmax(scale·S) with the mask; LSE.
    let probs = ScoreMatrices(entries: entries, rows: p.seqlenQ, columns: p.seqlenK)
    Parallel.forEachItem(items: entries * p.seqlenQ, lanes: threads, setUp: { _ in () }) { _, item in
      let e = item / p.seqlenQ, i = item % p.seqlenQ
      let s = scores.row(e, i), prob = probs.row(e, i)
      let visible = p.visibleKeys(forQueryRow: i)
      guard visible > 0 else {
        prob.update(repeating: 0, count: p.seqlenK)
        lse[item] = -.infinity
        return
      }
      prob.update(from: s, count: visible)
      fa_scale(prob, visible, p.scale)
      let rowMax = fa_max(prob, visible)
      let sum = fa_exp_sum(prob, visible, rowMax)
      fa_scale(prob, visible, 1 / sum)
      if visible < p.seqlenK { (prob + visible).update(repeating: 0, count: p.seqlenK - visible) }
      lse[item] = rowMax + Foundation.log(sum)
    }
    // O = P V
    let o = FloatOperand(uninitialised: p.queryShape)
    BatchedGEMM(
      entries: entries, terms: 1, m: p.seqlenQ, n: p.headDim, k: p.seqlenK,
      a: { e, _ in probs.matrix(e) },
      b: { e, _ in v.matrix(e / hq, p.keyValueHead(forQueryHead: e % hq)) },
      c: { e in o.matrix(e / hq, e % hq) }
    ).run(threads: threads)
    withExtendedLifetime(scores) {}
    o.copy(to: output)
  }

  // MARK: Backward

  func backward(
    q qView: TensorView<Scalar>, k kView: TensorView<Scalar>, v vView: TensorView<Scalar>,
    output oView: TensorView<Scalar>, dOutput doView: TensorView<Scalar>, lse: UnsafePointer<Float>,
    dq dqView: MutableTensorView<Scalar>, dk dkView: MutableTensorView<Scalar>, dv dvView: MutableTensorView<Scalar>
  ) {
    let p = problem
    let q = FloatOperand(qView), k = FloatOperand(kView), v = FloatOperand(vView)
    let o = FloatOperand(oView), dO = FloatOperand(doView)
    let entries = p.batch * p.queryHeads
    let hq = p.queryHeads, group = p.groupSize, hkv = p.keyValueHeads
    let probs = ScoreMatrices(entries: entries, rows: p.seqlenQ, columns: p.seqlenK)
    let dScores = ScoreMatrices(entries: entries, rows: p.seqlenQ, columns: p.seqlenK)
    // S = Q Kᵀ (into P's buffer), dP = dO Vᵀ (into dS's buffer).
    BatchedGEMM(
      entries: entries, terms: 1, m: p.seqlenQ, n: p.seqlenK, k: p.headDim,
      a: { e, _ in q.matrix(e / hq, e % hq) },
      b: { e, _ in k.matrix(e / hq, p.keyValueHead(forQueryHead: e % hq)).transposed },
      c: { e in probs.matrix(e) }
    ).run(threads: threads)
    BatchedGEMM(
      entries: entries, terms: 1, m: p.seqlenQ, n: p.seqlenK, k: p.headDim,
      a: { e, _ in dO.matrix(e / hq, e % hq) },
      b: { e, _ in v.matrix(e / hq, p.keyValueHead(forQueryHead: e % hq)).transposed },
      c: { e in dScores.matrix(e) }
    ).run(threads: threads)
    // P = exp(scale·S − LSE) masked; dS = scale · P ∘ (dP − D), D = rowsum(dO ∘ O).
    Parallel.forEachItem(items: entries * p.seqlenQ, lanes: threads, setUp: { _ in () }) { _, item in
      let e = item / p.seqlenQ, i = item % p.seqlenQ
      let b = e / hq, h = e % hq
      let prob = probs.row(e, i), ds = dScores.row(e, i)
      let rowLSE = lse[item]
      let visible = rowLSE > -.infinity ? p.visibleKeys(forQueryRow: i) : 0
      if visible > 0 {
        fa_scale(prob, visible, p.scale)
        _ = fa_exp_sum(prob, visible, rowLSE)
      }
      if visible < p.seqlenK { (prob + visible).update(repeating: 0, count: p.seqlenK - visible) }
      let orow = o.matrix(b, h).element(i, 0), grow = dO.matrix(b, h).element(i, 0)
      var rowDot: Float = 0
      for x in 0..<p.headDim { rowDot += orow[x] * grow[x] }
      for j in 0..<p.seqlenK { ds[j] = p.scale * prob[j] * (ds[j] - rowDot) }
    }
    let dq = FloatOperand(uninitialised: p.queryShape)
    let dk = FloatOperand(uninitialised: p.keyValueShape), dv = FloatOperand(uninitialised: p.keyValueShape)
    // dV = Σ_group Pᵀ dO; dK = Σ_group dSᵀ Q; dQ = dS K.
    BatchedGEMM(
      entries: p.batch * hkv, terms: group, m: p.seqlenK, n: p.headDim, k: p.seqlenQ,
      a: { e, t in probs.matrix((e / hkv) * hq + (e % hkv) * group + t).transposed },
      b: { e, t in dO.matrix(e / hkv, (e % hkv) * group + t) },
      c: { e in dv.matrix(e / hkv, e % hkv) }
    ).run(threads: threads)
    BatchedGEMM(
      entries: p.batch * hkv, terms: group, m: p.seqlenK, n: p.headDim, k: p.seqlenQ,
      a: { e, t in dScores.matrix((e / hkv) * hq + (e % hkv) * group + t).transposed },
      b: { e, t in q.matrix(e / hkv, (e % hkv) * group + t) },
      c: { e in dk.matrix(e / hkv, e % hkv) }
    ).run(threads: threads)
    BatchedGEMM(
      entries: entries, terms: 1, m: p.seqlenQ, n: p.headDim, k: p.seqlenK,
      a: { e, _ in dScores.matrix(e) },
      b: { e, _ in k.matrix(e / hq, p.keyValueHead(forQueryHead: e % hq)) },
      c: { e in dq.matrix(e / hq, e % hq) }
    ).run(threads: threads)
    dq.copy(to: dqView)
    dk.copy(to: dkView)
    dv.copy(to: dvView)
  }
}
