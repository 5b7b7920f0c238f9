import FlashAttention

/// One variant of the Hopper (sm_90a) forward kernel: everything that is baked into its
/// source. Sequence lengths, heads and batch are kernel arguments, never part of this.
///
/// The CTA is three warpgroups (384 threads): warpgroup 0 is the producer (one thread issues
/// the TMA loads, the registers of the others are given back with `setmaxnreg.dec`), and
/// warpgroups 1 and 2 are consumers that own 64 query rows each, so `blockM` is 128.
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

  /// Query rows per CTA: two consumer warpgroups of 64 rows (the wgmma M).
  public static let blockM = 128
  public static let threadsPerBlock = 384
  /// Register budgets after `setmaxnreg` (24·128 + 240·256 ≤ 65 536).
  public static let producerRegisters = 24
  public static let consumerRegisters = 240
  /// Head dimensions this family implements; others take the FlashAttention-2 path.
  public static let supportedHeadDims: Set<Int> = [64, 128, 256]

  public init(dtype: DType, headDim: Int, blockN: Int, stages: Int, causal: Bool, pingPong: Bool) {
    self.dtype = dtype
    self.headDim = headDim
    self.blockN = blockN
    self.stages = stages
    self.causal = causal
    self.pingPong = pingPong
  }

  /// The tuned variant for a head dimension and mask (see `docs/hopper-notes.md` and
  /// `scripts/hopper/sweep.py`, which produced these numbers).
  public static func tuned(dtype: DType, headDim: Int, causal: Bool) -> HopperForwardConfig? {
    guard supportedHeadDims.contains(headDim), dtype == .float16 || dtype == .bfloat16 else { return nil }
    let entry = HopperBlockTable.entry(headDim: headDim, causal: causal)
    return HopperForwardConfig(
      dtype: dtype, headDim: headDim, blockN: entry.blockN, stages: entry.stages,
      causal: causal, pingPong: entry.pingPong)
  }

  /// Bytes of one 128-byte-swizzled panel row (64 half-precision elements).
  static let panelRowBytes = 128
  public var panels: Int { headDim / 64 }
  public var queryTileBytes: Int { Self.blockM * headDim * 2 }
  public var keyValueStageBytes: Int { blockN * headDim * 2 }
  /// Barriers: Q full, then K full/empty and V full/empty per stage (8 bytes each).
  var barrierBytes: Int { 8 * (1 + 4 * stages) }
  /// Dynamic shared memory, including 1 KiB of slack to align the tiles to 1024 bytes
  /// (the 128-byte swizzle pattern repeats every 1024 bytes and wgmma assumes that phase).
  public var sharedMemoryBytes: Int {
    1024 + queryTileBytes + 2 * stages * keyValueStageBytes + barrierBytes
  }
  /// Hopper's per-block limit for dynamic shared memory (227 KiB).
  public static let sharedMemoryLimit = 232_448

  /// Checks the invariants the generated source relies on.
  public var isValid: Bool {
    Self.supportedHeadDims.contains(headDim) && (dtype == .float16 || dtype == .bfloat16)
      && blockN % 16 == 0 && (16...256).contains(blockN) && (1...8).contains(stages)
      && sharedMemoryBytes <= Self.sharedMemoryLimit
  }

  /// Unique, readable kernel name, e.g. `flash_fwd_hopper_bf16_d128_bm128_bn176_s2_pp_sm90a`.
  public var name: String {
    "flash_fwd_hopper_\(dtype.shortName)_d\(headDim)_bm\(Self.blockM)_bn\(blockN)_s\(stages)"
      + (pingPong ? "_pp" : "") + (causal ? "_causal" : "") + "_sm90a"
  }
  public var description: String { name }
}

/// Block sizes of the Hopper forward keyed by head dimension and mask. The values are the
/// winners of `scripts/hopper/sweep.py` on the device machine (see `docs/hopper-notes.md`);
/// shared memory bounds them: Q tile + 2 · stages · blockN · headDim · 2 bytes ≤ 227 KiB.
public enum HopperBlockTable {
  public struct Entry: Hashable, Sendable {
    public var blockN: Int
    public var stages: Int
    public var pingPong: Bool
  }

  public static func entry(headDim: Int, causal: Bool) -> Entry {
    switch (headDim, causal) {
    case (64, false): Entry(blockN: 192, stages: 3, pingPong: true)
    case (64, true): Entry(blockN: 128, stages: 3, pingPong: true)
    case (128, false): Entry(blockN: 176, stages: 2, pingPong: true)
    case (128, true): Entry(blockN: 128, stages: 2, pingPong: true)
    case (256, _): Entry(blockN: 80, stages: 2, pingPong: true)
    default: Entry(blockN: 128, stages: 2, pingPong: true)
    }
  }
}
