import FlashAttention
import Foundation
import Testing

@Suite struct NumPyFileTests {
  // MARK: Round trips

  static let shapes: [[Int]] = [[], [0], [1], [7], [3, 5], [1, 1, 1, 1], [2, 113, 3, 59], [1, 239, 1, 3], [4, 0, 2]]

  @Test(arguments: shapes, [DType.float32, .float16])
  func roundTrip(shape: [Int], dtype: DType) throws {
    let folder = try TemporaryFolder()
    let path = folder.file("x.npy")
    let count = shape.reduce(1, *)
    let values = Tensor<Float>(shape: shape, randomIn: -4...4, seed: UInt64(count) &+ 17)
    let tensor = AnyTensor.float32(values).converted(to: dtype)
    try NumPyFile.write(tensor, to: path)
    #expect(try folder.entries() == ["x.npy"], "no temporary left beside the output")

    let bytes = try folder.bytes(of: "x.npy")
    // numpy's layout: 10-byte preamble of version 1.0, header padded so data is 64-aligned.
    #expect(Array(bytes[0..<8]) == [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
    let headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
    #expect((10 + headerLength) % 64 == 0)
    #expect(bytes.count == 10 + headerLength + count * dtype.byteCount)

    let back = try NumPyFile.read(path: path)
    #expect(back.dtype == dtype)
    #expect(back.shape == shape)
    #expect(back.floats() == tensor.floats())
    if count > 0 { #expect(back.floats().contains { $0 != 0 }, "random data, not zeros") }
  }

  @Test func headerIsByteForByteWhatNumpyWrites() throws {
    // np.save('a.npy', np.zeros((2, 3), np.float32)) with numpy 2.4.
    let folder = try TemporaryFolder()
    try NumPyFile.write(.float32(Tensor(shape: [2, 3], repeating: 0)), to: folder.file("a.npy"))
    let bytes = try folder.bytes(of: "a.npy")
    let expectedDict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    let expected = NPYBytes.file(dict: expectedDict, data: [UInt8](repeating: 0, count: 24))
    #expect(bytes == expected)
    #expect(bytes.count == 152)
    // A 1-D shape keeps Python's one-element tuple comma.
    try NumPyFile.write(.float16(Tensor(shape: [7], repeating: 0)), to: folder.file("c.npy"))
    let header = String(decoding: try folder.bytes(of: "c.npy")[10..<128], as: UTF8.self)
    #expect(header.hasPrefix("{'descr': '<f2', 'fortran_order': False, 'shape': (7,), }"))
  }

  @Test func longHeaderIsWrittenAsVersion2() throws {
    // 30000 dimensions of 1: the dict is ~90 kB, beyond version 1.0's 16-bit length.
    let folder = try TemporaryFolder()
    let shape = [Int](repeating: 1, count: 30_000)
    try NumPyFile.write(.float32(Tensor(shape: shape, elements: [2.5])), to: folder.file("tall.npy"))
    let bytes = try folder.bytes(of: "tall.npy")
    #expect(bytes[6] == 2 && bytes[7] == 0)
    let length = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
    #expect((12 + length) % 64 == 0)
    let back = try NumPyFile.read(path: folder.file("tall.npy"))
    #expect(back.shape == shape)
    #expect(back.floats() == [2.5])
  }

  // MARK: Headers other writers produce

  @Test(arguments: [
    // (version, dict, alignment)
    (UInt8(1), "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 64),
    (1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 16),  // numpy < 1.14
    (2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 64),
    (3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 64),
    (1, "{\"shape\": (2, 3), \"fortran_order\": False, \"descr\": \"<f4\"}", 64),  // order, quotes
    (1, "{'descr':'<f4','fortran_order':False,'shape':(2L, 3L)}", 64),  // Python 2 longs
    (1, "{'descr': 'f4', 'fortran_order': False, 'shape': (2, 3), }", 64),  // no byte order
    (1, "{'descr': '=f4', 'fortran_order': False, 'shape': (2, 3), }", 64),  // native
    (1, "{'descr': '|f4', 'fortran_order': False, 'shape': (2, 3), }", 64),
    (1, "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6), }", 64),  // F == C here
  ])
  func readsHeaderVariants(version: UInt8, dict: String, alignment: Int) throws {
    let folder = try TemporaryFolder()
    let values: [Float] = [1, -2, 3.5, 4, 0.25, -6]
    try folder.write(NPYBytes.file(dict: dict, data: NPYBytes.float32(values), major: version, alignment: alignment), to: "x.npy")
    let tensor = try NumPyFile.read(path: folder.file("x.npy"))
    #expect(tensor.dtype == .float32)
    #expect(tensor.shape.reduce(1, *) == 6)
    #expect(tensor.floats() == values)
  }

  @Test func readsFloat16AndVersion3UTF8() throws {
    let folder = try TemporaryFolder()
    let values: [Float] = [0.5, -1.25, 65504, 1e-3]
    try folder.write(
      NPYBytes.file(dict: NPYBytes.dict(descr: "<f2", shape: "(4,)"), data: NPYBytes.float16(values), major: 3),
      to: "h.npy")
    let tensor = try NumPyFile.read(path: folder.file("h.npy"))
    #expect(tensor.dtype == .float16)
    #expect(tensor.floats() == values.map { Float(Float16($0)) })
  }

  // MARK: What is refused, and how

  /// (name, file bytes, words the reason must contain)
  static let badFiles: [(String, [UInt8], [String])] = {
    let six = NPYBytes.float32([1, 2, 3, 4, 5, 6])
    func npy(_ dict: String, _ data: [UInt8] = six, major: UInt8 = 1, minor: UInt8 = 0) -> [UInt8] {
      NPYBytes.file(dict: dict, data: data, major: major, minor: minor)
    }
    let good = npy(NPYBytes.dict(descr: "<f4", shape: "(2, 3)"))
    return [
      ("empty", [], ["empty"]),
      ("not npy", Array("hello, world\n".utf8), ["not a .npy file"]),
      ("magic only", Array(good[0..<7]), ["truncated"]),
      ("header cut", Array(good[0..<60]), ["truncated", "header"]),
      ("data cut", Array(good.dropLast(5)), ["truncated", "(2, 3)", "24 bytes", "19"]),
      ("extra data", good + [0, 0, 0, 0], ["4 unexpected bytes"]),
      ("version 4", npy(NPYBytes.dict(descr: "<f4", shape: "(2, 3)"), major: 4), ["version 4.0", "1.0, 2.0, 3.0"]),
      ("version 1.1", npy(NPYBytes.dict(descr: "<f4", shape: "(2, 3)"), minor: 1), ["version 1.1"]),
      ("float64", npy(NPYBytes.dict(descr: "<f8", shape: "(2, 3)"), six + six), ["'<f8'", "float64", "'<f4'", "'<f2'"]),
      ("int32", npy(NPYBytes.dict(descr: "<i4", shape: "(2, 3)")), ["'<i4'", "int32", "accepted"]),
      ("bool", npy(NPYBytes.dict(descr: "|b1", shape: "(6,)"), [UInt8](repeating: 1, count: 6)), ["bool"]),
      ("object", npy(NPYBytes.dict(descr: "|O", shape: "(2,)"), [UInt8](repeating: 0, count: 16)), ["'|O'", "objects"]),
      ("big-endian", npy(NPYBytes.dict(descr: ">f4", shape: "(2, 3)")), ["big-endian", "'>f4'", "'<f4'"]),
      ("big-endian f2", npy(NPYBytes.dict(descr: ">f2", shape: "(3,)"), [0, 0, 0, 0, 0, 0]), ["big-endian"]),
      ("fortran", npy(NPYBytes.dict(descr: "<f4", fortran: true, shape: "(2, 3)")), ["Fortran", "C order"]),
      ("structured", npy("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (3,), }"), ["structured"]),
      ("missing key", npy("{'descr': '<f4', 'shape': (2, 3), }"), ["missing key 'fortran_order'"]),
      ("extra key", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"), ["unexpected key 'x'"]),
      ("shape list", npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 3], }"), ["'shape'", "tuple"]),
      ("negative dim", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 3), }"), ["-2", "≥ 0"]),
      ("huge shape", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }"), ["too large"]),
      ("not a dict", npy("['descr', '<f4']"), ["expected a dict"]),
      ("garbage", npy("{'descr': '<f4', 'fortran_order': Fals"), ["bad .npy header"]),
      ("unterminated", npy("{'descr': '<f4"), ["unterminated string"]),
      ("huge header length", [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 2, 0, 0xFF, 0xFF, 0xFF, 0x7F] + [UInt8](repeating: 0x20, count: 52), ["corrupt"]),
    ]
  }()

  @Test(arguments: badFiles.indices)
  func refusesWithReason(index: Int) throws {
    let (name, bytes, words) = Self.badFiles[index]
    let folder = try TemporaryFolder()
    let path = folder.file("bad.npy")
    try folder.write(bytes, to: "bad.npy")
    do {
      _ = try NumPyFile.read(path: path)
      Issue.record("\(name): read succeeded")
    } catch {
      guard case let .file(errorPath, reason) = error else {
        Issue.record("\(name): expected .file, got \(error)")
        return
      }
      #expect(errorPath == path)
      #expect(!reason.contains("\n"), "\(name): one line")
      for word in words {
        #expect(reason.contains(word), "\(name): '\(reason)' should mention \(word)")
      }
    }
  }

  @Test func missingFileAndFolderAreNamed() throws {
    let folder = try TemporaryFolder()
    #expect(throws: AttentionError.file(path: folder.file("none.npy"), reason: "cannot open: No such file or directory")) {
      try NumPyFile.read(path: folder.file("none.npy"))
    }
    #expect(throws: AttentionError.file(path: folder.path, reason: "a directory; expected a .npy file")) {
      try NumPyFile.read(path: folder.path)
    }
  }

  @Test func float32ReaderRefusesFloat16() throws {
    let folder = try TemporaryFolder()
    try NumPyFile.write(.float16(Tensor(shape: [2], elements: [1, 2])), to: folder.file("lse.npy"))
    #expect(throws: AttentionError.self) { try NumPyFile.readFloat32(path: folder.file("lse.npy")) }
    try NumPyFile.write(.float32(Tensor(shape: [2], elements: [-.infinity, 2])), to: folder.file("lse32.npy"))
    #expect(try NumPyFile.readFloat32(path: folder.file("lse32.npy")).elements == [-.infinity, 2])
  }

  // MARK: Atomic writes

  @Test func failedWritesLeaveNothing() throws {
    let folder = try TemporaryFolder()
    // No such folder.
    #expect(throws: AttentionError.self) {
      try NumPyFile.write(.float32(Tensor(shape: [1], elements: [1])), to: folder.file("no/x.npy"))
    }
    // bfloat16 has no .npy dtype: refused before anything is created.
    #expect(throws: AttentionError.self) {
      try NumPyFile.write(.bfloat16(Tensor(shape: [1], elements: [BFloat16(1)])), to: folder.file("b.npy"))
    }
    #expect(try folder.entries() == [])
  }

  @Test func replacesAnExistingFileOnlyOnCommit() throws {
    let folder = try TemporaryFolder()
    let path = folder.file("o.npy")
    try folder.write(Array("old".utf8), to: "o.npy")
    let staged = try NumPyFile.stage(.float32(Tensor(shape: [3], elements: [1, 2, 3])), to: path)
    #expect(try folder.bytes(of: "o.npy") == Array("old".utf8), "untouched until commit")
    #expect(try folder.entries().count == 2, "the temporary sits beside it")
    try staged.commit()
    #expect(try NumPyFile.read(path: path).floats() == [1, 2, 3])
    #expect(try folder.entries() == ["o.npy"])

    let discarded = try NumPyFile.stage(.float32(Tensor(shape: [1], elements: [9])), to: path)
    discarded.discard()
    #expect(try NumPyFile.read(path: path).floats() == [1, 2, 3])
    #expect(try folder.entries() == ["o.npy"])
  }

  @Test func groupRemovesEarlierOutputsWhenALaterOneFails() throws {
    let folder = try TemporaryFolder()
    // The second destination is a non-empty folder: staging works, the rename cannot.
    try FileManager.default.createDirectory(atPath: folder.file("blocked/inner"), withIntermediateDirectories: true)
    let group = StagedFileGroup()
    group.add(try NumPyFile.stage(.float32(Tensor(shape: [1], elements: [1])), to: folder.file("first.npy")))
    group.add(try NumPyFile.stage(.float32(Tensor(shape: [1], elements: [2])), to: folder.file("blocked")))
    group.add(try NumPyFile.stage(.float32(Tensor(shape: [1], elements: [3])), to: folder.file("third.npy")))
    #expect(throws: AttentionError.self) { try group.commit() }
    #expect(try folder.entries() == ["blocked"])
  }
}
