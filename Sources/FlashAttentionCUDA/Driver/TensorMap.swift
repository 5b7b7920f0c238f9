/// A 128-byte, 64-byte-aligned `CUtensorMap`: the descriptor of a tiled view of a global
/// tensor that Hopper's bulk tensor copy (TMA) reads. Built on the host, passed to a
/// kernel by value (as a `__grid_constant__` parameter or inside its `Params`).
public struct TensorMap: Sendable, Hashable {
  /// The descriptor's 128 bytes, opaque.
  public var bytes: [UInt8]
}

extension CUDADriver {
  /// `CUtensorMapDataType` values we use.
  public enum TensorMapDataType: UInt32, Sendable {
    case uint8 = 0, uint16 = 1, uint32 = 2, int32 = 3, uint64 = 4, int64 = 5
    case float16 = 6, float32 = 7, float64 = 8, bfloat16 = 9
  }
  /// `CUtensorMapSwizzle`.
  public enum TensorMapSwizzle: UInt32, Sendable { case none = 0, bytes32 = 1, bytes64 = 2, bytes128 = 3 }

  /// Whether this driver exports `cuTensorMapEncodeTiled` (CUDA ≥ 12.0).
  public var supportsTensorMaps: Bool { api.cuTensorMapEncodeTiled != nil }

  /// `cuTensorMapEncodeTiled`: a tiled tensor map over `rank` dimensions, innermost first.
  /// - `globalDimensions`: elements per dimension (rank entries).
  /// - `globalStridesBytes`: byte strides of dimensions 1..<rank (rank − 1 entries, multiples of 16).
  /// - `boxDimensions`: the tile copied per request, elements per dimension (each ≤ 256).
  /// - `elementStrides`: usually all 1.
  /// Interleave is none, L2 promotion 128 B, out-of-bounds elements are filled with zeros.
  public func encodeTiledTensorMap(
    dataType: TensorMapDataType, address: UInt64, globalDimensions: [UInt64],
    globalStridesBytes: [UInt64], boxDimensions: [UInt32], elementStrides: [UInt32]? = nil,
    swizzle: TensorMapSwizzle
  ) throws(CUDAError) -> TensorMap {
    guard let encode = api.cuTensorMapEncodeTiled else {
      throw .missingSymbol(library: libraryPath, symbol: "cuTensorMapEncodeTiled")
    }
    let rank = globalDimensions.count
    let strides = elementStrides ?? [UInt32](repeating: 1, count: rank)
    guard (1...5).contains(rank), globalStridesBytes.count == rank - 1, boxDimensions.count == rank,
      strides.count == rank
    else {
      throw .invalidRequest("tensor map: inconsistent ranks (dims \(globalDimensions), strides \(globalStridesBytes), box \(boxDimensions))")
    }
    let storage = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 64)
    defer { storage.deallocate() }
    storage.initializeMemory(as: UInt8.self, repeating: 0, count: 128)
    let code = globalDimensions.withUnsafeBufferPointer { dims in
      globalStridesBytes.withUnsafeBufferPointer { gstrides in
        boxDimensions.withUnsafeBufferPointer { box in
          strides.withUnsafeBufferPointer { estrides in
            encode(
              storage, dataType.rawValue, UInt32(rank), UnsafeMutableRawPointer(bitPattern: UInt(address)),
              dims.baseAddress!, gstrides.baseAddress ?? dims.baseAddress!, box.baseAddress!,
              estrides.baseAddress!, 0, swizzle.rawValue, 2, 0)
          }
        }
      }
    }
    try api.check(code, "cuTensorMapEncodeTiled")
    return TensorMap(bytes: Array(UnsafeRawBufferPointer(start: storage, count: 128)))
  }
}
