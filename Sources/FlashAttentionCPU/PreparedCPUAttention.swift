import Dispatch
import FlashAttention

/// One CPU configuration with its inputs and outputs allocated, for benchmarks.
///
/// Inputs are uniform in [−1, 1]: Q from `seed`, K from `seed + 1`, V from `seed + 2`, dO from
/// `seed + 3`. For the `backward` pass the forward runs once here, untimed.
final class PreparedCPUAttention<S: TensorScalar>: PreparedAttention {
  let problem: AttentionProblem
  let algorithm: AttentionAlgorithm
  let pass: AttentionPass
  let threads: Int
  let q: Tensor<S>, k: Tensor<S>, v: Tensor<S>, dOutput: Tensor<S>
  let output: Tensor<S>
  let lse: Tensor<Float>
  let dq: Tensor<S>?, dk: Tensor<S>?, dv: Tensor<S>?
  private(set) var peakExtraBytes = 0
  private var hasRun = false

  init(
    _ problem: AttentionProblem, _ algorithm: AttentionAlgorithm, _ pass: AttentionPass,
    seed: UInt64, threads: Int
  ) throws(AttentionError) {
    self.problem = problem
    self.algorithm = algorithm
    self.pass = pass
    self.threads = threads
    let qs = problem.queryShape.dimensions, ks = problem.keyValueShape.dimensions
    q = Tensor(shape: qs, randomIn: -1...1, seed: seed)
    k = Tensor(shape: ks, randomIn: -1...1, seed: seed &+ 1)
    v = Tensor(shape: ks, randomIn: -1...1, seed: seed &+ 2)
    dOutput = Tensor(shape: qs, randomIn: -1...1, seed: seed &+ 3)
    output = Tensor(shape: qs, repeating: S(0))
    lse = Tensor(shape: problem.lseShape, repeating: 0)
    if pass == .forward {
      dq = nil
      dk = nil
      dv = nil
    } else {
      dq = Tensor(shape: qs, repeating: S(0))
      dk = Tensor(shape: ks, repeating: S(0))
      dv = Tensor(shape: ks, repeating: S(0))
    }
    if pass == .backward { try runForward() }
  }

  /// Bytes of what the pass writes and returns: O + LSE for the forward, dQ + dK + dV for the
  /// backward (O and LSE are its inputs), all of them for forward+backward.
  private var outputBytes: Int {
    let forward = output.byteCount + lse.byteCount
    let backward = (dq?.byteCount ?? 0) + (dk?.byteCount ?? 0) + (dv?.byteCount ?? 0)
    switch pass {
    case .forward: return forward
    case .backward: return backward
    case .forwardBackward: return forward + backward
    }
  }

  private func runForward() throws(AttentionError) {
    try CPUAttention.forward(
      problem, algorithm: algorithm, q: q.view(), k: k.view(), v: v.view(),
      output: output.mutableView(), lse: lse.pointer, threads: threads)
  }

  private func runBackward() throws(AttentionError) {
    guard let dq, let dk, let dv else { return }
    try CPUAttention.backward(
      problem, algorithm: algorithm, q: q.view(), k: k.view(), v: v.view(),
      output: output.view(), dOutput: dOutput.view(), lse: lse.pointer,
      dq: dq.mutableView(), dk: dk.mutableView(), dv: dv.mutableView(), threads: threads)
  }

  private func runOnce() throws(AttentionError) {
    switch pass {
    case .forward: try runForward()
    case .backward: try runBackward()
    case .forwardBackward:
      try runForward()
      try runBackward()
    }
    hasRun = true
  }

  func measure(warmup: Int, repeats: Int) throws(AttentionError) -> [Double] {
    for _ in 0..<max(0, warmup) { try runOnce() }
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
      // Scratch is allocated through HostMemory, so its high-water mark during the run is the
      // extra memory of the pass (other HostMemory users running at the same time would add to it).
      let before = HostMemory.currentBytes
      HostMemory.resetPeak()
      let start = DispatchTime.now().uptimeNanoseconds
      try runOnce()
      let end = DispatchTime.now().uptimeNanoseconds
      peakExtraBytes = max(peakExtraBytes, HostMemory.peakBytes - before + outputBytes)
      times.append(Double(end - start) / 1e6)
    }
    return times
  }

  func results() throws(AttentionError) -> [String: [Float]] {
    guard hasRun else {
      throw .invalidArgument(argument: "results", value: "before any run", expected: "a call after measure(warmup:repeats:)")
    }
    var out: [String: [Float]] = [:]
    if pass != .backward { out["O"] = AnyTensor(output).floats() }
    if let dq, let dk, let dv {
      out["dQ"] = AnyTensor(dq).floats()
      out["dK"] = AnyTensor(dk).floats()
      out["dV"] = AnyTensor(dv).floats()
    }
    return out
  }
}
