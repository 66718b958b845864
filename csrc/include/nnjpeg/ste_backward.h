// The "ste" backward for 4:4:4, grayscale and plain RGB without recomputing the round trip, written once for
// both kernels (the CPU driver is csrc/cpu/ste_backward_cpu.cpp, the CUDA one csrc/cuda/ste_backward_cuda.cu).
//
// Why it is exact. With grad = "ste" the rounding's derivative is 1, so for every pixel inside the image the
// round trip's Jacobian is crop * M_inv * IDCT * DCT * M * pad: the DCT pair is orthonormal (IDCT * DCT = I),
// the edge replication and the cropping cancel, and what is left is the per-pixel 3x3 product M_inv * M of
// the colour transforms (color.h). Its constants are the JFIF matrix to 15 digits and the *exact* inverse of
// it written to 15 digits (reference.py derives both from 0.299/0.587/0.114, 1.402, 1.772), so
// |M_inv * M - I| < 1e-15 elementwise: the identity to a few double ulps, far below float's rounding (the
// float64 tests against the adjoint-chain kernel hold to 1e-12). Grayscale and color = "rgb" have M = I.
// The output is clamped to [0, 255], whose derivative is 1 inside and at the bounds, 0 beyond; the levels
// add up. Hence
//
//     grad_input[n, c, y, x] = sum over k of  mask_k[n, c, y, x] * grad_output[k, n, c, y, x],
//     mask_k = 1 where the decoded pixel px (0..255 scale, before the clamp) satisfies 0 <= px <= 255.
//
// The mask. The forward saved out = sanitize(px) / 255. Where 0 < out < 1 strictly, px was strictly inside
// (0, 255), so the gradient passes (px <= 0 stores exactly 0, px >= 255 exactly 255 / 255 = 1). Where out is
// exactly 0 or 1 the output alone cannot tell px == 0 (passes) from px < 0 (blocked): such a block is
// recomputed with the forward's own block math (load_block_255, encode_block, decode_pixels: bitwise what the
// forward computed, as long as the forward kernels stay bitwise equal to this shared math) and masked with
// pass_unclamped, exactly as roundtrip_block_444_backward does. That block then costs about one forward;
// blocks of ordinary content cost two reads and one write per pixel.
//
// With the forward's clamp summary (params.h: per block and level, whether some decoded pixel was clamped
// and whether some unclamped one was stored as exactly 0 or 1) the output is needed far less: a level
// without a clamped pixel passes everywhere (the output is not read); a level with clamped pixels but none
// on a bound passes exactly where the output is strictly inside (0, 1) (a stored 0 or 1 then means px < 0
// or px > 255); only a block with a level that has both is recomputed. With the forward's pass masks as well
// (params.h: per block, channel and level, one bit per pixel, set where it was not clamped) the output is
// never read and no block is recomputed: a level with clamped pixels passes exactly where its mask bit is
// set, which is the very test the recompute makes (pass_unclamped on the forward's own pixels). Every branch
// adds the same terms in the same order, so the result is bitwise the one without the summary.
#pragma once

#include <stdint.h>

#include "hd.h"
#include "params.h"
#include "pixel_io.h"
#include "roundtrip_block.h"

