import FlashAttention

/// The FlashAttention-2 backward main kernel with a separate warp grid for each of its three
/// phases, so that every `ldmatrix` feeds at least two `mma` (the rate at which shared memory
/// keeps the tensor cores busy):
///
/// 1. Sᵀ = K·Qᵀ and dPᵀ = V·dOᵀ: each warp a `sKeys × (blockM/…)` tile; Pᵀ = exp2(Sᵀ·c − lse₂)
///    and dSᵀ = Pᵀ ∘ (dPᵀ − delta) go to shared memory in the storage dtype.
/// 2. dV += Pᵀ·dO and dK += dSᵀ·Q: each warp a `kvKeys × (headDim/…)` slice of the
///    accumulators, which stay in registers for the whole CTA.
/// 3. (atomic mode) dQ(block) = dS·K: each warp a `dqRows × (headDim/…)` tile, added to the
///    float32 accumulator with `atomicAdd`.
///
/// A CTA owns `blockN` keys of one (kv head, batch) and walks every query block of every query
/// head of the group (GQA sums stay inside the CTA: dK/dV are written once, without atomics).
/// Q/dO/LSE/delta of the next block load with `cp.async` during the current one when
/// `queryStages` is 2.
public struct BackwardKernelConfig: Hashable, Sendable {
  public var dtype: KernelDType
  public var headDim: Int
  public var blockM: Int
  public var blockN: Int
  public var warps: Int
  /// Keys per warp in phase 1, phase 2; query rows per warp in phase 3.
  public var sKeys: Int
  public var kvKeys: Int
  public var dqRows: Int
  public var queryStages: Int
  public var causal: Bool
  public var atomicDQ: Bool
  public var arch: GPUArch
  /// Floats per dQ reduction request: 2 (`red.global.add.v2.f32`) on Hopper, 1 (`atomicAdd`)
  /// before. Measured on an H200 (bf16, d 128, 2k tokens): scalar 3.20 ms, v2 2.60 ms, v4 (a
  /// quad shuffle to gather 4 adjacent columns) slower than v2 — see docs/benchmarks.md.
  public var dqReductionWidth: Int

  public init(
    dtype: KernelDType, headDim: Int, blockM: Int, blockN: Int, warps: Int, sKeys: Int, kvKeys: Int,
    dqRows: Int, queryStages: Int, causal: Bool, atomicDQ: Bool, arch: GPUArch, dqReductionWidth: Int? = nil
  ) {
    self.dqReductionWidth = dqReductionWidth ?? (arch.isHopper ? 2 : 1)
    self.dtype = dtype
    self.headDim = headDim
    self.blockM = blockM
    self.blockN = blockN
    self.warps = warps
    self.sKeys = sKeys
    self.kvKeys = kvKeys
    self.dqRows = dqRows
    self.queryStages = queryStages
    self.causal = causal
    self.atomicDQ = atomicDQ
    self.arch = arch
  }

  public static func standard(
    dtype: KernelDType, headDim: Int, causal: Bool, atomicDQ: Bool, arch: GPUArch
  ) -> BackwardKernelConfig {
    // Two Q/dO stages where they fit the arch's shared memory, else one.
    func make(_ bm: Int, _ bn: Int, _ sk: Int, _ kvk: Int, _ dqr: Int, _ stages: Int) -> BackwardKernelConfig {
      var c = BackwardKernelConfig(
        dtype: dtype, headDim: headDim, blockM: bm, blockN: bn, warps: 8, sKeys: sk, kvKeys: kvk, dqRows: dqr,
        queryStages: stages, causal: causal, atomicDQ: atomicDQ, arch: arch)
      if c.sharedMemoryBytes > arch.maxSharedMemoryPerBlock { c.queryStages = 1 }
      return c
    }
    switch headDim {
    case ...64: return make(128, 128, 32, 32, 32, 2)
    case ...96: return make(64, 128, 32, 32, 16, 2)
    case ...128: return make(64, 128, 32, 32, 64, 2)
    case ...192: return make(64, 64, 32, 32, 32, 2)
    default: return make(64, 64, 32, 32, 32, 1)
    }
  }

