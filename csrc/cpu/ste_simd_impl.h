// The SIMD recompute of the "ste" backward (see ste_simd.h), compiled once per instruction set:
// ste_simd_<isa>.cpp defines NNJPEG_PRIVATE_COPY and NNJPEG_SIMD_ISA (and NNJPEG_SIMD_LANES, 8 or 16),
// then includes this file, as simd_<isa>.cpp does with simd_impl.h. Pixels and gradients are gathered into
// lanes (the scalar accessors for a block at the right edge); the block math (load scaling, colour transform,
// DCT, quantization, inverse DCT, mask, sum over the levels) runs on vectors, the same operations in the
// same order as ste_recompute_block<float, float>, so every lane is bitwise equal to it.
#pragma once

#ifndef NNJPEG_PRIVATE_COPY
#error "ste_simd_impl.h belongs to the ISA translation units (ste_simd_*.cpp), which define NNJPEG_PRIVATE_COPY"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "nnjpeg/roundtrip_block.h"
#include "nnjpeg/ste_backward.h"
#include "ste_simd.h"

namespace nnjpeg {
namespace cpu {
namespace NNJPEG_SIMD_ISA {
namespace {

#include "simd_vec.h"

}  // namespace

namespace {

// Lane j of the result = base[off[j]].
inline Vec gather(const float* base, const int64_t* off) {
  Vec r;
  for (int j = 0; j < kLanes; ++j) r.v[j] = base[off[j]];
  return r;
}

// The pixels of the blocks (0..255 scale, edges replicated) into lanes, as load_block_255<float, float>.
void load_lanes(const RoundtripParams& p, int64_t n, int64_t by, const int64_t* bx, int count, bool full_width,
                Vec (*px)[64]) {
  if (!full_width) {  // a block at the right edge: the scalar accessor replicates the edge column
    for (int j = 0; j < kLanes; ++j) {
      float one[3][64];
      load_block_255<float, float>(p, n, by, bx[j < count ? j : count - 1], one);
      for (int ch = 0; ch < p.c; ++ch)
        for (int i = 0; i < 64; ++i) px[ch][i].v[j] = one[ch][i];
    }
    return;
  }
  const float* in = static_cast<const float*>(p.input);
  int64_t off[kLanes];
  for (int j = 0; j < kLanes; ++j) off[j] = bx[j < count ? j : count - 1] * 8 * p.in_stride[3];
  // The input of these blocks is usually not in cache (the sweep read only the output and the gradient):
  // request every row of every block first, so that the misses overlap instead of stalling each gather.
  for (int ch = 0; ch < p.c; ++ch)
    for (int r = 0; r < 8; ++r) {
      const int64_t y = by * 8 + r < p.h ? by * 8 + r : p.h - 1;
      const float* base = in + offset4(p.in_stride, n, ch, y, 0);
      for (int j = 0; j < count; ++j) {
        __builtin_prefetch(base + off[j]);
        __builtin_prefetch(base + off[j] + 7 * p.in_stride[3]);
      }
    }
  for (int ch = 0; ch < p.c; ++ch)
    for (int i = 0; i < 64; ++i) {
      const int64_t y = by * 8 + i / 8 < p.h ? by * 8 + i / 8 : p.h - 1;  // bottom edge replicated
      const float* base = in + offset4(p.in_stride, n, ch, y, i % 8);
      px[ch][i] = sanitize_255(gather(base, off) * Vec(255.0f));  // load_255<float>(float)
    }
}

}  // namespace

int ste_lanes() { return kLanes; }

void ste_recompute_blocks(const SteBackwardParams& s, int64_t n, int64_t by, const int64_t* bx, int count) {
  const RoundtripParams& p = s.p;
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  const float* gout = static_cast<const float*>(p.grad_output);
  float* gin = static_cast<float*>(p.grad_input);
  bool full_width = true;  // every block has 8 columns inside the image
  for (int j = 0; j < count; ++j) full_width = full_width && block_cols(p, BlockCoord{n, by, bx[j]}) == 8;
  const int64_t rows = block_rows(p, BlockCoord{n, by, bx[0]});
  int64_t goff[kLanes];  // lanes past count repeat the last block (computed, never stored)
  for (int j = 0; j < kLanes; ++j) goff[j] = bx[j < count ? j : count - 1] * 8 * p.out_stride[4];

  Vec coef[3][64];
  load_lanes(p, n, by, bx, count, full_width, coef);
  encode_block(ycc, channels, coef);
  Vec acc[3][64];
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 64; ++i) acc[ch][i] = Vec(0.0f);
  for (int64_t k = 0; k < p.levels; ++k) {
    Vec px[3][64];
    decode_pixels(ycc, channels, coef, table_for(p, k, n, false), table_for(p, k, n, true), p.rounding, px);
    for (int ch = 0; ch < channels; ++ch)
      for (int64_t r = 0; r < rows; ++r)
        for (int c = 0; c < 8; ++c) {
          const float* base = gout + offset5(p.out_stride, k, n, ch, by * 8 + r, c);
          Vec g(0.0f);
          if (full_width) {
            g = gather(base, goff);
          } else {
            for (int j = 0; j < count; ++j)
              if (bx[j] * 8 + c < p.w) g.v[j] = base[goff[j]];
          }
          const int i = int(r * 8 + c);
          acc[ch][i] = acc[ch][i] + pass_unclamped(px[ch][i], g);
        }
  }
  for (int j = 0; j < count; ++j) {
    const int64_t cols = block_cols(p, BlockCoord{n, by, bx[j]});
    for (int ch = 0; ch < channels; ++ch)
      for (int64_t r = 0; r < rows; ++r) {
        float* dst = gin + offset4(p.grad_in_stride, n, ch, by * 8 + r, bx[j] * 8);
        for (int64_t c = 0; c < cols; ++c) dst[c * p.grad_in_stride[3]] = acc[ch][r * 8 + c].v[j];
      }
  }
}

}  // namespace NNJPEG_SIMD_ISA
}  // namespace cpu
}  // namespace nnjpeg
