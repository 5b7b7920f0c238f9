import CFlashAttentionKernels
import FlashAttention

/// FlashAttention backward on the CPU.
///
/// 1. Preprocessing: `D_i = rowsum(dO_i ∘ O_i)` for every query row.
/// 2. Main pass, parallel over (batch, key/value head, key block): the block's K and V stay
///    resident while every query block of every query head of the group streams past; P is
///    recomputed from the LSE (`P = exp(scale·QKᵀ − LSE)`), then
///    `dV += PᵀdO`, `dP = dOVᵀ`, `dS = scale · P ∘ (dP − D)`, `dK += dSᵀQ`, `dQ += dS·K`.
///    dK and dV of a key block belong to exactly one work item, so summing over the group's
///    query heads (GQA) needs no synchronisation.
/// 3. dQ gathers contributions from every key block, i.e. from many work items. Each lane
///    accumulates into its own float32 dQ buffer and the buffers are summed at the end.
///    Why this and not a second pass over query blocks (recomputing S, P and dP for dQ): the
///    second pass costs three more block products on top of the main pass's four (1.4× the
///    FLOPs), while the per-lane buffers cost `lanes × |dQ|` floats of memory and one cheap
///    summation. Work items are assigned to lanes statically (item `t` to lane `t mod lanes`,
///    interleaved so the long and short causal key blocks mix) and every lane runs its items in
///    order, so the summation order — hence every bit of the result — is the same on every run
///    with the same thread count.
struct FlashBackward<Scalar: TensorScalar> {
  let problem: AttentionProblem
  let q: TensorView<Scalar>
  let k: TensorView<Scalar>
  let v: TensorView<Scalar>
  let output: TensorView<Scalar>
  let dOutput: TensorView<Scalar>
  /// `(batch, queryHeads, seqlenQ)`, from the forward.
  let lse: UnsafePointer<Float>
  let dq: MutableTensorView<Scalar>
  let dk: MutableTensorView<Scalar>
  let dv: MutableTensorView<Scalar>
  let tile: TileShape

  init(
    problem: AttentionProblem, q: TensorView<Scalar>, k: TensorView<Scalar>, v: TensorView<Scalar>,
    output: TensorView<Scalar>, dOutput: TensorView<Scalar>, lse: UnsafePointer<Float>,
    dq: MutableTensorView<Scalar>, dk: MutableTensorView<Scalar>, dv: MutableTensorView<Scalar>,
    threads: Int
  ) {
    self.problem = problem
    self.q = q
    self.k = k
    self.v = v
    self.output = output
    self.dOutput = dOutput
    self.lse = lse
    self.dq = dq
    self.dk = dk
    self.dv = dv
    tile = TileShape(headDim: problem.headDim, keys: Self.keys(problem, threads: threads))
  }

  /// Keys per block: 128 when that still gives every lane about four work items, else 64. The
  /// key block stays resident while Q and dO stream past, so larger key blocks halve that
  /// traffic (measured on one core, seqlen 2048, headDim 128: ~3% faster than 64); the lane's
  /// tiles stay within L2 (≈ 450 KiB at headDim 128).
  static func keys(_ p: AttentionProblem, threads: Int) -> Int {
    let items = p.batch * p.keyValueHeads * ((p.seqlenK + 127) / 128)
    return items >= 4 * threads ? 128 : 64
  }

  struct LaneTiles {
    let scratch: Scratch
    let keys: UnsafeMutablePointer<Float>       // keys × headStride
    let keysT: UnsafeMutablePointer<Float>      // headDim × keys: scale·Kᵀ
    let valuesT: UnsafeMutablePointer<Float>    // headDim × keys: Vᵀ
    let dKeys: UnsafeMutablePointer<Float>      // keys × headStride
    let dValues: UnsafeMutablePointer<Float>    // keys × headStride
    let query: UnsafeMutablePointer<Float>      // queryRows × headStride
    let dOut: UnsafeMutablePointer<Float>       // queryRows × headStride
    let probs: UnsafeMutablePointer<Float>      // queryRows × keys: S, then P
    let dProbs: UnsafeMutablePointer<Float>     // queryRows × keys: dP, then dS
    let shift: UnsafeMutablePointer<Float>      // queryRows: LSE (+∞ for rows that see nothing)
    let rowDot: UnsafeMutablePointer<Float>     // queryRows: D
    /// This lane's float32 dQ, `(batch, queryHeads, seqlenQ, headDim)` contiguous.
    let dQuery: UnsafeMutablePointer<Float>

