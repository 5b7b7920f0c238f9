/// The header of a `.npy` file (format versions 1.0, 2.0 and 3.0).
///
/// Layout: the magic `\x93NUMPY`, one byte major and one byte minor version, the header
/// length (little-endian `UInt16` in 1.0, `UInt32` in 2.0 and 3.0), then the header: a
/// Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` padded
/// with spaces and ending in a newline so that the data starts on a 64-byte boundary. The
/// data follows, C order unless `fortran_order`. Versions 1.0 and 2.0 encode the header in
/// latin-1, 3.0 in UTF-8.
///
/// We accept the two element types our kernels store: little-endian float32 (`<f4`) and
/// float16 (`<f2`); `=`, `|` or no byte-order character mean the same on the little-endian
/// hosts Swift runs on.
public struct NumPyHeader: Equatable, Sendable {
  /// The major format version, 1, 2 or 3 (the minor is always 0).
  public var majorVersion: Int
  public var dtype: DType
  /// The array shape; `[]` for a 0-dimensional array.
  public var shape: [Int]
  /// Byte offset of the first element.
  public var dataOffset: Int

  public var elementCount: Int { shape.reduce(1, *) }
  public var dataByteCount: Int { elementCount * dtype.byteCount }

  static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
  /// Enough bytes for the magic, the version and the longest (4-byte) header length.
  static let preambleByteCount = 12
  /// Headers of real files are ~128 bytes; a much larger claim is corruption, and refusing
  /// it keeps a damaged length field from making us allocate gigabytes.
  static let maximumHeaderLength = 1 << 20
  /// numpy pads to 64 bytes (its ARRAY_ALIGN) so memory-mapped data is aligned; older files
  /// used 16, which we read just as well.
  static let alignment = 64

  static let accepted = "'<f4' (float32) or '<f2' (float16), little-endian, C order"

  // MARK: Reading

  /// Decodes the magic, version and header length from the first bytes of a file.
  /// Returns the version, where the header text starts and how long it is.
  static func decodePreamble(
    _ bytes: [UInt8], fileSize: Int, path: String
  ) throws(AttentionError) -> (major: Int, headerStart: Int, headerLength: Int) {
    guard bytes.count >= 6, Array(bytes[0..<6]) == magic else {
      if fileSize == 0 { throw .file(path: path, reason: "empty file; expected a .npy array") }
      throw .file(path: path, reason: "not a .npy file (it does not start with the \\x93NUMPY magic)")
    }
    guard bytes.count >= 10 else {
      throw .file(path: path, reason: "truncated .npy header (\(fileSize) bytes)")
    }
    let major = Int(bytes[6]), minor = Int(bytes[7])
    let headerStart: Int
    let headerLength: Int
    switch (major, minor) {
    case (1, 0):
      headerStart = 10
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    case (2, 0), (3, 0):
      guard bytes.count >= 12 else {
        throw .file(path: path, reason: "truncated .npy header (\(fileSize) bytes)")
      }
      headerStart = 12
      headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
    default:
      throw .file(path: path, reason: "unsupported .npy format version \(major).\(minor); accepted: 1.0, 2.0, 3.0")
    }
    guard headerLength <= maximumHeaderLength else {
      throw .file(path: path, reason: "corrupt .npy header: it claims a length of \(headerLength) bytes")
    }
    guard headerStart + headerLength <= fileSize else {
      throw .file(
        path: path,
        reason: "truncated .npy header: it claims \(headerLength) bytes but the file ends after \(fileSize - headerStart)")
    }
    return (major, headerStart, headerLength)
  }

  /// Decodes the header dict: checks its keys, the dtype, the order and the shape.
  static func decodeDictionary(
    _ bytes: [UInt8], major: Int, dataOffset: Int, path: String
  ) throws(AttentionError) -> NumPyHeader {
    let text: String
    if major >= 3 {
      guard let utf8 = String(validating: bytes, as: UTF8.self) else {
        throw .file(path: path, reason: "bad .npy header: version 3.0 header is not valid UTF-8")
      }
      text = utf8
    } else {
      // latin-1: every byte is the Unicode scalar of the same value.
      var latin1 = ""
      latin1.unicodeScalars.append(contentsOf: bytes.map { Unicode.Scalar($0) })
      text = latin1
    }
    let literal: PythonLiteral
    do {
      literal = try PythonLiteral.parse(text)
    } catch {
      throw .file(path: path, reason: "bad .npy header: \(error.reason)")
    }
    guard case let .dictionary(entries) = literal else {
      throw .file(path: path, reason: "bad .npy header: expected a dict with 'descr', 'fortran_order' and 'shape'")
    }
    var values: [String: PythonLiteral] = [:]
    for (key, value) in entries {
      guard case let .string(name) = key, ["descr", "fortran_order", "shape"].contains(name) else {
        throw .file(path: path, reason: "bad .npy header: unexpected key \(key.pythonDescription); expected 'descr', 'fortran_order', 'shape'")
      }
      values[name] = value
    }
    for name in ["descr", "fortran_order", "shape"] where values[name] == nil {
      throw .file(path: path, reason: "bad .npy header: missing key '\(name)'")
    }

    let shape = try decodeShape(values["shape"]!, path: path)
    let dtype = try decodeDescr(values["descr"]!, path: path)
    guard case let .boolean(fortranOrder) = values["fortran_order"]! else {
      throw .file(path: path, reason: "bad .npy header: 'fortran_order' is \(values["fortran_order"]!.pythonDescription), expected True or False")
    }
    // Fortran and C order lay out the same bytes when at most one dimension exceeds 1.
    if fortranOrder && shape.filter({ $0 > 1 }).count > 1 {
      throw .file(
        path: path,
        reason: "Fortran-ordered array (fortran_order: True); accepted: \(accepted) — save np.ascontiguousarray(x)")
    }
    return NumPyHeader(majorVersion: major, dtype: dtype, shape: shape, dataOffset: dataOffset)
  }

