// CUDA kernels: the forwards tiled, 8 threads per 8x8 block (tile_444.h, tile_420.h); the backwards one thread
// per 8x8 block with a grid-stride loop over the blocks (the block pipelines of roundtrip_block.h). This file
// only does indexing and launches; the arithmetic is shared with the CPU.
#include <cuda_runtime.h>

#include <type_traits>

#include "nnjpeg/dispatch.h"
#include "nnjpeg/kernels.h"
#include "nnjpeg/launch.h"
#include "nnjpeg/roundtrip_block.h"
#include "nnjpeg/tile_420.h"
#include "nnjpeg/tile_444.h"

namespace nnjpeg {
namespace cuda {
namespace {

// The one-thread-per-block stages of the backwards (the forwards' tiled kernels are below).
enum Stage : int { kChroma420 = 1, kBackward444 = 3, kLumaBackward420 = 4, kChromaBackward420 = 5 };

template <typename IO, typename T, int kStage>
__global__ void roundtrip_kernel(const RoundtripParams p, const Geometry g, int64_t items, int64_t blocks_y,
                                 int64_t blocks_x) {
  const int64_t stride = grid_item_stride(gridDim.x, blockDim.x);
  for (int64_t item = grid_first_item(blockIdx.x, threadIdx.x, blockDim.x); item < items; item += stride) {
    const BlockCoord b = block_coord(item, blocks_y, blocks_x);
    if constexpr (kStage == kChroma420) chroma_block_420<IO, T>(p, g, b);
    if constexpr (!std::is_same<IO, uint8_t>::value) {
      if constexpr (kStage == kBackward444) roundtrip_block_444_backward<IO, T>(p, b);
      if constexpr (kStage == kLumaBackward420) luma_block_420_backward<IO, T>(p, g, b);
      if constexpr (kStage == kChromaBackward420) chroma_block_420_backward<IO, T>(p, g, b);
    }
  }
}

// A tiled forward pass (tile_444.h: Tile444; tile_420.h: TileChroma420, TileLuma420): 8 threads per 8x8 block
// exchanging rows and columns through shared memory, so each thread holds 24 values instead of a whole
// block's 192, and global memory is read and written a column per thread (coalesced across a warp's 4
// blocks). One tile per thread block, grid-stride over tiles; every __syncthreads() is reached by all threads
// of the block. The phases in emulate_tile_pass's order.
// Float compute capped at 128 registers (4 thread blocks per SM; the 4:4:4 pass took 168 with its loads fully
// unrolled; ptxas -v for sm_90: no spills in any pass); double keeps what it needs (up to 244, no spills).
template <typename Pass, typename T>
__global__ void __launch_bounds__(kTileThreads, sizeof(T) == 4 ? 4 : 1)
    tile_kernel(const RoundtripParams p, const Geometry g, int64_t blocks, int64_t tiles) {
  __shared__ TileShared<T> shared;
  T coef[3][8];
  const int channels = Pass::channels(p);
  for (int64_t tile = blockIdx.x; tile < tiles; tile += gridDim.x) {
    const TileLane lane = tile_lane(tile, int(threadIdx.x), blocks, Pass::blocks_y(g), Pass::blocks_x(g));
    Pass::load(p, g, lane, shared);
    __syncthreads();
    Pass::row_forward(p, lane, shared);
    __syncthreads();
    tile_col_dct(channels, lane, shared, coef);
    __syncthreads();
    for (int64_t k = 0; k < p.levels; ++k) {
      tile_quant_col_idct(p, channels, Pass::kFirst, lane, k, coef, shared);
      __syncthreads();
      Pass::row_inverse(p, lane, shared);
      __syncthreads();
      Pass::store(p, g, lane, k, shared);
      __syncthreads();
    }
  }
}

// Launches a tiled pass: one thread block per tile, the grid capped (grid-stride loop beyond).
template <typename Pass, typename T>
cudaError_t launch_tile_pass(const RoundtripParams& p, const Geometry& g) {
  const int64_t blocks = p.n * Pass::blocks_y(g) * Pass::blocks_x(g);
  if (blocks == 0) return cudaSuccess;
  const int64_t tiles = tile_count(blocks), grid = tiles < kMaxGridBlocks ? tiles : kMaxGridBlocks;
  tile_kernel<Pass, T><<<dim3(unsigned(grid)), dim3(unsigned(kTileThreads)), 0,
                         static_cast<cudaStream_t>(p.stream)>>>(p, g, blocks, tiles);
  return cudaGetLastError();
}

// Launches a one-thread-per-block stage (the backwards).
template <typename IO, typename T, int kStage>
cudaError_t launch(const RoundtripParams& p, const Geometry& g, int64_t blocks_y, int64_t blocks_x) {
  const int64_t items = p.n * blocks_y * blocks_x;
  if (items == 0) return cudaSuccess;
  const LaunchConfig c = launch_config(items);
  roundtrip_kernel<IO, T, kStage><<<dim3(unsigned(c.blocks)), dim3(unsigned(c.threads)), 0,
                                    static_cast<cudaStream_t>(p.stream)>>>(p, g, items, blocks_y, blocks_x);
  return cudaGetLastError();
}

// Runs fn with p.device current, restoring the caller's device afterwards.
template <typename F>
std::string on_device(int device, const F& fn) {
  int previous = 0;
  cudaError_t err = cudaGetDevice(&previous);
  if (err == cudaSuccess) err = cudaSetDevice(device);
  if (err == cudaSuccess) err = fn();
  if (previous != device) cudaSetDevice(previous);
  return err == cudaSuccess ? std::string() : std::string(cudaGetErrorString(err));
}

}  // namespace

bool built() { return true; }

std::string roundtrip_forward(const RoundtripParams& p) {
  const Geometry g = geometry(p);
  return on_device(p.device, [&]() {
    cudaError_t err = cudaSuccess;
    dispatch_dtype(p.dtype, [&](auto io, auto compute) {
      using IO = decltype(io);
      using T = decltype(compute);
      if (uses_420(p)) {  // two launches on one stream: the luma pass reads what the chroma pass wrote
        err = launch_tile_pass<TileChroma420<IO, T>, T>(p, g);
        if (err == cudaSuccess) err = launch_tile_pass<TileLuma420<IO, T>, T>(p, g);
      } else {
        err = launch_tile_pass<Tile444<IO, T>, T>(p, g);
      }
    });
    return err;
  });
}

std::string roundtrip_backward(const RoundtripParams& p) {
  const Geometry g = geometry(p);
  return on_device(p.device, [&]() {
    cudaError_t err = cudaSuccess;
    dispatch_dtype(p.dtype, [&](auto io, auto compute) {
      using IO = decltype(io);
      using T = decltype(compute);
      if (uses_420(p)) {  // three launches on one stream: each reads what the previous one wrote
        err = launch<IO, T, kChroma420>(p, g, g.chroma_h / 8, g.chroma_w / 8);
        if (err == cudaSuccess) err = launch<IO, T, kLumaBackward420>(p, g, g.blocks_y, g.blocks_x);
        if (err == cudaSuccess) err = launch<IO, T, kChromaBackward420>(p, g, g.chroma_h / 8, g.chroma_w / 8);
      } else {
        err = launch<IO, T, kBackward444>(p, g, g.blocks_y, g.blocks_x);
      }
    });
    return err;
  });
}

}  // namespace cuda
}  // namespace nnjpeg
