import CFlashAttentionKernels
import FlashAttention

/// A float32 matrix in memory with arbitrary row and column strides (a transposed view is
/// a swap of the strides).
struct StridedMatrix: @unchecked Sendable {
  var base: UnsafeMutablePointer<Float>
  var rowStride: Int
  var columnStride: Int
  @inline(__always) func element(_ i: Int, _ j: Int) -> UnsafeMutablePointer<Float> {
    base + i * rowStride + j * columnStride
  }
  var transposed: StridedMatrix { StridedMatrix(base: base, rowStride: columnStride, columnStride: rowStride) }
}

/// Batched matrix products for standard attention:
/// `C_e[m×n] = Σ_t A_{e,t}[m×k] · B_{e,t}[k×n]` for each batch entry `e`, where the terms `t`
/// let dK and dV sum over the query heads of a GQA group inside one product.
///
/// Blocked like a BLAS: C is split into 64 × 256 tiles (one work item each, all lanes), and the
/// SIMD kernel blocks each tile further into register tiles and 256-deep panels of k. A is read
/// in place through its strides (the kernel packs its register panels); B in place when its
/// rows are contiguous, else (Kᵀ, Vᵀ) transposed into a lane panel first. C must have
/// contiguous rows.
struct BatchedGEMM {
  static let tileRows = 64
  static let tileColumns = 256
  static let panelDepth = 256

  let entries: Int
  let terms: Int
  let m: Int, n: Int, k: Int
  let a: (_ entry: Int, _ term: Int) -> StridedMatrix
  let b: (_ entry: Int, _ term: Int) -> StridedMatrix
  let c: (_ entry: Int) -> StridedMatrix

  func run(threads: Int) {
    let rowTiles = (m + Self.tileRows - 1) / Self.tileRows
    let columnTiles = (n + Self.tileColumns - 1) / Self.tileColumns
    let perEntry = rowTiles * columnTiles
    Parallel.forEachItem(
      items: entries * perEntry, lanes: threads,
      setUp: { _ in
        let s = Scratch(floats: Self.panelDepth * Self.tileColumns)
        return (s, s.take(Self.panelDepth * Self.tileColumns))
      }
    ) { lane, item in
      let panel = lane.1
      let entry = item / perEntry
      let i0 = (item % perEntry) / columnTiles * Self.tileRows
      let j0 = (item % columnTiles) * Self.tileColumns
      let rows = min(Self.tileRows, m - i0), cols = min(Self.tileColumns, n - j0)
      let cm = c(entry)
      precondition(cm.columnStride == 1, "BatchedGEMM: C needs contiguous rows")
      let cTile = cm.element(i0, j0)
      if k == 0 {
        for i in 0..<rows { (cTile + i * cm.rowStride).update(repeating: 0, count: cols) }
        return
      }
      for term in 0..<terms {
        let am = a(entry, term), bm = b(entry, term)
        if bm.columnStride == 1 {
          BlockKernels.gemm(
            m: rows, n: cols, k: k, a: am.element(i0, 0), aRowStride: am.rowStride,
            aColStride: am.columnStride, b: bm.element(0, j0), ldb: bm.rowStride,
            c: cTile, ldc: cm.rowStride, accumulate: term > 0)
          continue
        }
        var p0 = 0
        while p0 < k {
          let depth = min(Self.panelDepth, k - p0)
          if bm.rowStride == 1 {
            // B is a transposed row-major matrix: its columns are contiguous rows in memory.
            fa_transpose(bm.element(p0, j0), bm.columnStride, Int32(cols), Int32(depth), panel, Self.tileColumns, 1)
          } else {
            for p in 0..<depth {
              for j in 0..<cols { panel[p * Self.tileColumns + j] = bm.element(p0 + p, j0 + j).pointee }
            }
          }
          BlockKernels.gemm(
            m: rows, n: cols, k: depth, a: am.element(i0, p0), aRowStride: am.rowStride,
            aColStride: am.columnStride, b: panel, ldb: Self.tileColumns,
            c: cTile, ldc: cm.rowStride, accumulate: term > 0 || p0 > 0)
          p0 += depth
        }
      }
    }
  }
}
