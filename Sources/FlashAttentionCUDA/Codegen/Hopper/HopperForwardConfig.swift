import FlashAttention

/// One variant of the Hopper (sm_90a) forward kernel: everything that is baked into its
/// source. Sequence lengths, heads and batch are kernel arguments, never part of this.
///
/// The CTA is 1 + `consumerWarpgroups` warpgroups: warpgroup 0 is the producer (one thread
/// issues the TMA loads, the registers of the others are given back with `setmaxnreg.dec`),
/// and each consumer warpgroup owns 64 query rows, so `blockM` is 64 · consumerWarpgroups.
public struct HopperForwardConfig: Hashable, Sendable, CustomStringConvertible {
  /// `.float16` or `.bfloat16`; accumulation is always float32.
  public var dtype: DType
  /// 64, 128 or 256 (multiples of 64: the TMA box and the 128-byte swizzle span 64 elements).
  public var headDim: Int
  /// Keys per pipeline stage; a multiple of 16 in 16...256.
  public var blockN: Int
  /// Depth of the K and V shared-memory rings.
  public var stages: Int
  public var causal: Bool
  /// Named-barrier ping-pong: one consumer warpgroup issues its GEMMs while the other runs
  /// its softmax, so the tensor cores stay busy through the exponentials.
  public var pingPong: Bool
  /// 2 (blockM 128, 240 registers per consumer thread) or 3 (blockM 192, 160 registers: only
  /// headDim 64 fits its accumulators there).
  public var consumerWarpgroups: Int
  /// P·V of the first (partial) key block runs only its ⌈visible/16⌉ k16 slices.
  public var trimTail: Bool

  /// Issue the next tile's first Q·Kᵀ under this tile's last P·V and epilogue (persistent
  /// grids); needs a second Q buffer.
  public var crossTile: Bool
  /// Rescale O by the previous block's softmax factor right before its P·V is issued, while
  /// the Q·Kᵀ just issued runs (FlashAttention-3's order), instead of after the softmax.
  public var rescaleBeforePV: Bool
  /// Tiles are claimed from a global atomic counter (persistent grids; `tileCounter` in the
  /// launch) instead of dealt round-robin. With `crossTile` the consumers read the next tile
  /// before their last turn of this one and wait for its Q and K outside the ping-pong turn.
  /// Only with 2 consumer warpgroups (compute-sanitizer's racecheck reported the tile
  /// hand-over of the 3-warpgroup kernel, run 9; not analysed further).
  public var dynamicScheduler: Bool
  /// P·V really overlaps the softmax: P alternates between two register arrays, so the next
  /// P can be written while the P·V in flight reads the other, and the wait for that P·V moves
  /// to just before the next turn, where O is rescaled. Needs
  /// `rescaleBeforePV` (nothing after the softmax may touch O) and no `crossTile`.
  public var overlapPV: Bool
  /// Two Q buffers without cross-tile overlap: the next tile's Q loads while this tile runs.
  public var doubleQ: Bool
  /// O leaves through shared memory (the tile's Q buffer) and a TMA store instead of 4-byte
  /// global stores. Needs two Q buffers (the Q buffer is held through the epilogue).
  public var tmaStoreO: Bool
  /// Sixteenths of the softmax's exponentials computed by a polynomial on the FMA pipe
  /// (`ex2_poly`) instead of `ex2.approx` on the multi-function unit (0...16). Measured slower
  /// at every headDim (hopper-notes step 26: that unit is not what bounds the softmax); a
  /// sweep knob, no table entry uses it.
  public var polyExp: Int
  /// Under causal, a consumer warpgroup whose rows see only the first half of the tile's first
  /// (diagonal) key block runs the softmax of that half and the P·V of its visible slices
  /// (warpgroup 0 when blockM = blockN; every warpgroup at blockM 192 and blockN 128). Its Q·Kᵀ
  /// stays full width: a width switch on a wgmma made ptxas serialise them all (C7511/C7515).
  public var halfDiagonal: Bool
  public var queryBuffers: Int { crossTile || doubleQ ? 2 : 1 }

  /// The wgmma N widths the Q·Kᵀ product is generated for.
  public var queryKeyWidths: [Int] { [blockN] }

