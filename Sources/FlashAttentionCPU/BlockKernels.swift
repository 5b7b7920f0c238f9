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
  /// Rows `(b, s0 ..< s0 + count, h)` copied (float16: converted) into `scratch` as float32
  /// rows of stride `ld`.
  ///
  /// Always a copy, even for float32: in `(batch, seqlen, heads, headDim)` memory the rows of
  /// one head lie `heads × headDim` floats apart — 4 KiB at 8 × 128 — so a block read in place
  /// maps every row to the same L1 sets and the kernel stalls on conflict misses (measured:
  /// and the copy
  /// itself waits on the same misses unless the next block is prefetched, see `prefetchRows`).
  /// Packed, a block is one contiguous run.
  @inline(__always)
  func packedRows(
    _ b: Int, _ s0: Int, count: Int, _ h: Int, into scratch: UnsafeMutablePointer<Float>, ld: Int
  ) -> UnsafeMutablePointer<Float> {
    let first = UnsafeRawPointer(row(b, s0, h))
    let rowBytes = strides.seqlen * MemoryLayout<Scalar>.stride
    for r in 0..<count {
      let src = first + r * rowBytes
      if Scalar.self == Float.self {
        (scratch + r * ld).update(from: src.assumingMemoryBound(to: Float.self), count: shape.headDim)
      } else {
        fa_f16_to_f32(src.assumingMemoryBound(to: UInt16.self), scratch + r * ld, shape.headDim)
      }
    }
    return scratch
  }

  /// Asks the caches for rows `(b, s0 ..< s0 + count, h)` ahead of their use (no-op past the end).
  @inline(__always)
  func prefetchRows(_ b: Int, _ s0: Int, count: Int, _ h: Int) {
    let n = min(count, shape.seqlen - s0)
    guard n > 0 else { return }
    fa_prefetch_rows(
      UnsafeRawPointer(row(b, s0, h)), strides.seqlen * MemoryLayout<Scalar>.stride, Int32(n),
      shape.headDim * MemoryLayout<Scalar>.stride)
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
