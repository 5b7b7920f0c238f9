import FlashAttention

/// The variants `scripts/hopper/sweep.py` times on the device to fill `HopperBlockTable`:
/// the tuned ones plus neighbours in blockN, stages and ping-pong.
public enum HopperSweep {
  public static func variants() -> [HopperForwardConfig] {
    var out: [HopperForwardConfig] = []
    func add(
      _ d: Int, _ bn: Int, _ st: Int, _ causal: Bool, _ pp: Bool = true, _ dtype: DType = .bfloat16,
      consumers: Int = 2, trim: Bool = true, cross: Bool = false, rescale: Bool = false,
      dyn: Bool = false, q2: Bool = false, so: Bool = false, op: Bool = false, pe: Int = 0, hd: Bool = false
    ) {
      let c = HopperForwardConfig(
        dtype: dtype, headDim: d, blockN: bn, stages: st, causal: causal, pingPong: pp,
        consumerWarpgroups: consumers, trimTail: trim, crossTile: cross, rescaleBeforePV: rescale,
        dynamicScheduler: dyn, doubleQ: q2, tmaStoreO: so, overlapPV: op, polyExp: pe, halfDiagonal: hd)
      if c.isValid && !out.contains(c) { out.append(c) }
    }
    for causal in [false, true] {
      for dtype in [DType.bfloat16, .float16] {
        for d in [64, 128, 256] {
          for e in HopperBlockTable.entries(headDim: d, causal: causal) {
            add(
              d, e.blockN, e.stages, causal, e.pingPong, dtype, consumers: e.consumerWarpgroups, trim: e.trimTail,
              cross: e.crossTile, rescale: e.rescaleBeforePV, dyn: e.dynamicScheduler, q2: e.doubleQ, so: e.tmaStoreO,
              op: e.overlapPV, pe: e.polyExp, hd: e.halfDiagonal)
          }
        }
      }
      // The neighbours the table was chosen against (runs 7–10, docs/hopper-notes.md).
      add(128, 176, 2, causal)
      add(128, 160, 2, causal)
      add(128, 128, 2, causal, q2: true)
      add(128, 128, 2, causal, q2: true, so: true)
      add(128, 160, 2, causal, dyn: true)
      add(128, 128, 2, causal, dyn: true)
      add(128, 128, 2, causal, cross: true)
      add(128, 160, 2, causal, cross: true)
      add(128, 160, 2, causal, cross: true, so: true)
      add(128, 160, 2, causal, q2: true, so: true)
      add(128, 160, 2, causal, dyn: true, q2: true, so: true)
      add(128, 128, 2, causal, cross: true, so: true)
      add(128, 160, 2, causal, cross: true, dyn: true, so: true)
      add(128, 160, 2, causal, cross: true, dyn: true)
      add(128, 128, 2, causal, cross: true, dyn: true, so: true)
      add(64, 128, 4, causal, cross: true, dyn: true)
      add(64, 128, 4, causal, cross: true, dyn: true, so: true)
      add(256, 48, 2, causal, rescale: true, dyn: true, q2: true, so: true)
      add(128, 128, 2, causal, rescale: true, op: true)
      add(128, 128, 3, causal, rescale: true, op: true)
      add(128, 128, 2, causal, rescale: true, q2: true, so: true, op: true)
      add(128, 128, 2, causal, rescale: true, dyn: true, q2: true, so: true, op: true)
      add(128, 144, 2, causal, rescale: true, op: true)
      add(128, 128, 2, causal, rescale: true, dyn: true, op: true)
      add(64, 128, 4, causal, rescale: true, op: true)
      add(64, 128, 4, causal, consumers: 3)
      add(64, 128, 4, causal, cross: true, so: true)
      add(64, 128, 4, causal, consumers: 3, cross: true, so: true)
      add(64, 128, 4, causal, consumers: 3, cross: true)
      add(256, 80, 2, causal, rescale: true)
      add(256, 64, 2, causal, rescale: true)
      add(256, 64, 2, causal, rescale: true, dyn: true)
      add(256, 48, 2, causal, rescale: true, q2: true, so: true)
      add(64, 64, 4, causal, cross: true, so: true)
      // headDim 64 at short lengths: without ping-pong, two or six stages, the rescale before
      // P·V (runs 39 and 41: slower, or within 0.5%).
      add(64, 128, 4, causal, false, cross: true, so: true)
      add(64, 128, 2, causal, cross: true, so: true)
      add(64, 128, 6, causal, cross: true, so: true)
      add(64, 128, 4, causal, cross: true, rescale: true, so: true)
      add(256, 80, 2, causal, rescale: true, dyn: true)
      // Part of the exponentials by a polynomial on the FMA pipe (step 26).
      for pe in [2, 4, 6, 8] {
        add(64, 128, 4, causal, cross: true, so: true, pe: pe)
        add(64, 128, 4, causal, consumers: 3, cross: true, pe: pe)
        add(64, 128, 4, causal, consumers: 3, pe: pe)
      }
      for pe in [2, 4] {
        add(128, 128, 2, causal, rescale: true, q2: true, so: true, op: true, pe: pe)
        add(128, 160, 2, causal, q2: true, so: true, pe: pe)
        add(128, 160, 2, causal, dyn: true, q2: true, so: true, pe: pe)
        add(256, 80, 2, causal, rescale: true, pe: pe)
        add(256, 48, 2, causal, rescale: true, q2: true, so: true, pe: pe)
      }
      add(64, 128, 4, causal, true, .float16, cross: true, so: true, pe: 4)
      // Warpgroup 0's half of the diagonal block (step 27).
      if causal {
        for dtype in [DType.bfloat16, .float16] {
          add(64, 128, 4, causal, true, dtype, cross: true, so: true, hd: true)
          add(64, 128, 4, causal, true, dtype, cross: true, hd: true)
          add(64, 128, 4, causal, true, dtype, consumers: 3, hd: true)
          add(64, 128, 4, causal, true, dtype, consumers: 3, cross: true, hd: true)
          add(64, 128, 4, causal, true, dtype, consumers: 3, cross: true, so: true, hd: true)
          add(64, 128, 4, causal, true, dtype, consumers: 3, q2: true, so: true, hd: true)
          add(64, 128, 4, causal, true, dtype, consumers: 3, q2: true, hd: true)
          add(64, 128, 4, causal, true, dtype, q2: true, so: true, hd: true)
          add(64, 128, 4, causal, true, dtype, hd: true)
          add(128, 128, 2, causal, true, dtype, rescale: true, q2: true, so: true, op: true, hd: true)
          add(128, 128, 2, causal, true, dtype, rescale: true, dyn: true, q2: true, so: true, op: true, hd: true)
          add(128, 160, 2, causal, true, dtype, dyn: true, q2: true, so: true, hd: true)
          add(256, 48, 2, causal, true, dtype, rescale: true, q2: true, so: true, hd: true)
          add(256, 80, 2, causal, true, dtype, rescale: true, dyn: true, hd: true)
        }
      }
      add(128, 160, 2, causal, true, .float16, q2: true, so: true, pe: 4)
    }
    return out
  }
}