  /// Query rows per CTA: 64 per consumer warpgroup (the wgmma M).
  public var blockM: Int { 64 * consumerWarpgroups }
  public var threadsPerBlock: Int { 128 * (consumerWarpgroups + 1) }
  /// Register budgets after `setmaxnreg`: producer·128 + consumer·128·n ≤ 65 536.
  public var producerRegisters: Int { consumerWarpgroups == 2 ? 24 : 32 }
  /// Registers per thread at launch under `__launch_bounds__(threads, 1)`: 65 536 / threads,
  /// rounded down to a multiple of 8 (168 for 384 threads, 128 for 512). The CTA's pool is
  /// what it was launched with: if the `setmaxnreg` budgets exceed it, `setmaxnreg.inc` waits
  /// for ever (seen on the device with a 32-register producer and 2 consumers at 240).
  public var launchRegisters: Int { (65_536 / threadsPerBlock) / 8 * 8 }
  public var registerPoolFits: Bool {
    producerRegisters * 128 + consumerRegisters * 128 * consumerWarpgroups <= launchRegisters * threadsPerBlock
  }
  public var consumerRegisters: Int { consumerWarpgroups == 2 ? 240 : 160 }
  /// Head dimensions this family implements; others take the FlashAttention-2 path.
  public static let supportedHeadDims: Set<Int> = [64, 128, 256]

  public init(
    dtype: DType, headDim: Int, blockN: Int, stages: Int, causal: Bool, pingPong: Bool, consumerWarpgroups: Int = 2,
    trimTail: Bool = false, crossTile: Bool = false, rescaleBeforePV: Bool = false,
    dynamicScheduler: Bool = false, doubleQ: Bool = false, tmaStoreO: Bool = false, overlapPV: Bool = false,
    polyExp: Int = 0, halfDiagonal: Bool = false
  ) {
    self.polyExp = polyExp
    self.halfDiagonal = halfDiagonal
    self.overlapPV = overlapPV
    self.tmaStoreO = tmaStoreO
    self.dynamicScheduler = dynamicScheduler
    self.doubleQ = doubleQ
    self.rescaleBeforePV = rescaleBeforePV
    self.crossTile = crossTile
    self.consumerWarpgroups = consumerWarpgroups
    self.trimTail = trimTail
    self.dtype = dtype
    self.headDim = headDim
    self.blockN = blockN
    self.stages = stages
    self.causal = causal
    self.pingPong = pingPong
  }

  /// The tuned variant for a head dimension and mask (see `docs/hopper-notes.md` and
  /// `scripts/hopper/sweep.py`, which produced these numbers).
  public static func tuned(dtype: DType, headDim: Int, causal: Bool, seqlenK: Int = 4096) -> HopperForwardConfig? {
    guard supportedHeadDims.contains(headDim), dtype == .float16 || dtype == .bfloat16 else { return nil }
    return config(dtype: dtype, headDim: headDim, causal: causal,
                  entry: HopperBlockTable.entry(headDim: headDim, causal: causal, seqlenK: seqlenK))
  }

  static func config(dtype: DType, headDim: Int, causal: Bool, entry: HopperBlockTable.Entry) -> HopperForwardConfig {
    HopperForwardConfig(
      dtype: dtype, headDim: headDim, blockN: entry.blockN, stages: entry.stages,
      causal: causal, pingPong: entry.pingPong, consumerWarpgroups: entry.consumerWarpgroups,
      trimTail: entry.trimTail, crossTile: entry.crossTile, rescaleBeforePV: entry.rescaleBeforePV,
      dynamicScheduler: entry.dynamicScheduler,
      doubleQ: entry.doubleQ, tmaStoreO: entry.tmaStoreO, overlapPV: entry.overlapPV, polyExp: entry.polyExp,
      halfDiagonal: entry.halfDiagonal)
  }