  var threads: Int { warps * 32 }
  var sharedRow: Int { headDim + 8 }
  var sharedRowP: Int { blockM + 8 }
  // Derived warp grids.
  var sWarpsN: Int { blockN / sKeys }
  var sWarpsM: Int { warps / max(1, sWarpsN) }
  var sQueries: Int { blockM / max(1, sWarpsM) }
  var kvWarpsN: Int { blockN / kvKeys }
  var kvWarpsD: Int { warps / max(1, kvWarpsN) }
  var kvCols: Int { headDim / max(1, kvWarpsD) }
  var dqWarpsM: Int { blockM / dqRows }
  var dqWarpsD: Int { warps / max(1, dqWarpsM) }
  var dqCols: Int { headDim / max(1, dqWarpsD) }

  private var tileBytes: (kv: Int, q: Int, p: Int, stats: Int) {
    (2 * blockN * sharedRow * 2, 2 * queryStages * blockM * sharedRow * 2, 2 * blockN * sharedRowP * 2, 2 * queryStages * blockM * 4)
  }
  public var sharedMemoryBytes: Int {
    let t = tileBytes
    return t.kv + t.q + t.p + t.stats
  }

  public var name: String {
    "flash_bwd_\(dtype.rawValue)_d\(headDim)_bm\(blockM)_bn\(blockN)_w\(warps)_g\(sKeys)x\(kvKeys)x\(dqRows)_s\(queryStages)\(causal ? "_causal" : "")\(atomicDQ ? "_atomicdq\(dqReductionWidth)" : "_det")_\(arch.rawValue.replacingOccurrences(of: "_", with: ""))"
  }
  public var entryPoint: String { "flash_bwd_dkdv" }

