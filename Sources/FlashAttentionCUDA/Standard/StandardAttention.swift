import FlashAttention

/// Standard attention on the GPU, the way a good PyTorch implementation does it: S = Q·Kᵀ
/// and P = softmax(scale·S) materialised in device memory, the matrix products in cuBLAS
/// (float32 accumulation), the softmax and its backward in our own kernels.
///
/// Memory: S is float32 `(batch, heads, seqlenQ, seqlenK)` and P overwrites it in place as
/// fp16/bf16 (see `StandardKernels`), so the forward holds 4 bytes per score — as much as
/// PyTorch's fp16 S plus P. The backward adds dP (float32, with dS written over it in
/// place); when it runs right after the forward it reuses the forward's P, as autograd
/// does, otherwise it recomputes P from the LSE (one extra product).
///
/// GQA: products are batched over (batch, query head) through arrays of device pointers
/// (`cublasGemmBatchedEx`), because a `(batch, seqlen, heads, headDim)` tensor's
/// (batch, head) matrices are not evenly spaced; dK and dV sum over the query heads of a
/// group in float32 accumulators (one product per group member) and are converted at the end.
final class StandardPlan: @unchecked Sendable {
  struct Tensors {
    var q, k, v, output: DeviceTensorRef
    var lse: UInt64
  }
  struct Gradients {
    var dOutput, dq, dk, dv: DeviceTensorRef
  }

  let runtime: DeviceRuntime
  let problem: AttentionProblem
  let dtype: DType
  let tensors: Tensors
  let gradients: Gradients?
  let kernel: GeneratedKernel
  let scores: DeviceBuffer
  let dScores: DeviceBuffer?
  let dkAccumulator: DeviceBuffer?
  let dvAccumulator: DeviceBuffer?
  private let pointerArrays: DeviceBuffer
  private var arrayOffsets: [String: UInt64] = [:]
  /// Our kernels' launches, resolved once (no compile-cache lookups in timed runs).
  private var softmaxForward: DeviceRuntime.ResolvedLaunch!
  private var softmaxRecompute: DeviceRuntime.ResolvedLaunch!
  private var softmaxBackward: DeviceRuntime.ResolvedLaunch?
  private var converts: [DeviceRuntime.ResolvedLaunch] = []

  /// Bytes of device memory a plan allocates beyond its tensors.
  static func workspaceBytes(_ p: AttentionProblem, backward: Bool) -> Int {
    let scores = p.batch * p.queryHeads * p.seqlenQ * p.seqlenK * 4
    guard backward else { return scores }
    let accumulators = p.groupSize > 1 ? 2 * p.batch * p.seqlenK * p.keyValueHeads * p.headDim * 4 : 0
    return 2 * scores + accumulators
  }