  /// Bytes of one 128-byte-swizzled panel row (64 half-precision elements).
  static let panelRowBytes = 128
  public var panels: Int { headDim / 64 }
  public var queryTileBytes: Int { blockM * headDim * 2 }
  public var keyValueStageBytes: Int { blockN * headDim * 2 }
  /// Barriers: Q full/empty per Q buffer, then K full/empty and V full/empty per stage.
  var barrierBytes: Int { 8 * (2 * queryBuffers + 4 * stages) }
  /// Dynamic shared memory, including 1 KiB of slack to align the tiles to 1024 bytes
  /// (the 128-byte swizzle pattern repeats every 1024 bytes and wgmma assumes that phase).
  public var sharedMemoryBytes: Int {
    1024 + queryBuffers * queryTileBytes + 2 * stages * keyValueStageBytes + barrierBytes
  }
  /// Hopper's per-block limit for dynamic shared memory (227 KiB).
  public static let sharedMemoryLimit = 232_448

  /// Live registers of a consumer thread: O (headDim/2 floats), S (blockN/2 floats), P
  /// (blockN/4 packed pairs, twice with `overlapPV`) and ~28 for addresses, row statistics and
  /// loop state. Above the `setmaxnreg` budget ptxas spills and serialises the wgmma (seen: d64
  /// bm192 bn192).
  public var estimatedConsumerRegisters: Int { headDim / 2 + blockN / 2 + (overlapPV ? 2 : 1) * blockN / 4 + 28 }

  /// Checks the invariants the generated source relies on.
  public var isValid: Bool {
    Self.supportedHeadDims.contains(headDim) && (dtype == .float16 || dtype == .bfloat16)
      && blockN % 16 == 0 && (16...256).contains(blockN) && (1...8).contains(stages)
      && (consumerWarpgroups == 2 || (consumerWarpgroups == 3 && headDim == 64))
      && !(dynamicScheduler && consumerWarpgroups != 2) && (!tmaStoreO || queryBuffers == 2)
      && (!overlapPV || (rescaleBeforePV && !crossTile)) && estimatedConsumerRegisters <= consumerRegisters && registerPoolFits
      && sharedMemoryBytes <= Self.sharedMemoryLimit && (0...16).contains(polyExp) && (!halfDiagonal || causal)
  }

  /// Unique, readable kernel name, e.g. `flash_fwd_hopper_bf16_d128_bm128_bn176_s2_pp_sm90a`.
  public var name: String {
    "flash_fwd_hopper_\(dtype.shortName)_d\(headDim)_bm\(blockM)_bn\(blockN)_s\(stages)"
      + (pingPong ? "_pp" : "") + (trimTail ? "_tt" : "") + (crossTile ? "_xt" : "")
      + (rescaleBeforePV ? "_ro" : "") + (overlapPV ? "_op" : "")
      + (doubleQ ? "_q2" : "") + (tmaStoreO ? "_so" : "") + (polyExp > 0 ? "_pe\(polyExp)" : "")
      + (halfDiagonal ? "_hd" : "") + (dynamicScheduler ? "_dyn" : "") + (causal ? "_causal" : "")
      + "_sm90a"
  }
  public var description: String { name }
}

/// Block sizes and scheduling of the Hopper forward keyed by head dimension, mask and a
/// sequence-length bucket. The values are the winners of `scripts/hopper/sweep.py` /
/// `scripts/hopper/step_run.sh` on an H200 (runs 7–8 in `docs/hopper-notes.md`, ratios to
/// cuDNN in the same process); shared memory bounds them:
/// Q buffers + 2 · stages · blockN · headDim · 2 bytes ≤ 227 KiB.
///
/// Scheduling: short sequences use a persistent grid whose CTAs walk tiles round-robin (the
/// per-tile prologue and epilogue dominate there, and cross-tile overlap hides part of them);
/// longer ones claim tiles from an atomic counter (`dynamicScheduler`), which keeps CTAs on
/// neighbouring tiles (K/V shared in L2) and balances the unequal causal tiles — a static
/// round-robin schedule lost 0.7× there. Without a tile counter the planner falls back to
/// `staticTwin` (one CTA per tile for long causal).
public enum HopperBlockTable {
  public struct Entry: Hashable, Sendable {
    public var blockN: Int
    public var stages: Int
    public var pingPong: Bool
    /// Launch one CTA per multiprocessor that walks tiles round-robin (the kernel is the same;
    /// only the grid changes) instead of one CTA per tile.
    public var persistent: Bool = false
    public var consumerWarpgroups: Int = 2
    public var trimTail: Bool = false
    public var crossTile: Bool = false
    public var rescaleBeforePV: Bool = false
    public var dynamicScheduler: Bool = false
    public var doubleQ: Bool = false
    public var tmaStoreO: Bool = false
    public var overlapPV: Bool = false
    public var polyExp: Int = 0
    public var halfDiagonal: Bool = false
  }

