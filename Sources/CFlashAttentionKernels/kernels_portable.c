// Portable instantiation: 4-float vectors (SSE2 on any x86-64, NEON on arm64, where the
// multiply-adds also contract into FMA). NEON has 32 vector registers, SSE2 16.
#define FA_VL 4
#if defined(__aarch64__)
#define FA_MR 8
#define FA_HAS_F16_VECTOR 1
#else
#define FA_MR 4
#define FA_HAS_F16_VECTOR 0
#endif
#define FA_NV 2
#define FA_NS(name) fa_##name##_portable
#include "kernels_impl.h"
