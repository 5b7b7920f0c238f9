// The kernels, written once with Clang vector extensions and compiled once per instruction
// set: the including file sets the target (with `#pragma clang attribute`) and defines
//   FA_VL  floats per vector (16 AVX-512, 8 AVX2, 4 SSE/NEON),
//   FA_MR  rows of the register tile, FA_NV vectors per tile row (FA_MR × FA_NV accumulators),
//   FA_NS(name)  the name with the instruction set's suffix,
//   FA_HAS_F16_VECTOR  1 when the target converts binary16 in hardware (F16C, NEON).
// Multiply-adds are written `acc += a * b`; Clang contracts them into FMA instructions where the
// target has them (-ffp-contract=on is its default for C).

#include <string.h>
#include "CFlashAttentionKernels.h"
#include "kernels_table.h"

typedef float FA_NS(vf) __attribute__((vector_size(FA_VL * 4)));
typedef int32_t FA_NS(vi) __attribute__((vector_size(FA_VL * 4)));
#define VF FA_NS(vf)
#define VI FA_NS(vi)

static inline __attribute__((always_inline)) VF FA_NS(load)(const float *p) {
  VF v;
  memcpy(&v, p, sizeof v);
  return v;
}
static inline __attribute__((always_inline)) void FA_NS(store)(float *p, VF v) { memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) VF FA_NS(splat)(float x) {
  // Not `(VF){0} + x`: 0 + x is not x for x = −0, so the compiler must keep an add there.
  VF v;
  for (int i = 0; i < FA_VL; i++) v[i] = x;
  return v;
}
static inline __attribute__((always_inline)) VF FA_NS(select)(VI mask, VF a, VF b) {
  return (VF)(((VI)a & mask) | ((VI)b & ~mask));
}
static inline __attribute__((always_inline)) VF FA_NS(vmax)(VF a, VF b) { return FA_NS(select)(a > b, a, b); }
static inline __attribute__((always_inline)) VF FA_NS(vmin)(VF a, VF b) { return FA_NS(select)(a < b, a, b); }
#define LD FA_NS(load)
#define ST FA_NS(store)
#define SPLAT FA_NS(splat)

/// exp(x) to about 1 ulp (Cephes' expf polynomial) for x ≤ 88; exactly 0 below −87.3 (so
/// exp(−∞) = 0, which the masks rely on).
static inline __attribute__((always_inline)) VF FA_NS(vexp)(VF x) {
  VI under = x < -87.33654f;
  x = FA_NS(vmax)(FA_NS(vmin)(x, SPLAT(88.0f)), SPLAT(-87.33654f));
  VF t = x * 1.44269504088896341f + 12582912.0f;  // round(x·log2 e) in the low mantissa bits
  VF n = t - 12582912.0f;
  VF r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  VF p = SPLAT(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  VF y = p * (r * r) + r + 1.0f;
  VI e = ((VI)t - 0x4B400000) << 23;
  y = (VF)((VI)y + e);
  return (VF)((VI)y & ~under);
}

// MARK: GEMM

enum { FA_NS(KC) = 256 };

/// One register tile: C[mr × nv·VL] (+)= A[mr × k] · B[k × nv·VL], with A[i, p] at
/// `a[i·ars + p·acs]`. Called with constant mr and nv, so the accumulators live in registers;
/// the broadcasts of A read it in place (no packing): with `ars` = 1 (a transposed tile such as
/// Pᵀ) the mr values of one step are adjacent, with `acs` = 1 each row is walked linearly.
static inline __attribute__((always_inline)) void FA_NS(tile)(
    const int mr, const int nv, int k, const float *a, long ars, long acs, const float *b, long ldb, float *c,
    long ldc, int accumulate, const float *row_scale) {
  VF acc[FA_MR][FA_NV];
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) acc[i][v] = accumulate ? LD(c + i * ldc + v * FA_VL) : SPLAT(0);
  if (row_scale)
    for (int i = 0; i < mr; i++)
      for (int v = 0; v < nv; v++) acc[i][v] *= row_scale[i];
  const float *rows[FA_MR];
  for (int i = 0; i < mr; i++) rows[i] = a + i * ars;
  for (int p = 0; p < k; p++) {
    const float *bp = b + p * ldb;
    VF bv[FA_NV];
    for (int v = 0; v < nv; v++) bv[v] = LD(bp + v * FA_VL);
    for (int i = 0; i < mr; i++) {
      VF av = SPLAT(rows[i][p * acs]);
      for (int v = 0; v < nv; v++) acc[i][v] += av * bv[v];
    }
  }
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) ST(c + i * ldc + v * FA_VL, acc[i][v]);
}

