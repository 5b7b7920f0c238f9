import FlashAttention

/// One variant of the FlashAttention-2 forward kernel.
///
/// A CTA computes `blockM` query rows of one (head, batch) against all the keys it may see,
/// `blockN` keys at a time: S = Q·Kᵀ and O += P·V on tensor cores (`mma.sync` m16n8k16 fed by
/// `ldmatrix`), the online softmax in registers (exp2 with the scale pre-multiplied by log₂e),
/// K and V tiles fetched with `cp.async` so that K of the next block loads while P·V of this
/// one runs and V loads while Q·Kᵀ runs. Each warp owns `blockM / warps` whole query rows, so
/// row statistics never leave a quad of lanes. O goes out through shared memory in 16-byte
/// stores; LSE is written per row.
///
/// Shared-memory rows are padded by 16 bytes, which makes every `ldmatrix` (8 rows × 16 bytes)
/// and every accumulator store conflict-free for all supported head dims.
public struct ForwardKernelConfig: Hashable, Sendable {
  public var dtype: KernelDType
  public var headDim: Int
  public var blockM: Int
  public var blockN: Int
  public var warps: Int
  public var causal: Bool
  public var arch: GPUArch
  /// CTAs per SM asked of the register allocator through `__launch_bounds__`.
  public var minBlocksPerSM: Int

  public init(
    dtype: KernelDType, headDim: Int, blockM: Int, blockN: Int, warps: Int, causal: Bool,
    arch: GPUArch, minBlocksPerSM: Int = 1
  ) {
    self.dtype = dtype
    self.headDim = headDim
    self.blockM = blockM
    self.blockN = blockN
    self.warps = warps
    self.causal = causal
    self.arch = arch
    self.minBlocksPerSM = minBlocksPerSM
  }

  /// Block sizes per head dim (FlashAttention-2's choices for Ampere/Hopper with `mma.sync`).
  public static func standard(dtype: KernelDType, headDim: Int, causal: Bool, arch: GPUArch) -> ForwardKernelConfig {
    switch headDim {
    case ...64:
      return .init(dtype: dtype, headDim: headDim, blockM: 128, blockN: 128, warps: 4, causal: causal, arch: arch, minBlocksPerSM: 1)
    case ...128:
      return .init(dtype: dtype, headDim: headDim, blockM: 128, blockN: 64, warps: 4, causal: causal, arch: arch, minBlocksPerSM: 2)
    default:
      return .init(dtype: dtype, headDim: headDim, blockM: 128, blockN: 64, warps: 8, causal: causal, arch: arch, minBlocksPerSM: 1)
    }
  }

  var threads: Int { warps * 32 }
  var rowsPerWarp: Int { blockM / warps }
  /// Padded shared-memory row, in elements.
  var sharedRow: Int { headDim + 8 }
  /// Q tile, then K and V tiles.
  public var sharedMemoryBytes: Int { (blockM + 2 * blockN) * sharedRow * 2 }

  public var name: String {
    "flash_fwd_\(dtype.rawValue)_d\(headDim)_bm\(blockM)_bn\(blockN)_w\(warps)\(causal ? "_causal" : "")_\(arch.rawValue.replacingOccurrences(of: "_", with: ""))"
  }
  public var entryPoint: String { "flash_fwd" }

