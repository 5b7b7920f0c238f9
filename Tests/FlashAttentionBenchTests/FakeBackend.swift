import FlashAttention
import FlashAttentionBench
import Synchronization

/// A backend that computes nothing: times proportional to the FLOPs, an out-of-memory
/// standard algorithm past `oomSeqlen`, headDim 3 unsupported, and outputs that differ
/// between flash and standard by a known amount — enough to test the bench machinery.
final class FakeBackend: AttentionBackend, @unchecked Sendable {
  let kind: String
  let deviceName = "fake device"
  let supportedDTypes: [DType] = [.float32, .float16]
  let oomSeqlen: Int
  /// Every `measure` call, as "<algorithm>" — to check the round-robin order.
  let log = Mutex<[String]>([])
  static let difference: Float = 0.25

  init(oomSeqlen: Int = .max, kind: String = "cpu") {
    self.oomSeqlen = oomSeqlen
    self.kind = kind
  }

  func check(_ problem: AttentionProblem, algorithm: AttentionAlgorithm, dtype: DType) throws(AttentionError) {
    if problem.headDim == 3 {
      throw .unsupported(argument: "headDim", value: "3", supported: "anything but 3")
    }
    if dtype == .bfloat16 { throw .unsupported(argument: "dtype", value: "bf16", supported: "fp32, fp16") }
  }

  func forward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, q: AnyTensor, k: AnyTensor, v: AnyTensor, dtype: DType?
  ) throws(AttentionError) -> ForwardResult {
    throw .unsupported(argument: "forward", value: "fake", supported: "prepare only")
  }

  func backward(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, q: AnyTensor, k: AnyTensor, v: AnyTensor,
    output: AnyTensor, dOutput: AnyTensor, lse: Tensor<Float>, dtype: DType?
  ) throws(AttentionError) -> BackwardResult {
    throw .unsupported(argument: "backward", value: "fake", supported: "prepare only")
  }

  func prepare(
    _ problem: AttentionProblem, algorithm: AttentionAlgorithm, pass: AttentionPass, dtype: DType, seed: UInt64
  ) throws(AttentionError) -> any PreparedAttention {
    try check(problem, algorithm: algorithm, dtype: dtype)
    if algorithm == .standard, problem.seqlenQ >= oomSeqlen {
      throw .outOfMemory(device: deviceName, requestedBytes: problem.batch * problem.queryHeads * problem.seqlenQ * problem.seqlenK * 4)
    }
    return FakePrepared(backend: self, problem: problem, algorithm: algorithm, pass: pass)
  }
}

final class FakePrepared: PreparedAttention {
  let backend: FakeBackend
  let problem: AttentionProblem
  let algorithm: AttentionAlgorithm
  let pass: AttentionPass
  var calls = 0
  init(backend: FakeBackend, problem: AttentionProblem, algorithm: AttentionAlgorithm, pass: AttentionPass) {
    self.backend = backend
    self.problem = problem
    self.algorithm = algorithm
    self.pass = pass
  }

  /// 1 ms per GFLOP for flash, 2 for standard, +10% on every other call (noise).
  func measure(warmup: Int, repeats: Int) throws(AttentionError) -> [Double] {
    backend.log.withLock { $0.append(algorithm.rawValue) }
    return (0..<repeats).map { _ in
      calls += 1
      let base = problem.forwardFLOPs / 1e9 * (algorithm == .flash ? 1 : 2)
      return base * (calls % 2 == 0 ? 1.1 : 1.0)
    }
  }

  var peakExtraBytes: Int {
    algorithm == .flash ? problem.queryShape.elementCount * 4 : problem.batch * problem.queryHeads * problem.seqlenQ * problem.seqlenK * 4
  }

  func results() throws(AttentionError) -> [String: [Float]] {
    let n = problem.queryShape.elementCount
    let offset: Float = algorithm == .flash ? FakeBackend.difference : 0
    let values = (0..<n).map { Float($0 % 7) + offset }
    return pass == .forward ? ["O": values] : ["dQ": values, "dK": values, "dV": values]
  }
}
