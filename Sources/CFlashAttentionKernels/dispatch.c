// Run-time choice of the kernel variant: CPUID (and the OS's XSAVE state, without which the
// wide registers are not saved on context switch) decide what this CPU can run.
#include <stdlib.h>
#include <string.h>
#include "CFlashAttentionKernels.h"
#include "kernels_table.h"

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long fa_xgetbv(void) {
  unsigned int eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return ((unsigned long long)edx << 32) | eax;
}

static int fa_detect(int isa) {
  unsigned int a, b, c, d;
  if (isa == FA_ISA_PORTABLE) return 1;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1, avx = (c >> 28) & 1;
  if (!osxsave || !avx || !fma || !f16c) return 0;
  const unsigned long long xcr0 = fa_xgetbv();
  if ((xcr0 & 0x6) != 0x6) return 0;  // XMM and YMM state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  const int avx2 = (b >> 5) & 1;
  if (isa == FA_ISA_AVX2) return avx2;
  const int avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  if (isa == FA_ISA_AVX512)
    return avx2 && avx512f && avx512dq && avx512bw && avx512vl && (xcr0 & 0xE6) == 0xE6;  // + opmask, ZMM
  return 0;
}
#else
static int fa_detect(int isa) { return isa == FA_ISA_PORTABLE; }
#endif

static const struct fa_kernel_table *fa_table_for(int isa) {
#if defined(__x86_64__)
  if (isa == FA_ISA_AVX512) return &fa_table_avx512;
  if (isa == FA_ISA_AVX2) return &fa_table_avx2;
#endif
  return &fa_table_portable;
}

// Chosen once; every thread reads the same pointer (a benign race on first use: each thread
// would compute the same answer).
static const struct fa_kernel_table *volatile fa_current = 0;
static volatile int fa_current_isa = -1;

static void fa_choose(void) {
  int isa = FA_ISA_PORTABLE;
  if (fa_detect(FA_ISA_AVX512)) isa = FA_ISA_AVX512;
  else if (fa_detect(FA_ISA_AVX2)) isa = FA_ISA_AVX2;
  const char *requested = getenv("FLASH_ATTN_CPU_ISA");
  if (requested) {
    int want = -1;
    if (!strcmp(requested, "portable")) want = FA_ISA_PORTABLE;
    if (!strcmp(requested, "avx2")) want = FA_ISA_AVX2;
    if (!strcmp(requested, "avx512")) want = FA_ISA_AVX512;
    if (want >= 0 && fa_detect(want)) isa = want;
  }
  fa_current_isa = isa;
  fa_current = fa_table_for(isa);
}

static inline const struct fa_kernel_table *fa_kernels(void) {
  const struct fa_kernel_table *t = fa_current;
  if (!t) {
    fa_choose();
    t = fa_current;
  }
  return t;
}

int fa_active_isa(void) {
  fa_kernels();
  return fa_current_isa;
}

const char *fa_isa_name(int isa) {
  switch (isa) {
    case FA_ISA_AVX512: return "avx512";
    case FA_ISA_AVX2: return "avx2";
#if defined(__aarch64__)
    default: return "neon";
#else
    default: return "portable";
#endif
  }
}

int fa_isa_supported(int isa) { return fa_detect(isa); }

int fa_select_isa(int isa) {
  if (!fa_detect(isa)) return 0;
  fa_current_isa = isa;
  fa_current = fa_table_for(isa);
  return 1;
}

void fa_gemm(int m, int n, int k, const float *a, long ars, long acs, const float *b, long ldb, float *c,
             long ldc, int accumulate) {
  fa_kernels()->gemm(m, n, k, a, ars, acs, b, ldb, c, ldc, accumulate);
}
void fa_transpose(const float *src, long srs, int rows, int cols, float *dst, long ldd, float scale) {
  fa_kernels()->transpose(src, srs, rows, cols, dst, ldd, scale);
}
void fa_transpose_f16(const uint16_t *src, long srs, int rows, int cols, float *dst, long ldd, float scale) {
  fa_kernels()->transpose_f16(src, srs, rows, cols, dst, ldd, scale);
}
void fa_f16_to_f32(const uint16_t *src, float *dst, long n) { fa_kernels()->f16_to_f32(src, dst, n); }
void fa_f32_to_f16(const float *src, uint16_t *dst, long n) { fa_kernels()->f32_to_f16(src, dst, n); }
float fa_max(const float *x, long n) { return fa_kernels()->max(x, n); }
float fa_exp_sum(float *x, long n, float shift) { return fa_kernels()->exp_sum(x, n, shift); }
void fa_scale(float *x, long n, float s) { fa_kernels()->scale(x, n, s); }
void fa_online_softmax_columns(float *s, int rows, int columns, long ld, float *m, float *l, float *alpha) {
  fa_kernels()->online_softmax_columns(s, rows, columns, ld, m, l, alpha);
}
void fa_probabilities_rows(float *s, int rows, int columns, long ld, const float *shift) {
  fa_kernels()->probabilities_rows(s, rows, columns, ld, shift);
}
void fa_dscores_rows(float *dp, const float *p, int rows, int columns, long ld, const float *d, float scale) {
  fa_kernels()->dscores_rows(dp, p, rows, columns, ld, d, scale);
}
void fa_gemm_rescaled(int m, int n, int k, const float *a, long ars, long acs, const float *b, long ldb, float *c,
                      long ldc, const float *row_scale) {
  fa_kernels()->gemm_scaled(m, n, k, a, ars, acs, b, ldb, c, ldc, 1, row_scale);
}
void fa_prefetch_rows(const void *base, long row_stride_bytes, int rows, long row_bytes) {
  const char *p = (const char *)base;
  for (int r = 0; r < rows; r++)
    for (long x = 0; x < row_bytes; x += 64) __builtin_prefetch(p + r * row_stride_bytes + x, 0, 2);
}
