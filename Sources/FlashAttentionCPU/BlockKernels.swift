import CFlashAttentionKernels
import FlashAttention

/// The float32 block operations every CPU algorithm is built from, run by the SIMD kernels of
/// `CFlashAttentionKernels` (AVX-512, AVX2 or portable, chosen at run time).
///
/// All of attention's matrix products are one kernel shape, `C[m×n] (+)= A[m×k]·B[k×n]`, once
/// the operand read along contiguous rows is made `B`: A is read through arbitrary strides (so
/// it may be a transposed tile), B and C are row-major. The flash kernels therefore work on
/// transposed score tiles Sᵀ = K·Qᵀ (keys × query rows): K is read in place, only the small Q
/// block is transposed, and P·V reads Pᵀ through swapped strides.
enum BlockKernels {
  /// `C[i, j] (+)= Σ_p A[i, p]·B[p, j]`, `A[i, p] = a[i·aRowStride + p·aColStride]`,
  /// `B[p, j] = b[p·ldb + j]`, `C[i, j] = c[i·ldc + j]`.
  @inline(__always)
  static func gemm(
    m: Int, n: Int, k: Int,
    a: UnsafePointer<Float>, aRowStride: Int, aColStride: Int,
    b: UnsafePointer<Float>, ldb: Int,
    c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
  ) {
    fa_gemm(
      Int32(m), Int32(n), Int32(k), a, aRowStride, aColStride, b, ldb, c, ldc, accumulate ? 1 : 0)
  }
}

extension TensorView {
  /// Rows `(b, s0 ..< s0 + count, h)` as float32 rows: in place (row stride `strides.seqlen`)
  /// for float32 storage; converted into `scratch` (row stride `ld`) for float16.
  @inline(__always)
  func floatRows(
    _ b: Int, _ s0: Int, count: Int, _ h: Int, scratch: UnsafeMutablePointer<Float>, ld: Int
  ) -> (rows: UnsafePointer<Float>, stride: Int) {
    let first = UnsafeRawPointer(row(b, s0, h))
    if Scalar.self == Float.self { return (first.assumingMemoryBound(to: Float.self), strides.seqlen) }
    for r in 0..<count {
      fa_f16_to_f32(
        (first + r * strides.seqlen * MemoryLayout<Scalar>.stride).assumingMemoryBound(to: UInt16.self),
        scratch + r * ld, shape.headDim)
    }
    return (UnsafePointer(scratch), ld)
  }

  /// `dst[x·ld + r] = scale · row(b, s0 + r, h)[x]` for r < count, x < headDim.
  @inline(__always)
  func transposedRows(
    _ b: Int, _ s0: Int, count: Int, _ h: Int, into dst: UnsafeMutablePointer<Float>, ld: Int, scale: Float
  ) {
    let first = UnsafeRawPointer(row(b, s0, h))
    if Scalar.self == Float.self {
      fa_transpose(
        first.assumingMemoryBound(to: Float.self), strides.seqlen, Int32(count), Int32(shape.headDim), dst, ld, scale)
    } else {
      fa_transpose_f16(
        first.assumingMemoryBound(to: UInt16.self), strides.seqlen, Int32(count), Int32(shape.headDim), dst, ld,
        scale)
    }
  }
}

extension MutableTensorView {
  /// Writes `headDim` floats into row `(b, s, h)`, converting to the storage type.
  @inline(__always)
  func store(_ b: Int, _ s: Int, _ h: Int, from src: UnsafePointer<Float>) {
    let dst = UnsafeMutableRawPointer(row(b, s, h))
    if Scalar.self == Float.self {
      dst.assumingMemoryBound(to: Float.self).update(from: src, count: shape.headDim)
    } else {
      fa_f32_to_f16(src, dst.assumingMemoryBound(to: UInt16.self), shape.headDim)
    }
  }

  /// Sets row `(b, s, h)` to zeros.
  @inline(__always)
  func storeZeros(_ b: Int, _ s: Int, _ h: Int) {
    let dst = row(b, s, h)
    for x in 0..<shape.headDim { dst[x] = Scalar(0) }
  }
}
