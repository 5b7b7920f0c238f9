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
  public var queryBuffers: Int { crossTile ? 2 : 1 }

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
    trimTail: Bool = false, crossTile: Bool = false
  ) {
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
      trimTail: entry.trimTail, crossTile: entry.crossTile)
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
  /// (blockN/4 packed pairs) and ~28 for addresses, row statistics and loop state. Above the
  /// `setmaxnreg` budget ptxas spills and serialises the wgmma (seen: d64 bm192 bn192).
  public var estimatedConsumerRegisters: Int { headDim / 2 + blockN / 2 + blockN / 4 + 28 }

  /// Checks the invariants the generated source relies on.
  public var isValid: Bool {
    Self.supportedHeadDims.contains(headDim) && (dtype == .float16 || dtype == .bfloat16)
      && blockN % 16 == 0 && (16...256).contains(blockN) && (1...8).contains(stages)
      && (consumerWarpgroups == 2 || (consumerWarpgroups == 3 && headDim == 64))
      && estimatedConsumerRegisters <= consumerRegisters && registerPoolFits
      && sharedMemoryBytes <= Self.sharedMemoryLimit
  }

  /// Unique, readable kernel name, e.g. `flash_fwd_hopper_bf16_d128_bm128_bn176_s2_pp_sm90a`.
  public var name: String {
    "flash_fwd_hopper_\(dtype.shortName)_d\(headDim)_bm\(blockM)_bn\(blockN)_s\(stages)"
      + (pingPong ? "_pp" : "") + (trimTail ? "_tt" : "") + (crossTile ? "_xt" : "") + (causal ? "_causal" : "")
      + "_sm90a"
  }
  public var description: String { name }
}

/// Block sizes of the Hopper forward keyed by head dimension, mask and (for the causal grid)
/// a sequence-length bucket. The values are the winners of `scripts/hopper/sweep.py` on an
/// H200 (runs 3 and 5 in `docs/hopper-notes.md`); shared memory bounds them:
/// Q tile + 2 · stages · blockN · headDim · 2 bytes ≤ 227 KiB.
///
/// Why a seqlen bucket for causal: a persistent grid (one CTA per SM walking tiles
/// round-robin) hides the per-tile prologue and epilogue, which dominate short sequences
/// (1.2–1.3× faster at seqlen ≤ 1–2k), but its static schedule lets CTAs drift apart over the
/// very unequal causal tiles, so at 8k–16k it loses L2 reuse of K/V and runs 0.7× the
/// one-CTA-per-tile grid, whose hardware scheduler keeps neighbouring tiles together.
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
  }

  /// `seqlenK` only matters under causal (which grid, and blockM for headDim 64).
  public static func entry(headDim: Int, causal: Bool, seqlenK: Int = 4096) -> Entry {
    switch (headDim, causal) {
    case (64, false):
      // Cross-tile overlap: 7% at seqlen 512, 1.5% at 1k; from 2k on it costs 1–4% (run 5).
      return Entry(
        blockN: 128, stages: 4, pingPong: true, persistent: true, consumerWarpgroups: 3, trimTail: true,
        crossTile: seqlenK <= 1024)
    case (64, true):
      if seqlenK <= 1024 { return Entry(blockN: 128, stages: 4, pingPong: true, persistent: true, trimTail: true) }
      return Entry(
        blockN: 128, stages: 4, pingPong: true, persistent: seqlenK <= 4096, consumerWarpgroups: 3, trimTail: true)
    case (128, false):
      // blockN 128 at ≤ 2k: 3% faster than 176 at 512 and 2k (run 5); 176 from 4k on.
      if seqlenK <= 2048 { return Entry(blockN: 128, stages: 2, pingPong: true, persistent: true, trimTail: true) }
      return Entry(blockN: 176, stages: 2, pingPong: true, persistent: true, trimTail: true)
    case (128, true):
      // Cross-tile overlap at ≤ 2k: 3.5% / 2.5% / 1% faster at 512 / 1k / 2k (run 5).
      if seqlenK <= 2048 {
        return Entry(blockN: 128, stages: 2, pingPong: true, persistent: true, trimTail: true, crossTile: true)
      }
      return Entry(blockN: 176, stages: 2, pingPong: true, persistent: false, trimTail: true)
    case (256, false):
      return Entry(blockN: 80, stages: 2, pingPong: true, persistent: true, trimTail: true)
    default:
      return Entry(blockN: 80, stages: 2, pingPong: true, persistent: seqlenK <= 1024, trimTail: true)
    }
  }

  /// Every distinct entry of a head dimension and mask (for the catalog).
  public static func entries(headDim: Int, causal: Bool) -> [Entry] {
    var out: [Entry] = []
    for n in [512, 1024, 2048, 4096, 8192] {
      let e = entry(headDim: headDim, causal: causal, seqlenK: n)
      if !out.contains(where: { $0.blockN == e.blockN && $0.stages == e.stages && $0.pingPong == e.pingPong
        && $0.consumerWarpgroups == e.consumerWarpgroups && $0.trimTail == e.trimTail && $0.crossTile == e.crossTile
      }) { out.append(e) }
    }
    return out
  }
}