/// The same with A's columns contiguous (`ars` = 1): one pointer steps through A.
static inline __attribute__((always_inline)) void FA_NS(tile_t)(
    const int mr, const int nv, int k, const float *a, long acs, const float *b, long ldb, float *c, long ldc,
    int accumulate, const float *row_scale) {
  VF acc[FA_MR][FA_NV];
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) acc[i][v] = accumulate ? LD(c + i * ldc + v * FA_VL) : SPLAT(0);
  if (row_scale)
    for (int i = 0; i < mr; i++)
      for (int v = 0; v < nv; v++) acc[i][v] *= row_scale[i];
  for (int p = 0; p < k; p++) {
    const float *bp = b + p * ldb, *ap = a + p * acs;
    VF bv[FA_NV];
    for (int v = 0; v < nv; v++) bv[v] = LD(bp + v * FA_VL);
    for (int i = 0; i < mr; i++) {
      VF av = SPLAT(ap[i]);
      for (int v = 0; v < nv; v++) acc[i][v] += av * bv[v];
    }
  }
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) ST(c + i * ldc + v * FA_VL, acc[i][v]);
}

static void FA_NS(tile_rows)(int mr, int nv, int k, const float *a, long ars, long acs, const float *b, long ldb,
                             float *c, long ldc, int accumulate, const float *rs) {
#define FA_TILE_CASE(R)                                                                     \
  case R:                                                                                   \
    if (ars == 1) {                                                                         \
      if (nv == FA_NV) FA_NS(tile_t)(R, FA_NV, k, a, acs, b, ldb, c, ldc, accumulate, rs);  \
      else FA_NS(tile_t)(R, 1, k, a, acs, b, ldb, c, ldc, accumulate, rs);                  \
    } else {                                                                                \
      if (nv == FA_NV) FA_NS(tile)(R, FA_NV, k, a, ars, acs, b, ldb, c, ldc, accumulate, rs); \
      else FA_NS(tile)(R, 1, k, a, ars, acs, b, ldb, c, ldc, accumulate, rs);                 \
    }                                                                                       \
    break;
  switch (mr) {
    FA_TILE_CASE(1)
    FA_TILE_CASE(2)
    FA_TILE_CASE(3)
    FA_TILE_CASE(4)
#if FA_MR > 4
    FA_TILE_CASE(5)
    FA_TILE_CASE(6)
#endif
#if FA_MR > 6
    FA_TILE_CASE(7)
    FA_TILE_CASE(8)
#endif
    default: break;
  }
#undef FA_TILE_CASE
}

