// The SIMD recompute of the "ste" backward for the avx512 instruction set (flags in CMakeLists.txt); see
// ste_simd_impl.h.
#define NNJPEG_PRIVATE_COPY 1
#define NNJPEG_SIMD_ISA avx512
#define NNJPEG_SIMD_LANES 16
#include "ste_simd_impl.h"
