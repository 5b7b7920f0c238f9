import FlashAttention

/// dQ of the deterministic backward, without atomics: one CTA per (query block, query head,
/// batch) walks the keys it may see, recomputes S = Q·Kᵀ and dP = dO·Vᵀ, forms
/// dS = P ∘ (dP − delta) and accumulates dQ += dS·K in registers, then writes dQ·scale in the
/// output dtype. It repeats two of the main kernel's products, the price of a result that does
/// not depend on the order in which CTAs finish.
///
/// K and V tiles are double-buffered (`cp.async` of block n−1 runs during block n's products).
public struct BackwardDQKernelConfig: Hashable, Sendable {
  public var dtype: KernelDType
  public var headDim: Int
  public var blockM: Int
  public var blockN: Int
  public var warps: Int
  public var causal: Bool
  public var arch: GPUArch

  public init(dtype: KernelDType, headDim: Int, blockM: Int, blockN: Int, warps: Int, causal: Bool, arch: GPUArch) {
    self.dtype = dtype
    self.headDim = headDim
    self.blockM = blockM
    self.blockN = blockN
    self.warps = warps
    self.causal = causal
    self.arch = arch
  }

  public static func standard(dtype: KernelDType, headDim: Int, causal: Bool, arch: GPUArch) -> BackwardDQKernelConfig {
    .init(dtype: dtype, headDim: headDim, blockM: 64, blockN: headDim > 128 ? 32 : 64, warps: 4, causal: causal, arch: arch)
  }

  var threads: Int { warps * 32 }
  var sharedRow: Int { headDim + 8 }
  /// Q and dO, then two stages of K and V.
  public var sharedMemoryBytes: Int { (2 * blockM + 4 * blockN) * sharedRow * 2 }

  public var name: String {
    "flash_bwd_dq_\(dtype.rawValue)_d\(headDim)_bm\(blockM)_bn\(blockN)_w\(warps)\(causal ? "_causal" : "")_\(arch.rawValue.replacingOccurrences(of: "_", with: ""))"
  }
  public var entryPoint: String { "flash_bwd_dq" }

  var isValid: Bool {
    headDim % 16 == 0 && blockN % 16 == 0 && blockM % (16 * warps) == 0
      && BackwardScratch.rowAlignment % blockM == 0
  }

  public func generate() -> GeneratedKernel {
    GeneratedKernel(name: name, entryPoints: [entryPoint], source: source, arch: arch)
  }