/// C = row_scale ∘ C + A·B when `row_scale` is given (rows of C multiplied first: the online
/// softmax's rescaling of the output, fused into the load of C); else as `fa_gemm`.
static void FA_NS(gemm_scaled)(int m, int n, int k, const float *a, long ars, long acs, const float *b, long ldb,
                               float *c, long ldc, int accumulate, const float *row_scale) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    for (int i = 0; i < m; i++) {
      if (!accumulate) memset(c + i * ldc, 0, sizeof(float) * (size_t)n);
      else if (row_scale)
        for (int j = 0; j < n; j++) c[i * ldc + j] *= row_scale[i];
    }
    return;
  }
  enum { KC = FA_NS(KC) };
  float btail[KC * FA_VL] __attribute__((aligned(64)));
  float ctail[FA_MR * FA_VL] __attribute__((aligned(64)));
  const int full = n / FA_VL * FA_VL, tail = n - full;
  for (int k0 = 0; k0 < k; k0 += KC) {
    const int kc = k - k0 < KC ? k - k0 : KC;
    const int acc = accumulate || k0 > 0;
    const float *rs = (accumulate && k0 == 0) ? row_scale : 0;
    const float *bk = b + (long)k0 * ldb;
    if (tail) {
      // The last partial vector of columns runs on a zero-padded copy.
      for (int p = 0; p < kc; p++)
        for (int j = 0; j < FA_VL; j++) btail[p * FA_VL + j] = j < tail ? bk[p * ldb + full + j] : 0.0f;
    }
    for (int i0 = 0; i0 < m; i0 += FA_MR) {
      const int mr = m - i0 < FA_MR ? m - i0 : FA_MR;
      const float *ai = a + i0 * ars + (long)k0 * acs;
      float *ci = c + i0 * ldc;
      int j0 = 0;
      for (; j0 + FA_NV * FA_VL <= full; j0 += FA_NV * FA_VL)
        FA_NS(tile_rows)(mr, FA_NV, kc, ai, ars, acs, bk + j0, ldb, ci + j0, ldc, acc, rs ? rs + i0 : 0);
      for (; j0 < full; j0 += FA_VL)
        FA_NS(tile_rows)(mr, 1, kc, ai, ars, acs, bk + j0, ldb, ci + j0, ldc, acc, rs ? rs + i0 : 0);
      if (tail) {
        for (int i = 0; i < mr; i++)
          for (int j = 0; j < FA_VL; j++) ctail[i * FA_VL + j] = (acc && j < tail) ? ci[i * ldc + full + j] : 0.0f;
        FA_NS(tile_rows)(mr, 1, kc, ai, ars, acs, btail, FA_VL, ctail, FA_VL, 1, rs ? rs + i0 : 0);
        for (int i = 0; i < mr; i++)
          for (int j = 0; j < tail; j++) ci[i * ldc + full + j] = ctail[i * FA_VL + j];
      }
    }
  }
}

static void FA_NS(gemm)(int m, int n, int k, const float *a, long ars, long acs, const float *b, long ldb,
                        float *c, long ldc, int accumulate) {
  FA_NS(gemm_scaled)(m, n, k, a, ars, acs, b, ldb, c, ldc, accumulate, 0);
}

// MARK: Conversions and transposes

#if FA_HAS_F16_VECTOR
typedef _Float16 FA_NS(vh) __attribute__((vector_size(FA_VL * 2)));
static void FA_NS(f16_to_f32)(const uint16_t *src, float *dst, long n) {
  long i = 0;
  for (; i + FA_VL <= n; i += FA_VL) {
    FA_NS(vh) h;
    memcpy(&h, src + i, sizeof h);
    ST(dst + i, __builtin_convertvector(h, VF));
  }
  for (; i < n; i++) dst[i] = fa_half_to_float(src[i]);
}
static void FA_NS(f32_to_f16)(const float *src, uint16_t *dst, long n) {
  long i = 0;
  for (; i + FA_VL <= n; i += FA_VL) {
    FA_NS(vh) h = __builtin_convertvector(LD(src + i), FA_NS(vh));
    memcpy(dst + i, &h, sizeof h);
  }
  for (; i < n; i++) dst[i] = fa_float_to_half(src[i]);
}
#else
static void FA_NS(f16_to_f32)(const uint16_t *src, float *dst, long n) {
  for (long i = 0; i < n; i++) dst[i] = fa_half_to_float(src[i]);
}
static void FA_NS(f32_to_f16)(const float *src, uint16_t *dst, long n) {
  for (long i = 0; i < n; i++) dst[i] = fa_float_to_half(src[i]);
}
#endif

static void FA_NS(transpose)(const float *src, long srs, int rows, int cols, float *dst, long ldd, float scale) {
  // Blocks of 16 × 16 keep both sides in cache lines.
  for (int i0 = 0; i0 < rows; i0 += 16) {
    const int i1 = i0 + 16 < rows ? i0 + 16 : rows;
    for (int j0 = 0; j0 < cols; j0 += 16) {
      const int j1 = j0 + 16 < cols ? j0 + 16 : cols;
      for (int i = i0; i < i1; i++)
        for (int j = j0; j < j1; j++) dst[j * ldd + i] = scale * src[i * srs + j];
    }
  }
}

static void FA_NS(transpose_f16)(const uint16_t *src, long srs, int rows, int cols, float *dst, long ldd,
                                 float scale) {
  float row[256 + FA_VL];
  for (int i = 0; i < rows; i++) {
    for (int j0 = 0; j0 < cols; j0 += 256) {
      const int w = cols - j0 < 256 ? cols - j0 : 256;
      FA_NS(f16_to_f32)(src + i * srs + j0, row, w);
      for (int j = 0; j < w; j++) dst[(j0 + j) * ldd + i] = scale * row[j];
    }
  }
}

