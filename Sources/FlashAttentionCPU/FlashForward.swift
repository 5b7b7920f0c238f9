import CFlashAttentionKernels
import FlashAttention
import Foundation

/// FlashAttention forward on the CPU: for each (batch, head, query block) the key/value blocks
/// stream past a 64-row query tile; an online softmax keeps the running row max `m` and row
/// sum `l`, rescales the output accumulator when the max grows, and the seqlenQ × seqlenK matrix
/// is never formed. Work items run on all lanes, longest (causal) first.
///
/// Per key block: Sᵀ = K·(scale·Q)ᵀ (K and V blocks packed contiguous), the causal mask
/// as −∞, the online-softmax step vectorised across query rows, then O += P·V.
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
    output: MutableTensorView<Scalar>, lse: UnsafeMutablePointer<Float>, threads: Int
  ) {
    self.problem = problem
    self.q = q
    self.k = k
    self.v = v
    self.output = output
    self.lse = lse
    tile = TileShape(headDim: problem.headDim, queryRows: Self.queryRows(problem, threads: threads))
  }

  /// Query rows per block: 256 when that still gives every lane about four work items, else
  /// 128 or 64. Each K/V block read (from L3 or memory: rows of a head are pages apart) serves
  /// all the rows of the query block, so 256 rows read a quarter of the K/V traffic of 64; the
  /// tiles (Qᵀ, O, Sᵀ: 3 × 256 × 128 floats at headDim 128) stay within a 1 MiB L2. Measured on
  /// one core (headDim 128, seqlen 2048, GFLOP per CPU-second): 64 rows ~117, 128 rows ~137,
  /// 256 rows ~166.
  static func queryRows(_ p: AttentionProblem, threads: Int) -> Int {
    for rows in [256, 128] {
      let items = p.batch * p.queryHeads * ((p.seqlenQ + rows - 1) / rows)
      if items >= 4 * threads { return rows }
    }
    return 64
  }

  /// Per-lane tiles; allocated once per lane, reused for every work item.
  struct LaneTiles {
    let scratch: Scratch
    let queryT: UnsafeMutablePointer<Float>       // headDim × queryRows: scale·Qᵀ
    let keys: UnsafeMutablePointer<Float>         // keys × headStride
    let values: UnsafeMutablePointer<Float>       // keys × headStride
    let scoresT: UnsafeMutablePointer<Float>      // keys × queryRows: Sᵀ, then Pᵀ
    let accumulator: UnsafeMutablePointer<Float>  // queryRows × headStride
    let rowMax: UnsafeMutablePointer<Float>
    let rowSum: UnsafeMutablePointer<Float>
    let correction: UnsafeMutablePointer<Float>

    init(_ t: TileShape, headDim d: Int) {
      let sizes = [
        d * t.queryRows, t.keys * t.headStride, t.keys * t.headStride, t.keys * t.queryRows,
        t.queryRows * t.headStride, t.queryRows, t.queryRows, t.queryRows,
      ]
      scratch = Scratch(floats: sizes.map(Scratch.rounded).reduce(0, +))
      queryT = scratch.take(sizes[0])
      keys = scratch.take(sizes[1])
      values = scratch.take(sizes[2])
      scoresT = scratch.take(sizes[3])
      accumulator = scratch.take(sizes[4])
      rowMax = scratch.take(sizes[5])
      rowSum = scratch.take(sizes[6])
      correction = scratch.take(sizes[7])
      // Padding columns of Qᵀ stay zero, so padded lanes of the column kernels see finite scores.
      queryT.update(repeating: 0, count: sizes[0])
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
    let d = p.headDim, ld = tile.headStride, bcMax = tile.keys, ldS = tile.queryRows
    let i0 = block * tile.queryRows
    let rows = min(tile.queryRows, p.seqlenQ - i0)
    let columns = TileShape.padded(rows)
    let kvh = p.keyValueHead(forQueryHead: h)

    q.transposedRows(b, i0, count: rows, h, into: t.queryT, ld: ldS, scale: p.scale)
    if rows < columns {
      for x in 0..<d { (t.queryT + x * ldS + rows).update(repeating: 0, count: columns - rows) }
    }
    t.accumulator.update(repeating: 0, count: rows * ld)
    t.rowMax.update(repeating: -.infinity, count: columns)
    t.rowSum.update(repeating: 0, count: columns)

    // The mask is a prefix of keys per row and grows with the row, so the block's last row
    // bounds the keys any row of it sees: key blocks past it are skipped entirely.
    let keyEnd = p.visibleKeys(forQueryRow: i0 + rows - 1)
    // Key j is seen by query rows i ≥ j − offset (causal, bottom-right aligned).
    let offset = p.seqlenK - p.seqlenQ
    var j0 = 0
    while j0 < keyEnd {
      let cols = min(bcMax, keyEnd - j0)
      let kRows = k.packedRows(b, j0, count: cols, kvh, into: t.keys, ld: ld)
      if j0 + bcMax < keyEnd {
        k.prefetchRows(b, j0 + bcMax, count: min(bcMax, keyEnd - j0 - bcMax), kvh)
        v.prefetchRows(b, j0 + bcMax, count: min(bcMax, keyEnd - j0 - bcMax), kvh)
      }
      BlockKernels.gemm(
        m: cols, n: columns, k: d, a: kRows, aRowStride: ld, aColStride: 1,
        b: t.queryT, ldb: ldS, c: t.scoresT, ldc: ldS, accumulate: false)
      if p.mask == .causal && j0 + cols - 1 - offset > i0 {
        for c in 0..<cols {
          let hidden = min(columns, j0 + c - offset - i0)  // query rows of the block that miss key j0 + c
          if hidden > 0 { (t.scoresT + c * ldS).update(repeating: -.infinity, count: hidden) }
        }
      }
      fa_online_softmax_columns(t.scoresT, Int32(cols), Int32(columns), ldS, t.rowMax, t.rowSum, t.correction)
      // O = correction ∘ O + P V: the rescaling is fused into the kernel's load of O.
      let vRows = v.packedRows(b, j0, count: cols, kvh, into: t.values, ld: ld)
      fa_gemm_rescaled(
        Int32(rows), Int32(d), Int32(cols), t.scoresT, 1, ldS, vRows, ld, t.accumulator, ld, t.correction)
      j0 += bcMax
    }

    let lseRow = lse + (b * p.queryHeads + h) * p.seqlenQ + i0
    for r in 0..<rows {
      let l = t.rowSum[r]
      if l > 0 {
        let o = t.accumulator + r * ld
        fa_scale(o, d, 1 / l)
        output.store(b, i0 + r, h, from: o)
        lseRow[r] = t.rowMax[r] + Foundation.log(l)
      } else {
        // A row that sees no key: output 0, LSE −∞ (flash-attn's convention).
        output.storeZeros(b, i0 + r, h)
        lseRow[r] = -.infinity
      }
    }
  }
}
