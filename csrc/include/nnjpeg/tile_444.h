// Cooperative 4:4:4 forward for the GPU: a tile of kTileBlocks 8x8 blocks per CUDA thread block, 8 threads
// per 8x8 block. Thread `lane` (0..7) of a block owns pixel row `lane` in the row phases and pixel or
// coefficient column `lane` in the column phases; the block's values pass between the phases through shared
// memory. Global memory is read and written only in column phases: a warp's 32 threads (4 blocks of the
// tile, 8 columns each) then touch 32 neighbouring pixels of one image row per instruction (a row phase
// touches 8 rows x 4 blocks: 32 sectors per instruction, 4 useful bytes in each 32-byte sector written).
//
// Same arithmetic, in the same order, as roundtrip_block_444 (row DCTs, column DCTs, quantize, column
// IDCTs, row IDCTs), so results equal the one-thread-per-block pipeline. Every phase is a plain function of
// (tile, thread, shared buffer): the CUDA kernel calls them with __syncthreads() between phases, and
// emulate_tile_pass() below calls them on the host, all threads of a phase before the next phase,
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

// Fully unrolled channel loops keep the per-thread arrays in registers on the GPU (compile-time indices);
// NNJ_NO_UNROLL keeps a loop whose body needs many registers of its own rolled.
#if defined(__CUDACC__)
#define NNJ_UNROLL _Pragma("unroll")
#define NNJ_NO_UNROLL _Pragma("unroll 1")
#else
#define NNJ_UNROLL
#define NNJ_NO_UNROLL
#endif
// Static member functions of the tiled passes (below), for the host and the GPU.
#if defined(__CUDACC__)
#define NNJ_TILE_MEMBER static __host__ __device__ __forceinline__
#else
#define NNJ_TILE_MEMBER static inline
#endif

namespace nnjpeg {

constexpr int kTileBlocks = 16;                   // 8x8 blocks per tile (per CUDA thread block)
constexpr int kTileThreads = 8 * kTileBlocks;     // 128 threads: 8 per 8x8 block
// Shared rows are kTilePitch values apart (8 and one of padding): with 32-bit values no two threads of a warp
// then share a bank, whether each takes a row (the row phases) or a column (the column phases); with a
// pitch of 8 a warp's rows met 8 to a bank, its columns 4.
constexpr int kTilePitch = 9;
template <typename T>
struct TileShared {
  T v[kTileBlocks][3][8 * kTilePitch];  // [block][channel][tile_at(row, column)]
};
NNJ_HD int tile_at(int row, int column) { return row * kTilePitch + column; }
NNJ_HD int64_t tile_count(int64_t blocks) { return (blocks + kTileBlocks - 1) / kTileBlocks; }

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

// Phase 1 (column lane): column `lane` of the block's pixels, every channel, into shared (edge pixels
// replicated into the padding, as load_pixel does for every path).
template <typename IO, typename T>
NNJ_HD void tile_load(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  const int channels = int(p.c);
  const int64_t x = t.b.bx * 8 + t.lane;
  NNJ_UNROLL
  for (int r = 0; r < 8; ++r) {
    NNJ_UNROLL
    for (int ch = 0; ch < 3; ++ch)
      if (ch < channels) s.v[t.slot][ch][tile_at(r, t.lane)] = load_pixel<IO, T>(p, t.b.n, ch, t.b.by * 8 + r, x);
  }
}

// Phase 2 (row lane): colour transform + level shift and the 1-D DCT of pixel row `lane`, in place.
template <typename T>
NNJ_HD void tile_row_dct(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  const int channels = int(p.c);
  const bool ycc = is_ycbcr(p);
  T row[3][8];
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) {
    if (ycc) {
      rgb_to_ycbcr_shifted(s.v[t.slot][0][tile_at(t.lane, j)], s.v[t.slot][1][tile_at(t.lane, j)],
                           s.v[t.slot][2][tile_at(t.lane, j)], row[0][j], row[1][j], row[2][j]);
    } else {
      NNJ_UNROLL
      for (int ch = 0; ch < 3; ++ch)
        if (ch < channels) row[ch][j] = s.v[t.slot][ch][tile_at(t.lane, j)] - T(128);
    }
  }
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= channels) break;
    fdct8_scaled(row[ch], 1);
    NNJ_UNROLL
    for (int j = 0; j < 8; ++j) s.v[t.slot][ch][tile_at(t.lane, j)] = row[ch][j];
  }
}

// Phase 3 (column lane): 1-D DCT of the column -> the thread's coefficients coef[ch][u] (column v = lane), for
// the first `channels` channels (p.c; the 4:2:0 passes: 2 for Cb and Cr, 1 for Y).
template <typename T>
NNJ_HD void tile_col_dct(int channels, const TileLane& t, const TileShared<T>& s, T (*coef)[8]) {
  if (!t.valid) return;
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= channels) break;
    NNJ_UNROLL
    for (int u = 0; u < 8; ++u) coef[ch][u] = s.v[t.slot][ch][tile_at(u, t.lane)];
    fdct8_scaled(coef[ch], 1);
  }
}