namespace nnjpeg {

struct SteBackwardParams {
  // input, tables, sizes, levels, in_stride, dtype, color; grad_output with strides p.out_stride and
  // grad_input with p.grad_in_stride (as the other backward); threads, device, stream. p.output is unused.
  RoundtripParams p;
  const void* output = nullptr;                 // the forward's output (K, N, C, H, W), same dtype as input
  int64_t output_stride[5] = {0, 0, 0, 0, 0};   // its element strides
  bool always_recompute = false;                // tests only: take the recompute path in every block
  const uint8_t* clamp_summary = nullptr;       // optional: the forward's (K, N, blocks_y, blocks_x) summary
  const uint64_t* pass_mask = nullptr;          // optional, with clamp_summary: the forward's pass masks
};

// Where the mask of block b at level k comes from, given the clamp summary (and the pass masks).
enum SteMaskSource : int { kPassEverywhere = 0, kMaskFromOutput = 1, kMaskFromPixels = 2, kMaskFromPassMask = 3 };

NNJ_HD int ste_mask_source(const SteBackwardParams& s, BlockCoord b, int64_t k) {
  const int bits = s.clamp_summary[clamp_summary_index(s.p, k, b.n, b.by, b.bx)];
  if (!(bits & kSomeClamped)) return kPassEverywhere;
  if (s.pass_mask) return kMaskFromPassMask;
  return bits & kSomeOnBound ? kMaskFromPixels : kMaskFromOutput;
}

// 1 when the pass mask `word` lets column c of row r through.
NNJ_HD int pass_mask_bit(uint64_t word, int64_t r, int c) { return int((word >> (r * 8 + c)) & 1u); }

// 1 when an output value is not strictly inside (0, 1) (NaN included): its pixel's mask needs the decoded
// pixel. Integer, branch-free, so that the CPU driver's row loop vectorizes.
template <typename IO>
NNJ_HD int output_needs_pixel(IO v) {
  return 1 - (int(v > IO(0)) & int(v < IO(1)));
}

// True when one of the row's cols values (element stride `stride`) is not strictly inside (0, 1).
template <typename IO>
NNJ_HD bool row_leaves_open_interval(const IO* row, int64_t stride, int64_t cols) {
  int needs = 0;
  for (int c = 0; c < 8; ++c)
    if (c < cols) needs |= output_needs_pixel(row[c * stride]);
  return needs != 0;
}

// Rows and columns of block b inside the image (8 except at the bottom and right edges).
NNJ_HD int64_t block_rows(const RoundtripParams& p, BlockCoord b) { return p.h - b.by * 8 < 8 ? p.h - b.by * 8 : 8; }
NNJ_HD int64_t block_cols(const RoundtripParams& p, BlockCoord b) { return p.w - b.bx * 8 < 8 ? p.w - b.bx * 8 : 8; }

// True when row r of channel ch of block b at level k has an output not strictly inside (0, 1).
template <typename IO>
NNJ_HD bool ste_row_needs_pixels(const SteBackwardParams& s, BlockCoord b, int64_t k, int64_t ch, int64_t r) {
  const IO* out = static_cast<const IO*>(s.output);
  return row_leaves_open_interval(out + offset5(s.output_stride, k, b.n, ch, b.by * 8 + r, b.bx * 8),
                                  s.output_stride[4], block_cols(s.p, b));
}

// True when the mask of block b needs its decoded pixels: with the clamp summary, at a level with clamped
// pixels and pixels on a bound; without, where some output inside the image, at some level and channel, is
// not strictly inside (0, 1).
template <typename IO>
NNJ_HD bool ste_block_needs_pixels(const SteBackwardParams& s, BlockCoord b) {
  const RoundtripParams& p = s.p;
  if (s.clamp_summary) {
    for (int64_t k = 0; k < p.levels; ++k)
      if (ste_mask_source(s, b, k) == kMaskFromPixels) return true;
    return false;
  }
  for (int64_t k = 0; k < p.levels; ++k)
    for (int64_t ch = 0; ch < p.c; ++ch)
      for (int64_t r = 0; r < block_rows(p, b); ++r)
        if (ste_row_needs_pixels<IO>(s, b, k, ch, r)) return true;
  return false;
}

// dst[c] = sum over the levels of g[k * level_stride + c * gs], c < cols, in increasing level order.
template <typename IO, typename T>
NNJ_HD void sum_levels_row(const IO* g, int64_t level_stride, int64_t levels, int64_t gs, int64_t cols, IO* dst,
                           int64_t ds) {
  T acc[8];
  for (int c = 0; c < 8; ++c) acc[c] = T(0);
  if (cols == 8 && gs == 1 && ds == 1) {  // dense full rows: vectorizes on the CPU
    for (int64_t k = 0; k < levels; ++k)
      for (int c = 0; c < 8; ++c) acc[c] = acc[c] + T(g[k * level_stride + c]);
    for (int c = 0; c < 8; ++c) dst[c] = IO(acc[c]);
    return;
  }
  for (int64_t k = 0; k < levels; ++k)
    for (int c = 0; c < 8; ++c)  // fixed trip count: acc stays in registers on the GPU
      if (c < cols) acc[c] = acc[c] + T(g[k * level_stride + c * gs]);
  for (int c = 0; c < 8; ++c)
    if (c < cols) dst[c * ds] = IO(acc[c]);
}

// Fast path, one row r of channel ch of block b: every output strictly inside (0, 1), so the gradient passes.
template <typename IO, typename T>
NNJ_HD void ste_pass_row(const SteBackwardParams& s, BlockCoord b, int64_t ch, int64_t r) {
  const RoundtripParams& p = s.p;
  const int64_t y = b.by * 8 + r;
  sum_levels_row<IO, T>(static_cast<const IO*>(p.grad_output) + offset5(p.out_stride, 0, b.n, ch, y, b.bx * 8),
                        p.out_stride[0], p.levels, p.out_stride[4], block_cols(p, b),
                        static_cast<IO*>(p.grad_input) + offset4(p.grad_in_stride, b.n, ch, y, b.bx * 8),
                        p.grad_in_stride[3]);
}

// With the clamp summary, row r of channel ch of block b (no level needing its pixels): each level's gradient
// passes everywhere, where the output is strictly inside (0, 1), or where its pass mask lets it through,
// added in increasing level order.
template <typename IO, typename T>
NNJ_HD void ste_masked_row(const SteBackwardParams& s, BlockCoord b, int64_t ch, int64_t r) {
  const RoundtripParams& p = s.p;
  const int64_t y = b.by * 8 + r, cols = block_cols(p, b);
  const IO* out = static_cast<const IO*>(s.output);
  const IO* gout = static_cast<const IO*>(p.grad_output);
  T acc[8];
  for (int c = 0; c < 8; ++c) acc[c] = T(0);
  for (int64_t k = 0; k < p.levels; ++k) {
    const IO* g = gout + offset5(p.out_stride, k, b.n, ch, y, b.bx * 8);
    const IO* o = out + offset5(s.output_stride, k, b.n, ch, y, b.bx * 8);
    const int source = ste_mask_source(s, b, k);
    const uint64_t word = source == kMaskFromPassMask ? s.pass_mask[pass_mask_index(p, k, b.n, ch, b.by, b.bx)]
                                                      : ~uint64_t(0);
    for (int c = 0; c < 8; ++c) {  // fixed trip count: acc stays in registers on the GPU
      if (c >= cols) continue;
      const bool blocked = source == kMaskFromOutput ? output_needs_pixel(o[c * s.output_stride[4]]) != 0
                                                     : pass_mask_bit(word, r, c) == 0;
      acc[c] = acc[c] + (blocked ? T(0) : T(g[c * p.out_stride[4]]));
    }
  }
  IO* dst = static_cast<IO*>(p.grad_input) + offset4(p.grad_in_stride, b.n, ch, y, b.bx * 8);
  for (int c = 0; c < 8; ++c)
    if (c < cols) dst[c * p.grad_in_stride[3]] = IO(acc[c]);
}

// Slow path, block b with an output on a clamp bound: recompute the decoded pixels of every level as the
// forward did and mask with them, as roundtrip_block_444_backward does.
template <typename IO, typename T>
NNJ_HD void ste_recompute_block(const SteBackwardParams& s, BlockCoord b) {
  const RoundtripParams& p = s.p;
  const IO* gout = static_cast<const IO*>(p.grad_output);
  IO* gin = static_cast<IO*>(p.grad_input);
  const int64_t rows = block_rows(p, b), cols = block_cols(p, b);
  const int64_t gs = p.out_stride[4], is = p.grad_in_stride[3];
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  T coef[3][64];
  load_block_255<IO, T>(p, b.n, b.by, b.bx, coef);
  encode_block(ycc, channels, coef);
  T acc[3][64];
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 64; ++i) acc[ch][i] = T(0);
  for (int64_t k = 0; k < p.levels; ++k) {
    T px[3][64];
    decode_pixels(ycc, channels, coef, table_for(p, k, b.n, false), table_for(p, k, b.n, true), p.rounding, px);
    for (int ch = 0; ch < channels; ++ch)
      for (int64_t r = 0; r < rows; ++r) {
        const IO* g = gout + offset5(p.out_stride, k, b.n, ch, b.by * 8 + r, b.bx * 8);
        for (int64_t c = 0; c < cols; ++c) {
          const int i = int(r * 8 + c);
          acc[ch][i] = acc[ch][i] + pass_unclamped(px[ch][i], T(g[c * gs]));
        }
      }
  }
  for (int ch = 0; ch < channels; ++ch)
    for (int64_t r = 0; r < rows; ++r) {
      IO* dst = gin + offset4(p.grad_in_stride, b.n, ch, b.by * 8 + r, b.bx * 8);
      for (int64_t c = 0; c < cols; ++c) dst[c * is] = IO(acc[ch][r * 8 + c]);
    }
}

// grad_input of one 8x8 block (its pixels inside the image), summed over the levels in increasing order.
// The CUDA kernel runs this per block; the CPU driver (csrc/cpu/ste_backward_cpu.cpp) runs the same test,
// the same sum and the same recompute over a strip of blocks in row-major order: bitwise the same result
// (tests/test_ste_backward.py replays this function on the host).
template <typename IO, typename T>
NNJ_HD void ste_backward_block(const SteBackwardParams& s, BlockCoord b) {
  if (s.always_recompute || ste_block_needs_pixels<IO>(s, b)) {
    ste_recompute_block<IO, T>(s, b);
    return;
  }
  for (int64_t ch = 0; ch < s.p.c; ++ch)
    for (int64_t r = 0; r < block_rows(s.p, b); ++r) {
      if (s.clamp_summary) ste_masked_row<IO, T>(s, b, ch, r);
      else ste_pass_row<IO, T>(s, b, ch, r);
    }
}

}  // namespace nnjpeg
