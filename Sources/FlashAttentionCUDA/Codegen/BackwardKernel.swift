import FlashAttention

/// One variant of the FlashAttention-2 backward main kernel: dK and dV (and, in the atomic
/// mode, dQ through float32 `atomicAdd`).
///
/// A CTA owns `blockN` keys of one (kv head, batch). It walks every query block of every
/// query head of the kv head's group (so under GQA dK/dV are summed inside the CTA and written
/// once, without atomics) and per block of `blockM` queries it recomputes, transposed so that
/// each warp holds whole key rows:
///
///     Sᵀ = K·Qᵀ,  Pᵀ = exp2(Sᵀ·scale·log₂e − lse₂),  dPᵀ = V·dOᵀ,  dSᵀ = Pᵀ ∘ (dPᵀ − delta)
///     dV += Pᵀ·dO,  dK += dSᵀ·Q            (registers, A operands straight from Pᵀ/dSᵀ)
///     dQ += dS·K                           (dSᵀ through shared memory; atomic mode only)
///
/// Warps are `blockN/16` row groups × `dSplit`: with `dSplit` 2 (large head dims) the two warps
/// of a row group both compute Sᵀ/dPᵀ and each accumulate half of the dK/dV columns, which keeps
/// the accumulators in registers. Q/dO tiles are double-buffered with `cp.async` when
/// `queryStages` is 2.
public struct BackwardKernelConfig: Hashable, Sendable {
  public var dtype: KernelDType
  public var headDim: Int
  public var blockM: Int
  public var blockN: Int
  public var warps: Int
  public var dSplit: Int
  public var queryStages: Int
  public var causal: Bool
  /// Accumulate dQ with atomics (false: the deterministic mode, where a separate kernel computes dQ).
  public var atomicDQ: Bool
  public var arch: GPUArch

  public init(
    dtype: KernelDType, headDim: Int, blockM: Int, blockN: Int, warps: Int, dSplit: Int,
    queryStages: Int, causal: Bool, atomicDQ: Bool, arch: GPUArch
  ) {
    self.dtype = dtype
    self.headDim = headDim
    self.blockM = blockM
    self.blockN = blockN
    self.warps = warps
    self.dSplit = dSplit
    self.queryStages = queryStages
    self.causal = causal
    self.atomicDQ = atomicDQ
    self.arch = arch
  }

  public static func standard(
    dtype: KernelDType, headDim: Int, causal: Bool, atomicDQ: Bool, arch: GPUArch
  ) -> BackwardKernelConfig {
    switch headDim {
    case ...64:
      return .init(dtype: dtype, headDim: headDim, blockM: 128, blockN: 128, warps: 8, dSplit: 1, queryStages: 2, causal: causal, atomicDQ: atomicDQ, arch: arch)
    case ...128:
      return .init(dtype: dtype, headDim: headDim, blockM: 64, blockN: 128, warps: 8, dSplit: 1, queryStages: 2, causal: causal, atomicDQ: atomicDQ, arch: arch)
    case ...192:
      return .init(dtype: dtype, headDim: headDim, blockM: 64, blockN: 64, warps: 8, dSplit: 2, queryStages: 2, causal: causal, atomicDQ: atomicDQ, arch: arch)
    default:
      return .init(dtype: dtype, headDim: headDim, blockM: 64, blockN: 64, warps: 8, dSplit: 2, queryStages: 1, causal: causal, atomicDQ: atomicDQ, arch: arch)
    }
  }

  var threads: Int { warps * 32 }
  var sharedRow: Int { headDim + 8 }
  var sharedRowDS: Int { blockM + 8 }
  private var tileBytes: (kv: Int, q: Int, ds: Int, stats: Int) {
    (
      2 * blockN * sharedRow * 2,
      2 * queryStages * blockM * sharedRow * 2,
      atomicDQ ? blockN * sharedRowDS * 2 : 0,
      2 * queryStages * blockM * 4
    )
  }
  public var sharedMemoryBytes: Int {
    let t = tileBytes
    return t.kv + t.q + t.ds + t.stats
  }