// Phase 4 (column lane), per level: quantize + dequantize, 1-D IDCT of the column -> shared (`channels` as in
// phase 3; tile channel ch is image component ch + first: component 0 takes the luma table, Cb and Cr the
// chroma one).
template <typename T>
NNJ_HD void tile_quant_col_idct(const RoundtripParams& p, int channels, int first, const TileLane& t, int64_t k,
                                const T (*coef)[8], TileShared<T>& s) {
  if (!t.valid) return;
  const bool ycc = is_ycbcr(p);
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= channels) break;
    const float* steps = table_for(p, k, t.b.n, ycc && ch + first > 0);
    T col[8];
    NNJ_UNROLL
    for (int u = 0; u < 8; ++u) {
      const T divisor = quant_divisor<T>(steps[u * 8 + t.lane], u * 8 + t.lane);
      col[u] = quantize_dequantize(coef[ch][u], divisor, dequant_multiplier(divisor), p.rounding);
    }
    idct8_scaled(col, 1);
    NNJ_UNROLL
    for (int u = 0; u < 8; ++u) s.v[t.slot][ch][tile_at(u, t.lane)] = col[u];
  }
}

// Phase 5 (row lane), per level: 1-D IDCT of row `lane` and back to pixels (0..255, not clamped), in place.
template <typename T>
NNJ_HD void tile_row_idct(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
  if (!t.valid) return;
  const int channels = int(p.c);
  T row[3][8] = {};
  NNJ_UNROLL
  for (int ch = 0; ch < 3; ++ch) {
    if (ch >= channels) break;
    NNJ_UNROLL
    for (int j = 0; j < 8; ++j) row[ch][j] = s.v[t.slot][ch][tile_at(t.lane, j)];
    idct8_scaled(row[ch], 1);
  }
  NNJ_UNROLL
  for (int j = 0; j < 8; ++j) {
    T px[3];
    components_to_pixels(p, row[0][j], row[1][j], row[2][j], px);
    NNJ_UNROLL
    for (int ch = 0; ch < 3; ++ch)
      if (ch < channels) s.v[t.slot][ch][tile_at(t.lane, j)] = px[ch];
  }
}

// Phase 6 (column lane), per level: column `lane` of the block's pixels inside the image -> output level k.
template <typename IO, typename T>
NNJ_HD void tile_store(const RoundtripParams& p, const TileLane& t, int64_t k, const TileShared<T>& s) {
  if (!t.valid) return;
  const int channels = int(p.c);
  const int64_t x = t.b.bx * 8 + t.lane;
  if (x >= p.w) return;
  NNJ_UNROLL
  for (int r = 0; r < 8; ++r) {
    const int64_t y = t.b.by * 8 + r;
    if (y >= p.h) break;
    NNJ_UNROLL
    for (int ch = 0; ch < 3; ++ch)
      if (ch < channels) store_pixel<IO, T>(p, k, t.b.n, ch, y, x, s.v[t.slot][ch][tile_at(r, t.lane)]);
  }
}

// A tiled pass: one CUDA kernel (tile_kernel, roundtrip_cuda.cu) or its host emulation (emulate_tile_pass
// below), both running its phases in the same order. It says which blocks it tiles (blocks_y x blocks_x per
// image) and supplies its own phases around the column DCT and quantization above, which run on channels(p)
// channels, tile channel 0 being image component kFirst: load (column lane), row_forward (row lane), then per
// level row_inverse (row lane) and store (column lane). This one: the 4:4:4 forward (grayscale, plain RGB).
template <typename IO, typename T>
struct Tile444 {
  static constexpr int kFirst = 0;
  NNJ_TILE_MEMBER int channels(const RoundtripParams& p) { return int(p.c); }
  NNJ_TILE_MEMBER int64_t blocks_y(const Geometry& g) { return g.blocks_y; }
  NNJ_TILE_MEMBER int64_t blocks_x(const Geometry& g) { return g.blocks_x; }
  NNJ_TILE_MEMBER void load(const RoundtripParams& p, const Geometry&, const TileLane& t, TileShared<T>& s) {
    tile_load<IO, T>(p, t, s);
  }
  NNJ_TILE_MEMBER void row_forward(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
    tile_row_dct(p, t, s);
  }
  NNJ_TILE_MEMBER void row_inverse(const RoundtripParams& p, const TileLane& t, TileShared<T>& s) {
    tile_row_idct(p, t, s);
  }
  NNJ_TILE_MEMBER void store(const RoundtripParams& p, const Geometry&, const TileLane& t, int64_t k,
                             const TileShared<T>& s) {
    tile_store<IO, T>(p, t, k, s);
  }
};

// Host emulation of a tiled pass's kernel: every tile, each phase for all threads, in barrier order.
template <typename Pass, typename T>
void emulate_tile_pass(const RoundtripParams& p, const Geometry& g) {
  const int channels = Pass::channels(p);
  const int64_t blocks = p.n * Pass::blocks_y(g) * Pass::blocks_x(g);
  TileShared<T> shared;
  T coef[kTileThreads][3][8];
  TileLane lanes[kTileThreads];
  for (int64_t tile = 0; tile < tile_count(blocks); ++tile) {
    for (int th = 0; th < kTileThreads; ++th) lanes[th] = tile_lane(tile, th, blocks, Pass::blocks_y(g), Pass::blocks_x(g));
    for (int th = 0; th < kTileThreads; ++th) Pass::load(p, g, lanes[th], shared);
    for (int th = 0; th < kTileThreads; ++th) Pass::row_forward(p, lanes[th], shared);
    for (int th = 0; th < kTileThreads; ++th) tile_col_dct(channels, lanes[th], shared, coef[th]);
    for (int64_t k = 0; k < p.levels; ++k) {
      for (int th = 0; th < kTileThreads; ++th)
        tile_quant_col_idct(p, channels, Pass::kFirst, lanes[th], k, coef[th], shared);
      for (int th = 0; th < kTileThreads; ++th) Pass::row_inverse(p, lanes[th], shared);
      for (int th = 0; th < kTileThreads; ++th) Pass::store(p, g, lanes[th], k, shared);
    }
  }
}

}  // namespace nnjpeg
