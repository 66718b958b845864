// The 4:2:0 forward for the GPU, tiled as the 4:4:4 forward (tile_444.h): 8 threads per 8x8 block, global
// memory read and written in column phases (a warp on 32 neighbouring pixels, or chroma samples, of a row).
// Two passes, each a tiled kernel: the chroma phase over the blocks of the padded half-resolution Cb/Cr planes
// fills p.workspace with the decoded Cb/Cr of every level; the luma phase over the luma blocks upsamples them.
//
// Same arithmetic, in the same order, as chroma_block_420 and luma_block_420: the 2x2 means of Cb and Cr (or
// Y of every pixel), the scaled DCT (rows, then columns), per level the dequantized column IDCTs and the row
// IDCTs, then (luma) per pixel the fancy-upsampled chroma and back to RGB. The DCT and quantization phases
// are tile_444.h's on 2 channels (Cb, Cr) or 1 (Y).
#pragma once

#include <stdint.h>

#include "tile_444.h"

namespace nnjpeg {

// Chroma phase 1 (column lane): Cb and Cr samples of column `lane` of the chroma block -> shared channels 0
// and 1: each the mean of its 2x2 pixel square, in chroma_samples_420's order.
template <typename IO, typename T>
NNJ_HD void tile_chroma_samples(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  const int64_t cx = t.b.bx * 8 + t.lane;
  NNJ_NO_UNROLL  // unrolled (96 loads), float compute spilled at its 128 registers (ptxas -v, sm_90)
  for (int r = 0; r < 8; ++r) {
    const int64_t cy = t.b.by * 8 + r;
    T sum_cb = T(0), sum_cr = T(0);
    NNJ_UNROLL
    for (int d = 0; d < 4; ++d) {
      const int64_t y = 2 * cy + d / 2, x = 2 * cx + d % 2;
      T yy, cb, cr;
      rgb_to_ycbcr_shifted(load_pixel<IO, T>(p, t.b.n, 0, y, x), load_pixel<IO, T>(p, t.b.n, 1, y, x),
                           load_pixel<IO, T>(p, t.b.n, 2, y, x), yy, cb, cr);
      sum_cb += cb;
      sum_cr += cr;
    }
    s.v[t.slot][0][tile_at(r, t.lane)] = sum_cb * T(0.25);
    s.v[t.slot][1][tile_at(r, t.lane)] = sum_cr * T(0.25);
  }
}

// Row phase (row lane) of the first `channels` (1 or 2) channels: 1-D DCT of row `lane` (inverse: `inverse`),
// in place.
template <typename T>
NNJ_HD void tile_row_transform(int channels, bool inverse, const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  NNJ_UNROLL
  for (int ch = 0; ch < 2; ++ch) {
    if (ch >= channels) break;
    T row[8];
    NNJ_UNROLL
    for (int j = 0; j < 8; ++j) row[j] = s.v[t.slot][ch][tile_at(t.lane, j)];
    if (inverse) idct8_scaled(row, 1);
    else fdct8_scaled(row, 1);
    NNJ_UNROLL
    for (int j = 0; j < 8; ++j) s.v[t.slot][ch][tile_at(t.lane, j)] = row[j];
  }
}

// Chroma phase 6 (column lane), per level: column `lane` of the decoded Cb and Cr -> p.workspace, level k.
template <typename T>
NNJ_HD void tile_store_chroma(const RoundtripParams& p, const Geometry& g, const TileLane& t, int64_t k,
                              const TileShared<T>& s) {
  if (!t.valid) return;
  T* ws = static_cast<T*>(p.workspace);
  const int64_t plane = g.chroma_h * g.chroma_w;
  NNJ_UNROLL
  for (int ch = 0; ch < 2; ++ch) {
    T* dst = ws + ((k * p.n + t.b.n) * 2 + ch) * plane + t.b.bx * 8 + t.lane;
    NNJ_UNROLL
    for (int r = 0; r < 8; ++r) dst[(t.b.by * 8 + r) * g.chroma_w] = s.v[t.slot][ch][tile_at(r, t.lane)];
  }
}

// Luma phase 2 (row lane): Y of pixel row `lane` (level-shifted) and its 1-D DCT -> shared channel 0.
template <typename T>
NNJ_HD void tile_row_dct_luma(const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  T row[8];
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) {
    T cb, cr;
    rgb_to_ycbcr_shifted(s.v[t.slot][0][tile_at(t.lane, j)], s.v[t.slot][1][tile_at(t.lane, j)],
                         s.v[t.slot][2][tile_at(t.lane, j)], row[j], cb, cr);
  }
  fdct8_scaled(row, 1);
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) s.v[t.slot][0][tile_at(t.lane, j)] = row[j];
}