  /// The entry for a head dimension, mask and key length. Ratios quoted are cuDNN time / ours
  /// (runs 7 and 8, H200, bf16, 16k tokens).
  public static func entry(headDim: Int, causal: Bool, seqlenK: Int = 4096) -> Entry {
    switch (headDim, causal) {
    case (64, false):
      // Cross-tile overlap up to 4k (0.98 at 512 against 0.91 without; it costs 1% from 8k).
      return Entry(
        blockN: 128, stages: 4, pingPong: true, persistent: true, consumerWarpgroups: 3, trimTail: true,
        crossTile: seqlenK <= 4096)
    case (64, true):
      // Every entry runs the half-width diagonal block (`halfDiagonal`, step 27). At ≤ 1k
      // blockM 128 without cross-tile overlap: 0.89–0.93 / 0.96 at 512 / 1k against 0.87 /
      // 0.92–0.93 for the cross-tile TMA-store kernel that led before (run 51, same process).
      // blockM 192 above, persistent to 4k with a second Q buffer (2k 1.04–1.05, 4k 1.08–1.11
      // against 0.97–0.98 / 1.02 without the half diagonal), one CTA per tile beyond (8k 1.12,
      // 16k 1.18–1.19 against 1.07 / 1.12; the dynamic scheduler lost 3–6% here).
      if seqlenK <= 1024 {
        return Entry(
          blockN: 128, stages: 4, pingPong: true, persistent: true, trimTail: true, halfDiagonal: true)
      }
      return Entry(
        blockN: 128, stages: 4, pingPong: true, persistent: seqlenK <= 4096, consumerWarpgroups: 3, trimTail: true,
        doubleQ: seqlenK <= 4096, halfDiagonal: true)
    case (128, false):
      // Two Q buffers, so the next tile's Q loads under this one. Up to 8k the epilogue leaves
      // through shared memory and a TMA store (`tmaStoreO`, run 18: +3.5% at 1k with blockN
      // 128 and cross-tile overlap, +2% at 2k and +1% at 4k with blockN 160; at 8k 1.11–1.13
      // against 1.08–1.11 for blockN 160 with one Q buffer and direct stores, which led there
      // before step 16 moved the store's wait off the critical path, run 56). At 4k this kernel
      // led every other blockN 128–176 variant in run 56 (1.06–1.08; cross-tile 1.05). blockN
      // 176 (no room for a second Q buffer) 1.02 / 1.05 / 1.06–1.11 at 4k / 8k / 16k.
      if seqlenK <= 1024 {
        return Entry(
          blockN: 128, stages: 2, pingPong: true, persistent: true, trimTail: true, crossTile: true, tmaStoreO: true)
      }
      return Entry(
        blockN: 160, stages: 2, pingPong: true, persistent: true, trimTail: true, doubleQ: true,
        tmaStoreO: seqlenK <= 8192)
    case (128, true):
      // blockN 128 with P·V overlapped with the softmax (`overlapPV`), two Q buffers and the
      // TMA-store epilogue: round-robin to 2k (1.06 / 1.09 at 1k / 2k against 1.04 / 1.06–1.08
      // for cross-tile blockN 128 and blockN 160, run 24; 1.07–1.09 at 2k against 1.03–1.06
      // dynamic, runs 36–37), the dynamic scheduler at 4k (1.09–1.10 against 1.08–1.12 for
      // blockN 160 with two Q buffers and the TMA store). From 8k that blockN 160 kernel,
      // dynamic: 1.14–1.16 at 8k against 1.12, 1.18–1.21 at 16k against 1.17–1.19 for blockN
      // 160 with direct stores (runs 36–37, claimed in tile groups).
      // The half-width diagonal block (step 27): +0.6–1.6% at 2k–8k (run 50).
      if seqlenK <= 4096 {
        return Entry(
          blockN: 128, stages: 2, pingPong: true, persistent: true, trimTail: true, rescaleBeforePV: true,
          dynamicScheduler: seqlenK > 2048, doubleQ: true, tmaStoreO: true, overlapPV: true, halfDiagonal: true)
      }
      return Entry(
        blockN: 160, stages: 2, pingPong: true, persistent: true, trimTail: true, dynamicScheduler: true,
        doubleQ: true, tmaStoreO: true, halfDiagonal: true)
    case (256, false):
      // FlashAttention-3's rescale order: the in-place order spills 8 bytes here since the
      // first Q·Kᵀ of a block writes S without reading it (1.04–1.07 at 4k, 1.13–1.18 at 16k
      // against 1.02 / 1.07–1.11). The dynamic scheduler at 1k (+0–3%). At ≤ 512 blockN 48,
      // which leaves room for a second Q tile (64 KiB) so the next tile's Q loads under this
      // one, and the TMA-store epilogue: 0.94 against 0.86 for blockN 80 (run 30).
      if seqlenK <= 512 {
        return Entry(
          blockN: 48, stages: 2, pingPong: true, persistent: true, trimTail: true, rescaleBeforePV: true,
          doubleQ: true, tmaStoreO: true)
      }
      return Entry(
        blockN: 80, stages: 2, pingPong: true, persistent: true, trimTail: true, rescaleBeforePV: true,
        dynamicScheduler: seqlenK <= 1024)
    default:
      // blockN 48 with a second Q tile and the TMA-store epilogue at ≤ 1k (0.97 / 1.01 at 512 /
      // 1k against 0.84 / 0.96 for blockN 80, run 30); then blockN 80, dynamic (tiles claimed
      // in tile groups: 2k 1.03 against 0.95 claimed head by head and 0.90 round-robin, 8k 1.20
      // against 1.10 for one CTA per tile in the plain order, runs 36–37).
      // The half-width diagonal block (step 27): +0.9–1.9% at 512–4k (run 50).
      if seqlenK <= 1024 {
        return Entry(
          blockN: 48, stages: 2, pingPong: true, persistent: true, trimTail: true, rescaleBeforePV: true,
          doubleQ: true, tmaStoreO: true, halfDiagonal: true)
      }
      return Entry(
        blockN: 80, stages: 2, pingPong: true, persistent: true, trimTail: true, rescaleBeforePV: true,
        dynamicScheduler: true, halfDiagonal: true)
    }
  }

