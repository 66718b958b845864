// Portability macros: the block math compiles as plain C++ (CPU kernel) and as CUDA (GPU kernel).
#pragma once

#if defined(__CUDACC__)
#define NNJ_HD __host__ __device__ __forceinline__
#elif defined(NNJPEG_PRIVATE_COPY)
// The CPU translation units built for one instruction set (csrc/cpu/simd_*.cpp, e.g. with -mavx512f)
// define NNJPEG_PRIVATE_COPY before any include: every shared function gets internal linkage there, so
// the linker can never hand their AVX-512 code to the baseline translation units (one-definition rule).
#define NNJ_HD static inline
#else
#define NNJ_HD inline
#endif
