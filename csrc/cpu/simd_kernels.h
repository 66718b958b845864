// The CPU SIMD path: the 4:4:4 block pipelines of roundtrip_block.h run on groups of up to 8 (AVX-512: 16)
// blocks of one image at once, one block per vector lane. Compiled once per instruction set (simd_generic.cpp,
// simd_avx2.cpp, simd_avx512.cpp); roundtrip_cpu.cpp picks one at run time (cpu_isa.h).
#pragma once

#include <stdint.h>

#include "nnjpeg/params.h"

namespace nnjpeg {
namespace cpu {

// Groups of blocks: blocks are numbered row-major within an image, images one after the other. With
// spans_images (every image has the same tables), group i holds blocks [L i, L i + L) of the whole batch, so
// small images fill the lanes; else group i of image n holds blocks [L i, min(L i + L, blocks per image)) of
// that image, and its work item is n * groups_per_image + i. L = lanes() of the ISA.
struct GroupLayout {
  int64_t blocks_x, blocks_per_image, groups_per_image;
  bool spans_images;
  int64_t groups;  // in the batch
};

// Min and max of the float input pixels a forward call read, and whether any was NaN: validation folded
// into the kernel's one read of the input (the Python layer raises on NaN, Inf or values outside [0, 1]).
struct InputRange {
  float lo, hi;
  bool nan;
};

// Forward 4:4:4 (and grayscale / plain RGB), uint8 or float32, groups [begin, end); with float32 input and
// a non-null `range`, also folds every input pixel the groups read into *range.
// Backward 4:4:4 ("ste"/"smooth"), float32, groups [begin, end).
// Forward 4:2:0, uint8 or float32, in two phases: chroma_420 over groups of chroma blocks (layout over the
// chroma blocks of an image), then luma_420 over groups of luma blocks (folds the input range like
// forward_444). one_pass_420: both phases over groups [begin, end) of chroma blocks (16x16-pixel
// macro-blocks) that hold whole images, reading the input once (simd_420.h); folds the range too.
// divide_values (tests): q[i] = a[i] / b through the quantizer's vector division (simd_vec.h, divide).
// store_division_mismatches (tests): the floats x of [0, 255] whose float output (to_pixel) is not x / 255.
#define NNJPEG_DECLARE_SIMD_ISA(isa)                                                              \
  namespace isa {                                                                                 \
  int lanes();                                                                                    \
  void forward_444(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end,     \
                   InputRange* range);                                                            \
  void backward_444(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end); \
  void chroma_420(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end);   \
  void luma_420(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end,      \
                InputRange* range);                                                               \
  void one_pass_420(const RoundtripParams& p, const GroupLayout& l, int64_t begin, int64_t end,  \
                    InputRange* range);                                                           \
  void divide_values(const float* a, float* q, int64_t n, float b);                              \
  int64_t store_division_mismatches();                                                            \
  }

NNJPEG_DECLARE_SIMD_ISA(generic)
NNJPEG_DECLARE_SIMD_ISA(avx2)
NNJPEG_DECLARE_SIMD_ISA(avx512)

#undef NNJPEG_DECLARE_SIMD_ISA

}  // namespace cpu
}  // namespace nnjpeg
