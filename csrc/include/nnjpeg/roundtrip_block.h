// The whole round trip of one 8x8 block (or one 8x8 chroma block of a 4:2:0 macro-block), written once
// for both kernels. A kernel only decides which thread runs which block; everything a block computes
// is here, so the CPU tests exercise the arithmetic the GPU runs.
//
// Work items:
//   forward 4:4:4 / grayscale / RGB : one item per (image, block row, block column) of 8x8 pixels
//   forward 4:2:0, phase 1          : one item per chroma 8x8 block (a 16x16 pixel macro-block)
//   forward 4:2:0, phase 2          : one item per luma 8x8 block; reads phase 1's decoded chroma
//   backward 4:4:4                  : one item per 8x8 block, as the forward
//   backward 4:2:0                  : forward phase 1 (decoded chroma), then one item per luma block
//                                     (luma adjoint; chroma gradient at full resolution into workspace2),
//                                     then one item per chroma block (upsampling adjoint, chroma adjoint)
#pragma once

#include <stdint.h>

#include "color.h"
#include "dct.h"
#include "hd.h"
#include "params.h"
#include "pixel_io.h"
#include "quantize.h"

namespace nnjpeg {

struct BlockCoord {
  int64_t n, by, bx;
};

// Item index -> (image, block row, block column), row-major over blocks. Shared by both kernels.
NNJ_HD BlockCoord block_coord(int64_t item, int64_t blocks_y, int64_t blocks_x) {
  BlockCoord b;
  b.bx = item % blocks_x;
  const int64_t rest = item / blocks_x;
  b.by = rest % blocks_y;
  b.n = rest / blocks_y;
  return b;
}

NNJ_HD bool is_ycbcr(const RoundtripParams& p) { return p.c == 3 && p.color == kYCbCr; }

// Quantization steps of level k for image n: luma table, or chroma table for Cb/Cr.
NNJ_HD const float* table_for(const RoundtripParams& p, int64_t k, int64_t n, bool chroma) {
  return p.tables + k * p.table_stride_level + n * p.table_stride_image + (chroma ? 64 : 0);
}

// Divisor of scaled coefficient i for these steps, in the compute type T (computed as a scalar).
template <typename T>
NNJ_HD T divisor_for(const float* steps, int i) {
  return T(divisor_at<decltype(scalar_of(T()))>(steps, i));
}

// Quantize + dequantize a block of scaled coefficients (fdct8x8_scaled) into dst, then the 2-D scaled inverse
// DCT (idct8_scaled over the columns, then the rows). Each column is dequantized and goes through the column
// pass in registers: the same operations in the same order as dequantizing all 64 first, without that round
// trip through memory
// (AMD Zen 4 AVX-512 guest, A/B in one process, medians: W1 float32 forward 1.6-4% faster). Steps: the
// table's steps (const float*), or its QuantDivisors prepared once (quantize.h).
// Coefficient i quantized and dequantized: the scaled inverse DCT's input.
template <typename T, typename Steps>
NNJ_HD T dequantized_at(const T* coef, const Steps& steps, int i, int rounding) {
  using S = decltype(scalar_of(T()));
  const S divisor = divisor_at<S>(steps, i);
  return dequantize_quotient(quotient_at(coef[i], steps, i, divisor), T(to_idct_at<S>(steps, i, divisor)), rounding);
}

template <typename T, typename Steps>
NNJ_HD void decode_block(const T* coef, const Steps& steps, int rounding, T* dst) {
  for (int c = 0; c < 8; ++c) {
    T column[8];
    for (int u = 0; u < 8; ++u) column[u] = dequantized_at(coef, steps, u * 8 + c, rounding);
    idct8_scaled(column, 1);
    for (int u = 0; u < 8; ++u) dst[u * 8 + c] = column[u];
  }
  for (int r = 0; r < 8; ++r) idct8_scaled(dst + 8 * r, 1);
}

// Pixels of block (by, bx) on the 0..255 scale, edges replicated; channels beyond p.c are left alone.
template <typename IO, typename T>
NNJ_HD void load_block_255(const RoundtripParams& p, int64_t n, int64_t by, int64_t bx, T (*px)[64]) {
  for (int i = 0; i < 64; ++i) {
    const int64_t y = by * 8 + i / 8, x = bx * 8 + i % 8;
    for (int ch = 0; ch < p.c; ++ch) px[ch][i] = load_pixel<IO, T>(p, n, ch, y, x);
  }
}

// ---- Value-level block math: no memory access beyond the arrays passed in. T is float, double, or
// (CPU SIMD path, csrc/cpu/simd_impl.h) a vector whose lanes are independent blocks: the same operations
// in the same order, so every lane is bitwise equal to the scalar result.

// Pixels (0..255) -> level-shifted components (YCbCr for colour images, else the channels), then the
// scaled DCT (dct.h).
template <typename T>
NNJ_HD void encode_block(bool ycc, int channels, T (*c)[64]) {
  for (int i = 0; i < 64; ++i) {
    if (ycc) {
      T y, cb, cr;
      rgb_to_ycbcr_shifted(c[0][i], c[1][i], c[2][i], y, cb, cr);
      c[0][i] = y;
      c[1][i] = cb;
      c[2][i] = cr;
    } else {
      for (int ch = 0; ch < channels; ++ch) c[ch][i] = c[ch][i] - T(128);
    }
  }
  for (int ch = 0; ch < channels; ++ch) fdct8x8_scaled(c[ch]);
}

// Decoded components (level-shifted YCbCr, or the shifted channels) -> pixels on the 0..255 scale, in place.
template <typename T>
NNJ_HD void shifted_to_pixels(bool ycc, int channels, T (*px)[64]) {
  for (int i = 0; i < 64; ++i) {
    if (ycc) {
      T r, g, b;
      ycbcr_shifted_to_rgb(px[0][i], px[1][i], px[2][i], r, g, b);
      px[0][i] = r;
      px[1][i] = g;
      px[2][i] = b;
    } else {
      for (int ch = 0; ch < channels; ++ch) px[ch][i] = px[ch][i] + T(128);
    }
  }
}

// Coefficients -> decoded pixels on the 0..255 scale (not clamped) with one level's steps (see decode_block).
template <typename T, typename Steps>
NNJ_HD void decode_pixels(bool ycc, int channels, const T (*coef)[64], const Steps& luma, const Steps& chroma,
                          int rounding, T (*px)[64]) {
  for (int ch = 0; ch < channels; ++ch) decode_block(coef[ch], ycc && ch > 0 ? chroma : luma, rounding, px[ch]);
  shifted_to_pixels(ycc, channels, px);
}

// Decoded components -> pixels on the 0..255 scale (not clamped) at one position.
template <typename T>
NNJ_HD void components_to_pixels(const RoundtripParams& p, T c0, T c1, T c2, T* px) {
  if (is_ycbcr(p)) {
    ycbcr_shifted_to_rgb(c0, c1, c2, px[0], px[1], px[2]);
  } else {
    px[0] = c0 + T(128);
    px[1] = c1 + T(128);
    px[2] = c2 + T(128);
  }
}

// The gradient passes where the decoded pixel was not clamped to [0, 255].
template <typename T>
NNJ_HD T pass_unclamped(T px, T g) {
  return px < T(0) || px > T(255) ? T(0) : g;
}

// One level of the backward: g holds the gradient wrt the decoded pixels (zero where clamped or in the
// padding) and is clobbered; the gradient wrt the input pixels (0..255 scale) is added to acc.
template <typename T>
NNJ_HD void backward_level(bool ycc, int channels, const T (*coef)[64], const float* luma, const float* chroma,
                           int rounding, T (*g)[64], T (*acc)[64]) {
  if (ycc) {
    for (int i = 0; i < 64; ++i) {
      T gy, gcb, gcr;
      ycbcr_to_rgb_adjoint(g[0][i], g[1][i], g[2][i], gy, gcb, gcr);
      g[0][i] = gy;
      g[1][i] = gcb;
      g[2][i] = gcr;
    }
  }
  for (int ch = 0; ch < channels; ++ch) {
    const float* steps = ycc && ch > 0 ? chroma : luma;
    dct8x8(g[ch]);  // adjoint of the inverse DCT
    if (rounding == kSmoothRound)
      for (int i = 0; i < 64; ++i) g[ch][i] = g[ch][i] * smooth_round_derivative(coef[ch][i], divisor_for<T>(steps, i));
    idct8x8(g[ch]);  // adjoint of the forward DCT
  }
  for (int i = 0; i < 64; ++i) {
    if (ycc) {
      T gr, gg, gb;
      rgb_to_ycbcr_adjoint(g[0][i], g[1][i], g[2][i], gr, gg, gb);
      acc[0][i] = acc[0][i] + gr;
      acc[1][i] = acc[1][i] + gg;
      acc[2][i] = acc[2][i] + gb;
    } else {
      for (int ch = 0; ch < channels; ++ch) acc[ch][i] = acc[ch][i] + g[ch][i];
    }
  }
}

// Adjoint of the edge replication of block (by, bx): padding positions add their gradient to the edge
// pixel they copy (in the same block), in increasing position order.
template <typename T>
NNJ_HD void fold_padding_adjoint(int channels, int64_t by, int64_t bx, int64_t h, int64_t w, T (*acc)[64]) {
  for (int i = 0; i < 64; ++i) {
    const int64_t y = by * 8 + i / 8, x = bx * 8 + i % 8;
    if (y < h && x < w) continue;
    const int64_t sy = y < h ? y : h - 1, sx = x < w ? x : w - 1;
    const int src = int((sy - by * 8) * 8 + (sx - bx * 8));
    for (int ch = 0; ch < channels; ++ch) acc[ch][src] = acc[ch][src] + acc[ch][i];
  }
}

// The clamp-summary bits (params.h) of one decoded pixel px (0..255 scale, before the clamp) stored as v.
template <typename T, typename IO>
NNJ_HD int clamp_summary_bits(T px, IO v) {
  if (px < T(0) || px > T(255)) return kSomeClamped;
  return v == IO(0) || v == IO(1) ? kSomeOnBound : 0;
}

// Index of block b's byte at level k in p.clamp_summary: (K, N, blocks_y, blocks_x).
NNJ_HD int64_t clamp_summary_index(const RoundtripParams& p, int64_t k, int64_t n, int64_t by, int64_t bx) {
  const Geometry g = geometry(p);
  return ((k * p.n + n) * g.blocks_y + by) * g.blocks_x + bx;
}

// Index of block b's word for channel ch at level k in p.pass_mask: (K, N, C, blocks_y, blocks_x).
NNJ_HD int64_t pass_mask_index(const RoundtripParams& p, int64_t k, int64_t n, int64_t ch, int64_t by, int64_t bx) {
  const Geometry g = geometry(p);
  return (((k * p.n + n) * p.c + ch) * g.blocks_y + by) * g.blocks_x + bx;
}

// Block b's clamp summary `bits` at level k into p.clamp_summary, and with p.pass_mask the pass masks of its
// channels from their clamped pixels (bit r * 8 + c of clamped[ch] set: that pixel was clamped).
NNJ_HD void store_clamp_summary(const RoundtripParams& p, int64_t k, BlockCoord b, int bits, const uint64_t* clamped) {
  p.clamp_summary[clamp_summary_index(p, k, b.n, b.by, b.bx)] = uint8_t(bits);
  if (p.pass_mask)
    for (int64_t ch = 0; ch < p.c; ++ch) p.pass_mask[pass_mask_index(p, k, b.n, ch, b.by, b.bx)] = ~clamped[ch];
}

// Forward round trip of one 8x8 block at every level (4:4:4, grayscale, or plain RGB); with p.clamp_summary
// (float output), also its clamp summary per level, and with p.pass_mask its pass masks.
template <typename IO, typename T>
NNJ_HD void roundtrip_block_444(const RoundtripParams& p, BlockCoord b) {
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  T coef[3][64];
  load_block_255<IO, T>(p, b.n, b.by, b.bx, coef);
  encode_block(ycc, channels, coef);
  IO* out = static_cast<IO*>(p.output);
  for (int64_t k = 0; k < p.levels; ++k) {
    T px[3][64];
    decode_pixels(ycc, channels, coef, table_for(p, k, b.n, false), table_for(p, k, b.n, true), p.rounding, px);
    int summary = 0;
    uint64_t clamped[3] = {0, 0, 0};  // bit i: pixel i clamped
    for (int i = 0; i < 64; ++i) {
      const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
      if (y >= p.h || x >= p.w) continue;  // padding: computed, never stored
      for (int ch = 0; ch < channels; ++ch) {
        IO v;
        store_255(px[ch][i], v);
        out[offset5(p.out_stride, k, b.n, ch, y, x)] = v;
        const int bits = clamp_summary_bits(px[ch][i], v);
        summary |= bits;
        if (bits & kSomeClamped) clamped[ch] |= uint64_t(1) << i;
      }
    }
    if (p.clamp_summary) store_clamp_summary(p, k, b, summary, clamped);
  }
}

// 4:2:0: the level-shifted Cb and Cr samples of chroma block (b.by, b.bx): each the mean of a 2x2 pixel
// square (edges replicated), summed in the order (0,0), (0,1), (1,0), (1,1).
template <typename IO, typename T>
NNJ_HD void chroma_samples_420(const RoundtripParams& p, BlockCoord b, T (*cc)[64]) {
  for (int i = 0; i < 64; ++i) {
    const int64_t cy = b.by * 8 + i / 8, cx = b.bx * 8 + i % 8;
    T sum_cb = T(0), sum_cr = T(0);
    for (int d = 0; d < 4; ++d) {
      const int64_t y = 2 * cy + d / 2, x = 2 * cx + d % 2;
      const T r = load_pixel<IO, T>(p, b.n, 0, y, x);
      const T gg = load_pixel<IO, T>(p, b.n, 1, y, x);
      const T bb = load_pixel<IO, T>(p, b.n, 2, y, x);
      T yy, cb, cr;
      rgb_to_ycbcr_shifted(r, gg, bb, yy, cb, cr);
      sum_cb += cb;
      sum_cr += cr;
    }
    cc[0][i] = sum_cb * T(0.25);
    cc[1][i] = sum_cr * T(0.25);
  }
}

// 4:2:0: scaled DCT coefficients of chroma block (b.by, b.bx). Shared by the forward and the backward.
template <typename IO, typename T>
NNJ_HD void encode_chroma_420(const RoundtripParams& p, BlockCoord b, T (*cc)[64]) {
  chroma_samples_420<IO, T>(p, b, cc);
  fdct8x8_scaled(cc[0]);
  fdct8x8_scaled(cc[1]);
}

// 4:2:0: DCT coefficients of the level-shifted luma of 8x8 block (b.by, b.bx). Shared by forward and backward.
template <typename IO, typename T>
NNJ_HD void encode_luma_420(const RoundtripParams& p, BlockCoord b, T* coef) {
  for (int i = 0; i < 64; ++i) {
    const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
    const T r = load_pixel<IO, T>(p, b.n, 0, y, x);
    const T gg = load_pixel<IO, T>(p, b.n, 1, y, x);
    const T bb = load_pixel<IO, T>(p, b.n, 2, y, x);
    T cb, cr;
    rgb_to_ycbcr_shifted(r, gg, bb, coef[i], cb, cr);
  }
  fdct8x8_scaled(coef);
}

// 4:2:0 phase 1: chroma block (b.by, b.bx) of the padded half-resolution Cb/Cr planes, decoded at every
// level into the workspace. Each chroma sample is the mean of a 2x2 pixel square (edges replicated).
template <typename IO, typename T>
NNJ_HD void chroma_block_420(const RoundtripParams& p, const Geometry& g, BlockCoord b) {
  T cc[2][64];
  encode_chroma_420<IO, T>(p, b, cc);
  T* ws = static_cast<T*>(p.workspace);
  const int64_t plane = g.chroma_h * g.chroma_w;
  for (int64_t k = 0; k < p.levels; ++k) {
    for (int ch = 0; ch < 2; ++ch) {
      T dec[64];
      decode_block(cc[ch], table_for(p, k, b.n, true), p.rounding, dec);
      T* dst = ws + ((k * p.n + b.n) * 2 + ch) * plane;
      for (int i = 0; i < 64; ++i) dst[(b.by * 8 + i / 8) * g.chroma_w + b.bx * 8 + i % 8] = dec[i];
    }
  }
}

// libjpeg's "fancy" h2v2 upsampling: the triangular filter (9, 3, 3, 1) / 16 between the nearest chroma
// sample and its neighbours towards the pixel, with the edges of the ceil(H/2) x ceil(W/2) plane replicated.
template <typename T>
NNJ_HD T fancy_upsample(const T* plane, const Geometry& g, int64_t y, int64_t x) {
  const int64_t i = y / 2, j = x / 2;
  int64_t iv = (y & 1) ? i + 1 : i - 1;
  int64_t jh = (x & 1) ? j + 1 : j - 1;
  iv = iv < 0 ? 0 : (iv >= g.chroma_valid_h ? g.chroma_valid_h - 1 : iv);
  jh = jh < 0 ? 0 : (jh >= g.chroma_valid_w ? g.chroma_valid_w - 1 : jh);
  const int64_t w = g.chroma_w;
  return (T(9) * plane[i * w + j] + T(3) * plane[iv * w + j] + T(3) * plane[i * w + jh] + plane[iv * w + jh]) *
         T(0.0625);
}

// 4:2:0 phase 2: luma block (b.by, b.bx), combined with the upsampled decoded chroma, stored at every level.
template <typename IO, typename T>
NNJ_HD void luma_block_420(const RoundtripParams& p, const Geometry& g, BlockCoord b) {
  T coef[64];
  encode_luma_420<IO, T>(p, b, coef);
  const T* ws = static_cast<const T*>(p.workspace);
  const int64_t plane = g.chroma_h * g.chroma_w;
  for (int64_t k = 0; k < p.levels; ++k) {
    T dec[64];
    decode_block(coef, table_for(p, k, b.n, false), p.rounding, dec);
    const T* cb_plane = ws + ((k * p.n + b.n) * 2 + 0) * plane;
    const T* cr_plane = ws + ((k * p.n + b.n) * 2 + 1) * plane;
    for (int i = 0; i < 64; ++i) {
      const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
      if (y >= p.h || x >= p.w) continue;
      T px[3];
      ycbcr_shifted_to_rgb(dec[i], fancy_upsample(cb_plane, g, y, x), fancy_upsample(cr_plane, g, y, x), px[0],
                           px[1], px[2]);
      for (int ch = 0; ch < 3; ++ch) store_pixel<IO, T>(p, k, b.n, ch, y, x, px[ch]);
    }
  }
}

// Backward of one 8x8 block (4:4:4, grayscale, plain RGB) for the "ste" and "smooth" gradient modes:
// the adjoint of every linear step, the rounding replaced by the identity ("ste") or by r'(t)
// ("smooth"), zero gradient where the output was clamped, summed over the levels. Positions in the
// padding pass their gradient to the edge pixel they replicate, which lies in the same block.
template <typename IO, typename T>
NNJ_HD void roundtrip_block_444_backward(const RoundtripParams& p, BlockCoord b) {
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  T coef[3][64];
  load_block_255<IO, T>(p, b.n, b.by, b.bx, coef);
  encode_block(ycc, channels, coef);

  T acc[3][64];
  for (int ch = 0; ch < 3; ++ch)
    for (int i = 0; i < 64; ++i) acc[ch][i] = T(0);

  const IO* gout = static_cast<const IO*>(p.grad_output);
  for (int64_t k = 0; k < p.levels; ++k) {
    const float* luma = table_for(p, k, b.n, false);
    const float* chroma = table_for(p, k, b.n, true);
    T px[3][64], g[3][64];
    decode_pixels(ycc, channels, coef, luma, chroma, p.rounding, px);
    for (int i = 0; i < 64; ++i) {
      const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
      const bool inside = y < p.h && x < p.w;
      for (int ch = 0; ch < 3; ++ch) g[ch][i] = T(0);
      for (int ch = 0; ch < channels; ++ch)
        if (inside) g[ch][i] = pass_unclamped(px[ch][i], T(gout[offset5(p.out_stride, k, b.n, ch, y, x)]));
    }
    backward_level(ycc, channels, coef, luma, chroma, p.rounding, g, acc);
  }

  fold_padding_adjoint(channels, b.by, b.bx, p.h, p.w, acc);
  IO* gin = static_cast<IO*>(p.grad_input);
  for (int i = 0; i < 64; ++i) {
    const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
    if (y >= p.h || x >= p.w) continue;
    for (int ch = 0; ch < channels; ++ch) gin[offset4(p.grad_in_stride, b.n, ch, y, x)] = IO(acc[ch][i]);
  }
}

// Adjoint of fancy_upsample: the gradient wrt chroma sample (i, j) of the valid ceil(H/2) x ceil(W/2) plane,
// gathered from the full-resolution gradient (h x w, row-major) of every pixel whose filter taps it. A pixel
// at row y taps rows y/2 and y/2 +- 1 (clamped), so only rows 2i-2 .. 2i+3 (and columns alike) can.
template <typename T>
NNJ_HD T fancy_upsample_adjoint(const T* grad_full, const Geometry& g, int64_t h, int64_t w, int64_t i, int64_t j) {
  if (i >= g.chroma_valid_h || j >= g.chroma_valid_w) return T(0);  // padding samples are never read
  T sum = T(0);
  const int64_t y0 = 2 * i - 2 < 0 ? 0 : 2 * i - 2, y1 = 2 * i + 3 < h - 1 ? 2 * i + 3 : h - 1;
  const int64_t x0 = 2 * j - 2 < 0 ? 0 : 2 * j - 2, x1 = 2 * j + 3 < w - 1 ? 2 * j + 3 : w - 1;
  for (int64_t y = y0; y <= y1; ++y) {
    const int64_t iy = y / 2;
    int64_t iv = (y & 1) ? iy + 1 : iy - 1;
    iv = iv < 0 ? 0 : (iv >= g.chroma_valid_h ? g.chroma_valid_h - 1 : iv);
    const int wy = (iy == i ? 3 : 0) + (iv == i ? 1 : 0);  // vertical weight x4
    if (wy == 0) continue;
    for (int64_t x = x0; x <= x1; ++x) {
      const int64_t jx = x / 2;
      int64_t jh = (x & 1) ? jx + 1 : jx - 1;
      jh = jh < 0 ? 0 : (jh >= g.chroma_valid_w ? g.chroma_valid_w - 1 : jh);
      const int wx = (jx == j ? 3 : 0) + (jh == j ? 1 : 0);  // horizontal weight x4
      if (wx != 0) sum += T(wy * wx) * grad_full[y * w + x];
    }
  }
  return sum * T(0.0625);
}

// 4:2:0 backward, luma phase (after forward phase 1 filled p.workspace): recomputes the decoded pixels of
// luma block (b.by, b.bx) at every level, masks the clamped ones, and splits the gradient into YCbCr. The
// luma part runs the luma adjoint chain and is stored to grad_input (the first write of these pixels); the
// Cb/Cr part is left per level at full resolution in p.workspace2 for the chroma phase.
template <typename IO, typename T>
NNJ_HD void luma_block_420_backward(const RoundtripParams& p, const Geometry& g, BlockCoord b) {
  T coef[64];
  encode_luma_420<IO, T>(p, b, coef);
  T acc[64];
  for (int i = 0; i < 64; ++i) acc[i] = T(0);
  const T* ws = static_cast<const T*>(p.workspace);
  T* gchroma = static_cast<T*>(p.workspace2);
  const IO* gout = static_cast<const IO*>(p.grad_output);
  const int64_t plane = g.chroma_h * g.chroma_w, full = p.h * p.w;
  for (int64_t k = 0; k < p.levels; ++k) {
    const float* steps = table_for(p, k, b.n, false);
    T dec[64], gy[64];
    decode_block(coef, steps, p.rounding, dec);
    const T* cb_plane = ws + ((k * p.n + b.n) * 2 + 0) * plane;
    const T* cr_plane = ws + ((k * p.n + b.n) * 2 + 1) * plane;
    T* gcb_full = gchroma + ((k * p.n + b.n) * 2 + 0) * full;
    T* gcr_full = gchroma + ((k * p.n + b.n) * 2 + 1) * full;
    for (int i = 0; i < 64; ++i) {
      const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
      gy[i] = T(0);
      if (y >= p.h || x >= p.w) continue;
      T px[3], gp[3];
      ycbcr_shifted_to_rgb(dec[i], fancy_upsample(cb_plane, g, y, x), fancy_upsample(cr_plane, g, y, x), px[0],
                           px[1], px[2]);
      for (int ch = 0; ch < 3; ++ch)
        gp[ch] = pass_unclamped(px[ch], T(gout[offset5(p.out_stride, k, b.n, ch, y, x)]));
      ycbcr_to_rgb_adjoint(gp[0], gp[1], gp[2], gy[i], gcb_full[y * p.w + x], gcr_full[y * p.w + x]);
    }
    dct8x8(gy);  // adjoint of the inverse DCT
    if (p.rounding == kSmoothRound)
      for (int i = 0; i < 64; ++i) gy[i] = gy[i] * smooth_round_derivative(coef[i], divisor_for<T>(steps, i));
    idct8x8(gy);  // adjoint of the forward DCT
    for (int i = 0; i < 64; ++i) acc[i] = acc[i] + gy[i];
  }
  T rgb[3][64];
  for (int i = 0; i < 64; ++i) rgb_to_ycbcr_adjoint(acc[i], T(0), T(0), rgb[0][i], rgb[1][i], rgb[2][i]);
  fold_padding_adjoint(3, b.by, b.bx, p.h, p.w, rgb);
  IO* gin = static_cast<IO*>(p.grad_input);
  for (int i = 0; i < 64; ++i) {
    const int64_t y = b.by * 8 + i / 8, x = b.bx * 8 + i % 8;
    if (y >= p.h || x >= p.w) continue;
    for (int ch = 0; ch < 3; ++ch) gin[offset4(p.grad_in_stride, b.n, ch, y, x)] = IO(rgb[ch][i]);
  }
}

// 4:2:0 backward, chroma phase (after the luma phase): chroma block (b.by, b.bx) gathers its gradient through
// the upsampling adjoint, runs the chroma adjoint chain, spreads it over its 2x2 pixel squares (mean adjoint),
// folds the edge replication, and adds the Cb/Cr part of the colour adjoint to grad_input. Its 16x16 pixels
// (padding included) belong to no other chroma block, so no two threads touch the same pixel.
template <typename IO, typename T>
NNJ_HD void chroma_block_420_backward(const RoundtripParams& p, const Geometry& g, BlockCoord b) {
  T cc[2][64];
  encode_chroma_420<IO, T>(p, b, cc);
  T acc[2][64];
  for (int ch = 0; ch < 2; ++ch)
    for (int i = 0; i < 64; ++i) acc[ch][i] = T(0);
  const T* gchroma = static_cast<const T*>(p.workspace2);
  const int64_t full = p.h * p.w;
  for (int64_t k = 0; k < p.levels; ++k) {
    const float* steps = table_for(p, k, b.n, true);
    for (int ch = 0; ch < 2; ++ch) {
      const T* gfull = gchroma + ((k * p.n + b.n) * 2 + ch) * full;
      T gc[64];
      for (int i = 0; i < 64; ++i) gc[i] = fancy_upsample_adjoint(gfull, g, p.h, p.w, b.by * 8 + i / 8, b.bx * 8 + i % 8);
      dct8x8(gc);
      if (p.rounding == kSmoothRound)
        for (int i = 0; i < 64; ++i) gc[i] = gc[i] * smooth_round_derivative(cc[ch][i], divisor_for<T>(steps, i));
      idct8x8(gc);
      for (int i = 0; i < 64; ++i) acc[ch][i] = acc[ch][i] + gc[i];
    }
  }
  // Each padded pixel of the 16x16 macro-block adds to the edge pixel it replicates (in the same macro-block).
  IO* gin = static_cast<IO*>(p.grad_input);
  for (int q = 0; q < 256; ++q) {
    const int64_t y = b.by * 16 + q / 16, x = b.bx * 16 + q % 16;
    const int c = (q / 32) * 8 + (q % 16) / 2;  // chroma sample of pixel (y, x) within the block
    T gr, gg, gb;
    rgb_to_ycbcr_adjoint(T(0), acc[0][c] * T(0.25), acc[1][c] * T(0.25), gr, gg, gb);
    const int64_t sy = y < p.h ? y : p.h - 1, sx = x < p.w ? x : p.w - 1;
    IO* dst = gin + offset4(p.grad_in_stride, b.n, 0, sy, sx);
    const int64_t cs = p.grad_in_stride[1];
    dst[0] = IO(T(dst[0]) + gr);
    dst[cs] = IO(T(dst[cs]) + gg);
    dst[2 * cs] = IO(T(dst[2 * cs]) + gb);
  }
}

}  // namespace nnjpeg
