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
/// Blocked like a BLAS: C is split into 64 × 256 tiles (one work item each, all lanes); the
/// product over k runs in 256-deep panels; each panel of B is packed contiguous (row-major) so
/// the block kernel reads its rows linearly, whatever B's strides. A is read in place through
/// its strides. Each C tile is accumulated in a lane tile and stored once.
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
        let s = Scratch(floats: Scratch.rounded(Self.panelDepth * Self.tileColumns) + Self.tileRows * Self.tileColumns)
        return (s, s.take(Self.panelDepth * Self.tileColumns), s.take(Self.tileRows * Self.tileColumns))
      }
    ) { lane, item in
      let (_, panel, accumulator) = lane
      let entry = item / perEntry
      let i0 = (item % perEntry) / columnTiles * Self.tileRows
      let j0 = (item % columnTiles) * Self.tileColumns
      let rows = min(Self.tileRows, m - i0), cols = min(Self.tileColumns, n - j0)
      accumulator.update(repeating: 0, count: rows * Self.tileColumns)
      for term in 0..<terms {
        let am = a(entry, term), bm = b(entry, term)
        var p0 = 0
        while p0 < k {
          let depth = min(Self.panelDepth, k - p0)
          for p in 0..<depth {
            let dst = panel + p * Self.tileColumns
            if bm.columnStride == 1 {
              dst.update(from: bm.element(p0 + p, j0), count: cols)
            } else {
              for j in 0..<cols { dst[j] = bm.element(p0 + p, j0 + j).pointee }
            }
          }
          BlockKernels.gemm(
            m: rows, n: cols, k: depth, a: am.element(i0, p0), aRowStride: am.rowStride,
            aColStride: am.columnStride, b: panel, ldb: Self.tileColumns,
            c: accumulator, ldc: Self.tileColumns, accumulate: true)
          p0 += depth
        }
      }
      let cm = c(entry)
      for i in 0..<rows {
        let src = accumulator + i * Self.tileColumns
        if cm.columnStride == 1 {
          cm.element(i0 + i, j0).update(from: src, count: cols)
        } else {
          for j in 0..<cols { cm.element(i0 + i, j0 + j).pointee = src[j] }
        }
      }
    }
  }
}
