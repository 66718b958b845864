// The SIMD recompute of the "ste" backward (ste_backward.h, slow path): up to lanes() blocks, anywhere in the
// batch, one block per vector lane, through the shared block math with T = Vec (csrc/cpu/simd_vec.h),
// so each lane is bitwise equal to ste_recompute_block<float, float>. float32 only. Compiled once per
// instruction set (ste_simd_generic.cpp, ste_simd_avx2.cpp, ste_simd_avx512.cpp); ste_backward_cpu.cpp
// picks the one of the current CPU path (cpu_isa.h).
#pragma once

#include <stdint.h>

#include "nnjpeg/ste_backward.h"

namespace nnjpeg {
namespace cpu {

// blocks[j] for j < count, 1 <= count <= lanes(): distinct blocks, each already holding its pass-through sum.
#define NNJPEG_DECLARE_STE_SIMD_ISA(isa)                                                                       \
  namespace isa {                                                                                              \
  int ste_lanes();                                                                                             \
  void ste_recompute_blocks(const SteBackwardParams& s, const BlockCoord* blocks, int count);              \
  }

NNJPEG_DECLARE_STE_SIMD_ISA(generic)
NNJPEG_DECLARE_STE_SIMD_ISA(avx2)
NNJPEG_DECLARE_STE_SIMD_ISA(avx512)

#undef NNJPEG_DECLARE_STE_SIMD_ISA

// The whole "ste" backward from the forward's pass masks (ste_pass_rows_impl.h) over image rows
// [begin, end) of the batch, row (n * C + ch) * H + y: float32, grad_output and grad_input rows dense
// (element strides 1); stream: grad_input takes streaming stores (the caller fences). AVX2 and AVX-512.
#define NNJPEG_DECLARE_STE_PASS_ROWS(isa) \
  namespace isa {                         \
  void ste_pass_rows(const SteBackwardParams& s, int64_t begin, int64_t end, bool stream); \
  }

NNJPEG_DECLARE_STE_PASS_ROWS(avx2)
NNJPEG_DECLARE_STE_PASS_ROWS(avx512)

#undef NNJPEG_DECLARE_STE_PASS_ROWS

}  // namespace cpu
}  // namespace nnjpeg