// Luma phase 6 (column lane), per level: column `lane` of the block inside the image: decoded luma with the
// upsampled decoded chroma of level k, back to RGB -> output level k.
template <typename IO, typename T>
NNJ_HD void tile_store_420(const RoundtripParams& p, const Geometry& g, const TileLane& t, int64_t k,
                           const TileShared<T>& s) {
  if (!t.valid) return;
  const int64_t x = t.b.bx * 8 + t.lane;
  if (x >= p.w) return;
  const T* ws = static_cast<const T*>(p.workspace);
  const int64_t plane = g.chroma_h * g.chroma_w;
  const T* cb_plane = ws + ((k * p.n + t.b.n) * 2 + 0) * plane;
  const T* cr_plane = ws + ((k * p.n + t.b.n) * 2 + 1) * plane;
  NNJ_NO_UNROLL  // unrolled, the rows' upsampling addresses took 255 registers and spilled (ptxas -v, sm_90)
  for (int r = 0; r < 8; ++r) {
    const int64_t y = t.b.by * 8 + r;
    if (y >= p.h) break;
    T px[3];
    ycbcr_shifted_to_rgb(s.v[t.slot][0][tile_at(r, t.lane)], fancy_upsample(cb_plane, g, y, x),
                         fancy_upsample(cr_plane, g, y, x), px[0], px[1], px[2]);
    NNJ_UNROLL
    for (int ch = 0; ch < 3; ++ch) store_pixel<IO, T>(p, k, t.b.n, ch, y, x, px[ch]);
  }
}

// The chroma pass (tile_444.h's Tile444 says what a pass supplies): the blocks of the padded Cb/Cr planes.
template <typename IO, typename T>
struct TileChroma420 {
  static constexpr int kFirst = 1;  // Cb, Cr: the chroma table
  NNJ_TILE_MEMBER int channels(const RoundtripParams&) { return 2; }
  NNJ_TILE_MEMBER int64_t blocks_y(const Geometry& g) { return g.chroma_h / 8; }
  NNJ_TILE_MEMBER int64_t blocks_x(const Geometry& g) { return g.chroma_w / 8; }
  NNJ_TILE_MEMBER void load(const RoundtripParams& p, const Geometry&, const TileLane& t, TileShared<T>& s) {
    tile_chroma_samples<IO, T>(p, t, s);
  }
  NNJ_TILE_MEMBER void row_forward(const RoundtripParams&, const TileLane& t, TileShared<T>& s) {
    tile_row_transform(2, false, t, s);
  }
  NNJ_TILE_MEMBER void row_inverse(const RoundtripParams&, const TileLane& t, TileShared<T>& s) {
    tile_row_transform(2, true, t, s);
  }
  NNJ_TILE_MEMBER void store(const RoundtripParams& p, const Geometry& g, const TileLane& t, int64_t k,
                             const TileShared<T>& s) {
    tile_store_chroma(p, g, t, k, s);
  }
};

// The luma pass, after the chroma pass has filled p.workspace: the luma blocks.
template <typename IO, typename T>
struct TileLuma420 {
  static constexpr int kFirst = 0;  // Y: the luma table
  NNJ_TILE_MEMBER int channels(const RoundtripParams&) { return 1; }
  NNJ_TILE_MEMBER int64_t blocks_y(const Geometry& g) { return g.blocks_y; }
  NNJ_TILE_MEMBER int64_t blocks_x(const Geometry& g) { return g.blocks_x; }
  NNJ_TILE_MEMBER void load(const RoundtripParams& p, const Geometry&, const TileLane& t, TileShared<T>& s) {
    tile_load<IO, T>(p, t, s);
  }
  NNJ_TILE_MEMBER void row_forward(const RoundtripParams&, const TileLane& t, TileShared<T>& s) {
    tile_row_dct_luma(t, s);
  }
  NNJ_TILE_MEMBER void row_inverse(const RoundtripParams&, const TileLane& t, TileShared<T>& s) {
    tile_row_transform(1, true, t, s);
  }
  NNJ_TILE_MEMBER void store(const RoundtripParams& p, const Geometry& g, const TileLane& t, int64_t k,
                             const TileShared<T>& s) {
    tile_store_420<IO, T>(p, g, t, k, s);
  }
};

}  // namespace nnjpeg
