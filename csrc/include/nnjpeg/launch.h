// Grid arithmetic of the CUDA kernels, kept free of CUDA so the CPU tests can replay it on the host
// (see cuda_grid_visits in bindings.cpp): every item must be visited exactly once.
#pragma once

#include <stdint.h>

#include "hd.h"

namespace nnjpeg {

struct LaunchConfig {
  int64_t blocks;  // grid size (x dimension)
  int threads;     // threads per block
};

constexpr int kThreadsPerBlock = 128;
constexpr int64_t kMaxGridBlocks = 1 << 20;  // grid-stride loop beyond this

// max_blocks caps the grid (the kernels use kMaxGridBlocks; the host replay passes small caps to exercise
// the grid-stride path).
inline LaunchConfig launch_config(int64_t items, int64_t max_blocks = kMaxGridBlocks) {
  LaunchConfig c;
  c.threads = kThreadsPerBlock;
  int64_t blocks = (items + c.threads - 1) / c.threads;
  c.blocks = blocks < 1 ? 1 : (blocks > max_blocks ? max_blocks : blocks);
  return c;
}

// First item of thread (block, thread) and the stride of the grid-stride loop.
NNJ_HD int64_t grid_first_item(int64_t block, int64_t thread, int threads) { return block * threads + thread; }
NNJ_HD int64_t grid_item_stride(int64_t blocks, int threads) { return blocks * threads; }

}  // namespace nnjpeg
