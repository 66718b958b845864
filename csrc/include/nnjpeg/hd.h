// Portability macros: the block math compiles as plain C++ (CPU kernel) and as CUDA (GPU kernel).
#pragma once

#if defined(__CUDACC__)
#define NNJ_HD __host__ __device__ __forceinline__
#else
#define NNJ_HD inline
#endif
