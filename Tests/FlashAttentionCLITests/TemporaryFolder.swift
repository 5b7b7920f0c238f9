import Foundation

/// A fresh folder under the system's temporary directory, removed on deinit.
final class TemporaryFolder {
  let path: String

  init() throws {
    let base = FileManager.default.temporaryDirectory.path
    path = "\(base)/flash-attn-tests-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func file(_ name: String) -> String { "\(path)/\(name)" }

  /// Every entry of the folder, hidden ones (our temporaries) included, sorted.
  func entries() throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: path).sorted()
  }

  func write(_ bytes: [UInt8], to name: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: file(name)))
  }

  func bytes(of name: String) throws -> [UInt8] {
    Array(try Data(contentsOf: URL(fileURLWithPath: file(name))))
  }
}

/// Hand-made `.npy` bytes, so tests can produce any header numpy or another writer might.
enum NPYBytes {
  /// A file whose header is `dict` padded to `alignment` (numpy: 64; numpy < 1.14: 16).
  static func file(
    dict: String, data: [UInt8], major: UInt8 = 1, minor: UInt8 = 0, alignment: Int = 64
  ) -> [UInt8] {
    let preamble = major == 1 ? 10 : 12
    var header = Array(dict.utf8)
    let total = preamble + header.count + 1
    header += [UInt8](repeating: 0x20, count: (alignment - total % alignment) % alignment)
    header.append(0x0A)
    var bytes: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, major, minor]
    let n = header.count
    if major == 1 {
      bytes += [UInt8(n & 0xFF), UInt8(n >> 8)]
    } else {
      bytes += (0..<4).map { UInt8((n >> (8 * $0)) & 0xFF) }
    }
    return bytes + header + data
  }

  static func float32(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
  }

  static func float16(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: Float16(v).bitPattern.littleEndian) { Array($0) } }
  }

  static func dict(descr: String, fortran: Bool = false, shape: String) -> String {
    "{'descr': '\(descr)', 'fortran_order': \(fortran ? "True" : "False"), 'shape': \(shape), }"
  }
}
