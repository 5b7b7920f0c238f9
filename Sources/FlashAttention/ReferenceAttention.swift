import Foundation

/// Exact attention in float64: the yardstick every kernel is tested against.
///
/// Straightforward loops, one query row at a time; slow (O(Nq·Nk·D) per head with no
/// blocking) and meant for tests and `verify`, not for use.
public enum ReferenceAttention {
  /// O `(batch, seqlenQ, queryHeads, headDim)` C order, and LSE `(batch, queryHeads, seqlenQ)`.
  public struct Forward: Sendable {
    public var output: [Double]
    public var lse: [Double]
  }
  /// dQ like Q, dK and dV like K/V, all C order.
  public struct Backward: Sendable {
    public var dq: [Double]
    public var dk: [Double]
    public var dv: [Double]
  }

  public static func forward<S: TensorScalar>(
    _ p: AttentionProblem, q: TensorView<S>, k: TensorView<S>, v: TensorView<S>
  ) -> Forward {
    let d = p.headDim
    var out = [Double](repeating: 0, count: p.queryShape.elementCount)
    var lse = [Double](repeating: -.infinity, count: p.lseCount)
    var scores = [Double](repeating: 0, count: p.seqlenK)
    for b in 0..<p.batch {
      for h in 0..<p.queryHeads {
        let kh = p.keyValueHead(forQueryHead: h)
        for i in 0..<p.seqlenQ {
          let n = p.visibleKeys(forQueryRow: i)
          guard n > 0 else { continue }
          let qRow = q.row(b, i, h)
          var m = -Double.infinity
          for j in 0..<n {
            let kRow = k.row(b, j, kh)
            var s = 0.0
            for x in 0..<d { s += Double(qRow[x].floatValue) * Double(kRow[x].floatValue) }
            scores[j] = s * Double(p.scale)
            m = max(m, scores[j])
          }
          var l = 0.0
          for j in 0..<n {
            scores[j] = Foundation.exp(scores[j] - m)
            l += scores[j]
          }
          let o = ((b * p.seqlenQ + i) * p.queryHeads + h) * d
          for j in 0..<n {
            let w = scores[j] / l
            let vRow = v.row(b, j, kh)
            for x in 0..<d { out[o + x] += w * Double(vRow[x].floatValue) }
          }
          lse[(b * p.queryHeads + h) * p.seqlenQ + i] = m + Foundation.log(l)
        }
      }
    }
    return Forward(output: out, lse: lse)
  }

  /// Gradients of `sum(O ∘ dO)` with respect to Q, K, V. dK and dV sum over the query
  /// heads of each group (GQA). Fully masked rows contribute nothing.
  public static func backward<S: TensorScalar>(
    _ p: AttentionProblem, q: TensorView<S>, k: TensorView<S>, v: TensorView<S>,
    dOutput: TensorView<S>
  ) -> Backward {
    let d = p.headDim
    let fwd = forward(p, q: q, k: k, v: v)
    var dq = [Double](repeating: 0, count: p.queryShape.elementCount)
    var dk = [Double](repeating: 0, count: p.keyValueShape.elementCount)
    var dv = [Double](repeating: 0, count: p.keyValueShape.elementCount)
    var probs = [Double](repeating: 0, count: p.seqlenK)
    var dProbs = [Double](repeating: 0, count: p.seqlenK)
    let scale = Double(p.scale)
    for b in 0..<p.batch {
      for h in 0..<p.queryHeads {
        let kh = p.keyValueHead(forQueryHead: h)
        for i in 0..<p.seqlenQ {
          let n = p.visibleKeys(forQueryRow: i)
          guard n > 0 else { continue }
          let qRow = q.row(b, i, h)
          let doRow = dOutput.row(b, i, h)
          let lse = fwd.lse[(b * p.queryHeads + h) * p.seqlenQ + i]
          let o = ((b * p.seqlenQ + i) * p.queryHeads + h) * d
          var rowDot = 0.0  // D_i = dO_i · O_i
          for x in 0..<d { rowDot += Double(doRow[x].floatValue) * fwd.output[o + x] }
          for j in 0..<n {
            let kRow = k.row(b, j, kh)
            let vRow = v.row(b, j, kh)
            var s = 0.0
            var dp = 0.0
            for x in 0..<d {
              s += Double(qRow[x].floatValue) * Double(kRow[x].floatValue)
              dp += Double(doRow[x].floatValue) * Double(vRow[x].floatValue)
            }
            probs[j] = Foundation.exp(s * scale - lse)
            dProbs[j] = dp
          }
          for j in 0..<n {
            let ds = probs[j] * (dProbs[j] - rowDot)
            let kRow = k.row(b, j, kh)
            let kv = ((b * p.seqlenK + j) * p.keyValueHeads + kh) * d
            for x in 0..<d {
              dq[o + x] += scale * ds * Double(kRow[x].floatValue)
              dk[kv + x] += scale * ds * Double(qRow[x].floatValue)
              dv[kv + x] += probs[j] * Double(doRow[x].floatValue)
            }
          }
        }
      }
    }
    return Backward(dq: dq, dk: dk, dv: dv)
  }
}

/// Error measures used by tests, `verify` and `bench`.
public enum ErrorMetrics {
  /// ‖x − ref‖₂ / ‖ref‖₂ (absolute L2 when the reference is all zeros). −∞ entries that match
  /// exactly (masked rows' LSE) count as equal; NaN anywhere gives NaN.
  public static func relativeL2(_ x: [Float], _ ref: [Double]) -> Double {
    precondition(x.count == ref.count, "relativeL2: \(x.count) values vs \(ref.count) reference values")
    var num = 0.0, den = 0.0
    for i in 0..<x.count {
      let a = Double(x[i]), r = ref[i]
      if a.isNaN || r.isNaN { return .nan }
      if a.isInfinite || r.isInfinite {
        if a == r { continue }
        return .infinity
      }
      num += (a - r) * (a - r)
      den += r * r
    }
    return den > 0 ? (num / den).squareRoot() : num.squareRoot()
  }

  /// max |x − ref|, with matching infinities equal and NaN giving NaN.
  public static func maxAbsolute(_ x: [Float], _ ref: [Double]) -> Double {
    precondition(x.count == ref.count, "maxAbsolute: \(x.count) values vs \(ref.count) reference values")
    var worst = 0.0
    for i in 0..<x.count {
      let a = Double(x[i]), r = ref[i]
      if a.isNaN || r.isNaN { return .nan }
      if a == r { continue }
      worst = max(worst, abs(a - r))
    }
    return worst
  }
}