  init(
    runtime: DeviceRuntime, problem p: AttentionProblem, dtype: DType, tensors: Tensors, gradients: Gradients?
  ) throws(CUDAError) {
    self.runtime = runtime
    problem = p
    self.dtype = dtype
    self.tensors = tensors
    self.gradients = gradients
    kernel = StandardKernels.kernel(dtype: dtype, arch: runtime.arch)
    let scoreBytes = p.batch * p.queryHeads * p.seqlenQ * p.seqlenK * 4
    let allocator = runtime.allocator
    let scores = try allocator.allocate(byteCount: scoreBytes)
    let dScores = gradients == nil ? nil : try allocator.allocate(byteCount: scoreBytes)
    let grouped = gradients != nil && p.groupSize > 1
    let accumulatorBytes = p.batch * p.seqlenK * p.keyValueHeads * p.headDim * 4
    let dkAccumulator = grouped ? try allocator.allocate(byteCount: accumulatorBytes) : nil
    let dvAccumulator = grouped ? try allocator.allocate(byteCount: accumulatorBytes) : nil
    self.scores = scores
    self.dScores = dScores
    self.dkAccumulator = dkAccumulator
    self.dvAccumulator = dvAccumulator

    // Every product's A, B and C pointer arrays, uploaded once.
    var all: [UInt64] = []
    var offsets: [String: UInt64] = [:]
    func add(_ name: String, _ pointers: [UInt64]) {
      offsets[name] = UInt64(all.count * 8)
      all += pointers
    }
    let e = UInt64(dtype.byteCount)
    let rowsPerHead = UInt64(p.seqlenQ * p.seqlenK * 4)
    func at(_ t: DeviceTensorRef, _ b: Int, _ h: Int) -> UInt64 {
      t.address + UInt64(b * t.strides.batch + h * t.strides.head) * e
    }
    func score(_ base: DeviceBuffer, _ b: Int, _ h: Int) -> UInt64 {
      base.address + UInt64(b * p.queryHeads + h) * rowsPerHead
    }
    func accumulator(_ base: DeviceBuffer, _ b: Int, _ kvh: Int) -> UInt64 {
      base.address + UInt64((b * p.seqlenK * p.keyValueHeads + kvh) * p.headDim * 4)
    }
    let heads = (0..<p.batch).flatMap { b in (0..<p.queryHeads).map { (b, $0, p.keyValueHead(forQueryHead: $0)) } }
    let t = tensors
    add("qk.A", heads.map { at(t.q, $0.0, $0.1) })
    add("qk.B", heads.map { at(t.k, $0.0, $0.2) })
    add("qk.C", heads.map { score(scores, $0.0, $0.1) })
    add("pv.B", heads.map { at(t.v, $0.0, $0.2) })
    add("pv.C", heads.map { at(t.output, $0.0, $0.1) })
    if let g = gradients, let dScores {
      add("dov.A", heads.map { at(g.dOutput, $0.0, $0.1) })
      add("dov.C", heads.map { score(dScores, $0.0, $0.1) })
      add("dq.C", heads.map { at(g.dq, $0.0, $0.1) })
      for member in 0..<p.groupSize {
        let groupHeads = (0..<p.batch).flatMap { b in
          (0..<p.keyValueHeads).map { kvh in (b, kvh * p.groupSize + member, kvh) }
        }
        add("dk.A.\(member)", groupHeads.map { score(dScores, $0.0, $0.1) })
        add("dk.B.\(member)", groupHeads.map { at(t.q, $0.0, $0.1) })
        add("dv.A.\(member)", groupHeads.map { score(scores, $0.0, $0.1) })
        add("dv.B.\(member)", groupHeads.map { at(g.dOutput, $0.0, $0.1) })
        if member == 0 {
          add("dk.C", groupHeads.map { h in dkAccumulator.map { accumulator($0, h.0, h.2) } ?? at(g.dk, h.0, h.2) })
          add("dv.C", groupHeads.map { h in dvAccumulator.map { accumulator($0, h.0, h.2) } ?? at(g.dv, h.0, h.2) })
        }
      }
    }
    let arrays = try allocator.allocate(byteCount: all.count * 8)
    try arrays.upload(all)
    pointerArrays = arrays
    arrayOffsets = offsets

    let rows = p.batch * p.queryHeads * p.seqlenQ
    let k = kernel
    softmaxForward = try runtime.resolve([
      StandardKernels.softmaxForward(k, dtype: dtype, scores: scores.address, lse: tensors.lse, rows: rows, problem: p, lseGiven: false)
    ])[0]
    softmaxRecompute = try runtime.resolve([
      StandardKernels.softmaxForward(k, dtype: dtype, scores: scores.address, lse: tensors.lse, rows: rows, problem: p, lseGiven: true)
    ])[0]
    if let dScores {
      softmaxBackward = try runtime.resolve([
        StandardKernels.softmaxBackward(
          k, dtype: dtype, probabilities: scores.address, dProbabilities: dScores.address, rows: rows, seqlenK: p.seqlenK)
      ])[0]
    }
    if let g = gradients, let dkAccumulator, let dvAccumulator {
      let sms = runtime.device.properties.multiprocessorCount
      converts = try runtime.resolve([
        StandardKernels.convert(
          k, dtype: dtype, source: dkAccumulator.address, destination: g.dk, shape: p.keyValueShape, multiprocessors: sms),
        StandardKernels.convert(
          k, dtype: dtype, source: dvAccumulator.address, destination: g.dv, shape: p.keyValueShape, multiprocessors: sms),
      ])
    }
  }

  private func array(_ name: String) -> UInt64 { pointerArrays.address + arrayOffsets[name]! }

