// The SIMD recompute of the "ste" backward for the generic instruction set (flags in CMakeLists.txt); see
// ste_simd_impl.h.
#define NNJPEG_PRIVATE_COPY 1
#define NNJPEG_SIMD_ISA generic
#include "ste_simd_impl.h"
