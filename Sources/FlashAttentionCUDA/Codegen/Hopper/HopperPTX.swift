/// Inline-PTX building blocks of the Hopper kernels, emitted as self-contained CUDA C++
/// (no `#include`): mbarriers, TMA loads, wgmma descriptors and instructions, `setmaxnreg`,
/// named barriers. Kept apart from the kernel body so each piece can be read on its own.
enum HopperPTX {
  /// The type suffix of wgmma for 16-bit inputs.
  static func wgmmaTypes(_ dtype: HalfType) -> String {
    dtype == .bf16 ? "f32.bf16.bf16" : "f32.f16.f16"
  }

  enum HalfType { case f16, bf16 }

  /// Common declarations: integer types, the TMA descriptor type, address conversion,
  /// barriers, TMA, descriptors, fences, exp2/log2 and packing.
  static func prelude(_ dtype: HalfType) -> String {
    let cvt = dtype == .bf16 ? "cvt.rn.bf16x2.f32" : "cvt.rn.f16x2.f32"
    // Minimax (relative error, constant term 1) fits of 2^f on [−0.5, 0.5], coefficients of
    // f, f², …; degree 3 for bf16, degree 4 for the three extra mantissa bits of f16.
    let poly = dtype == .bf16
      ? (coefficients: ["0.6932829f", "0.24221037f", "0.055008583f"], error: "1.0e-4")
      : (coefficients: ["0.6931242f", "0.24024099f", "0.05590637f", "0.0095828185f"], error: "2.9e-6")
    // Horner's rule: fmaf(fmaf(c3, f, c2), f, c1) … and last fmaf(·, f, 1.f).
    let polyHorner = (poly.coefficients.dropLast().reversed() + ["1.f"]).reduce(poly.coefficients.last!) {
      "fmaf(\($0), f, \($1))"
    }
    let polyError = poly.error
    return #"""
      typedef unsigned int u32;
      typedef unsigned long long u64;
      typedef unsigned short elem_t;

      #define DEV static __device__ __forceinline__
      #define NEG_INF (__int_as_float(0xff800000))

      // A CUtensorMap: 128 opaque bytes encoded on the host by cuTensorMapEncodeTiled.
      struct __align__(64) TmaDesc { u64 opaque[16]; };

      DEV u32 smem_u32(const void* p) {
        u32 r;
        asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
        return r;
      }

      // ---- mbarriers (shared::cta) -------------------------------------------------------
      DEV void mbar_init(u32 bar, u32 count) {
        asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory");
      }
      DEV void mbar_fence_init() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
      DEV void mbar_expect_tx(u32 bar, u32 bytes) {
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
      }
      DEV void mbar_arrive(u32 bar) {
        asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory");
      }
      DEV u32 mbar_try_wait(u32 bar, u32 parity) {
        u32 ok;
        asm volatile("{ .reg .pred p; mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2; selp.u32 %0, 1, 0, p; }"
                     : "=r"(ok) : "r"(bar), "r"(parity) : "memory");
        return ok;
      }
      // Waits for the phase of parity `parity` to complete.
      DEV void mbar_wait(u32 bar, u32 parity) { while (!mbar_try_wait(bar, parity)) { } }

      // ---- TMA: a 4-d tile (headDim, seqlen, head, batch) into shared memory --------------
      DEV void tma_load_4d(u32 dst, const void* tmap, u32 bar, int c0, int c1, int c2, int c3) {
        asm volatile(
          "cp.async.bulk.tensor.4d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%3, %4, %5, %6}], [%2];"
          :: "r"(dst), "l"(tmap), "r"(bar), "r"(c0), "r"(c1), "r"(c2), "r"(c3) : "memory");
      }
      // Shared → global: a 4-d tile out of shared memory (bulk group), and the waits on it.
      DEV void tma_store_4d(const void* tmap, u32 src, int c0, int c1, int c2, int c3) {
        asm volatile(
          "cp.async.bulk.tensor.4d.global.shared::cta.bulk_group [%0, {%2, %3, %4, %5}], [%1];"
          :: "l"(tmap), "r"(src), "r"(c0), "r"(c1), "r"(c2), "r"(c3) : "memory");
      }
      DEV void bulk_commit() { asm volatile("cp.async.bulk.commit_group;" ::: "memory"); }
      // Until every committed bulk store has finished reading its shared memory.
      DEV void bulk_wait_read0() { asm volatile("cp.async.bulk.wait_group.read 0;" ::: "memory"); }
      // Orders this thread's ordinary shared-memory writes before later async-proxy (TMA) reads.
      DEV void fence_proxy_async_shared() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }
      DEV void st_shared_u32(u32 addr, u32 v) { asm volatile("st.shared.u32 [%0], %1;" :: "r"(addr), "r"(v) : "memory"); }
      DEV void tma_prefetch_desc(const void* tmap) {
        asm volatile("prefetch.tensormap [%0];" :: "l"(tmap) : "memory");
      }

