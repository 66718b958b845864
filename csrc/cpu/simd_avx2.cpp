// The CPU SIMD path for the avx2 instruction set (flags in CMakeLists.txt); see simd_impl.h.
#define NNJPEG_PRIVATE_COPY 1
#define NNJPEG_SIMD_ISA avx2
#include "simd_impl.h"
