import FlashAttention

/// The variants `scripts/hopper/sweep.py` times on the device to fill `HopperBlockTable`:
/// the tuned ones plus neighbours in blockN, stages and ping-pong.
public enum HopperSweep {
  public static func variants() -> [HopperForwardConfig] {
    var out: [HopperForwardConfig] = []
    func add(
      _ d: Int, _ bn: Int, _ st: Int, _ causal: Bool, _ pp: Bool = true, _ dtype: DType = .bfloat16,
      consumers: Int = 2, trim: Bool = true, cross: Bool = false
    ) {
      let c = HopperForwardConfig(
        dtype: dtype, headDim: d, blockN: bn, stages: st, causal: causal, pingPong: pp,
        consumerWarpgroups: consumers, trimTail: trim, crossTile: cross)
      if c.isValid && !out.contains(c) { out.append(c) }
    }
    for causal in [false, true] {
      for dtype in [DType.bfloat16, .float16] {
        for d in [64, 128, 256] {
          for e in HopperBlockTable.entries(headDim: d, causal: causal) {
            add(
              d, e.blockN, e.stages, causal, e.pingPong, dtype, consumers: e.consumerWarpgroups, trim: e.trimTail,
              cross: e.crossTile)
          }
        }
      }
      // run 3's table (no cross-tile overlap) next to the cross-tile variants
      add(64, 128, 4, causal, consumers: 3)
      add(64, 128, 4, causal)
      add(64, 128, 4, causal, consumers: 3, cross: true)
      add(64, 128, 4, causal, cross: true)
      add(128, 128, 2, causal)
      add(128, 128, 2, causal, cross: true)
      add(128, 144, 2, causal, cross: true)
      add(128, 176, 2, causal)
      add(256, 80, 2, causal)
    }
    return out
  }
}