  /// The same kernel with 4-byte global stores in the epilogue (for outputs a TMA store cannot
  /// take: base or strides not 16-byte multiples).
  public static func directStoreTwin(of e: Entry) -> Entry {
    var s = e
    s.tmaStoreO = false
    return s
  }

  /// The same kernel with tiles dealt statically: round-robin on a persistent grid, or one
  /// CTA per tile under causal (a static round-robin schedule balances unequal causal tiles
  /// badly, see above).
  public static func staticTwin(of e: Entry, causal: Bool) -> Entry {
    var s = e
    s.dynamicScheduler = false
    s.persistent = !causal
    return s
  }

  /// Every distinct entry of a head dimension and mask (for the catalog).
  public static func entries(headDim: Int, causal: Bool) -> [Entry] {
    var out: [Entry] = []
    for n in [512, 1024, 2048, 4096, 8192, 16384] {
      let e = entry(headDim: headDim, causal: causal, seqlenK: n)
      var candidates = e.dynamicScheduler ? [e, staticTwin(of: e, causal: causal)] : [e]
      if e.tmaStoreO { candidates += candidates.map(directStoreTwin) }
      for candidate in candidates {
        // The grid (persistent or not) is chosen at launch; the kernel is the same.
        var kernel = candidate
        kernel.persistent = false
        if !out.contains(where: { var o = $0; o.persistent = false; return o == kernel }) { out.append(candidate) }
      }
    }
    return out
  }
}