  var isValid: Bool {
    func divides(_ a: Int, _ b: Int) -> Bool { a > 0 && b % a == 0 }
    return headDim % 16 == 0 && sKeys % 16 == 0 && kvKeys % 16 == 0 && dqRows % 16 == 0
      && divides(sKeys, blockN) && divides(sWarpsN, warps) && sWarpsN * sWarpsM == warps && sQueries % 16 == 0
      && sQueries * sWarpsM == blockM
      && divides(kvKeys, blockN) && divides(kvWarpsN, warps) && kvCols % 16 == 0 && kvCols * kvWarpsD == headDim
      && divides(dqRows, blockM) && divides(dqWarpsM, warps) && dqCols % 16 == 0 && dqCols * dqWarpsD == headDim
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
      constexpr int QS = \(queryStages);
      constexpr bool CAUSAL = \(causal);
      constexpr bool ATOMIC_DQ = \(atomicDQ);
      constexpr int SLD = D + 8;            // K, V, Q, dO rows
      constexpr int SLDP = BM + 8;          // Pᵀ, dSᵀ rows
      // Phase 1: warps (S_WN along keys) x (S_WM along queries), tiles SN x SM.
      constexpr int SN = \(sKeys), S_WM = \(sWarpsM), SM = \(sQueries);
      constexpr int KT = SN / 16, QT = SM / 8;
      // Phase 2: warps (along keys) x (KV_WD along head dim), tiles KVN x KVD.
      constexpr int KVN = \(kvKeys), KV_WD = \(kvWarpsD), KVD = \(kvCols);
      constexpr int KVT = KVN / 16, KVDT = KVD / 8;
      // Phase 3: warps (along queries) x (DQ_WD along head dim), tiles DQM x DQD.
      constexpr int DQM = \(dqRows), DQ_WD = \(dqWarpsD), DQD = \(dqCols);
      constexpr int DQT = DQM / 16;

      // dQ partial sums go to the float32 accumulator as vector reductions on Hopper (each L2
      // atomic request carries DQ_VEC floats: with scalar atomics the atomic rate, not the tensor
      // cores, bounded this kernel), scalar atomicAdd before it.
      constexpr int DQ_VEC = \(dqReductionWidth);
      FA_DEVICE void red_add_f32x2(float* p, float a, float b) {
      \(dqReductionWidth >= 2
        ? "  asm volatile(\"red.global.add.v2.f32 [%0], {%1, %2};\" :: \"l\"(p), \"f\"(a), \"f\"(b));"
        : "  atomicAdd(p, a); atomicAdd(p + 1, b);")
      }
      FA_DEVICE void red_add_f32x4(float* p, float a, float b, float c, float d) {
      \(dqReductionWidth >= 4
        ? "  asm volatile(\"red.global.add.v4.f32 [%0], {%1, %2, %3, %4};\" :: \"l\"(p), \"f\"(a), \"f\"(b), \"f\"(c), \"f\"(d));"
        : "  red_add_f32x2(p, a, b); red_add_f32x2(p + 2, c, d);")
      }

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
        elem_t* sP = (elem_t*)(smem + \(t.kv + t.q));                    // [BN*SLDP] Pᵀ
        elem_t* sdS = sP + BN * SLDP;                                      // [BN*SLDP] dSᵀ
        float* sLse = (float*)(smem + \(t.kv + t.q + t.p));              // [QS][BM]
        float* sDelta = sLse + QS * BM;                                    // [QS][BM]

        const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
        const int n_block = blockIdx.x, kv_head = blockIdx.y, batch = blockIdx.z;
        const int n0 = n_block * BN;
        const int seqlen_q = p.seqlen_q, seqlen_k = p.seqlen_k, diag = seqlen_k - seqlen_q;
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

        // Phase 2 accumulators: keys kv_n0 + [0, KVN), head-dim columns kv_d0 + [0, KVD).
        const int kv_n0 = (warp / KV_WD) * KVN, kv_d0 = (warp % KV_WD) * KVD;
        float acc_dk[KVT][KVDT][4], acc_dv[KVT][KVDT][4];
        zero_tiles(acc_dk);
        zero_tiles(acc_dv);

        const u32 sK_addr = smem_u32(sK), sV_addr = smem_u32(sV), sQ_addr = smem_u32(sQ), sdO_addr = smem_u32(sdO);
        const u32 sP_addr = smem_u32(sP), sdS_addr = smem_u32(sdS);
        // Phase 1 tile origin.
        const int s_n0 = (warp / S_WM) * SN, s_m0 = (warp % S_WM) * SM;
        const u32 a1_lane = (u32)(((s_n0 + (lane & 15)) * SLD + (lane >> 4) * 8) * 2);
        const u32 b1_lane = (u32)(((s_m0 + (lane >> 4) * 8 + (lane & 7)) * SLD + ((lane >> 3) & 1) * 8) * 2);
        // Phase 2: A = Pᵀ/dSᵀ rows (keys), B = dO/Q transposed.
        const u32 a2_lane = (u32)(((kv_n0 + (lane & 15)) * SLDP + (lane >> 4) * 8) * 2);
        const u32 b2_lane = (u32)(((((lane >> 3) & 1) * 8 + (lane & 7)) * SLD + kv_d0 + (lane >> 4) * 8) * 2);
        // Phase 3: A = dS (transposed dSᵀ), B = K transposed.
        const int dq_m0 = (warp / DQ_WD) * DQM, dq_d0 = (warp % DQ_WD) * DQD;
        const u32 a3_lane = (u32)((((lane >> 4) * 8 + (lane & 7)) * SLDP + dq_m0 + ((lane >> 3) & 1) * 8) * 2);
        const u32 b3_lane = (u32)(((((lane >> 3) & 1) * 8 + (lane & 7)) * SLD + dq_d0 + (lane >> 4) * 8) * 2);

        if (total > 0) { load_queries(0, 0); }
        cp_async_commit();

        for (int it = 0; it < total; ++it) {
          const int st = QS == 2 ? (it & 1) : 0;
          const int h = kv_head * p.kv_group + it / m_count;
          const int m0 = (m_begin + it % m_count) * BM;
          if (QS == 2 && it + 1 < total) {
            load_queries(it + 1, st ^ 1);      // that stage was last read before the previous phase-2 barrier
            cp_async_commit();
            cp_async_wait<1>();
          } else {
            cp_async_wait<0>();
          }
          __syncthreads();                     // (A) this stage landed; Pᵀ/dSᵀ of the last block are consumed

          const u32 q_base = sQ_addr + (u32)(st * BM * SLD * 2), do_base = sdO_addr + (u32)(st * BM * SLD * 2);
          // ---- phase 1 ----
          {
            float s[KT][QT][4], dp[KT][QT][4];
            dual_gemm_nt<KT, QT, D, SLD>(s, dp, sK_addr + a1_lane, sV_addr + a1_lane, q_base + b1_lane, do_base + b1_lane);
            const bool need_mask = n0 + BN > seqlen_k || (CAUSAL && n0 + BN - 1 > m0 + diag);
            const float* lse_s = sLse + st * BM;
            const float* delta_s = sDelta + st * BM;
            #pragma unroll
            for (int nt = 0; nt < QT; ++nt) {
              const int col = s_m0 + nt * 8 + (lane & 3) * 2;
              const float l0 = lse_s[col], l1 = lse_s[col + 1];
              const float d0 = delta_s[col], d1 = delta_s[col + 1];
              #pragma unroll
              for (int kt = 0; kt < KT; ++kt) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                  const int key = n0 + s_n0 + kt * 16 + (lane >> 2) + (e >> 1) * 8;
                  float pv = fast_exp2(s[kt][nt][e] * scale_log2 - ((e & 1) ? l1 : l0));
                  if (need_mask && (key >= seqlen_k || (CAUSAL && key > m0 + col + (e & 1) + diag))) pv = 0.f;
                  s[kt][nt][e] = pv;
                  dp[kt][nt][e] = pv * (dp[kt][nt][e] - ((e & 1) ? d1 : d0));
                }
                const u32 r = (u32)(s_n0 + kt * 16 + (lane >> 2));
                st_shared_u32(sP_addr + ((r * SLDP + col) * 2), pack2(s[kt][nt][0], s[kt][nt][1]));
                st_shared_u32(sP_addr + (((r + 8) * SLDP + col) * 2), pack2(s[kt][nt][2], s[kt][nt][3]));
                st_shared_u32(sdS_addr + ((r * SLDP + col) * 2), pack2(dp[kt][nt][0], dp[kt][nt][1]));
                st_shared_u32(sdS_addr + (((r + 8) * SLDP + col) * 2), pack2(dp[kt][nt][2], dp[kt][nt][3]));
              }
            }
          }
          __syncthreads();                     // (B) Pᵀ and dSᵀ complete

