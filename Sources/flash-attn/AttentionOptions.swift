import ArgumentParser
import FlashAttention
import FlashAttentionBench

/// Options that `forward` and `backward` share: the inputs Q, K, V and how to compute.
struct AttentionOptions: ParsableArguments {
  @Option(name: .customLong("q"), help: ArgumentHelp(
    "Queries: .npy (batch, seqlenQ, heads, headDim), float32 or float16.", valueName: "Q.npy"))
  var queryPath: String

  @Option(name: .customLong("k"), help: ArgumentHelp(
    "Keys: .npy (batch, seqlenK, kvHeads, headDim); kvHeads divides heads (GQA/MQA).", valueName: "K.npy"))
  var keyPath: String

  @Option(name: .customLong("v"), help: ArgumentHelp("Values: .npy shaped like K.", valueName: "V.npy"))
  var valuePath: String

  @Flag(help: "Causal mask aligned to the bottom-right: query i sees keys j ≤ i + seqlenK − seqlenQ.")
  var causal = false

  @Option(help: ArgumentHelp("Score scale, a finite non-zero number (default 1/√headDim).", valueName: "S"))
  var scale: Float?

  @Option(help: "Where to compute: cpu, cuda, or auto (CUDA when usable, else the CPU).")
  var device: DeviceChoice = .auto

  @Option(help: "flash (tiled, online softmax) or standard (materialises the attention matrix).")
  var algorithm: AttentionAlgorithm = .flash

  @Option(help: ArgumentHelp(
    "Storage dtype the kernels compute from (default: that of Q where the device supports it, else bf16); inputs are converted.",
    valueName: "dtype"))
  var dtype: DType?

  func validate() throws {
    if let scale, !scale.isFinite || scale == 0 {
      throw AttentionError.invalidArgument(argument: "--scale", value: "\(scale)", expected: "a finite non-zero number")
    }
  }

  var mask: AttentionMask { causal ? .causal : .none }
}