    init(_ t: TileShape, headDim d: Int, dQuery: UnsafeMutablePointer<Float>) {
      let kv = t.keys * t.headStride, qr = t.queryRows * t.headStride, kt = d * t.keys
      let st = t.queryRows * t.keys
      let sizes = [kv, kt, kt, kv, kv, qr, qr, st, st, t.queryRows, t.queryRows]
      scratch = Scratch(floats: sizes.map(Scratch.rounded).reduce(0, +))
      keys = scratch.take(sizes[0])
      keysT = scratch.take(sizes[1])
      valuesT = scratch.take(sizes[2])
      dKeys = scratch.take(sizes[3])
      dValues = scratch.take(sizes[4])
      query = scratch.take(sizes[5])
      dOut = scratch.take(sizes[6])
      probs = scratch.take(sizes[7])
      dProbs = scratch.take(sizes[8])
      shift = scratch.take(sizes[9])
      rowDot = scratch.take(sizes[10])
      self.dQuery = dQuery
      // Padding columns of Kᵀ and Vᵀ stay zero, so padded lanes see finite values.
      keysT.update(repeating: 0, count: kt)
      valuesT.update(repeating: 0, count: kt)
    }
  }

  func run(threads: Int) {
    let p = problem
    let d = p.headDim
    let rowCount = p.batch * p.queryHeads * p.seqlenQ
    let keyBlocks = (p.seqlenK + tile.keys - 1) / tile.keys
    let items = p.batch * p.keyValueHeads * keyBlocks
    let lanes = max(1, min(threads, items))

    // 1. D = rowsum(dO ∘ O), (batch, queryHeads, seqlenQ).
    let rowDot = HostMemory.allocate(Float.self, count: rowCount)
    defer { HostMemory.deallocate(rowDot, count: rowCount) }
    let heads = p.batch * p.queryHeads
    let ld = tile.headStride
    Parallel.forEachItem(
      items: heads, lanes: threads, setUp: { _ in Scratch(floats: 2 * ld) }
    ) { scratch, bh in
      let b = bh / p.queryHeads, h = bh % p.queryHeads
      let buffer = scratch.take(2 * ld)
      defer { scratch.reset() }
      for i in 0..<p.seqlenQ {
        let o = output.packedRows(b, i, count: 1, h, into: buffer, ld: ld)
        let g = dOutput.packedRows(b, i, count: 1, h, into: buffer + ld, ld: ld)
        var sum: Float = 0
        for x in 0..<d { sum += o[x] * g[x] }
        rowDot[bh * p.seqlenQ + i] = sum
      }
    }

    // 2. Main pass; lane-private dQ.
    let dqCount = rowCount * d
    let partials = HostMemory.allocate(Float.self, count: lanes * dqCount)
    defer { HostMemory.deallocate(partials, count: lanes * dqCount) }
    Parallel.forEachLane(lanes) { lane in
      let laneDQ = partials + lane * dqCount
      laneDQ.update(repeating: 0, count: dqCount)
      let tiles = LaneTiles(tile, headDim: d, dQuery: laneDQ)
      var item = lane
      while item < items {
        let bkv = item / keyBlocks
        process(
          batch: bkv / p.keyValueHeads, kvHead: bkv % p.keyValueHeads, block: item % keyBlocks,
          rowDot: rowDot, tiles: tiles)
        item += lanes
      }
    }

    // 3. dQ = Σ over lanes, in lane order.
    Parallel.forEachItem(
      items: heads, lanes: threads, setUp: { _ in Scratch(floats: Scratch.rounded(d)) }
    ) { scratch, bh in
      let b = bh / p.queryHeads, h = bh % p.queryHeads
      let sum = scratch.take(d)
      defer { scratch.reset() }
      for i in 0..<p.seqlenQ {
        let offset = (bh * p.seqlenQ + i) * d
        sum.update(from: partials + offset, count: d)
        for lane in 1..<max(1, lanes) {
          let part = partials + lane * dqCount + offset
          for x in 0..<d { sum[x] += part[x] }
        }
        dq.store(b, i, h, from: sum)
      }
    }
  }

