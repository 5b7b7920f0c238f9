import FlashAttention

/// The variants `scripts/hopper/sweep.py` times on the device to fill `HopperBlockTable`:
/// the tuned ones plus neighbours in blockN, stages and ping-pong.
public enum HopperSweep {
  public static func variants() -> [HopperForwardConfig] {
    var out: [HopperForwardConfig] = []
    func add(_ d: Int, _ bn: Int, _ st: Int, _ causal: Bool, _ pp: Bool, _ dtype: DType = .bfloat16, consumers: Int = 2) {
      let c = HopperForwardConfig(
        dtype: dtype, headDim: d, blockN: bn, stages: st, causal: causal, pingPong: pp, consumerWarpgroups: consumers)
      if c.isValid && !out.contains(c) { out.append(c) }
    }
    for causal in [false, true] {
      for dtype in [DType.bfloat16, .float16] {
        for d in [64, 128, 256] {
          let c = HopperForwardConfig.tuned(dtype: dtype, headDim: d, causal: causal)!
          add(d, c.blockN, c.stages, causal, c.pingPong, dtype, consumers: c.consumerWarpgroups)
        }
      }
      add(128, 128, 2, causal, true)
      add(128, 176, 2, causal, true)
      add(128, 192, 2, causal, true)
      add(128, 176, 2, causal, false)
      add(64, 192, 3, causal, true)
      add(64, 128, 4, causal, true)
      add(64, 128, 4, causal, true, consumers: 3)
      add(64, 128, 4, causal, false, consumers: 3)
      add(64, 192, 3, causal, true, consumers: 3)
      add(256, 80, 2, causal, true)
      add(256, 80, 2, causal, false)
    }
    return out
  }
}