      // ---- registers and named barriers ----------------------------------------------------
      // threadIdx.x read afresh (volatile: not merged with a read before the role branch). A
      // value computed before `setmaxnreg` and used after it stays live through the other role's
      // region too; under the producer's 24 registers ptxas spilled it.
      DEV int thread_index() { u32 r; asm volatile("mov.u32 %0, %%tid.x;" : "=r"(r)); return (int)r; }
      template <int N> DEV void setmaxnreg_inc() { asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" :: "n"(N)); }
      template <int N> DEV void setmaxnreg_dec() { asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" :: "n"(N)); }
      template <int Dummy = 0> DEV void named_bar_sync(int id, int threads) { asm volatile("bar.sync %0, %1;" :: "r"(id), "r"(threads) : "memory"); }
      template <int Dummy = 0> DEV void named_bar_arrive(int id, int threads) { asm volatile("bar.arrive %0, %1;" :: "r"(id), "r"(threads) : "memory"); }

      // ---- wgmma ---------------------------------------------------------------------------
      // Shared-memory matrix descriptor with the 128-byte swizzle (layout type 1 in bits 62-63).
      // K-major operands: SBO = 1024 (8 rows of 128 B), LBO unused. MN-major operands: LBO =
      // distance between 64-element panels, SBO = 1024 (8 K-rows of 128 B).
      DEV u64 smem_desc(u32 addr, u32 lbo, u32 sbo) {
        return (u64)((addr & 0x3FFFF) >> 4) | ((u64)(lbo >> 4) << 16) | ((u64)(sbo >> 4) << 32) | (1ull << 62);
      }
      DEV void wg_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
      DEV void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
      template <int N> DEV void wg_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory"); }
      // Keeps the compiler from moving accesses of accumulator registers across wgmma points.
      template <int N> DEV void fence_regs(float (&r)[N]) {
        #pragma unroll
        for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i]) :: "memory");
      }
      template <int N> DEV void fence_regs(u32 (&r)[N]) {
        #pragma unroll
        for (int i = 0; i < N; ++i) asm volatile("" : "+r"(r[i]) :: "memory");
      }

      // ---- arithmetic ----------------------------------------------------------------------
      DEV float ex2(float x) { float y; asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
      DEV float lg2(float x) { float y; asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x)); return y; }
      // 2^x for x ≤ 0 on the FMA and integer pipes instead of the multi-function unit and its
      // 16 results per clock per SM (FlashAttention-4's trick; `polyExp`, measured slower here).
      // Adding 1.5·2^23 rounds x to the nearest integer n in the low mantissa bits; 2^(x−n),
      // with x − n in [−0.5, 0.5], is a polynomial with a constant term of exactly 1 (relative
      // error \#(polyError) against 2^−9 for a rounded bf16 and 2^−12 for an f16 P), and n
      // goes into the exponent field by an integer add. x is clamped at −127 first: a masked
      // score (−inf) then gives 1.0 · 2^−127 with a zero mantissa, exactly +0, and no x in
      // [−127, 0] gets an exponent below 0.
      DEV float ex2_poly(float x) {
        x = fmaxf(x, -127.f);
        const float shifter = 12582912.f;
        const float t = __fadd_rn(x, shifter);
        const float f = __fsub_rn(x, __fsub_rn(t, shifter));
        const float p = \#(polyHorner);
        return __int_as_float(__float_as_int(p) + (__float_as_int(t) << 23));
      }
      // Two floats to one register of two 16-bit values; `lo` lands at the lower address.
      DEV u32 pack2(float lo, float hi) {
        u32 r; asm("\#(cvt) %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo)); return r;
      }

      """#
  }

  /// `wgmma` with both operands in shared memory: D(64×n, f32) (+)= A(64×16) · B(16×n),
  /// A and B K-major (no transpose). `scale_d == 0` overwrites D. The accumulator array has
  /// `accumulators` entries (blockN/2) of which the first n/2 are written, so narrower shapes
  /// can compute a prefix of the S block.
  static func wgmmaSS(n: Int, accumulators: Int, dtype: HalfType) -> String {
    let regs = n / 2
    let dList = (0..<regs).map { "%\($0)" }.joined(separator: ", ")
    let outs = (0..<regs).map { "\"+f\"(d[\($0)])" }.joined(separator: ", ")
    return """
      DEV void wgmma_ss_n\(n)(float (&d)[\(accumulators)], u64 da, u64 db, int scale_d) {
        asm volatile(
          "{\\n.reg .pred p;\\nsetp.ne.b32 p, %\(regs + 2), 0;\\n"
          "wgmma.mma_async.sync.aligned.m64n\(n)k16.\(wgmmaTypes(dtype)) {\(dList)}, %\(regs), %\(regs + 1), p, 1, 1, 0, 0;\\n}\\n"
          : \(outs)
          : "l"(da), "l"(db), "r"(scale_d));
      }
      // D = A · B, D write-only: the old D is not an input, so its registers are free between
      // their last read and this wgmma (with "+f", S stays live across the whole loop).
      DEV void wgmma_ss_n\(n)_zero(float (&d)[\(accumulators)], u64 da, u64 db) {
        asm volatile(
          "{\\n.reg .pred p;\\nsetp.ne.b32 p, 0, 0;\\n"
          "wgmma.mma_async.sync.aligned.m64n\(n)k16.\(wgmmaTypes(dtype)) {\(dList)}, %\(regs), %\(regs + 1), p, 1, 1, 0, 0;\\n}\\n"
          : \(outs.replacingOccurrences(of: "\"+f\"", with: "\"=f\""))
          : "l"(da), "l"(db));
      }

      """
  }

  /// `wgmma` with A from registers (four 32-bit registers of 16-bit pairs per thread, the
  /// mma.sync A-fragment layout) and B from shared memory, N-major (transposed): D += A · B.
  static func wgmmaRS(n: Int, dtype: HalfType) -> String {
    let regs = n / 2
    let dList = (0..<regs).map { "%\($0)" }.joined(separator: ", ")
    let outs = (0..<regs).map { "\"+f\"(d[\($0)])" }.joined(separator: ", ")
    return """
      DEV void wgmma_rs_n\(n)(float (&d)[\(regs)], u32 a0, u32 a1, u32 a2, u32 a3, u64 db) {
        asm volatile(
          "{\\n.reg .pred p;\\nsetp.ne.b32 p, %\(regs + 5), 0;\\n"
          "wgmma.mma_async.sync.aligned.m64n\(n)k16.\(wgmmaTypes(dtype)) {\(dList)}, {%\(regs), %\(regs + 1), %\(regs + 2), %\(regs + 3)}, %\(regs + 4), p, 1, 1, 1;\\n}\\n"
          : \(outs)
          : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "l"(db), "r"(1));
      }

      """
  }
}
