import FlashAttention
import Foundation

/// FlashAttention forward on the CPU: for each (batch, head, query block) the key/value blocks
/// stream past a 64-row query tile; an online softmax keeps the running row max `m` and row
/// sum `l`, rescales the output accumulator when the max grows, and the seqlenQ × seqlenK matrix
/// is never formed. Work items run on all lanes, longest (causal) first.
struct FlashForward<Scalar: TensorScalar> {
  let problem: AttentionProblem
  let q: TensorView<Scalar>
  let k: TensorView<Scalar>
  let v: TensorView<Scalar>
  let output: MutableTensorView<Scalar>
  /// `(batch, queryHeads, seqlenQ)`.
  let lse: UnsafeMutablePointer<Float>
  let tile: TileShape

  init(
    problem: AttentionProblem, q: TensorView<Scalar>, k: TensorView<Scalar>, v: TensorView<Scalar>,
    output: MutableTensorView<Scalar>, lse: UnsafeMutablePointer<Float>
  ) {
    self.problem = problem
    self.q = q
    self.k = k
    self.v = v
    self.output = output
    self.lse = lse
    tile = TileShape(headDim: problem.headDim)
  }

  /// Per-lane tiles; allocated once per lane, reused for every work item.
  struct LaneTiles {
    let scratch: Scratch
    let query: UnsafeMutablePointer<Float>      // queryRows × headStride
    let keysT: UnsafeMutablePointer<Float>      // headDim × keys (Kᵀ)
    let values: UnsafeMutablePointer<Float>     // keys × headStride
    let scores: UnsafeMutablePointer<Float>     // queryRows × keys
    let accumulator: UnsafeMutablePointer<Float>  // queryRows × headStride
    let rowMax: UnsafeMutablePointer<Float>
    let rowSum: UnsafeMutablePointer<Float>

    init(_ t: TileShape, headDim d: Int) {
      let sizes = [
        t.queryRows * t.headStride, d * t.keys, t.keys * t.headStride, t.queryRows * t.keys,
        t.queryRows * t.headStride, t.queryRows, t.queryRows,
      ]
      scratch = Scratch(floats: sizes.map(Scratch.rounded).reduce(0, +))
      query = scratch.take(sizes[0])
      keysT = scratch.take(sizes[1])
      values = scratch.take(sizes[2])
      scores = scratch.take(sizes[3])
      accumulator = scratch.take(sizes[4])
      rowMax = scratch.take(sizes[5])
      rowSum = scratch.take(sizes[6])
    }
  }

  func run(threads: Int) {
    let p = problem
    let queryBlocks = (p.seqlenQ + tile.queryRows - 1) / tile.queryRows
    let heads = p.batch * p.queryHeads
    Parallel.forEachItem(
      items: heads * queryBlocks, lanes: threads,
      setUp: { _ in LaneTiles(tile, headDim: p.headDim) }
    ) { tiles, item in
      // Last query blocks first: under a causal mask they see the most keys, so the long items
      // start early and the short ones fill in at the end.
      let block = queryBlocks - 1 - item / heads
      let bh = item % heads
      process(batch: bh / p.queryHeads, head: bh % p.queryHeads, block: block, tiles: tiles)
    }
  }

  func process(batch b: Int, head h: Int, block: Int, tiles t: LaneTiles) {
    let p = problem
    let d = p.headDim, ld = tile.headStride, bcMax = tile.keys
    let i0 = block * tile.queryRows
    let rows = min(tile.queryRows, p.seqlenQ - i0)
    let kvh = p.keyValueHead(forQueryHead: h)
    let scale = p.scale

    for r in 0..<rows {
      let src = q.row(b, i0 + r, h)
      let dst = t.query + r * ld
      for x in 0..<d { dst[x] = src[x].floatValue }
    }
    t.accumulator.update(repeating: 0, count: rows * ld)
    t.rowMax.update(repeating: -.infinity, count: rows)
    t.rowSum.update(repeating: 0, count: rows)

    // The mask is a prefix of keys per row and grows with the row, so the block's last row
    // bounds the keys any row of it sees: key blocks past it are skipped entirely.
    let keyEnd = p.visibleKeys(forQueryRow: i0 + rows - 1)
    var j0 = 0
    while j0 < keyEnd {
      let cols = min(bcMax, keyEnd - j0)
      for c in 0..<cols {
        let ks = k.row(b, j0 + c, kvh), vs = v.row(b, j0 + c, kvh)
        let vd = t.values + c * ld
        for x in 0..<d {
          t.keysT[x * bcMax + c] = ks[x].floatValue
          vd[x] = vs[x].floatValue
        }
      }
      BlockKernels.gemm(
        m: rows, n: cols, k: d, a: t.query, aRowStride: ld, aColStride: 1,
        b: t.keysT, ldb: bcMax, c: t.scores, ldc: bcMax, accumulate: false)

      for r in 0..<rows {
        let s = t.scores + r * bcMax
        let visible = min(cols, max(0, p.visibleKeys(forQueryRow: i0 + r) - j0))
        guard visible > 0 else {
          s.update(repeating: 0, count: cols)  // this row sees no key of this block
          continue
        }
        let newMax = max(t.rowMax[r], BlockKernels.maximum(s, count: visible, scale: scale))
        let correction = Foundation.exp(t.rowMax[r] - newMax)  // 0 on the row's first visible block
        let blockSum = BlockKernels.expShifted(s, count: visible, scale: scale, shift: newMax)
        if visible < cols { (s + visible).update(repeating: 0, count: cols - visible) }
        t.rowSum[r] = t.rowSum[r] * correction + blockSum
        t.rowMax[r] = newMax
        if correction != 1 {
          let o = t.accumulator + r * ld
          for x in 0..<d { o[x] *= correction }
        }
      }
      BlockKernels.gemm(
        m: rows, n: d, k: cols, a: t.scores, aRowStride: bcMax, aColStride: 1,
        b: t.values, ldb: ld, c: t.accumulator, ldc: ld, accumulate: true)
      j0 += bcMax
    }

    let lseRow = lse + (b * p.queryHeads + h) * p.seqlenQ + i0
    for r in 0..<rows {
      let dst = output.row(b, i0 + r, h)
      let l = t.rowSum[r]
      if l > 0 {
        let inverse = 1 / l
        let o = t.accumulator + r * ld
        for x in 0..<d { dst[x] = Scalar(o[x] * inverse) }
        lseRow[r] = t.rowMax[r] + Foundation.log(l)
      } else {
        // A row that sees no key: output 0, LSE −∞ (flash-attn's convention).
        for x in 0..<d { dst[x] = Scalar(0) }
        lseRow[r] = -.infinity
      }
    }
  }
}