  public var name: String {
    "flash_bwd_\(dtype.rawValue)_d\(headDim)_bm\(blockM)_bn\(blockN)_w\(warps)_ds\(dSplit)_s\(queryStages)\(causal ? "_causal" : "")\(atomicDQ ? "_atomicdq" : "_det")_\(arch.rawValue.replacingOccurrences(of: "_", with: ""))"
  }
  public var entryPoint: String { "flash_bwd_dkdv" }

  var isValid: Bool {
    let rowGroups = warps / dSplit
    let wm = min(warps, blockM / 16)
    return headDim % 16 == 0 && warps % dSplit == 0 && blockN == 16 * rowGroups
      && (headDim / dSplit) % 16 == 0 && blockM % 16 == 0 && warps % wm == 0
      && (blockM / 16) % wm == 0 && (headDim / (warps / wm)) % 16 == 0
      && (queryStages == 1 || queryStages == 2) && blockM / 2 <= threads
      && BackwardScratch.rowAlignment % blockM == 0
  }

  public func generate() -> GeneratedKernel {
    GeneratedKernel(name: name, entryPoints: [entryPoint], source: source, arch: arch)
  }

  var source: String {
    let t = tileBytes
    return CUDAPrelude.source(dtype: dtype) + """
      // ---- \(name) ----
      constexpr int D = \(headDim);
      constexpr int BM = \(blockM);
      constexpr int BN = \(blockN);
      constexpr int NW = \(warps);
      constexpr int NT = NW * 32;
      constexpr int WD = \(dSplit);           // warps sharing a 16-row group of keys
      constexpr int QS = \(queryStages);      // Q/dO buffers
      constexpr bool CAUSAL = \(causal);
      constexpr bool ATOMIC_DQ = \(atomicDQ);
      constexpr int DW = D / WD;              // dK/dV columns per warp
      constexpr int SLD = D + 8;
      constexpr int SLDS = BM + 8;            // dSᵀ row stride
      constexpr int NQ = BM / 8;              // n8 tiles of Sᵀ (queries)
      constexpr int NDW = DW / 8;
      constexpr int WM = (BM / 16 < NW) ? BM / 16 : NW;   // dQ: warps along queries
      constexpr int WDQ = NW / WM;                        // dQ: warps along head dim
      constexpr int MTQ = BM / 16 / WM;
      constexpr int DQC = D / WDQ;

      struct Params {
        u64 q, k, v, dout, lse2, delta, dq_accum, dk, dv;
        i64 q_batch, q_row, q_head;
        i64 k_batch, k_row, k_head;
        i64 v_batch, v_row, v_head;
        i64 do_batch, do_row, do_head;
        i64 dk_batch, dk_row, dk_head;
        i64 dv_batch, dv_row, dv_head;
        int batch, heads, kv_group, seqlen_q, seqlen_k, seqlen_q_rounded, num_m_blocks;
        float scale;
      };

      extern "C" __global__ void __launch_bounds__(NT, 1) \(entryPoint)(const Params p) {
        extern __shared__ __align__(16) unsigned char smem[];
        elem_t* sK = (elem_t*)smem;
        elem_t* sV = sK + BN * SLD;
        elem_t* sQ = (elem_t*)(smem + \(t.kv));                          // [QS][BM*SLD]
        elem_t* sdO = sQ + QS * BM * SLD;                                  // [QS][BM*SLD]
        elem_t* sdS = (elem_t*)(smem + \(t.kv + t.q));                   // [BN*SLDS]
        float* sLse = (float*)(smem + \(t.kv + t.q + t.ds));             // [QS][BM]
        float* sDelta = sLse + QS * BM;                                    // [QS][BM]

        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
        const int n_block = blockIdx.x, kv_head = blockIdx.y, batch = blockIdx.z;
        const int n0 = n_block * BN;
        const int seqlen_q = p.seqlen_q, seqlen_k = p.seqlen_k, diag = seqlen_k - seqlen_q;
        const int rg = warp / WD, wd = warp % WD;   // key-row group, head-dim slice
        const float scale_log2 = p.scale * FA_LOG2E;

        const elem_t* gK = (const elem_t*)p.k + batch * p.k_batch + kv_head * p.k_head;
        const elem_t* gV = (const elem_t*)p.v + batch * p.v_batch + kv_head * p.v_head;
        load_tile_async<BN, D, SLD, NT>(sK, gK, p.k_row, n0, seqlen_k, tid);
        load_tile_async<BN, D, SLD, NT>(sV, gV, p.v_row, n0, seqlen_k, tid);
        cp_async_commit();

        // Query blocks that see any of these keys: causal rows i with i + diag >= n0.
        const int m_begin = CAUSAL ? max(0, n0 - diag) / BM : 0;
        const int m_count = max(0, p.num_m_blocks - m_begin);
        const int total = p.kv_group * m_count;

        // Issues the copies of iteration `it` (query head, query block) into stage `st`.
        auto load_queries = [&](int it, int st) {
          const int h = kv_head * p.kv_group + it / m_count;
          const int m0 = (m_begin + it % m_count) * BM;
          const elem_t* gQ = (const elem_t*)p.q + batch * p.q_batch + h * p.q_head;
          const elem_t* gdO = (const elem_t*)p.dout + batch * p.do_batch + h * p.do_head;
          load_tile_async<BM, D, SLD, NT>(sQ + st * BM * SLD, gQ, p.q_row, m0, seqlen_q, tid);
          load_tile_async<BM, D, SLD, NT>(sdO + st * BM * SLD, gdO, p.do_row, m0, seqlen_q, tid);
          const i64 off = ((i64)batch * p.heads + h) * p.seqlen_q_rounded + m0;
          if (tid < BM / 4) cp_async16(smem_u32(sLse + st * BM + tid * 4), (const float*)p.lse2 + off + tid * 4, true);
          else if (tid < BM / 2) cp_async16(smem_u32(sDelta + st * BM + (tid - BM / 4) * 4), (const float*)p.delta + off + (tid - BM / 4) * 4, true);
        };

        float acc_dk[NDW][4], acc_dv[NDW][4];
        #pragma unroll
        for (int j = 0; j < NDW; ++j)
          #pragma unroll
          for (int e = 0; e < 4; ++e) { acc_dk[j][e] = 0.f; acc_dv[j][e] = 0.f; }

        const u32 sK_addr = smem_u32(sK), sV_addr = smem_u32(sV);
        const u32 sQ_addr = smem_u32(sQ), sdO_addr = smem_u32(sdO), sdS_addr = smem_u32(sdS);
        // A operand (16 key rows of K or V), B operand (query rows, non-transposed), B operand transposed.
        const u32 a_lane = (u32)(((rg * 16 + (lane & 15)) * SLD + (lane >> 4) * 8) * 2);
        const u32 b_lane = (u32)((((lane >> 4) * 8 + (lane & 7)) * SLD + ((lane >> 3) & 1) * 8) * 2);
        const u32 bt_lane = (u32)(((((lane >> 3) & 1) * 8 + (lane & 7)) * SLD + wd * DW + (lane >> 4) * 8) * 2);

        if (total > 0) { load_queries(0, 0); }
        cp_async_commit();

        for (int it = 0; it < total; ++it) {
          const int st = QS == 2 ? (it & 1) : 0;
          const int h = kv_head * p.kv_group + it / m_count;
          const int m0 = (m_begin + it % m_count) * BM;
          if (QS == 2 && it + 1 < total) {
            load_queries(it + 1, st ^ 1);
            cp_async_commit();
            cp_async_wait<1>();
          } else {
            cp_async_wait<0>();
          }
          __syncthreads();

          const u32 q_base = sQ_addr + (u32)(st * BM * SLD * 2), do_base = sdO_addr + (u32)(st * BM * SLD * 2);
          float s[NQ][4], dp[NQ][4];
          #pragma unroll
          for (int j = 0; j < NQ; ++j)
            #pragma unroll
            for (int e = 0; e < 4; ++e) { s[j][e] = 0.f; dp[j][e] = 0.f; }
          #pragma unroll
          for (int kk = 0; kk < D / 16; ++kk) {
            u32 ak[4], av[4];
            ldmatrix_x4(ak, sK_addr + a_lane + kk * 32);
            ldmatrix_x4(av, sV_addr + a_lane + kk * 32);
            #pragma unroll
            for (int np = 0; np < NQ / 2; ++np) {
              u32 bq[4], bo[4];
              ldmatrix_x4(bq, q_base + b_lane + (u32)((np * 16 * SLD + kk * 16) * 2));
              ldmatrix_x4(bo, do_base + b_lane + (u32)((np * 16 * SLD + kk * 16) * 2));
              mma16816(s[2 * np], ak, bq[0], bq[1]);
              mma16816(s[2 * np + 1], ak, bq[2], bq[3]);
              mma16816(dp[2 * np], av, bo[0], bo[1]);
              mma16816(dp[2 * np + 1], av, bo[2], bo[3]);
            }
          }

          // Pᵀ and dSᵀ. Masked: keys past seqlen_k and, near the diagonal, keys a query may not see.
          const bool need_mask = n0 + BN > seqlen_k || (CAUSAL && n0 + BN - 1 > m0 + diag);
          const float* lse_s = sLse + st * BM;
          const float* delta_s = sDelta + st * BM;
          #pragma unroll
          for (int nt = 0; nt < NQ; ++nt)
            #pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int col = nt * 8 + (lane & 3) * 2 + (e & 1);
              const int key = n0 + rg * 16 + (lane >> 2) + (e >> 1) * 8;
              float pv = fast_exp2(s[nt][e] * scale_log2 - lse_s[col]);
              if (need_mask && (key >= seqlen_k || (CAUSAL && key > m0 + col + diag))) pv = 0.f;
              s[nt][e] = pv;
              dp[nt][e] = pv * (dp[nt][e] - delta_s[col]);
            }

          // dV += Pᵀ·dO and dK += dSᵀ·Q over this warp's head-dim slice.
          #pragma unroll
          for (int kk = 0; kk < BM / 16; ++kk) {
            u32 ap[4], ads[4];
            ap[0] = pack2(s[2 * kk][0], s[2 * kk][1]);
            ap[1] = pack2(s[2 * kk][2], s[2 * kk][3]);
            ap[2] = pack2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
            ap[3] = pack2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
            ads[0] = pack2(dp[2 * kk][0], dp[2 * kk][1]);
            ads[1] = pack2(dp[2 * kk][2], dp[2 * kk][3]);
            ads[2] = pack2(dp[2 * kk + 1][0], dp[2 * kk + 1][1]);
            ads[3] = pack2(dp[2 * kk + 1][2], dp[2 * kk + 1][3]);
            if (ATOMIC_DQ && wd == 0) {
              const u32 r = (u32)(rg * 16 + (lane >> 2));
              const u32 c = (u32)(kk * 16 + (lane & 3) * 2);
              st_shared_u32(sdS_addr + ((r * SLDS + c) * 2), ads[0]);
              st_shared_u32(sdS_addr + (((r + 8) * SLDS + c) * 2), ads[1]);
              st_shared_u32(sdS_addr + ((r * SLDS + c + 8) * 2), ads[2]);
              st_shared_u32(sdS_addr + (((r + 8) * SLDS + c + 8) * 2), ads[3]);
            }
            #pragma unroll
            for (int dp2 = 0; dp2 < DW / 16; ++dp2) {
              u32 bo[4], bq[4];
              ldmatrix_x4_trans(bo, do_base + bt_lane + (u32)((kk * 16 * SLD + dp2 * 16) * 2));
              ldmatrix_x4_trans(bq, q_base + bt_lane + (u32)((kk * 16 * SLD + dp2 * 16) * 2));
              mma16816(acc_dv[2 * dp2], ap, bo[0], bo[1]);
              mma16816(acc_dv[2 * dp2 + 1], ap, bo[2], bo[3]);
              mma16816(acc_dk[2 * dp2], ads, bq[0], bq[1]);
              mma16816(acc_dk[2 * dp2 + 1], ads, bq[2], bq[3]);
            }
          }
          __syncthreads();   // dSᵀ complete; every warp is done with Q/dO of this stage
          if (QS == 1 && it + 1 < total) { load_queries(it + 1, 0); cp_async_commit(); }

          if (ATOMIC_DQ) {
            // dQ(block) = dS·K: A = dS (ldmatrix.trans of dSᵀ), B = K (ldmatrix.trans).
            const int wm = warp % WM, wq = warp / WM;
            float acc[MTQ][DQC / 8][4];
            #pragma unroll
            for (int i = 0; i < MTQ; ++i)
              #pragma unroll
              for (int j = 0; j < DQC / 8; ++j)
                #pragma unroll
                for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;
            #pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
              u32 a[MTQ][4];
              #pragma unroll
              for (int mt = 0; mt < MTQ; ++mt)
                ldmatrix_x4_trans(a[mt], sdS_addr + (u32)(((kk * 16 + (lane >> 4) * 8 + (lane & 7)) * SLDS
                                                       + (wm * MTQ + mt) * 16 + ((lane >> 3) & 1) * 8) * 2));
              #pragma unroll
              for (int dp2 = 0; dp2 < DQC / 16; ++dp2) {
                u32 b[4];
                ldmatrix_x4_trans(b, sK_addr + (u32)(((kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * SLD
                                                   + wq * DQC + dp2 * 16 + (lane >> 4) * 8) * 2));
                #pragma unroll
                for (int mt = 0; mt < MTQ; ++mt) {
                  mma16816(acc[mt][2 * dp2], a[mt], b[0], b[1]);
                  mma16816(acc[mt][2 * dp2 + 1], a[mt], b[2], b[3]);
                }
              }
            }
            float* dq = (float*)p.dq_accum + (((i64)batch * p.heads + h) * p.seqlen_q_rounded + m0) * D;
            #pragma unroll
            for (int mt = 0; mt < MTQ; ++mt)
              #pragma unroll
              for (int j = 0; j < DQC / 8; ++j)
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                  const int row = (wm * MTQ + mt) * 16 + (lane >> 2) + (e >> 1) * 8;
                  const int col = wq * DQC + j * 8 + (lane & 3) * 2 + (e & 1);
                  atomicAdd(dq + row * D + col, acc[mt][j][e]);
                }
          }
        }

        // dK·scale and dV through shared memory (over the K/V tiles) to global memory.
        cp_async_wait<0>();
        __syncthreads();
        #pragma unroll
        for (int j = 0; j < NDW; ++j)
          #pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const u32 off = (u32)(((rg * 16 + (lane >> 2) + hf * 8) * SLD + wd * DW + j * 8 + (lane & 3) * 2) * 2);
            st_shared_u32(sK_addr + off, pack2(acc_dk[j][hf * 2] * p.scale, acc_dk[j][hf * 2 + 1] * p.scale));
            st_shared_u32(sV_addr + off, pack2(acc_dv[j][hf * 2], acc_dv[j][hf * 2 + 1]));
          }
        __syncthreads();
        elem_t* gdK = (elem_t*)p.dk + batch * p.dk_batch + kv_head * p.dk_head;
        elem_t* gdV = (elem_t*)p.dv + batch * p.dv_batch + kv_head * p.dv_head;
        store_tile<BN, D, SLD, NT>(gdK, p.dk_row, sK, n0, seqlen_k, tid);
        store_tile<BN, D, SLD, NT>(gdV, p.dv_row, sV, n0, seqlen_k, tid);
      }

      """
  }

