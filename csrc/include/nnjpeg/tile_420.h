// The luma phase of the 4:2:0 forward for the GPU, tiled as the 4:4:4 forward (tile_444.h): 8 threads per 8x8
// luma block, global memory read and written in column phases (a warp on 32 neighbouring pixels of a row).
// The chroma phase before it (chroma_block_420, one thread per chroma block) has filled p.workspace with the
// decoded Cb/Cr of every level.
//
// Same arithmetic, in the same order, as luma_block_420: Y of every pixel, the scaled DCT (rows, then
// columns), per level the dequantized column IDCTs, the row IDCTs, then per pixel the fancy-upsampled chroma
// and back to RGB. The phases between tile_load and tile_store_420 are tile_444.h's on one channel.
#pragma once

#include <stdint.h>

#include "tile_444.h"

namespace nnjpeg {

// Phase 2 (row lane): Y of pixel row `lane` (level-shifted) and its 1-D DCT -> shared channel 0.
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

// Phase 5 (row lane), per level: 1-D IDCT of row `lane` of channel 0: the decoded luma (level-shifted).
template <typename T>
NNJ_HD void tile_row_idct_luma(const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  T row[8];
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) row[j] = s.v[t.slot][0][tile_at(t.lane, j)];
  idct8_scaled(row, 1);
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) s.v[t.slot][0][tile_at(t.lane, j)] = row[j];
}

// Phase 6 (column lane), per level: column `lane` of the block inside the image: decoded luma with the
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

// Host emulation of the 4:2:0 forward as the GPU runs it: the chroma phase block by block (its kernel's
// items), then every luma tile, each phase for all threads, in barrier order.
template <typename IO, typename T>
void emulate_tile_420_forward(const RoundtripParams& p) {
  const Geometry g = geometry(p);
  const int64_t chroma_by = g.chroma_h / 8, chroma_bx = g.chroma_w / 8;
  for (int64_t item = 0; item < p.n * chroma_by * chroma_bx; ++item)
    chroma_block_420<IO, T>(p, g, block_coord(item, chroma_by, chroma_bx));
  const int64_t blocks = p.n * g.blocks_y * g.blocks_x;
  const int64_t tiles = (blocks + kTileBlocks - 1) / kTileBlocks;
  TileShared<T> shared;
  T coef[kTileThreads][3][8];
  for (int64_t tile = 0; tile < tiles; ++tile) {
    TileLane lanes[kTileThreads];
    for (int th = 0; th < kTileThreads; ++th) lanes[th] = tile_lane(tile, th, blocks, g.blocks_y, g.blocks_x);
    for (int th = 0; th < kTileThreads; ++th) tile_load<IO, T>(p, lanes[th], shared);
    for (int th = 0; th < kTileThreads; ++th) tile_row_dct_luma(lanes[th], shared);
    for (int th = 0; th < kTileThreads; ++th) tile_col_dct(1, lanes[th], shared, coef[th]);
    for (int64_t k = 0; k < p.levels; ++k) {
      for (int th = 0; th < kTileThreads; ++th) tile_quant_col_idct(p, 1, lanes[th], k, coef[th], shared);
      for (int th = 0; th < kTileThreads; ++th) tile_row_idct_luma(lanes[th], shared);
      for (int th = 0; th < kTileThreads; ++th) tile_store_420<IO, T>(p, g, lanes[th], k, shared);
    }
  }
}

}  // namespace nnjpeg
