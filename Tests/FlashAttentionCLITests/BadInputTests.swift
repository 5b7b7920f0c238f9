import FlashAttention
import Foundation
import Testing

/// Every bad input through the real binary: one `error:` line on standard error naming the
/// culprit, a non-zero exit, nothing on standard output, and no output file created or
/// changed.
@Suite struct BadInputTests {
  /// A folder of good inputs — Q (2, 5, 4, 8), K and V (2, 7, 2, 8) (GQA), O and dO like Q,
  /// LSE (2, 4, 5) — plus one bad file of each kind, and `existing.npy`, an output that a
  /// failed command must leave alone.
  static func makeInputs() throws -> TemporaryFolder {
    let folder = try TemporaryFolder()
    func save(_ name: String, _ shape: [Int], _ dtype: DType = .float32, seed: UInt64) throws {
      let t = AnyTensor.float32(Tensor(shape: shape, randomIn: -1...1, seed: seed)).converted(to: dtype)
      try NumPyFile.write(t, to: folder.file(name))
    }
    try save("q.npy", [2, 5, 4, 8], seed: 1)
    try save("k.npy", [2, 7, 2, 8], seed: 2)
    try save("v.npy", [2, 7, 2, 8], seed: 3)
    try save("o.npy", [2, 5, 4, 8], seed: 4)
    try save("do.npy", [2, 5, 4, 8], seed: 5)
    try save("lse.npy", [2, 4, 5], seed: 6)
    try save("lse16.npy", [2, 4, 5], .float16, seed: 6)
    try save("lse_shape.npy", [2, 5, 4], seed: 6)
    try save("q3d.npy", [2, 5, 32], seed: 7)
    try save("k_batch.npy", [3, 7, 2, 8], seed: 8)
    try save("k_dim.npy", [2, 7, 2, 16], seed: 9)
    try save("k_heads3.npy", [2, 7, 3, 8], seed: 10)
    try save("v_len.npy", [2, 6, 2, 8], seed: 11)
    try save("q_dim300.npy", [1, 2, 1, 300], seed: 12)
    try save("k_dim300.npy", [1, 2, 1, 300], seed: 13)
    try save("q_empty.npy", [2, 0, 4, 8], seed: 14)
    try save("o_shape.npy", [2, 5, 4, 9], seed: 15)
    try save("do_shape.npy", [2, 6, 4, 8], seed: 16)

    let good = try folder.bytes(of: "q.npy")
    try folder.write(Array(good.dropLast(12)), to: "trunc.npy")
    try folder.write(Array(good.prefix(40)), to: "trunc_header.npy")
    try folder.write(Array("q,k,v\n1,2,3\n".utf8), to: "text.npy")
    let data = Array(good[128...])
    func npy(_ descr: String, fortran: Bool = false, bytes: [UInt8]) -> [UInt8] {
      NPYBytes.file(dict: NPYBytes.dict(descr: descr, fortran: fortran, shape: "(2, 5, 4, 8)"), data: bytes)
    }
    try folder.write(npy("<f8", bytes: data + data), to: "f64.npy")
    try folder.write(npy("<i4", bytes: data), to: "i32.npy")
    try folder.write(npy(">f4", bytes: data), to: "big.npy")
    try folder.write(npy("<f4", fortran: true, bytes: data), to: "fortran.npy")
    try folder.write(
      NPYBytes.file(dict: "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", data: [UInt8](repeating: 0, count: 16)),
      to: "object.npy")
    try folder.write(NPYBytes.file(dict: "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 5", data: data), to: "header.npy")
    try folder.write(Array("keep me".utf8), to: "existing.npy")
    return folder
  }

