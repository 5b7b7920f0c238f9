/// How the attention is computed.
public enum AttentionAlgorithm: String, Hashable, Sendable, CaseIterable, Codable {
  /// Tiled, online softmax, never materialises the seqlenQ × seqlenK matrix; the backward
  /// recomputes P from the LSE.
  case flash
  /// Materialises S = scale·QKᵀ and P = softmax(S) in memory and uses matrix products —
  /// the baseline the seed reports call "PyTorch".
  case standard
}

/// Which part of training or inference is run.
public enum AttentionPass: String, Hashable, Sendable, CaseIterable, Codable {
  case forward
  /// The backward alone, given O and LSE from a forward done beforehand (untimed).
  case backward
  case forwardBackward = "forward+backward"
}

/// O `(batch, seqlenQ, queryHeads, headDim)` in the dtype of Q, and LSE
/// `(batch, queryHeads, seqlenQ)` float32 (natural log of the row sum of exp of the scaled
/// scores; −∞ for a row that sees no key).
public struct ForwardResult: Sendable {
  public var output: AnyTensor
  public var lse: Tensor<Float>
  public init(output: AnyTensor, lse: Tensor<Float>) {
    self.output = output
    self.lse = lse
  }
}

/// dQ shaped like Q, dK and dV shaped like K/V (summed over each group's query heads), in
/// the dtype of Q.
public struct BackwardResult: Sendable {
  public var dq: AnyTensor
  public var dk: AnyTensor
  public var dv: AnyTensor
  public init(dq: AnyTensor, dk: AnyTensor, dv: AnyTensor) {
    self.dq = dq
    self.dk = dk
    self.dv = dv
  }
}

/// A device that computes attention. Implemented by `CPUBackend` and `CUDABackend`; the
/// core knows none of them.
///
/// The host-tensor entry points take C-ordered tensors in host memory (as read from `.npy`
/// files) and return new ones; a GPU backend copies in and out. `prepare` sets up one
/// configuration resident on the device for repeated, timed runs.
public protocol AttentionBackend: AnyObject, Sendable {
  /// `"cpu"` or `"cuda"`.
  var kind: String { get }
  /// A human-readable device name for reports, e.g. `"AMD EPYC, 2 threads"`.
  var deviceName: String { get }
  /// Dtypes the kernels compute from (storage of Q, K, V); others are converted first.
  var supportedDTypes: [DType] { get }

  /// Throws `AttentionError.unsupported` when this backend cannot run the problem in `dtype`.
  func check(_ problem: AttentionProblem, algorithm: AttentionAlgorithm, dtype: DType) throws(AttentionError)

  /// Computes O and LSE. `dtype` (default: Q's) is the storage the kernels read; inputs of
  /// another dtype are converted. O comes back in Q's dtype.
  func forward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm,
    q: AnyTensor, k: AnyTensor, v: AnyTensor, dtype: DType?
  ) throws(AttentionError) -> ForwardResult

  /// Computes dQ, dK, dV from the forward's O and LSE and the output gradient dO.
  func backward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm,
    q: AnyTensor, k: AnyTensor, v: AnyTensor, output: AnyTensor, dOutput: AnyTensor,
    lse: Tensor<Float>, dtype: DType?
  ) throws(AttentionError) -> BackwardResult

  /// Allocates random inputs (uniform in [-1, 1] from `seed`, so two algorithms prepared with
  /// one seed see the same data) and everything one `pass` needs, ready to be timed.
  /// Throws `.outOfMemory` when the configuration does not fit: benchmarks record that as OOM.
  func prepare(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, pass: AttentionPass,
    dtype: DType, seed: UInt64
  ) throws(AttentionError) -> any PreparedAttention
}

/// One configuration, resident and ready to run repeatedly.
public protocol PreparedAttention: AnyObject {
  /// Runs `warmup` untimed passes, then `repeats` timed ones; returns each one's time in
  /// milliseconds (GPU: CUDA events around each run; CPU: a monotonic clock).
  func measure(warmup: Int, repeats: Int) throws(AttentionError) -> [Double]
  /// High-water mark of memory allocated beyond the inputs (and, for `backward`, beyond the
  /// forward's O and LSE) during one pass, in bytes.
  var peakExtraBytes: Int { get }
  /// The last run's results as Float, keyed `"O"` for the forward and `"dQ"`, `"dK"`, `"dV"`
  /// for the backward, each C order — for agreement checks between algorithms.
  func results() throws(AttentionError) -> [String: [Float]]
}