  var source: String {
    CUDAPrelude.source(dtype: dtype) + """
      // ---- \(name) ----
      constexpr int D = \(headDim);
      constexpr int BM = \(blockM);
      constexpr int BN = \(blockN);
      constexpr int NW = \(warps);
      constexpr int NT = NW * 32;
      constexpr bool CAUSAL = \(causal);
      constexpr int MT = BM / (16 * NW);
      constexpr int SLD = D + 8;
      constexpr int NS = BN / 8;
      constexpr int NO = D / 8;

      struct Params {
        u64 q, k, v, dout, lse2, delta, dq;
        i64 q_batch, q_row, q_head;
        i64 k_batch, k_row, k_head;
        i64 v_batch, v_row, v_head;
        i64 do_batch, do_row, do_head;
        i64 dq_batch, dq_row, dq_head;
        int batch, heads, kv_group, seqlen_q, seqlen_k, seqlen_q_rounded, num_m_blocks;
        float scale;
      };

      extern "C" __global__ void __launch_bounds__(NT, 2) \(entryPoint)(const Params p) {
        extern __shared__ __align__(16) unsigned char smem[];
        elem_t* sQ = (elem_t*)smem;
        elem_t* sdO = sQ + BM * SLD;
        elem_t* sK = sdO + BM * SLD;     // [2][BN*SLD]
        elem_t* sV = sK + 2 * BN * SLD;  // [2][BN*SLD]
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
        const int head = CAUSAL ? blockIdx.x : blockIdx.y;
        const int batch = CAUSAL ? blockIdx.y : blockIdx.z;
        const int m_block = CAUSAL ? (p.num_m_blocks - 1 - (int)blockIdx.z) : (int)blockIdx.x;
        const int kv_head = head / p.kv_group;
        const int m0 = m_block * BM;
        const int seqlen_q = p.seqlen_q, seqlen_k = p.seqlen_k, diag = seqlen_k - seqlen_q;
        const float scale_log2 = p.scale * FA_LOG2E;
        const elem_t* gQ = (const elem_t*)p.q + batch * p.q_batch + head * p.q_head;
        const elem_t* gdO = (const elem_t*)p.dout + batch * p.do_batch + head * p.do_head;
        const elem_t* gK = (const elem_t*)p.k + batch * p.k_batch + kv_head * p.k_head;
        const elem_t* gV = (const elem_t*)p.v + batch * p.v_batch + kv_head * p.v_head;
        elem_t* gdQ = (elem_t*)p.dq + batch * p.dq_batch + head * p.dq_head;

        int n_blocks = (seqlen_k + BN - 1) / BN;
        if (CAUSAL) {
          const int limit = min(m0 + BM, seqlen_q) - 1 + diag + 1;
          n_blocks = limit <= 0 ? 0 : min(n_blocks, (limit + BN - 1) / BN);
        }

        const int warp_row0 = warp * MT * 16;
        float lse2[MT][2], delta[MT][2];
        const i64 stat = ((i64)batch * p.heads + head) * p.seqlen_q_rounded + m0;
        #pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          #pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const int r = warp_row0 + mt * 16 + (lane >> 2) + hf * 8;
            lse2[mt][hf] = ((const float*)p.lse2)[stat + r];
            delta[mt][hf] = ((const float*)p.delta)[stat + r];
          }

        float acc[MT][NO][4];
        zero_tiles(acc);

        if (n_blocks > 0) {
          load_tile_async<BM, D, SLD, NT>(sQ, gQ, p.q_row, m0, seqlen_q, tid);
          load_tile_async<BM, D, SLD, NT>(sdO, gdO, p.do_row, m0, seqlen_q, tid);
          load_tile_async<BN, D, SLD, NT>(sK, gK, p.k_row, (n_blocks - 1) * BN, seqlen_k, tid);
          load_tile_async<BN, D, SLD, NT>(sV, gV, p.v_row, (n_blocks - 1) * BN, seqlen_k, tid);
        }
        cp_async_commit();

        const u32 sQ_addr = smem_u32(sQ), sdO_addr = smem_u32(sdO);
        const u32 a_lane = (u32)(((warp_row0 + (lane & 15)) * SLD + (lane >> 4) * 8) * 2);
        const u32 b_lane = (u32)((((lane >> 4) * 8 + (lane & 7)) * SLD + ((lane >> 3) & 1) * 8) * 2);
        const u32 bt_lane = (u32)(((((lane >> 3) & 1) * 8 + (lane & 7)) * SLD + (lane >> 4) * 8) * 2);

        for (int i = 0; i < n_blocks; ++i) {
          const int n_block = n_blocks - 1 - i;
          const int buf = i & 1;
          if (n_block > 0) {
            load_tile_async<BN, D, SLD, NT>(sK + (buf ^ 1) * BN * SLD, gK, p.k_row, (n_block - 1) * BN, seqlen_k, tid);
            load_tile_async<BN, D, SLD, NT>(sV + (buf ^ 1) * BN * SLD, gV, p.v_row, (n_block - 1) * BN, seqlen_k, tid);
            cp_async_commit();
            cp_async_wait<1>();
          } else {
            cp_async_wait<0>();
          }
          __syncthreads();
          const u32 k_base = smem_u32(sK + buf * BN * SLD), v_base = smem_u32(sV + buf * BN * SLD);

          float s[MT][NS][4], dp[MT][NS][4];
          dual_gemm_nt<MT, NS, D, SLD>(s, dp, sQ_addr + a_lane, sdO_addr + a_lane, k_base + b_lane, v_base + b_lane);
          const int n0 = n_block * BN;
          const bool need_mask = n0 + BN > seqlen_k || (CAUSAL && n0 + BN - 1 > m0 + diag);
          #pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            #pragma unroll
            for (int nt = 0; nt < NS; ++nt)
              #pragma unroll
              for (int e = 0; e < 4; ++e) {
                const int row = m0 + warp_row0 + mt * 16 + (lane >> 2) + (e >> 1) * 8;
                const int key = n0 + nt * 8 + (lane & 3) * 2 + (e & 1);
                float pv = fast_exp2(s[mt][nt][e] * scale_log2 - lse2[mt][e >> 1]);
                if (need_mask && (key >= seqlen_k || (CAUSAL && key > row + diag))) pv = 0.f;
                dp[mt][nt][e] = pv * (dp[mt][nt][e] - delta[mt][e >> 1]);
              }
          // dQ += dS·K: dS from registers, K through ldmatrix.trans.
          gemm_rs_nn<MT, BN, NO, SLD>(acc, dp, k_base + bt_lane);
          __syncthreads();   // every warp is done with this K/V stage before it is refilled
        }

        // dQ·scale through shared memory (over the Q tile) to global memory.
        cp_async_wait<0>();
        __syncthreads();
        #pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          #pragma unroll
          for (int j = 0; j < NO; ++j)
            #pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
              const int r = warp_row0 + mt * 16 + (lane >> 2) + hf * 8;
              st_shared_u32(sQ_addr + (u32)((r * SLD + j * 8 + (lane & 3) * 2) * 2),
                            pack2(acc[mt][j][hf * 2] * p.scale, acc[mt][j][hf * 2 + 1] * p.scale));
            }
        __syncthreads();
        store_tile<BM, D, SLD, NT>(gdQ, p.dq_row, sQ, m0, seqlen_q, tid);
      }

      """
  }

