// Float32 micro-kernels of the CPU attention backend, compiled once per instruction set
// (AVX-512, AVX2 + FMA, portable) and chosen at run time from CPUID — as numpy, OpenBLAS and
// PyTorch do — so the package needs no compiler flags and runs on any x86-64 or arm64.
//
// Conventions: row-major float32 tiles; `ld*` are leading dimensions (elements); lengths are
// element counts. The softmax-step functions (`*_columns`, `*_rows`) process `columns` elements
// of each tile row, which must be a multiple of 16 (pad the tiles; padded lanes compute harmless
// values). "Columns" functions work on transposed score tiles Sᵀ (keys × query rows), whose rows
// are vectors across query rows.
#ifndef C_FLASH_ATTENTION_KERNELS_H
#define C_FLASH_ATTENTION_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction sets the kernels are compiled for.
enum fa_isa { FA_ISA_PORTABLE = 0, FA_ISA_AVX2 = 1, FA_ISA_AVX512 = 2 };

/// The instruction set in use: the best this CPU supports, unless changed by `fa_select_isa`
/// or the environment variable FLASH_ATTN_CPU_ISA (portable | avx2 | avx512).
int fa_active_isa(void);
/// "avx512", "avx2" or "portable" (with the vector width of the portable build, e.g. "neon").
const char *fa_isa_name(int isa);
/// Whether this CPU (and OS) can run `isa`.
int fa_isa_supported(int isa);
/// Uses `isa` from now on; returns 0 (and changes nothing) when unsupported. For tests and benchmarks.
int fa_select_isa(int isa);

/// C[m×n] (+)= A[m×k]·B[k×n], where A[i,p] = a[i·a_row_stride + p·a_col_stride] (any strides:
/// a transposed operand is a swap of them), B[p,j] = b[p·ldb + j], C[i,j] = c[i·ldc + j].
/// Overwrites C when `accumulate` is 0.
void fa_gemm(int m, int n, int k, const float *a, long a_row_stride, long a_col_stride,
             const float *b, long ldb, float *c, long ldc, int accumulate);

/// C[i, ·] = row_scale[i] · C[i, ·] + (A·B)[i, ·]: `fa_gemm` accumulating into C rows rescaled as
/// they are loaded (the online softmax's output correction, with no separate pass).
void fa_gemm_rescaled(int m, int n, int k, const float *a, long a_row_stride, long a_col_stride,
                      const float *b, long ldb, float *c, long ldc, const float *row_scale);

/// Hints the caches to fetch `rows` rows of `row_bytes` bytes, `row_stride_bytes` apart. Rows of
/// one head are pages apart in (batch, seqlen, heads, headDim) memory, where the hardware
/// prefetchers (which stay within a page) do not follow: the next block is requested ahead.
void fa_prefetch_rows(const void *base, long row_stride_bytes, int rows, long row_bytes);

/// dst[j·ld_dst + i] = scale · src[i·src_row_stride + j] for i < rows, j < cols.
void fa_transpose(const float *src, long src_row_stride, int rows, int cols, float *dst, long ld_dst,
                  float scale);
/// The same from IEEE binary16 storage.
void fa_transpose_f16(const uint16_t *src, long src_row_stride, int rows, int cols, float *dst,
                      long ld_dst, float scale);
/// dst[i] = (float)src[i] for binary16 src.
void fa_f16_to_f32(const uint16_t *src, float *dst, long n);
/// dst[i] = src[i] rounded to nearest binary16.
void fa_f32_to_f16(const float *src, uint16_t *dst, long n);

/// max of x[0..<n] (−∞ for n = 0).
float fa_max(const float *x, long n);
/// x[i] = exp(x[i] − shift) for i < n; returns the sum. exp(−∞) = 0 exactly.
float fa_exp_sum(float *x, long n, float shift);
/// x[i] *= s for i < n.
void fa_scale(float *x, long n, float s);

/// One online-softmax step of the forward on a scaled, masked (−∞) score tile Sᵀ (rows × columns,
/// leading dimension ld): per column c, the running max m[c] and sum l[c] absorb the tile,
/// Sᵀ becomes Pᵀ = exp(Sᵀ − new max), and alpha[c] = exp(old max − new max) is the factor the
/// output row must be rescaled by. A column that has seen only −∞ keeps m = −∞, l = 0.
void fa_online_softmax_columns(float *s_t, int rows, int columns, long ld, float *m, float *l,
                               float *alpha);

/// The backward's steps on score tiles S (query rows × keys) with one value per row:
/// P = exp(S − shift[r]) in place (masked entries −∞ give 0; a shift of +∞ gives 0);
/// dS = scale · P ∘ (dP − d[r]) written over dP.
void fa_probabilities_rows(float *s, int rows, int columns, long ld, const float *shift);
void fa_dscores_rows(float *dp, const float *p, int rows, int columns, long ld, const float *d, float scale);

#ifdef __cplusplus
}
#endif
#endif