  static func parameters(
    problem: AttentionProblem, q: DeviceTensorRef, k: DeviceTensorRef, v: DeviceTensorRef,
    dOutput: DeviceTensorRef, dk: DeviceTensorRef, dv: DeviceTensorRef, scratch: BackwardScratch,
    numMBlocks: Int
  ) -> [UInt8] {
    var b = KernelParameterBlock()
    for t in [q, k, v, dOutput] { b.appendPointer(t.address) }
    b.appendPointer(scratch.lse2)
    b.appendPointer(scratch.delta)
    b.appendPointer(scratch.dqAccumulator ?? 0)
    b.appendPointer(dk.address)
    b.appendPointer(dv.address)
    for t in [q, k, v, dOutput, dk, dv] {
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
    dOutput: DeviceTensorRef, dk: DeviceTensorRef, dv: DeviceTensorRef, scratch: BackwardScratch
  ) -> KernelLaunch {
    let mBlocks = (problem.seqlenQ + blockM - 1) / blockM
    let nBlocks = (problem.seqlenK + blockN - 1) / blockN
    return KernelLaunch(
      kernel: generate(), entryPoint: entryPoint,
      grid: Dim3(nBlocks, problem.keyValueHeads, problem.batch), block: Dim3(threads),
      dynamicSharedMemoryBytes: sharedMemoryBytes,
      parameterBlock: Self.parameters(
        problem: problem, q: q, k: k, v: v, dOutput: dOutput, dk: dk, dv: dv, scratch: scratch,
        numMBlocks: mBlocks))
  }
}
