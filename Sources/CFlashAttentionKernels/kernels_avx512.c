// AVX-512 instantiation: 16-float vectors, 8 × 32 register tile (16 zmm accumulators).
#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c"))), apply_to = function)
#define FA_VL 16
#define FA_MR 8
#define FA_NV 2
#define FA_HAS_F16_VECTOR 1
#define FA_NS(name) fa_##name##_avx512
#include "kernels_impl.h"
#pragma clang attribute pop
#endif
