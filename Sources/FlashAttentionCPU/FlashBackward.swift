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
    dq: MutableTensorView<Scalar>, dk: MutableTensorView<Scalar>, dv: MutableTensorView<Scalar>
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
    tile = TileShape(headDim: problem.headDim)
  }

  struct LaneTiles {
    let scratch: Scratch
    let keys: UnsafeMutablePointer<Float>       // keys × headStride
    let keysT: UnsafeMutablePointer<Float>      // headDim × keys
    let valuesT: UnsafeMutablePointer<Float>    // headDim × keys
    let dKeys: UnsafeMutablePointer<Float>      // keys × headStride
    let dValues: UnsafeMutablePointer<Float>    // keys × headStride
    let query: UnsafeMutablePointer<Float>      // queryRows × headStride
    let dOut: UnsafeMutablePointer<Float>       // queryRows × headStride
    let probs: UnsafeMutablePointer<Float>      // queryRows × keys
    let dProbs: UnsafeMutablePointer<Float>     // queryRows × keys
    /// This lane's float32 dQ, `(batch, queryHeads, seqlenQ, headDim)` contiguous.
    let dQuery: UnsafeMutablePointer<Float>

    init(_ t: TileShape, headDim d: Int, dQuery: UnsafeMutablePointer<Float>) {
      let kv = t.keys * t.headStride, qr = t.queryRows * t.headStride
      let sizes = [kv, d * t.keys, d * t.keys, kv, kv, qr, qr, t.queryRows * t.keys, t.queryRows * t.keys]
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
      self.dQuery = dQuery
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
    Parallel.forEachItem(items: heads, lanes: threads, setUp: { _ in () }) { _, bh in
      let b = bh / p.queryHeads, h = bh % p.queryHeads
      for i in 0..<p.seqlenQ {
        let o = output.row(b, i, h), g = dOutput.row(b, i, h)
        var sum: Float = 0
        for x in 0..<d { sum += o[x].floatValue * g[x].floatValue }
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
    Parallel.forEachItem(items: heads, lanes: threads, setUp: { _ in () }) { _, bh in
      let b = bh / p.queryHeads, h = bh % p.queryHeads
      for i in 0..<p.seqlenQ {
        let dst = dq.row(b, i, h)
        let offset = (bh * p.seqlenQ + i) * d
        for x in 0..<d {
          var sum: Float = 0
          for lane in 0..<lanes { sum += partials[lane * dqCount + offset + x] }
          dst[x] = Scalar(sum)
        }
      }
    }
  }

  func process(
    batch b: Int, kvHead kvh: Int, block: Int, rowDot: UnsafePointer<Float>, tiles t: LaneTiles
  ) {
    let p = problem
    let d = p.headDim, ld = tile.headStride, bc = tile.keys, brMax = tile.queryRows
    let j0 = block * bc
    let cols = min(bc, p.seqlenK - j0)
    let scale = p.scale

    for c in 0..<cols {
      let ks = k.row(b, j0 + c, kvh), vs = v.row(b, j0 + c, kvh)
      let kd = t.keys + c * ld
      for x in 0..<d {
        let kx = ks[x].floatValue
        kd[x] = kx
        t.keysT[x * bc + c] = kx
        t.valuesT[x * bc + c] = vs[x].floatValue
      }
    }
    t.dKeys.update(repeating: 0, count: cols * ld)
    t.dValues.update(repeating: 0, count: cols * ld)

    // Query row i sees key j when j < visibleKeys(i); under the causal mask the first row that
    // sees key j0 is j0 − (seqlenK − seqlenQ). Earlier query blocks are skipped.
    let firstRow = p.mask == .causal ? max(0, j0 - (p.seqlenK - p.seqlenQ)) : 0
    let group = p.groupSize
    for h in (kvh * group)..<((kvh + 1) * group) {
      let bh = b * p.queryHeads + h
      var i0 = firstRow / brMax * brMax
      while i0 < p.seqlenQ {
        let rows = min(brMax, p.seqlenQ - i0)
        for r in 0..<rows {
          let qs = q.row(b, i0 + r, h), gs = dOutput.row(b, i0 + r, h)
          let qd = t.query + r * ld, gd = t.dOut + r * ld
          for x in 0..<d {
            qd[x] = qs[x].floatValue
            gd[x] = gs[x].floatValue
          }
        }
        // S = Q Kᵀ, then P = exp(scale·S − LSE), masked entries 0.
        BlockKernels.gemm(
          m: rows, n: cols, k: d, a: t.query, aRowStride: ld, aColStride: 1,
          b: t.keysT, ldb: bc, c: t.probs, ldc: bc, accumulate: false)
        for r in 0..<rows {
          let row = t.probs + r * bc
          let visible = min(cols, max(0, p.visibleKeys(forQueryRow: i0 + r) - j0))
          let rowLSE = lse[bh * p.seqlenQ + i0 + r]
          // An LSE of −∞ (a row that saw no key) contributes nothing, even if handed in by a
          // caller for a row that does see keys: never exp(+∞).
          let live = rowLSE > -.infinity ? visible : 0
          if live > 0 { _ = BlockKernels.expShifted(row, count: live, scale: scale, shift: rowLSE) }
          if live < cols { (row + live).update(repeating: 0, count: cols - live) }
        }
        // dV += Pᵀ dO.
        BlockKernels.gemm(
          m: cols, n: d, k: rows, a: t.probs, aRowStride: 1, aColStride: bc,
          b: t.dOut, ldb: ld, c: t.dValues, ldc: ld, accumulate: true)
        // dP = dO Vᵀ; dS = scale · P ∘ (dP − D), written over dP.
        BlockKernels.gemm(
          m: rows, n: cols, k: d, a: t.dOut, aRowStride: ld, aColStride: 1,
          b: t.valuesT, ldb: bc, c: t.dProbs, ldc: bc, accumulate: false)
        for r in 0..<rows {
          let pr = t.probs + r * bc, dpr = t.dProbs + r * bc
          let di = rowDot[bh * p.seqlenQ + i0 + r]
          for c in 0..<cols { dpr[c] = scale * pr[c] * (dpr[c] - di) }
        }
        // dK += dSᵀ Q; dQ += dS K (into this lane's dQ).
        BlockKernels.gemm(
          m: cols, n: d, k: rows, a: t.dProbs, aRowStride: 1, aColStride: bc,
          b: t.query, ldb: ld, c: t.dKeys, ldc: ld, accumulate: true)
        BlockKernels.gemm(
          m: rows, n: d, k: cols, a: t.dProbs, aRowStride: bc, aColStride: 1,
          b: t.keys, ldb: ld, c: t.dQuery + (bh * p.seqlenQ + i0) * d, ldc: d, accumulate: true)
        i0 += brMax
      }
    }

    for c in 0..<cols {
      let kd = dk.row(b, j0 + c, kvh), vd = dv.row(b, j0 + c, kvh)
      let ks = t.dKeys + c * ld, vs = t.dValues + c * ld
      for x in 0..<d {
        kd[x] = Scalar(ks[x])
        vd[x] = Scalar(vs[x])
      }
    }
  }
}
