// The CPU SIMD path for the generic instruction set (flags in CMakeLists.txt); see simd_impl.h.
#define NNJPEG_PRIVATE_COPY 1
#define NNJPEG_SIMD_ISA generic
#include "simd_impl.h"
