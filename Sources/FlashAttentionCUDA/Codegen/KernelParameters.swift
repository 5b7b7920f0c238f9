/// The C type of one field of a generated kernel's `struct Params`.
public enum KernelParameterType: Sendable {
  /// A device address, `u64` in C.
  case pointer
  case int32
  case int64
  case float32
  /// A 128-byte `CUtensorMap` (`TmaDesc` in the Hopper prelude), 64-byte aligned.
  case tensorMap

  var cName: String {
    switch self {
    case .pointer: return "u64"
    case .int32: return "int"
    case .int64: return "long long"
    case .float32: return "float"
    case .tensorMap: return "TmaDesc"
    }
  }
  var size: Int {
    switch self {
    case .int32, .float32: return 4
    case .pointer, .int64: return 8
    case .tensorMap: return 128
    }
  }
  var alignment: Int { self == .tensorMap ? 64 : size }
}

/// A field's value at launch.
public enum KernelParameterValue: Sendable {
  case integer(Int)
  case float(Float)
  /// Raw bytes (a tensor map); shorter than the field means zero-filled.
  case bytes([UInt8])
}

/// One field of a kernel's `struct Params`: its name and C type, a comment for the generated
/// source, and how its value comes from the launch's `Arguments`.
public struct KernelParameter<Arguments>: Sendable {
  public var name: String
  public var type: KernelParameterType
  public var comment: String
  public var value: @Sendable (Arguments) -> KernelParameterValue

  public init(
    _ name: String, _ type: KernelParameterType, _ comment: String = "",
    value: @escaping @Sendable (Arguments) -> KernelParameterValue
  ) {
    self.name = name
    self.type = type
    self.comment = comment
    self.value = value
  }

  public static func pointer(_ name: String, _ comment: String = "", _ v: @escaping @Sendable (Arguments) -> UInt64) -> Self {
    .init(name, .pointer, comment) { .integer(Int(bitPattern: UInt(v($0)))) }
  }
  public static func int32(_ name: String, _ comment: String = "", _ v: @escaping @Sendable (Arguments) -> Int) -> Self {
    .init(name, .int32, comment) { .integer(v($0)) }
  }
  public static func int64(_ name: String, _ comment: String = "", _ v: @escaping @Sendable (Arguments) -> Int) -> Self {
    .init(name, .int64, comment) { .integer(v($0)) }
  }
  public static func float32(_ name: String, _ comment: String = "", _ v: @escaping @Sendable (Arguments) -> Float) -> Self {
    .init(name, .float32, comment) { .float(v($0)) }
  }
  public static func tensorMap(_ name: String, _ comment: String = "", _ v: @escaping @Sendable (Arguments) -> [UInt8]) -> Self {
    .init(name, .tensorMap, comment) { .bytes(v($0)) }
  }
}

/// The parameter list of one kernel: the single definition from which both the C `struct
/// Params` of its source and the bytes of its launch are made, so the two cannot disagree.
/// Fields are laid out by C's rules (each at a multiple of its alignment, the total padded to
/// the largest alignment); the generated struct `static_assert`s that size.
public struct KernelParameterList<Arguments>: Sendable {
  public var fields: [KernelParameter<Arguments>]

  public init(_ groups: [[KernelParameter<Arguments>]]) { fields = groups.flatMap { $0 } }

  /// Three `int64` fields `<prefix>_batch`, `<prefix>_row`, `<prefix>_head`: a tensor's element
  /// strides along batch, sequence and heads.
  public static func strides(
    _ prefix: String, _ t: @escaping @Sendable (Arguments) -> DeviceTensorRef
  ) -> [KernelParameter<Arguments>] {
    [
      .int64("\(prefix)_batch") { t($0).strides.batch },
      .int64("\(prefix)_row") { t($0).strides.seqlen },
      .int64("\(prefix)_head") { t($0).strides.head },
    ]
  }

  /// Byte offset of every field and the padded total.
  var layout: (offsets: [Int], size: Int) {
    var offset = 0, maxAlignment = 1
    var offsets: [Int] = []
    for f in fields {
      let a = f.type.alignment
      maxAlignment = max(maxAlignment, a)
      offset = (offset + a - 1) / a * a
      offsets.append(offset)
      offset += f.type.size
    }
    return (offsets, (offset + maxAlignment - 1) / maxAlignment * maxAlignment)
  }

  public var byteCount: Int { layout.size }

  /// `struct Params { … };` with one line per field and a `static_assert` of its size.
  public func cStruct(name: String = "Params") -> String {
    let aligned = fields.contains { $0.type == .tensorMap }
    var out = "struct \(aligned ? "__align__(64) " : "")\(name) {\n"
    for f in fields {
      let decl = "  \(f.type.cName) \(f.name);"
      out += f.comment.isEmpty ? decl + "\n" : decl.padding(toLength: max(decl.count + 1, 32), withPad: " ", startingAt: 0) + "// \(f.comment)\n"
    }
    out += "};\n"
    out += "static_assert(sizeof(\(name)) == \(byteCount), \"\(name) layout\");\n"
    return out
  }

  /// The launch bytes of the struct for `arguments`.
  public func pack(_ arguments: Arguments) -> [UInt8] {
    let (offsets, size) = layout
    var bytes = [UInt8](repeating: 0, count: size)
    for (f, offset) in zip(fields, offsets) {
      let raw: [UInt8]
      switch (f.type, f.value(arguments)) {
      case let (.int32, .integer(v)): raw = withUnsafeBytes(of: Int32(truncatingIfNeeded: v).littleEndian) { Array($0) }
      case let (.int64, .integer(v)), let (.pointer, .integer(v)): raw = withUnsafeBytes(of: Int64(v).littleEndian) { Array($0) }
      case let (.float32, .float(v)): raw = withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) }
      case let (.tensorMap, .bytes(b)): raw = Array(b.prefix(f.type.size))
      default: preconditionFailure("kernel parameter \(f.name): value does not match its type \(f.type)")
      }
      bytes.replaceSubrange(offset..<offset + raw.count, with: raw)
    }
    return bytes
  }
}
