// The CPU SIMD path for the avx512 instruction set (flags in CMakeLists.txt); see simd_impl.h.
#define NNJPEG_PRIVATE_COPY 1
#define NNJPEG_SIMD_ISA avx512
#define NNJPEG_SIMD_LANES 16
#include "simd_impl.h"