// MARK: Row reductions (standard attention's softmax)

static float FA_NS(max)(const float *x, long n) {
  VF m = SPLAT(-__builtin_inff());
  long i = 0;
  for (; i + FA_VL <= n; i += FA_VL) m = FA_NS(vmax)(m, LD(x + i));
  float r = -__builtin_inff();
  for (int j = 0; j < FA_VL; j++) r = m[j] > r ? m[j] : r;
  for (; i < n; i++) r = x[i] > r ? x[i] : r;
  return r;
}

static float FA_NS(exp_sum)(float *x, long n, float shift) {
  VF s = SPLAT(0);
  long i = 0;
  for (; i + FA_VL <= n; i += FA_VL) {
    VF e = FA_NS(vexp)(LD(x + i) - shift);
    ST(x + i, e);
    s += e;
  }
  float total = 0;
  for (int j = 0; j < FA_VL; j++) total += s[j];
  if (i < n) {
    float buffer[FA_VL];
    for (int j = 0; j < FA_VL; j++) buffer[j] = i + j < n ? x[i + j] : -__builtin_inff();
    VF e = FA_NS(vexp)(LD(buffer) - shift);
    for (int j = 0; i + j < n; j++) {
      x[i + j] = e[j];
      total += e[j];
    }
  }
  return total;
}

static void FA_NS(scale)(float *x, long n, float s) {
  long i = 0;
  for (; i + FA_VL <= n; i += FA_VL) ST(x + i, LD(x + i) * s);
  for (; i < n; i++) x[i] *= s;
}

// MARK: Column (query-row) softmax steps on transposed score tiles

static void FA_NS(online_softmax_columns)(float *s, int rows, int cols, long ld, float *m, float *l, float *alpha) {
  for (int c = 0; c < cols; c += FA_VL) {
    VF old = LD(m + c), top = old;
    for (int r = 0; r < rows; r++) top = FA_NS(vmax)(top, LD(s + r * ld + c));
    // A column that has seen only −∞ shifts by 0, so that exp(−∞ − shift) is exp(−∞) = 0.
    VF shift = FA_NS(select)(top == -__builtin_inff(), SPLAT(0), top);
    VF a = FA_NS(vexp)(old - shift);
    VF sum = SPLAT(0);
    for (int r = 0; r < rows; r++) {
      VF e = FA_NS(vexp)(LD(s + r * ld + c) - shift);
      ST(s + r * ld + c, e);
      sum += e;
    }
    ST(l + c, LD(l + c) * a + sum);
    ST(m + c, top);
    ST(alpha + c, a);
  }
}

// MARK: Row (key) steps on score tiles S (query rows × keys) of the backward

static void FA_NS(probabilities_rows)(float *s, int rows, int cols, long ld, const float *shift) {
  for (int r = 0; r < rows; r++) {
    float *row = s + r * ld;
    const float sh = shift[r];
    for (int c = 0; c < cols; c += FA_VL) ST(row + c, FA_NS(vexp)(LD(row + c) - sh));
  }
}

static void FA_NS(dscores_rows)(float *dp, const float *p, int rows, int cols, long ld, const float *d,
                                float scale) {
  for (int r = 0; r < rows; r++) {
    float *g = dp + r * ld;
    const float *pr = p + r * ld;
    const float dr = d[r];
    for (int c = 0; c < cols; c += FA_VL) ST(g + c, LD(pr + c) * (LD(g + c) - dr) * scale);
  }
}

const struct fa_kernel_table FA_NS(table) = {
    FA_NS(gemm), FA_NS(transpose), FA_NS(transpose_f16), FA_NS(f16_to_f32), FA_NS(f32_to_f16),
    FA_NS(max), FA_NS(exp_sum), FA_NS(scale), FA_NS(online_softmax_columns), FA_NS(probabilities_rows),
    FA_NS(dscores_rows),
    FA_NS(gemm_scaled),
};

#undef VF
#undef VI
#undef LD
#undef ST
#undef SPLAT
