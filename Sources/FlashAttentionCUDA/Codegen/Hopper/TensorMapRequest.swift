import FlashAttention

/// The arguments of one `cuTensorMapEncodeTiled` call, as plain values so the planner can
/// describe tensor maps without touching the driver. The raw values are those of `cuda.h`'s
/// enums, so the runtime passes them straight through.
///
/// The runtime answers a request with the 128 bytes of the encoded `CUtensorMap`; the
/// planner copies them into the kernel's `struct Params` (a `__grid_constant__` argument,
/// which is where TMA instructions read the map from).
public struct TensorMapRequest: Hashable, Sendable {
  /// `CUtensorMapDataType`: 6 = FLOAT16, 9 = BFLOAT16.
  public var dataType: UInt32
  /// Device address of the tensor's first element; 16-byte aligned.
  public var globalAddress: UInt64
  /// Extent of each dimension, innermost first (`rank` entries).
  public var globalDims: [UInt64]
  /// Byte stride of dimensions 1..<rank (`rank − 1` entries, multiples of 16).
  public var globalStrides: [UInt64]
  /// Box copied by one TMA instruction, innermost first; inner box × element ≤ 128 bytes
  /// with the 128-byte swizzle.
  public var boxDims: [UInt32]
  public var elementStrides: [UInt32]
  /// `CUtensorMapInterleave`: 0 = NONE.
  public var interleave: UInt32
  /// `CUtensorMapSwizzle`: 3 = 128B.
  public var swizzle: UInt32
  /// `CUtensorMapL2promotion`: 2 = 128B.
  public var l2Promotion: UInt32
  /// `CUtensorMapFloatOOBfill`: 0 = NONE (out-of-bounds elements read as zero).
  public var oobFill: UInt32

  public var rank: Int { globalDims.count }

  public static let float16DataType: UInt32 = 6
  public static let bfloat16DataType: UInt32 = 9
  public static let swizzle128B: UInt32 = 3
  public static let l2Promotion128B: UInt32 = 2
  /// Size of an encoded `CUtensorMap`.
  public static let encodedByteCount = 128

  public init(
    dataType: UInt32, globalAddress: UInt64, globalDims: [UInt64], globalStrides: [UInt64],
    boxDims: [UInt32], elementStrides: [UInt32]? = nil, interleave: UInt32 = 0,
    swizzle: UInt32 = TensorMapRequest.swizzle128B, l2Promotion: UInt32 = TensorMapRequest.l2Promotion128B,
    oobFill: UInt32 = 0
  ) {
    self.dataType = dataType
    self.globalAddress = globalAddress
    self.globalDims = globalDims
    self.globalStrides = globalStrides
    self.boxDims = boxDims
    self.elementStrides = elementStrides ?? Array(repeating: 1, count: globalDims.count)
    self.interleave = interleave
    self.swizzle = swizzle
    self.l2Promotion = l2Promotion
    self.oobFill = oobFill
  }
}

/// Encodes a tensor map on the current device (the runtime wraps `cuTensorMapEncodeTiled`)
/// and returns its `TensorMapRequest.encodedByteCount` bytes.
public typealias TensorMapEncoder = @Sendable (TensorMapRequest) throws(AttentionError) -> [UInt8]
