import FlashAttention

/// The last kernel of the atomic backward: dQ = scale · (float32 accumulator) in the output
/// dtype, written through dQ's own strides. Each thread converts 8 elements (two 16-byte
/// loads, one 16-byte store).
struct DQConvertKernelConfig: Hashable, Sendable {
  var dtype: KernelDType
  var headDim: Int
  var arch: GPUArch

  static let threads = 128

  var name: String { "flash_bwd_dq_convert_\(dtype.rawValue)_d\(headDim)_\(arch.rawValue.replacingOccurrences(of: "_", with: ""))" }
  var entryPoint: String { "flash_bwd_dq_convert" }
  /// Query rows one CTA converts.
  var rowsPerBlock: Int { Self.threads / (headDim / 8) }

  func generate() -> GeneratedKernel {
    GeneratedKernel(name: name, entryPoints: [entryPoint], source: source, arch: arch)
  }

  var source: String {
    CUDAPrelude.source(dtype: dtype) + """
      // ---- \(name) ----
      constexpr int D = \(headDim);
      constexpr int NT = \(Self.threads);
      constexpr int CH = D / 8;
      constexpr int ROWS = NT / CH;

      struct Params {
        u64 dq_accum, dq;
        i64 dq_batch, dq_row, dq_head;
        int batch, heads, seqlen_q, seqlen_q_rounded;
        float scale;
      };

      extern "C" __global__ void __launch_bounds__(NT) \(entryPoint)(const Params p) {
        const int tid = threadIdx.x;
        const int head = blockIdx.y, batch = blockIdx.z;
        const int row = blockIdx.x * ROWS + tid / CH, ch = tid % CH;
        if (tid >= ROWS * CH || row >= p.seqlen_q) return;
        const float* src = (const float*)p.dq_accum + ((((i64)batch * p.heads + head) * p.seqlen_q_rounded + row) * D + ch * 8);
        u32x4 a = ld_global_u32x4(src), b = ld_global_u32x4(src + 4);
        const float s = p.scale;
        u32x4 out;
        out.x = pack2(__uint_as_float(a.x) * s, __uint_as_float(a.y) * s);
        out.y = pack2(__uint_as_float(a.z) * s, __uint_as_float(a.w) * s);
        out.z = pack2(__uint_as_float(b.x) * s, __uint_as_float(b.y) * s);
        out.w = pack2(__uint_as_float(b.z) * s, __uint_as_float(b.w) * s);
        elem_t* dst = (elem_t*)p.dq + batch * p.dq_batch + head * p.dq_head + (i64)row * p.dq_row + ch * 8;
        st_global_u32x4(dst, out);
      }

      """
  }

  static func parameters(problem: AttentionProblem, dq: DeviceTensorRef, scratch: BackwardScratch) -> [UInt8] {
    var b = KernelParameterBlock()
    b.appendPointer(scratch.dqAccumulator ?? 0)
    b.appendPointer(dq.address)
    b.appendInt64(dq.strides.batch)
    b.appendInt64(dq.strides.seqlen)
    b.appendInt64(dq.strides.head)
    b.appendInt32(problem.batch)
    b.appendInt32(problem.queryHeads)
    b.appendInt32(problem.seqlenQ)
    b.appendInt32(scratch.seqlenQRounded)
    b.appendFloat(problem.scale)
    return b.finished
  }

  func launch(problem: AttentionProblem, dq: DeviceTensorRef, scratch: BackwardScratch) -> KernelLaunch {
    KernelLaunch(
      kernel: generate(), entryPoint: entryPoint,
      grid: Dim3((problem.seqlenQ + rowsPerBlock - 1) / rowsPerBlock, problem.queryHeads, problem.batch),
      block: Dim3(Self.threads), dynamicSharedMemoryBytes: 0,
      parameterBlock: Self.parameters(problem: problem, dq: dq, scratch: scratch))
  }
}