          // ---- phase 2: dV += Pᵀ·dO, dK += dSᵀ·Q ----
          #pragma unroll
          for (int kk = 0; kk < BM / 16; ++kk) {
            u32 ap[KVT][4], ads[KVT][4];
            #pragma unroll
            for (int kt = 0; kt < KVT; ++kt) {
              ldmatrix_x4(ap[kt], sP_addr + a2_lane + (u32)((kt * 16 * SLDP + kk * 16) * 2));
              ldmatrix_x4(ads[kt], sdS_addr + a2_lane + (u32)((kt * 16 * SLDP + kk * 16) * 2));
            }
            #pragma unroll
            for (int dp2 = 0; dp2 < KVD / 16; ++dp2) {
              u32 bo[4], bq[4];
              ldmatrix_x4_trans(bo, do_base + b2_lane + (u32)((kk * 16 * SLD + dp2 * 16) * 2));
              ldmatrix_x4_trans(bq, q_base + b2_lane + (u32)((kk * 16 * SLD + dp2 * 16) * 2));
              #pragma unroll
              for (int kt = 0; kt < KVT; ++kt) {
                mma16816(acc_dv[kt][2 * dp2], ap[kt], bo[0], bo[1]);
                mma16816(acc_dv[kt][2 * dp2 + 1], ap[kt], bo[2], bo[3]);
                mma16816(acc_dk[kt][2 * dp2], ads[kt], bq[0], bq[1]);
                mma16816(acc_dk[kt][2 * dp2 + 1], ads[kt], bq[2], bq[3]);
              }
            }
          }
          __syncthreads();                     // (C) every warp is done with this Q/dO stage
          if (QS == 1 && it + 1 < total) { load_queries(it + 1, 0); cp_async_commit(); }

