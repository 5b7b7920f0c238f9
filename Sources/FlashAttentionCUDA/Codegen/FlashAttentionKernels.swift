import FlashAttention

extension GPUArch {
  /// The most dynamic shared memory one CTA may use (opt-in limit).
  var maxSharedMemoryPerBlock: Int {
    switch self {
    case .sm80: return 163 * 1024
    case .sm86, .sm89: return 99 * 1024
    case .sm90, .sm90a: return 227 * 1024
    }
  }
}

/// Plans the kernel launches of the FlashAttention-2 forward and backward on NVIDIA GPUs
/// (`mma.sync` path, sm_80 and later).
///
/// Every tensor is `(batch, seqlen, heads, headDim)` in fp16 or bf16 with the head dim
/// contiguous and element strides given by its `DeviceTensorRef`; base addresses must be
/// 16-byte aligned and the strides multiples of 8 elements (the kernels move 16-byte chunks).
/// LSE is float32 `(batch, queryHeads, seqlenQ)` contiguous: natural log of the row sum of
/// exp of the scaled scores, −∞ for rows that see no key (whose output is 0).
///
/// The launches are self-contained: they initialise every accumulator they use, so the
/// caller only runs them in order on one stream.
public enum FlashAttentionKernels {
  /// Head dims with generated kernels.
  public static let supportedHeadDims = [32, 64, 96, 128, 192, 256]

  /// Throws `.unsupported` naming the first thing these kernels cannot run.
  public static func check(problem: AttentionProblem, dtype: DType, arch: GPUArch) throws(AttentionError) {
    guard KernelDType(dtype) != nil else {
      throw .unsupported(argument: "dtype", value: dtype.shortName, supported: "fp16, bf16 on the CUDA kernels")
    }
    guard supportedHeadDims.contains(problem.headDim) else {
      throw .unsupported(
        argument: "headDim", value: String(problem.headDim),
        supported: supportedHeadDims.map(String.init).joined(separator: ", ") + " on the CUDA kernels")
    }
    // Grid dimensions y and z are limited to 65535.
    let limit = 65535
    guard problem.batch <= limit else {
      throw .unsupported(argument: "batch", value: String(problem.batch), supported: "1...\(limit) on the CUDA kernels")
    }
    guard problem.queryHeads <= limit else {
      throw .unsupported(argument: "queryHeads", value: String(problem.queryHeads), supported: "1...\(limit) on the CUDA kernels")
    }
    guard problem.seqlenQ <= 64 * limit, problem.seqlenK <= Int(Int32.max) / 2 else {
      throw .unsupported(argument: "seqlen", value: "\(problem.seqlenQ)x\(problem.seqlenK)", supported: "seqlenQ ≤ \(64 * limit) on the CUDA kernels")
    }
    // Every kernel of the head dim must fit the arch's shared memory (sm_86/sm_89 have 99 KB).
    let kd = KernelDType(dtype)!
    let causal = problem.mask == .causal
    let needed = max(
      ForwardKernelConfig.standard(dtype: kd, headDim: problem.headDim, causal: causal, arch: arch).sharedMemoryBytes,
      BackwardKernelConfig.standard(dtype: kd, headDim: problem.headDim, causal: causal, atomicDQ: true, arch: arch).sharedMemoryBytes,
      BackwardDQKernelConfig.standard(dtype: kd, headDim: problem.headDim, causal: causal, arch: arch).sharedMemoryBytes)
    guard needed <= arch.maxSharedMemoryPerBlock else {
      throw .unsupported(
        argument: "headDim", value: "\(problem.headDim) on \(arch.rawValue)",
        supported: "head dims whose kernels fit \(arch.maxSharedMemoryPerBlock / 1024) KB of shared memory per block (sm_80, sm_90: all of \(supportedHeadDims.map(String.init).joined(separator: ", ")))")
    }
  }

  /// Whether `check` passes.
  public static func supports(problem: AttentionProblem, dtype: DType, arch: GPUArch) -> Bool {
    (try? check(problem: problem, dtype: dtype, arch: arch)) != nil
  }

  private static func checkTensor(_ t: DeviceTensorRef, _ name: String) throws(AttentionError) {
    guard t.address % 16 == 0 else {
      throw .unsupported(argument: name, value: "address 0x\(String(t.address, radix: 16))", supported: "16-byte aligned device addresses")
    }
    let s = t.strides
    guard s.batch % 8 == 0, s.seqlen % 8 == 0, s.head % 8 == 0 else {
      throw .unsupported(
        argument: name, value: "strides (\(s.batch), \(s.seqlen), \(s.head))",
        supported: "element strides that are multiples of 8 with the head dim contiguous")
    }
  }

