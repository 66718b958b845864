// Cooperative 4:4:4 forward for the GPU: a tile of kTileBlocks 8x8 blocks per CUDA thread block, 8 threads
// per 8x8 block. Thread `lane` (0..7) of a block owns pixel row `lane` in the row phases and coefficient
// column `lane` in the column phases; the block's values pass between the phases through shared memory.
//
// Same arithmetic, in the same order, as roundtrip_block_444 (row DCTs, column DCTs, quantize, column
// IDCTs, row IDCTs), so results equal the one-thread-per-block pipeline. Every phase is a plain function of
// (tile, thread, shared buffer): the CUDA kernel calls them with __syncthreads() between phases, and
// emulate_tile_444_forward() below calls them on the host, all threads of a phase before the next phase,
// which is what the barriers guarantee on the GPU. The CPU tests run that emulation against the CPU kernel.
#pragma once

#include <stdint.h>

#include "color.h"
#include "dct.h"
#include "hd.h"
#include "params.h"
#include "pixel_io.h"
#include "quantize.h"
#include "roundtrip_block.h"

// Fully unrolled channel loops keep the per-thread arrays in registers on the GPU (compile-time indices).
#if defined(__CUDACC__)
#define NNJ_UNROLL _Pragma("unroll")
#else
#define NNJ_UNROLL
#endif

namespace nnjpeg {

constexpr int kTileBlocks = 16;                   // 8x8 blocks per tile (per CUDA thread block)
constexpr int kTileThreads = 8 * kTileBlocks;     // 128 threads: 8 per 8x8 block
template <typename T>
struct TileShared {
  T v[kTileBlocks][3][64];  // [block][channel][row * 8 + column]
};

// Which 8x8 block and which row/column a thread of a tile handles; valid is false past the last block.
struct TileLane {
  BlockCoord b;
  int slot;  // block within the tile
  int lane;  // row (row phases) or column (column phases)
  bool valid;
};

NNJ_HD TileLane tile_lane(int64_t tile, int thread, int64_t blocks_total, int64_t blocks_y, int64_t blocks_x) {
  TileLane t;
  t.slot = thread / 8;
  t.lane = thread % 8;
  const int64_t item = tile * kTileBlocks + t.slot;
  t.valid = item < blocks_total;
  t.b = block_coord(t.valid ? item : 0, blocks_y, blocks_x);
  return t;
}

// Phase 1 (row lane): load pixel row, colour transform + level shift, 1-D DCT of the row -> shared.
template <typename IO, typename T>
NNJ_HD void tile_load_row_dct(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  T row[3][8];
  const int64_t y = t.b.by * 8 + t.lane;
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) {
    const int64_t x = t.b.bx * 8 + j;
    if (ycc) {
      const T r = load_pixel<IO, T>(p, t.b.n, 0, y, x);
      const T g = load_pixel<IO, T>(p, t.b.n, 1, y, x);
      const T b = load_pixel<IO, T>(p, t.b.n, 2, y, x);
      rgb_to_ycbcr_shifted(r, g, b, row[0][j], row[1][j], row[2][j]);
    } else {
      NNJ_UNROLL
      for (int ch = 0; ch < 3; ++ch)
        if (ch < channels) row[ch][j] = load_pixel<IO, T>(p, t.b.n, ch, y, x) - T(128);
    }
  }
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= channels) break;
    fdct8_scaled(row[ch], 1);
    NNJ_UNROLL
    for (int j = 0; j < 8; ++j) s.v[t.slot][ch][t.lane * 8 + j] = row[ch][j];
  }
}

// Phase 2 (column lane): 1-D DCT of the column -> the thread's coefficients coef[ch][u] (column v = lane).
template <typename T>
NNJ_HD void tile_col_dct(const RoundtripParams& p, const TileLane& t, const TileShared<T>& s, T (*coef)[8]) {
  if (!t.valid) return;
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= int(p.c)) break;
    NNJ_UNROLL
    for (int u = 0; u < 8; ++u) coef[ch][u] = s.v[t.slot][ch][u * 8 + t.lane];
    fdct8_scaled(coef[ch], 1);
  }
}

// Phase 3 (column lane), per level: quantize + dequantize, 1-D IDCT of the column -> shared.
template <typename T>
NNJ_HD void tile_quant_col_idct(const RoundtripParams& p, const TileLane& t, int64_t k, const T (*coef)[8],
                                TileShared<T>& s) {
  if (!t.valid) return;
  const bool ycc = is_ycbcr(p);
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= int(p.c)) break;
    const float* steps = table_for(p, k, t.b.n, ycc && ch > 0);
    T col[8];
    NNJ_UNROLL
    for (int u = 0; u < 8; ++u) {
      const T divisor = quant_divisor<T>(steps[u * 8 + t.lane], u * 8 + t.lane);
      col[u] = quantize_dequantize(coef[ch][u], divisor, dequant_multiplier(divisor), p.rounding);
    }
    idct8_scaled(col, 1);
    NNJ_UNROLL
    for (int u = 0; u < 8; ++u) s.v[t.slot][ch][u * 8 + t.lane] = col[u];
  }
}

// Phase 4 (row lane), per level: 1-D IDCT of the row, back to pixels, store the pixels inside the image.
template <typename IO, typename T>
NNJ_HD void tile_row_idct_store(const RoundtripParams& p, const TileLane& t, int64_t k, const TileShared<T>& s) {
  if (!t.valid) return;
  const int channels = int(p.c);
  const int64_t y = t.b.by * 8 + t.lane;
  if (y >= p.h) return;
  T row[3][8] = {};
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= channels) break;
    NNJ_UNROLL
    for (int j = 0; j < 8; ++j) row[ch][j] = s.v[t.slot][ch][t.lane * 8 + j];
    idct8_scaled(row[ch], 1);
  }
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) {
    const int64_t x = t.b.bx * 8 + j;
    if (x >= p.w) break;
    T px[3];
    components_to_pixels(p, row[0][j], row[1][j], row[2][j], px);
    NNJ_UNROLL
    for (int ch = 0; ch < 3; ++ch)
      if (ch < channels) store_pixel<IO, T>(p, k, t.b.n, ch, y, x, px[ch]);
  }
}

// Host emulation of the tiled CUDA kernel: every tile, each phase for all threads, in barrier order.
template <typename IO, typename T>
void emulate_tile_444_forward(const RoundtripParams& p) {
  const Geometry g = geometry(p);
  const int64_t blocks = p.n * g.blocks_y * g.blocks_x;
  const int64_t tiles = (blocks + kTileBlocks - 1) / kTileBlocks;
  TileShared<T> shared;
  T coef[kTileThreads][3][8];
  for (int64_t tile = 0; tile < tiles; ++tile) {
    TileLane lanes[kTileThreads];
    for (int th = 0; th < kTileThreads; ++th) lanes[th] = tile_lane(tile, th, blocks, g.blocks_y, g.blocks_x);
    for (int th = 0; th < kTileThreads; ++th) tile_load_row_dct<IO, T>(p, lanes[th], shared);
    for (int th = 0; th < kTileThreads; ++th) tile_col_dct(p, lanes[th], shared, coef[th]);
    for (int64_t k = 0; k < p.levels; ++k) {
      for (int th = 0; th < kTileThreads; ++th) tile_quant_col_idct(p, lanes[th], k, coef[th], shared);
      for (int th = 0; th < kTileThreads; ++th) tile_row_idct_store<IO, T>(p, lanes[th], k, shared);
    }
  }
}

}  // namespace nnjpeg
