/// Builds the bytes of a C `struct` field by field with C's layout rules (each field at a
/// multiple of its alignment, the total padded to the largest alignment), so Swift can
/// pass a generated kernel its one by-value `struct Params`.
///
/// Fields must be appended in the order the struct declares them.
public struct KernelParameterBlock: Sendable {
  public private(set) var bytes: [UInt8] = []
  private var maxAlignment = 1

  public init() {}

  /// Appends `value` at the next multiple of `alignment` (its natural alignment by default).
  public mutating func append<T: BitwiseCopyable>(_ value: T, alignment: Int = MemoryLayout<T>.alignment) {
    pad(to: alignment)
    withUnsafeBytes(of: value) { bytes.append(contentsOf: $0.prefix(MemoryLayout<T>.size)) }
  }

  /// Appends raw bytes (e.g. a 128-byte `CUtensorMap`, 64-byte aligned).
  public mutating func append(bytes raw: [UInt8], alignment: Int) {
    pad(to: alignment)
    bytes.append(contentsOf: raw)
  }

  public mutating func appendInt32(_ v: Int) { append(Int32(truncatingIfNeeded: v)) }
  public mutating func appendInt64(_ v: Int) { append(Int64(v)) }
  public mutating func appendFloat(_ v: Float) { append(v) }
  /// A device pointer (`T*` in C).
  public mutating func appendPointer(_ address: UInt64) { append(address) }

  /// The struct's bytes with trailing padding.
  public var finished: [UInt8] {
    var copy = self
    copy.pad(to: maxAlignment)
    return copy.bytes
  }

  private mutating func pad(to alignment: Int) {
    maxAlignment = max(maxAlignment, alignment)
    let remainder = bytes.count % alignment
    if remainder != 0 { bytes.append(contentsOf: [UInt8](repeating: 0, count: alignment - remainder)) }
  }
}