  /// Whether this shape of tile can be generated (head dim a multiple of 16, whole m16 tiles per warp).
  var isValid: Bool {
    headDim % 16 == 0 && blockN % 16 == 0 && blockM % (16 * warps) == 0 && headDim <= 256
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
      constexpr int MT = BM / (16 * NW);   // m16 tiles per warp
      constexpr int SLD = D + 8;           // padded shared row (elements)
      constexpr int NS = BN / 8;           // n8 tiles of S per m16 tile
      constexpr int NO = D / 8;            // n8 tiles of O per m16 tile

      struct Params {
        u64 q, k, v, o, lse;
        i64 q_batch, q_row, q_head;
        i64 k_batch, k_row, k_head;
        i64 v_batch, v_row, v_head;
        i64 o_batch, o_row, o_head;
        int batch, heads, kv_group, seqlen_q, seqlen_k, num_m_blocks;
        float scale;
      };

      extern "C" __global__ void __launch_bounds__(NT, \(minBlocksPerSM)) \(entryPoint)(const Params p) {
        extern __shared__ __align__(16) unsigned char smem[];
        elem_t* sQ = (elem_t*)smem;
        elem_t* sK = sQ + BM * SLD;
        elem_t* sV = sK + BN * SLD;
        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
        // Causal: the grid runs (head, batch) fastest and the heaviest query blocks first.
        const int head = CAUSAL ? blockIdx.x : blockIdx.y;
        const int batch = CAUSAL ? blockIdx.y : blockIdx.z;
        const int m_block = CAUSAL ? (p.num_m_blocks - 1 - (int)blockIdx.z) : (int)blockIdx.x;
        const int kv_head = head / p.kv_group;
        const int m0 = m_block * BM;
        const int seqlen_q = p.seqlen_q, seqlen_k = p.seqlen_k;
        const elem_t* gQ = (const elem_t*)p.q + batch * p.q_batch + head * p.q_head;
        const elem_t* gK = (const elem_t*)p.k + batch * p.k_batch + kv_head * p.k_head;
        const elem_t* gV = (const elem_t*)p.v + batch * p.v_batch + kv_head * p.v_head;
        elem_t* gO = (elem_t*)p.o + batch * p.o_batch + head * p.o_head;
        float* gLse = (float*)p.lse + ((i64)batch * p.heads + head) * seqlen_q;

        // Keys this block may see: all of them, or up to the last row's causal limit
        // (bottom-right aligned: row i sees keys j <= i + seqlen_k - seqlen_q).
        const int diag = seqlen_k - seqlen_q;
        int n_blocks = (seqlen_k + BN - 1) / BN;
        if (CAUSAL) {
          const int last_row = min(m0 + BM, seqlen_q) - 1;
          const int limit = last_row + diag + 1;
          n_blocks = limit <= 0 ? 0 : min(n_blocks, (limit + BN - 1) / BN);
        }
        if (n_blocks == 0) {
          // No row of this block sees a key: O = 0, LSE = -inf.
          constexpr int CH = D / 8;
          for (int c = tid; c < BM * CH; c += NT) {
            const int row = c / CH, ch = c % CH;
            if (m0 + row < seqlen_q) {
              u32x4 z = {0u, 0u, 0u, 0u};
              st_global_u32x4(gO + (i64)(m0 + row) * p.o_row + ch * 8, z);
            }
          }
          for (int r = tid; r < BM; r += NT) if (m0 + r < seqlen_q) gLse[m0 + r] = -FA_INF;
          return;
        }

        const bool negate = p.scale < 0.f;          // scale*s == |scale|*(-s): keep max() right
        const float scale_log2 = fabsf(p.scale) * FA_LOG2E;

        load_tile_async<BM, D, SLD, NT>(sQ, gQ, p.q_row, m0, seqlen_q, tid);
        cp_async_commit();
        int n_block = n_blocks - 1;
        load_tile_async<BN, D, SLD, NT>(sK, gK, p.k_row, n_block * BN, seqlen_k, tid);
        cp_async_commit();

        float acc_o[MT][NO][4];
        zero_tiles(acc_o);
        float row_max[MT][2], row_sum[MT][2];
        #pragma unroll
        for (int i = 0; i < MT; ++i) { row_max[i][0] = row_max[i][1] = -FA_INF; row_sum[i][0] = row_sum[i][1] = 0.f; }

        const int warp_row0 = warp * (MT * 16);
        const u32 sQ_addr = smem_u32(sQ), sK_addr = smem_u32(sK), sV_addr = smem_u32(sV);
        // ldmatrix lane addresses (bytes), see the fragment layouts of mma.m16n8k16.
        const u32 q_lane = (u32)(((warp_row0 + (lane & 15)) * SLD + (lane >> 4) * 8) * 2);
        const u32 k_lane = (u32)((((lane >> 4) * 8 + (lane & 7)) * SLD + ((lane >> 3) & 1) * 8) * 2);
        const u32 v_lane = (u32)(((((lane >> 3) & 1) * 8 + (lane & 7)) * SLD + (lane >> 4) * 8) * 2);

        for (; n_block >= 0; --n_block) {
          cp_async_wait<0>();
          __syncthreads();                       // K(n) and Q landed; every warp is done with V(n+1)
          load_tile_async<BN, D, SLD, NT>(sV, gV, p.v_row, n_block * BN, seqlen_k, tid);
          cp_async_commit();

          float s[MT][NS][4];
          zero_tiles(s);
          #pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            u32 a[MT][4];
            #pragma unroll
            for (int mt = 0; mt < MT; ++mt) ldmatrix_x4(a[mt], sQ_addr + q_lane + (u32)((mt * 16 * SLD + kk * 16) * 2));
            #pragma unroll
            for (int np = 0; np < NS / 2; ++np) {
              u32 b[4];
              ldmatrix_x4(b, sK_addr + k_lane + (u32)((np * 16 * SLD + kk * 16) * 2));
              #pragma unroll
              for (int mt = 0; mt < MT; ++mt) {
                mma16816(s[mt][2 * np], a[mt], b[0], b[1]);
                mma16816(s[mt][2 * np + 1], a[mt], b[2], b[3]);
              }
            }
          }
          if (negate) {
            #pragma unroll
            for (int i = 0; i < MT; ++i)
              #pragma unroll
              for (int j = 0; j < NS; ++j)
                #pragma unroll
                for (int e = 0; e < 4; ++e) s[i][j][e] = -s[i][j][e];
          }
          // Mask key tails and, on blocks crossing the diagonal, keys above it.
          const int n0 = n_block * BN;
          if (n0 + BN > seqlen_k || (CAUSAL && n0 + BN - 1 > m0 + diag)) {
            #pragma unroll
            for (int mt = 0; mt < MT; ++mt)
              #pragma unroll
              for (int hf = 0; hf < 2; ++hf) {
                const int row = m0 + warp_row0 + mt * 16 + (lane >> 2) + hf * 8;
                const int limit = CAUSAL ? min(seqlen_k, row + diag + 1) : seqlen_k;
                #pragma unroll
                for (int nt = 0; nt < NS; ++nt)
                  #pragma unroll
                  for (int e = 0; e < 2; ++e)
                    if (n0 + nt * 8 + (lane & 3) * 2 + e >= limit) s[mt][nt][hf * 2 + e] = -FA_INF;
              }
          }

          cp_async_wait<0>();
          __syncthreads();                       // V(n) landed; every warp is done with K(n)
          if (n_block > 0) {
            load_tile_async<BN, D, SLD, NT>(sK, gK, p.k_row, (n_block - 1) * BN, seqlen_k, tid);
            cp_async_commit();
          }

          // Online softmax: new row max, rescale the running sum and O, P = exp2(s*c - m*c).
          #pragma unroll
          for (int mt = 0; mt < MT; ++mt)
            #pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
              float mx = row_max[mt][hf];
              #pragma unroll
              for (int nt = 0; nt < NS; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][hf * 2], s[mt][nt][hf * 2 + 1]));
              mx = quad_max(mx);
              // A row that has seen no key yet keeps max -inf; use 0 so that exp2 gives 0, not NaN.
              const float m_scaled = mx == -FA_INF ? 0.f : mx * scale_log2;
              const float corr = fast_exp2(row_max[mt][hf] * scale_log2 - m_scaled);
              row_max[mt][hf] = mx;
              row_sum[mt][hf] *= corr;
              #pragma unroll
              for (int j = 0; j < NO; ++j) { acc_o[mt][j][hf * 2] *= corr; acc_o[mt][j][hf * 2 + 1] *= corr; }
              float sum = 0.f;
              #pragma unroll
              for (int nt = 0; nt < NS; ++nt)
                #pragma unroll
                for (int e = 0; e < 2; ++e) {
                  const float pv = fast_exp2(s[mt][nt][hf * 2 + e] * scale_log2 - m_scaled);
                  s[mt][nt][hf * 2 + e] = pv;
                  sum += pv;
                }
              row_sum[mt][hf] += sum;
            }

          // O += P·V: P from registers (accumulator layout == A-operand layout), V through ldmatrix.trans.
          gemm_rs_nn<MT, BN, NO, SLD>(acc_o, s, sV_addr + v_lane);
        }

        // Epilogue: O /= rowsum, LSE = max*scale + ln(rowsum); rows with no key: O = 0, LSE = -inf.
        __syncthreads();                         // every warp is done reading sQ; reuse it for O
        #pragma unroll
        for (int mt = 0; mt < MT; ++mt)
          #pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const float sum = quad_sum(row_sum[mt][hf]);
            const float inv = sum > 0.f ? fast_rcp(sum) : 0.f;
            const int r = warp_row0 + mt * 16 + (lane >> 2) + hf * 8;
            if ((lane & 3) == 0 && m0 + r < seqlen_q)
              gLse[m0 + r] = sum > 0.f ? row_max[mt][hf] * (scale_log2 * FA_LN2) + fast_log2(sum) * FA_LN2 : -FA_INF;
            #pragma unroll
            for (int j = 0; j < NO; ++j)
              st_shared_u32(sQ_addr + (u32)((r * SLD + j * 8 + (lane & 3) * 2) * 2),
                            pack2(acc_o[mt][j][hf * 2] * inv, acc_o[mt][j][hf * 2 + 1] * inv));
          }
        __syncthreads();
        store_tile<BM, D, SLD, NT>(gO, p.o_row, sQ, m0, seqlen_q, tid);
      }

      """
  }

  /// Packs `struct Params` of this kernel.
  static func parameters(
    problem: AttentionProblem, q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef,
    output: DeviceTensorRef, lse: UInt64, numMBlocks: Int
  ) -> [UInt8] {
    var b = KernelParameterBlock()
    for t in [q, k, v, output] { b.appendPointer(t.address) }
    b.appendPointer(lse)
    for t in [q, k, v, output] {
      b.appendInt64(t.strides.batch)
      b.appendInt64(t.strides.seqlen)
      b.appendInt64(t.strides.head)
    }
    b.appendInt32(problem.batch)
    b.appendInt32(problem.queryHeads)
    b.appendInt32(problem.groupSize)
    b.appendInt32(problem.seqlenQ)
    b.appendInt32(problem.seqlenK)
    b.appendInt32(numMBlocks)
    b.appendFloat(problem.scale)
    return b.finished
  }

  /// The launch of this kernel on `problem`.
  func launch(
    problem: AttentionProblem, q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef,
    output: DeviceTensorRef, lse: UInt64
  ) -> KernelLaunch {
    let mBlocks = (problem.seqlenQ + blockM - 1) / blockM
    let grid = causal
      ? Dim3(problem.queryHeads, problem.batch, mBlocks)
      : Dim3(mBlocks, problem.queryHeads, problem.batch)
    return KernelLaunch(
      kernel: generate(), entryPoint: entryPoint, grid: grid, block: Dim3(threads),
      dynamicSharedMemoryBytes: sharedMemoryBytes,
      parameterBlock: Self.parameters(
        problem: problem, q: q, k: k, v: v, output: output, lse: lse, numMBlocks: mBlocks))
  }
}
