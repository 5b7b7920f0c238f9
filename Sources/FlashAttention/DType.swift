/// Element types of stored tensors.
public enum DType: String, Hashable, Sendable, CaseIterable, Codable, CustomStringConvertible {
  case float32, float16, bfloat16

  /// Bytes per element.
  public var byteCount: Int { self == .float32 ? 4 : 2 }
  /// Short name used on the command line and in reports: `fp32`, `fp16`, `bf16`.
  public var shortName: String {
    switch self {
    case .float32: "fp32"
    case .float16: "fp16"
    case .bfloat16: "bf16"
    }
  }
  /// Accepts `fp32|float32|f32`, `fp16|float16|f16|half`, `bf16|bfloat16`.
  public init?(name: String) {
    switch name.lowercased() {
    case "fp32", "float32", "f32", "float": self = .float32
    case "fp16", "float16", "f16", "half": self = .float16
    case "bf16", "bfloat16": self = .bfloat16
    default: return nil
    }
  }
  public var description: String { shortName }
}

/// A storage element that converts to and from `Float`, the compute type.
public protocol TensorScalar: Sendable, Equatable {
  static var dtype: DType { get }
  init(_ value: Float)
  var floatValue: Float { get }
}

extension Float: TensorScalar {
  public static var dtype: DType { .float32 }
  @inlinable public var floatValue: Float { self }
}

extension Float16: TensorScalar {
  public static var dtype: DType { .float16 }
  @inlinable public var floatValue: Float { Float(self) }
}

/// bfloat16: the top 16 bits of an IEEE float32 (8-bit exponent, 7-bit mantissa).
/// Conversion from Float rounds to nearest even; NaN stays NaN.
@frozen public struct BFloat16: TensorScalar, Hashable, CustomStringConvertible {
  public var bitPattern: UInt16
  @inlinable public init(bitPattern: UInt16) { self.bitPattern = bitPattern }
  @inlinable public init(_ value: Float) {
    let bits = value.bitPattern
    if value.isNaN {
      bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x40
    } else {
      let roundingBias: UInt32 = 0x7FFF + ((bits >> 16) & 1)
      bitPattern = UInt16(truncatingIfNeeded: (bits &+ roundingBias) >> 16)
    }
  }
  public static var dtype: DType { .bfloat16 }
  @inlinable public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }
  public var description: String { floatValue.description }
}