  static func parameters(
    problem: AttentionProblem, q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef,
    dOutput: DeviceTensorRef, dq: DeviceTensorRef, scratch: BackwardScratch, numMBlocks: Int
  ) -> [UInt8] {
    var b = KernelParameterBlock()
    for t in [q, k, v, dOutput] { b.appendPointer(t.address) }
    b.appendPointer(scratch.lse2)
    b.appendPointer(scratch.delta)
    b.appendPointer(dq.address)
    for t in [q, k, v, dOutput, dq] {
      b.appendInt64(t.strides.batch)
      b.appendInt64(t.strides.seqlen)
      b.appendInt64(t.strides.head)
    }
    b.appendInt32(problem.batch)
    b.appendInt32(problem.queryHeads)
    b.appendInt32(problem.groupSize)
    b.appendInt32(problem.seqlenQ)
    b.appendInt32(problem.seqlenK)
    b.appendInt32(scratch.seqlenQRounded)
    b.appendInt32(numMBlocks)
    b.appendFloat(problem.scale)
    return b.finished
  }

  func launch(
    problem: AttentionProblem, q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef,
    dOutput: DeviceTensorRef, dq: DeviceTensorRef, scratch: BackwardScratch
  ) -> KernelLaunch {
    let mBlocks = (problem.seqlenQ + blockM - 1) / blockM
    let grid = causal
      ? Dim3(problem.queryHeads, problem.batch, mBlocks)
      : Dim3(mBlocks, problem.queryHeads, problem.batch)
    return KernelLaunch(
      kernel: generate(), entryPoint: entryPoint, grid: grid, block: Dim3(threads),
      dynamicSharedMemoryBytes: sharedMemoryBytes,
      parameterBlock: Self.parameters(
        problem: problem, q: q, k: k, v: v, dOutput: dOutput, dq: dq, scratch: scratch,
        numMBlocks: mBlocks))
  }
}