  /// One key block against every query block of the group's heads. The tiles are S = Q·Kᵀ
  /// (query rows × keys, the keys padded to a multiple of 16). This block's K, Kᵀ and Vᵀ are
  /// packed once per work item; Q and dO rows once per query block.
  func process(
    batch b: Int, kvHead kvh: Int, block: Int, rowDot: UnsafePointer<Float>, tiles t: LaneTiles
  ) {
    let p = problem
    let d = p.headDim, ld = tile.headStride, bc = tile.keys, brMax = tile.queryRows, ldS = tile.keys
    let j0 = block * bc
    let cols = min(bc, p.seqlenK - j0)
    let columns = TileShape.padded(cols)
    let offset = p.seqlenK - p.seqlenQ  // key j is seen by query rows i ≥ j − offset (causal)

    let kRows = k.packedRows(b, j0, count: cols, kvh, into: t.keys, ld: ld)
    k.transposedRows(b, j0, count: cols, kvh, into: t.keysT, ld: ldS, scale: p.scale)
    v.transposedRows(b, j0, count: cols, kvh, into: t.valuesT, ld: ldS, scale: 1)
    if cols < columns {
      for x in 0..<d {
        (t.keysT + x * ldS + cols).update(repeating: 0, count: columns - cols)
        (t.valuesT + x * ldS + cols).update(repeating: 0, count: columns - cols)
      }
    }
    t.dKeys.update(repeating: 0, count: cols * ld)
    t.dValues.update(repeating: 0, count: cols * ld)

    // Query blocks wholly before the first row that sees key j0 are skipped.
    let firstRow = p.mask == .causal ? max(0, j0 - offset) : 0
    let group = p.groupSize
    for h in (kvh * group)..<((kvh + 1) * group) {
      let bh = b * p.queryHeads + h
      var i0 = firstRow / brMax * brMax
      while i0 < p.seqlenQ {
        let rows = min(brMax, p.seqlenQ - i0)
        let qRows = q.packedRows(b, i0, count: rows, h, into: t.query, ld: ld)
        let gRows = dOutput.packedRows(b, i0, count: rows, h, into: t.dOut, ld: ld)
        q.prefetchRows(b, i0 + brMax, count: brMax, h)
        dOutput.prefetchRows(b, i0 + brMax, count: brMax, h)
        for r in 0..<rows {
          // An LSE of −∞ (a row that saw no key) contributes nothing, even if handed in by a
          // caller for a row that does see keys: shifting by +∞ gives P = 0, never exp(+∞).
          let value = lse[bh * p.seqlenQ + i0 + r]
          t.shift[r] = value == -.infinity ? .infinity : value
          t.rowDot[r] = rowDot[bh * p.seqlenQ + i0 + r]
        }

        // S = (scale·Q) Kᵀ, masked with −∞; P = exp(S − LSE).
        BlockKernels.gemm(
          m: rows, n: columns, k: d, a: qRows, aRowStride: ld, aColStride: 1,
          b: t.keysT, ldb: ldS, c: t.probs, ldc: ldS, accumulate: false)
        if p.mask == .causal && j0 + cols - 1 - offset > i0 {
          for r in 0..<rows {
            let visible = max(0, p.visibleKeys(forQueryRow: i0 + r) - j0)
            if visible < columns { (t.probs + r * ldS + visible).update(repeating: -.infinity, count: columns - visible) }
          }
        }
        fa_probabilities_rows(t.probs, Int32(rows), Int32(columns), ldS, t.shift)
        // dV += Pᵀ dO (padded keys excluded by m = cols).
        BlockKernels.gemm(
          m: cols, n: d, k: rows, a: t.probs, aRowStride: 1, aColStride: ldS,
          b: gRows, ldb: ld, c: t.dValues, ldc: ld, accumulate: true)
        // dP = dO Vᵀ; dS = scale · P ∘ (dP − D), written over dP.
        BlockKernels.gemm(
          m: rows, n: columns, k: d, a: gRows, aRowStride: ld, aColStride: 1,
          b: t.valuesT, ldb: ldS, c: t.dProbs, ldc: ldS, accumulate: false)
        fa_dscores_rows(t.dProbs, t.probs, Int32(rows), Int32(columns), ldS, t.rowDot, p.scale)
        // dK += dSᵀ Q; dQ += dS K (into this lane's dQ).
        BlockKernels.gemm(
          m: cols, n: d, k: rows, a: t.dProbs, aRowStride: 1, aColStride: ldS,
          b: qRows, ldb: ld, c: t.dKeys, ldc: ld, accumulate: true)
        BlockKernels.gemm(
          m: rows, n: d, k: cols, a: t.dProbs, aRowStride: ldS, aColStride: 1,
          b: kRows, ldb: ld, c: t.dQuery + (bh * p.seqlenQ + i0) * d, ldc: d, accumulate: true)
        i0 += brMax
      }
    }

    for c in 0..<cols {
      dk.store(b, j0 + c, kvh, from: t.dKeys + c * ld)
      dv.store(b, j0 + c, kvh, from: t.dValues + c * ld)
    }
  }
}
