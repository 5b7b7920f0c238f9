import ArgumentParser
import FlashAttention
import FlashAttentionBench

// Option values shared by every subcommand. Declared once here: a second conformance in
// another file of this module would not compile.

extension DeviceChoice: ExpressibleByArgument {}

extension AttentionAlgorithm: ExpressibleByArgument {}

extension DType: ExpressibleByArgument {
  /// `fp32`, `fp16`, `bf16` (and the long names `float32`, …).
  public init?(argument: String) { self.init(name: argument) }
  public static var allValueStrings: [String] { allCases.map(\.shortName) }
  public var defaultValueDescription: String { shortName }
  public static var allValueDescriptions: [String: String] {
    ["fp32": "float32", "fp16": "float16", "bf16": "bfloat16 (GPU)"]
  }
}
