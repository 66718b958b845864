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

#include <type_traits>
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

// Lane j's block (lanes past count repeat the last one: computed, never stored).
inline const BlockCoord& lane_block(const BlockCoord* blocks, int count, int j) {
  return blocks[j < count ? j : count - 1];
}

// The pixels of the blocks (0..255 scale, edges replicated) into lanes, as load_block_255<float, float>.
void load_lanes(const RoundtripParams& p, const BlockCoord* blocks, int count, bool whole, Vec (*px)[64]) {
  if (!whole) {  // a block at the bottom or right edge: the scalar accessor replicates the edge
    for (int j = 0; j < kLanes; ++j) {
      const BlockCoord& b = lane_block(blocks, count, j);
      float one[3][64];
      load_block_255<float, float>(p, b.n, b.by, b.bx, one);
      for (int ch = 0; ch < p.c; ++ch)
        for (int i = 0; i < 64; ++i) px[ch][i].v[j] = one[ch][i];
    }
    return;
  }
  const float* in = static_cast<const float*>(p.input);
  const int64_t* s = p.in_stride;
  for (int ch = 0; ch < p.c; ++ch) {
    const float* base[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      const BlockCoord& b = lane_block(blocks, count, j);
      base[j] = in + offset4(s, b.n, ch, b.by * 8, b.bx * 8);
    }
    for (int r = 0; r < 8; ++r) {
      load_lane_rows(base, r * s[2], s[3], px[ch] + r * 8);
      for (int c = 0; c < 8; ++c) px[ch][r * 8 + c] = from_pixel(px[ch][r * 8 + c], in);  // load_255<float>
    }
  }
}

}  // namespace

int ste_lanes() { return kLanes; }

void ste_recompute_blocks(const SteBackwardParams& s, const BlockCoord* blocks, int count) {
  const RoundtripParams& p = s.p;
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  const float* gout = static_cast<const float*>(p.grad_output);
  float* gin = static_cast<float*>(p.grad_input);
  const int64_t* os = p.out_stride;
  const int64_t* is = p.grad_in_stride;
  bool whole = true;  // every block lies wholly inside the image: whole rows in and out
  for (int j = 0; j < count; ++j) whole = whole && block_rows(p, blocks[j]) == 8 && block_cols(p, blocks[j]) == 8;

  Vec coef[3][64];
  load_lanes(p, blocks, count, whole, coef);
  encode_block(ycc, channels, coef);
  Vec acc[3][64];
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 64; ++i) acc[ch][i] = Vec(0.0f);
  const int64_t n0 = blocks[0].n;  // the lanes share its tables (ste_simd.h)
  for (int64_t k = 0; k < p.levels; ++k) {
    Vec px[3][64];
    decode_pixels(ycc, channels, coef, table_for(p, k, n0, false), table_for(p, k, n0, true), p.rounding, px);
    for (int ch = 0; ch < channels; ++ch) {
      const float* base[kLanes];
      for (int j = 0; j < kLanes; ++j) {
        const BlockCoord& b = lane_block(blocks, count, j);
        base[j] = gout + offset5(os, k, b.n, ch, b.by * 8, b.bx * 8);
      }
      for (int r = 0; r < 8; ++r) {
        Vec g[8];
        if (whole) {
          load_lane_rows(base, r * os[3], os[4], g);
        } else {  // zero outside the image: padding pixels get no gradient (and are never stored)
          for (int c = 0; c < 8; ++c) {
            g[c] = Vec(0.0f);
            for (int j = 0; j < count; ++j)
              if (r < block_rows(p, blocks[j]) && c < block_cols(p, blocks[j])) g[c].v[j] = base[j][r * os[3] + c * os[4]];
          }
        }
        for (int c = 0; c < 8; ++c) acc[ch][r * 8 + c] = acc[ch][r * 8 + c] + pass_unclamped(px[ch][r * 8 + c], g[c]);
      }
    }
  }
  for (int ch = 0; ch < channels; ++ch) {
    float* base[kLanes];
    for (int j = 0; j < kLanes; ++j) {
      const BlockCoord& b = lane_block(blocks, count, j);
      base[j] = gin + offset4(is, b.n, ch, b.by * 8, b.bx * 8);
    }
    if (whole) {
      for (int r = 0; r < 8; ++r) store_lane_rows(acc[ch] + r * 8, base, r * is[2], is[3], count);
      continue;
    }
    for (int j = 0; j < count; ++j)
      for (int64_t r = 0; r < block_rows(p, blocks[j]); ++r)
        for (int64_t c = 0; c < block_cols(p, blocks[j]); ++c) base[j][r * is[2] + c * is[3]] = acc[ch][r * 8 + c].v[j];
  }
}

#if (NNJPEG_SIMD_LANES == 16 && defined(__AVX512F__)) || (NNJPEG_SIMD_LANES == 8 && defined(__AVX2__))
#include "ste_pass_rows_impl.h"
#endif

}  // namespace NNJPEG_SIMD_ISA
}  // namespace cpu
}  // namespace nnjpeg