          // ---- phase 3: dQ(block) += dS·K through float32 atomics ----
          if (ATOMIC_DQ) {
            float acc[DQT][DQD / 8][4];
            zero_tiles(acc);
            #pragma unroll
            for (int kk = 0; kk < BN / 16; ++kk) {
              u32 a[DQT][4];
              #pragma unroll
              for (int mt = 0; mt < DQT; ++mt)
                ldmatrix_x4_trans(a[mt], sdS_addr + a3_lane + (u32)((kk * 16 * SLDP + mt * 16) * 2));
              #pragma unroll
              for (int dp2 = 0; dp2 < DQD / 16; ++dp2) {
                u32 b[4];
                ldmatrix_x4_trans(b, sK_addr + b3_lane + (u32)((kk * 16 * SLD + dp2 * 16) * 2));
                #pragma unroll
                for (int mt = 0; mt < DQT; ++mt) {
                  mma16816(acc[mt][2 * dp2], a[mt], b[0], b[1]);
                  mma16816(acc[mt][2 * dp2 + 1], a[mt], b[2], b[3]);
                }
              }
            }
            float* dq = (float*)p.dq_accum + (((i64)batch * p.heads + h) * p.seqlen_q_rounded + m0) * D;
            if (DQ_VEC == 4) {
              // Lanes t and t^1 of a quad swap halves so that each holds 4 adjacent columns of one
              // row: the even lane row g, the odd lane row g + 8.
              const bool odd = lane & 1;
              float* dq_lane = dq + (dq_m0 + (lane >> 2) + (odd ? 8 : 0)) * D + dq_d0 + ((lane & 3) & ~1) * 2;
              #pragma unroll
              for (int mt = 0; mt < DQT; ++mt)
                #pragma unroll
                for (int j = 0; j < DQD / 8; ++j) {
                  const float c0 = acc[mt][j][0], c1 = acc[mt][j][1], c2 = acc[mt][j][2], c3 = acc[mt][j][3];
                  const float r0 = __shfl_xor_sync(0xffffffffu, odd ? c0 : c2, 1);
                  const float r1 = __shfl_xor_sync(0xffffffffu, odd ? c1 : c3, 1);
                  red_add_f32x4(dq_lane + mt * 16 * D + j * 8, odd ? r0 : c0, odd ? r1 : c1, odd ? c2 : r0, odd ? c3 : r1);
                }
            } else {
              float* dq_lane = dq + (dq_m0 + (lane >> 2)) * D + dq_d0 + (lane & 3) * 2;
              #pragma unroll
              for (int mt = 0; mt < DQT; ++mt)
                #pragma unroll
                for (int j = 0; j < DQD / 8; ++j)
                  #pragma unroll
                  for (int hf = 0; hf < 2; ++hf)
                    red_add_f32x2(dq_lane + (mt * 16 + hf * 8) * D + j * 8, acc[mt][j][hf * 2], acc[mt][j][hf * 2 + 1]);
            }
          }
        }

        // dK·scale and dV through shared memory (over the K/V tiles) to global memory.
        cp_async_wait<0>();
        __syncthreads();
        #pragma unroll
        for (int kt = 0; kt < KVT; ++kt)
          #pragma unroll
          for (int j = 0; j < KVDT; ++j)
            #pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
              const u32 off = (u32)(((kv_n0 + kt * 16 + (lane >> 2) + hf * 8) * SLD + kv_d0 + j * 8 + (lane & 3) * 2) * 2);
              st_shared_u32(sK_addr + off, pack2(acc_dk[kt][j][hf * 2] * p.scale, acc_dk[kt][j][hf * 2 + 1] * p.scale));
              st_shared_u32(sV_addr + off, pack2(acc_dv[kt][j][hf * 2], acc_dv[kt][j][hf * 2 + 1]));
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
