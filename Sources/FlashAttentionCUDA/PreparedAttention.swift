import FlashAttention

/// One configuration resident on the GPU: random inputs generated on the device from the
/// seed, outputs and workspace allocated once, launches planned once. Each timed run is
/// bracketed by CUDA events on the backend's stream; outputs are filled with NaN before
/// each run (outside the events).
final class CUDAPreparedAttention: PreparedAttention, @unchecked Sendable {
  let backend: CUDABackend
  let pass: AttentionPass
  let run: AttentionRun
  /// Bytes held when the measurement started: the inputs (and, for `.backward`, O and LSE).
  private let baselineBytes: Int

  init(
    backend: CUDABackend, problem: AttentionProblem, algorithm: AttentionAlgorithm, pass: AttentionPass,
    dtype: DType, seed: UInt64
  ) throws(AttentionError) {
    self.backend = backend
    self.pass = pass
    let runtime = backend.runtime
    let allocator = runtime.allocator
    let kernel = StandardKernels.kernel(dtype: dtype, arch: runtime.arch)
    let sms = runtime.device.properties.multiprocessorCount
    var seeds = SeededGenerator(seed: seed)
    func randomTensor(_ shape: TensorShape) throws(AttentionError) -> DeviceTensor {
      let tensorSeed = seeds.next()
      return try cuda { () throws(CUDAError) in
        let t = try DeviceTensor(allocator: allocator, shape: shape, dtype: dtype)
        try runtime.run([
          StandardKernels.fillUniform(
            kernel, dtype: dtype, destination: t.buffer.address, count: shape.elementCount, seed: tensorSeed,
            multiprocessors: sms)
        ])
        return t
      }
    }
    let q = try randomTensor(problem.queryShape)
    let k = try randomTensor(problem.keyValueShape)
    let v = try randomTensor(problem.keyValueShape)
    let dOutput = pass == .forward ? nil : try randomTensor(problem.queryShape)
    if pass == .backward {
      // O and LSE come from a forward done here, untimed, and count as inputs.
      let forwardRun = try AttentionRun(
        runtime: runtime, problem: problem, algorithm: algorithm, dtype: dtype, q: q, k: k, v: v)
      try forwardRun.forward()
      try cuda { () throws(CUDAError) in try runtime.stream.synchronize() }
      forwardRun.releaseWorkspace()
      allocator.resetPeak()
      baselineBytes = allocator.currentBytes
      run = try AttentionRun(
        runtime: runtime, problem: problem, algorithm: algorithm, dtype: dtype, q: q, k: k, v: v,
        output: forwardRun.output, lse: forwardRun.lse, dOutput: dOutput, deterministic: backend.deterministic)
    } else {
      try cuda { () throws(CUDAError) in try runtime.stream.synchronize() }
      allocator.resetPeak()
      baselineBytes = allocator.currentBytes
      run = try AttentionRun(
        runtime: runtime, problem: problem, algorithm: algorithm, dtype: dtype, q: q, k: k, v: v, dOutput: dOutput,
        deterministic: backend.deterministic)
    }
  }

  private func queuePass() throws(AttentionError) {
    switch pass {
    case .forward: try run.forward()
    case .backward: try run.backward(afterForward: false)
    case .forwardBackward:
      try run.forward()
      try run.backward(afterForward: true)
    }
  }

  func measure(warmup: Int, repeats: Int) throws(AttentionError) -> [Double] {
    let runtime = backend.runtime
    let (start, end) = try cuda { () throws(CUDAError) in
      (try CUDAEvent(device: runtime.device), try CUDAEvent(device: runtime.device))
    }
    var times: [Double] = []
    for i in 0..<(max(0, warmup) + max(1, repeats)) {
      try run.poisonOutputs(pass)
      try cuda { () throws(CUDAError) in try start.record(on: runtime.stream) }
      try queuePass()
      let ms = try cuda { () throws(CUDAError) in
        try end.record(on: runtime.stream)
        return try end.elapsedMilliseconds(since: start)
      }
      if i >= warmup { times.append(ms) }
    }
    return times
  }

  var peakExtraBytes: Int { max(0, backend.runtime.allocator.peakBytes - baselineBytes) }

  func results() throws(AttentionError) -> [String: [Float]] {
    try cuda { () throws(CUDAError) in
      try backend.runtime.stream.synchronize()
      var out: [String: [Float]] = [:]
      if pass != .backward { out["O"] = try run.output.floats() }
      if pass != .forward {
        out["dQ"] = try run.dq!.floats()
        out["dK"] = try run.dk!.floats()
        out["dV"] = try run.dv!.floats()
      }
      return out
    }
  }
}
