import FlashAttention

/// The first kernel of the backward: per query row, `delta = rowsum(dO ∘ O)` and the LSE
/// in base 2 (`lse · log₂e`, with −∞ rows turned into +∞ so that P = exp2(s − lse) is 0
/// there instead of ∞); optionally zeroes the float32 dQ accumulator.
///
/// Both per-row arrays live in scratch as `(batch, heads, seqlenQRounded)` floats; the rows
/// past `seqlenQ` are padding (delta 0, LSE +∞) so the main kernels read whole blocks without
/// bounds checks. A CTA of 4 warps covers 64 rows; each warp reduces one row at a time, one
/// 16-byte chunk of the row per lane.
struct BackwardPreprocessKernelConfig: Hashable, Sendable {
  var dtype: KernelDType
  var headDim: Int
  var arch: GPUArch

  static let rowsPerBlock = 64
  static let threads = 128

  var name: String { "flash_bwd_pre_\(dtype.rawValue)_d\(headDim)_\(arch.rawValue.replacingOccurrences(of: "_", with: ""))" }
  var entryPoint: String { "flash_bwd_preprocess" }

  func generate() -> GeneratedKernel {
    GeneratedKernel(name: name, entryPoints: [entryPoint], source: source, arch: arch)
  }

  var source: String {
    CUDAPrelude.source(dtype: dtype) + """
      // ---- \(name) ----
      constexpr int D = \(headDim);
      constexpr int ROWS = \(Self.rowsPerBlock);
      constexpr int NT = \(Self.threads);
      constexpr int CH = D / 8;      // 16-byte chunks per row (<= 32)

      struct Params {
        u64 o, dout, lse, lse2, delta, dq_accum;
        i64 o_batch, o_row, o_head;
        i64 do_batch, do_row, do_head;
        int batch, heads, seqlen_q, seqlen_q_rounded, zero_dq;
      };

      extern "C" __global__ void __launch_bounds__(NT) \(entryPoint)(const Params p) {
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
        const int head = blockIdx.y, batch = blockIdx.z;
        const int r0 = blockIdx.x * ROWS;
        const elem_t* gO = (const elem_t*)p.o + batch * p.o_batch + head * p.o_head;
        const elem_t* gdO = (const elem_t*)p.dout + batch * p.do_batch + head * p.do_head;
        const i64 bh = (i64)batch * p.heads + head;
        const float* lse = (const float*)p.lse + bh * p.seqlen_q;
        float* lse2 = (float*)p.lse2 + bh * p.seqlen_q_rounded;
        float* delta = (float*)p.delta + bh * p.seqlen_q_rounded;

        for (int r = warp; r < ROWS; r += NT / 32) {
          const int row = r0 + r;
          float acc = 0.f;
          if (row < p.seqlen_q && lane < CH) {
            u32x4 o = ld_global_u32x4(gO + (i64)row * p.o_row + lane * 8);
            u32x4 d = ld_global_u32x4(gdO + (i64)row * p.do_row + lane * 8);
            acc = lo_float(o.x) * lo_float(d.x) + hi_float(o.x) * hi_float(d.x)
                + lo_float(o.y) * lo_float(d.y) + hi_float(o.y) * hi_float(d.y)
                + lo_float(o.z) * lo_float(d.z) + hi_float(o.z) * hi_float(d.z)
                + lo_float(o.w) * lo_float(d.w) + hi_float(o.w) * hi_float(d.w);
          }
          #pragma unroll
          for (int off = 16; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
          if (lane == 0 && row < p.seqlen_q_rounded) {
            float l = row < p.seqlen_q ? lse[row] : -FA_INF;
            lse2[row] = l == -FA_INF ? FA_INF : l * FA_LOG2E;
            delta[row] = acc;
          }
        }
        if (p.zero_dq) {
          float* dq = (float*)p.dq_accum + (bh * p.seqlen_q_rounded + r0) * D;
          const int rows = min(ROWS, p.seqlen_q_rounded - r0);
          u32x4 z = {0u, 0u, 0u, 0u};
          for (int c = tid; c < rows * D / 4; c += NT) st_global_u32x4(dq + c * 4, z);
        }
      }

      """
  }

  static func parameters(
    problem: AttentionProblem, output: DeviceTensorRef, dOutput: DeviceTensorRef, lse: UInt64,
    scratch: BackwardScratch
  ) -> [UInt8] {
    var b = KernelParameterBlock()
    b.appendPointer(output.address)
    b.appendPointer(dOutput.address)
    b.appendPointer(lse)
    b.appendPointer(scratch.lse2)
    b.appendPointer(scratch.delta)
    b.appendPointer(scratch.dqAccumulator ?? 0)
    for t in [output, dOutput] {
      b.appendInt64(t.strides.batch)
      b.appendInt64(t.strides.seqlen)
      b.appendInt64(t.strides.head)
    }
    b.appendInt32(problem.batch)
    b.appendInt32(problem.queryHeads)
    b.appendInt32(problem.seqlenQ)
    b.appendInt32(scratch.seqlenQRounded)
    b.appendInt32(scratch.dqAccumulator == nil ? 0 : 1)
    return b.finished
  }

  func launch(
    problem: AttentionProblem, output: DeviceTensorRef, dOutput: DeviceTensorRef, lse: UInt64,
    scratch: BackwardScratch
  ) -> KernelLaunch {
    KernelLaunch(
      kernel: generate(), entryPoint: entryPoint,
      grid: Dim3(scratch.seqlenQRounded / Self.rowsPerBlock, problem.queryHeads, problem.batch),
      block: Dim3(Self.threads), dynamicSharedMemoryBytes: 0,
      parameterBlock: Self.parameters(
        problem: problem, output: output, dOutput: dOutput, lse: lse, scratch: scratch))
  }
}

/// Where the backward's scratch buffers lie inside the caller's scratch allocation.
struct BackwardScratch: Hashable, Sendable {
  /// Query rows rounded up to a multiple of every backward block size (128).
  var seqlenQRounded: Int
  var lse2: UInt64
  var delta: UInt64
  /// float32 `(batch, heads, seqlenQRounded, headDim)`, present in the atomic (non-deterministic) mode.
  var dqAccumulator: UInt64?

  static let rowAlignment = 128

  static func rounded(_ seqlenQ: Int) -> Int { (seqlenQ + rowAlignment - 1) / rowAlignment * rowAlignment }

  /// Bytes of scratch the backward needs.
  static func bytes(problem: AttentionProblem, deterministic: Bool) -> Int {
    let rows = problem.batch * problem.queryHeads * rounded(problem.seqlenQ)
    return 2 * rows * 4 + (deterministic ? 0 : rows * problem.headDim * 4)
  }

  init(problem: AttentionProblem, base: UInt64, deterministic: Bool) {
    seqlenQRounded = Self.rounded(problem.seqlenQ)
    let rows = UInt64(problem.batch * problem.queryHeads * seqlenQRounded)
    lse2 = base
    delta = base + rows * 4
    dqAccumulator = deterministic ? nil : base + 2 * rows * 4
  }
}