  /// Queues S = Q·Kᵀ and the softmax (P in place over S; LSE written, or read when
  /// `lseGiven`).
  private func probabilities(lseGiven: Bool) throws(CUDAError) {
    let p = problem
    let blas = try runtime.cublas()
    try blas.gemm(
      transA: false, transB: true, m: p.seqlenQ, n: p.seqlenK, k: p.headDim, alpha: 1,
      a: array("qk.A"), aType: dtype, lda: tensors.q.strides.seqlen,
      b: array("qk.B"), bType: dtype, ldb: tensors.k.strides.seqlen,
      beta: 0, c: array("qk.C"), cType: .float32, ldc: p.seqlenK, batch: p.batch * p.queryHeads)
    try runtime.run([lseGiven ? softmaxRecompute : softmaxForward])
  }

  /// Queues the forward: O and LSE.
  func forward() throws(CUDAError) {
    let p = problem
    try probabilities(lseGiven: false)
    try runtime.cublas().gemm(
      transA: false, transB: false, m: p.seqlenQ, n: p.headDim, k: p.seqlenK, alpha: 1,
      a: array("qk.C"), aType: dtype, lda: 2 * p.seqlenK,
      b: array("pv.B"), bType: dtype, ldb: tensors.v.strides.seqlen,
      beta: 0, c: array("pv.C"), cType: dtype, ldc: tensors.output.strides.seqlen, batch: p.batch * p.queryHeads)
  }

  /// Queues the backward: dQ, dK, dV. `reuseProbabilities`: P is still in place from a
  /// `forward()` of this plan; otherwise it is recomputed from the LSE.
  func backward(reuseProbabilities: Bool) throws(CUDAError) {
    guard let g = gradients, dScores != nil else { throw .invalidRequest("plan made without gradients") }
    let p = problem
    let blas = try runtime.cublas()
    if !reuseProbabilities { try probabilities(lseGiven: true) }
    let heads = p.batch * p.queryHeads
    // dP = dO·Vᵀ (float32), then dS = P∘(dP − rowsum(P∘dP)) in place.
    try blas.gemm(
      transA: false, transB: true, m: p.seqlenQ, n: p.seqlenK, k: p.headDim, alpha: 1,
      a: array("dov.A"), aType: dtype, lda: g.dOutput.strides.seqlen,
      b: array("pv.B"), bType: dtype, ldb: tensors.v.strides.seqlen,
      beta: 0, c: array("dov.C"), cType: .float32, ldc: p.seqlenK, batch: heads)
    try runtime.run([softmaxBackward!])
    // dQ = scale · dS·K.
    try blas.gemm(
      transA: false, transB: false, m: p.seqlenQ, n: p.headDim, k: p.seqlenK, alpha: p.scale,
      a: array("dov.C"), aType: dtype, lda: 2 * p.seqlenK,
      b: array("qk.B"), bType: dtype, ldb: tensors.k.strides.seqlen,
      beta: 0, c: array("dq.C"), cType: dtype, ldc: g.dq.strides.seqlen, batch: heads)
    // dK = scale · Σ_group dSᵀ·Q and dV = Σ_group Pᵀ·dO.
    let grouped = dkAccumulator != nil
    let kvBatch = p.batch * p.keyValueHeads
    let accumulatorPitch = p.keyValueHeads * p.headDim
    for member in 0..<p.groupSize {
      let beta: Float = member == 0 ? 0 : 1
      try blas.gemm(
        transA: true, transB: false, m: p.seqlenK, n: p.headDim, k: p.seqlenQ, alpha: p.scale,
        a: array("dk.A.\(member)"), aType: dtype, lda: 2 * p.seqlenK,
        b: array("dk.B.\(member)"), bType: dtype, ldb: tensors.q.strides.seqlen,
        beta: beta, c: array("dk.C"), cType: grouped ? .float32 : dtype,
        ldc: grouped ? accumulatorPitch : g.dk.strides.seqlen, batch: kvBatch)
      try blas.gemm(
        transA: true, transB: false, m: p.seqlenK, n: p.headDim, k: p.seqlenQ, alpha: 1,
        a: array("dv.A.\(member)"), aType: dtype, lda: 2 * p.seqlenK,
        b: array("dv.B.\(member)"), bType: dtype, ldb: g.dOutput.strides.seqlen,
        beta: beta, c: array("dv.C"), cType: grouped ? .float32 : dtype,
        ldc: grouped ? accumulatorPitch : g.dv.strides.seqlen, batch: kvBatch)
    }
    try runtime.run(converts)
  }
}