  static func decodeShape(_ value: PythonLiteral, path: String) throws(AttentionError) -> [Int] {
    guard case let .tuple(items) = value else {
      throw .file(path: path, reason: "bad .npy header: 'shape' is \(value.pythonDescription), expected a tuple of integers")
    }
    var shape: [Int] = []
    var count = 1
    for item in items {
      guard case let .integer(n) = item, n >= 0 else {
        throw .file(path: path, reason: "bad .npy header: 'shape' \(value.pythonDescription) holds \(item.pythonDescription), expected integers ≥ 0")
      }
      let (product, overflow) = count.multipliedReportingOverflow(by: n)
      // Keep the byte count (≤ 4 bytes per element) representable too.
      guard !overflow, product <= Int.max / 8 else {
        throw .file(path: path, reason: "bad .npy header: shape \(value.pythonDescription) is too large")
      }
      count = product
      shape.append(n)
    }
    return shape
  }

  static func decodeDescr(_ value: PythonLiteral, path: String) throws(AttentionError) -> DType {
    guard case let .string(descr) = value else {
      if case .list = value {
        throw .file(path: path, reason: "unsupported dtype: a structured array (record fields); accepted: \(accepted)")
      }
      throw .file(path: path, reason: "bad .npy header: 'descr' is \(value.pythonDescription), expected a dtype string")
    }
    var code = Substring(descr)
    var byteOrder: Character = "="
    if let first = code.first, "<>=|".contains(first) {
      byteOrder = first
      code = code.dropFirst()
    }
    let name = dtypeName(String(code))
    if code == "f4" || code == "f2" {
      guard byteOrder != ">" else {
        throw .file(path: path, reason: "big-endian dtype '\(descr)' (\(name)); accepted: \(accepted) — save x.astype('<\(code)')")
      }
      return code == "f4" ? .float32 : .float16
    }
    let hint = code.first == "O" ? "" : " — convert with x.astype(np.float32)"
    throw .file(path: path, reason: "unsupported dtype '\(descr)' (\(name)); accepted: \(accepted)\(hint)")
  }

  /// numpy's name for a dtype code, so the error says what was found in words.
  static func dtypeName(_ code: String) -> String {
    guard let kind = code.first else { return "unknown" }
    let bytes = Int(code.dropFirst()) ?? 0
    switch kind {
    case "f": return bytes > 0 ? "float\(bytes * 8)" : "float"
    case "i": return bytes > 0 ? "int\(bytes * 8)" : "int"
    case "u": return bytes > 0 ? "uint\(bytes * 8)" : "uint"
    case "c": return bytes > 0 ? "complex\(bytes * 8)" : "complex"
    case "b": return "bool"
    case "O": return "Python objects"
    case "U": return "unicode strings"
    case "S", "a": return "byte strings"
    case "V": return "raw bytes (void; bfloat16 arrays must be saved as float32)"
    case "M": return "datetime64"
    case "m": return "timedelta64"
    default: return "unknown"
    }
  }

  // MARK: Writing

  /// The bytes of a header for `shape` and `dtype`, version 1.0 when the header fits its
  /// 16-bit length (always, for shapes of sane rank), else 2.0. Padded with spaces and a
  /// final newline so the data starts on a 64-byte boundary, exactly as numpy writes it.
  static func encode(shape: [Int], dtype: DType) throws(AttentionError) -> [UInt8] {
    let descr: String
    switch dtype {
    case .float32: descr = "<f4"
    case .float16: descr = "<f2"
    case .bfloat16:
      throw .unsupported(argument: "dtype", value: "bf16", supported: ".npy float32 or float16 (numpy has no bfloat16)")
    }
    let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
    let dict = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
    var text = Array(dict.utf8)
    let unpadded = 10 + text.count + 1
    let version1 = unpadded + (alignment - unpadded % alignment) % alignment - 10 <= Int(UInt16.max)
    let preamble = version1 ? 10 : 12
    let total = preamble + text.count + 1
    text += [UInt8](repeating: 0x20, count: (alignment - total % alignment) % alignment)
    text.append(0x0A)
    let length = text.count
    var bytes = magic
    if version1 {
      bytes += [1, 0, UInt8(length & 0xFF), UInt8(length >> 8)]
    } else {
      bytes += [2, 0] + (0..<4).map { UInt8((length >> (8 * $0)) & 0xFF) }
    }
    return bytes + text
  }
}

extension PythonLiteral {
  /// The literal as Python would print it, for error messages.
  var pythonDescription: String {
    switch self {
    case let .string(s): return "'\(s)'"
    case let .integer(n): return String(n)
    case let .boolean(b): return b ? "True" : "False"
    case .none: return "None"
    case let .tuple(items):
      return items.count == 1 ? "(\(items[0].pythonDescription),)" : "(" + items.map(\.pythonDescription).joined(separator: ", ") + ")"
    case let .list(items): return "[" + items.map(\.pythonDescription).joined(separator: ", ") + "]"
    case let .dictionary(entries):
      return "{" + entries.map { "\($0.key.pythonDescription): \($0.value.pythonDescription)" }.joined(separator: ", ") + "}"
    }
  }
}
