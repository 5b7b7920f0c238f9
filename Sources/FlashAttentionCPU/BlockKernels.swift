import Foundation

/// The float32 block products every CPU algorithm is built from.
///
/// All of attention's matrix products — S = QKᵀ, O += PV, dV += PᵀdO, dP = dOVᵀ, dK += dSᵀQ,
/// dQ += dSK — are one shape of kernel once the operand whose rows are read contiguously is
/// chosen as `b`: `C[m×n] (+)= A[m×k] · B[k×n]` with B and C row-major and A read through
/// arbitrary strides (so `A` may be a transposed view, as in PᵀdO). Keys are packed transposed
/// (Kᵀ, Vᵀ) so QKᵀ and dOVᵀ take this form too.
enum BlockKernels {
  /// `C[i, j] (+)= Σ_p A[i, p] · B[p, j]` for i < m, j < n, p < k, where
  /// `A[i, p] = a[i·aRowStride + p·aColStride]`, `B[p, j] = b[p·ldb + j]`,
  /// `C[i, j] = c[i·ldc + j]`. Overwrites C when `accumulate` is false.
  @inline(__always)
  static func gemm(
    m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
  ) {
    if !accumulate {
      for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
    }
    guard k > 0 else { return }
    // Four rows of C at a time: each row of B is loaded once for four rows (the inner loop
    // over j vectorises; the four accumulating rows stay in cache).
    var i = 0
    while i + 4 <= m {
      let c0 = c + i * ldc, c1 = c0 + ldc, c2 = c1 + ldc, c3 = c2 + ldc
      let a0 = a + i * aRowStride, a1 = a0 + aRowStride, a2 = a1 + aRowStride, a3 = a2 + aRowStride
      for p in 0..<k {
        let bp = b + p * ldb
        let x0 = a0[p * aColStride], x1 = a1[p * aColStride]
        let x2 = a2[p * aColStride], x3 = a3[p * aColStride]
        for j in 0..<n {
          let bj = bp[j]
          c0[j] += x0 * bj
          c1[j] += x1 * bj
          c2[j] += x2 * bj
          c3[j] += x3 * bj
        }
      }
      i += 4
    }
    while i < m {
      let ci = c + i * ldc
      let ai = a + i * aRowStride
      for p in 0..<k {
        let bp = b + p * ldb
        let x = ai[p * aColStride]
        for j in 0..<n { ci[j] += x * bp[j] }
      }
      i += 1
    }
  }

  /// `x[i] = exp(x[i] · scale − shift)` for i < n; returns the sum of the results.
  @inline(__always)
  static func expShifted(_ x: UnsafeMutablePointer<Float>, count n: Int, scale: Float, shift: Float) -> Float {
    var sum: Float = 0
    for j in 0..<n {
      let e = Foundation.exp(x[j] * scale - shift)
      x[j] = e
      sum += e
    }
    return sum
  }

  /// max of `x[i] · scale` for i < n (n ≥ 1); the scale may be negative.
  @inline(__always)
  static func maximum(_ x: UnsafePointer<Float>, count n: Int, scale: Float) -> Float {
    var m = -Float.infinity
    for j in 0..<n { m = Swift.max(m, x[j] * scale) }
    return m
  }
}
