import FlashAttention

/// One way of computing attention that a benchmark row measures.
///
/// Our own algorithms (`flash`, `standard`) run in-process through an `AttentionBackend`;
/// the `torch-*` ones run in the PyTorch subprocess (`scripts/bench_pytorch.py`).
public struct Implementation: Hashable, Sendable, Codable, Comparable, CustomStringConvertible {
  public let name: String
  public init(_ name: String) { self.name = name }

  public static let flash = Implementation("flash")
  public static let standard = Implementation("standard")
  /// matmul + softmax + matmul in PyTorch, as the seed reports wrote it by hand.
  public static let torchNaive = Implementation("torch-naive")
  /// `scaled_dot_product_attention` restricted to one backend each (GPU).
  public static let torchSDPAFlash = Implementation("torch-sdpa-flash")
  public static let torchSDPAEfficient = Implementation("torch-sdpa-efficient")
  public static let torchSDPACuDNN = Implementation("torch-sdpa-cudnn")
  /// `scaled_dot_product_attention` with PyTorch's own choice (its CPU flash kernel on a CPU).
  public static let torchSDPA = Implementation("torch-sdpa")

  /// Our algorithm, when this row runs through an `AttentionBackend`.
  public var algorithm: AttentionAlgorithm? { AttentionAlgorithm(rawValue: name) }
  public var isPyTorch: Bool { name.hasPrefix("torch") }

  /// The PyTorch rows `--with-pytorch` adds on a GPU and on a CPU.
  public static func pyTorchSet(gpu: Bool) -> [Implementation] {
    gpu ? [torchNaive, torchSDPAFlash, torchSDPAEfficient, torchSDPACuDNN] : [torchNaive, torchSDPA]
  }

  /// Accepts our names and the PyTorch ones (`torch` alone means the whole PyTorch set).
  public static let knownNames = [
    "flash", "standard", "torch-naive", "torch-sdpa", "torch-sdpa-flash", "torch-sdpa-efficient",
    "torch-sdpa-cudnn",
  ]

  /// Flash first, then standard, then PyTorch rows in a fixed order: tables and legends
  /// list them the same way every time.
  public var sortIndex: Int { Self.knownNames.firstIndex(of: name) ?? Self.knownNames.count }
  public static func < (a: Implementation, b: Implementation) -> Bool {
    (a.sortIndex, a.name) < (b.sortIndex, b.name)
  }

  public var description: String { name }

  public init(from decoder: any Decoder) throws {
    name = try decoder.singleValueContainer().decode(String.self)
  }
  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(name)
  }
}
