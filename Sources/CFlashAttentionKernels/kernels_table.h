// The per-instruction-set function table and the scalar binary16 conversions all variants share.
#ifndef FA_KERNELS_TABLE_H
#define FA_KERNELS_TABLE_H
#include <stdint.h>
#include <string.h>

struct fa_kernel_table {
  void (*gemm)(int, int, int, const float *, long, long, const float *, long, float *, long, int);
  void (*transpose)(const float *, long, int, int, float *, long, float);
  void (*transpose_f16)(const uint16_t *, long, int, int, float *, long, float);
  void (*f16_to_f32)(const uint16_t *, float *, long);
  void (*f32_to_f16)(const float *, uint16_t *, long);
  float (*max)(const float *, long);
  float (*exp_sum)(float *, long, float);
  void (*scale)(float *, long, float);
  void (*online_softmax_columns)(float *, int, int, long, float *, float *, float *);
  void (*probabilities_rows)(float *, int, int, long, const float *);
  void (*dscores_rows)(float *, const float *, int, int, long, const float *, float);
  void (*gemm_scaled)(int, int, int, const float *, long, long, const float *, long, float *, long, int,
                      const float *);
};

extern const struct fa_kernel_table fa_table_portable;
#if defined(__x86_64__)
extern const struct fa_kernel_table fa_table_avx2;
extern const struct fa_kernel_table fa_table_avx512;
#endif

/// IEEE binary16 → binary32, exact (subnormals, infinities, NaN included); no library call.
static inline float fa_half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000 | (mantissa << 13);
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    int shift = 0;
    while (!(mantissa & 0x400)) { mantissa <<= 1; shift++; }
    bits = sign | ((uint32_t)(113 - shift) << 23) | ((mantissa & 0x3FF) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/// binary32 → binary16, rounded to nearest even; overflow to ±∞, NaN stays NaN.
static inline uint16_t fa_float_to_half(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000, abs = x & 0x7FFFFFFF;
  if (abs >= 0x7F800000) return (uint16_t)(sign | 0x7C00 | (abs > 0x7F800000 ? 0x200 : 0));
  if (abs >= 0x477FF000) return (uint16_t)(sign | 0x7C00);  // rounds to ≥ 65520: ∞
  if (abs < 0x38800000) {  // below the smallest normal half: subnormal or 0
    if (abs < 0x33000000) return (uint16_t)sign;  // < 2^-25: rounds to 0
    uint32_t mantissa = (abs & 0x7FFFFF) | 0x800000;
    int shift = 126 - (int)(abs >> 23);  // 14..24
    uint32_t half = mantissa >> shift, rest = mantissa & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rest > mid || (rest == mid && (half & 1))) half++;
    return (uint16_t)(sign | half);
  }
  uint32_t h = ((abs >> 13) - (112 << 10)), rest = abs & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
  return (uint16_t)(sign | h);
}
#endif
