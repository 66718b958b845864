// The SIMD recompute of the "ste" backward for the avx2 instruction set (flags in CMakeLists.txt); see
// ste_simd_impl.h.
#define NNJPEG_PRIVATE_COPY 1
#define NNJPEG_SIMD_ISA avx2
#include "ste_simd_impl.h"