  /// The forward: O `(batch, seqlenQ, queryHeads, headDim)` and LSE (float32 at `lse`).
  public static func forward(
    problem: AttentionProblem, dtype: DType, arch: GPUArch,
    q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef, output: DeviceTensorRef, lse: UInt64
  ) throws(AttentionError) -> [KernelLaunch] {
    try check(problem: problem, dtype: dtype, arch: arch)
    for (t, n) in [(q, "q"), (k, "k"), (v, "v"), (output, "output")] { try checkTensor(t, n) }
    let config = ForwardKernelConfig.standard(
      dtype: KernelDType(dtype)!, headDim: problem.headDim, causal: problem.mask == .causal, arch: arch)
    return [config.launch(problem: problem, q: q, k: k, v: v, output: output, lse: lse)]
  }

  /// Bytes of device scratch `backward` needs (16-byte aligned base).
  public static func backwardScratchBytes(problem: AttentionProblem, arch: GPUArch, deterministic: Bool) -> Int {
    BackwardScratch.bytes(problem: problem, deterministic: deterministic)
  }

  /// The backward: dQ like Q, dK and dV like K/V (summed over each group's query heads), given
  /// Q, K, V, the forward's O and LSE, and dO. `scratch` holds `backwardScratchBytes` bytes.
  /// `deterministic` computes dQ in its own kernel without atomics, so repeated runs agree bit
  /// for bit; otherwise dQ is accumulated with float32 atomics (faster, order-dependent rounding).
  public static func backward(
    problem: AttentionProblem, dtype: DType, arch: GPUArch,
    q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef, output: DeviceTensorRef,
    dOutput: DeviceTensorRef, lse: UInt64, dq: DeviceTensorRef, dk: DeviceTensorRef,
    dv: DeviceTensorRef, scratch: UInt64, deterministic: Bool
  ) throws(AttentionError) -> [KernelLaunch] {
    try check(problem: problem, dtype: dtype, arch: arch)
    for (t, n) in [(q, "q"), (k, "k"), (v, "v"), (output, "output"), (dOutput, "dOutput"), (dq, "dq"), (dk, "dk"), (dv, "dv")] {
      try checkTensor(t, n)
    }
    guard scratch % 16 == 0 else {
      throw .unsupported(argument: "scratch", value: "0x\(String(scratch, radix: 16))", supported: "16-byte aligned device addresses")
    }
    let kd = KernelDType(dtype)!
    let causal = problem.mask == .causal
    let d = problem.headDim
    let s = BackwardScratch(problem: problem, base: scratch, deterministic: deterministic)
    var launches = [
      BackwardPreprocessKernelConfig(dtype: kd, headDim: d, arch: arch)
        .launch(problem: problem, output: output, dOutput: dOutput, lse: lse, scratch: s),
      BackwardKernelConfig.standard(dtype: kd, headDim: d, causal: causal, atomicDQ: !deterministic, arch: arch)
        .launch(problem: problem, q: q, k: k, v: v, dOutput: dOutput, dk: dk, dv: dv, scratch: s),
    ]
    if deterministic {
      launches.append(
        BackwardDQKernelConfig.standard(dtype: kd, headDim: d, causal: causal, arch: arch)
          .launch(problem: problem, q: q, k: k, v: v, dOutput: dOutput, dq: dq, scratch: s))
    } else {
      launches.append(DQConvertKernelConfig(dtype: kd, headDim: d, arch: arch).launch(problem: problem, dq: dq, scratch: s))
    }
    return launches
  }

  /// Every kernel variant the planner can launch on `arch` (for compile checks in CI).
  public static func catalog(arch: GPUArch) -> [GeneratedKernel] {
    var kernels: [GeneratedKernel] = []
    for dtype in KernelDType.allCases {
      for d in supportedHeadDims {
        let p = try? AttentionProblem(batch: 1, queryHeads: 1, seqlenQ: 1, headDim: d)
        guard let p, supports(problem: p, dtype: dtype == .bf16 ? .bfloat16 : .float16, arch: arch) else { continue }
        kernels.append(BackwardPreprocessKernelConfig(dtype: dtype, headDim: d, arch: arch).generate())
        kernels.append(DQConvertKernelConfig(dtype: dtype, headDim: d, arch: arch).generate())
        for causal in [false, true] {
          kernels.append(ForwardKernelConfig.standard(dtype: dtype, headDim: d, causal: causal, arch: arch).generate())
          for atomic in [true, false] {
            kernels.append(
              BackwardKernelConfig.standard(dtype: dtype, headDim: d, causal: causal, atomicDQ: atomic, arch: arch).generate())
          }
          kernels.append(BackwardDQKernelConfig.standard(dtype: dtype, headDim: d, causal: causal, arch: arch).generate())
        }
      }
    }
    return kernels
  }
}