  static let fwd = ["forward", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--device", "cpu"]
  static let bwd = [
    "backward", "--q", "q.npy", "--k", "k.npy", "--v", "v.npy", "--out", "o.npy", "--dout", "do.npy",
    "--lse", "lse.npy", "--dq", "dq.npy", "--dk", "dk.npy", "--dv", "dv.npy", "--device", "cpu",
  ]

  /// Replaces the value after `option` in `arguments`, or appends `option value`.
  static func with(_ arguments: [String], _ option: String, _ value: String?) -> [String] {
    var a = arguments
    if let i = a.firstIndex(of: option) {
      if let value { a[i + 1] = value } else { a.removeSubrange(i...(i + 1)) }
    } else if let value {
      a += [option, value]
    }
    return a
  }

  struct Case: CustomTestStringConvertible, Sendable {
    var name: String
    var arguments: [String]
    /// Words the error line must contain.
    var mentions: [String]
    var testDescription: String { name }
  }

  static func forward(_ name: String, _ changes: [(String, String?)], _ mentions: [String], out: String = "new_o.npy") -> Case {
    var a = with(fwd, "--out", out)
    for (option, value) in changes { a = with(a, option, value) }
    return Case(name: "forward: " + name, arguments: a, mentions: mentions)
  }

  static func backward(
    _ name: String, _ changes: [(String, String?)], _ mentions: [String], extra: [String] = []
  ) -> Case {
    var a = bwd
    for (option, value) in changes { a = with(a, option, value) }
    return Case(name: "backward: " + name, arguments: a + extra, mentions: mentions)
  }

  static let cases: [Case] = [
    // Files that cannot be used.
    forward("missing file", [("--q", "none.npy")], ["--q none.npy", "No such file"]),
    forward("truncated data", [("--k", "trunc.npy")], ["--k trunc.npy", "truncated"]),
    forward("truncated header", [("--q", "trunc_header.npy")], ["--q trunc_header.npy", "truncated"]),
    forward("not a .npy file", [("--v", "text.npy")], ["--v text.npy", "not a .npy file"]),
    forward("float64", [("--q", "f64.npy")], ["--q f64.npy", "float64", "'<f4'", "'<f2'"]),
    forward("int32", [("--q", "i32.npy")], ["--q i32.npy", "int32", "'<f4'"]),
    forward("object array", [("--q", "object.npy")], ["--q object.npy", "objects"]),
    forward("big-endian", [("--q", "big.npy")], ["--q big.npy", "big-endian", "'<f4'"]),
    forward("Fortran order", [("--q", "fortran.npy")], ["--q fortran.npy", "Fortran", "C order"]),
    forward("bad header", [("--q", "header.npy")], ["--q header.npy", "bad .npy header"]),
    forward("a folder as input", [("--q", ".")], ["--q .", "directory"]),
    // Shapes that do not agree.
    forward("rank 3", [("--q", "q3d.npy")], ["--q q3d.npy", "(2, 5, 32)", "4 dimensions"]),
    forward("batch differs", [("--k", "k_batch.npy"), ("--v", "k_batch.npy")], ["--k k_batch.npy", "(3, 7, 2, 8)", "(2, seqlenK, 1|2|4, 8)"]),
    forward("headDim differs", [("--k", "k_dim.npy"), ("--v", "k_dim.npy")], ["--k k_dim.npy", "(2, seqlenK, 1|2|4, 8)"]),
    forward("heads do not divide", [("--k", "k_heads3.npy"), ("--v", "k_heads3.npy")], ["--k k_heads3.npy", "3 heads", "4 query heads"]),
    forward("V unlike K", [("--v", "v_len.npy")], ["--v v_len.npy", "(2, 6, 2, 8)", "(2, 7, 2, 8)", "--k k.npy"]),
    forward("headDim 300", [("--q", "q_dim300.npy"), ("--k", "k_dim300.npy"), ("--v", "k_dim300.npy")], ["headDim", "300", "1...256"]),
    forward("seqlen 0", [("--q", "q_empty.npy")], ["seqlenQ", "0"]),
    // Options.
    forward("scale 0", [("--scale", "0")], ["--scale", "finite non-zero"]),
    forward("scale nan", [("--scale", "nan")], ["--scale", "finite non-zero"]),
    forward("scale inf", [("--scale", "inf")], ["--scale", "finite non-zero"]),
    forward("scale not a number", [("--scale", "abc")], ["--scale", "abc"]),
    forward("unknown device", [("--device", "tpu")], ["--device", "tpu", "cpu"]),
    forward("unknown algorithm", [("--algorithm", "fast")], ["--algorithm", "fast", "flash", "standard"]),
    forward("unknown dtype", [("--dtype", "fp8")], ["--dtype", "fp8", "fp16"]),
    forward("dtype the CPU cannot compute from", [("--dtype", "bf16")], ["bf16", "fp32"]),
    backward("dtype the CPU cannot compute from", [("--dtype", "bf16")], ["bf16", "fp32"]),
    forward("missing --out", [("--out", nil)], ["--out"]),
    forward("missing --k", [("--k", nil)], ["--k"]),
    forward("--lse same as --out", [("--lse", "new_o.npy")], ["--lse", "different file than --out"]),
    forward("output folder missing", [], ["--out nowhere/o.npy", "does not exist"], out: "nowhere/o.npy"),
    forward("output is a folder", [], ["--out .", "folder"], out: "."),
    // A bad input must not touch an existing output either.
    forward("existing output kept", [("--k", "k_heads3.npy"), ("--v", "k_heads3.npy")], ["--k k_heads3.npy"], out: "existing.npy"),
    backward("existing outputs kept", [("--dq", "existing.npy"), ("--dout", "do_shape.npy")], ["--dout do_shape.npy"]),
    // Backward's own inputs.
    backward("O unlike Q", [("--out", "o_shape.npy")], ["--out o_shape.npy", "(2, 5, 4, 9)", "(2, 5, 4, 8)", "--q q.npy"]),
    backward("dO unlike Q", [("--dout", "do_shape.npy")], ["--dout do_shape.npy", "(2, 6, 4, 8)", "(2, 5, 4, 8)"]),
    backward("LSE shape", [("--lse", "lse_shape.npy")], ["--lse lse_shape.npy", "(2, 5, 4)", "(2, 4, 5)"]),
    backward("LSE float16", [("--lse", "lse16.npy")], ["--lse lse16.npy", "float32"]),
    backward("missing dO file", [("--dout", "none.npy")], ["--dout none.npy", "No such file"]),
    backward("truncated O", [("--out", "trunc.npy")], ["--out trunc.npy", "truncated"]),
    backward("heads do not divide", [("--k", "k_heads3.npy"), ("--v", "k_heads3.npy")], ["--k k_heads3.npy", "3 heads"]),
    backward("dK same as dQ", [("--dk", "dq.npy")], ["--dk", "different file than --dq"]),
    backward("missing --dv", [("--dv", nil)], ["--dv"]),
    // One argument: a separate `-inf` would read as an option.
    backward("scale -inf", [], ["--scale", "finite non-zero"], extra: ["--scale=-inf"]),
  ]

  @Test(arguments: cases)
  func oneLineErrorAndNoOutput(_ c: Case) throws {
    let folder = try Self.makeInputs()
    let before = try folder.entries()
    let existing = try folder.bytes(of: "existing.npy")

    let result = try FlashAttnProcess.run(c.arguments, in: folder.path)

    #expect(result.status != 0, "\(c.name): exit status")
    #expect(result.errorLines.count == 1, "\(c.name): one line on stderr, got: \(result.standardError)")
    let line = String(result.errorLines.first ?? "")
    #expect(line.hasPrefix("error: "), "\(c.name): \(line)")
    for word in c.mentions {
      #expect(line.contains(word), "\(c.name): '\(line)' should mention '\(word)'")
    }
    #expect(result.standardOutput.isEmpty, "\(c.name): stdout: \(result.standardOutput)")
    #expect(try folder.entries() == before, "\(c.name): no file created or left behind")
    #expect(try folder.bytes(of: "existing.npy") == existing, "\(c.name): existing output untouched")
  }
}
