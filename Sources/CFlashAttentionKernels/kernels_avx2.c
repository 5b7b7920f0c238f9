// AVX2 + FMA instantiation: 8-float vectors, 6 × 16 register tile (12 ymm accumulators).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#define FA_VL 8
#define FA_MR 6
#define FA_NV 2
#define FA_HAS_F16_VECTOR 1
#define FA_NS(name) fa_##name##_avx2
#include "kernels_impl.h"
#pragma clang attribute pop
#endif
